use super::sync::DISTRUST_TICKS;
use super::*;
use crate::store::MemDevice;
use crate::types::{
    Announce, Block, Certificate, Op, Params, Proposal, SignedAnnounce, Vote, DOMAIN_ANNOUNCE,
};
use std::collections::BTreeSet;
use std::collections::VecDeque;

fn keys(n: u8) -> Vec<Keypair> {
    (1..=n).map(|i| Keypair::from_secret([i; 32])).collect()
}

fn genesis(ks: &[Keypair]) -> Genesis {
    Genesis::for_test(ks, vec![], Params::default())
}

/// A minimal deterministic network: messages delivered in FIFO order, timers
/// fired only when the test asks.
struct Cluster {
    cores: Vec<Core>,
    queue: VecDeque<(usize, NodeId, Message)>,
    timers: Vec<(usize, Timeout)>,
    down: BTreeSet<usize>,
    committed: Vec<Vec<Hash>>,
    stores: Vec<Store<MemDevice>>,
    clock: u64,
    seq: u64,
    due: Vec<(u64, u64, usize, Timeout)>,
}

impl Cluster {
    fn new(n: u8) -> Self {
        Self::with_params(n, Params::default())
    }

    fn with_params(n: u8, params: Params) -> Self {
        let ks = keys(n);
        let mut g = genesis(&ks);
        g.params = params;
        let v = Verifier::new();
        let cores: Vec<Core> = ks
            .iter()
            .map(|k| Core::new(g.clone(), k.clone(), Timeouts::default(), v.clone()))
            .collect();
        let mut c = Cluster {
            committed: vec![Vec::new(); cores.len()],
            stores: cores
                .iter()
                .map(|_| Store::open(MemDevice::new(false)).unwrap())
                .collect(),
            clock: 0,
            seq: 0,
            due: Vec::new(),
            cores,
            queue: VecDeque::new(),
            timers: Vec::new(),
            down: BTreeSet::new(),
        };
        for i in 0..c.cores.len() {
            let fx = c.cores[i].start();
            c.effects(i, fx);
        }
        c
    }

    /// The blocks node `i` persisted, with their certificates.
    fn stored(&self, i: usize) -> Vec<CommittedBlock> {
        self.stores[i].blocks(1, self.stores[i].height()).unwrap()
    }

    fn effects(&mut self, i: usize, out: Output) {
        let from = self.cores[i].id();
        for p in &out.persist {
            if let Persist::Block(cb) = p {
                self.committed[i].push(cb.block.hash());
            }
        }
        let fx = self.stores[i].commit(out).unwrap();
        for e in fx {
            // A node that is down or cut off sends nothing.
            if self.down.contains(&i) && !matches!(e, Effect::Schedule { .. }) {
                continue;
            }
            match e {
                Effect::Broadcast(m) => {
                    for j in 0..self.cores.len() {
                        if j != i {
                            self.queue.push_back((j, from, m.clone()));
                        }
                    }
                }
                Effect::Send { to, msg } => {
                    if let Some(j) = self.cores.iter().position(|c| c.id() == to) {
                        self.queue.push_back((j, from, msg));
                    }
                }
                Effect::Schedule { timeout, after_ms } => {
                    self.timers.push((i, timeout));
                    self.seq += 1;
                    self.due.push((self.clock + after_ms, self.seq, i, timeout));
                }
                _ => {}
            }
        }
    }

    fn deliver_all(&mut self) {
        let mut steps = 0;
        while let Some((j, from, msg)) = self.queue.pop_front() {
            steps += 1;
            assert!(steps < 100_000, "message storm");
            if self.down.contains(&j) {
                continue;
            }
            let fx = self.cores[j].handle(Input::Message { from, msg });
            self.effects(j, fx);
        }
    }

    /// Fires every pending timer of `kind` once.
    fn fire(&mut self, kind: TimeoutKind) {
        let (now, rest): (Vec<_>, Vec<_>) =
            self.timers.drain(..).partition(|(_, t)| t.kind == kind);
        self.timers = rest;
        for (i, t) in now {
            if !self.down.contains(&i) {
                let fx = self.cores[i].handle(Input::Timeout(t));
                self.effects(i, fx);
            }
        }
        self.deliver_all();
    }

