//! The node-side checkers of harness.md §7: `chain-agreement`, `roster-agreement`,
//! `eviction`, `add-node` and `liveness`, over the per-node chain dumps of a run.
//!
//! Every node's chain is replayed from the genesis by the checker itself
//! ([`replay`]) with the independent oracle of [`crate::oracle`]: the roster, epoch
//! and proposal window in force at every height are re-derived (AddNode validity,
//! roster changes and the eviction rule re-read from protocol.md §3–§5, not taken
//! from the node), every certificate is re-verified against the derived roster and
//! quorum, and the rule's answer is compared with each block's `evict` field. The
//! history supplies the nemesis events (add-node, fail-node, heal-all) and the
//! client operations the liveness checks look at.
//!
//! One file per checker: `chain_agreement.rs`, `roster_agreement.rs`,
//! `eviction.rs`, `add_node.rs`, `liveness.rs` (with `fault_windows.rs` and `gst.rs`); shared: [`replay`], `analysis.rs`,
//! `finding.rs`, `run.rs`. [`ClusterRun::load`] reads a stored run directory;
//! [`check_cluster`] returns one [`CheckResult`] per checker.

use crate::history::Process;
use crate::result::{timed, CheckResult};

mod add_node;
mod analysis;
mod chain_agreement;
mod eviction;
pub mod fault_windows;
mod finding;
#[cfg(test)]
pub(crate) mod fixture;
pub mod gst;
mod liveness;
pub mod replay;
mod roster_agreement;
mod run;
#[cfg(test)]
mod tests;

pub use crate::oracle::eviction::eviction_rule;
pub(crate) use analysis::{Analysis, Nemesis};
pub(crate) use finding::{result, Finding};
pub use replay::NodeReplay;
pub use run::{ClusterError, ClusterRun, NodeDump};

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
/// `roster[(h + r) mod n]` (protocol.md §1); no transaction id is committed twice
/// and no block exceeds `max_block_txs` (protocol.md §3).
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

cluster_checker!(ChainAgreement, AGREEMENT, chain_agreement::check);
cluster_checker!(RosterAgreement, ROSTER, roster_agreement::check);
cluster_checker!(Eviction, EVICTION, eviction::check);
cluster_checker!(AddNodeChecker, ADD_NODE, add_node::check);
cluster_checker!(Liveness, LIVENESS, liveness::check);

/// Runs every node-side checker of harness.md §7 on a run, sharing one replay of
/// the chains: `chain-agreement`, `roster-agreement`, `eviction`, `add-node`,
/// `liveness`, in that order. The replay's time is counted in `chain-agreement`
/// (it is where the signatures are verified).
pub fn check_cluster(run: &ClusterRun) -> Vec<CheckResult> {
    let start = std::time::Instant::now();
    let an = Analysis::new(run);
    let replay_ms = start.elapsed().as_secs_f64() * 1000.0;
    let mut out = vec![
        timed(|| chain_agreement::check(run, &an)),
        timed(|| roster_agreement::check(run, &an)),
        timed(|| eviction::check(run, &an)),
        timed(|| add_node::check(run, &an)),
        timed(|| liveness::check(run, &an)),
    ];
    out[0].elapsed_ms += replay_ms;
    out
}

/// Client operations' process ids are numbers; nemesis events are not operations.
pub(crate) fn is_client(p: Process) -> bool {
    matches!(p, Process::Client(_))
}
