//! The sans-IO node core: Tendermint consensus (protocol.md §2) with membership
//! changes (§4) and eviction votes (§5), plus mempool and block sync.
//!
//! Inputs (peer messages, timeouts, client transactions) go in; effects (send,
//! schedule a timeout, persist, commit) come out. No sockets, clocks or files live
//! here, so the real runtime and the simulator drive the very same code.
//!
//! Effects are ordered: a runtime must make every `Persist*` effect durable before
//! it performs any effect after it (protocol.md §6).

use crate::chain::ChainState;
use crate::crypto::{Hash, Keypair, NodeId, Verifier};
use crate::mempool::Mempool;
use crate::roster::Roster;
use crate::types::{
    Announce, Block, Certificate, CommitSig, CommittedBlock, Genesis, Message, Proposal,
    SignedAnnounce, SignedProposal, SignedVote, Tx, TxBody, TxOutcome, Vote, VoteKind,
    DOMAIN_ANNOUNCE, DOMAIN_PROPOSAL, DOMAIN_VOTE,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Timeouts in milliseconds (of real or simulated time). Tendermint's timeouts grow
/// with the round so that a slow network eventually gets long enough rounds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// Wait for a proposal in round 0.
    pub propose_ms: u64,
    /// Added per round.
    pub propose_delta_ms: u64,
    /// Wait after any quorum of prevotes.
    pub vote_ms: u64,
    /// Added per round.
    pub vote_delta_ms: u64,
    /// Pause after a commit before the next height starts.
    pub commit_ms: u64,
    /// How long a proposer with an empty mempool waits for transactions before it
    /// proposes an empty block (CometBFT's `create_empty_blocks_interval`).
    pub empty_block_ms: u64,
    /// Heartbeat: status announcements, vote re-broadcast, sync checks.
    pub tick_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            propose_ms: 1000,
            propose_delta_ms: 500,
            vote_ms: 500,
            vote_delta_ms: 250,
            commit_ms: 0,
            empty_block_ms: 100,
            tick_ms: 250,
        }
    }
}

impl Timeouts {
    /// Short rounds for tests and containerised harness runs: faults and recoveries
    /// fit in a one-minute test.
    pub fn fast() -> Self {
        Timeouts {
            propose_ms: 400,
            propose_delta_ms: 200,
            vote_ms: 200,
            vote_delta_ms: 100,
            commit_ms: 0,
            empty_block_ms: 30,
            tick_ms: 100,
        }
    }
}

/// Which timer fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TimeoutKind {
    /// No proposal in time: prevote nil.
    Propose,
    /// Prevotes split: precommit nil.
    Prevote,
    /// Precommits split: next round.
    Precommit,
    /// Start the next height.
    Commit,
    /// A proposer stops waiting for transactions.
    EmptyBlock,
    /// Heartbeat.
    Tick,
}

/// A timer, identified by its view so a stale one is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timeout {
    /// Which.
    pub kind: TimeoutKind,
    /// Height it was set for.
    pub height: u64,
    /// Round it was set for.
    pub round: u32,
}

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
    /// Make the signing state durable before anything after this effect (§6).
    PersistSignState(Box<SignState>),
    /// Make a committed block durable before anything after this effect (§6).
    PersistBlock(Box<CommittedBlock>),
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

/// An input to the core.
#[derive(Clone, Debug)]
pub enum Input {
    /// A message from a peer (the transport's idea of who sent it).
    Message {
        /// Sender as the transport knows it.
        from: NodeId,
        /// The message.
        msg: Message,
    },
    /// A timer fired.
    Timeout(Timeout),
}

/// Answer to a client transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submit {
    /// Invalid: it will never apply (HTTP 4xx).
    Rejected(String),
    /// Already committed: its first result.
    Committed(TxOutcome),
    /// Accepted into the mempool: the outcome comes with `Effect::Committed`.
    Pending,
    /// Mempool full: try later (HTTP 503).
    Busy,
}

/// Step order used by the double-sign guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SignStep {
    /// A proposal.
    Propose,
    /// A prevote.
    Prevote,
    /// A precommit.
    Precommit,
}

/// What the node last signed, and its lock: durable before the signature leaves the
/// node, so a restarted node never signs two different messages for one step and
/// never forgets the block it locked on (protocol.md §6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignState {
    /// Height.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// Step.
    pub step: SignStep,
    /// What was signed (block hash or nil).
    pub block: Option<Hash>,
    /// Tendermint's locked round and block at this height.
    pub locked: Option<(u32, Block)>,
    /// The proof of lock: the q(n) prevotes for the locked block in the locked
    /// round. Votes live in memory, so without it a crash of every node leaves locks
    /// that nobody can justify any more; a re-proposal of the locked block is then
    /// never accepted and nodes locked on different blocks stall for ever.
    pub pol: Vec<SignedVote>,
    /// This node's own votes of its last two rounds at this height. A restarted node
    /// resumes in its last round and re-sends them, so peers a round behind can still
    /// complete the quorum they need (with q(n) = every live node, one node alone in
    /// a later round would otherwise stall everyone).
    pub own: Vec<SignedVote>,
}

/// The node's role (protocol.md §5, §7 `/status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// In the roster and up to date.
    Validator,
    /// Catching up, or waiting to be added.
    Syncing,
    /// Deleted from the roster by an eviction, not re-added.
    Evicted,
}