    /// Drives timers in virtual-time order until node `i` reaches height `h`.
    fn run_until(&mut self, i: usize, h: u64) {
        let mut steps = 0;
        while self.cores[i].chain().height < h {
            steps += 1;
            assert!(
                steps < 1_000_000,
                "no progress at height {}",
                self.cores[i].chain().height
            );
            self.step();
        }
    }

    /// Fires the earliest timer (of a node that is up) and delivers what follows.
    fn step(&mut self) {
        let Some(k) = (0..self.due.len()).min_by_key(|k| (self.due[*k].0, self.due[*k].1)) else {
            panic!("no timers left");
        };
        let (at, _, j, t) = self.due.swap_remove(k);
        self.clock = at;
        if self.down.contains(&j) {
            return;
        }
        let fx = self.cores[j].handle(Input::Timeout(t));
        self.effects(j, fx);
        self.deliver_all();
    }

    /// Crashes every node and restarts it from what it persisted.
    fn restart_all(&mut self) {
        self.queue.clear();
        self.due.clear();
        self.timers.clear();
        let v = Verifier::new();
        for i in 0..self.cores.len() {
            let g = self.cores[i].chain().genesis().clone();
            let key = self.cores[i].key.clone();
            let store = std::mem::replace(
                &mut self.stores[i],
                Store::open(MemDevice::new(false)).unwrap(),
            );
            let mut dev = store.into_device();
            dev.crash(self.clock);
            self.stores[i] = Store::open(dev).unwrap();
            let core = Core::recover(g, key, Timeouts::default(), v.clone(), &self.stores[i]);
            self.cores[i] = core.unwrap();
            let fx = self.cores[i].start();
            self.effects(i, fx);
        }
        self.deliver_all();
    }

    fn submit(&mut self, i: usize, id: &str) {
        let tx = Tx {
            id: id.into(),
            body: TxBody::Kv(vec![Op::Append("k".into(), 1)]),
        };
        let (_, fx) = self.cores[i].submit(tx);
        self.effects(i, fx);
        self.deliver_all();
    }
}

#[test]
fn four_nodes_commit_the_same_blocks() {
    let mut c = Cluster::new(4);
    for h in 0..10 {
        c.submit(h % 4, &format!("tx{h}"));
        c.fire(TimeoutKind::EmptyBlock);
    }
    let heights: Vec<u64> = c.cores.iter().map(|x| x.chain().height).collect();
    assert!(heights.iter().all(|h| *h >= 10), "heights {heights:?}");
    let n = c.committed.iter().map(|v| v.len()).min().unwrap();
    for i in 1..4 {
        assert_eq!(c.committed[0][..n], c.committed[i][..n]);
    }
    for i in 0..10 {
        assert!(c.cores[0].chain().outcome(&format!("tx{i}")).is_some());
    }
}

#[test]
fn silent_proposer_gives_a_nil_round_then_the_next_proposer_commits() {
    let mut c = Cluster::new(4);
    // Height 1, round 0: proposer is roster[1]. Take it down.
    let p = c
        .cores
        .iter()
        .position(|x| x.id() == x.chain().roster().proposer(1, 0))
        .unwrap();
    c.down.insert(p);
    c.fire(TimeoutKind::EmptyBlock);
    assert_eq!(c.cores[(p + 1) % 4].chain().height, 0);
    // No proposal: propose timeout → nil prevotes → nil precommits → round 1.
    c.fire(TimeoutKind::Propose);
    for i in 0..4 {
        if i != p {
            let pv = c.cores[i].rs.prevotes.get(&0).map(|s| s.count(&None));
            assert_eq!(pv, Some(3), "node {i} saw 3 nil prevotes");
        }
    }
    let live = (p + 1) % 4;
    assert_eq!(c.cores[live].chain().height, 0);
    // Precommit timeout → round 1, whose proposer proposes at once (round > 0).
    c.fire(TimeoutKind::Precommit);
    assert_eq!(c.cores[live].chain().height, 1, "committed in round 1");
    let cert = c.cores[live].chain().last_cert.clone().unwrap();
    assert_eq!(cert.round, 1);
}

/// Crafted messages from the other three validators to one core under test.
struct Solo {
    ks: Vec<Keypair>,
    core: Core,
    out: Output,
}

