//! The `set` checker (harness.md §7): every acknowledged transaction is in the
//! final chain exactly once; none lost, none duplicated.

use serde_json::json;
use std::collections::BTreeMap;

use crate::history::{History, OpType};
use crate::oracle::ledger::tx_counts;
use crate::oracle::wire::{CommittedBlock, Genesis};
use crate::result::{timed, Anomaly, CheckResult, Checker, Validity};

/// Compares the history's transaction ids with how often each appears in the
/// final chain.
#[derive(Debug, Clone, Default)]
pub struct SetChecker {
    /// tx id → number of times it appears in the final chain.
    pub committed: BTreeMap<String, usize>,
}

impl SetChecker {
    /// A checker against the final chain's transaction counts.
    pub fn new(committed: BTreeMap<String, usize>) -> Self {
        SetChecker { committed }
    }

    /// A checker against `chain`, replayed from `genesis` by the checkers' own
    /// ledger ([`crate::oracle::ledger::tx_counts`]): a transaction counts when it
    /// took effect, so one ordered but rejected or without effect does not.
    pub fn from_chain(genesis: &Genesis, chain: &[CommittedBlock]) -> Self {
        SetChecker::new(tx_counts(genesis, chain))
    }
}

#[derive(Default)]
struct Seen {
    ok: Vec<u64>,
    fail: Vec<u64>,
    info: Vec<u64>,
}

impl Checker for SetChecker {
    fn name(&self) -> &str {
        "set"
    }

    fn check(&self, h: &History) -> CheckResult {
        timed(|| {
            // A tx id may be retried by several ops; group them.
            let mut by_id: BTreeMap<&str, Seen> = BTreeMap::new();
            for op in h.ops() {
                let Some(id) = op.tx_id.as_deref() else {
                    continue;
                };
                let s = by_id.entry(id).or_default();
                match op.kind {
                    OpType::Ok => s.ok.push(op.invoke_index),
                    OpType::Fail => s.fail.push(op.invoke_index),
                    _ => s.info.push(op.invoke_index),
                }
            }
            let mut anomalies = Vec::new();
            let (mut lost, mut dup, mut failed, mut ok_count) = (0usize, 0usize, 0usize, 0usize);
            for (id, s) in &by_id {
                let n = self.committed.get(*id).copied().unwrap_or(0);
                let mut ops: Vec<u64> =
                    s.ok.iter().chain(&s.info).chain(&s.fail).copied().collect();
                ops.sort_unstable();
                let anomaly = |kind: &str, explanation: String| Anomaly {
                    kind: kind.into(),
                    explanation,
                    ops: ops.clone(),
                    extra: json!({"tx_id": id, "in_chain": n}),
                };
                if !s.ok.is_empty() {
                    ok_count += 1;
                    if n == 0 {
                        lost += 1;
                        anomalies.push(anomaly(
                            "lost",
                            format!("transaction {id} was acknowledged (op {:?}) but is not in the final chain", s.ok),
                        ));
                    } else if n > 1 {
                        dup += 1;
                        anomalies.push(anomaly(
                            "duplicated",
                            format!(
                                "transaction {id} (op {:?}) appears {n} times in the final chain",
                                s.ok
                            ),
                        ));
                    }
                } else if !s.info.is_empty() {
                    if n > 1 {
                        dup += 1;
                        anomalies.push(anomaly(
                            "duplicated",
                            format!("transaction {id} (indeterminate op {:?}) appears {n} times in the final chain", s.info),
                        ));
                    }
                } else if n > 0 {
                    failed += 1;
                    anomalies.push(anomaly(
                        "failed-but-committed",
                        format!("transaction {id} failed (op {:?}) yet appears {n} time(s) in the final chain", s.fail),
                    ));
                }
            }
            let unexpected: Vec<&String> = self
                .committed
                .iter()
                .filter(|(id, n)| **n > 0 && !by_id.contains_key(id.as_str()))
                .map(|(id, _)| id)
                .collect();
            let validity = if anomalies.is_empty() {
                Validity::Valid
            } else {
                Validity::Invalid
            };
            let summary = if anomalies.is_empty() {
                format!(
                    "all {ok_count} acknowledged transactions are in the final chain exactly once"
                )
            } else {
                format!("{lost} acknowledged transaction(s) lost, {dup} duplicated, {failed} failed but committed")
            };
            CheckResult {
                checker: self.name().into(),
                validity,
                summary,
                anomalies,
                details: json!({
                    "acknowledged": ok_count,
                    "tx_ids": by_id.len(),
                    "lost": lost,
                    "duplicated": dup,
                    "failed_but_committed": failed,
                    // In the chain but never submitted by a client: reported, not a violation
                    // (the harness's own transactions, e.g. AddNode, land there too).
                    "unexpected_in_chain": unexpected.iter().take(50).collect::<Vec<_>>(),
                    "unexpected_count": unexpected.len(),
                }),
                elapsed_ms: 0.0,
            }
            .unknown_if_none(by_id.len(), "operations with a transaction id")
        })
    }
}
