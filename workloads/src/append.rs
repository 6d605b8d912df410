//! The `append` workload (harness.md §4): transactions of 1–4 micro-ops `append`/`r`
//! over a small rotating key set, every appended value unique per key, so Elle can
//! recover version orders from reads.

use crate::keys::RotatingKeys;
use crate::ops::{result_at, Completion, Invocation, Workload, WorkloadKind};
use rand::RngCore;
use rollcall_node_core::types::{Op, OpResult, TxOutcome, Value};
use serde_json::{json, Value as Json};

/// Keys open for appends at once.
pub const ACTIVE_KEYS: usize = 4;
/// Appends to one key before it is retired and a fresh key replaces it (keeps
/// reads short and Elle's graphs small).
pub const APPENDS_PER_KEY: i64 = 32;

/// The list-append generator.
#[derive(Debug, Clone)]
pub struct Append {
    keys: RotatingKeys,
}

impl Default for Append {
    fn default() -> Self {
        Append {
            keys: RotatingKeys::new("k", ACTIVE_KEYS, APPENDS_PER_KEY),
        }
    }
}

impl Workload for Append {
    fn kind(&self) -> WorkloadKind {
        WorkloadKind::Append
    }

    fn invoke(&mut self, rng: &mut dyn RngCore, _process: u64) -> Invocation {
        self.keys.txn(rng, |k, v| {
            (Op::Append(k.to_string(), v), json!(["append", k, v]))
        })
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
        self.keys.final_reads()
    }
}
