//! The node-side checkers of harness.md §7: `chain-agreement`, `roster-agreement`,
//! `eviction`, `add-node` and `liveness`, over the per-node chain dumps of a run.
//!
//! Every node's chain is replayed from the genesis by the checker itself
//! ([`replay`]): the roster, epoch and proposal window in force at every height are
//! re-derived (AddNode transactions that pass the node's `check_add_node`, then the
//! block's `evict`), every certificate is re-verified against the derived roster, and
//! the eviction rule of protocol.md §5 is evaluated by an independent implementation
//! ([`replay::eviction_rule`]) and compared with each block's `evict` field. The
//! history supplies the nemesis events (add-node, fail-node, heal-all) and the client
//! operations the liveness checks look at.
//!
//! [`ClusterRun::load`] reads a stored run directory; [`check_cluster`] returns one
//! [`CheckResult`] per checker.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rollcall_node_core::crypto::{NodeId, Verifier};
use rollcall_node_core::types::{CommittedBlock, Genesis};
use serde_json::{json, Value};

use crate::history::{History, HistoryError, Process};
use crate::result::{timed, Anomaly, CheckResult, Validity};

mod checks;
pub mod replay;
#[cfg(test)]
mod tests;

pub use replay::{eviction_rule, NodeReplay};

/// Name of the chain-agreement checker (harness.md §7).
pub const AGREEMENT: &str = "chain-agreement";
/// Name of the roster-agreement checker (harness.md §7).
pub const ROSTER: &str = "roster-agreement";
/// Name of the eviction checker (harness.md §7, protocol.md §5).
pub const EVICTION: &str = "eviction";
/// Name of the add-node checker (harness.md §7, protocol.md §4).
pub const ADD_NODE: &str = "add-node";
/// Name of the liveness checker (harness.md §7).
pub const LIVENESS: &str = "liveness";

/// The default bound within which the cluster must commit again after the final
/// heal (harness.md §7 `liveness`): 10 s.
pub const DEFAULT_LIVENESS_BOUND_NS: u64 = 10_000_000_000;

/// Anomalies of one kind kept in a result; the rest are only counted in `details`.
const MAX_PER_KIND: usize = 20;

/// One node's final state as dumped at the end of a run (harness.md §8 `nodes/<n>/`).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeDump {
    /// The node's name, e.g. "n1".
    pub name: String,
    /// Its committed chain from height 1, in order.
    pub chain: Vec<CommittedBlock>,
    /// The node's final `/status` JSON (protocol.md §7), if it answered.
    pub status: Option<Value>,
    /// Whether the node was running at the end of the test.
    pub alive: bool,
}

/// Everything the node-side checkers look at: the genesis, every node's dump, the
/// history (nemesis events and client operations) and the liveness bound.
#[derive(Debug, Clone)]
pub struct ClusterRun {
    /// The run's genesis (height 0).
    pub genesis: Genesis,
    /// Every node's dump.
    pub nodes: Vec<NodeDump>,
    /// The recorded history (harness.md §6).
    pub history: History,
    /// The bound of the liveness checks, in ns ([`DEFAULT_LIVENESS_BOUND_NS`]).
    pub liveness_bound_ns: u64,
}

