//! The history model: JSON Lines as harness.md §6, validated and paired into
//! operations. Parsing never panics; every error names the line and the problem.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::value::{Interner, OpValue};

/// Who issued an event: a client process (a number) or the nemesis
/// (harness.md §6: `"process": int or "nemesis"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    /// A client worker; a new id replaces one retired after `info`.
    Client(i64),
    /// The fault injector; its events are not paired into operations.
    Nemesis,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => write!(f, "nemesis"),
        }
    }
}

impl Process {
    fn to_json(self) -> Value {
        match self {
            Process::Client(p) => Value::from(p),
            Process::Nemesis => Value::from("nemesis"),
        }
    }
}

/// An event's or an operation's type (harness.md §6): `ok` took effect, `fail`
/// certainly did not, `info` is unknown (may take effect now, later or never).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpType {
    /// The start of an operation.
    Invoke,
    /// Completed and took effect.
    Ok,
    /// Completed and certainly did not take effect.
    Fail,
    /// Outcome unknown; the process is retired.
    Info,
}

impl OpType {
    /// The spelling used in histories.
    pub fn as_str(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }

    fn parse(s: &str) -> Option<OpType> {
        match s {
            "invoke" => Some(OpType::Invoke),
            "ok" => Some(OpType::Ok),
            "fail" => Some(OpType::Fail),
            "info" => Some(OpType::Info),
            _ => None,
        }
    }
}

impl fmt::Display for OpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the history, exactly as recorded (harness.md §6). Unknown fields
/// are kept in `extra` so a history round-trips.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Position in the history; strictly increasing.
    pub index: u64,
    /// Nanoseconds since the test began.
    pub time: u64,
    /// Who issued it.
    pub process: Process,
    /// invoke / ok / fail / info.
    pub kind: OpType,
    /// The operation's function, e.g. "txn", "read", "partition".
    pub f: String,
    /// The operation's argument or result. Shared (not copied) with the paired
    /// [`Op`], so a history holds each value once, and compact when it is a
    /// transaction (issue 15: 1M txns in ≤ 2 GiB).
    pub value: Arc<OpValue>,
    /// The node the client talked to, if any.
    pub node: Option<String>,
    /// The ledger transaction id, used by the `set` checker.
    pub tx_id: Option<String>,
    /// Fields this model does not know, kept for round-tripping.
    pub extra: Map<String, Value>,
}

/// An invocation paired with its completion: the unit checkers reason about.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// History index of the invoke; identifies the operation in reports.
    pub invoke_index: u64,
    /// History index of the completion; `None` if the history ended first.
    pub complete_index: Option<u64>,
    /// The client process.
    pub process: Process,
    /// The function (from the invoke).
    pub f: String,
    /// The invoke's value (the request); the same allocation as the invoke
    /// event's value.
    pub invoke_value: Arc<OpValue>,
    /// The completion's value (the response), if it completed; the same
    /// allocation as the completion event's value.
    pub complete_value: Option<Arc<OpValue>>,
    /// Ok, Fail or Info; an operation that never completed is Info.
    pub kind: OpType,
    /// Invoke time, ns.
    pub invoke_time: u64,
    /// Completion time, ns.
    pub complete_time: Option<u64>,
    /// Node from the completion, else from the invoke.
    pub node: Option<String>,
    /// Transaction id from the completion, else from the invoke.
    pub tx_id: Option<String>,
}

impl Op {
    /// The value that best describes what happened: the completion's for `ok`
    /// (it carries read results), otherwise the invoke's.
    pub fn value(&self) -> &OpValue {
        match (&self.kind, &self.complete_value) {
            (OpType::Ok, Some(v)) => v,
            _ => &self.invoke_value,
        }
    }

    /// A completion with no invoke as an operation by itself, as Elle reads one
    /// (issue 15): invoked and completed at the same index and time.
    fn standalone(e: &Event) -> Op {
        Op {
            invoke_index: e.index,
            complete_index: Some(e.index),
            process: e.process,
            f: e.f.clone(),
            invoke_value: Arc::clone(&e.value),
            complete_value: Some(Arc::clone(&e.value)),
            kind: e.kind,
            invoke_time: e.time,
            complete_time: Some(e.time),
            node: e.node.clone(),
            tx_id: e.tx_id.clone(),
        }
    }

