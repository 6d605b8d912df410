//! A sans-IO Byzantine validator for rollcall (issue 12, harness.md §5 `byzantine`).
//!
//! The design is ByzzFuzz's (Winter et al., OOPSLA 2023): the faulty node runs the
//! honest protocol unchanged, and only its *outgoing* messages are mutated in small
//! scope (round ±1, a value from an earlier message, a repeated proposal), then
//! re-signed with its own key. [`Adversary::outgoing`] turns one honest message into
//! what the adversary really sends, per peer; [`Adversary::tick`] sends what it sends
//! on its own (replays, floods, forged membership). Every message it sends is
//! well-signed over the exact bytes an honest node signs ([`forge`]), so an honest
//! node can reject it only for what it says.

#![warn(missing_docs)]

pub mod behaviour;
pub mod forge;
mod mutate;

pub use behaviour::{Behaviour, UnknownBehaviour};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rollcall_node_core::crypto::{Hash, Keypair, NodeId};
use rollcall_node_core::types::{Announce, Genesis, Message, SignedProposal, Vote, VoteKind};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Own messages kept for replay.
const HISTORY_LIMIT: usize = 128;
/// Proposals (own and observed) kept for swaps and re-sends.
const PROPOSAL_LIMIT: usize = 32;
/// Equivocation pairs kept.
const PAIR_LIMIT: usize = 64;
/// Far-future messages sent per tick by [`Behaviour::Flood`].
const FLOOD_PER_TICK: u32 = 16;
/// How far a forged-sync adversary claims to be ahead of its real height.
const HEIGHT_LIE: u64 = 100;

/// The file in a validator's home where the `rollcall-adversary` binary keeps its
/// [`Stats`] (rewritten every second and on SIGTERM), read by the docker backend
/// when the fault stops (harness.md §7 `byzantine`).
pub const STATS_FILE: &str = "adversary-stats.json";

/// Messages the adversary sent in one fault interval, by what it did with them
/// (harness.md §7 `byzantine`: "per behaviour, messages sent").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Sent as the honest core made them.
    pub honest: u64,
    /// Sent mutated, replayed, forged or invented.
    pub deviant: u64,
    /// Honest messages it did not send to some peer (withholding).
    pub suppressed: u64,
}

/// The view of the adversary's own core, learnt from its outgoing messages.
#[derive(Clone, Copy, Debug, Default)]
struct View {
    epoch: u64,
    height: u64,
    round: u32,
}

/// One adversary: an honest core's key and a behaviour for one fault interval.
pub struct Adversary {
    key: Keypair,
    chain_id: String,
    roster: Vec<NodeId>,
    allies: Vec<NodeId>,
    behaviour: Behaviour,
    rng: ChaCha8Rng,
    view: View,
    announce: Option<Announce>,
    proposals: VecDeque<SignedProposal>,
    history: VecDeque<Message>,
    /// (height, round) → the two equivocated block hashes, lower first.
    pairs: BTreeMap<(u64, u32), (Hash, Hash)>,
    stats: Stats,
    nonce: u64,
}

/// What one call sends: (peer, message), counted into [`Stats`] as it is built.
#[derive(Default)]
struct Out {
    stats: Stats,
    msgs: Vec<(NodeId, Message)>,
}

impl Out {
    /// Adds this call's counts to `total` and hands back the messages.
    fn finish(self, total: &mut Stats) -> Vec<(NodeId, Message)> {
        total.honest += self.stats.honest;
        total.deviant += self.stats.deviant;
        total.suppressed += self.stats.suppressed;
        self.msgs
    }

    fn honest(&mut self, to: NodeId, m: Message) {
        self.stats.honest += 1;
        self.msgs.push((to, m));
    }
    fn lie(&mut self, to: NodeId, m: Message) {
        self.stats.deviant += 1;
        self.msgs.push((to, m));
    }
    fn suppress(&mut self) {
        self.stats.suppressed += 1;
    }
}

impl Adversary {
    /// An adversary signing with `key`, for the network of `genesis`, behaving as
    /// `behaviour`, its choices drawn from `seed`. `allies` are the other adversaries
    /// of the interval (colluders: an equivocator shows them both of its values).
    pub fn new(
        key: Keypair,
        genesis: &Genesis,
        behaviour: Behaviour,
        allies: Vec<NodeId>,
        seed: u64,
    ) -> Self {
        Adversary {
            key,
            chain_id: genesis.chain_id.clone(),
            roster: genesis.roster.iter().map(|e| e.id).collect(),
            allies,
            behaviour,
            rng: ChaCha8Rng::seed_from_u64(seed),
            view: View::default(),
            announce: None,
            proposals: VecDeque::new(),
            history: VecDeque::new(),
            pairs: BTreeMap::new(),
            stats: Stats::default(),
            nonce: seed,
        }
    }