impl Solo {
    fn new() -> Self {
        let ks = keys(4);
        let g = genesis(&ks);
        let mut core = Core::new(g, ks[0].clone(), Timeouts::default(), Verifier::new());
        let out = core.start();
        Solo { ks, core, out }
    }
    fn key_of(&self, id: NodeId) -> Keypair {
        self.ks.iter().find(|k| k.id() == id).unwrap().clone()
    }
    fn block(&self, round: u32, tag: &str) -> Block {
        let chain = self.core.chain();
        Block {
            height: 1,
            round,
            epoch: 0,
            prev_hash: chain.last_hash,
            proposer: chain.roster().proposer(1, round),
            roster_hash: chain.roster().hash(),
            txs: vec![Tx {
                id: tag.into(),
                body: TxBody::Kv(vec![Op::Write("x".into(), 1)]),
            }],
            evict: None,
            last_commit: None,
        }
    }
    fn propose(&mut self, round: u32, block: Block, valid_round: Option<u32>) {
        let k = self.key_of(block.proposer);
        let k = if block.round == round {
            k
        } else {
            self.key_of(self.core.chain().roster().proposer(1, round))
        };
        let proposal = Proposal {
            epoch: 0,
            height: 1,
            round,
            valid_round,
            block,
        };
        let sig = k.sign(
            DOMAIN_PROPOSAL,
            &proposal.sign_bytes(&proposal.block.hash()),
        );
        let msg = Message::Proposal(Box::new(SignedProposal {
            proposal,
            proposer: k.id(),
            sig,
        }));
        self.out = self.core.handle(Input::Message { from: k.id(), msg });
    }
    fn vote(&mut self, who: usize, kind: VoteKind, round: u32, block: Option<Hash>) {
        let k = self.ks[who].clone();
        let vote = Vote {
            kind,
            epoch: 0,
            height: 1,
            round,
            block,
            evict: None,
            validator: k.id(),
        };
        let sig = k.sign(DOMAIN_VOTE, &vote.sign_bytes());
        let msg = Message::Vote(SignedVote { vote, sig });
        self.out = self.core.handle(Input::Message { from: k.id(), msg });
    }
    fn timeout(&mut self, kind: TimeoutKind, round: u32) {
        self.out = self.core.handle(Input::Timeout(Timeout {
            kind,
            height: 1,
            round,
        }));
    }
    fn my_votes(&self, kind: VoteKind, round: u32) -> Option<Option<Hash>> {
        let set = match kind {
            VoteKind::Prevote => self.core.rs.prevotes.get(&round),
            VoteKind::Precommit => self.core.rs.precommits.get(&round),
        };
        set.and_then(|s| s.votes.get(&self.core.id()).map(|v| v.vote.block))
    }
}

#[test]
fn a_locked_node_prevotes_nil_for_another_block_until_a_newer_polka() {
    let mut s = Solo::new();
    let b = s.block(0, "b");
    let bh = b.hash();
    s.propose(0, b, None);
    assert_eq!(s.my_votes(VoteKind::Prevote, 0), Some(Some(bh)));
    s.vote(1, VoteKind::Prevote, 0, Some(bh));
    s.vote(2, VoteKind::Prevote, 0, Some(bh));
    // Polka for B: locked on B, precommit B.
    assert_eq!(s.my_votes(VoteKind::Precommit, 0), Some(Some(bh)));
    assert!(matches!(s.core.rs.locked, Some((0, ref x)) if x.hash() == bh));
    // The lock is durable with the precommit (protocol.md §6).
    assert!(s
        .out
        .persist
        .iter()
        .any(|p| matches!(p, Persist::SignState(st) if st.locked.is_some())));
    // Precommits split: next round.
    s.vote(1, VoteKind::Precommit, 0, None);
    s.vote(2, VoteKind::Precommit, 0, None);
    s.timeout(TimeoutKind::Precommit, 0);
    assert_eq!(s.core.rs.round, 1);
    // A fresh block C in round 1: a locked node must prevote nil.
    let c = s.block(1, "c");
    let ch = c.hash();
    s.propose(1, c.clone(), None);
    assert_eq!(s.my_votes(VoteKind::Prevote, 1), Some(None));
    // Round 2: C re-proposed with a polka from round 1 (newer than the lock): unlock.
    s.vote(1, VoteKind::Prevote, 1, Some(ch));
    s.vote(2, VoteKind::Prevote, 1, Some(ch));
    s.vote(3, VoteKind::Prevote, 1, Some(ch));
    s.timeout(TimeoutKind::Precommit, 1);
    s.core.rs.round = 1;
    s.vote(1, VoteKind::Precommit, 1, None);
    s.vote(2, VoteKind::Precommit, 1, None);
    s.vote(3, VoteKind::Precommit, 1, None);
    s.timeout(TimeoutKind::Precommit, 1);
    assert_eq!(s.core.rs.round, 2);
    s.propose(2, c, Some(1));
    assert_eq!(s.my_votes(VoteKind::Prevote, 2), Some(Some(ch)));
}

