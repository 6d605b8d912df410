//! Every history checker of the rollcall harness
//! (harness.md §6 History, §7 Checkers).
//!
//! The harness records a JSON Lines history ([`history`]), or reads a Jepsen EDN
//! history ([`edn`]), then runs the checkers that fit the workload: registers are
//! checked for linearizability ([`linearizable`]), list-append transactions with
//! Elle's dependency-graph analysis ([`elle`]), acknowledged transactions against
//! the final chain ([`set`]) and bank reads against the constant total ([`bank`]).
//! Every checker returns a [`result::CheckResult`]; results combine as Jepsen's do
//! ([`result::compose`]). [`gen`] makes valid and corrupted histories for tests and
//! benchmarks. Node types and chain replay come from `rollcall-node-core`, the
//! node's I/O-free core, not from the node binary's crate.

#![warn(missing_docs)]

pub mod bank;
pub mod byzantine;
pub mod client_attacks;
pub mod cluster;
pub mod elle;
pub mod equivocation;
pub mod gen;
pub mod linearizable;
pub mod oracle;
pub mod set;
pub mod storage;

// The history model, EDN import and verdict types live in `rollcall-history`
// (issue 11); re-exported so `rollcall_checkers::history::...` paths keep working.
pub use rollcall_history::{edn, history, result};

pub use history::{Event, History, HistoryError, Op, OpType, Pairing, Process};
pub use result::{compose, Anomaly, CheckResult, Checker, Results, Validity};
