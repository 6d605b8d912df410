//! Per-workload sub-histories of a `mixed` run (harness.md §4 `mixed`: "each checked
//! by its own checker"). A history checker sees only the operations of its own
//! workload, so a read of another workload's key cannot confuse it and a planted
//! anomaly in one workload makes only that workload's checker invalid.

use rollcall_checkers::{CheckResult, Checker, Event, History, Process, Validity};
use rollcall_workloads::mixed::SubWorkload;
use rollcall_workloads::WorkloadKind;
use std::collections::HashMap;

/// The sub-history of `h` holding the client operations of `part` (by their
/// invoke's `f` and value, [`SubWorkload::of`]) and every nemesis event. Indexes
/// stay as recorded (still increasing), so times and event numbers in anomalies
/// point into the full history. Fails only if `h` itself pairs no invoke to a
/// completion (a lenient parse) in a way a strict history cannot hold.
pub fn sub_history(h: &History, part: WorkloadKind) -> Result<History, String> {
    // Per client process: whether its pending invoke belongs to `part`.
    let mut pending: HashMap<Process, bool> = HashMap::new();
    let mut events: Vec<Event> = Vec::new();
    for e in h.events() {
        let keep = match e.process {
            Process::Nemesis => true,
            p if e.kind == rollcall_checkers::OpType::Invoke => {
                let mine = SubWorkload::of(&e.f, &e.value) == Some(part);
                pending.insert(p, mine);
                mine
            }
            p => pending.remove(&p).unwrap_or(false),
        };
        if keep {
            events.push(e.clone());
        }
    }
    History::from_events(events).map_err(|e| e.to_string())
}

/// A history checker that judges only one workload's sub-history of a mixed run.
/// Its name and result are the inner checker's, so reports read as for a single
/// workload; `details.mixed_ops` says how many operations it was given.
pub struct PartChecker {
    /// The workload whose operations the inner checker sees.
    pub part: WorkloadKind,
    /// The workload's own checker (harness.md §7).
    pub inner: Box<dyn Checker>,
}

impl Checker for PartChecker {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn check(&self, h: &History) -> CheckResult {
        let sub = match sub_history(h, self.part) {
            Ok(sub) => sub,
            Err(e) => {
                return CheckResult {
                    checker: self.name().into(),
                    validity: Validity::Unknown,
                    summary: format!("could not split out the {} operations: {e}", self.part),
                    anomalies: vec![],
                    details: serde_json::json!({ "mixed_ops": 0 }),
                    elapsed_ms: 0.0,
                }
            }
        };
        let mut r = self.inner.check(&sub);
        if let Some(d) = r.details.as_object_mut() {
            d.insert("mixed_ops".into(), sub.ops().len().into());
        }
        r
    }
}