/// Counters of messages dropped, by reason (visible in `/status`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    /// Signature did not verify.
    pub bad_signature: u64,
    /// Signer not in the roster of the message's epoch.
    pub unknown_signer: u64,
    /// Epoch older than ours.
    pub stale_epoch: u64,
    /// Evict field disagrees with the rule (protocol.md §5).
    pub bad_evict: u64,
    /// A second, different vote for one step by one validator (kept as evidence and
    /// tallied once per value, never twice toward one quorum).
    pub equivocation: u64,
    /// Invalid proposal or synced block.
    pub invalid_block: u64,
}

impl Dropped {
    /// All drops.
    pub fn total(&self) -> u64 {
        self.bad_signature
            + self.unknown_signer
            + self.stale_epoch
            + self.bad_evict
            + self.equivocation
            + self.invalid_block
    }
}

/// A snapshot for `/status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    /// Node id.
    pub id: NodeId,
    /// Last committed height.
    pub height: u64,
    /// Epoch of the next height.
    pub epoch: u64,
    /// Current round.
    pub round: u32,
    /// Step in the round (propose, prevote, precommit, committed).
    pub step: String,
    /// Round of the Tendermint lock, if locked.
    pub locked_round: Option<u32>,
    /// Round of the valid value, if any.
    pub valid_round: Option<u32>,
    /// Prevotes and precommits held per round: (round, prevoters, precommitters).
    pub votes: Vec<(u32, usize, usize)>,
    /// Role.
    pub role: Role,
    /// Roster of the next height.
    pub roster: Vec<crate::types::RosterEntry>,
    /// Proposal counts of the window, by node id hex.
    pub proposal_counts: BTreeMap<String, u64>,
    /// Blocks in the window.
    pub proposal_total: u64,
    /// The abnormal node the rule names for the next height.
    pub abnormal: Option<NodeId>,
    /// Total dropped messages.
    pub dropped_messages: u64,
    /// Drops by reason.
    pub dropped: Dropped,
    /// Pending transactions.
    pub mempool: usize,
    /// Highest height a peer claimed.
    pub best_peer_height: u64,
}

/// Heartbeats during which a peer that served an invalid block is not asked again.
const DISTRUST_TICKS: u32 = 20;

/// Blocks asked for in one sync request.
pub const SYNC_BATCH: u64 = 256;
/// Future-height messages kept until their height starts.
const FUTURE_LIMIT: usize = 4096;

/// Distinct values one validator may be recorded under in one vote set: its vote
/// and one conflicting vote (bounds what an equivocator can make us store).
const MAX_VALUES_PER_VALIDATOR: usize = 2;

/// What adding a vote did.
#[derive(Debug, PartialEq, Eq)]
enum Added {
    /// A new vote: tallies changed.
    New,
    /// Already held.
    Duplicate,
    /// A second, different vote by a validator: evidence of equivocation. It is
    /// tallied under its own value (`counted`) unless the validator is at its limit.
    Equivocation { counted: bool },
}

/// The prevotes or precommits of one round.
///
/// A validator counts at most once per value and once in the total of distinct
/// voters, so it can never be counted twice toward one quorum. An equivocator is
/// tallied under each value it signed: safe, since two quorums for different values
/// intersect in f+1 signers, at least one of them honest, and honest nodes never sign
/// both; and needed for liveness, or honest nodes that heard the twin votes in a
/// different order would never agree on a polka (CometBFT keeps conflicting votes for
/// the same reason).
#[derive(Default)]
struct VoteSet {
    /// Each validator's first vote: what totals count and what we re-send.
    votes: BTreeMap<NodeId, SignedVote>,
    /// The votes for each value.
    by_value: BTreeMap<Option<Hash>, BTreeMap<NodeId, SignedVote>>,
}

impl VoteSet {
    fn add(&mut self, v: SignedVote) -> Added {
        let who = v.vote.validator;
        let Some(prev) = self.votes.get(&who) else {
            self.by_value
                .entry(v.vote.block)
                .or_default()
                .insert(who, v.clone());
            self.votes.insert(who, v);
            return Added::New;
        };
        if prev.vote == v.vote {
            return Added::Duplicate;
        }
        let tally = self.by_value.entry(v.vote.block).or_default();
        if tally.get(&who).is_some_and(|x| x.vote == v.vote) {
            return Added::Duplicate;
        }
        let values = self
            .by_value
            .values()
            .filter(|t| t.contains_key(&who))
            .count();
        let counted = values < MAX_VALUES_PER_VALIDATOR
            && !self
                .by_value
                .get(&v.vote.block)
                .is_some_and(|t| t.contains_key(&who));
        if counted {
            self.by_value
                .entry(v.vote.block)
                .or_default()
                .insert(who, v);
        }
        Added::Equivocation { counted }
    }
    fn count(&self, value: &Option<Hash>) -> usize {
        self.by_value.get(value).map(|t| t.len()).unwrap_or(0)
    }
    fn total(&self) -> usize {
        self.votes.len()
    }
    /// A value (block or nil) with at least `q` votes.
    fn quorum_value(&self, q: usize) -> Option<Option<Hash>> {
        self.by_value
            .iter()
            .find(|(_, t)| t.len() >= q)
            .map(|(v, _)| *v)
    }
    /// The votes for one value.
    fn for_value(&self, value: &Option<Hash>) -> impl Iterator<Item = &SignedVote> {
        self.by_value
            .get(value)
            .into_iter()
            .flat_map(|t| t.values())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Propose,
    Prevote,
    Precommit,
    /// Decided; waiting for the commit timeout to start the next height.
    Committed,
}

struct RoundState {
    height: u64,
    round: u32,
    step: Step,
    locked: Option<(u32, Block)>,
    locked_pol: Vec<SignedVote>,
    valid: Option<(u32, Block)>,
    proposals: BTreeMap<u32, (SignedProposal, Hash)>,
    prevotes: BTreeMap<u32, VoteSet>,
    precommits: BTreeMap<u32, VoteSet>,
    prevote_timer: BTreeSet<u32>,
    precommit_timer: BTreeSet<u32>,
    polka_seen: BTreeSet<u32>,
    validity: HashMap<Hash, bool>,
    waiting_for_txs: bool,
    asked_for_block: BTreeSet<u32>,
}

impl RoundState {
    fn new(height: u64) -> Self {
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
        }
    }
}

