//! The adversarial client's record (issue 12): what it sent, to which node, and what
//! it was told, stored as `client-attacks.json` beside the history. It is kept out of
//! the history so the workload's checkers see only the workload's operations; the
//! `client-attacks` checker reads it with the nodes' final state.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One request of the adversarial client and its answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientAttack {
    /// When it was sent, ns since the test began.
    pub time_ns: u64,
    /// What it tried.
    pub kind: AttackKind,
    /// The node it was sent to.
    pub node: String,
    /// The transaction id it used.
    pub tx_id: String,
    /// A resubmission's original: the answer the workload got for the same id
    /// (`ok` only: an id whose outcome is unknown has no first result to compare).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<Answer>,
    /// An AddNode's node id (hex): what it would add to the roster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adds: Option<String>,
    /// What the node answered; `None` when the run ended first.
    pub answer: Option<Answer>,
    /// When the answer came, ns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_ns: Option<u64>,
}

/// What the adversarial client tries (issue 12: "resubmits transaction ids … and
/// submits unsigned, wrong-key and replayed AddNodes").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttackKind {
    /// A workload transaction's id and ops again, to any node (protocol.md §3: it
    /// never applies twice; the answer is the first result).
    ResubmitSame,
    /// A committed workload transaction's id with other ops: the id is taken, so
    /// they never apply.
    ResubmitOther,
    /// An AddNode with no signature.
    AddNodeUnsigned,
    /// An AddNode signed by a key that is not an operator's.
    AddNodeWrongKey,
    /// An operator's signed AddNode with another node id put in (the signature
    /// covers the id, DESIGN "Replay-proof membership").
    AddNodeForgedId,
    /// An operator's committed AddNode sent again under a new transaction id: its
    /// nonce is used, so it never applies again.
    AddNodeReplay,
}

impl AttackKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [AttackKind; 6] = [
        AttackKind::ResubmitSame,
        AttackKind::ResubmitOther,
        AttackKind::AddNodeUnsigned,
        AttackKind::AddNodeWrongKey,
        AttackKind::AddNodeForgedId,
        AttackKind::AddNodeReplay,
    ];

    /// The kebab-case name, as stored.
    pub fn name(self) -> &'static str {
        match self {
            AttackKind::ResubmitSame => "resubmit-same",
            AttackKind::ResubmitOther => "resubmit-other",
            AttackKind::AddNodeUnsigned => "add-node-unsigned",
            AttackKind::AddNodeWrongKey => "add-node-wrong-key",
            AttackKind::AddNodeForgedId => "add-node-forged-id",
            AttackKind::AddNodeReplay => "add-node-replay",
        }
    }

    /// Whether this is an AddNode that must never change the roster.
    pub fn is_add_node(self) -> bool {
        !matches!(self, AttackKind::ResubmitSame | AttackKind::ResubmitOther)
    }
}

/// A node's answer to one request, as a client sees it (harness.md §6 `ok`,
/// `fail`, `info`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Answer {
    /// Committed at `height`: the per-op results, or why it was rejected at
    /// execution (nothing applied).
    Ok {
        /// The block that holds it.
        height: u64,
        /// The per-op results (JSON, as the node reports them).
        results: Value,
        /// Why it was rejected at execution, if it was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Refused: certainly not applied.
    Fail {
        /// Why.
        error: String,
    },
    /// Unknown: it may apply now, later or never.
    Info {
        /// Why.
        error: String,
    },
}
