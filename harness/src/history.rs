//! Recording the history as JSON Lines exactly as harness.md §6: fields in the
//! spec's order, `time` in ns since the test began, `tx_id` on client operations.

use serde_json::{Map, Value};

/// Who an event belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// A client process.
    Process(u64),
    /// The nemesis.
    Nemesis,
}

/// The history being written, one line per event.
#[derive(Debug, Default)]
pub struct Recorder {
    text: String,
    next: u64,
    ops: u64,
}

impl Recorder {
    /// Appends one event; `extra` fields (e.g. an error reason) follow the standard ones.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        time: u64,
        who: Who,
        kind: &str,
        f: &str,
        value: &Value,
        node: Option<&str>,
        tx_id: Option<&str>,
        extra: Option<&Map<String, Value>>,
    ) {
        use std::fmt::Write;
        let process = match who {
            Who::Process(p) => p.to_string(),
            Who::Nemesis => "\"nemesis\"".to_string(),
        };
        let _ = write!(
            self.text,
            "{{\"index\":{},\"time\":{},\"process\":{},\"type\":{},\"f\":{},\"value\":{}",
            self.next,
            time,
            process,
            Value::from(kind),
            Value::from(f),
            value
        );
        if let Some(n) = node {
            let _ = write!(self.text, ",\"node\":{}", Value::from(n));
        }
        if let Some(t) = tx_id {
            let _ = write!(self.text, ",\"tx_id\":{}", Value::from(t));
        }
        for (k, v) in extra.into_iter().flatten() {
            let _ = write!(self.text, ",{}:{}", Value::from(k.as_str()), v);
        }
        self.text.push_str("}\n");
        self.next += 1;
        if kind != "invoke" && who != Who::Nemesis {
            self.ops += 1;
        }
    }

    /// Completed client operations so far (for progress).
    pub fn ops_done(&self) -> u64 {
        self.ops
    }

    /// The JSON Lines text.
    pub fn text(&self) -> &str {
        &self.text
    }
}
