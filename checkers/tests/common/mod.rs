//! Helpers for writing small histories by hand.
#![allow(dead_code)]

use rollcall_checkers::History;
use serde_json::{json, Value};

/// Builds a history event by event; indices and times are assigned in order.
#[derive(Default)]
pub struct B {
    lines: Vec<Value>,
}

impl B {
    pub fn new() -> Self {
        B::default()
    }
    pub fn ev(&mut self, p: i64, ty: &str, f: &str, v: Value) -> &mut Self {
        let i = self.lines.len();
        self.lines.push(
            json!({"index": i, "time": i * 10, "process": p, "type": ty, "f": f, "value": v}),
        );
        self
    }
    pub fn inv(&mut self, p: i64, f: &str, v: Value) -> &mut Self {
        self.ev(p, "invoke", f, v)
    }
    pub fn ok(&mut self, p: i64, f: &str, v: Value) -> &mut Self {
        self.ev(p, "ok", f, v)
    }
    /// Invoke a txn: the invoke carries the micro-ops with reads nulled.
    pub fn tinv(&mut self, p: i64, mops: Value) -> &mut Self {
        let nulled: Vec<Value> = mops
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                if m[0] == "r" {
                    json!(["r", m[1], null])
                } else {
                    m.clone()
                }
            })
            .collect();
        self.inv(p, "txn", Value::Array(nulled))
    }
    pub fn tok(&mut self, p: i64, mops: Value) -> &mut Self {
        self.ok(p, "txn", mops)
    }
    pub fn tfail(&mut self, p: i64, mops: Value) -> &mut Self {
        self.ev(p, "fail", "txn", mops)
    }
    /// A txn invoked and completed at once (sequential).
    pub fn txn(&mut self, p: i64, mops: Value) -> &mut Self {
        self.tinv(p, mops.clone()).tok(p, mops)
    }
    pub fn jsonl(&self) -> String {
        self.lines.iter().map(|l| format!("{l}\n")).collect()
    }
    pub fn build(&self) -> History {
        History::parse_jsonl(&self.jsonl()).unwrap()
    }
}

/// Run all txns concurrently: every invoke, then every completion.
pub fn concurrent(txns: &[(i64, Value)]) -> History {
    let mut b = B::new();
    for (p, m) in txns {
        b.tinv(*p, m.clone());
    }
    for (p, m) in txns {
        b.tok(*p, m.clone());
    }
    b.build()
}