    /// Index of the event that ended the operation, or `u64::MAX` for one that
    /// may still take effect (info or pending): its completion is at infinity.
    pub fn end_index(&self) -> u64 {
        match (self.kind, self.complete_index) {
            (OpType::Info, _) | (_, None) => u64::MAX,
            (_, Some(i)) => i,
        }
    }
}

/// Why a history could not be read. Every variant carries the 1-based line.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The line is not valid JSON.
    #[error("line {line}: invalid JSON: {msg}")]
    InvalidJson {
        /// 1-based line number.
        line: usize,
        /// The parser's message.
        msg: String,
    },
    /// The last line ends mid-value (a run cut off while writing).
    #[error("line {line}: truncated last line (the history ends mid-record)")]
    Truncated {
        /// 1-based line number.
        line: usize,
    },
    /// A line that is JSON but not an object.
    #[error("line {line}: expected a JSON object, found {found}")]
    NotAnObject {
        /// 1-based line number.
        line: usize,
        /// What was found.
        found: &'static str,
    },
    /// A required field is absent.
    #[error("line {line}: missing field `{field}`")]
    MissingField {
        /// 1-based line number.
        line: usize,
        /// The field.
        field: &'static str,
    },
    /// A field has the wrong JSON type or an invalid value.
    #[error("line {line}: field `{field}`: expected {expected}, found {found}")]
    WrongType {
        /// 1-based line number.
        line: usize,
        /// The field.
        field: &'static str,
        /// What is allowed.
        expected: &'static str,
        /// What was there.
        found: String,
    },
    /// Two events share an index.
    #[error("line {line}: duplicate index {index}")]
    DuplicateIndex {
        /// 1-based line number.
        line: usize,
        /// The repeated index.
        index: u64,
    },
    /// Indices must increase line by line.
    #[error("line {line}: index {index} out of order (previous index {previous})")]
    IndexOutOfOrder {
        /// 1-based line number.
        line: usize,
        /// This line's index.
        index: u64,
        /// The previous line's index.
        previous: u64,
    },
    /// ok/fail/info on a process with nothing pending.
    #[error("line {line}: {kind} on process {process} without a prior invoke")]
    CompletionWithoutInvoke {
        /// 1-based line number.
        line: usize,
        /// The process.
        process: Process,
        /// The completion's type.
        kind: OpType,
    },
    /// A process invoked while its previous operation is still pending.
    #[error("line {line}: process {process} invoked while its invoke at index {pending} is still pending")]
    DoubleInvoke {
        /// 1-based line number.
        line: usize,
        /// The process.
        process: Process,
        /// Index of the pending invoke.
        pending: u64,
    },
    /// Processes are retired after `info` (harness.md §6).
    #[error("line {line}: process {process} invoked again after its info at index {info_index}; a process is retired after info")]
    InvokeAfterInfo {
        /// 1-based line number.
        line: usize,
        /// The process.
        process: Process,
        /// Index of the info that retired it.
        info_index: u64,
    },
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An EDN history could not be read.
    #[error(transparent)]
    Edn(#[from] crate::edn::EdnError),
}

/// How completions pair with invokes. The harness's own JSON Lines are
/// [`Pairing::Strict`]: a completion without an invoke, or an invoke after `info`,
/// is a recording bug worth an error (harness.md §6). Jepsen's and Elle's EDN
/// are [`Pairing::Lenient`]: Elle checks completed operations alone, so a
/// completion without an invoke is an operation by itself (issue 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairing {
    /// Every completion needs its invoke; a process retires after `info`.
    Strict,
    /// A completion without an invoke stands alone; `info` retires nothing.
    Lenient,
}

/// A validated history: its events in order and the operations paired from them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct History {
    events: Vec<Event>,
    ops: Vec<Op>,
}

