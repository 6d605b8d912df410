//! The one JSON Lines writer of the history (harness.md §6): fields in the spec's
//! order `index, time, process, type, f, value, node, tx_id`, then any extra
//! fields. The harness records with [`Recorder`]; [`History::to_jsonl`] writes a
//! parsed history back through the same [`write_line`], so what the harness writes
//! and what the checkers read are one format (issue 11).
//!
//! [`History::to_jsonl`]: crate::history::History::to_jsonl

use serde_json::{Map, Value};
use std::fmt::Write;

/// Who an event belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// A client process.
    Process(u64),
    /// The nemesis.
    Nemesis,
}

/// One event's fields, borrowed, in the order they are written. The value is
/// JSON, or a history's [`OpValue`](crate::value::OpValue) written as its JSON.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a, V: ?Sized = Value> {
    /// Position in the history.
    pub index: u64,
    /// Nanoseconds since the test began.
    pub time: u64,
    /// The `process` field already as JSON: a number or `"nemesis"`.
    pub process: &'a Value,
    /// invoke / ok / fail / info.
    pub kind: &'a str,
    /// The operation's function.
    pub f: &'a str,
    /// The operation's argument or result.
    pub value: &'a V,
    /// The node the client talked to.
    pub node: Option<&'a str>,
    /// The ledger transaction id.
    pub tx_id: Option<&'a str>,
    /// Fields after the standard ones (an error reason, Jepsen's extra keys).
    pub extra: Option<&'a Map<String, Value>>,
}

/// Appends one event as a JSON line (with its `\n`) in harness.md §6 field order.
pub fn write_line<V: std::fmt::Display + ?Sized>(out: &mut String, l: &Line<V>) {
    let _ = write!(
        out,
        "{{\"index\":{},\"time\":{},\"process\":{},\"type\":{},\"f\":{},\"value\":{}",
        l.index,
        l.time,
        l.process,
        Value::from(l.kind),
        Value::from(l.f),
        l.value
    );
    if let Some(n) = l.node {
        let _ = write!(out, ",\"node\":{}", Value::from(n));
    }
    if let Some(t) = l.tx_id {
        let _ = write!(out, ",\"tx_id\":{}", Value::from(t));
    }
    for (k, v) in l.extra.into_iter().flatten() {
        let _ = write!(out, ",{}:{}", Value::from(k.as_str()), v);
    }
    out.push_str("}\n");
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
        let process = match who {
            Who::Process(p) => Value::from(p),
            Who::Nemesis => Value::from("nemesis"),
        };
        write_line(
            &mut self.text,
            &Line {
                index: self.next,
                time,
                process: &process,
                kind,
                f,
                value,
                node,
                tx_id,
                extra,
            },
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;
    use serde_json::json;

    #[test]
    fn recorder_writes_the_spec_order_and_history_writes_the_same_bytes() {
        let mut r = Recorder::default();
        let extra: Map<String, Value> = [("error".to_string(), json!("timeout"))]
            .into_iter()
            .collect();
        r.record(
            5,
            Who::Process(3),
            "invoke",
            "txn",
            &json!([["r", "k", null]]),
            Some("n1"),
            Some("ab"),
            None,
        );
        r.record(
            9,
            Who::Process(3),
            "info",
            "txn",
            &json!([["r", "k", null]]),
            Some("n1"),
            Some("ab"),
            Some(&extra),
        );
        r.record(
            10,
            Who::Nemesis,
            "info",
            "partition",
            &json!({"phase": "start"}),
            None,
            None,
            None,
        );
        assert_eq!(
            r.text(),
            concat!(
                r#"{"index":0,"time":5,"process":3,"type":"invoke","f":"txn","value":[["r","k",null]],"node":"n1","tx_id":"ab"}"#,
                "\n",
                r#"{"index":1,"time":9,"process":3,"type":"info","f":"txn","value":[["r","k",null]],"node":"n1","tx_id":"ab","error":"timeout"}"#,
                "\n",
                r#"{"index":2,"time":10,"process":"nemesis","type":"info","f":"partition","value":{"phase":"start"}}"#,
                "\n",
            )
        );
        assert_eq!(r.ops_done(), 1);
        let h = History::parse_jsonl(r.text()).unwrap();
        assert_eq!(h.to_jsonl(), r.text());
    }
}
