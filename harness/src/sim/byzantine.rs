//! The simulator's `byzantine` nemesis (harness.md §5, issue 12): while the fault
//! lasts, a validator's honest core keeps running and every message it sends goes
//! through its [`Adversary`] (ByzzFuzz's design: mutate the faulty node's outgoing
//! messages), which also sends on its own on a timer. Honest again on stop.

use super::{EventKind, SimBackend};
use crate::backend::BackendError;
use rand::Rng;
use rollcall_adversary::{Adversary, Behaviour};
use rollcall_node_core::crypto::NodeId;
use rollcall_node_core::types::Message;
use rollcall_workloads::max_faulty;
use serde_json::{json, Value};

/// How often an adversary sends on its own (replays, floods, lies), ns.
const TICK_NS: u64 = 100_000_000;

/// A node's adversary and the id of its fault interval (stale ticks are dropped).
pub(super) struct SimAdversary {
    pub(super) adv: Adversary,
    id: u64,
}

impl SimBackend {
    /// Ids of the running peers of node `i` (what a broadcast reaches).
    fn peer_ids(&self, i: usize) -> Vec<NodeId> {
        let me = self.nodes[i].key.id();
        let mut ids: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|n| n.core.is_some() && n.key.id() != me)
            .map(|n| n.key.id())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The hook on every message an adversary's core sends: what really goes out.
    pub(super) fn send_byzantine(&mut self, from: usize, to: Option<NodeId>, msg: Message) {
        let peers = self.peer_ids(from);
        let now = self.now;
        let Some(a) = self.nodes[from].adversary.as_mut() else {
            return;
        };
        for (peer, m) in a.adv.outgoing(now, to, &msg, &peers) {
            self.deliver(from, Some(peer), m);
        }
    }

    /// One adversary timer: its own sends, then the next timer.
    pub(super) fn adversary_tick(&mut self, i: usize, id: u64) {
        if self.nodes[i].core.is_none() {
            // Crashed: the timer lapses; a restart does not make it lie again.
            self.nodes[i].adversary = None;
            return;
        }
        let peers = self.peer_ids(i);
        let now = self.now;
        let Some(a) = self.nodes[i].adversary.as_mut().filter(|a| a.id == id) else {
            return;
        };
        let msgs = a.adv.tick(now, &peers);
        for (peer, m) in msgs {
            self.deliver(i, Some(peer), m);
        }
        self.push(now + TICK_NS, EventKind::AdversaryTick { node: i, id });
    }

    /// Starts a `byzantine` fault: the named running validators become adversaries
    /// colluding with each other. More than f of them is beyond the fault model,
    /// and the recorded details say so.
    pub(super) fn start_byzantine(
        &mut self,
        names: &[String],
        behaviour: Behaviour,
    ) -> Result<Value, BackendError> {
        let idx: Vec<usize> = names
            .iter()
            .map(|n| self.index(n))
            .collect::<Result<_, _>>()?;
        let idx: Vec<usize> = idx
            .into_iter()
            .filter(|i| self.nodes[*i].core.is_some())
            .collect();
        let ids: Vec<NodeId> = idx.iter().map(|i| self.nodes[*i].key.id()).collect();
        let n = self.spec.genesis.roster.len();
        for &i in &idx {
            let allies = ids
                .iter()
                .copied()
                .filter(|x| *x != self.nodes[i].key.id())
                .collect();
            let seed = self.rng.gen();
            let adv = Adversary::new(
                self.nodes[i].key.clone(),
                &self.spec.genesis,
                behaviour,
                allies,
                seed,
            );
            let id = self.seq + 1;
            self.nodes[i].adversary = Some(SimAdversary { adv, id });
            self.nodes[i].ever_byzantine = true;
            self.push(self.now + TICK_NS, EventKind::AdversaryTick { node: i, id });
        }
        Ok(json!({
            "adversaries": idx.iter().map(|i| self.nodes[*i].name.clone()).collect::<Vec<_>>(),
            "ids": ids.iter().map(|x| x.to_hex()).collect::<Vec<_>>(),
            "f": max_faulty(n),
            "beyond_fault_model": idx.len() > max_faulty(n),
        }))
    }

    /// Stops a `byzantine` fault: the nodes are honest again; what each adversary
    /// sent goes into the history (harness.md §7 `byzantine`).
    pub(super) fn stop_byzantine(&mut self, names: &[String]) -> Result<Value, BackendError> {
        let mut sent = serde_json::Map::new();
        for name in names {
            let i = self.index(name)?;
            if let Some(a) = self.nodes[i].adversary.take() {
                sent.insert(name.clone(), json!(a.adv.stats()));
            }
        }
        Ok(json!({ "sent": sent }))
    }

    /// The final heal: every adversary is honest again; their names.
    pub(super) fn stop_all_byzantine(&mut self) -> Vec<String> {
        let mut stopped = Vec::new();
        for n in &mut self.nodes {
            if n.adversary.take().is_some() {
                stopped.push(n.name.clone());
            }
        }
        stopped
    }
}