/// The node's consensus core.
pub struct Core {
    key: Keypair,
    timeouts: Timeouts,
    verifier: Verifier,
    chain: ChainState,
    rs: RoundState,
    mempool: Mempool,
    gossip: Vec<Tx>,
    last_signed: Option<(u64, u32, SignStep, Option<Hash>)>,
    future: Vec<(NodeId, Message)>,
    peer_heights: BTreeMap<NodeId, u64>,
    /// Peers that served an invalid block → tick until which their height claims are
    /// ignored (else a liar "furthest ahead" starves sync of honest peers, issue 12).
    distrusted: BTreeMap<NodeId, u32>,
    sync_inflight: Option<(NodeId, u64, u32)>,
    resume_step: Option<Step>,
    ticks: u32,
    dropped: Dropped,
    started: bool,
}

impl Core {
    /// A core at the genesis. Replay stored blocks with [`Core::replay`] and restore
    /// the signing state with [`Core::restore_sign_state`] before [`Core::start`].
    pub fn new(genesis: Genesis, key: Keypair, timeouts: Timeouts, verifier: Verifier) -> Self {
        Core {
            key,
            timeouts,
            verifier,
            chain: ChainState::new(genesis),
            rs: RoundState::new(1),
            mempool: Mempool::default(),
            gossip: Vec::new(),
            last_signed: None,
            future: Vec::new(),
            peer_heights: BTreeMap::new(),
            distrusted: BTreeMap::new(),
            sync_inflight: None,
            resume_step: None,
            ticks: 0,
            dropped: Dropped::default(),
            started: false,
        }
    }

    /// Re-applies a block from this node's own store on restart (protocol.md §6). The
    /// store is trusted to hold what this node verified, so only linkage is checked.
    pub fn replay(&mut self, cb: CommittedBlock) -> Result<(), crate::chain::BlockError> {
        if cb.block.height != self.chain.height + 1 || cb.block.prev_hash != self.chain.last_hash {
            return Err(crate::chain::BlockError::PrevHash);
        }
        self.chain.apply(&cb.block, cb.cert);
        self.rs = RoundState::new(self.chain.height + 1);
        Ok(())
    }

    /// Restores the double-sign guard and the lock after a restart (protocol.md §6).
    ///
    /// A node that signed at the height it restarts in resumes in the round it last
    /// signed in, at the step after its last signature, with its own votes of its
    /// last two rounds back in the tallies (the heartbeat re-sends them): as
    /// Tendermint does replaying its WAL. Resuming at round 0 stalled (the guard
    /// forbids signing there again, so nobody voted and no timeout fired); resuming a
    /// round later stalled too when that left one node alone ahead of peers that
    /// needed its vote.
    pub fn restore_sign_state(&mut self, s: SignState) {
        self.last_signed = Some((s.height, s.round, s.step, s.block));
        if s.height == self.chain.height + 1 {
            self.rs.round = s.round;
            self.resume_step = Some(match s.step {
                SignStep::Propose => Step::Propose,
                SignStep::Prevote => Step::Prevote,
                SignStep::Precommit => Step::Precommit,
            });
            for v in s.own.iter().filter(|v| v.vote.height == s.height) {
                let set = match v.vote.kind {
                    VoteKind::Prevote => self.rs.prevotes.entry(v.vote.round).or_default(),
                    VoteKind::Precommit => self.rs.precommits.entry(v.vote.round).or_default(),
                };
                let _ = set.add(v.clone());
            }
            self.rs.locked = s.locked.clone();
            self.rs.locked_pol = s.pol.clone();
            for v in s.pol {
                if v.vote.height == s.height && v.vote.kind == VoteKind::Prevote {
                    let _ = self.rs.prevotes.entry(v.vote.round).or_default().add(v);
                }
            }
            self.rs.valid = s.locked;
        }
    }

    /// Starts the first height and the heartbeat.
    pub fn start(&mut self) -> Vec<Effect> {
        let mut fx = Vec::new();
        self.started = true;
        fx.push(self.schedule(TimeoutKind::Tick, 0, 0, self.timeouts.tick_ms));
        let round = self.rs.round;
        self.start_round(round, &mut fx);
        if let Some(step) = self.resume_step.take() {
            if step > self.rs.step {
                self.rs.step = step;
                self.evaluate(&mut fx);
            }
        }
        fx
    }

    /// The node id.
    pub fn id(&self) -> NodeId {
        self.key.id()
    }

    /// The committed state.
    pub fn chain(&self) -> &ChainState {
        &self.chain
    }

    /// The role of protocol.md §5/§7.
    pub fn role(&self) -> Role {
        let me = self.id();
        if !self.chain.roster().contains(&me) {
            if self.chain.was_evicted(&me) {
                Role::Evicted
            } else {
                Role::Syncing
            }
        } else if self.best_peer_height() > self.chain.height + 2 {
            Role::Syncing
        } else {
            Role::Validator
        }
    }

    fn best_peer_height(&self) -> u64 {
        self.peer_heights.values().copied().max().unwrap_or(0)
    }