#[test]
fn an_equivocating_signer_counts_once_per_value_never_twice_toward_a_quorum() {
    let mut s = Solo::new();
    let b = s.block(0, "b");
    let bh = b.hash();
    let other = Some(crate::crypto::sha256(b"other"));
    s.propose(0, b, None);
    // Validator 3 prevotes something else, then B: evidence is recorded.
    s.vote(3, VoteKind::Prevote, 0, other);
    s.vote(3, VoteKind::Prevote, 0, Some(bh));
    assert_eq!(s.core.dropped.equivocation, 1);
    // B holds our vote and validator 3's: 2 < q(4) = 3. Two distinct voters in
    // total, so not even the prevote timeout: validator 3 is one voter, not two.
    assert_eq!(s.core.rs.prevotes[&0].count(&Some(bh)), 2);
    assert_eq!(s.core.rs.prevotes[&0].total(), 2);
    assert!(!s.out.effects.iter().any(
        |e| matches!(e, Effect::Schedule { timeout, .. } if timeout.kind == TimeoutKind::Prevote)
    ));
    assert_eq!(s.my_votes(VoteKind::Precommit, 0), None);
    assert!(s.core.rs.locked.is_none());
    // A third conflicting vote is not stored at all (memory bound).
    s.vote(3, VoteKind::Prevote, 0, None);
    assert_eq!(s.core.rs.prevotes[&0].count(&None), 0);
    assert_eq!(s.core.dropped.equivocation, 2);
    // A third distinct validator makes the quorum for B.
    s.vote(1, VoteKind::Prevote, 0, Some(bh));
    assert_eq!(s.my_votes(VoteKind::Precommit, 0), Some(Some(bh)));
}

#[test]
fn late_and_early_messages() {
    let mut s = Solo::new();
    let b = s.block(0, "b");
    let bh = b.hash();
    s.propose(0, b, None);
    for who in 1..=2 {
        s.vote(who, VoteKind::Prevote, 0, Some(bh));
    }
    // A prevote for height 2 arrives early: kept for later, not counted now.
    let k = s.ks[3].clone();
    let early = Vote {
        kind: VoteKind::Prevote,
        epoch: 0,
        height: 2,
        round: 0,
        block: None,
        evict: None,
        validator: k.id(),
    };
    let sig = k.sign(DOMAIN_VOTE, &early.sign_bytes());
    let _ = s.core.handle(Input::Message {
        from: k.id(),
        msg: Message::Vote(SignedVote { vote: early, sig }),
    });
    assert_eq!(s.core.future.len(), 1);
    for who in 1..=2 {
        s.vote(who, VoteKind::Precommit, 0, Some(bh));
    }
    assert_eq!(s.core.chain().height, 1);
    // The early vote was replayed into height 2.
    assert_eq!(s.core.rs.height, 2);
    assert_eq!(s.core.rs.prevotes.get(&0).map(|x| x.total()), Some(1));
    // A late precommit for height 1 is ignored without harm.
    let before = s.core.dropped.total();
    s.vote(3, VoteKind::Precommit, 0, Some(bh));
    assert_eq!(s.core.dropped.total(), before);
    assert_eq!(s.core.chain().height, 1);
}

