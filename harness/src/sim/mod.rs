//! The `sim` backend (harness.md §2): every node's real sans-IO consensus core and
//! real store in one process, on a simulated network, clock and disk
//! ([`MemDevice`]), driven by one seeded RNG.
//!
//! Events (message deliveries, timers, client requests) sit in one queue ordered by
//! (virtual time, sequence number), so the same seed and options replay the same
//! run exactly. Nothing here iterates a hash map.

mod byzantine;
mod clock;
mod disk;
mod event;
pub mod network;

use crate::backend::{
    Backend, BackendError, ClientOutcome, Clients, Completed, NodeControl, NodeDumpData, NodeState,
    Ticket,
};
use crate::cluster::ClusterSpec;
use event::{Event, EventKind};
use network::Network;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rollcall_checkers::equivocation::{SignedRecord, SignedStep};
use rollcall_node_core::consensus::{
    Core, Effect, Input, Output, RecoverError, Status, Submit, Timeouts,
};
use rollcall_node_core::crypto::sha256;
use rollcall_node_core::crypto::{Keypair, NodeId, Verifier};
use rollcall_node_core::store::{MemDevice, Store, StoreError};
use rollcall_node_core::types::{Message, Tx, VoteKind};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

/// Client ↔ node one-way delay, ns: clients share the node's host, so partitions
/// never cut them off (as Jepsen's clients talk to their node directly).
const CLIENT_DELAY_NS: (u64, u64) = (100_000, 500_000);

/// Options of the simulator.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Consensus timeouts, in simulated ms.
    pub timeouts: Timeouts,
    /// A disk that acknowledges fsync but forgets the last second on a crash
    /// (test-only broken environment; the node code stays honest).
    pub lying_disk: bool,
    /// Test-only: panic once simulated time reaches this, to prove that a panic in a
    /// run becomes a stored, replayable `crash` verdict (harness/src/crash.rs).
    pub panic_at_ns: Option<u64>,
    /// Test-only broken node: the store skips its sync, so a crash loses
    /// acknowledged writes.
    pub no_sync: bool,
    /// Test-only weakened node: every core takes synced blocks without checking
    /// their certificates (`Core::weaken_trust_synced_certificates`, issue 12).
    pub trust_synced_certs: bool,
}

impl Default for SimOptions {
    /// An honest simulated cluster with the sim's fast timeouts.
    fn default() -> Self {
        SimOptions {
            timeouts: sim_timeouts(),
            lying_disk: false,
            no_sync: false,
            trust_synced_certs: false,
            panic_at_ns: None,
        }
    }
}

/// Fast timeouts: simulated time costs nothing, but short rounds make faults and
/// recoveries happen within short test limits.
pub fn sim_timeouts() -> Timeouts {
    Timeouts {
        propose_ms: 200,
        propose_delta_ms: 100,
        vote_ms: 100,
        vote_delta_ms: 50,
        commit_ms: 100,
        empty_block_ms: 20,
        tick_ms: 250,
    }
}

struct SimNode {
    name: String,
    key: Keypair,
    core: Option<Core>,
    /// Bumped on every crash: events for an older incarnation are dropped.
    inc: u64,
    /// The node's real store on its simulated disk; it outlives crashes.
    store: Store<MemDevice>,
    paused: bool,
    /// Events that arrived while paused, replayed in order on resume.
    deferred: Vec<EventKind>,
    /// Stopped for good (fail-node, a stopped duplicate).
    failed: bool,
    /// Ever started (spares start on add-node).
    started: bool,
    /// Client transactions waiting for their commit on this node: tx id → ticket.
    waiting: BTreeMap<String, Ticket>,
    /// A duplicate-key node (not a client target).
    duplicate: bool,
    /// Set while a `byzantine` fault makes this node lie (byzantine.rs).
    adversary: Option<byzantine::SimAdversary>,
    /// Was an adversary at some point: its signatures are Byzantine by design, so the
    /// equivocation checker leaves its key out.
    ever_byzantine: bool,
    /// Killed with a crash point: the core still runs and dies inside its next
    /// step, at this point (the control plane already sees it killed).
    dying: Option<CrashPoint>,
    /// Why the node last stopped itself (a failed write or sync, untrusted
    /// storage); kept after a restart, for the `storage` view.
    stopped: Option<String>,
}

