//! The `register` workload (harness.md §4, §6): single-key `read`/`write`/`cas` over
//! independent keys, checked for linearizability per key. Values are small so cas
//! often applies; keys rotate so per-key histories stay small for the search.

use crate::ops::{read_json, result_at, Completion, Invocation, Workload, WorkloadKind};
use rand::{Rng, RngCore};
use rollcall_node_core::types::{Op, OpResult, TxOutcome};
use serde_json::{json, Value as Json};

/// Keys in use at once.
pub const ACTIVE_KEYS: usize = 3;
/// Operations on one key before a fresh key replaces it.
pub const OPS_PER_KEY: u64 = 120;
/// Values are drawn from `0..VALUES`.
pub const VALUES: i64 = 5;

/// The register generator.
#[derive(Debug, Clone)]
pub struct Register {
    active: Vec<(u64, u64)>,
    next_key: u64,
}

impl Default for Register {
    fn default() -> Self {
        Register {
            active: (0..ACTIVE_KEYS as u64).map(|k| (k, 0)).collect(),
            next_key: ACTIVE_KEYS as u64,
        }
    }
}

fn key_name(k: u64) -> String {
    format!("r{k}")
}

impl Workload for Register {
    fn kind(&self) -> WorkloadKind {
        WorkloadKind::Register
    }

    fn invoke(&mut self, rng: &mut dyn RngCore, _process: u64) -> Invocation {
        let slot = rng.gen_range(0..self.active.len());
        let (k, used) = self.active[slot];
        self.active[slot] = if used + 1 >= OPS_PER_KEY {
            self.next_key += 1;
            (self.next_key - 1, 0)
        } else {
            (k, used + 1)
        };
        let key = key_name(k);
        match rng.gen_range(0..3) {
            0 => Invocation {
                f: "read".into(),
                value: json!([key, null]),
                ops: vec![Op::Read(key)],
            },
            1 => {
                let v = rng.gen_range(0..VALUES);
                Invocation {
                    f: "write".into(),
                    value: json!([key, v]),
                    ops: vec![Op::Write(key, v)],
                }
            }
            _ => {
                let (o, n) = (rng.gen_range(0..VALUES), rng.gen_range(0..VALUES));
                Invocation {
                    f: "cas".into(),
                    value: json!([key, [o, n]]),
                    ops: vec![Op::Cas(key, o, n)],
                }
            }
        }
    }

    fn complete(&mut self, _process: u64, inv: &Invocation, outcome: &TxOutcome) -> Completion {
        if outcome.error.is_some() {
            return Completion::Fail(inv.value.clone());
        }
        match (inv.ops.first(), result_at(outcome, 0)) {
            (Some(Op::Read(k)), Some(OpResult::Read(_, v))) => {
                Completion::Ok(json!([k, read_json(v)]))
            }
            (Some(Op::Cas(..)), Some(OpResult::Cas { applied: false, .. })) => {
                Completion::Fail(inv.value.clone())
            }
            _ => Completion::Ok(inv.value.clone()),
        }
    }

    fn final_reads(&self) -> Vec<Invocation> {
        (0..self.next_key)
            .map(|k| {
                let key = key_name(k);
                Invocation {
                    f: "read".into(),
                    value: json!([key, Json::Null]),
                    ops: vec![Op::Read(key)],
                }
            })
            .collect()
    }
}
