//! The docker side of the `byzantine` nemesis (harness.md §5, issue 12): the real
//! node runtime of one validator home (Noise transport, store, API), every peer
//! message it sends rewritten by the sans-IO [`Adversary`], which also sends on its
//! own every tick, exactly as the simulator drives it (harness/src/sim/byzantine.rs).
//! The node's code has no attack in it: the adversary plugs into the runtime's
//! generic [`Outbound`] hook.

#![warn(missing_docs)]

use rollcall_adversary::{Adversary, Stats};
use rollcall_node::runtime::Outbound;
use rollcall_node_core::crypto::NodeId;
use rollcall_node_core::types::Message;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the adversary sends on its own (the simulator's 100 ms).
pub const TICK: Duration = Duration::from_millis(100);

/// An [`Adversary`] as the runtime's send filter, its counts published to `stats`
/// after every call (for the stats file writer).
pub struct AdversaryHook {
    adv: Adversary,
    stats: Arc<Mutex<Stats>>,
    started: Instant,
}

impl AdversaryHook {
    /// The hook for `adv`; what it sent so far is readable through `stats`.
    pub fn new(adv: Adversary, stats: Arc<Mutex<Stats>>) -> Self {
        AdversaryHook {
            adv,
            stats,
            started: Instant::now(),
        }
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn publish(&self) {
        if let Ok(mut s) = self.stats.lock() {
            *s = self.adv.stats().clone();
        }
    }
}

impl Outbound for AdversaryHook {
    fn outgoing(
        &mut self,
        to: Option<NodeId>,
        msg: &Message,
        peers: &[NodeId],
    ) -> Vec<(NodeId, Message)> {
        let out = self.adv.outgoing(self.now_ns(), to, msg, peers);
        self.publish();
        out
    }

    fn observe(&mut self, _from: NodeId, msg: &Message) {
        self.adv.observe(msg);
    }

    fn tick(&mut self, peers: &[NodeId]) -> Vec<(NodeId, Message)> {
        let out = self.adv.tick(self.now_ns(), peers);
        self.publish();
        out
    }

    fn tick_every(&self) -> Option<Duration> {
        Some(TICK)
    }
}

/// Writes `stats` to `path` whole: a temporary file renamed over it, so a reader
/// (or a SIGKILL) never sees half a file.
pub fn write_stats(path: &Path, stats: &Stats) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec(stats).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Reads a stats file written by [`write_stats`].
pub fn read_stats(path: &Path) -> std::io::Result<Stats> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollcall_adversary::Behaviour;
    use rollcall_node_core::crypto::{Keypair, Verifier};
    use rollcall_node_core::types::{Genesis, Params, RosterEntry, Vote, VoteKind, DOMAIN_VOTE};

    #[test]
    fn the_hook_mutates_what_the_core_sends_and_publishes_its_counts() {
        let ks: Vec<Keypair> = (1..=4).map(|i| Keypair::from_secret([i; 32])).collect();
        let genesis = Genesis {
            chain_id: "t".into(),
            roster: (ks.iter().enumerate())
                .map(|(i, k)| RosterEntry {
                    number: i as u32 + 1,
                    id: k.id(),
                    addr: format!("h{i}:1"),
                })
                .collect(),
            operators: vec![],
            params: Params::default(),
        };
        let adv = Adversary::new(ks[0].clone(), &genesis, Behaviour::MutateEvict, vec![], 1);
        let stats = Arc::new(Mutex::new(Stats::default()));
        let mut hook = AdversaryHook::new(adv, stats.clone());
        let vote = Vote {
            kind: VoteKind::Prevote,
            epoch: 0,
            height: 2,
            round: 0,
            block: None,
            evict: None,
            validator: ks[0].id(),
        };
        let msg = Message::Vote(rollcall_adversary::forge::sign_vote(&ks[0], vote));
        let peers: Vec<NodeId> = ks[1..].iter().map(|k| k.id()).collect();
        let out = hook.outgoing(None, &msg, &peers);
        assert_eq!(out.len(), 3, "one per peer");
        let v = Verifier::new();
        for (_, m) in &out {
            let Message::Vote(sv) = m else {
                panic!("{m:?}")
            };
            assert!(sv.vote.evict.is_some(), "the evict lie");
            assert!(v.verify(
                &sv.vote.validator,
                DOMAIN_VOTE,
                &sv.vote.sign_bytes(),
                &sv.sig
            ));
        }
        let seen = stats.lock().unwrap().clone();
        assert_eq!(seen.deviant, 3);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(rollcall_adversary::STATS_FILE);
        write_stats(&p, &seen).unwrap();
        assert_eq!(read_stats(&p).unwrap(), seen);
    }
}