/// Where inside a step a kill lands (issue 13): between the store's write and its
/// sync, or after the first `n` effects of an output, so an effect that escapes
/// before what it depends on is durable is reachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CrashPoint {
    /// After [`Store::write`], before [`Store::sync`]: nothing of the output leaves.
    BeforeSync,
    /// After the sync and the first `n` effects.
    AfterEffects(usize),
}

/// One kill in this many lands inside a step rather than between two.
const CRASH_POINT_ONE_IN: u32 = 3;
/// Crash points are drawn from their own stream of the backend's seed, so the
/// network, clients and the rest of a run draw exactly what they did before.
const CRASH_STREAM: u64 = 13;

/// The simulated cluster.
pub struct SimBackend {
    spec: ClusterSpec,
    opts: SimOptions,
    verifier: Verifier,
    rng: ChaCha8Rng,
    /// Crash points and what a crash keeps of unsynced writes ([`CRASH_STREAM`]).
    crash_rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Event>,
    nodes: Vec<SimNode>,
    net: Network,
    completions: Vec<Completed>,
    next_ticket: Ticket,
    abandoned: BTreeSet<Ticket>,
    /// A store failure inside event processing, reported by the next `advance_to`.
    store_error: Option<BackendError>,
    /// Every distinct signed proposal and vote sent, by (signer, height, round,
    /// step, signed-bytes digest): the `equivocation` checker's input.
    signed: BTreeMap<(NodeId, u64, u32, SignedStep, [u8; 32]), SignedRecord>,
    /// Each node's clock rate (the `clock` nemesis, clock.rs).
    clocks: clock::Clocks,
}

/// A node's store on an empty simulated disk.
fn new_store(opts: &SimOptions) -> Result<Store<MemDevice>, BackendError> {
    let mut store = Store::open(MemDevice::new(opts.lying_disk))
        .map_err(|e| BackendError::Other(e.to_string()))?;
    store.set_sync(!opts.no_sync);
    Ok(store)
}

impl SimBackend {
    /// A cluster whose roster nodes are started; spares wait for add-node.
    pub fn new(spec: ClusterSpec, opts: SimOptions, rng: ChaCha8Rng) -> Result<Self, BackendError> {
        let nodes = spec
            .names
            .iter()
            .zip(&spec.keys)
            .map(|(name, key)| {
                Ok(SimNode {
                    name: name.clone(),
                    key: key.clone(),
                    core: None,
                    inc: 0,
                    store: new_store(&opts)?,
                    paused: false,
                    deferred: Vec::new(),
                    failed: false,
                    started: false,
                    waiting: BTreeMap::new(),
                    duplicate: false,
                    adversary: None,
                    ever_byzantine: false,
                    dying: None,
                    stopped: None,
                })
            })
            .collect::<Result<_, BackendError>>()?;
        let mut crash_rng = rng.clone();
        crash_rng.set_stream(CRASH_STREAM);
        let mut sim = SimBackend {
            spec,
            opts,
            verifier: Verifier::new(),
            rng,
            crash_rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            net: Network::default(),
            completions: Vec::new(),
            next_ticket: 0,
            abandoned: BTreeSet::new(),
            store_error: None,
            signed: BTreeMap::new(),
            clocks: clock::Clocks::default(),
        };
        for i in 0..sim.spec.roster_nodes {
            sim.start_node(i)?;
        }
        Ok(sim)
    }

    /// Last committed height of node `i`'s disk (for the benchmark).
    pub fn height(&self, i: usize) -> u64 {
        self.nodes.get(i).map(|n| n.store.height()).unwrap_or(0)
    }

    /// Events processed so far (sequence numbers handed out).
    pub fn events(&self) -> u64 {
        self.seq
    }

    fn push(&mut self, time: u64, kind: EventKind) {
        self.seq += 1;
        self.queue.push(Event {
            time,
            seq: self.seq,
            kind,
        });
    }

