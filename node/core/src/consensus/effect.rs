//! What the core hands back: effects for the runtime, writes for the store, and
//! the [`Output`] that binds them so the writes are durable first (protocol.md §6).

use crate::crypto::NodeId;
use crate::roster::Roster;
use crate::types::{CommittedBlock, Message, TxOutcome};

use super::{SignState, Timeout};

/// What the core asks its runtime to do.
#[derive(Clone, Debug)]
pub enum Effect {
    /// Send to one peer.
    Send {
        /// Recipient.
        to: NodeId,
        /// Message.
        msg: Message,
    },
    /// Send to every peer (roster members and connected nodes).
    Broadcast(Message),
    /// Feed `Input::Timeout(timeout)` back after `after_ms`.
    Schedule {
        /// The timer.
        timeout: Timeout,
        /// Delay.
        after_ms: u64,
    },
    /// A block was committed: answer clients of its transactions.
    Committed {
        /// Height.
        height: u64,
        /// Outcomes of its transactions.
        outcomes: Vec<(String, TxOutcome)>,
    },
    /// The roster changed: connect to the new members.
    RosterChanged(Roster),
    /// Send committed blocks `from..=to` with certificates to `to_peer` from the store.
    ServeBlocks {
        /// Requester.
        to_peer: NodeId,
        /// First height.
        from: u64,
        /// Last height.
        to: u64,
    },
}

/// A write that must be durable before any effect of the same [`Output`] happens
/// (protocol.md §6).
#[derive(Clone, Debug)]
pub enum Persist {
    /// The signing state: what was signed last, the lock and its proof.
    SignState(Box<SignState>),
    /// A committed block with its certificate.
    Block(Box<CommittedBlock>),
}

/// What the core hands back for one input: writes, and effects that may happen
/// only once the writes are durable. The effects are reachable only through
/// `Store::commit`, which makes `persist` durable first: durability is a type.
#[must_use = "an output's effects must go through Store::commit"]
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// Durable before any effect (§6).
    pub persist: Vec<Persist>,
    /// In order, after the writes.
    pub effects: Vec<Effect>,
}

impl Output {
    /// Adds an effect.
    pub fn push(&mut self, e: Effect) {
        self.effects.push(e);
    }

    /// Adds a write.
    pub fn persist(&mut self, p: Persist) {
        self.persist.push(p);
    }

    /// Appends another output: its writes join ours, so all are durable before any
    /// effect of either (a runtime batching inputs under one sync).
    pub fn extend(&mut self, other: Output) {
        self.persist.extend(other.persist);
        self.effects.extend(other.effects);
    }

    /// Nothing to write or do.
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty() && self.effects.is_empty()
    }
}
