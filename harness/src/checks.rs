//! Which checkers judge a run (harness.md §7) and the composed verdict: the
//! history checker of the workload, `set` against the longest final chain, and the
//! node-side checkers of `rollcall_checkers::cluster`.

use crate::backend::NodeDumpData;
use rollcall_checkers::cluster::{check_cluster, ClusterRun, NodeDump, DEFAULT_LIVENESS_BOUND_NS};
use rollcall_checkers::elle::{ElleChecker, ElleOptions, RwRegisterChecker};
use rollcall_checkers::linearizable::LinearizableChecker;
use rollcall_checkers::set::SetChecker;
use rollcall_checkers::{compose, CheckResult, Checker, History, Validity};
use rollcall_node::chain::ChainState;
use rollcall_node::types::{CommittedBlock, Genesis, OpResult};
use rollcall_workloads::WorkloadKind;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// How often each transaction id took effect in a chain (the `set` checker's
/// input). The chain is replayed from the genesis so that a transaction that was
/// ordered but changed nothing (rejected at execution, or only cas ops that did not
/// apply, which the register workload records as `fail`, harness.md §6) does not
/// count as applied.
pub fn tx_counts(genesis: &Genesis, chain: &[CommittedBlock]) -> BTreeMap<String, usize> {
    let mut state = ChainState::new(genesis.clone());
    let mut m = BTreeMap::new();
    for cb in chain {
        let applied = state.apply(&cb.block, cb.cert.clone());
        for (id, o) in applied.outcomes {
            let no_effect = o.error.is_some()
                || (!o.results.is_empty()
                    && o.results
                        .iter()
                        .all(|r| matches!(r, OpResult::Cas { applied: false, .. })));
            if !no_effect {
                *m.entry(id).or_insert(0) += 1;
            }
        }
    }
    m
}

/// What Elle must find absent (harness.md §7): `--model` (one or more
/// comma-separated consistency models) and `--anomalies` (Elle's `:anomalies`).
#[derive(Debug, Clone, Copy)]
pub struct Expectation<'a> {
    /// Consistency model(s) the history must satisfy.
    pub model: &'a str,
    /// Further anomalies that make the history invalid, comma-separated.
    pub anomalies: Option<&'a str>,
}

impl Expectation<'_> {
    /// The Elle checkers' options for this expectation.
    pub fn elle_options(&self) -> Result<ElleOptions, String> {
        let o = ElleOptions::with_models(self.model).map_err(|e| e.to_string())?;
        match self.anomalies {
            Some(a) => o.with_anomalies(a).map_err(|e| e.to_string()),
            None => Ok(o),
        }
    }
}

/// Elle's rw-register checker, for `rollcall check --workload rw-register`.
pub fn rw_register_checkers(expect: Expectation<'_>) -> Result<Vec<Box<dyn Checker>>, String> {
    Ok(vec![Box::new(RwRegisterChecker {
        opts: expect.elle_options()?,
    })])
}

/// True when the history's transactions write registers (`[w k v]`) rather
/// than append to lists: Elle's rw-register workload.
pub fn is_rw_register(h: &History) -> bool {
    h.ops()
        .iter()
        .filter(|o| o.f == "txn")
        .flat_map(|o| o.invoke_value.as_array().into_iter().flatten())
        .any(|m| m.get(0).and_then(Value::as_str) == Some("w"))
}

/// The history checkers for a workload (harness.md §7), `set` included when a
/// final chain is known.
pub fn history_checkers(
    workload: WorkloadKind,
    expect: Expectation<'_>,
    longest_chain: Option<(&Genesis, &[CommittedBlock])>,
) -> Result<Vec<Box<dyn Checker>>, String> {
    let mut out: Vec<Box<dyn Checker>> = match workload {
        WorkloadKind::Append => vec![Box::new(ElleChecker {
            opts: expect.elle_options()?,
        })],
        WorkloadKind::Register => vec![Box::new(LinearizableChecker::default())],
        WorkloadKind::Bank => vec![Box::new(rollcall_checkers::bank::BankChecker::new(
            rollcall_workloads::bank::total(),
        ))],
    };
    if let Some((genesis, chain)) = longest_chain {
        out.push(Box::new(SetChecker::new(tx_counts(genesis, chain))));
    }
    Ok(out)
}

/// Converts the backend's dumps into the cluster checkers' form.
pub fn node_dumps(dumps: &[NodeDumpData]) -> Vec<NodeDump> {
    dumps
        .iter()
        .map(|d| NodeDump {
            name: d.name.clone(),
            chain: d.chain.clone(),
            status: d.status.clone(),
            alive: d.alive,
        })
        .collect()
}

/// Every checker's result and the composed verdict: `results.json`.
pub struct Results {
    /// One per checker.
    pub results: Vec<CheckResult>,
    /// Invalid beats unknown beats valid (harness.md §7).
    pub valid: Validity,
}

impl Results {
    /// The `results.json` document.
    pub fn to_json(&self) -> Value {
        json!({
            "valid": self.valid,
            "checkers": self.results,
        })
    }
}

/// Runs every checker on a run.
pub fn check_run(
    workload: WorkloadKind,
    expect: Expectation<'_>,
    genesis: &Genesis,
    history: History,
    nodes: Vec<NodeDump>,
) -> Result<Results, String> {
    let longest = nodes
        .iter()
        .max_by_key(|n| n.chain.len())
        .map(|n| (genesis, n.chain.as_slice()));
    let mut results: Vec<CheckResult> = history_checkers(workload, expect, longest)?
        .iter()
        .map(|c| c.check(&history))
        .collect();
    let run = ClusterRun {
        genesis: genesis.clone(),
        nodes,
        history,
        liveness_bound_ns: DEFAULT_LIVENESS_BOUND_NS,
    };
    results.extend(check_cluster(&run));
    let valid = compose(&results);
    Ok(Results { results, valid })
}

/// Guesses a history's workload from its operations' `f`.
pub fn infer_workload(h: &History) -> Option<WorkloadKind> {
    let mut fs = h.ops().iter().map(|o| o.f.as_str());
    fs.find_map(|f| match f {
        "txn" => Some(WorkloadKind::Append),
        "transfer" => Some(WorkloadKind::Bank),
        "write" | "cas" => Some(WorkloadKind::Register),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(mops: Value) -> History {
        let ev = |i: u64, ty: &str| json!({"index": i, "time": i, "process": 0, "type": ty, "f": "txn", "value": mops});
        History::parse_jsonl(&format!("{}\n{}\n", ev(0, "invoke"), ev(1, "ok"))).unwrap()
    }

    #[test]
    fn register_writes_select_rw_register_and_anomalies_reach_elle() {
        assert!(is_rw_register(&history(json!([["w", "x", 1]]))));
        assert!(!is_rw_register(&history(json!([["append", "x", 1]]))));
        let e = Expectation {
            model: "read-committed,update-atomic",
            anomalies: Some("G1c,lost-update"),
        };
        let o = e.elle_options().unwrap();
        assert!(o.expect.anomalies.contains("G1c"));
        assert!(o.expect.models.contains("update-atomic"));
        let bad = Expectation {
            model: "serializable",
            anomalies: Some("nope"),
        };
        assert!(bad.elle_options().unwrap_err().contains("unknown anomaly"));
        let checkers = rw_register_checkers(e).unwrap();
        assert_eq!(checkers[0].name(), "elle-rw-register");
    }
}