    fn index(&self, name: &str) -> Result<usize, BackendError> {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| BackendError::UnknownNode(name.to_string()))
    }

    /// Starts (or restarts) node `i` from its store: `Core::recover`, `start`
    /// (protocol.md §6).
    fn start_node(&mut self, i: usize) -> Result<(), BackendError> {
        if self.nodes[i].dying.is_some() {
            // Restarted before its crash point came: it dies between steps.
            self.crash_node(i);
        }
        let n = &mut self.nodes[i];
        if n.core.is_some() || n.failed {
            return Ok(());
        }
        let recovered = Core::recover(
            self.spec.genesis.clone(),
            n.key.clone(),
            self.opts.timeouts.clone(),
            self.verifier.clone(),
            &n.store,
        );
        let mut core = match recovered {
            Ok(core) => core,
            Err(e @ RecoverError::Untrusted(_)) => {
                // The node refuses to run on storage it cannot trust (DESIGN.md
                // "Storage faults"): it stays down, saying why.
                n.started = true;
                n.stopped = Some(e.to_string());
                return Ok(());
            }
            Err(e) => {
                return Err(BackendError::Replay {
                    node: n.name.clone(),
                    reason: e.to_string(),
                })
            }
        };
        if self.opts.trust_synced_certs {
            core.weaken_trust_synced_certificates();
        }
        let fx = core.start();
        n.core = Some(core);
        n.started = true;
        n.paused = false;
        self.execute(i, fx);
        Ok(())
    }

    /// Kills node `i`: the core and its timers and in-flight messages are gone, the
    /// disk keeps what was synced (the store reads it back as a restarted process
    /// would), and waiting clients learn nothing (`info`).
    fn crash_node(&mut self, i: usize) {
        let now = self.now;
        let n = &mut self.nodes[i];
        n.dying = None;
        if n.core.take().is_none() {
            return;
        }
        n.inc += 1;
        n.paused = false;
        n.deferred.clear();
        n.store.device_mut().crash_with(now, &mut self.crash_rng);
        if let Err(e) = n.store.reopen() {
            self.store_error.get_or_insert(BackendError::Replay {
                node: n.name.clone(),
                reason: e.to_string(),
            });
        }
        let waiting = std::mem::take(&mut n.waiting);
        for (_, ticket) in waiting {
            self.complete(ticket, ClientOutcome::Info("node crashed".into()));
        }
    }

    /// Records a store failure of node `i` (impossible on a `MemDevice`, but not
    /// ignored); the next `advance_to` reports it.
    fn store_failed(&mut self, i: usize, e: StoreError) {
        let node = self.nodes[i].name.clone();
        self.store_error
            .get_or_insert(BackendError::Other(format!("node {node}: store: {e}")));
    }

    fn resume_node(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        if !n.paused {
            return;
        }
        n.paused = false;
        let deferred = std::mem::take(&mut n.deferred);
        let now = self.now;
        for ev in deferred {
            self.push(now, ev);
        }
    }

    fn complete(&mut self, ticket: Ticket, outcome: ClientOutcome) {
        if self.abandoned.remove(&ticket) {
            return;
        }
        self.completions.push(Completed {
            ticket,
            time_ns: self.now,
            outcome,
        });
    }

    /// Records a signed proposal or vote the first time the network carries it.
    fn record_signed(&mut self, from: usize, msg: &Message) {
        let (signer, height, round, step, bytes, value) = match msg {
            Message::Proposal(p) => {
                let hash = p.proposal.block.hash();
                let pr = &p.proposal;
                let bytes = pr.sign_bytes(&hash);
                let value = format!("block {}", hash.short());
                (
                    p.proposer,
                    pr.height,
                    pr.round,
                    SignedStep::Proposal,
                    bytes,
                    value,
                )
            }
            Message::Vote(v) => {
                let v = &v.vote;
                let step = match v.kind {
                    VoteKind::Prevote => SignedStep::Prevote,
                    VoteKind::Precommit => SignedStep::Precommit,
                };
                let value = v
                    .block
                    .map_or_else(|| "nil".to_string(), |b| format!("block {}", b.short()));
                (v.validator, v.height, v.round, step, v.sign_bytes(), value)
            }
            _ => return,
        };
        let digest = sha256(&bytes);
        let key = (signer, height, round, step, digest.0);
        if self.signed.contains_key(&key) {
            return;
        }
        let rec = SignedRecord {
            signer: signer.to_hex(),
            height,
            round,
            step,
            digest: digest.to_hex(),
            value,
            time_ns: self.now,
            node: self.nodes[from].name.clone(),
        };
        self.signed.insert(key, rec);
    }

    fn send(&mut self, from: usize, to: Option<NodeId>, msg: Message) {
        if self.nodes[from].adversary.is_some() {
            self.send_byzantine(from, to, msg);
        } else {
            self.deliver(from, to, msg);
        }
    }

    /// Puts one message on the wire from `from` to `to` (every peer when `None`).
    fn deliver(&mut self, from: usize, to: Option<NodeId>, msg: Message) {
        self.record_signed(from, &msg);
        if matches!(msg, Message::Proposal(_)) && self.net.muted.contains(&from) {
            // Signed and sent, lost on every link (no random draw: Twins only).
            return;
        }
        let sender = self.nodes[from].key.id();
        let targets: Vec<usize> = (0..self.nodes.len())
            .filter(|j| *j != from)
            .filter(|j| self.nodes[*j].core.is_some())
            .filter(|j| to.is_none_or(|id| self.nodes[*j].key.id() == id))
            .collect();
        let last = targets.len();
        let mut msg = Some(msg);
        for (k, j) in targets.into_iter().enumerate() {
            let delays = self.net.deliveries(&mut self.rng, from, j);
            let copies = delays.len();
            for (c, d) in delays.into_iter().enumerate() {
                let m = if k + 1 == last && c + 1 == copies {
                    msg.take()
                } else {
                    msg.clone()
                };
                let Some(m) = m else { continue };
                let inc = self.nodes[j].inc;
                self.push(
                    self.now + d,
                    EventKind::Deliver {
                        to: j,
                        inc,
                        from: sender,
                        msg: m,
                    },
                );
            }
        }
    }

    /// Commits a core's output through the node's real store, as the runtime does
    /// (writes, sync, then the effects: protocol.md §6), and executes the effects
    /// in order. A dying node crashes at its crash point instead.
    fn execute(&mut self, i: usize, out: Output) {
        let now = self.now;
        let point = self.nodes[i].dying;
        let store = &mut self.nodes[i].store;
        store.device_mut().set_now(now);
        let done = store.write(out).and_then(|w| {
            if point == Some(CrashPoint::BeforeSync) {
                return Ok(None);
            }
            store.sync(w).map(Some)
        });
        let fx = match done {
            Ok(Some(fx)) => fx,
            Ok(None) => return self.crash_node(i),
            Err(e) => {
                // Fail-stop (DESIGN.md "Storage faults"): no effect of this output
                // leaves, the process dies, and a restart reads what the disk kept.
                self.crash_node(i);
                self.nodes[i].stopped = Some(format!("store commit failed: {e}"));
                return;
            }
        };
        if let Some(CrashPoint::AfterEffects(n)) = point {
            self.run_effects(i, fx.into_iter().take(n).collect());
            return self.crash_node(i);
        }
        self.run_effects(i, fx);
    }

    /// Executes a node's effects in order (after its store made them safe).
    fn run_effects(&mut self, i: usize, fx: Vec<Effect>) {
        let now = self.now;
        for e in fx {
            match e {
                Effect::Send { to, msg } => self.send(i, Some(to), msg),
                Effect::Broadcast(msg) => self.send(i, None, msg),
                Effect::Schedule { timeout, after_ms } => {
                    let inc = self.nodes[i].inc;
                    self.push(
                        now + self.clocks.timer_ns(i, after_ms),
                        EventKind::Timer {
                            node: i,
                            inc,
                            timeout,
                        },
                    );
                }
                Effect::Committed { outcomes, .. } => {
                    for (id, o) in outcomes {
                        if let Some(t) = self.nodes[i].waiting.remove(&id) {
                            self.complete(t, ClientOutcome::Ok(o));
                        }
                    }
                }
                Effect::RosterChanged(_) => {}
                Effect::ServeBlocks { to_peer, from, to } => {
                    let blocks = self.nodes[i].store.blocks(from, to);
                    let blocks = blocks.unwrap_or_else(|e| {
                        self.store_failed(i, e);
                        Vec::new()
                    });
                    if !blocks.is_empty() {
                        self.send(i, Some(to_peer), Message::SyncResponse(blocks));
                    }
                }
            }
        }
    }

    fn process(&mut self, ev: EventKind) {
        let (i, inc) = ev.target();
        let n = &mut self.nodes[i];
        if inc.is_some_and(|x| x != n.inc) {
            return;
        }
        if n.paused && n.core.is_some() {
            n.deferred.push(ev);
            return;
        }
        match ev {
            EventKind::Deliver { from, msg, .. } => {
                if let Some(a) = n.adversary.as_mut() {
                    a.adv.observe(&msg);
                }
                let Some(core) = n.core.as_mut() else { return };
                let fx = core.handle(Input::Message { from, msg });
                self.execute(i, fx);
            }
            EventKind::Timer { timeout, .. } => {
                let Some(core) = n.core.as_mut() else { return };
                let fx = core.handle(Input::Timeout(timeout));
                self.clocks.fired(i, timeout.kind);
                self.execute(i, fx);
            }
            EventKind::AdversaryTick { id, .. } => self.adversary_tick(i, id),
            EventKind::Submit { ticket, tx, .. } => {
                let Some(core) = n.core.as_mut() else {
                    self.complete(ticket, ClientOutcome::Fail("connection refused".into()));
                    return;
                };
                let id = tx.id.clone();
                let (res, fx) = core.submit(tx);
                match res {
                    Submit::Committed(o) => self.complete(ticket, ClientOutcome::Ok(o)),
                    Submit::Rejected(r) => self.complete(ticket, ClientOutcome::Fail(r)),
                    Submit::Busy => {
                        self.complete(ticket, ClientOutcome::Fail("mempool full".into()))
                    }
                    Submit::Pending => {
                        self.nodes[i].waiting.insert(id, ticket);
                    }
                }
                self.execute(i, fx);
            }
        }
    }
}

