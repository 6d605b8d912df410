//! Which checkers judge a run (harness.md §7) and the composed verdict: the
//! history checker of the workload, `set` against the longest final chain, and the
//! node-side checkers of `rollcall_checkers::cluster`.

use crate::backend::NodeDumpData;
use rollcall_checkers::cluster::fault_windows::{FaultTiming, RoundTimeouts};
use rollcall_checkers::cluster::{check_cluster, ClusterRun, NodeDump, DEFAULT_LIVENESS_BOUND_NS};
use rollcall_checkers::elle::{ElleChecker, ElleOptions, RwRegisterChecker};
use rollcall_checkers::linearizable::LinearizableChecker;
use rollcall_checkers::set::SetChecker;
use rollcall_checkers::storage::NodeStorage;
use rollcall_checkers::{compose, CheckResult, Checker, History};
use rollcall_node::types::{CommittedBlock, Genesis};
use rollcall_workloads::WorkloadKind;
use std::collections::{BTreeMap, BTreeSet};

/// How often each transaction id took effect in a chain (the `set` checker's
/// input). The chain is replayed from the genesis so that a transaction that was
/// ordered but changed nothing (rejected at execution, or only cas ops that did not
/// apply, which the register workload records as `fail`, harness.md §6) does not
/// count as applied.
pub fn tx_counts(genesis: &Genesis, chain: &[CommittedBlock]) -> BTreeMap<String, usize> {
    rollcall_checkers::oracle::ledger::tx_counts(genesis, chain)
}

/// The name of the history checker that judges each workload (harness.md §7);
/// a mixed run is judged by the checkers of its parts ([`history_checkers`]), named
/// here by its first.
pub fn checker_name(workload: WorkloadKind) -> &'static str {
    match workload {
        WorkloadKind::Append | WorkloadKind::Mixed => "elle-append",
        WorkloadKind::Register => "linearizable",
        WorkloadKind::Bank => "bank",
        WorkloadKind::RwRegister => "elle-rw-register",
    }
}

/// What Elle must find absent (harness.md §7): `--model` (one or more
/// comma-separated consistency models) and `--anomalies` (Elle's `:anomalies`).
#[derive(Debug, Clone, Copy)]
pub struct Expectation<'a> {
    /// Consistency model(s) the history must satisfy.
    pub model: &'a str,
    /// Further anomalies that make the history invalid, comma-separated.
    pub anomalies: Option<&'a str>,
    /// Elle's `:wfr-keys?` for rw-register (`--wfr-keys`).
    pub wfr_keys: bool,
    /// Elle's `:sequential-keys?` for rw-register (`--sequential-keys`).
    pub sequential_keys: bool,
    /// Elle's `:linearizable-keys?` for rw-register (`--linearizable-keys`).
    pub linearizable_keys: bool,
}

impl<'a> Expectation<'a> {
    /// Just a model, no extra anomalies.
    pub fn model(model: &'a str) -> Self {
        Expectation {
            model,
            anomalies: None,
            wfr_keys: false,
            sequential_keys: false,
            linearizable_keys: false,
        }
    }

    /// The Elle checkers' options for this expectation.
    pub fn elle_options(&self) -> Result<ElleOptions, String> {
        let mut o = ElleOptions::with_models(self.model).map_err(|e| e.to_string())?;
        o.wfr_keys = self.wfr_keys;
        o.sequential_keys = self.sequential_keys;
        o.linearizable_keys = self.linearizable_keys;
        match self.anomalies {
            Some(a) => o.with_anomalies(a).map_err(|e| e.to_string()),
            None => Ok(o),
        }
    }
}

/// The history checker called `name` (harness.md §7 table).
fn checker_named(name: &str, expect: Expectation<'_>) -> Result<Box<dyn Checker>, String> {
    Ok(match name {
        "elle-append" => Box::new(ElleChecker {
            opts: expect.elle_options()?,
        }),
        "elle-rw-register" => Box::new(RwRegisterChecker {
            opts: expect.elle_options()?,
        }),
        "linearizable" => Box::new(LinearizableChecker::default()),
        "bank" => Box::new(rollcall_checkers::bank::BankChecker::new(
            rollcall_workloads::bank::total(),
        )),
        other => return Err(format!("no history checker named {other:?} in this build")),
    })
}

/// Whether this build can judge `workload` under `expect` (its checker exists and
/// the model is known), so a run that could not be checked is refused before it
/// starts (exit 254).
pub fn can_check(workload: WorkloadKind, expect: Expectation<'_>) -> Result<(), String> {
    checker_named(checker_name(workload), expect).map(|_| ())
}

