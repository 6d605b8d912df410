//! The interface every backend implements (harness.md §2): the run loop, workload,
//! nemesis schedule, history and checkers are the same code whichever backend runs
//! the cluster. A backend offers primitives (nodes, links, clients); what each
//! fault of harness.md §5 means is defined once, over them, in [`crate::nemesis`].

use rollcall_node::consensus::Status;
use rollcall_node::types::{CommittedBlock, Tx, TxOutcome};
use rollcall_workloads::DiskFault;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Identifies one submitted transaction until it completes.
pub type Ticket = u64;

/// What a client learned about its transaction (harness.md §6 `ok`/`fail`/`info`).
#[derive(Clone, Debug, PartialEq)]
pub enum ClientOutcome {
    /// Committed, with its outcome (which may still say the transaction was rejected
    /// at execution or a cas did not apply: the workload decides).
    Ok(TxOutcome),
    /// Certainly not applied (the node refused it or could not be reached).
    Fail(String),
    /// Unknown: it may apply now, later or never.
    Info(String),
}

/// A completion and the backend time (ns since the test began) it happened at.
#[derive(Clone, Debug, PartialEq)]
pub struct Completed {
    /// The submission.
    pub ticket: Ticket,
    /// When the client learned it.
    pub time_ns: u64,
    /// What it learned.
    pub outcome: ClientOutcome,
}

/// One node's final state, for the run store and the node-side checkers.
#[derive(Clone, Debug)]
pub struct NodeDumpData {
    /// "n1".."nK" (a duplicate-key node is "nI-dup").
    pub name: String,
    /// Its stored chain.
    pub chain: Vec<CommittedBlock>,
    /// `/status`, when the node is running: the node's own type, so a field the
    /// harness reads cannot drift from what the node reports.
    pub status: Option<Status>,
    /// Whether it was running at the end.
    pub alive: bool,
    /// Every signed proposal and vote this node sent (the `equivocation`
    /// checker's input), or `None` where the backend cannot see them (docker).
    pub signed: Option<Vec<rollcall_checkers::equivocation::SignedRecord>>,
    /// The node id (hex) of a node Byzantine by design (a duplicate-key twin), whose
    /// key the `equivocation` checker excludes; `None` for an honest node (and
    /// where the backend records no signed messages).
    pub byzantine_key: Option<String>,
    /// Why the node stopped itself (a failed write or sync, untrusted storage),
    /// where the backend knows.
    pub stopped: Option<String>,
}

impl NodeDumpData {
    /// The part the run directory stores (`nodes/<n>/`), in its one shape.
    pub fn files(&self) -> rollcall_history::NodeDump<&Vec<CommittedBlock>, &Status> {
        rollcall_history::NodeDump {
            name: self.name.clone(),
            chain: &self.chain,
            status: self.status.as_ref(),
            alive: self.alive,
        }
    }
}

/// Why a backend could not do what was asked: the harness failed (exit 255), not
/// the system under test.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A node named in a fault does not exist.
    #[error("no node named {0:?}")]
    UnknownNode(String),
    /// A node's stored chain could not be replayed on restart.
    #[error("node {node} cannot replay its own store: {reason}")]
    Replay {
        /// The node.
        node: String,
        /// What failed.
        reason: String,
    },
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// Where a node is in its life, as the nemesis sees it (harness.md §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// Known but never started (a spare before add-node, a twin before its start).
    NotStarted,
    /// Running and reachable.
    Running,
    /// Frozen: alive, answering nothing, until resumed.
    Paused,
    /// Killed, its disk kept: it may be restarted.
    Killed,
    /// Stopped for good (fail-node, a stopped twin): never restarted.
    Failed,
}

