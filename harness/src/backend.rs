//! The interface every backend implements (harness.md §2): the run loop, workload,
//! nemesis schedule, history and checkers are the same code whichever backend runs
//! the cluster; only this trait differs between `sim` and `docker`.

use rollcall_node::types::{CommittedBlock, Tx, TxOutcome};
use rollcall_workloads::Fault;
use serde_json::Value;

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
    /// `/status`, when the node is running.
    pub status: Option<Value>,
    /// Whether it was running at the end.
    pub alive: bool,
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

/// A cluster the run loop drives (harness.md §2). Time is the backend's own: the
/// simulator's virtual clock, or the wall clock for real processes.
pub trait Backend {
    /// The backend's name as in `--backend`.
    fn name(&self) -> &'static str;
    /// Nanoseconds since the test began.
    fn now_ns(&self) -> u64;
    /// Lets time pass up to `t_ns` (the simulator processes its events; a real
    /// backend sleeps).
    fn advance_to(&mut self, t_ns: u64) -> Result<(), BackendError>;
    /// A client sends `tx` to `node`; the answer comes from [`Backend::poll_completions`].
    fn submit(&mut self, node: &str, tx: Tx) -> Ticket;
    /// The client gave up waiting (it recorded `info`); a later answer is dropped.
    fn abandon(&mut self, ticket: Ticket);
    /// Answers that arrived since the last call, in time order.
    fn poll_completions(&mut self) -> Vec<Completed>;
    /// Starts a fault; returns what was actually done, for the history and schedule.
    fn start_fault(&mut self, fault: &Fault) -> Result<Value, BackendError>;
    /// Stops a fault started earlier.
    fn stop_fault(&mut self, fault: &Fault) -> Result<Value, BackendError>;
    /// The final heal of harness.md §5: heal every link, resume paused nodes,
    /// restart killed ones (not those failed for good), stop duplicates.
    fn heal_all(&mut self) -> Result<Value, BackendError>;
    /// A running node's `/status` as JSON.
    fn status(&mut self, node: &str) -> Option<Value>;
    /// Names of running roster or spare nodes that clients may talk to.
    fn live_nodes(&self) -> Vec<String>;
    /// Every node's final chain and status.
    fn dump(&mut self) -> Result<Vec<NodeDumpData>, BackendError>;
}
