//! What every workload shares: an invocation (history value + the KV micro-ops that
//! carry it), its completion, and the [`Workload`] trait (harness.md §4, §6).

use rand::RngCore;
use rollcall_node_core::types::{Op, OpResult, TxOutcome, Value};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use std::fmt;
use std::str::FromStr;

/// One operation a client process invokes: how it appears in the history (`f`,
/// `value`) and the KV transaction that performs it (protocol.md §3).
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    /// The history's `f`: "txn", "read", "write", "cas", "transfer".
    pub f: String,
    /// The history's invoke `value` (harness.md §6).
    pub value: Json,
    /// The micro-ops submitted as one KV transaction.
    pub ops: Vec<Op>,
}

/// How a committed transaction reads in the history: `ok` with the completed value,
/// or `fail` when it certainly did not take effect (a cas that did not apply, a
/// transaction rejected at execution).
#[derive(Clone, Debug, PartialEq)]
pub enum Completion {
    /// Took effect; the value carries read results.
    Ok(Json),
    /// Certainly did not take effect.
    Fail(Json),
}

/// A workload: generates invocations and interprets their committed results.
pub trait Workload {
    /// The workload's name as given to `--workload`.
    fn kind(&self) -> WorkloadKind;
    /// The next operation of `process` (harness.md §4).
    fn invoke(&mut self, rng: &mut dyn RngCore, process: u64) -> Invocation;
    /// The history completion of `inv` given its committed outcome.
    fn complete(&mut self, process: u64, inv: &Invocation, outcome: &TxOutcome) -> Completion;
    /// The reads done on every live node after the final heal (harness.md §5).
    fn final_reads(&self) -> Vec<Invocation>;
}

/// The workloads of harness.md §4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    /// Elle-style list-append transactions.
    Append,
    /// Single-key registers (linearizability).
    Register,
    /// Transfers with a constant total.
    Bank,
    /// Elle-style read-write register transactions (issue 15).
    RwRegister,
    /// Append, register and bank interleaved over disjoint keys (harness.md §4).
    Mixed,
}

impl WorkloadKind {
    /// Every single workload, in CLI order (`mixed` combines some of these).
    pub const ALL: [WorkloadKind; 4] = [
        WorkloadKind::Append,
        WorkloadKind::Register,
        WorkloadKind::Bank,
        WorkloadKind::RwRegister,
    ];

    /// The CLI spelling.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Append => "append",
            WorkloadKind::Register => "register",
            WorkloadKind::Bank => "bank",
            WorkloadKind::RwRegister => "rw-register",
            WorkloadKind::Mixed => "mixed",
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A workload name that is not one of [`WorkloadKind::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("unknown workload {0:?} (append, register, bank, rw-register, mixed)")]
pub struct UnknownWorkload(pub String);

impl FromStr for WorkloadKind {
    type Err = UnknownWorkload;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WorkloadKind::ALL
            .into_iter()
            .chain([WorkloadKind::Mixed])
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownWorkload(s.to_string()))
    }
}

/// A fresh generator for `kind`.
pub fn make(kind: WorkloadKind) -> Box<dyn Workload> {
    match kind {
        WorkloadKind::Append => Box::new(crate::append::Append::default()),
        WorkloadKind::Register => Box::new(crate::register::Register::default()),
        WorkloadKind::Bank => Box::new(crate::bank::Bank::default()),
        WorkloadKind::RwRegister => Box::new(crate::rw_register::RwRegister::default()),
        WorkloadKind::Mixed => Box::new(crate::mixed::Mixed::default()),
    }
}

/// A read result as JSON: a list, an integer, or null for an absent key.
pub(crate) fn read_json(v: &Option<Value>) -> Json {
    match v {
        None => Json::Null,
        Some(Value::Int(i)) => json!(i),
        Some(Value::List(l)) => json!(l),
    }
}

/// The result of the op at `i`, if the outcome has one.
pub(crate) fn result_at(outcome: &TxOutcome, i: usize) -> Option<&OpResult> {
    outcome.results.get(i)
}
