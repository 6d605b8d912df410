//! The sans-IO node core: Tendermint consensus (protocol.md §2) with membership
//! changes (§4) and eviction votes (§5), plus mempool and block sync.
//!
//! Inputs (peer messages, timeouts, client transactions) go in; effects (send,
//! schedule a timeout, persist, commit) come out. No sockets, clocks or files live
//! here, so the real runtime and the simulator drive the very same code.
//!
//! Every input returns an [`Output`]: writes (`persist`) and effects. The effects
//! may happen only once the writes are durable (protocol.md §6), so the only way to
//! them is [`crate::store::Store::commit`], which writes, syncs, and then hands them
//! back. A restarting node is rebuilt from its store by [`Core::recover`].
//!
//! By role: this module holds the core, its inputs and the screening of peer
//! messages; `effect` what comes out; `votes` the tally; `round` Algorithm 1 of
//! Buchman, Kwon, Milosevic 2018 (one function per rule, tagged with its lines);
//! `sign_state` the double-sign guard; `sync` block sync; `heartbeat` the
//! periodic re-sends; `status` the `/status` snapshot. `DESIGN R1`..`R6` cite the
//! liveness rules of docs/DESIGN.md where they live.

mod catch_up;
mod effect;
mod heartbeat;
mod round;
mod sign_state;
mod status;
mod sync;
#[cfg(test)]
mod tests;
mod votes;

pub use effect::{Effect, Output, Persist};
use round::{RoundState, Step};
pub use sign_state::{SignState, SignStep, FLOOR_ROUND};
pub use status::{Dropped, Role, Status};
pub use sync::SYNC_BATCH;
use votes::Added;

use crate::chain::ChainState;
use crate::crypto::{Hash, Keypair, NodeId, Verifier};
use crate::mempool::{Mempool, Refused};
use crate::store::{Device, Store, StoreError};
use crate::types::{
    CommittedBlock, Genesis, Message, SignedProposal, SignedVote, Tx, TxBody, TxOutcome, VoteKind,
    DOMAIN_PROPOSAL, DOMAIN_VOTE,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

/// Future-height messages kept until their height starts.
const FUTURE_LIMIT: usize = 4096;

/// Why a node could not restart from its store.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store cannot be trusted enough to run on (the node stops, saying why).
    #[error("storage cannot be trusted: {0}")]
    Untrusted(String),
    /// A stored height that reads back empty.
    #[error("stored block {0} is missing")]
    Missing(u64),
    /// A stored block that does not extend the chain before it.
    #[error("stored block {height} does not replay: {source}")]
    Replay {
        /// Its height.
        height: u64,
        /// Why.
        source: crate::chain::BlockError,
    },
}

/// The node's consensus core.
pub struct Core {
    key: Keypair,
    timeouts: Timeouts,
    verifier: Verifier,
    chain: ChainState,
    rs: RoundState,
    mempool: Mempool,
    last_signed: Option<(u64, u32, SignStep, Option<Hash>)>,
    /// The store's damage report of the last start (`/status` `storage`).
    storage: crate::store::Damage,
    future: Vec<(NodeId, Message)>,
    peer_heights: BTreeMap<NodeId, u64>,
    /// Peers that served an invalid block -> tick until which their height claims are
    /// ignored (else a liar "furthest ahead" starves sync of honest peers; found by
    /// the byzantine nemesis, issue 12).
    distrusted: BTreeMap<NodeId, u32>,
    sync_inflight: Option<(NodeId, u64, u32)>,
    resume_step: Option<Step>,
    ticks: u32,
    dropped: Dropped,
    started: bool,
    /// Test-only weakness ([`Core::weaken_trust_synced_certificates`]).
    trust_synced_certs: bool,
}

