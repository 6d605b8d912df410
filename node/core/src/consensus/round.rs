//! Tendermint's round (Algorithm 1 of Buchman, Kwon, Milosevic 2018, "The latest
//! gossip on BFT consensus"): one function per rule, each tagged with its lines,
//! plus the commit that ends a height.

use super::votes::VoteSet;
use super::{msg_height, Core, Effect, Output, Persist, SignStep, TimeoutKind};
use crate::crypto::{Hash, NodeId};
use crate::types::{
    Block, Certificate, CommitSig, CommittedBlock, Message, Proposal, SignedProposal, SignedVote,
    Vote, VoteKind, DOMAIN_PROPOSAL, DOMAIN_VOTE,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// step_p of Alg. 1, plus the pause after a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Step {
    /// Waiting for the proposal.
    Propose,
    /// Prevoted.
    Prevote,
    /// Precommitted.
    Precommit,
    /// Decided; waiting for the commit timeout to start the next height.
    Committed,
}

/// The state of Alg. 1 at one height: round, step, lock and valid value, and the
/// messages received.
pub(super) struct RoundState {
    pub(super) height: u64,
    pub(super) round: u32,
    pub(super) step: Step,
    pub(super) locked: Option<(u32, Block)>,
    pub(super) locked_pol: Vec<SignedVote>,
    pub(super) valid: Option<(u32, Block)>,
    pub(super) proposals: BTreeMap<u32, (SignedProposal, Hash)>,
    pub(super) prevotes: BTreeMap<u32, VoteSet>,
    pub(super) precommits: BTreeMap<u32, VoteSet>,
    pub(super) prevote_timer: BTreeSet<u32>,
    pub(super) precommit_timer: BTreeSet<u32>,
    pub(super) polka_seen: BTreeSet<u32>,
    pub(super) validity: HashMap<Hash, bool>,
    pub(super) waiting_for_txs: bool,
    pub(super) asked_for_block: BTreeSet<u32>,
    /// Each signer's stored rounds beyond round + 1 (`catch_up`).
    pub(super) catch_up: BTreeMap<NodeId, BTreeSet<u32>>,
}

impl RoundState {
    pub(super) fn new(height: u64) -> Self {
        RoundState {
            height,
            round: 0,
            step: Step::Propose,
            locked: None,
            locked_pol: Vec::new(),
            valid: None,
            proposals: BTreeMap::new(),
            prevotes: BTreeMap::new(),
            precommits: BTreeMap::new(),
            prevote_timer: BTreeSet::new(),
            precommit_timer: BTreeSet::new(),
            polka_seen: BTreeSet::new(),
            validity: HashMap::new(),
            waiting_for_txs: false,
            asked_for_block: BTreeSet::new(),
            catch_up: BTreeMap::new(),
        }
    }
}

impl Core {
    // L11-21: StartRound(round). Every member schedules OnTimeoutPropose (the paper
    // does so only for non-proposers; a proposer's own timer is harmless); the
    // proposer proposes, or first waits up to `empty_block_ms` for transactions.
    pub(super) fn start_round(&mut self, round: u32, fx: &mut Output) {
        let h = self.rs.height;
        self.rs.round = round;
        self.rs.step = Step::Propose;
        self.rs.waiting_for_txs = false;
        if !self.is_member() {
            return;
        }
        let propose_after = self.timeouts.propose_ms
            + self.timeouts.empty_block_ms
            + self.timeouts.propose_delta_ms * round as u64;
        fx.push(self.schedule(TimeoutKind::Propose, h, round, propose_after));
        if self.chain.roster().proposer(h, round) == self.id() {
            if self.rs.valid.is_none()
                && round == 0
                && self.mempool.is_empty()
                && self.timeouts.empty_block_ms > 0
            {
                self.rs.waiting_for_txs = true;
                fx.push(self.schedule(
                    TimeoutKind::EmptyBlock,
                    h,
                    round,
                    self.timeouts.empty_block_ms,
                ));
            } else {
                self.propose(fx);
            }
        }
        self.evaluate(fx);
    }

    /// A proposer waiting for transactions proposes as soon as one arrives.
    pub(super) fn maybe_propose_now(&mut self, fx: &mut Output) {
        if self.rs.waiting_for_txs && self.rs.step == Step::Propose {
            self.rs.waiting_for_txs = false;
            self.propose(fx);
            self.evaluate(fx);
        }
    }