    /// A snapshot for `/status`.
    pub fn status(&self) -> Status {
        let roster = self.chain.roster();
        Status {
            id: self.id(),
            height: self.chain.height,
            epoch: self.chain.epoch(),
            round: self.rs.round,
            step: format!("{:?}", self.rs.step).to_lowercase(),
            locked_round: self.rs.locked.as_ref().map(|(r, _)| *r),
            valid_round: self.rs.valid.as_ref().map(|(r, _)| *r),
            votes: self
                .rs
                .prevotes
                .keys()
                .chain(self.rs.precommits.keys())
                .copied()
                .collect::<BTreeSet<u32>>()
                .into_iter()
                .map(|r| {
                    let n = |m: &BTreeMap<u32, VoteSet>| m.get(&r).map_or(0, |s| s.total());
                    (r, n(&self.rs.prevotes), n(&self.rs.precommits))
                })
                .collect(),
            role: self.role(),
            roster: roster.entries().to_vec(),
            proposal_counts: roster
                .entries()
                .iter()
                .map(|e| (e.id.to_hex(), self.chain.proposals().count(&e.id)))
                .collect(),
            proposal_total: self.chain.proposals().total(),
            abnormal: self.chain.expected_evict(),
            dropped_messages: self.dropped.total(),
            dropped: self.dropped.clone(),
            mempool: self.mempool.len(),
            best_peer_height: self.best_peer_height(),
        }
    }

    /// Takes transactions accepted since the last call, to gossip in one message.
    pub fn take_gossip(&mut self) -> Option<Effect> {
        if self.gossip.is_empty() {
            None
        } else {
            Some(Effect::Broadcast(Message::Txs(std::mem::take(
                &mut self.gossip,
            ))))
        }
    }

    /// A client submits a transaction (protocol.md §3, §7 `POST /tx`).
    pub fn submit(&mut self, tx: Tx) -> (Submit, Vec<Effect>) {
        if let Some(o) = self.chain.outcome(&tx.id) {
            return (Submit::Committed(o.clone()), Vec::new());
        }
        if let Err(reason) = self.precheck(&tx) {
            return (Submit::Rejected(reason), Vec::new());
        }
        if self.mempool.contains(&tx.id) {
            return (Submit::Pending, Vec::new());
        }
        if !self.mempool.insert(tx.clone()) {
            return (Submit::Busy, Vec::new());
        }
        self.gossip.push(tx);
        let mut fx = Vec::new();
        self.maybe_propose_now(&mut fx);
        (Submit::Pending, fx)
    }

    /// Checks that need no ordering: transactions failing them can never apply.
    fn precheck(&self, tx: &Tx) -> Result<(), String> {
        if tx.id.is_empty() || tx.id.len() > 256 {
            return Err("transaction id must be 1 to 256 characters".into());
        }
        match &tx.body {
            TxBody::Kv(ops) if ops.is_empty() || ops.len() > 64 => {
                Err("a transaction holds 1 to 64 micro-ops".into())
            }
            TxBody::Kv(_) => Ok(()),
            TxBody::AddNode { req, sig } => crate::chain::check_add_node(
                self.chain.genesis(),
                self.chain.roster(),
                req,
                sig.as_ref(),
            ),
        }
    }

    /// Feeds one input.
    pub fn handle(&mut self, input: Input) -> Vec<Effect> {
        let mut fx = Vec::new();
        match input {
            Input::Message { from, msg } => self.on_message(from, msg, &mut fx),
            Input::Timeout(t) => self.on_timeout(t, &mut fx),
        }
        fx
    }

    fn schedule(&self, kind: TimeoutKind, height: u64, round: u32, after_ms: u64) -> Effect {
        Effect::Schedule {
            timeout: Timeout {
                kind,
                height,
                round,
            },
            after_ms,
        }
    }

    fn is_member(&self) -> bool {
        self.chain.roster().contains(&self.id())
    }

    // ---- rounds -------------------------------------------------------------