/// Node primitives every backend offers; [`crate::nemesis`] builds the §5 faults
/// from them. Each acts on one node by name and is called only from the states
/// its doc names (the nemesis checks [`NodeControl::node_state`] first).
pub trait NodeControl {
    /// Every node in a fixed order (roster nodes, spares, then twins as added).
    fn node_names(&self) -> Vec<String>;
    /// A node's state; `UnknownNode` for a name the backend does not know.
    fn node_state(&self, node: &str) -> Result<NodeState, BackendError>;
    /// Whether the node is a twin that shares another node's key (duplicate-key).
    fn is_twin(&self, node: &str) -> bool;
    /// The node's validator id, hex (a twin has its original's).
    fn node_id(&self, node: &str) -> Result<String, BackendError>;
    /// Running or Paused → Killed: SIGKILL; in-flight state is lost, the disk kept.
    fn kill(&mut self, node: &str) -> Result<(), BackendError>;
    /// Killed → Running: restart from its own disk.
    fn restart(&mut self, node: &str) -> Result<(), BackendError>;
    /// Running → Paused: freeze the process.
    fn pause(&mut self, node: &str) -> Result<(), BackendError>;
    /// Paused → Running: thaw it.
    fn resume(&mut self, node: &str) -> Result<(), BackendError>;
    /// Any → Failed: kill it (if it runs) and never restart it.
    fn stop_for_good(&mut self, node: &str) -> Result<(), BackendError>;
    /// NotStarted → Running: the first start of a spare or a twin, empty disk.
    fn start_new(&mut self, node: &str) -> Result<(), BackendError>;
    /// Registers `twin` (NotStarted) with `of`'s key and an empty disk.
    fn add_twin(&mut self, of: &str, twin: &str) -> Result<(), BackendError>;
    /// Makes these running validators Byzantine adversaries with `behaviour`
    /// (harness.md §5 `byzantine`); what was done, or `None` where this backend cannot
    /// run an adversary (the nemesis records the degradation).
    fn start_byzantine(
        &mut self,
        _nodes: &[String],
        _behaviour: rollcall_adversary::Behaviour,
    ) -> Result<Option<Value>, BackendError> {
        Ok(None)
    }
    /// Makes these nodes honest again; what their adversaries sent, or `None`.
    fn stop_byzantine(&mut self, _nodes: &[String]) -> Result<Option<Value>, BackendError> {
        Ok(None)
    }
    /// The final heal: every adversary honest again; their names.
    fn stop_all_byzantine(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// Runs the node's clock at `rate_pct` percent of true time after jumping it by
    /// `jump_ms` (harness.md §5 `clock`, issue 16); what was done, or `None` where
    /// this backend cannot change one node's clock (the nemesis records the
    /// degradation; never the host's clock).
    fn set_clock(
        &mut self,
        _node: &str,
        _rate_pct: u32,
        _jump_ms: i64,
    ) -> Result<Option<Value>, BackendError> {
        Ok(None)
    }
    /// The final heal: every clock at the true rate again; the nodes that were not.
    fn reset_clocks(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// Loss and duplication on one directed link (the `flaky` nemesis).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lossy {
    /// Percent of messages lost.
    pub loss_pct: u32,
    /// Percent of messages delivered twice.
    pub duplicate_pct: u32,
}

/// Extra delay on one directed link (the `slow` nemesis).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slow {
    /// Extra delay, ms.
    pub delay_ms: u64,
    /// Extra uniform jitter, ms.
    pub jitter_ms: u64,
}

/// A directed link `(from, to)` between named nodes.
pub type DirectedLink = (String, String);

/// The whole desired link-fault state: a backend makes its network equal to it in
/// one call ([`LinkControl::apply_links`]), so faults compose and a heal is the
/// empty state. Ordered maps: applying it never depends on hash order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkFaults {
    /// Directed links on which nothing is delivered.
    pub cut: BTreeSet<DirectedLink>,
    /// Directed links that lose (and duplicate) messages.
    pub lossy: BTreeMap<DirectedLink, Lossy>,
    /// Directed links with extra delay.
    pub slow: BTreeMap<DirectedLink, Slow>,
    /// Nodes whose proposals no peer receives (their votes and the rest still
    /// pass): a Twins phase's proposer choice (issue 12).
    pub muted: BTreeSet<String>,
}