    /// The behaviour of this interval.
    pub fn behaviour(&self) -> Behaviour {
        self.behaviour
    }

    /// What it sent so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Learns from a message delivered to the adversary's node: proposals (for swaps,
    /// and an ally's two equivocated values).
    pub fn observe(&mut self, msg: &Message) {
        if let Message::Proposal(p) = msg {
            self.note_proposal(p);
        }
    }

    /// Turns one honest outgoing message (to one peer, or to every peer when `to` is
    /// `None`) into what the adversary really sends; `peers` are every peer the
    /// network would reach.
    pub fn outgoing(
        &mut self,
        _now_ns: u64,
        to: Option<NodeId>,
        msg: &Message,
        peers: &[NodeId],
    ) -> Vec<(NodeId, Message)> {
        self.learn(msg);
        let targets: Vec<NodeId> = match to {
            Some(id) => vec![id],
            None => peers.to_vec(),
        };
        let halves = self.halves(peers);
        let mut out = Out::default();
        let mut ctx = mutate::Ctx {
            key: &self.key,
            chain_id: &self.chain_id,
            roster: &self.roster,
            allies: &self.allies,
            rng: &mut self.rng,
            proposals: &self.proposals,
            history: &self.history,
            pairs: &mut self.pairs,
            halves: &halves,
            nonce: &mut self.nonce,
        };
        mutate::outgoing(&mut ctx, self.behaviour, &targets, msg, &mut out);
        let msgs = out.finish(&mut self.stats);
        for (_, m) in &msgs {
            if let Message::Proposal(p) = m {
                self.note_proposal(p);
            }
        }
        while self.pairs.len() > PAIR_LIMIT {
            self.pairs.pop_first();
        }
        msgs
    }

    /// Messages the adversary sends on its own, called on a timer: replays, re-sent
    /// proposals, forged membership, floods, height lies.
    pub fn tick(&mut self, _now_ns: u64, peers: &[NodeId]) -> Vec<(NodeId, Message)> {
        if peers.is_empty() {
            return Vec::new();
        }
        let mut out = Out::default();
        match self.behaviour {
            Behaviour::Replay => {
                for _ in 0..2 {
                    let to = peers[self.rng.gen_range(0..peers.len())];
                    if let Some(m) = pick(&mut self.rng, &self.history) {
                        out.lie(to, m.clone());
                    }
                }
            }
            Behaviour::ResendProposal => {
                if let Some(p) = pick(&mut self.rng, &self.proposals) {
                    for to in peers {
                        out.lie(*to, Message::Proposal(Box::new(p.clone())));
                    }
                }
            }
            Behaviour::MembershipLie => {
                self.nonce = self.nonce.wrapping_add(1);
                let tx = forge::forged_add_node(&self.key, &self.chain_id, self.nonce);
                let lie = self.announce.clone().map(|a| {
                    Message::Announce(mutate::lying_new_view(&self.key, a, &mut self.rng))
                });
                for to in peers {
                    out.lie(*to, Message::Txs(vec![tx.clone()]));
                    if let Some(m) = &lie {
                        out.lie(*to, m.clone());
                    }
                }
            }
            Behaviour::Flood => self.flood(peers, &mut out),
            Behaviour::ForgedSync => {
                if let Some(mut a) = self.announce.clone() {
                    a.height += HEIGHT_LIE;
                    let m = Message::Announce(forge::sign_announce(&self.key, a));
                    for to in peers {
                        out.lie(*to, m.clone());
                    }
                }
            }
            _ => {}
        }
        out.finish(&mut self.stats)
    }

    /// Far-future heights and rounds, every one well-signed (memory must stay
    /// bounded at the receivers, issue 12).
    fn flood(&mut self, peers: &[NodeId], out: &mut Out) {
        let v = self.view;
        for k in 0..FLOOD_PER_TICK {
            self.nonce = self.nonce.wrapping_add(1);
            let far_height = k % 2 == 0;
            let vote = Vote {
                kind: if k % 4 < 2 {
                    VoteKind::Prevote
                } else {
                    VoteKind::Precommit
                },
                epoch: v.epoch,
                height: if far_height {
                    v.height + 1_000 + self.nonce % 1_000_000
                } else {
                    v.height
                },
                round: if far_height {
                    v.round
                } else {
                    v.round
                        .saturating_add(1_000 + (self.nonce % 1_000_000) as u32)
                },
                block: None,
                evict: None,
                validator: self.key.id(),
            };
            let m = Message::Vote(forge::sign_vote(&self.key, vote));
            let to = peers[self.rng.gen_range(0..peers.len())];
            out.lie(to, m);
        }
    }

