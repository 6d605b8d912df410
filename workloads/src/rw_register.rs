//! The `rw-register` workload (harness.md §4, issue 15): Elle's read-write register
//! transactions, 1–4 micro-ops `["r", k, null]` / `["w", k, v]` over a small
//! rotating key set, `f: "txn"`. Every value written to a key is unique (counting
//! up from 1), so a read names the one write it saw, which is what lets Elle's
//! rw-register analysis recover write-read and version order (jepsen-io/elle
//! `elle.rw-register`). Checked by `elle-rw-register` (harness.md §7).

use crate::keys::RotatingKeys;
use crate::ops::{read_json, result_at, Completion, Invocation, Workload, WorkloadKind};
use rand::RngCore;
use rollcall_node_core::types::{Op, OpResult, TxOutcome};
use serde_json::{json, Value as Json};

/// Keys open for writes at once: few, so transactions conflict.
pub const ACTIVE_KEYS: usize = 3;
/// Writes to one key before it is retired and a fresh key replaces it (keeps
/// each key's version graph small).
pub const WRITES_PER_KEY: i64 = 32;

/// The rw-register generator.
#[derive(Debug, Clone)]
pub struct RwRegister {
    keys: RotatingKeys,
}

impl Default for RwRegister {
    fn default() -> Self {
        RwRegister {
            keys: RotatingKeys::new("x", ACTIVE_KEYS, WRITES_PER_KEY),
        }
    }
}

impl Workload for RwRegister {
    fn kind(&self) -> WorkloadKind {
        WorkloadKind::RwRegister
    }

    fn invoke(&mut self, rng: &mut dyn RngCore, _process: u64) -> Invocation {
        self.keys.txn(rng, |k, v| {
            (Op::Write(k.to_string(), v), json!(["w", k, v]))
        })
    }

    fn complete(&mut self, _process: u64, inv: &Invocation, outcome: &TxOutcome) -> Completion {
        if outcome.error.is_some() {
            return Completion::Fail(inv.value.clone());
        }
        let out = inv
            .ops
            .iter()
            .enumerate()
            .map(|(i, op)| match (op, result_at(outcome, i)) {
                (Op::Read(k), Some(OpResult::Read(_, v))) => json!(["r", k, read_json(v)]),
                (Op::Write(k, v), _) => json!(["w", k, v]),
                // A malformed answer stays visible for the checker.
                (op, _) => json!(["?", format!("{op:?}"), null]),
            })
            .collect();
        Completion::Ok(Json::Array(out))
    }

    fn final_reads(&self) -> Vec<Invocation> {
        self.keys.final_reads()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rollcall_node_core::types::Value;

    #[test]
    fn writes_are_unique_per_key_and_keys_rotate() {
        let mut w = RwRegister::default();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut seen = std::collections::BTreeSet::new();
        let mut keys = std::collections::BTreeSet::new();
        for _ in 0..500 {
            let inv = w.invoke(&mut rng, 0);
            assert_eq!(inv.f, "txn");
            assert!((1..=4).contains(&inv.ops.len()));
            for op in &inv.ops {
                match op {
                    Op::Write(k, v) => {
                        assert!(seen.insert((k.clone(), *v)), "{k}={v} written twice");
                        keys.insert(k.clone());
                    }
                    Op::Read(k) => {
                        keys.insert(k.clone());
                    }
                    other => panic!("unexpected micro-op {other:?}"),
                }
            }
        }
        assert!(keys.len() > ACTIVE_KEYS, "keys never rotated: {keys:?}");
        assert_eq!(w.final_reads()[0].ops.len(), w.keys.used() as usize);
    }

    #[test]
    fn completions_carry_reads_and_failures() {
        let mut w = RwRegister::default();
        let inv = Invocation {
            f: "txn".into(),
            value: json!([["r", "x0", null], ["w", "x0", 1], ["r", "x1", null]]),
            ops: vec![
                Op::Read("x0".into()),
                Op::Write("x0".into(), 1),
                Op::Read("x1".into()),
            ],
        };
        let outcome = TxOutcome {
            height: 1,
            results: vec![
                OpResult::Read("x0".into(), Some(Value::Int(4))),
                OpResult::Write("x0".into(), 1),
                OpResult::Read("x1".into(), None),
            ],
            error: None,
        };
        assert_eq!(
            w.complete(0, &inv, &outcome),
            Completion::Ok(json!([["r", "x0", 4], ["w", "x0", 1], ["r", "x1", null]]))
        );
        let failed = TxOutcome {
            height: 1,
            results: Vec::new(),
            error: Some("rejected".into()),
        };
        assert_eq!(
            w.complete(0, &inv, &failed),
            Completion::Fail(inv.value.clone())
        );
    }
}
