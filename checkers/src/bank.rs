//! The `bank` checker (harness.md §7): every read sees the constant total and no
//! negative balance.

use serde_json::json;

use crate::history::{History, OpType};
use crate::result::{timed, Anomaly, CheckResult, Checker, Validity};

/// Checks every `ok` read of all accounts against the constant total.
#[derive(Debug, Clone)]
pub struct BankChecker {
    /// The sum every read must see.
    pub total: i64,
}

impl BankChecker {
    /// A checker for the given constant total.
    pub fn new(total: i64) -> Self {
        BankChecker { total }
    }
}

impl Checker for BankChecker {
    fn name(&self) -> &str {
        "bank"
    }

    fn check(&self, h: &History) -> CheckResult {
        timed(|| {
            let mut anomalies = Vec::new();
            let mut malformed = Vec::new();
            let mut reads = 0usize;
            for op in h.ops() {
                if op.f != "read" || op.kind != OpType::Ok {
                    continue;
                }
                let Some(accounts) = op.complete_value.as_ref().and_then(|v| v.as_object()) else {
                    malformed.push(op.invoke_index);
                    continue;
                };
                reads += 1;
                let mut sum: i128 = 0;
                let mut negative = Vec::new();
                let mut bad = false;
                for (acct, bal) in accounts {
                    match bal.as_i64() {
                        Some(b) => {
                            sum += i128::from(b);
                            if b < 0 {
                                negative.push((acct.clone(), b));
                            }
                        }
                        None => bad = true,
                    }
                }
                if bad {
                    malformed.push(op.invoke_index);
                    continue;
                }
                let ops = vec![op.invoke_index];
                if sum != i128::from(self.total) {
                    anomalies.push(Anomaly {
                        kind: "wrong-total".into(),
                        explanation: format!(
                            "read at index {} saw balances summing to {sum}, not the constant total {}",
                            op.invoke_index, self.total
                        ),
                        ops: ops.clone(),
                        extra: json!({"total": sum.to_string(), "expected": self.total, "balances": accounts}),
                    });
                }
                if !negative.is_empty() {
                    anomalies.push(Anomaly {
                        kind: "negative-balance".into(),
                        explanation: format!(
                            "read at index {} saw negative balance(s): {}",
                            op.invoke_index,
                            negative
                                .iter()
                                .map(|(a, b)| format!("{a}={b}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        ops,
                        extra: json!({"negative": negative}),
                    });
                }
            }
            let validity = if !anomalies.is_empty() {
                Validity::Invalid
            } else if !malformed.is_empty() {
                Validity::Unknown
            } else {
                Validity::Valid
            };
            let summary = match validity {
                Validity::Valid => format!("all {reads} reads saw the total {}", self.total),
                Validity::Invalid => format!(
                    "{} violation(s) in {reads} reads of the constant total {}",
                    anomalies.len(),
                    self.total
                ),
                Validity::Unknown => {
                    format!("{} read(s) could not be interpreted", malformed.len())
                }
            };
            CheckResult {
                checker: self.name().into(),
                validity,
                summary,
                anomalies,
                details: json!({
                    "reads": reads,
                    "total": self.total,
                    "malformed_reads": malformed.iter().take(50).collect::<Vec<_>>(),
                }),
                elapsed_ms: 0.0,
            }
            .unknown_if_none(reads + malformed.len(), "ok reads")
        })
    }
}