    // L14-19: propose validValue if there is one (with its valid round), else a new
    // block; signed only if the double-sign guard allows it, durable first (§6).
    pub(super) fn propose(&mut self, fx: &mut Output) {
        let (h, r) = (self.rs.height, self.rs.round);
        self.rs.waiting_for_txs = false;
        let (block, valid_round) = match &self.rs.valid {
            Some((vr, b)) => (b.clone(), Some(*vr)),
            None => (self.build_block(), None),
        };
        let hash = block.hash();
        if !self.may_sign(h, r, SignStep::Propose, Some(hash)) {
            return;
        }
        let proposal = Proposal {
            epoch: self.chain.epoch(),
            height: h,
            round: r,
            valid_round,
            block,
        };
        let sig = self.key.sign(DOMAIN_PROPOSAL, &proposal.sign_bytes(&hash));
        let sp = SignedProposal {
            proposal,
            proposer: self.id(),
            sig,
        };
        self.persist_sign(h, r, SignStep::Propose, Some(hash), fx);
        fx.push(Effect::Broadcast(Message::Proposal(Box::new(sp.clone()))));
        self.rs.proposals.insert(r, (sp, hash));
        if let Some(vr) = valid_round {
            // Relay the polka that justifies re-proposing: nodes that missed it (cut off
            // during round vr) could not accept the proposal otherwise.
            self.relay_polka(vr, hash, fx);
        }
    }

    /// Re-broadcasts the prevotes of `round` for `hash`: nodes that missed that polka
    /// could not accept a re-proposal otherwise (DESIGN R3).
    pub(super) fn relay_polka(&self, round: u32, hash: Hash, fx: &mut Output) {
        if let Some(set) = self.rs.prevotes.get(&round) {
            for v in set.for_value(&Some(hash)) {
                fx.push(Effect::Broadcast(Message::Vote(v.clone())));
            }
        }
    }

    /// getValue(): a new block from the mempool, carrying the rule's evict field
    /// (protocol.md §5) and the last commit.
    pub(super) fn build_block(&self) -> Block {
        let h = self.rs.height;
        Block {
            height: h,
            round: self.rs.round,
            epoch: self.chain.epoch(),
            prev_hash: self.chain.last_hash,
            proposer: self.id(),
            roster_hash: self.chain.roster().hash(),
            txs: self
                .mempool
                .reap(self.chain.params().max_block_txs as usize),
            evict: self.chain.expected_evict(),
            last_commit: self.chain.last_cert.clone(),
        }
    }

    /// Signs a prevote or precommit for this round (if the guard allows), tallies it,
    /// and broadcasts it after the signing state that lists it (§6).
    pub(super) fn vote(&mut self, kind: VoteKind, block: Option<Hash>, fx: &mut Output) {
        let (h, r) = (self.rs.height, self.rs.round);
        let step = match kind {
            VoteKind::Prevote => SignStep::Prevote,
            VoteKind::Precommit => SignStep::Precommit,
        };
        if !self.may_sign(h, r, step, block) {
            return;
        }
        let vote = Vote {
            kind,
            epoch: self.chain.epoch(),
            height: h,
            round: r,
            block,
            evict: self.chain.expected_evict(),
            validator: self.id(),
        };
        let sig = self.key.sign(DOMAIN_VOTE, &vote.sign_bytes());
        let sv = SignedVote { vote, sig };
        let set = match kind {
            VoteKind::Prevote => self.rs.prevotes.entry(r).or_default(),
            VoteKind::Precommit => self.rs.precommits.entry(r).or_default(),
        };
        let _ = set.add(sv.clone());
        // Durable (with this vote among `own`) before the vote leaves (§6).
        self.persist_sign(h, r, step, block, fx);
        fx.push(Effect::Broadcast(Message::Vote(sv)));
    }