/// The node primitives on simulated nodes (the faults' meaning: `crate::nemesis`).
impl NodeControl for SimBackend {
    fn start_byzantine(
        &mut self,
        nodes: &[String],
        behaviour: rollcall_adversary::Behaviour,
    ) -> Result<Option<Value>, BackendError> {
        SimBackend::start_byzantine(self, nodes, behaviour).map(Some)
    }

    fn stop_byzantine(&mut self, nodes: &[String]) -> Result<Option<Value>, BackendError> {
        SimBackend::stop_byzantine(self, nodes).map(Some)
    }

    fn stop_all_byzantine(&mut self) -> Vec<String> {
        SimBackend::stop_all_byzantine(self)
    }

    fn set_clock(
        &mut self,
        node: &str,
        rate: u32,
        jump: i64,
    ) -> Result<Option<Value>, BackendError> {
        SimBackend::set_clock(self, node, rate, jump).map(Some)
    }

    fn reset_clocks(&mut self) -> Vec<String> {
        SimBackend::reset_clocks(self)
    }

    fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    fn node_state(&self, node: &str) -> Result<NodeState, BackendError> {
        let n = &self.nodes[self.index(node)?];
        Ok(match (&n.core, n.paused) {
            _ if n.failed => NodeState::Failed,
            _ if n.dying.is_some() => NodeState::Killed,
            (Some(_), true) => NodeState::Paused,
            (Some(_), false) => NodeState::Running,
            (None, _) if !n.started => NodeState::NotStarted,
            (None, _) => NodeState::Killed,
        })
    }