#[test]
fn bad_signature_unknown_signer_and_bad_evict_are_dropped_and_counted() {
    let mut s = Solo::new();
    let k = s.ks[1].clone();
    let mut vote = Vote {
        kind: VoteKind::Prevote,
        epoch: 0,
        height: 1,
        round: 0,
        block: None,
        evict: None,
        validator: k.id(),
    };
    let bad = s.ks[2].sign(DOMAIN_VOTE, &vote.sign_bytes());
    let _ = s.core.handle(Input::Message {
        from: k.id(),
        msg: Message::Vote(SignedVote {
            vote: vote.clone(),
            sig: bad,
        }),
    });
    assert_eq!(s.core.dropped.bad_signature, 1);
    let stranger = Keypair::from_secret([99; 32]);
    let sv = Vote {
        validator: stranger.id(),
        ..vote.clone()
    };
    let sig = stranger.sign(DOMAIN_VOTE, &sv.sign_bytes());
    let _ = s.core.handle(Input::Message {
        from: stranger.id(),
        msg: Message::Vote(SignedVote { vote: sv, sig }),
    });
    assert_eq!(s.core.dropped.unknown_signer, 1);
    vote.evict = Some(s.ks[3].id());
    let sig = k.sign(DOMAIN_VOTE, &vote.sign_bytes());
    let _ = s.core.handle(Input::Message {
        from: k.id(),
        msg: Message::Vote(SignedVote { vote, sig }),
    });
    assert_eq!(s.core.dropped.bad_evict, 1);
    assert_eq!(s.core.status().dropped_messages, 3);
    assert!(s.core.rs.prevotes.get(&0).map(|x| x.total()).unwrap_or(0) == 0);
}