impl Core {
    /// A core at the genesis with nothing stored (a restarting node uses
    /// [`Core::recover`]).
    pub fn new(genesis: Genesis, key: Keypair, timeouts: Timeouts, verifier: Verifier) -> Self {
        Core {
            key,
            timeouts,
            verifier,
            chain: ChainState::new(genesis),
            rs: RoundState::new(1),
            mempool: Mempool::default(),
            last_signed: None,
            storage: Default::default(),
            future: Vec::new(),
            peer_heights: BTreeMap::new(),
            distrusted: BTreeMap::new(),
            sync_inflight: None,
            resume_step: None,
            ticks: 0,
            dropped: Dropped::default(),
            started: false,
            trust_synced_certs: false,
        }
    }

    /// Sets the most transactions the mempool keeps (an operator setting, before
    /// [`Core::start`]: the pool is still empty then, so nothing is dropped).
    pub fn set_mempool_limit(&mut self, txs: usize) {
        debug_assert!(self.mempool.is_empty(), "mempool limit set after start");
        self.mempool = Mempool::with_limit(txs);
    }

    /// Test-only, a deliberately weakened node: synced blocks are taken without
    /// checking their commit certificates (protocol.md §4.4 says to verify every
    /// one). The harness's tests show its forged-sync adversary exposes such a node
    /// (issue 12); nothing else may call this.
    #[doc(hidden)]
    pub fn weaken_trust_synced_certificates(&mut self) {
        self.trust_synced_certs = true;
    }

    /// Restarts a node from its store (protocol.md §6): a core at the genesis, every
    /// stored block re-applied, the signing state and lock restored. The one restart
    /// sequence of the runtime, the simulator and the tests; [`Core::start`] follows.
    pub fn recover<D: Device>(
        genesis: Genesis,
        key: Keypair,
        timeouts: Timeouts,
        verifier: Verifier,
        store: &Store<D>,
    ) -> Result<Core, RecoverError> {
        let damage = store.damage();
        if let Some(reason) = &damage.fatal {
            return Err(RecoverError::Untrusted(reason.clone()));
        }
        let mut core = Core::new(genesis, key, timeouts, verifier);
        core.storage = damage.clone();
        if let Some(floor) = damage.sign_floor {
            // An untrusted signing state: sign nothing at or below the highest
            // height this node may have signed at; it votes again once the
            // cluster's commit of that height reaches it (DESIGN.md "Storage faults").
            core.last_signed = Some((floor, u32::MAX, SignStep::Precommit, None));
        }
        for height in 1..=store.height() {
            let cb = store.block(height)?.ok_or(RecoverError::Missing(height))?;
            core.replay(cb)
                .map_err(|source| RecoverError::Replay { height, source })?;
        }
        if let Some(s) = store.sign_state() {
            core.restore_sign_state(s.clone());
        }
        Ok(core)
    }

    /// Re-applies a block from this node's own store on restart (protocol.md §6). The
    /// store is trusted to hold what this node verified, so only linkage is checked.
    fn replay(&mut self, cb: CommittedBlock) -> Result<(), crate::chain::BlockError> {
        if cb.block.height != self.chain.height + 1 || cb.block.prev_hash != self.chain.last_hash {
            return Err(crate::chain::BlockError::PrevHash);
        }
        self.chain.apply(&cb.block, cb.cert);
        self.rs = RoundState::new(self.chain.height + 1);
        Ok(())
    }

