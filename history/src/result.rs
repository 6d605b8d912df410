//! The result every checker returns, and how results combine (harness.md §7:
//! "invalid beats unknown beats valid"; "each failure names the operations").

use serde::{Deserialize, Serialize};
use std::time::Instant;

use crate::history::History;

/// A checker's verdict. Ordered so that the worst verdict is the maximum:
/// composing results is then just taking the max (harness.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Validity {
    /// The property holds on this history.
    Valid,
    /// The checker could not decide (time limit, malformed operations).
    Unknown,
    /// The property is violated; the anomalies say where.
    Invalid,
}

impl Validity {
    /// Combine two verdicts: invalid beats unknown beats valid (harness.md §7).
    pub fn and(self, other: Validity) -> Validity {
        self.max(other)
    }

    /// The Jepsen exit code for this verdict (harness.md §3: 0 valid, 1 invalid,
    /// 2 unknown), so the CLI does not have to re-derive it.
    pub fn exit_code(self) -> i32 {
        match self {
            Validity::Valid => 0,
            Validity::Invalid => 1,
            Validity::Unknown => 2,
        }
    }
}

/// One violation found by a checker, with the operations that show it, so the
/// report can explain each failure (harness.md §7, §8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// Short machine name: "G1c", "lost-write", "nonlinearizable", ...
    pub kind: String,
    /// A human explanation of what was observed.
    pub explanation: String,
    /// History indices of the operations involved (invoke indices unless said).
    pub ops: Vec<u64>,
    /// Structured evidence, e.g. a cycle's edges.
    pub extra: serde_json::Value,
}

/// What one checker concluded about one history; serialised into `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The checker's name (harness.md §7 table), e.g. "elle-append".
    pub checker: String,
    /// The verdict.
    pub validity: Validity,
    /// One human sentence summarising the verdict.
    pub summary: String,
    /// Every violation found (possibly capped per kind by the checker).
    pub anomalies: Vec<Anomaly>,
    /// Checker-specific numbers and evidence.
    pub details: serde_json::Value,
    /// Wall time the check took, in milliseconds.
    pub elapsed_ms: f64,
}

impl CheckResult {
    /// A checker that recognised none of the history's operations has checked
    /// nothing and cannot call it valid (issue 14; harness.md §7 "a checker that
    /// could not understand its input says unknown"): turn such a `valid` into
    /// `unknown`, saying what was missing.
    pub fn unknown_if_none(mut self, recognised: usize, what: &str) -> CheckResult {
        if recognised == 0 && self.validity == Validity::Valid {
            self.validity = Validity::Unknown;
            self.summary = format!("no {what} in the history: nothing to check");
        }
        self
    }
}

/// A history checker. Object-safe so the CLI can hold a `Vec<Box<dyn Checker>>`.
pub trait Checker {
    /// The checker's name as it appears in results (harness.md §7).
    fn name(&self) -> &str;
    /// Check a history. Must never panic and never hang, whatever the history.
    fn check(&self, h: &History) -> CheckResult;
}

/// The overall verdict of several checkers: invalid beats unknown beats valid
/// (harness.md §7). No results at all is valid (nothing was violated).
pub fn compose(results: &[CheckResult]) -> Validity {
    results
        .iter()
        .map(|r| r.validity)
        .fold(Validity::Valid, Validity::and)
}

/// Every checker's result on a run and their composed verdict: what
/// `results.json` holds (harness.md §7, §8).
#[derive(Debug, Clone, PartialEq)]
pub struct Results {
    /// One per checker, in the order they ran.
    pub results: Vec<CheckResult>,
    /// Invalid beats unknown beats valid (harness.md §7).
    pub valid: Validity,
}

impl Results {
    /// The results with their composed verdict.
    pub fn new(results: Vec<CheckResult>) -> Results {
        Results {
            valid: compose(&results),
            results,
        }
    }

    /// The `results.json` document: `{"checkers": [...], "valid": ...}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "valid": self.valid,
            "checkers": self.results,
        })
    }
}

/// Run `f` and stamp its result with the elapsed time, so every checker is timed
/// the same way.
pub fn timed(f: impl FnOnce() -> CheckResult) -> CheckResult {
    let start = Instant::now();
    let mut r = f();
    r.elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(v: Validity) -> CheckResult {
        CheckResult {
            checker: "x".into(),
            validity: v,
            summary: String::new(),
            anomalies: vec![],
            details: serde_json::Value::Null,
            elapsed_ms: 0.0,
        }
    }

    #[test]
    fn invalid_beats_unknown_beats_valid() {
        use Validity::*;
        assert_eq!(compose(&[]), Valid);
        assert_eq!(compose(&[r(Valid), r(Valid)]), Valid);
        assert_eq!(compose(&[r(Valid), r(Unknown)]), Unknown);
        assert_eq!(compose(&[r(Unknown), r(Invalid), r(Valid)]), Invalid);
        assert_eq!(compose(&[r(Invalid), r(Unknown)]), Invalid);
        assert_eq!(Valid.exit_code(), 0);
        assert_eq!(Invalid.exit_code(), 1);
        assert_eq!(Unknown.exit_code(), 2);
    }

    #[test]
    fn result_round_trips_through_json() {
        let mut x = r(Validity::Invalid);
        x.anomalies.push(Anomaly {
            kind: "G0".into(),
            explanation: "e".into(),
            ops: vec![1, 2],
            extra: serde_json::json!({"a": 1}),
        });
        let s = serde_json::to_string(&x).unwrap();
        assert!(s.contains("\"invalid\""));
        let y: CheckResult = serde_json::from_str(&s).unwrap();
        assert_eq!(x, y);
    }
}