fn type_name(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => {
            let short: String = s.chars().take(40).collect();
            format!("the string {short:?}")
        }
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn opt_string(
    line: usize,
    obj: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, HistoryError> {
    match obj.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(HistoryError::WrongType {
            line,
            field,
            expected: "a string",
            found: type_name(&other),
        }),
    }
}

/// One line's event. The line's map, emptied of the known fields, is kept as
/// `extra` only if something is left: an emptied `BTreeMap` keeps its node
/// (~600 bytes), which over a million lines is more than the values (issue 15).
fn parse_event(line: usize, v: Value, keys: &mut Interner) -> Result<Event, HistoryError> {
    let mut obj = match v {
        Value::Object(m) => m,
        other => {
            let found = match other {
                Value::Array(_) => "an array",
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Object(_) => "an object",
            };
            return Err(HistoryError::NotAnObject { line, found });
        }
    };
    let mut take = |field: &'static str| {
        obj.remove(field)
            .ok_or(HistoryError::MissingField { line, field })
    };
    let index = take("index")?;
    let index = index.as_u64().ok_or_else(|| HistoryError::WrongType {
        line,
        field: "index",
        expected: "a non-negative integer",
        found: type_name(&index),
    })?;
    let time = take("time")?;
    let time = time.as_u64().ok_or_else(|| HistoryError::WrongType {
        line,
        field: "time",
        expected: "a non-negative integer (ns)",
        found: type_name(&time),
    })?;
    let process = take("process")?;
    let process = match &process {
        Value::String(s) if s == "nemesis" => Process::Nemesis,
        Value::Number(n) if n.as_i64().is_some() => Process::Client(n.as_i64().unwrap_or(0)),
        other => {
            return Err(HistoryError::WrongType {
                line,
                field: "process",
                expected: "an integer or \"nemesis\"",
                found: type_name(other),
            })
        }
    };
    let kind = take("type")?;
    let kind = kind
        .as_str()
        .and_then(OpType::parse)
        .ok_or_else(|| HistoryError::WrongType {
            line,
            field: "type",
            expected: "one of \"invoke\", \"ok\", \"fail\", \"info\"",
            found: type_name(&kind),
        })?;
    let f = take("f")?;
    let f = match f {
        Value::String(s) => s,
        other => {
            return Err(HistoryError::WrongType {
                line,
                field: "f",
                expected: "a string",
                found: type_name(&other),
            })
        }
    };
    let value = Arc::new(keys.value(take("value")?));
    let node = opt_string(line, &mut obj, "node")?;
    let tx_id = opt_string(line, &mut obj, "tx_id")?;
    Ok(Event {
        index,
        time,
        process,
        kind,
        f,
        value,
        node,
        tx_id,
        extra: if obj.is_empty() { Map::new() } else { obj },
    })
}

impl Event {
    /// The event as one JSON object (the inverse of parsing a line).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("index".into(), Value::from(self.index));
        m.insert("time".into(), Value::from(self.time));
        m.insert("process".into(), self.process.to_json());
        m.insert("type".into(), Value::from(self.kind.as_str()));
        m.insert("f".into(), Value::from(self.f.clone()));
        m.insert("value".into(), self.value.to_value());
        if let Some(n) = &self.node {
            m.insert("node".into(), Value::from(n.clone()));
        }
        if let Some(t) = &self.tx_id {
            m.insert("tx_id".into(), Value::from(t.clone()));
        }
        for (k, v) in &self.extra {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(m)
    }
}

/// Events parsed so far from JSON Lines, with their source lines.
#[derive(Default)]
struct Lines {
    events: Vec<Event>,
    line_of: Vec<usize>,
    keys: Interner,
}

impl Lines {
    /// Parse line `line` (1-based); `cut` says it is the last and has no
    /// newline, so a value ending early there is a truncated history.
    fn push(&mut self, line: usize, raw: &str, cut: bool) -> Result<(), HistoryError> {
        let l = raw.trim();
        if l.is_empty() {
            return Ok(());
        }
        let v: Value = serde_json::from_str(l).map_err(|e| {
            if e.is_eof() && cut {
                HistoryError::Truncated { line }
            } else {
                HistoryError::InvalidJson {
                    line,
                    msg: e.to_string(),
                }
            }
        })?;
        self.events.push(parse_event(line, v, &mut self.keys)?);
        self.line_of.push(line);
        Ok(())
    }

    fn finish(self) -> Result<History, HistoryError> {
        History::from_lined_events(self.events, &self.line_of, Pairing::Strict)
    }
}

/// Indices must increase strictly: `e` (on `line`) against the events before it.
fn check_order(before: &[Event], e: &Event, line: usize) -> Result<(), HistoryError> {
    let Some(prev) = before.last().map(|x| x.index) else {
        return Ok(());
    };
    if e.index > prev {
        return Ok(());
    }
    let dup = e.index == prev || before.binary_search_by_key(&e.index, |x| x.index).is_ok();
    Err(if dup {
        HistoryError::DuplicateIndex {
            line,
            index: e.index,
        }
    } else {
        HistoryError::IndexOutOfOrder {
            line,
            index: e.index,
            previous: prev,
        }
    })
}