/// Why a run directory could not be loaded; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A JSON file does not hold what it should.
    #[error("{path}: invalid {what}: {source}")]
    Json {
        /// The path.
        path: PathBuf,
        /// What the file should hold.
        what: &'static str,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The history could not be read.
    #[error("{path}: {source}")]
    History {
        /// The path.
        path: PathBuf,
        /// The history error (with its line).
        source: HistoryError,
    },
    /// An `alive` file holds neither "true" nor "false".
    #[error("{path}: expected \"true\" or \"false\", found {found:?}")]
    BadAlive {
        /// The path.
        path: PathBuf,
        /// What it held (first 40 characters).
        found: String,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, ClusterError> {
    std::fs::read(path).map_err(|source| ClusterError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<T, ClusterError> {
    let bytes = read(path)?;
    serde_json::from_slice(&bytes).map_err(|source| ClusterError::Json {
        path: path.to_path_buf(),
        what,
        source,
    })
}

impl ClusterRun {
    /// Reads a run directory (harness.md §8): `genesis.json`, `history.jsonl`, and for
    /// every directory `nodes/<n>/` that holds a `chain.json` (a JSON array of
    /// `CommittedBlock`): the chain, `status.json` (optional) and `alive` (optional,
    /// "true"/"false", default true). Directories without `chain.json` (e.g. only a
    /// log) are skipped. Nodes are sorted by name. Never panics.
    pub fn load(run_dir: &Path) -> Result<ClusterRun, ClusterError> {
        let genesis: Genesis = read_json(&run_dir.join("genesis.json"), "genesis")?;
        let hpath = run_dir.join("history.jsonl");
        let history = History::from_file(&hpath).map_err(|source| ClusterError::History {
            path: hpath.clone(),
            source,
        })?;
        let ndir = run_dir.join("nodes");
        let mut nodes = Vec::new();
        if ndir.exists() {
            let entries = std::fs::read_dir(&ndir).map_err(|source| ClusterError::Io {
                path: ndir.clone(),
                source,
            })?;
            let mut dirs = Vec::new();
            for e in entries {
                let e = e.map_err(|source| ClusterError::Io {
                    path: ndir.clone(),
                    source,
                })?;
                let p = e.path();
                if p.is_dir() && p.join("chain.json").exists() {
                    dirs.push(p);
                }
            }
            dirs.sort();
            for d in dirs {
                let name = d
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let chain: Vec<CommittedBlock> = read_json(
                    &d.join("chain.json"),
                    "chain dump (array of CommittedBlock)",
                )?;
                let spath = d.join("status.json");
                let status = if spath.exists() {
                    Some(read_json::<Value>(&spath, "status JSON")?)
                } else {
                    None
                };
                let apath = d.join("alive");
                let alive = if apath.exists() {
                    let raw = read(&apath)?;
                    let text = String::from_utf8_lossy(&raw);
                    match text.trim() {
                        "true" => true,
                        "false" => false,
                        other => {
                            return Err(ClusterError::BadAlive {
                                path: apath,
                                found: other.chars().take(40).collect(),
                            })
                        }
                    }
                } else {
                    true
                };
                nodes.push(NodeDump {
                    name,
                    chain,
                    status,
                    alive,
                });
            }
        }
        Ok(ClusterRun {
            genesis,
            nodes,
            history,
            liveness_bound_ns: DEFAULT_LIVENESS_BOUND_NS,
        })
    }
}

/// One observation of a checker, before it becomes an [`Anomaly`]: findings that
/// differ only by node are merged, so a defect every node holds is reported once.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    pub checker: &'static str,
    pub kind: String,
    pub severity: Validity,
    pub height: Option<u64>,
    pub nodes: BTreeSet<String>,
    pub explanation: String,
    pub extra: Value,
    pub ops: Vec<u64>,
}

impl Finding {
    pub(crate) fn new(
        checker: &'static str,
        kind: &str,
        severity: Validity,
        height: Option<u64>,
        node: &str,
        explanation: String,
        extra: Value,
    ) -> Finding {
        let mut nodes = BTreeSet::new();
        if !node.is_empty() {
            nodes.insert(node.to_string());
        }
        Finding {
            checker,
            kind: kind.to_string(),
            severity,
            height,
            nodes,
            explanation,
            extra,
            ops: Vec::new(),
        }
    }

    pub(crate) fn with_ops(mut self, ops: Vec<u64>) -> Finding {
        self.ops = ops;
        self
    }

    fn into_anomaly(self) -> Anomaly {
        let mut extra = match self.extra {
            Value::Object(m) => m,
            Value::Null => serde_json::Map::new(),
            other => {
                let mut m = serde_json::Map::new();
                m.insert("data".into(), other);
                m
            }
        };
        if let Some(h) = self.height {
            extra.insert("height".into(), json!(h));
        }
        if !self.nodes.is_empty() {
            extra.insert("nodes".into(), json!(self.nodes));
        }
        extra.insert("severity".into(), json!(self.severity));
        let nodes = if self.nodes.is_empty() {
            String::new()
        } else {
            format!(
                " [{}]",
                self.nodes.iter().cloned().collect::<Vec<_>>().join(",")
            )
        };
        Anomaly {
            kind: self.kind,
            explanation: format!("{}{nodes}", self.explanation),
            ops: self.ops,
            extra: Value::Object(extra),
        }
    }
}

/// Merges findings that differ only by node.
fn merge(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    let mut index: BTreeMap<(String, Option<u64>, String), usize> = BTreeMap::new();
    for f in findings {
        let key = (f.kind.clone(), f.height, f.explanation.clone());
        match index.get(&key) {
            Some(&i) => out[i].nodes.extend(f.nodes),
            None => {
                index.insert(key, out.len());
                out.push(f);
            }
        }
    }
    out
}

/// A nemesis event of the history, with the fields of the harness convention.
#[derive(Debug, Clone)]
pub(crate) struct Nemesis {
    pub index: u64,
    pub time: u64,
    pub f: String,
    pub phase: Option<String>,
    pub node: Option<String>,
    pub id: Option<NodeId>,
    pub acknowledged: Option<bool>,
    pub height: Option<u64>,
}

fn nemesis_events(h: &History) -> Vec<Nemesis> {
    h.nemesis_events()
        .map(|e| {
            let v = &e.value;
            let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
            Nemesis {
                index: e.index,
                time: e.time,
                f: e.f.clone(),
                phase: s("phase"),
                node: s("node"),
                id: s("id").and_then(|x| NodeId::from_hex(&x).ok()),
                acknowledged: v.get("acknowledged").and_then(Value::as_bool),
                height: v.get("height").and_then(Value::as_u64),
            }
        })
        .collect()
}

/// Everything the checkers share: every node's replay, the merged findings of the
/// replays, the nemesis events and the node-name → id map.
pub(crate) struct Analysis {
    pub replays: Vec<NodeReplay>,
    pub findings: Vec<Finding>,
    pub nemesis: Vec<Nemesis>,
    /// Name → id, from each node's status and the nemesis events.
    pub ids: BTreeMap<String, NodeId>,
    /// Index of the longest replay (alive nodes first on ties).
    pub canonical: Option<usize>,
}

impl Analysis {
    pub(crate) fn new(run: &ClusterRun) -> Analysis {
        let verifier = Verifier::new();
        let mut findings = Vec::new();
        let replays: Vec<NodeReplay> = run
            .nodes
            .iter()
            .map(|n| replay::replay(&run.genesis, &n.name, &n.chain, &verifier, &mut findings))
            .collect();
        let nemesis = nemesis_events(&run.history);
        let mut ids = BTreeMap::new();
        for n in &run.nodes {
            if let Some(id) = n
                .status
                .as_ref()
                .and_then(|s| s.get("id"))
                .and_then(Value::as_str)
                .and_then(|s| NodeId::from_hex(s).ok())
            {
                ids.insert(n.name.clone(), id);
            }
        }
        for e in &nemesis {
            if let (Some(n), Some(id)) = (&e.node, e.id) {
                ids.entry(n.clone()).or_insert(id);
            }
        }
        let canonical = replays
            .iter()
            .enumerate()
            .max_by_key(|(i, r)| (r.len(), run.nodes[*i].alive, std::cmp::Reverse(*i)))
            .map(|(i, _)| i);
        Analysis {
            replays,
            findings,
            nemesis,
            ids,
            canonical,
        }
    }

    pub(crate) fn canonical(&self) -> Option<&NodeReplay> {
        self.canonical.and_then(|i| self.replays.get(i))
    }

    /// The replay of the node named `name`.
    pub(crate) fn replay_of(&self, name: &str) -> Option<&NodeReplay> {
        self.replays.iter().find(|r| r.name == name)
    }

    fn findings_of(&self, checker: &str) -> Vec<Finding> {
        self.findings
            .iter()
            .filter(|f| f.checker == checker)
            .cloned()
            .collect()
    }
}

/// Turns a checker's findings and notes into its [`CheckResult`].
pub(crate) fn result(
    checker: &str,
    findings: Vec<Finding>,
    mut details: serde_json::Map<String, Value>,
    valid_summary: String,
) -> CheckResult {
    let findings = merge(findings);
    let validity = findings
        .iter()
        .map(|f| f.severity)
        .fold(Validity::Valid, Validity::and);
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut anomalies = Vec::new();
    for f in findings {
        let c = by_kind.entry(f.kind.clone()).or_insert(0);
        *c += 1;
        if *c <= MAX_PER_KIND {
            anomalies.push(f.into_anomaly());
        }
    }
    let summary = match validity {
        Validity::Valid => valid_summary,
        _ => {
            let kinds: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
            format!("{}: {}", validity_word(validity), kinds.join(", "))
        }
    };
    details.insert("anomaly_counts".into(), json!(by_kind));
    CheckResult {
        checker: checker.to_string(),
        validity,
        summary,
        anomalies,
        details: Value::Object(details),
        elapsed_ms: 0.0,
    }
}

fn validity_word(v: Validity) -> &'static str {
    match v {
        Validity::Valid => "valid",
        Validity::Unknown => "unknown",
        Validity::Invalid => "invalid",
    }
}

/// A node-side checker: looks at a whole [`ClusterRun`] (chains and history), unlike
/// the history-only [`crate::result::Checker`].
pub trait ClusterChecker {
    /// The checker's name as it appears in results (harness.md §7).
    fn name(&self) -> &'static str;
    /// Check a run. Never panics, whatever the dumps hold.
    fn check(&self, run: &ClusterRun) -> CheckResult;
}

/// `chain-agreement` (harness.md §7): no two nodes hold different blocks at one
/// height; every certificate (`cert` and `last_commit`) has `q(n)` valid distinct
/// signatures from the roster of its epoch (protocol.md §2); every `prev_hash` links
/// to the previous block (the genesis hash for height 1); every proposer is
/// `roster[(h + r) mod n]` (protocol.md §1).
#[derive(Debug, Clone, Copy, Default)]
pub struct ChainAgreement;

/// `roster-agreement` (harness.md §7): all nodes derive the same roster at every
/// height; each block's `roster_hash` and `epoch` match the roster and epoch derived
/// by replaying AddNode and eviction from the genesis (protocol.md §4.2, §5); each
/// node's final `/status` roster and epoch equal the derived ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct RosterAgreement;

/// `eviction` (harness.md §7, protocol.md §5): the rule, recomputed independently at
/// every height, equals each block's `evict`; every `fail-node` victim is evicted
/// once the window could fill after its failure (Unknown when the run was too short).
#[derive(Debug, Clone, Copy, Default)]
pub struct Eviction;

/// `add-node` (harness.md §7, protocol.md §4): every acknowledged AddNode is in the
/// roster from its height on; the new node's chain equals the others'; it proposes
/// or signs after joining; the network kept committing while it was added.
#[derive(Debug, Clone, Copy, Default)]
pub struct AddNodeChecker;

/// `liveness` (harness.md §7): after the final `heal-all`, a client operation
/// completes `ok` within the bound and the alive roster members' chains grew.
#[derive(Debug, Clone, Copy, Default)]
pub struct Liveness;

macro_rules! cluster_checker {
    ($t:ty, $name:expr, $f:path) => {
        impl ClusterChecker for $t {
            fn name(&self) -> &'static str {
                $name
            }
            fn check(&self, run: &ClusterRun) -> CheckResult {
                timed(|| {
                    let an = Analysis::new(run);
                    $f(run, &an)
                })
            }
        }
    };
}

cluster_checker!(ChainAgreement, AGREEMENT, checks::chain_agreement);
cluster_checker!(RosterAgreement, ROSTER, checks::roster_agreement);
cluster_checker!(Eviction, EVICTION, checks::eviction);
cluster_checker!(AddNodeChecker, ADD_NODE, checks::add_node);
cluster_checker!(Liveness, LIVENESS, checks::liveness);

/// Runs every node-side checker of harness.md §7 on a run, sharing one replay of
/// the chains: `chain-agreement`, `roster-agreement`, `eviction`, `add-node`,
/// `liveness`, in that order. The replay's time is counted in `chain-agreement`
/// (it is where the signatures are verified).
pub fn check_cluster(run: &ClusterRun) -> Vec<CheckResult> {
    let start = std::time::Instant::now();
    let an = Analysis::new(run);
    let replay_ms = start.elapsed().as_secs_f64() * 1000.0;
    let mut out = vec![
        timed(|| checks::chain_agreement(run, &an)),
        timed(|| checks::roster_agreement(run, &an)),
        timed(|| checks::eviction(run, &an)),
        timed(|| checks::add_node(run, &an)),
        timed(|| checks::liveness(run, &an)),
    ];
    out[0].elapsed_ms += replay_ms;
    out
}

/// Client operations' process ids are numbers; nemesis events are not operations.
pub(crate) fn is_client(p: Process) -> bool {
    matches!(p, Process::Client(_))
}