#[test]
fn restored_sign_state_prevents_double_signing_and_keeps_the_lock() {
    let mut s = Solo::new();
    let b = s.block(0, "b");
    let bh = b.hash();
    s.propose(0, b.clone(), None);
    s.vote(1, VoteKind::Prevote, 0, Some(bh));
    s.vote(2, VoteKind::Prevote, 0, Some(bh));
    let state = s
        .out
        .persist
        .iter()
        .find_map(|p| match p {
            Persist::SignState(st) => Some((**st).clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (state.round, state.step, state.block),
        (0, SignStep::Precommit, Some(bh))
    );
    // Restart from the persisted state.
    let ks = keys(4);
    let mut fresh = Core::new(
        genesis(&ks),
        ks[0].clone(),
        Timeouts::default(),
        Verifier::new(),
    );
    // The proof of lock (q prevotes for B in round 0) is persisted with the lock...
    assert_eq!(state.pol.len(), 3);
    fresh.restore_sign_state(state);
    // ...and restored, so the lock can be justified (relayed) after a restart.
    assert_eq!(fresh.rs.prevotes[&0].count(&Some(bh)), 3);
    let _ = fresh.start();
    assert!(matches!(fresh.rs.locked, Some((0, ref x)) if x.hash() == bh));
    // Round 0 votes for another value would be below/equal the last signed step: refused.
    assert!(!fresh.may_sign(1, 0, SignStep::Prevote, None));
    assert!(!fresh.may_sign(1, 0, SignStep::Precommit, None));
    assert!(fresh.may_sign(1, 0, SignStep::Precommit, Some(bh)));
    assert!(fresh.may_sign(1, 1, SignStep::Prevote, None));
}

#[test]
fn a_forged_certificate_is_refused_during_sync() {
    let mut c = Cluster::new(4);
    c.run_until(0, 5);
    // The blocks node 0 stored, as a peer would serve them.
    let ks = keys(4);
    let mut newcomer = Core::new(
        genesis(&ks),
        Keypair::from_secret([50; 32]),
        Timeouts::default(),
        Verifier::new(),
    );
    let _ = newcomer.start();
    let blocks = c.stored(0);
    assert!(blocks.len() >= 5);
    let bad_peer = ks[3].id();
    let mut forged = blocks.clone();
    // Replace one signature with a signature by a key outside the roster's set.
    let stranger = Keypair::from_secret([77; 32]);
    let vote = forged[2].cert.vote_of(forged[2].cert.sigs[0].validator);
    forged[2].cert.sigs[0].sig = stranger.sign(DOMAIN_VOTE, &vote.sign_bytes());
    let _ = newcomer.handle(Input::Message {
        from: bad_peer,
        msg: Message::SyncResponse(forged),
    });
    assert_eq!(
        newcomer.chain().height,
        2,
        "blocks before the forged one are fine"
    );
    assert_eq!(newcomer.dropped.invalid_block, 1);
    // A certificate short of a quorum is refused too.
    let mut short = blocks.clone();
    short[2].cert.sigs.truncate(2);
    let _ = newcomer.handle(Input::Message {
        from: bad_peer,
        msg: Message::SyncResponse(short),
    });
    assert_eq!(newcomer.chain().height, 2);
    assert_eq!(newcomer.dropped.invalid_block, 2);
    // From an honest peer the same heights apply.
    let _ = newcomer.handle(Input::Message {
        from: ks[0].id(),
        msg: Message::SyncResponse(blocks.clone()),
    });
    assert_eq!(newcomer.chain().height, blocks.len() as u64);
    assert_eq!(
        newcomer.chain().last_hash,
        blocks.last().unwrap().block.hash()
    );
}

#[test]
fn a_long_partition_evicts_the_node_exactly_where_the_rule_fires() {
    let params = Params {
        eviction_total: 40,
        ..Params::default()
    };
    let mut c = Cluster::with_params(4, params.clone());
    c.run_until(0, 10);
    let victim = c.cores[3].id();
    c.down.insert(3);
    c.run_until(0, 120);
    let roster = c.cores[0].chain().roster().clone();
    assert_eq!(roster.len(), 3, "node 4 was evicted");
    assert!(!roster.contains(&victim));
    // Replay the chain with an independent reading of protocol.md §5: at every
    // height the block's evict field is exactly what the rule says.
    let chain = c.stored(0);
    let mut roster: Vec<NodeId> = c.cores[0]
        .chain()
        .genesis()
        .roster
        .iter()
        .map(|e| e.id)
        .collect();
    let mut window: std::collections::VecDeque<NodeId> = Default::default();
    let mut evicted_at = None;
    for cb in &chain {
        let b = &cb.block;
        let total = window.len() as u64;
        let n = roster.len() as u64;
        let rule = if total >= params.eviction_total && n > params.min_roster as u64 {
            roster
                .iter()
                .enumerate()
                .map(|(num, id)| (window.iter().filter(|p| *p == id).count() as u64, num, *id))
                .filter(|(count, _, _)| count * n * 10 < total)
                .min()
                .map(|(_, _, id)| id)
        } else {
            None
        };
        assert_eq!(b.evict, rule, "height {}", b.height);
        window.push_back(b.proposer);
        if window.len() as u64 > params.eviction_total {
            window.pop_front();
        }
        if let Some(x) = b.evict {
            roster.retain(|id| *id != x);
            window.clear();
            evicted_at = Some((b.height, x));
        }
    }
    let (at, who) = evicted_at.expect("an eviction happened");
    assert_eq!(who, victim, "the cut-off node is the one the rule names");
    // The survivors agree and keep going.
    for i in 1..3 {
        assert_eq!(c.cores[i].chain().roster().len(), 3);
        assert_eq!(c.cores[i].chain().epoch(), 1);
    }
    assert!(c.cores[0].chain().height > at);
    // The cut-off node, healed, syncs and sees it was evicted.
    c.down.remove(&3);
    let stored = c.stored(0);
    let from = c.cores[0].id();
    let _ = c.cores[3].handle(Input::Message {
        from,
        msg: Message::SyncResponse(stored),
    });
    assert_eq!(c.cores[3].role(), Role::Evicted);
}

#[test]
fn every_node_restarting_mid_height_still_makes_progress() {
    let mut c = Cluster::new(4);
    c.run_until(0, 3);
    // Height 4: the round-0 proposer is down, so round 0 ends in nil votes.
    let p = c
        .cores
        .iter()
        .position(|x| x.id() == x.chain().roster().proposer(4, 0))
        .unwrap();
    c.down.insert(p);
    let live: Vec<usize> = (0..4).filter(|i| *i != p).collect();
    let mut steps = 0;
    while !live.iter().all(|i| {
        c.cores[*i].last_signed.map(|(h, r, st, _)| (h, r, st)) == Some((4, 0, SignStep::Precommit))
    }) {
        steps += 1;
        assert!(steps < 10_000);
        c.step();
    }
    assert_eq!(c.cores[live[0]].chain().height, 3);
    // Everyone crashes now and restarts from disk.
    c.down.clear();
    c.restart_all();
    c.run_until(0, 6);
    // Height 4 was decided after the restart, in a round after the signed ones
    // (before the fix every node sat in round 0 unable to sign: a permanent stall).
    let b4 = &c.stored(live[0])[3];
    assert_eq!(b4.block.height, 4);
    assert!(b4.cert.round >= 1, "decided in round {}", b4.cert.round);
    let n = c.committed.iter().map(|v| v.len()).min().unwrap();
    for i in 1..4 {
        assert_eq!(c.committed[0][..n], c.committed[i][..n]);
    }
}

#[test]
fn sync_asks_the_delivering_peer_and_gives_up_on_a_silent_one() {
    let ks = keys(4);
    let mut newcomer = Core::new(
        genesis(&ks),
        Keypair::from_secret([51; 32]),
        Timeouts::default(),
        Verifier::new(),
    );
    let _ = newcomer.start();
    // Node 0 relays a prevote signed by node 3 (dead, say) for height 6.
    let vote = Vote {
        kind: VoteKind::Prevote,
        epoch: 0,
        height: 6,
        round: 0,
        block: None,
        evict: None,
        validator: ks[3].id(),
    };
    let sig = ks[3].sign(DOMAIN_VOTE, &vote.sign_bytes());
    let _ = newcomer.handle(Input::Message {
        from: ks[0].id(),
        msg: Message::Vote(SignedVote { vote, sig }),
    });
    assert_eq!(newcomer.peer_heights.get(&ks[0].id()), Some(&5));
    assert!(!newcomer.peer_heights.contains_key(&ks[3].id()));
    let tick = Input::Timeout(Timeout {
        kind: TimeoutKind::Tick,
        height: 0,
        round: 0,
    });
    let fx = newcomer.handle(tick.clone());
    assert!(fx.effects.iter().any(|e| matches!(e, Effect::Send { to, msg: Message::SyncRequest { from: 1, .. } } if *to == ks[0].id())));
    // Node 0 never answers: after a few heartbeats its claim is forgotten.
    for _ in 0..4 {
        let _ = newcomer.handle(tick.clone());
    }
    assert!(!newcomer.peer_heights.contains_key(&ks[0].id()));
}

/// Found by the byzantine nemesis (issue 12): a peer that served a forged synced
/// block and kept announcing a far height was asked again after every refusal, so a
/// newcomer never reached its honest peers.
#[test]
fn a_peer_that_served_an_invalid_block_is_not_believed_for_a_while() {
    let ks = keys(4);
    let mut newcomer = Core::new(
        genesis(&ks),
        Keypair::from_secret([52; 32]),
        Timeouts::default(),
        Verifier::new(),
    );
    let _ = newcomer.start();
    let block = Block {
        height: 1,
        round: 0,
        epoch: 0,
        prev_hash: Hash::default(),
        proposer: ks[0].id(),
        roster_hash: Hash::default(),
        txs: vec![],
        evict: None,
        last_commit: None,
    };
    let cert = Certificate {
        epoch: 0,
        height: 1,
        round: 0,
        block: block.hash(),
        evict: None,
        sigs: vec![],
    };
    let _ = newcomer.handle(Input::Message {
        from: ks[0].id(),
        msg: Message::SyncResponse(vec![CommittedBlock { block, cert }]),
    });
    assert_eq!(newcomer.dropped.invalid_block, 1);
    let claim = |height: u64| {
        let a = Announce {
            from: ks[0].id(),
            epoch: 0,
            height,
            roster_hash: Hash::default(),
            new_view: false,
        };
        let sig = ks[0].sign(DOMAIN_ANNOUNCE, &crate::types::encode(&a));
        Input::Message {
            from: ks[0].id(),
            msg: Message::Announce(SignedAnnounce { announce: a, sig }),
        }
    };
    let _ = newcomer.handle(claim(100));
    assert!(
        !newcomer.peer_heights.contains_key(&ks[0].id()),
        "a liar's claim is ignored"
    );
    let tick = Input::Timeout(Timeout {
        kind: TimeoutKind::Tick,
        height: 0,
        round: 0,
    });
    for _ in 0..DISTRUST_TICKS {
        let _ = newcomer.handle(tick.clone());
    }
    let _ = newcomer.handle(claim(101));
    assert_eq!(
        newcomer.peer_heights.get(&ks[0].id()),
        Some(&101),
        "believed again later"
    );
}

/// A node whose signing log is corrupt (issue 13) does not trust any older
/// state: it signs nothing at or below the highest height it may have signed at
/// (its chain height + 1), and votes again once it learned that height's commit.
#[test]
fn a_corrupt_signing_log_holds_the_node_back_until_the_next_height() {
    let mut c = Cluster::new(4);
    c.run_until(0, 3);
    let len = c.stores[0].device().len(crate::store::LogFile::Sign);
    assert!(c.stores[0]
        .device_mut()
        .flip_bit(crate::store::LogFile::Sign, len - 1, 3));
    c.restart_all();
    let floor = c.stores[0]
        .damage()
        .sign_floor
        .expect("corruption detected");
    assert_eq!(floor, c.cores[0].chain().height + 1);
    assert_eq!(c.cores[0].status().storage.corrupt, 1);
    let marker = Some((floor, u32::MAX, SignStep::Precommit, None));
    assert_eq!(c.cores[0].last_signed, marker);
    // Until node 0 learns the commit of `floor`, it signs nothing.
    let mut steps = 0;
    while c.cores[0].chain().height < floor {
        assert_eq!(
            c.cores[0].last_signed, marker,
            "signed at or below the floor"
        );
        steps += 1;
        assert!(steps < 100_000, "the others did not commit {floor}");
        c.step();
    }
    // Then it takes part again.
    c.run_until(0, floor + 2);
    assert!(c.cores[0].last_signed.is_some_and(|(h, ..)| h > floor));
}

/// Issue 12: a signer flooding ever higher rounds of a stalled height makes us store
/// at most its two newest far rounds (CometBFT's two catch-up rounds); the rest are
/// dropped and counted, and a round up to the next is never refused.
#[test]
fn a_far_round_flood_stores_two_rounds_per_signer() {
    let mut s = Solo::new();
    for round in 5..=100 {
        s.vote(3, VoteKind::Prevote, round, None);
        s.vote(3, VoteKind::Precommit, round, None);
    }
    let far =
        |s: &Solo| s.core.rs.prevotes.range(2..).count() + s.core.rs.precommits.range(2..).count();
    assert_eq!(far(&s), 4, "two far rounds, prevotes and precommits");
    assert!(s.core.rs.prevotes.contains_key(&100) && s.core.rs.prevotes.contains_key(&99));
    // Each of rounds 7..=100 pushed out the oldest of the two kept.
    assert_eq!(s.core.dropped.far_round, 94);
    // Far proposals by the signer whose rounds they are take the same places.
    let who = s.ks[2].id();
    let theirs: Vec<u32> = (2..200)
        .filter(|r| s.core.chain().roster().proposer(1, *r) == who)
        .collect();
    for r in &theirs {
        let b = s.block(*r, "far");
        s.propose(*r, b, None);
    }
    assert_eq!(s.core.rs.proposals.range(2..).count(), 2);
    // The next round is always admitted.
    s.vote(1, VoteKind::Prevote, 1, None);
    assert_eq!(s.core.rs.prevotes.get(&1).map(|v| v.total()), Some(1));
}

/// Keeping a signer's *newest* far rounds keeps the f+1 round skip (L55) working
/// for honest validators that are far ahead in different rounds: keeping the first
/// two would leave no round with two of them.
#[test]
fn validators_far_ahead_in_different_rounds_still_make_us_skip() {
    let mut s = Solo::new();
    for (who, round) in [(1, 50), (2, 51), (1, 52), (2, 53), (1, 54)] {
        s.vote(who, VoteKind::Prevote, round, None);
        assert_eq!(s.core.rs.round, 0, "one validator per round: no skip yet");
    }
    s.vote(2, VoteKind::Prevote, 54, None);
    assert_eq!(s.core.rs.round, 54, "f+1 = 2 validators in round 54");
}