    /// Remembers its own core's view, announcements and messages (bounded).
    fn learn(&mut self, msg: &Message) {
        match msg {
            Message::Vote(v) => {
                self.view = View {
                    epoch: v.vote.epoch,
                    height: v.vote.height,
                    round: v.vote.round,
                };
            }
            Message::Proposal(p) => {
                self.view = View {
                    epoch: p.proposal.epoch,
                    height: p.proposal.height,
                    round: p.proposal.round,
                };
            }
            Message::Announce(a) => self.announce = Some(a.announce.clone()),
            _ => {}
        }
        if matches!(msg, Message::Vote(_) | Message::Proposal(_)) {
            self.history.push_back(msg.clone());
            if self.history.len() > HISTORY_LIMIT {
                self.history.pop_front();
            }
        }
    }

    fn note_proposal(&mut self, p: &SignedProposal) {
        let (h, r) = (p.proposal.height, p.proposal.round);
        let hash = p.proposal.block.hash();
        // A second value from one proposer for one view: an ally's equivocation.
        let other = self
            .proposals
            .iter()
            .find(|q| {
                q.proposer == p.proposer
                    && (q.proposal.height, q.proposal.round) == (h, r)
                    && q.proposal.block.hash() != hash
            })
            .map(|q| q.proposal.block.hash());
        if let Some(o) = other {
            self.pairs.insert((h, r), (o.min(hash), o.max(hash)));
        }
        if self.proposals.iter().any(|q| q.sig == p.sig) {
            return;
        }
        self.proposals.push_back(p.clone());
        if self.proposals.len() > PROPOSAL_LIMIT {
            self.proposals.pop_front();
        }
    }

