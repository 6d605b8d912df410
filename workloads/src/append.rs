//! The `append` workload (harness.md §4): transactions of 1–4 micro-ops `append`/`r`
//! over a small rotating key set, every appended value unique per key, so Elle can
//! recover version orders from reads.

use crate::ops::{result_at, Completion, Invocation, Workload, WorkloadKind};
use rand::{Rng, RngCore};
use rollcall_node_core::types::{Op, OpResult, TxOutcome, Value};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;

/// Keys open for appends at once.
pub const ACTIVE_KEYS: usize = 4;
/// Appends to one key before it is retired and a fresh key replaces it (keeps
/// reads short and Elle's graphs small).
pub const APPENDS_PER_KEY: i64 = 32;

/// The list-append generator.
#[derive(Debug, Clone)]
pub struct Append {
    active: Vec<u64>,
    next_key: u64,
    /// Last value appended per key (values count up from 1).
    last_value: BTreeMap<u64, i64>,
}

impl Default for Append {
    fn default() -> Self {
        Append {
            active: (0..ACTIVE_KEYS as u64).collect(),
            next_key: ACTIVE_KEYS as u64,
            last_value: BTreeMap::new(),
        }
    }
}

fn key_name(k: u64) -> String {
    format!("k{k}")
}

impl Workload for Append {
    fn kind(&self) -> WorkloadKind {
        WorkloadKind::Append
    }

    fn invoke(&mut self, rng: &mut dyn RngCore, _process: u64) -> Invocation {
        let n = rng.gen_range(1..=4);
        let mut ops = Vec::with_capacity(n);
        let mut value = Vec::with_capacity(n);
        for _ in 0..n {
            let slot = rng.gen_range(0..self.active.len());
            let k = self.active[slot];
            let name = key_name(k);
            if rng.gen_bool(0.5) {
                ops.push(Op::Read(name.clone()));
                value.push(json!(["r", name, null]));
            } else {
                let v = self.last_value.entry(k).or_insert(0);
                *v += 1;
                let v = *v;
                if v >= APPENDS_PER_KEY {
                    self.active[slot] = self.next_key;
                    self.next_key += 1;
                }
                ops.push(Op::Append(name.clone(), v));
                value.push(json!(["append", name, v]));
            }
        }
        Invocation {
            f: "txn".into(),
            value: Json::Array(value),
            ops,
        }
    }

    fn complete(&mut self, _process: u64, inv: &Invocation, outcome: &TxOutcome) -> Completion {
        if outcome.error.is_some() {
            return Completion::Fail(inv.value.clone());
        }
        let mut out = Vec::with_capacity(inv.ops.len());
        for (i, op) in inv.ops.iter().enumerate() {
            out.push(match (op, result_at(outcome, i)) {
                (Op::Read(k), Some(OpResult::Read(_, None))) => json!(["r", k, []]),
                (Op::Read(k), Some(OpResult::Read(_, Some(Value::List(l))))) => {
                    json!(["r", k, l])
                }
                // Anything else is a malformed answer: keep it visible for Elle.
                (Op::Read(k), Some(OpResult::Read(_, Some(Value::Int(x))))) => {
                    json!(["r", k, x])
                }
                (Op::Append(k, v), _) => json!(["append", k, v]),
                (op, _) => json!(["?", format!("{op:?}"), null]),
            });
        }
        Completion::Ok(Json::Array(out))
    }

    fn final_reads(&self) -> Vec<Invocation> {
        let keys: Vec<String> = (0..self.next_key).map(key_name).collect();
        keys.chunks(64)
            .map(|chunk| Invocation {
                f: "txn".into(),
                value: Json::Array(chunk.iter().map(|k| json!(["r", k, null])).collect()),
                ops: chunk.iter().map(|k| Op::Read(k.clone())).collect(),
            })
            .collect()
    }
}