impl History {
    /// Parse a JSON Lines history (harness.md §6). Blank lines are skipped.
    pub fn parse_jsonl(text: &str) -> Result<History, HistoryError> {
        let mut lines = Lines::default();
        let ends_with_newline = text.ends_with('\n');
        let split: Vec<&str> = text.split('\n').collect();
        let last = split.len();
        for (i, raw) in split.iter().enumerate() {
            lines.push(i + 1, raw, i + 1 == last && !ends_with_newline)?;
        }
        lines.finish()
    }

    /// Read a history file: JSON Lines, or EDN if the name ends in `.edn`.
    /// JSON Lines are read line by line, so the file's text is never held
    /// whole next to the history (issue 15).
    pub fn from_file(path: impl AsRef<Path>) -> Result<History, HistoryError> {
        use std::io::BufRead;
        let path = path.as_ref();
        let io = |source| HistoryError::Io {
            path: path.to_path_buf(),
            source,
        };
        if path.extension().and_then(|e| e.to_str()) == Some("edn") {
            let bytes = std::fs::read(path).map_err(io)?;
            return crate::edn::parse_history(&String::from_utf8_lossy(&bytes));
        }
        let mut reader = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
        let (mut lines, mut buf, mut line) = (Lines::default(), Vec::new(), 0);
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf).map_err(io)? == 0 {
                return lines.finish();
            }
            line += 1;
            // A newline is never inside a UTF-8 sequence: decoding line by line
            // is decoding the whole text.
            let cut = !buf.ends_with(b"\n");
            lines.push(line, &String::from_utf8_lossy(&buf), cut)?;
        }
    }

    /// Build a history from events (e.g. made by a generator); the "line" in
    /// errors is the event's position + 1.
    pub fn from_events(events: Vec<Event>) -> Result<History, HistoryError> {
        History::from_lined_events(events, &[], Pairing::Strict)
    }

    /// Validate events and pair them. `lines[i]` is the source line of
    /// `events[i]` (position + 1 where absent). The events are validated in
    /// place and kept, not copied: a second vector of 1M events would double the
    /// peak while pairing (issue 15).
    pub(crate) fn from_lined_events(
        events: Vec<Event>,
        lines: &[usize],
        pairing: Pairing,
    ) -> Result<History, HistoryError> {
        let mut pending: HashMap<Process, usize> = HashMap::new();
        let mut retired: HashMap<Process, u64> = HashMap::new();
        let mut ops: Vec<Op> = Vec::new();
        for (pos, e) in events.iter().enumerate() {
            let line = lines.get(pos).copied().unwrap_or(pos + 1);
            check_order(&events[..pos], e, line)?;
            if e.process != Process::Nemesis {
                match e.kind {
                    OpType::Invoke => {
                        if let (Pairing::Strict, Some(&info_index)) =
                            (pairing, retired.get(&e.process))
                        {
                            return Err(HistoryError::InvokeAfterInfo {
                                line,
                                process: e.process,
                                info_index,
                            });
                        }
                        if let Some(&p) = pending.get(&e.process) {
                            let pending = ops.get(p).map(|o| o.invoke_index).unwrap_or(0);
                            return Err(HistoryError::DoubleInvoke {
                                line,
                                process: e.process,
                                pending,
                            });
                        }
                        pending.insert(e.process, ops.len());
                        ops.push(Op {
                            invoke_index: e.index,
                            complete_index: None,
                            process: e.process,
                            f: e.f.clone(),
                            invoke_value: Arc::clone(&e.value),
                            complete_value: None,
                            kind: OpType::Info,
                            invoke_time: e.time,
                            complete_time: None,
                            node: e.node.clone(),
                            tx_id: e.tx_id.clone(),
                        });
                    }
                    kind => {
                        let slot = pending.remove(&e.process).and_then(|p| ops.get_mut(p));
                        let Some(op) = slot else {
                            if pairing == Pairing::Lenient {
                                ops.push(Op::standalone(e));
                                continue;
                            }
                            return Err(HistoryError::CompletionWithoutInvoke {
                                line,
                                process: e.process,
                                kind,
                            });
                        };
                        op.complete_index = Some(e.index);
                        op.complete_value = Some(Arc::clone(&e.value));
                        op.kind = kind;
                        op.complete_time = Some(e.time);
                        if e.node.is_some() {
                            op.node = e.node.clone();
                        }
                        if e.tx_id.is_some() {
                            op.tx_id = e.tx_id.clone();
                        }
                        if kind == OpType::Info {
                            retired.insert(e.process, e.index);
                        }
                    }
                }
            }
        }
        Ok(History { events, ops })
    }

    /// Every event in history order, nemesis events included.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Client operations (invokes paired with completions), in invoke order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The nemesis's events (faults as applied), for reports.
    pub fn nemesis_events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(|e| e.process == Process::Nemesis)
    }

    /// Serialise back to JSON Lines through the harness's own writer
    /// ([`crate::jsonl::write_line`], harness.md §6 field order), so
    /// `parse_jsonl(to_jsonl(h)) == h` and a recorded history round-trips byte for byte.
    pub fn to_jsonl(&self) -> String {
        let mut s = String::new();
        for e in &self.events {
            let process = e.process.to_json();
            crate::jsonl::write_line(
                &mut s,
                &crate::jsonl::Line {
                    index: e.index,
                    time: e.time,
                    process: &process,
                    kind: e.kind.as_str(),
                    f: &e.f,
                    value: &*e.value,
                    node: e.node.as_deref(),
                    tx_id: e.tx_id.as_deref(),
                    extra: Some(&e.extra),
                },
            );
        }
        s
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when there are no events.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"{"index":0,"time":1200345,"process":3,"type":"invoke","f":"txn","value":[["append","k1",7],["r","k2",null]],"node":"n2"}
{"index":1,"time":1904411,"process":3,"type":"ok","f":"txn","value":[["append","k1",7],["r","k2",[1,4]]],"node":"n2"}
{"index":2,"time":2000000,"process":"nemesis","type":"info","f":"partition","value":{"shape":"halves","groups":[["n1","n2"],["n3","n4"]]}}
"#;

    #[test]
    fn parses_the_spec_example_and_pairs_ops() {
        let h = History::parse_jsonl(SPEC).unwrap();
        assert_eq!(h.events().len(), 3);
        assert_eq!(h.ops().len(), 1);
        let op = &h.ops()[0];
        assert_eq!(op.invoke_index, 0);
        assert_eq!(op.complete_index, Some(1));
        assert_eq!(op.kind, OpType::Ok);
        assert_eq!(op.process, Process::Client(3));
        assert_eq!(op.node.as_deref(), Some("n2"));
        assert_eq!(op.value()[1][2], serde_json::json!([1, 4]));
        assert_eq!(h.nemesis_events().count(), 1);
    }

    #[test]
    fn ops_share_their_values_with_the_events() {
        // issue 15: each value is held once, not copied into the op.
        let h = History::parse_jsonl(SPEC).unwrap();
        let op = &h.ops()[0];
        assert!(Arc::ptr_eq(&op.invoke_value, &h.events()[0].value));
        let done = op.complete_value.as_ref().unwrap();
        assert!(Arc::ptr_eq(done, &h.events()[1].value));
    }

    #[test]
    fn round_trips_with_extra_fields() {
        let text = format!(
            "{}{}\n",
            SPEC,
            r#"{"index":3,"time":5,"process":4,"type":"invoke","f":"w","value":null,"tx_id":"ab","custom":{"x":1}}"#
        );
        let h = History::parse_jsonl(&text).unwrap();
        assert_eq!(h.events()[3].extra["custom"]["x"], 1);
        let again = History::parse_jsonl(&h.to_jsonl()).unwrap();
        assert_eq!(h, again);
        // pending at the end counts as info
        assert_eq!(h.ops()[1].kind, OpType::Info);
        assert_eq!(h.ops()[1].tx_id.as_deref(), Some("ab"));
    }

    fn err(text: &str) -> String {
        History::parse_jsonl(text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_line_and_problem() {
        let inv = |i: u64, p: i64| {
            format!(
                r#"{{"index":{i},"time":0,"process":{p},"type":"invoke","f":"r","value":null}}"#
            )
        };
        let done = |i: u64, p: i64, t: &str| {
            format!(r#"{{"index":{i},"time":0,"process":{p},"type":"{t}","f":"r","value":null}}"#)
        };
        assert!(err("{nope}\n").starts_with("line 1: invalid JSON"));
        let e = err(&format!("{}\n{{\"index\":1,\"ti", inv(0, 1)));
        assert_eq!(
            e,
            "line 2: truncated last line (the history ends mid-record)"
        );
        assert_eq!(
            err(r#"{"index":0,"time":0,"process":1,"type":"invoke","value":1}"#),
            "line 1: missing field `f`"
        );
        assert!(
            err(r#"{"index":"a","time":0,"process":1,"type":"invoke","f":"r","value":1}"#)
                .starts_with("line 1: field `index`: expected a non-negative integer")
        );
        assert!(
            err(r#"{"index":0,"time":0,"process":1.5,"type":"invoke","f":"r","value":1}"#)
                .contains("field `process`")
        );
        assert!(
            err(r#"{"index":0,"time":0,"process":1,"type":"maybe","f":"r","value":1}"#)
                .contains("field `type`")
        );
        assert!(err("[1,2]\n").contains("expected a JSON object"));
        assert_eq!(
            err(&format!("{}\n{}\n", inv(0, 1), inv(0, 2))),
            "line 2: duplicate index 0"
        );
        assert_eq!(
            err(&format!("{}\n{}\n{}\n", inv(0, 1), inv(5, 2), inv(3, 3))),
            "line 3: index 3 out of order (previous index 5)"
        );
        assert_eq!(
            err(&format!("{}\n", done(0, 1, "ok"))),
            "line 1: ok on process 1 without a prior invoke"
        );
        assert_eq!(
            err(&format!("{}\n{}\n", inv(0, 1), inv(1, 1))),
            "line 2: process 1 invoked while its invoke at index 0 is still pending"
        );
        assert!(err(&format!(
            "{}\n{}\n{}\n",
            inv(0, 1),
            done(1, 1, "info"),
            inv(2, 1)
        ))
        .starts_with("line 3: process 1 invoked again after its info at index 1"));
        // a fail does not retire the process
        assert!(History::parse_jsonl(&format!(
            "{}\n{}\n{}\n",
            inv(0, 1),
            done(1, 1, "fail"),
            inv(2, 1)
        ))
        .is_ok());
    }

    #[test]
    fn from_file_reads_line_by_line_with_parse_jsonls_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.jsonl");
        let cases = [
            SPEC.to_string(),
            SPEC.trim_end().to_string(),
            format!("\n{SPEC}\n\n"),
            format!("{SPEC}{{\"index\":3,\"ti"),
            format!("{SPEC}{{\"index\":3,\"ti\n"),
            format!("{SPEC}\u{fffd}\n"),
            "{\"index\":0}\r\n".into(),
        ];
        for text in cases {
            std::fs::write(&p, &text).unwrap();
            let (a, b) = (History::from_file(&p), History::parse_jsonl(&text));
            match (a, b) {
                (Ok(a), Ok(b)) => assert_eq!(a, b),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                (a, b) => panic!("{text:?}: {a:?} vs {b:?}"),
            }
        }
        let mut bad = SPEC.as_bytes().to_vec();
        bad.extend_from_slice(b"\xff\n");
        std::fs::write(&p, &bad).unwrap();
        assert!(History::from_file(&p)
            .unwrap_err()
            .to_string()
            .starts_with("line 4: invalid JSON"));
    }

    #[test]
    fn from_file_reads_jsonl_and_edn_and_reports_io_errors() {
        let dir = std::env::temp_dir().join(format!("rollcall-checkers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let j = dir.join("history.jsonl");
        std::fs::write(&j, SPEC).unwrap();
        assert_eq!(
            History::from_file(&j).unwrap(),
            History::parse_jsonl(SPEC).unwrap()
        );
        let e = dir.join("history.edn");
        std::fs::write(
            &e,
            "{:type :invoke :f :txn :value [[:r 1 nil]] :process 0 :index 0 :time 0}\n",
        )
        .unwrap();
        let h = History::from_file(&e).unwrap();
        assert_eq!(
            *h.ops()[0].invoke_value,
            serde_json::json!([["r", 1, null]])
        );
        let missing = History::from_file(dir.join("nope.jsonl")).unwrap_err();
        assert!(matches!(missing, HistoryError::Io { .. }));
        std::fs::remove_dir_all(&dir).ok();
    }
}