    fn start_round(&mut self, round: u32, fx: &mut Vec<Effect>) {
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

    fn maybe_propose_now(&mut self, fx: &mut Vec<Effect>) {
        if self.rs.waiting_for_txs && self.rs.step == Step::Propose {
            self.rs.waiting_for_txs = false;
            self.propose(fx);
            self.evaluate(fx);
        }
    }

    fn propose(&mut self, fx: &mut Vec<Effect>) {
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

    fn relay_polka(&self, round: u32, hash: Hash, fx: &mut Vec<Effect>) {
        if let Some(set) = self.rs.prevotes.get(&round) {
            for v in set.for_value(&Some(hash)) {
                fx.push(Effect::Broadcast(Message::Vote(v.clone())));
            }
        }
    }

    fn build_block(&self) -> Block {
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

    /// The double-sign guard: never sign below the last signed step, and at the same
    /// step only the same value (ed25519 is deterministic, so that re-sends the same
    /// signature).
    fn may_sign(&self, h: u64, r: u32, step: SignStep, value: Option<Hash>) -> bool {
        match self.last_signed {
            None => true,
            Some((lh, lr, ls, lv)) => {
                let last = (lh, lr, ls);
                let now = (h, r, step);
                now > last || (now == last && lv == value)
            }
        }
    }

    fn persist_sign(
        &mut self,
        h: u64,
        r: u32,
        step: SignStep,
        value: Option<Hash>,
        fx: &mut Vec<Effect>,
    ) {
        self.last_signed = Some((h, r, step, value));
        fx.push(Effect::PersistSignState(Box::new(SignState {
            height: h,
            round: r,
            step,
            block: value,
            locked: self.rs.locked.clone(),
            pol: if self.rs.locked.is_some() {
                self.rs.locked_pol.clone()
            } else {
                Vec::new()
            },
            own: self.own_votes(r.saturating_sub(1)),
        })));
    }

    /// This node's votes at the current height from round `from` on.
    fn own_votes(&self, from: u32) -> Vec<SignedVote> {
        let me = self.id();
        self.rs
            .prevotes
            .range(from..)
            .chain(self.rs.precommits.range(from..))
            .filter_map(|(_, set)| set.votes.get(&me).cloned())
            .collect()
    }

    fn vote(&mut self, kind: VoteKind, block: Option<Hash>, fx: &mut Vec<Effect>) {
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

    fn is_valid(&mut self, hash: Hash) -> bool {
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

    fn block_for(&self, hash: &Hash) -> Option<Block> {
        self.rs
            .proposals
            .values()
            .find(|(_, h)| h == hash)
            .map(|(p, _)| p.proposal.block.clone())
    }

    /// Applies every rule of Tendermint's algorithm that is enabled, until none is.
    fn evaluate(&mut self, fx: &mut Vec<Effect>) {
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

    /// The decision rule, for any round: a proposal with `q(n)` precommits for it.
    fn try_decide(&mut self, fx: &mut Vec<Effect>) -> bool {
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

    fn make_cert(&self, round: u32, hash: Hash, block: &Block) -> Certificate {
        let sigs = self
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
        Certificate {
            epoch: self.chain.epoch(),
            height: self.rs.height,
            round,
            block: hash,
            evict: block.evict,
            sigs,
        }
    }

    /// One enabled rule of the current round, if any (Buchman et al. 2018, Alg. 1).
    fn step_once(&mut self, fx: &mut Vec<Effect>) -> bool {
        let r = self.rs.round;
        let q = self.chain.roster().quorum();
        let h = self.rs.height;

        // Round skip: f+1 validators are in a higher round.
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
            .map(|(rr, _)| rr);
        if let Some(rr) = higher {
            self.start_round(rr, fx);
            return true;
        }

        let proposal = self
            .rs
            .proposals
            .get(&r)
            .map(|(p, hash)| (p.proposal.valid_round, *hash));

        if self.rs.step == Step::Propose {
            if let Some((vr, hash)) = proposal {
                match vr {
                    None => {
                        let ok = self.is_valid(hash)
                            && match &self.rs.locked {
                                None => true,
                                Some((_, b)) => b.hash() == hash,
                            };
                        self.rs.step = Step::Prevote;
                        self.vote(VoteKind::Prevote, ok.then_some(hash), fx);
                        return true;
                    }
                    Some(vr) if vr < r => {
                        let polka = self
                            .rs
                            .prevotes
                            .get(&vr)
                            .map(|s| s.count(&Some(hash)) >= q)
                            .unwrap_or(false);
                        if polka {
                            let ok = self.is_valid(hash)
                                && match &self.rs.locked {
                                    None => true,
                                    Some((lr, b)) => *lr <= vr || b.hash() == hash,
                                };
                            self.rs.step = Step::Prevote;
                            self.vote(VoteKind::Prevote, ok.then_some(hash), fx);
                            return true;
                        }
                    }
                    Some(_) => {}
                }
            }
        }

        let (pv_total, pv_quorum) = self
            .rs
            .prevotes
            .get(&r)
            .map(|s| (s.total(), s.quorum_value(q)))
            .unwrap_or((0, None));

        if self.rs.step == Step::Prevote && pv_total >= q && self.rs.prevote_timer.insert(r) {
            let after = self.timeouts.vote_ms + self.timeouts.vote_delta_ms * r as u64;
            fx.push(self.schedule(TimeoutKind::Prevote, h, r, after));
            return true;
        }

        if let (Some((_, hash)), Some(Some(polka))) = (proposal, pv_quorum) {
            if hash == polka
                && self.rs.step >= Step::Prevote
                && !self.rs.polka_seen.contains(&r)
                && self.is_valid(hash)
            {
                self.rs.polka_seen.insert(r);
                let Some(block) = self.block_for(&hash) else {
                    return false;
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
                return true;
            }
        }

        if self.rs.step == Step::Prevote && pv_quorum == Some(None) {
            self.rs.step = Step::Precommit;
            self.vote(VoteKind::Precommit, None, fx);
            return true;
        }

        let pc_total = self.rs.precommits.get(&r).map(|s| s.total()).unwrap_or(0);
        if pc_total >= q && self.rs.precommit_timer.insert(r) {
            let after = self.timeouts.vote_ms + self.timeouts.vote_delta_ms * r as u64;
            fx.push(self.schedule(TimeoutKind::Precommit, h, r, after));
            return true;
        }
        false
    }

    /// Commits a decided or synced block: apply, persist, answer clients, and on a
    /// membership change start the view change (protocol.md §4.2–4.3, §5).
    fn apply_committed(&mut self, cb: CommittedBlock, fx: &mut Vec<Effect>) {
        let h = cb.block.height;
        let applied = self.chain.apply(&cb.block, cb.cert.clone());
        for tx in &cb.block.txs {
            self.mempool.remove(&tx.id);
        }
        tracing::debug!(height = h, txs = cb.block.txs.len(), "committed");
        fx.push(Effect::PersistBlock(Box::new(cb)));
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
    fn next_height(&mut self, fx: &mut Vec<Effect>) {
        if self.timeouts.commit_ms == 0 {
            self.start_height(fx);
        } else {
            let h = self.rs.height;
            fx.push(self.schedule(TimeoutKind::Commit, h, 0, self.timeouts.commit_ms));
        }
    }

    fn start_height(&mut self, fx: &mut Vec<Effect>) {
        self.start_round(0, fx);
        let h = self.rs.height;
        let pending = std::mem::take(&mut self.future);
        for (from, msg) in pending {
            if msg_height(&msg).is_some_and(|mh| mh >= h) {
                self.on_message(from, msg, fx);
            }
        }
    }

    fn announce(&self, new_view: bool) -> SignedAnnounce {
        let announce = Announce {
            from: self.id(),
            epoch: self.chain.epoch(),
            height: self.chain.height,
            roster_hash: self.chain.roster().hash(),
            new_view,
        };
        let sig = self
            .key
            .sign(DOMAIN_ANNOUNCE, &crate::types::encode(&announce));
        SignedAnnounce { announce, sig }
    }

    // ---- inputs -------------------------------------------------------------

    fn on_timeout(&mut self, t: Timeout, fx: &mut Vec<Effect>) {
        if t.kind == TimeoutKind::Tick {
            self.on_tick(fx);
            return;
        }
        if t.height != self.rs.height {
            return;
        }
        match t.kind {
            TimeoutKind::Commit if self.rs.step == Step::Committed => self.start_height(fx),
            TimeoutKind::EmptyBlock if t.round == self.rs.round => self.maybe_propose_now(fx),
            TimeoutKind::Propose if t.round == self.rs.round && self.rs.step == Step::Propose => {
                self.rs.step = Step::Prevote;
                self.vote(VoteKind::Prevote, None, fx);
                self.evaluate(fx);
            }
            TimeoutKind::Prevote if t.round == self.rs.round && self.rs.step == Step::Prevote => {
                self.rs.step = Step::Precommit;
                self.vote(VoteKind::Precommit, None, fx);
                self.evaluate(fx);
            }
            TimeoutKind::Precommit
                if t.round == self.rs.round && self.rs.step != Step::Committed =>
            {
                self.start_round(t.round + 1, fx);
            }
            _ => {}
        }
    }

    /// Heartbeat: announce, re-send this round's own messages (lost messages are
    /// otherwise never repaired), and pull blocks from a peer that is ahead.
    fn on_tick(&mut self, fx: &mut Vec<Effect>) {
        self.ticks += 1;
        self.distrusted.retain(|_, until| *until > self.ticks);
        fx.push(self.schedule(TimeoutKind::Tick, 0, 0, self.timeouts.tick_ms));
        fx.push(Effect::Broadcast(Message::Announce(self.announce(false))));
        if self.rs.step != Step::Committed && self.is_member() {
            let me = self.id();
            let r = self.rs.round;
            if let Some((p, _)) = self.rs.proposals.get(&r) {
                if p.proposer == me {
                    fx.push(Effect::Broadcast(Message::Proposal(Box::new(p.clone()))));
                }
            }
            // Our votes of this round, of the previous one (a node that moved on alone
            // after a quorum of precommits must let the others reach that quorum too,
            // or with f+1 of us needed to skip rounds they never follow it), and of
            // the rounds of our lock and valid value.
            let mut rounds: BTreeSet<u32> = [r, r.saturating_sub(1)].into();
            rounds.extend(self.rs.locked.as_ref().map(|(lr, _)| *lr));
            rounds.extend(self.rs.valid.as_ref().map(|(vr, _)| *vr));
            for rr in &rounds {
                for set in [self.rs.prevotes.get(rr), self.rs.precommits.get(rr)]
                    .into_iter()
                    .flatten()
                {
                    if let Some(v) = set.votes.get(&me) {
                        fx.push(Effect::Broadcast(Message::Vote(v.clone())));
                    }
                }
            }
            // And the polka behind our valid value, which others may have missed.
            if let Some((vr, b)) = &self.rs.valid {
                self.relay_polka(*vr, b.hash(), fx);
            }
        }
        let stale = self
            .sync_inflight
            .is_some_and(|(_, _, at)| self.ticks.saturating_sub(at) >= 4);
        if stale {
            // It did not answer (down, unreachable, or lying about its height):
            // forget its claim so the next request goes to another peer.
            if let Some((peer, _, _)) = self.sync_inflight {
                self.peer_heights.remove(&peer);
            }
        }
        if self.sync_inflight.is_none() || stale {
            self.sync_inflight = None;
            self.request_sync(fx);
        }
    }

    fn request_sync(&mut self, fx: &mut Vec<Effect>) {
        let my = self.chain.height;
        // The peer furthest ahead; ties to the lowest id for determinism.
        let best = self
            .peer_heights
            .iter()
            .filter(|(id, h)| **h > my && **id != self.id())
            .max_by_key(|(id, h)| (**h, std::cmp::Reverse(**id)));
        if let Some((peer, ph)) = best {
            let to = (*ph).min(my + SYNC_BATCH);
            let peer = *peer;
            self.sync_inflight = Some((peer, my + 1, self.ticks));
            fx.push(Effect::Send {
                to: peer,
                msg: Message::SyncRequest { from: my + 1, to },
            });
        }
    }

    fn note_peer(&mut self, peer: NodeId, height: u64) {
        if self
            .distrusted
            .get(&peer)
            .is_some_and(|until| *until > self.ticks)
        {
            return;
        }
        let e = self.peer_heights.entry(peer).or_default();
        if height > *e {
            *e = height;
        }
    }

    fn on_message(&mut self, from: NodeId, msg: Message, fx: &mut Vec<Effect>) {
        match msg {
            Message::Txs(txs) => {
                for tx in txs {
                    if self.chain.outcome(&tx.id).is_none() && self.precheck(&tx).is_ok() {
                        self.mempool.insert(tx);
                    }
                }
                self.maybe_propose_now(fx);
            }
            Message::Announce(a) => self.on_announce(a, fx),
            Message::SyncRequest { from: lo, to } => {
                let hi = to
                    .min(self.chain.height)
                    .min(lo.saturating_add(SYNC_BATCH - 1));
                if lo >= 1 && lo <= hi {
                    fx.push(Effect::ServeBlocks {
                        to_peer: from,
                        from: lo,
                        to: hi,
                    });
                }
            }
            Message::SyncResponse(blocks) => self.on_sync_response(from, blocks, fx),
            Message::Proposal(p) => self.on_proposal(from, *p, fx),
            Message::Vote(v) => self.on_vote(from, v, fx),
        }
    }

    /// Screens the view of a consensus message: past heights are ignored, future
    /// ones kept for later (and a sign we are behind), other epochs dropped or a
    /// reason to sync (protocol.md §2, §4.3). Returns whether to process it now.
    /// Heights are noted against `from`, the peer that delivered the message (at
    /// least that far along, and reachable), not the signer: a relayed vote of a
    /// dead validator must not make us ask the dead validator for blocks.
    fn screen_view(
        &mut self,
        from: NodeId,
        signer: NodeId,
        epoch: u64,
        height: u64,
        msg: &Message,
    ) -> bool {
        let h = self.rs.height;
        if height < h {
            self.note_peer(from, height.saturating_sub(1));
            return false;
        }
        if height > h {
            self.note_peer(from, height - 1);
            if height == h + 1 && self.future.len() < FUTURE_LIMIT {
                self.future.push((from, msg.clone()));
            }
            return false;
        }
        let my_epoch = self.chain.epoch();
        if epoch < my_epoch {
            self.dropped.stale_epoch += 1;
            return false;
        }
        if epoch > my_epoch {
            // Our roster is stale: we must sync before voting again (protocol.md §4.3).
            self.note_peer(from, h);
            return false;
        }
        if !self.chain.roster().contains(&signer) {
            self.dropped.unknown_signer += 1;
            return false;
        }
        true
    }

    fn on_proposal(&mut self, from: NodeId, sp: SignedProposal, fx: &mut Vec<Effect>) {
        let p = &sp.proposal;
        let msg = Message::Proposal(Box::new(sp.clone()));
        if !self.screen_view(from, sp.proposer, p.epoch, p.height, &msg) {
            return;
        }
        if self.chain.roster().proposer(p.height, p.round) != sp.proposer {
            self.dropped.unknown_signer += 1;
            return;
        }
        if self.rs.proposals.contains_key(&p.round) {
            return;
        }
        let hash = p.block.hash();
        if !self
            .verifier
            .verify(&sp.proposer, DOMAIN_PROPOSAL, &p.sign_bytes(&hash), &sp.sig)
        {
            self.dropped.bad_signature += 1;
            return;
        }
        self.rs.proposals.insert(p.round, (sp, hash));
        self.evaluate(fx);
    }

    fn on_vote(&mut self, from: NodeId, sv: SignedVote, fx: &mut Vec<Effect>) {
        let v = &sv.vote;
        let msg = Message::Vote(sv.clone());
        if !self.screen_view(from, v.validator, v.epoch, v.height, &msg) {
            return;
        }
        // A vote whose evict field disagrees with the rule never counts (§5): the
        // rule cannot be steered by a Byzantine minority.
        if v.evict != self.chain.expected_evict() {
            self.dropped.bad_evict += 1;
            return;
        }
        if !self
            .verifier
            .verify(&v.validator, DOMAIN_VOTE, &v.sign_bytes(), &sv.sig)
        {
            self.dropped.bad_signature += 1;
            return;
        }
        let round = v.round;
        let set = match v.kind {
            VoteKind::Prevote => self.rs.prevotes.entry(round).or_default(),
            VoteKind::Precommit => self.rs.precommits.entry(round).or_default(),
        };
        match set.add(sv) {
            Added::New => self.evaluate(fx),
            Added::Duplicate => {}
            Added::Equivocation { counted } => {
                self.dropped.equivocation += 1;
                if counted {
                    self.evaluate(fx);
                }
            }
        }
    }

    fn on_announce(&mut self, sa: SignedAnnounce, fx: &mut Vec<Effect>) {
        let a = &sa.announce;
        // A heartbeat from a peer no further than we are, or than we knew it to be,
        // changes nothing: skip it without a signature check (heartbeats come from
        // every peer several times a second; verifying them all cost as much as
        // consensus itself).
        let known = self.peer_heights.get(&a.from).copied().unwrap_or(0);
        if !a.new_view && (a.height <= self.chain.height || a.height <= known) {
            return;
        }
        if !self
            .verifier
            .verify(&a.from, DOMAIN_ANNOUNCE, &crate::types::encode(a), &sa.sig)
        {
            self.dropped.bad_signature += 1;
            return;
        }
        self.note_peer(a.from, a.height);
        if a.new_view && a.epoch > self.chain.epoch() && self.sync_inflight.is_none() {
            // A view change we have not seen: fetch the blocks that carry it.
            self.request_sync(fx);
        }
    }

    fn on_sync_response(
        &mut self,
        from: NodeId,
        blocks: Vec<CommittedBlock>,
        fx: &mut Vec<Effect>,
    ) {
        if self.sync_inflight.is_some_and(|(p, _, _)| p == from) {
            self.sync_inflight = None;
        }
        let last = blocks.last().map(|b| b.block.height).unwrap_or(0);
        // Pipeline: ask for the next batch before verifying this one.
        if last > self.chain.height && self.sync_inflight.is_none() {
            let best = self.best_peer_height();
            if best > last {
                let to = best.min(last + SYNC_BATCH);
                self.sync_inflight = Some((from, last + 1, self.ticks));
                fx.push(Effect::Send {
                    to: from,
                    msg: Message::SyncRequest { from: last + 1, to },
                });
            }
        }
        // Batch-check every certificate signature of the response first; the checks
        // below then hit the cache (a bad batch is simply not cached).
        let sign_bytes: Vec<(crate::crypto::NodeId, Vec<u8>, crate::crypto::Sig)> = blocks
            .iter()
            .filter(|cb| cb.block.height > self.chain.height)
            .flat_map(|cb| {
                cb.cert.sigs.iter().map(|s| {
                    (
                        s.validator,
                        cb.cert.vote_of(s.validator).sign_bytes(),
                        s.sig,
                    )
                })
            })
            .collect();
        let checks: Vec<crate::crypto::SigCheck> = sign_bytes
            .into_iter()
            .map(|(id, msg, sig)| (id, DOMAIN_VOTE, msg, sig))
            .collect();
        self.verifier.prime(&checks);
        for cb in blocks {
            if cb.block.height <= self.chain.height {
                continue;
            }
            if cb.block.height != self.chain.height + 1 {
                break;
            }
            let checked = self
                .chain
                .check_synced_block(&cb.block, &self.verifier)
                .and_then(|()| self.chain.check_cert(&cb.block, &cb.cert, &self.verifier));
            if let Err(e) = checked {
                tracing::warn!(peer = %from.short(), height = cb.block.height, error = %e, "refusing synced block");
                self.dropped.invalid_block += 1;
                // Do not trust this peer's claims any more, for a while.
                self.peer_heights.remove(&from);
                self.distrusted.insert(from, self.ticks + DISTRUST_TICKS);
                self.sync_inflight = None;
                return;
            }
            self.note_peer(from, cb.block.height);
            self.apply_committed(cb, fx);
        }
        if self.rs.step == Step::Committed && self.started {
            self.next_height(fx);
        }
    }
}

fn msg_height(m: &Message) -> Option<u64> {
    match m {
        Message::Proposal(p) => Some(p.proposal.height),
        Message::Vote(v) => Some(v.vote.height),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Op, Params};
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
        blocks: Vec<Vec<CommittedBlock>>,
        sign: Vec<Option<SignState>>,
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
                blocks: vec![Vec::new(); cores.len()],
                sign: vec![None; cores.len()],
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
            self.blocks[i].clone()
        }

        fn effects(&mut self, i: usize, fx: Vec<Effect>) {
            let from = self.cores[i].id();
            for e in fx {
                // A node that is down or cut off sends nothing.
                if self.down.contains(&i)
                    && !matches!(e, Effect::Schedule { .. } | Effect::PersistBlock(_))
                {
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
                    Effect::PersistSignState(st) => self.sign[i] = Some(*st),
                    Effect::PersistBlock(cb) => {
                        self.committed[i].push(cb.block.hash());
                        self.blocks[i].push(*cb);
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
            let Some(k) = (0..self.due.len()).min_by_key(|k| (self.due[*k].0, self.due[*k].1))
            else {
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
                let mut core = Core::new(g, key, Timeouts::default(), v.clone());
                for cb in self.blocks[i].clone() {
                    core.replay(cb).unwrap();
                }
                if let Some(st) = self.sign[i].clone() {
                    core.restore_sign_state(st);
                }
                self.cores[i] = core;
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
            if let Some(g) = self.cores[i].take_gossip() {
                self.effects(i, vec![g]);
            }
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
        out: Vec<Effect>,
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
            .iter()
            .any(|e| matches!(e, Effect::PersistSignState(st) if st.locked.is_some())));
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
        assert!(!s.out.iter().any(|e| matches!(e, Effect::Schedule { timeout, .. } if timeout.kind == TimeoutKind::Prevote)));
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
        s.core.handle(Input::Message {
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
        s.core.handle(Input::Message {
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
        s.core.handle(Input::Message {
            from: stranger.id(),
            msg: Message::Vote(SignedVote { vote: sv, sig }),
        });
        assert_eq!(s.core.dropped.unknown_signer, 1);
        vote.evict = Some(s.ks[3].id());
        let sig = k.sign(DOMAIN_VOTE, &vote.sign_bytes());
        s.core.handle(Input::Message {
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
            .iter()
            .find_map(|e| match e {
                Effect::PersistSignState(st) => Some((**st).clone()),
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
        fresh.start();
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
        newcomer.handle(Input::Message {
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
        newcomer.handle(Input::Message {
            from: bad_peer,
            msg: Message::SyncResponse(short),
        });
        assert_eq!(newcomer.chain().height, 2);
        assert_eq!(newcomer.dropped.invalid_block, 2);
        // From an honest peer the same heights apply.
        newcomer.handle(Input::Message {
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
        c.cores[3].handle(Input::Message {
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
            c.cores[*i].last_signed.map(|(h, r, st, _)| (h, r, st))
                == Some((4, 0, SignStep::Precommit))
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
        let b4 = &c.blocks[live[0]][3];
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
        newcomer.handle(Input::Message {
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
        assert!(fx.iter().any(|e| matches!(e, Effect::Send { to, msg: Message::SyncRequest { from: 1, .. } } if *to == ks[0].id())));
        // Node 0 never answers: after a few heartbeats its claim is forgotten.
        for _ in 0..4 {
            newcomer.handle(tick.clone());
        }
        assert!(!newcomer.peer_heights.contains_key(&ks[0].id()));
    }

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
        newcomer.handle(Input::Message {
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
        newcomer.handle(claim(100));
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
            newcomer.handle(tick.clone());
        }
        newcomer.handle(claim(101));
        assert_eq!(
            newcomer.peer_heights.get(&ks[0].id()),
            Some(&101),
            "believed again later"
        );
    }
}