    /// Starts the first height and the heartbeat.
    pub fn start(&mut self) -> Output {
        let mut fx = Output::default();
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

    /// A client submits a transaction (protocol.md §3, §7 `POST /tx`).
    ///
    /// An accepted transaction is gossiped to every peer by the last effect of the
    /// output (a runtime may merge the gossip of several submissions into one frame).
    pub fn submit(&mut self, tx: Tx) -> (Submit, Output) {
        if let Some(o) = self.chain.outcome(&tx.id) {
            return (Submit::Committed(o.clone()), Output::default());
        }
        if let Err(reason) = self.precheck(&tx) {
            return (Submit::Rejected(reason), Output::default());
        }
        if self.mempool.contains(&tx.id) {
            return (Submit::Pending, Output::default());
        }
        match self.mempool.insert(tx.clone()) {
            Ok(()) => {}
            Err(Refused::Full) => return (Submit::Busy, Output::default()),
            // precheck passed, so neither happens; answer as the cases would.
            Err(Refused::Duplicate) => return (Submit::Pending, Output::default()),
            Err(Refused::Invalid) => {
                return (
                    Submit::Rejected("invalid transaction".into()),
                    Output::default(),
                )
            }
        }
        let mut fx = Output::default();
        self.maybe_propose_now(&mut fx);
        fx.push(Effect::Broadcast(Message::Txs(vec![tx])));
        (Submit::Pending, fx)
    }

    /// Checks that need no ordering: transactions failing them can never apply. The
    /// same rules run for the API and for gossip ([`crate::types::validate_tx`], then
    /// the AddNode rules against the committed roster and used nonces).
    pub fn precheck(&self, tx: &Tx) -> Result<(), String> {
        crate::types::validate_tx(tx).map_err(|e| e.to_string())?;
        match &tx.body {
            TxBody::Kv(_) => Ok(()),
            TxBody::AddNode { req, sig } => self
                .chain
                .check_add_node(self.chain.roster(), req, sig.as_ref())
                .map(|_| ()),
        }
    }

    /// Feeds one input.
    pub fn handle(&mut self, input: Input) -> Output {
        let mut fx = Output::default();
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

    fn on_timeout(&mut self, t: Timeout, fx: &mut Output) {
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
            TimeoutKind::Propose => self.on_timeout_propose(t.round, fx),
            TimeoutKind::Prevote => self.on_timeout_prevote(t.round, fx),
            TimeoutKind::Precommit => self.on_timeout_precommit(t.round, fx),
            _ => {}
        }
    }

    fn on_message(&mut self, from: NodeId, msg: Message, fx: &mut Output) {
        match msg {
            Message::Txs(txs) => {
                for tx in txs {
                    if self.chain.outcome(&tx.id).is_some() || self.mempool.contains(&tx.id) {
                        continue;
                    }
                    if self.precheck(&tx).is_err() {
                        self.dropped.invalid_tx += 1;
                        continue;
                    }
                    if self.mempool.insert(tx) == Err(Refused::Full) {
                        self.dropped.mempool_full += 1;
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
    /// dead validator must not make us ask the dead validator for blocks (DESIGN R6).
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
            // Only a correctly signed message may move the peer heights `/status` and
            // sync act on; nothing beyond the next height is stored (issue 14).
            if !self.signature_ok(msg) {
                self.dropped.bad_signature += 1;
                return false;
            }
            self.note_peer(from, height - 1);
            if height > h + 1 {
                self.dropped.far_future += 1;
            } else if self.future.len() < FUTURE_LIMIT {
                self.future.push((from, msg.clone()));
            } else {
                self.dropped.future_full += 1;
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

    fn on_proposal(&mut self, from: NodeId, sp: SignedProposal, fx: &mut Output) {
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
        if !self.admit_round(sp.proposer, p.round) {
            return;
        }
        self.rs.proposals.insert(p.round, (sp, hash));
        self.evaluate(fx);
    }

    fn on_vote(&mut self, from: NodeId, sv: SignedVote, fx: &mut Output) {
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
        if !self.admit_round(v.validator, round) {
            return;
        }
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
}

impl Core {
    /// Whether a proposal's or vote's signature verifies under its signer's key (no
    /// roster needed: the signer's id is its key).
    fn signature_ok(&self, msg: &Message) -> bool {
        match msg {
            Message::Proposal(sp) => {
                let p = &sp.proposal;
                let bytes = p.sign_bytes(&p.block.hash());
                self.verifier
                    .verify(&sp.proposer, DOMAIN_PROPOSAL, &bytes, &sp.sig)
            }
            Message::Vote(sv) => self.verifier.verify(
                &sv.vote.validator,
                DOMAIN_VOTE,
                &sv.vote.sign_bytes(),
                &sv.sig,
            ),
            _ => true,
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
