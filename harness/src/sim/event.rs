//! The simulator's event queue entries: what happens next, and when.

use rollcall_node_core::consensus::Timeout;
use rollcall_node_core::crypto::NodeId;
use rollcall_node_core::types::{Message, Tx};
use std::cmp::Ordering;

use crate::backend::Ticket;

pub(super) enum EventKind {
    Deliver {
        to: usize,
        inc: u64,
        from: NodeId,
        msg: Message,
    },
    Timer {
        node: usize,
        inc: u64,
        timeout: Timeout,
    },
    Submit {
        node: usize,
        ticket: Ticket,
        tx: Tx,
    },
    /// An adversary's own sends (byzantine.rs); `id` names the fault interval.
    AdversaryTick {
        node: usize,
        id: u64,
    },
}

impl EventKind {
    pub(super) fn target(&self) -> (usize, Option<u64>) {
        match self {
            EventKind::Deliver { to, inc, .. } => (*to, Some(*inc)),
            EventKind::Timer { node, inc, .. } => (*node, Some(*inc)),
            EventKind::Submit { node, .. } | EventKind::AdversaryTick { node, .. } => (*node, None),
        }
    }
}

pub(super) struct Event {
    pub(super) time: u64,
    pub(super) seq: u64,
    pub(super) kind: EventKind,
}

impl PartialEq for Event {
    fn eq(&self, o: &Self) -> bool {
        (self.time, self.seq) == (o.time, o.seq)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Event {
    // Reversed: BinaryHeap is a max-heap and we want the earliest event first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.time, o.seq).cmp(&(self.time, self.seq))
    }
}
