//! Which checkers judge a run (harness.md §7) and the composed verdict: the
//! history checker of the workload, `set` against the longest final chain, and the
//! node-side checkers of `rollcall_checkers::cluster`.

use crate::backend::NodeDumpData;
use rollcall_checkers::cluster::{check_cluster, ClusterRun, NodeDump, DEFAULT_LIVENESS_BOUND_NS};
use rollcall_checkers::elle::ElleChecker;
use rollcall_checkers::linearizable::LinearizableChecker;
use rollcall_checkers::set::SetChecker;
use rollcall_checkers::storage::NodeStorage;
use rollcall_checkers::{compose, CheckResult, Checker, History, Validity};
use rollcall_node::types::{CommittedBlock, Genesis};
use rollcall_workloads::WorkloadKind;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// How often each transaction id took effect in a chain (the `set` checker's
/// input). The chain is replayed from the genesis so that a transaction that was
/// ordered but changed nothing (rejected at execution, or only cas ops that did not
/// apply, which the register workload records as `fail`, harness.md §6) does not
/// count as applied.
pub fn tx_counts(genesis: &Genesis, chain: &[CommittedBlock]) -> BTreeMap<String, usize> {
    rollcall_checkers::oracle::ledger::tx_counts(genesis, chain)
}

/// The history checkers for a workload (harness.md §7), `set` included when a
/// final chain is known.
pub fn history_checkers(
    workload: WorkloadKind,
    model: &str,
    longest_chain: Option<(&Genesis, &[CommittedBlock])>,
) -> Result<Vec<Box<dyn Checker>>, String> {
    let mut out: Vec<Box<dyn Checker>> = match workload {
        WorkloadKind::Append => {
            vec![Box::new(
                ElleChecker::with_model(model).map_err(|e| e.to_string())?,
            )]
        }
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

/// The `equivocation` checker over the signed messages the backend recorded
/// (issue 13), or `None` where it records none (docker: the checker does not
/// apply there). Signers of Byzantine-by-design nodes are excluded.
pub fn equivocation(dumps: &[NodeDumpData]) -> Option<CheckResult> {
    let mut records = Vec::new();
    for d in dumps {
        records.extend(d.signed.as_ref()?.iter().cloned());
    }
    let byzantine: BTreeSet<String> = dumps
        .iter()
        .filter_map(|d| d.byzantine_key.clone())
        .collect();
    Some(rollcall_checkers::equivocation::check(
        Some(&records),
        &byzantine,
    ))
}

/// The `storage` view (issue 13) of a run: disk faults from the history, what
/// each node's store reported and why it stopped.
pub fn storage(history: &History, dumps: &[NodeDumpData]) -> CheckResult {
    let nodes: Vec<NodeStorage> = dumps
        .iter()
        .map(|d| NodeStorage {
            node: d.name.clone(),
            status: d.status.as_ref().map(|s| s["storage"].clone()),
            alive: d.alive,
            stopped: d.stopped.clone(),
        })
        .collect();
    rollcall_checkers::storage::check(history, &nodes)
}

/// Adds node-side results computed from the backend's dumps (not stored in the
/// run directory) to `r`, recomposing the verdict.
pub fn with_dump_checks(mut r: Results, history: &History, dumps: &[NodeDumpData]) -> Results {
    if dumps.is_empty() {
        return r;
    }
    r.results.extend(equivocation(dumps));
    r.results.push(storage(history, dumps));
    r.valid = compose(&r.results);
    r
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
    model: &str,
    genesis: &Genesis,
    history: History,
    nodes: Vec<NodeDump>,
) -> Result<Results, String> {
    let longest = nodes
        .iter()
        .max_by_key(|n| n.chain.len())
        .map(|n| (genesis, n.chain.as_slice()));
    let mut results: Vec<CheckResult> = history_checkers(workload, model, longest)?
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