    /// Honest peers split in two halves by id order, the same split at every ally
    /// (index parity among the peers that are not adversaries).
    fn halves(&self, peers: &[NodeId]) -> BTreeMap<NodeId, usize> {
        let mut honest: Vec<NodeId> = peers
            .iter()
            .copied()
            .filter(|p| !self.allies.contains(p))
            .collect();
        honest.sort();
        honest.dedup();
        honest
            .into_iter()
            .enumerate()
            .map(|(i, p)| (p, i % 2))
            .collect()
    }
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, v: &'a VecDeque<T>) -> Option<&'a T> {
    if v.is_empty() {
        None
    } else {
        v.get(rng.gen_range(0..v.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollcall_node_core::crypto::Verifier;
    use rollcall_node_core::types::{
        Block, Params, Proposal, RosterEntry, SignedVote, DOMAIN_PROPOSAL, DOMAIN_VOTE,
    };
    use std::collections::BTreeSet;

    fn keys() -> Vec<Keypair> {
        (1..=4).map(|i| Keypair::from_secret([i; 32])).collect()
    }

    fn genesis(ks: &[Keypair]) -> Genesis {
        Genesis {
            chain_id: "t".into(),
            roster: ks
                .iter()
                .enumerate()
                .map(|(i, k)| RosterEntry {
                    number: i as u32 + 1,
                    id: k.id(),
                    addr: format!("h{i}:1"),
                })
                .collect(),
            operators: vec![],
            params: Params::default(),
        }
    }

    fn proposal(k: &Keypair) -> Message {
        let block = Block {
            height: 2,
            round: 0,
            epoch: 0,
            prev_hash: Hash::default(),
            proposer: k.id(),
            roster_hash: Hash::default(),
            txs: vec![],
            evict: None,
            last_commit: None,
        };
        let p = Proposal {
            epoch: 0,
            height: 2,
            round: 0,
            valid_round: None,
            block,
        };
        Message::Proposal(Box::new(forge::sign_proposal(k, p)))
    }

    fn vote(k: &Keypair, block: Option<Hash>) -> Message {
        Message::Vote(forge::sign_vote(
            k,
            Vote {
                kind: VoteKind::Prevote,
                epoch: 0,
                height: 2,
                round: 0,
                block,
                evict: None,
                validator: k.id(),
            },
        ))
    }

    fn proposal_ok(v: &Verifier, m: &Message) -> Hash {
        let Message::Proposal(p) = m else {
            panic!("not a proposal: {m:?}")
        };
        let hash = p.proposal.block.hash();
        assert!(v.verify(
            &p.proposer,
            DOMAIN_PROPOSAL,
            &p.proposal.sign_bytes(&hash),
            &p.sig
        ));
        hash
    }

    fn vote_ok(v: &Verifier, m: &Message) -> SignedVote {
        let Message::Vote(sv) = m else {
            panic!("not a vote: {m:?}")
        };
        assert!(v.verify(
            &sv.vote.validator,
            DOMAIN_VOTE,
            &sv.vote.sign_bytes(),
            &sv.sig
        ));
        sv.clone()
    }

    #[test]
    fn an_equivocator_shows_the_two_halves_different_signed_values() {
        let ks = keys();
        let v = Verifier::new();
        let peers: Vec<NodeId> = ks[1..].iter().map(|k| k.id()).collect();
        let mut a = Adversary::new(
            ks[0].clone(),
            &genesis(&ks),
            Behaviour::Equivocate,
            vec![],
            1,
        );
        let out = a.outgoing(0, None, &proposal(&ks[0]), &peers);
        // Three peers, and the witness of the second half gets both values.
        assert_eq!(out.len(), 4);
        let hashes: BTreeSet<Hash> = out.iter().map(|(_, m)| proposal_ok(&v, m)).collect();
        assert_eq!(hashes.len(), 2, "two different blocks");
        let (lo, hi) = (*hashes.first().unwrap(), *hashes.last().unwrap());
        // Votes follow the split: each half gets a vote for its own block.
        let votes = a.outgoing(0, None, &vote(&ks[0], Some(lo)), &peers);
        let voted: BTreeSet<Option<Hash>> = votes
            .iter()
            .map(|(_, m)| vote_ok(&v, m).vote.block)
            .collect();
        assert_eq!(voted, [Some(lo), Some(hi)].into());
        assert!(a.stats().deviant >= 8);
    }

    #[test]
    fn evict_lies_and_round_mutations_stay_well_signed() {
        let ks = keys();
        let v = Verifier::new();
        let peers: Vec<NodeId> = ks[1..].iter().map(|k| k.id()).collect();
        let mut a = Adversary::new(
            ks[0].clone(),
            &genesis(&ks),
            Behaviour::MutateEvict,
            vec![],
            2,
        );
        for (_, m) in a.outgoing(0, None, &vote(&ks[0], None), &peers) {
            let sv = vote_ok(&v, &m);
            assert!(sv.vote.evict.is_some_and(|e| e != ks[0].id()));
        }
        let mut r = Adversary::new(
            ks[0].clone(),
            &genesis(&ks),
            Behaviour::MutateRound,
            vec![],
            3,
        );
        for (_, m) in r.outgoing(0, Some(peers[0]), &vote(&ks[0], None), &peers) {
            assert_eq!(vote_ok(&v, &m).vote.round, 1, "round 0 can only go up");
        }
    }

    #[test]
    fn withholding_and_silence_suppress_honest_messages() {
        let ks = keys();
        let peers: Vec<NodeId> = ks[1..].iter().map(|k| k.id()).collect();
        let mut w = Adversary::new(ks[0].clone(), &genesis(&ks), Behaviour::Withhold, vec![], 4);
        let out = w.outgoing(0, None, &vote(&ks[0], None), &peers);
        assert_eq!((out.len(), w.stats().suppressed), (2, 1));
        let mut s = Adversary::new(
            ks[0].clone(),
            &genesis(&ks),
            Behaviour::SilentProposer,
            vec![],
            5,
        );
        assert!(s.outgoing(0, None, &proposal(&ks[0]), &peers).is_empty());
        assert_eq!(s.outgoing(0, None, &vote(&ks[0], None), &peers).len(), 3);
    }

    #[test]
    fn memory_stays_bounded_under_any_traffic() {
        let ks = keys();
        let peers: Vec<NodeId> = ks[1..].iter().map(|k| k.id()).collect();
        let mut a = Adversary::new(ks[0].clone(), &genesis(&ks), Behaviour::Replay, vec![], 6);
        for _ in 0..(HISTORY_LIMIT * 3) {
            a.outgoing(0, None, &vote(&ks[0], None), &peers);
            a.observe(&proposal(&ks[1]));
        }
        assert!(a.history.len() <= HISTORY_LIMIT);
        assert!(a.proposals.len() <= PROPOSAL_LIMIT);
        assert!(!a.tick(0, &peers).is_empty(), "replays");
        let mut f = Adversary::new(ks[0].clone(), &genesis(&ks), Behaviour::Flood, vec![], 7);
        assert_eq!(f.tick(0, &peers).len(), FLOOD_PER_TICK as usize);
    }
}