/// What a backend's network can do, declared once; the nemesis compares a fault
/// with it and records what could not be honoured (`"degraded"` in the history).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkCaps {
    /// A cut link stops messages one way only. False over TCP: packets are dropped
    /// one way, but a connection needs both, so it stalls both ways.
    pub one_way_messages: bool,
    /// Messages can be duplicated.
    pub duplicate: bool,
    /// Delay can be added.
    pub delay: bool,
    /// Jitter can be added.
    pub jitter: bool,
    /// Without delay, a slow link is rate-limited to this many kbit/s instead.
    pub rate_limit_kbit: Option<u32>,
}

impl LinkCaps {
    /// Everything, exactly (the simulator).
    pub fn exact() -> Self {
        LinkCaps {
            one_way_messages: true,
            duplicate: true,
            delay: true,
            jitter: true,
            rate_limit_kbit: None,
        }
    }
}

/// Link primitives: one call sets the whole link-fault state (Jepsen's `net`).
pub trait LinkControl {
    /// What this backend's links can do.
    fn link_caps(&self) -> LinkCaps;
    /// Makes the network's faults equal `want` (also on nodes that start later).
    fn apply_links(&mut self, want: &LinkFaults) -> Result<(), BackendError>;
    /// Whether [`LinkFaults::muted`] is honoured: the network must tell a proposal
    /// from a vote, which only the simulator's can (the nemesis records the
    /// degradation elsewhere).
    fn drops_proposals(&self) -> bool {
        false
    }
}

/// Client primitives: what the run loop's clients and final dump need.
pub trait Clients {
    /// A client sends `tx` to `node`; the answer comes from [`Clients::poll_completions`].
    fn submit(&mut self, node: &str, tx: Tx) -> Ticket;
    /// The client gave up waiting (it recorded `info`); a later answer is dropped.
    fn abandon(&mut self, ticket: Ticket);
    /// Answers that arrived since the last call, in time order.
    fn poll_completions(&mut self) -> Vec<Completed>;
    /// A running node's `/status`.
    fn status(&mut self, node: &str) -> Option<Status>;
    /// Names of running roster or spare nodes that clients may talk to.
    fn live_nodes(&self) -> Vec<String>;
    /// Every node's final chain and status.
    fn dump(&mut self) -> Result<Vec<NodeDumpData>, BackendError>;
}

/// Disk primitives (issue 13); [`crate::nemesis`] gives the `disk` nemesis its
/// meaning over them. A backend that cannot inject a fault says why (the nemesis
/// records it as `degraded`); the defaults say so for every fault.
pub trait DiskControl {
    /// Damages a Killed node's stored files as `fault` says (a file-damaging
    /// [`DiskFault`]); returns what was done.
    fn damage_disk(&mut self, node: &str, fault: DiskFault) -> Result<Value, DiskUnsupported> {
        let _ = (node, fault);
        Err(DiskUnsupported(
            "this backend cannot damage a node's files".into(),
        ))
    }
    /// Makes the node's writes (`Full`) or syncs (`SyncFails`) fail from now on;
    /// `None` heals.
    fn fail_disk(&mut self, node: &str, fault: Option<DiskFault>) -> Result<(), DiskUnsupported> {
        let _ = (node, fault);
        Err(DiskUnsupported(
            "this backend cannot fail a node's writes".into(),
        ))
    }
}

/// Why a backend cannot inject a disk fault (recorded as `degraded`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DiskUnsupported(pub String);

/// A cluster the run loop drives (harness.md §2): nodes, links and clients as
/// primitives, plus the backend's own time (the simulator's virtual clock, or the
/// wall clock for real processes). Fault meaning lives in [`crate::nemesis`].
pub trait Backend: NodeControl + LinkControl + DiskControl + Clients {
    /// The backend's name as in `--backend`.
    fn name(&self) -> &'static str;
    /// Nanoseconds since the test began.
    fn now_ns(&self) -> u64;
    /// Lets time pass up to `t_ns` (the simulator processes its events; a real
    /// backend sleeps).
    fn advance_to(&mut self, t_ns: u64) -> Result<(), BackendError>;
}