    /// valid(v) of Alg. 1: the proposal's block passes the chain's checks; cached
    /// per hash.
    pub(super) fn is_valid(&mut self, hash: Hash) -> bool {
        if let Some(v) = self.rs.validity.get(&hash) {
            return *v;
        }
        let Some(block) = self
            .rs
            .proposals
            .values()
            .find(|(_, h)| *h == hash)
            .map(|(p, _)| p.proposal.block.clone())
        else {
            return false;
        };
        let ok = match self.chain.check_block(&block, &self.verifier) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(height = block.height, error = %e, "invalid proposal");
                self.dropped.invalid_block += 1;
                false
            }
        };
        self.rs.validity.insert(hash, ok);
        ok
    }

    /// The block of a proposal received at this height.
    pub(super) fn block_for(&self, hash: &Hash) -> Option<Block> {
        self.rs
            .proposals
            .values()
            .find(|(_, h)| h == hash)
            .map(|(p, _)| p.proposal.block.clone())
    }

    /// Applies every rule of Tendermint's algorithm that is enabled, until none is.
    pub(super) fn evaluate(&mut self, fx: &mut Output) {
        loop {
            if self.rs.step == Step::Committed || !self.is_member() {
                // Non-members still learn decisions (they may be syncing).
                if self.rs.step != Step::Committed && self.try_decide(fx) {
                    continue;
                }
                return;
            }
            if self.try_decide(fx) {
                continue;
            }
            if self.step_once(fx) {
                continue;
            }
            return;
        }
    }

    // L49-54: the decision rule, for any round: a proposal with `q(n)` precommits for
    // it is committed and the next height starts. A decision whose proposal never
    // reached us fetches the block from a signer.
    pub(super) fn try_decide(&mut self, fx: &mut Output) -> bool {
        let q = self.chain.roster().quorum();
        let decided: Vec<(u32, Hash)> = self
            .rs
            .precommits
            .iter()
            .filter_map(|(r, set)| match set.quorum_value(q) {
                Some(Some(hash)) => Some((*r, hash)),
                _ => None,
            })
            .collect();
        for (r, hash) in decided {
            match self.block_for(&hash) {
                Some(block) if self.is_valid(hash) => {
                    let cert = self.make_cert(r, hash, &block);
                    self.apply_committed(CommittedBlock { block, cert }, fx);
                    self.next_height(fx);
                    return true;
                }
                Some(_) => {}
                None if self.rs.asked_for_block.insert(r) => {
                    // Decided without the proposal reaching us: fetch it from a signer.
                    let me = self.id();
                    let signer = self.rs.precommits.get(&r).and_then(|s| {
                        s.for_value(&Some(hash))
                            .find(|v| v.vote.validator != me)
                            .map(|v| v.vote.validator)
                    });
                    if let Some(to) = signer {
                        let h = self.rs.height;
                        fx.push(Effect::Send {
                            to,
                            msg: Message::SyncRequest { from: h, to: h },
                        });
                    }
                }
                None => {}
            }
        }
        false
    }

    /// The commit certificate: the precommits of `round` for `hash`.
    pub(super) fn make_cert(&self, round: u32, hash: Hash, block: &Block) -> Certificate {
        let sigs: Vec<CommitSig> = self
            .rs
            .precommits
            .get(&round)
            .map(|s| {
                s.for_value(&Some(hash))
                    .map(|v| CommitSig {
                        validator: v.vote.validator,
                        sig: v.sig,
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Paired with the tally's check in `VoteSet::add`.
        debug_assert!(
            sigs.windows(2).all(|w| w[0].validator < w[1].validator),
            "a certificate never counts a validator twice"
        );
        Certificate {
            epoch: self.chain.epoch(),
            height: self.rs.height,
            round,
            block: hash,
            evict: block.evict,
            sigs,
        }
    }

    /// One enabled rule of the current round, if any (Buchman et al. 2018, Alg. 1),
    /// tried in a fixed order. A rule returns `Some(progress)` when its guard held
    /// (the evaluation stops there) and `None` when it is not enabled.
    pub(super) fn step_once(&mut self, fx: &mut Output) -> bool {
        let rules: [fn(&mut Core, &mut Output) -> Option<bool>; 7] = [
            Core::upon_higher_round,
            Core::upon_proposal,
            Core::upon_proposal_with_polka,
            Core::upon_prevotes_any,
            Core::upon_polka,
            Core::upon_prevotes_nil,
            Core::upon_precommits_any,
        ];
        rules
            .into_iter()
            .find_map(|rule| rule(self, fx))
            .unwrap_or(false)
    }

    /// This round's proposal: (valid round, block hash).
    fn round_proposal(&self) -> Option<(Option<u32>, Hash)> {
        self.rs
            .proposals
            .get(&self.rs.round)
            .map(|(p, hash)| (p.proposal.valid_round, *hash))
    }

    // L55-56: f+1 validators are in a higher round: StartRound(that round).
    fn upon_higher_round(&mut self, fx: &mut Output) -> Option<bool> {
        let r = self.rs.round;
        let skip = self.chain.roster().skip_threshold();
        let higher = self
            .rs
            .prevotes
            .range(r + 1..)
            .chain(self.rs.precommits.range(r + 1..))
            .fold(
                BTreeMap::<u32, BTreeSet<NodeId>>::new(),
                |mut acc, (rr, set)| {
                    acc.entry(*rr)
                        .or_default()
                        .extend(set.votes.keys().copied());
                    acc
                },
            )
            .into_iter()
            .rev()
            .find(|(_, who)| who.len() >= skip)
            .map(|(rr, _)| rr)?;
        self.start_round(higher, fx);
        Some(true)
    }

    // L22-27: a fresh proposal (vr = -1) while proposing: prevote it if valid and
    // not against our lock, else nil.
    fn upon_proposal(&mut self, fx: &mut Output) -> Option<bool> {
        if self.rs.step != Step::Propose {
            return None;
        }
        let (None, hash) = self.round_proposal()? else {
            return None;
        };
        let ok = self.is_valid(hash)
            && match &self.rs.locked {
                None => true,
                Some((_, b)) => b.hash() == hash,
            };
        self.rs.step = Step::Prevote;
        self.vote(VoteKind::Prevote, ok.then_some(hash), fx);
        Some(true)
    }

    // L28-33: a re-proposal with a polka in its valid round vr < r while proposing:
    // prevote it if valid and our lock is no newer than vr (or on it), else nil.
    fn upon_proposal_with_polka(&mut self, fx: &mut Output) -> Option<bool> {
        if self.rs.step != Step::Propose {
            return None;
        }
        let (Some(vr), hash) = self.round_proposal()? else {
            return None;
        };
        let q = self.chain.roster().quorum();
        let polka = vr < self.rs.round
            && self
                .rs
                .prevotes
                .get(&vr)
                .map(|s| s.count(&Some(hash)) >= q)
                .unwrap_or(false);
        if !polka {
            return None;
        }
        let ok = self.is_valid(hash)
            && match &self.rs.locked {
                None => true,
                Some((lr, b)) => *lr <= vr || b.hash() == hash,
            };
        self.rs.step = Step::Prevote;
        self.vote(VoteKind::Prevote, ok.then_some(hash), fx);
        Some(true)
    }

    /// Prevotes of this round: (distinct voters, the value with a quorum if any).
    fn prevote_tally(&self) -> (usize, Option<Option<Hash>>) {
        let q = self.chain.roster().quorum();
        self.rs
            .prevotes
            .get(&self.rs.round)
            .map(|s| (s.total(), s.quorum_value(q)))
            .unwrap_or((0, None))
    }

    // L34-35: 2f+1 prevotes for anything, first time, while prevoting: schedule
    // OnTimeoutPrevote.
    fn upon_prevotes_any(&mut self, fx: &mut Output) -> Option<bool> {
        let (r, h) = (self.rs.round, self.rs.height);
        let (total, _) = self.prevote_tally();
        if self.rs.step == Step::Prevote
            && total >= self.chain.roster().quorum()
            && self.rs.prevote_timer.insert(r)
        {
            let after = self.timeouts.vote_ms + self.timeouts.vote_delta_ms * r as u64;
            fx.push(self.schedule(TimeoutKind::Prevote, h, r, after));
            return Some(true);
        }
        None
    }

    // L36-43: the proposal and a polka for it, first time, step >= prevote: while
    // prevoting lock on it (with its proof of lock, DESIGN R2) and precommit it;
    // in any case it becomes the valid value.
    fn upon_polka(&mut self, fx: &mut Output) -> Option<bool> {
        let r = self.rs.round;
        let (_, hash) = self.round_proposal()?;
        let (_, quorum) = self.prevote_tally();
        if quorum != Some(Some(hash))
            || self.rs.step < Step::Prevote
            || self.rs.polka_seen.contains(&r)
            || !self.is_valid(hash)
        {
            return None;
        }
        self.rs.polka_seen.insert(r);
        let Some(block) = self.block_for(&hash) else {
            return Some(false);
        };
        if self.rs.step == Step::Prevote {
            self.rs.locked = Some((r, block.clone()));
            self.rs.locked_pol = self
                .rs
                .prevotes
                .get(&r)
                .map(|set| set.for_value(&Some(hash)).cloned().collect())
                .unwrap_or_default();
            self.rs.step = Step::Precommit;
            self.vote(VoteKind::Precommit, Some(hash), fx);
        }
        self.rs.valid = Some((r, block));
        Some(true)
    }

    // L44-46: 2f+1 prevotes for nil while prevoting: precommit nil.
    fn upon_prevotes_nil(&mut self, fx: &mut Output) -> Option<bool> {
        if self.rs.step != Step::Prevote || self.prevote_tally().1 != Some(None) {
            return None;
        }
        self.rs.step = Step::Precommit;
        self.vote(VoteKind::Precommit, None, fx);
        Some(true)
    }

    // L47-48: 2f+1 precommits for anything, first time: schedule OnTimeoutPrecommit.
    fn upon_precommits_any(&mut self, fx: &mut Output) -> Option<bool> {
        let (r, h) = (self.rs.round, self.rs.height);
        let total = self.rs.precommits.get(&r).map(|s| s.total()).unwrap_or(0);
        if total >= self.chain.roster().quorum() && self.rs.precommit_timer.insert(r) {
            let after = self.timeouts.vote_ms + self.timeouts.vote_delta_ms * r as u64;
            fx.push(self.schedule(TimeoutKind::Precommit, h, r, after));
            return Some(true);
        }
        None
    }

    // L57-60: OnTimeoutPropose(h, r): still proposing in r: prevote nil.
    pub(super) fn on_timeout_propose(&mut self, round: u32, fx: &mut Output) {
        if round == self.rs.round && self.rs.step == Step::Propose {
            self.rs.step = Step::Prevote;
            self.vote(VoteKind::Prevote, None, fx);
            self.evaluate(fx);
        }
    }

    // L61-64: OnTimeoutPrevote(h, r): still prevoting in r: precommit nil.
    pub(super) fn on_timeout_prevote(&mut self, round: u32, fx: &mut Output) {
        if round == self.rs.round && self.rs.step == Step::Prevote {
            self.rs.step = Step::Precommit;
            self.vote(VoteKind::Precommit, None, fx);
            self.evaluate(fx);
        }
    }

    // L65-67: OnTimeoutPrecommit(h, r): undecided in r: StartRound(r + 1).
    pub(super) fn on_timeout_precommit(&mut self, round: u32, fx: &mut Output) {
        if round == self.rs.round && self.rs.step != Step::Committed {
            self.start_round(round + 1, fx);
        }
    }

    /// Commits a decided or synced block: apply, persist, answer clients, and on a
    /// membership change start the view change (protocol.md §4.2–4.3, §5).
    pub(super) fn apply_committed(&mut self, cb: CommittedBlock, fx: &mut Output) {
        let h = cb.block.height;
        // Paired with the check after `apply`: the chain only ever grows by one
        // linked block.
        debug_assert_eq!(h, self.chain.height + 1, "a committed block is height + 1");
        debug_assert_eq!(
            cb.block.prev_hash, self.chain.last_hash,
            "a committed block links to the last one"
        );
        let applied = self.chain.apply(&cb.block, cb.cert.clone());
        debug_assert!(
            self.chain.height == h && self.chain.last_hash == cb.block.hash(),
            "the chain took the committed block as its head"
        );
        for tx in &cb.block.txs {
            self.mempool.remove(&tx.id);
        }
        tracing::debug!(height = h, txs = cb.block.txs.len(), "committed");
        fx.persist(Persist::Block(Box::new(cb)));
        let changed = applied.membership_changed();
        fx.push(Effect::Committed {
            height: h,
            outcomes: applied.outcomes,
        });
        if changed {
            tracing::info!(
                height = h,
                epoch = self.chain.epoch(),
                n = self.chain.roster().len(),
                "roster changed"
            );
            fx.push(Effect::RosterChanged(self.chain.roster().clone()));
            fx.push(Effect::Broadcast(Message::Announce(self.announce(true))));
        }
        self.rs = RoundState::new(h + 1);
        self.rs.step = Step::Committed;
    }

    /// After a commit: start the next height now or after `commit_ms`.
    pub(super) fn next_height(&mut self, fx: &mut Output) {
        if self.timeouts.commit_ms == 0 {
            self.start_height(fx);
        } else {
            let h = self.rs.height;
            fx.push(self.schedule(TimeoutKind::Commit, h, 0, self.timeouts.commit_ms));
        }
    }

    /// StartRound(0) of the next height, then the messages kept for it.
    pub(super) fn start_height(&mut self, fx: &mut Output) {
        self.start_round(0, fx);
        let h = self.rs.height;
        let pending = std::mem::take(&mut self.future);
        for (from, msg) in pending {
            if msg_height(&msg).is_some_and(|mh| mh >= h) {
                self.on_message(from, msg, fx);
            }
        }
    }
}