/// The history checkers for a workload (harness.md §7), `set` included when a
/// final chain is known.
pub fn history_checkers(
    workload: WorkloadKind,
    expect: Expectation<'_>,
    longest_chain: Option<(&Genesis, &[CommittedBlock])>,
) -> Result<Vec<Box<dyn Checker>>, String> {
    let mut out = match workload {
        // harness.md §4 `mixed`: each part's checker sees only its own operations.
        WorkloadKind::Mixed => rollcall_workloads::mixed::PARTS
            .into_iter()
            .map(|part| {
                let inner = checker_named(checker_name(part), expect)?;
                Ok(Box::new(crate::split::PartChecker { part, inner }) as Box<dyn Checker>)
            })
            .collect::<Result<Vec<_>, String>>()?,
        _ => vec![checker_named(checker_name(workload), expect)?],
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
            status: d.status.as_ref().and_then(|s| serde_json::to_value(s).ok()),
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
            status: d
                .status
                .as_ref()
                .and_then(|s| serde_json::to_value(&s.storage).ok()),
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

/// Every checker's result and the composed verdict: `results.json` (one type,
/// owned by `rollcall-history`, issue 11).
pub use rollcall_checkers::Results;

/// The timeouts `backend` runs its nodes with.
pub fn backend_timeouts(
    backend: crate::options::BackendKind,
) -> rollcall_node::consensus::Timeouts {
    match backend {
        crate::options::BackendKind::Sim => crate::sim::sim_timeouts(),
        crate::options::BackendKind::Docker => crate::docker_backend::docker_timeouts(),
    }
}

/// What the liveness checks while faults are in force and after an asynchronous
/// period (issue 16) derive their bounds from: the timeouts `backend` runs its nodes
/// with, and f of a cluster that can grow to `nodes` members.
pub fn fault_timing(backend: crate::options::BackendKind, nodes: usize) -> FaultTiming {
    let t = backend_timeouts(backend);
    let timeouts = RoundTimeouts {
        propose_ms: t.propose_ms,
        propose_delta_ms: t.propose_delta_ms,
        vote_ms: t.vote_ms,
        vote_delta_ms: t.vote_delta_ms,
        commit_ms: t.commit_ms,
    };
    let f = nodes.saturating_sub(rollcall_checkers::oracle::quorum::quorum(nodes));
    FaultTiming { timeouts, f }
}

/// The adversarial client's record as a run has it (issue 12): absent (it was
/// off), read, or unreadable (the `client-attacks` checker then says `unknown`).
pub type AttackRecord = Option<Result<Vec<rollcall_history::ClientAttack>, String>>;

/// The `client-attacks` checker over `attacks`, if the client ran.
fn client_attacks(attacks: &AttackRecord, nodes: &[NodeDump]) -> Option<CheckResult> {
    let name = rollcall_checkers::client_attacks::NAME;
    Some(match attacks.as_ref()? {
        Ok(a) => {
            rollcall_checkers::result::timed(|| rollcall_checkers::client_attacks::check(a, nodes))
        }
        Err(e) => CheckResult {
            checker: name.into(),
            validity: rollcall_checkers::Validity::Unknown,
            summary: format!("the adversarial client's record is unreadable: {e}"),
            anomalies: vec![],
            details: serde_json::json!({}),
            elapsed_ms: 0.0,
        },
    })
}

/// Runs every checker on a run; `fault_timing` enables the liveness checks while
/// faults are in force and after an asynchronous period ([`fault_timing`]);
/// `attacks` adds the `client-attacks` checker.
pub fn check_run(
    workload: WorkloadKind,
    expect: Expectation<'_>,
    genesis: &Genesis,
    history: History,
    nodes: Vec<NodeDump>,
    fault_timing: Option<FaultTiming>,
    attacks: AttackRecord,
) -> Result<Results, String> {
    let longest = nodes
        .iter()
        .max_by_key(|n| n.chain.len())
        .map(|n| (genesis, n.chain.as_slice()));
    let mut results: Vec<CheckResult> = history_checkers(workload, expect, longest)?
        .iter()
        .map(|c| c.check(&history))
        .collect();
    results.extend(client_attacks(&attacks, &nodes));
    let run = ClusterRun {
        genesis: genesis.clone(),
        nodes,
        history,
        liveness_bound_ns: DEFAULT_LIVENESS_BOUND_NS,
        fault_timing,
    };
    results.extend(check_cluster(&run));
    if rollcall_checkers::byzantine::has_adversaries(&run) {
        results.push(rollcall_checkers::result::timed(|| {
            rollcall_checkers::byzantine::check_byzantine(&run)
        }));
    }
    Ok(Results::new(results))
}

/// Guesses a history's workload from its operations' `f` (for `read`, the shape
/// of what was read: a bank read sees every account at once; for `txn`, the
/// micro-ops: `w` is a read-write register, `append` a list-append). Operations of
/// more than one of `mixed`'s parts make it `mixed`.
pub fn infer_workload(h: &History) -> Option<WorkloadKind> {
    let parts: std::collections::BTreeSet<WorkloadKind> = h
        .ops()
        .iter()
        .filter_map(|o| match o.f.as_str() {
            // Every txn is list-append's part; a compact txn value is not
            // turned into JSON to be told so (issue 15).
            "txn" => Some(WorkloadKind::Append),
            f => rollcall_workloads::mixed::SubWorkload::of(f, &o.invoke_value),
        })
        .collect();
    if parts.len() > 1 {
        return Some(WorkloadKind::Mixed);
    }
    let txn_kind = |v: &rollcall_history::OpValue| {
        if let Some(mut mops) = v.micro_ops() {
            return mops.find_map(|m| match m.f {
                rollcall_history::MopF::Write => Some(WorkloadKind::RwRegister),
                rollcall_history::MopF::Append => Some(WorkloadKind::Append),
                rollcall_history::MopF::Read => None,
            });
        }
        v.as_array()?
            .iter()
            .find_map(|m| match m.get(0)?.as_str()? {
                "w" => Some(WorkloadKind::RwRegister),
                "append" => Some(WorkloadKind::Append),
                _ => None,
            })
    };
    let mut txns = false;
    let found = h.ops().iter().find_map(|o| match o.f.as_str() {
        "txn" => {
            txns = true;
            txn_kind(o.value())
        }
        "transfer" => Some(WorkloadKind::Bank),
        "write" | "cas" => Some(WorkloadKind::Register),
        "read" if o.value().is_object() => Some(WorkloadKind::Bank),
        "read" => Some(WorkloadKind::Register),
        _ => None,
    });
    // Read-only transactions: list-append's reader judges them as before.
    found.or(txns.then_some(WorkloadKind::Append))
}