    fn is_twin(&self, node: &str) -> bool {
        self.index(node).is_ok_and(|i| self.nodes[i].duplicate)
    }

    fn node_id(&self, node: &str) -> Result<String, BackendError> {
        Ok(self.nodes[self.index(node)?].key.id().to_hex())
    }

    /// Kills the node now, or (one kill in [`CRASH_POINT_ONE_IN`], seeded) arms a
    /// crash point inside its next step; a paused node dies now.
    fn kill(&mut self, node: &str) -> Result<(), BackendError> {
        let i = self.index(node)?;
        let n = &self.nodes[i];
        if n.core.is_none() || n.paused || !self.crash_rng.gen_ratio(1, CRASH_POINT_ONE_IN) {
            self.crash_node(i);
            return Ok(());
        }
        let point = match self.crash_rng.gen_range(0..4) {
            0 => CrashPoint::BeforeSync,
            k => CrashPoint::AfterEffects(k - 1),
        };
        self.nodes[i].dying = Some(point);
        Ok(())
    }

    fn restart(&mut self, node: &str) -> Result<(), BackendError> {
        let i = self.index(node)?;
        self.start_node(i)
    }

    fn pause(&mut self, node: &str) -> Result<(), BackendError> {
        let i = self.index(node)?;
        if self.nodes[i].core.is_some() {
            self.nodes[i].paused = true;
        }
        Ok(())
    }

    fn resume(&mut self, node: &str) -> Result<(), BackendError> {
        let i = self.index(node)?;
        self.resume_node(i);
        Ok(())
    }

    fn stop_for_good(&mut self, node: &str) -> Result<(), BackendError> {
        let i = self.index(node)?;
        self.crash_node(i);
        self.nodes[i].failed = true;
        Ok(())
    }

    fn start_new(&mut self, node: &str) -> Result<(), BackendError> {
        let i = self.index(node)?;
        self.start_node(i)
    }

    fn add_twin(&mut self, of: &str, twin: &str) -> Result<(), BackendError> {
        let key = self.nodes[self.index(of)?].key.clone();
        self.nodes.push(SimNode {
            name: twin.to_string(),
            key,
            core: None,
            inc: 0,
            store: new_store(&self.opts)?,
            paused: false,
            deferred: Vec::new(),
            failed: false,
            started: false,
            waiting: BTreeMap::new(),
            duplicate: true,
            adversary: None,
            ever_byzantine: false,
            dying: None,
            stopped: None,
        });
        Ok(())
    }
}

impl Backend for SimBackend {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn now_ns(&self) -> u64 {
        self.now
    }

    fn advance_to(&mut self, t_ns: u64) -> Result<(), BackendError> {
        while self.queue.peek().is_some_and(|e| e.time <= t_ns) {
            let Some(ev) = self.queue.pop() else { break };
            self.now = self.now.max(ev.time);
            if self.opts.panic_at_ns.is_some_and(|t| self.now >= t) {
                panic!("test-only panic at simulated {} ns", self.now);
            }
            self.process(ev.kind);
            if let Some(e) = self.store_error.take() {
                return Err(e);
            }
        }
        self.now = self.now.max(t_ns);
        Ok(())
    }
}

impl Clients for SimBackend {
    fn submit(&mut self, node: &str, tx: Tx) -> Ticket {
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        match self.index(node) {
            Ok(i) => {
                let d = self.rng.gen_range(CLIENT_DELAY_NS.0..=CLIENT_DELAY_NS.1);
                self.push(
                    self.now + d,
                    EventKind::Submit {
                        node: i,
                        ticket,
                        tx,
                    },
                );
            }
            Err(e) => self.complete(ticket, ClientOutcome::Fail(e.to_string())),
        }
        ticket
    }

    fn abandon(&mut self, ticket: Ticket) {
        let mut found = false;
        for n in &mut self.nodes {
            let before = n.waiting.len();
            n.waiting.retain(|_, t| *t != ticket);
            found |= n.waiting.len() != before;
        }
        if !found {
            // Still in flight to its node: drop the answer when it comes.
            self.abandoned.insert(ticket);
        }
    }

    fn poll_completions(&mut self) -> Vec<Completed> {
        std::mem::take(&mut self.completions)
    }
    fn status(&mut self, node: &str) -> Option<Status> {
        let i = self.index(node).ok()?;
        Some(self.nodes[i].core.as_ref()?.status())
    }

    fn live_nodes(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.core.is_some() && !n.duplicate)
            .map(|n| n.name.clone())
            .collect()
    }

    fn dump(&mut self) -> Result<Vec<NodeDumpData>, BackendError> {
        self.nodes
            .iter()
            .filter(|n| n.started)
            .map(|n| {
                Ok(NodeDumpData {
                    name: n.name.clone(),
                    chain: n.store.blocks(1, n.store.height()).map_err(|e| {
                        BackendError::Replay {
                            node: n.name.clone(),
                            reason: e.to_string(),
                        }
                    })?,
                    status: n.core.as_ref().map(|c| c.status()),
                    alive: n.core.is_some(),
                    signed: Some(
                        (self.signed.values())
                            .filter(|r| r.node == n.name)
                            .cloned()
                            .collect(),
                    ),
                    byzantine_key: (n.duplicate || n.ever_byzantine).then(|| n.key.id().to_hex()),
                    stopped: n.stopped.clone(),
                })
            })
            .collect()
    }
}
