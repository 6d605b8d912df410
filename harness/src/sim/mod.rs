//! The `sim` backend (harness.md §2): every node's real sans-IO consensus core in
//! one process, on a simulated network, clock and disk, driven by one seeded RNG.
//!
//! Events (message deliveries, timers, client requests) sit in one queue ordered by
//! (virtual time, sequence number), so the same seed and options replay the same
//! run exactly. Nothing here iterates a hash map.

mod byzantine;
pub mod disk;
pub mod network;

use crate::backend::{Backend, BackendError, ClientOutcome, Completed, NodeDumpData, Ticket};
use crate::cluster::ClusterSpec;
use disk::Disk;
use network::Network;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rollcall_node::consensus::{Core, Effect, Input, Submit, Timeout, Timeouts};
use rollcall_node::crypto::{Keypair, NodeId, Verifier};
use rollcall_node::types::{Message, Tx};
use rollcall_workloads::Fault;
use serde_json::{json, Value};
use std::cmp::Ordering;
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

enum EventKind {
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
    fn target(&self) -> (usize, Option<u64>) {
        match self {
            EventKind::Deliver { to, inc, .. } => (*to, Some(*inc)),
            EventKind::Timer { node, inc, .. } => (*node, Some(*inc)),
            EventKind::Submit { node, .. } | EventKind::AdversaryTick { node, .. } => (*node, None),
        }
    }
}

struct Event {
    time: u64,
    seq: u64,
    kind: EventKind,
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

struct SimNode {
    name: String,
    key: Keypair,
    core: Option<Core>,
    /// Bumped on every crash: events for an older incarnation are dropped.
    inc: u64,
    disk: Disk,
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
}

/// The simulated cluster.
pub struct SimBackend {
    spec: ClusterSpec,
    opts: SimOptions,
    verifier: Verifier,
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Event>,
    nodes: Vec<SimNode>,
    net: Network,
    completions: Vec<Completed>,
    next_ticket: Ticket,
    abandoned: BTreeSet<Ticket>,
    /// Nodes crash-all stopped, restarted on its stop.
    crashed_all: Vec<usize>,
}

impl SimBackend {
    /// A cluster whose roster nodes are started; spares wait for add-node.
    pub fn new(spec: ClusterSpec, opts: SimOptions, rng: ChaCha8Rng) -> Result<Self, BackendError> {
        let nodes = spec
            .names
            .iter()
            .zip(&spec.keys)
            .map(|(name, key)| SimNode {
                name: name.clone(),
                key: key.clone(),
                core: None,
                inc: 0,
                disk: Disk::new(opts.lying_disk),
                paused: false,
                deferred: Vec::new(),
                failed: false,
                started: false,
                waiting: BTreeMap::new(),
                duplicate: false,
                adversary: None,
            })
            .collect();
        let mut sim = SimBackend {
            spec,
            opts,
            verifier: Verifier::new(),
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            net: Network::default(),
            completions: Vec::new(),
            next_ticket: 0,
            abandoned: BTreeSet::new(),
            crashed_all: Vec::new(),
        };
        for i in 0..sim.spec.roster_nodes {
            sim.start_node(i)?;
        }
        Ok(sim)
    }

    /// Last committed height of node `i`'s disk (for the benchmark).
    pub fn height(&self, i: usize) -> u64 {
        self.nodes.get(i).map(|n| n.disk.height()).unwrap_or(0)
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

    fn links(&self, links: &[(String, String)]) -> Vec<(usize, usize)> {
        links
            .iter()
            .filter_map(|(a, b)| Some((self.index(a).ok()?, self.index(b).ok()?)))
            .collect()
    }

    /// Starts (or restarts) node `i` from its disk: `Core::new`, replay every
    /// stored block, restore the signing state, `start` (protocol.md §6).
    fn start_node(&mut self, i: usize) -> Result<(), BackendError> {
        let n = &mut self.nodes[i];
        if n.core.is_some() || n.failed {
            return Ok(());
        }
        let mut core = Core::new(
            self.spec.genesis.clone(),
            n.key.clone(),
            self.opts.timeouts.clone(),
            self.verifier.clone(),
        );
        for cb in n.disk.blocks() {
            core.replay(cb.clone()).map_err(|e| BackendError::Replay {
                node: n.name.clone(),
                reason: e.to_string(),
            })?;
        }
        if let Some(s) = n.disk.sign_state() {
            core.restore_sign_state(s);
        }
        let fx = core.start();
        n.core = Some(core);
        n.started = true;
        n.paused = false;
        self.execute(i, fx);
        Ok(())
    }

    /// Kills node `i`: the core and its timers and in-flight messages are gone, the
    /// disk keeps what was durable, and waiting clients learn nothing (`info`).
    fn crash_node(&mut self, i: usize) {
        let now = self.now;
        let n = &mut self.nodes[i];
        if n.core.take().is_none() {
            return;
        }
        n.inc += 1;
        n.paused = false;
        n.deferred.clear();
        n.disk.crash(now);
        let waiting = std::mem::take(&mut n.waiting);
        for (_, ticket) in waiting {
            self.complete(ticket, ClientOutcome::Info("node crashed".into()));
        }
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

    fn send(&mut self, from: usize, to: Option<NodeId>, msg: Message) {
        if self.nodes[from].adversary.is_some() {
            self.send_byzantine(from, to, msg);
        } else {
            self.deliver(from, to, msg);
        }
    }

    /// Puts one message on the wire from `from` to `to` (every peer when `None`).
    fn deliver(&mut self, from: usize, to: Option<NodeId>, msg: Message) {
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

    /// Executes a core's effects in order, as the real runtime does: persist
    /// effects are durable at once (before anything after them).
    fn execute(&mut self, i: usize, fx: Vec<Effect>) {
        let now = self.now;
        for e in fx {
            match e {
                Effect::PersistSignState(s) => self.nodes[i].disk.save_sign_state(*s, now),
                Effect::PersistBlock(cb) => self.nodes[i].disk.append_block(*cb, now),
                Effect::Send { to, msg } => self.send(i, Some(to), msg),
                Effect::Broadcast(msg) => self.send(i, None, msg),
                Effect::Schedule { timeout, after_ms } => {
                    let inc = self.nodes[i].inc;
                    self.push(
                        now + after_ms * 1_000_000,
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
                    let blocks = self.nodes[i].disk.range(from, to);
                    if !blocks.is_empty() {
                        self.send(i, Some(to_peer), Message::SyncResponse(blocks));
                    }
                }
            }
        }
    }

    fn gossip(&mut self, i: usize) {
        let g = self.nodes[i].core.as_mut().and_then(|c| c.take_gossip());
        if let Some(g) = g {
            self.execute(i, vec![g]);
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
                self.gossip(i);
            }
            EventKind::Timer { timeout, .. } => {
                let Some(core) = n.core.as_mut() else { return };
                let fx = core.handle(Input::Timeout(timeout));
                self.execute(i, fx);
                self.gossip(i);
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
                self.gossip(i);
            }
        }
    }

    /// Starts `duplicate`, a node with `node`'s key and an empty disk (duplicate-key).
    fn start_duplicate(&mut self, node: &str, duplicate: &str) -> Result<Value, BackendError> {
        let orig = self.index(node)?;
        let key = self.nodes[orig].key.clone();
        let i = match self.index(duplicate) {
            Ok(i) => i,
            Err(_) => {
                self.nodes.push(SimNode {
                    name: duplicate.to_string(),
                    key,
                    core: None,
                    inc: 0,
                    disk: Disk::new(self.opts.lying_disk),
                    paused: false,
                    deferred: Vec::new(),
                    failed: false,
                    started: false,
                    waiting: BTreeMap::new(),
                    duplicate: true,
                    adversary: None,
                });
                self.nodes.len() - 1
            }
        };
        self.start_node(i)?;
        Ok(json!({"node": node, "duplicate": duplicate, "id": self.id_of(i)}))
    }

    fn names(&self, idx: &[usize]) -> Vec<String> {
        idx.iter().map(|i| self.nodes[*i].name.clone()).collect()
    }

    fn id_of(&self, i: usize) -> String {
        self.nodes[i].key.id().to_hex()
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
        }
        self.now = self.now.max(t_ns);
        Ok(())
    }

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

    fn start_fault(&mut self, fault: &Fault) -> Result<Value, BackendError> {
        Ok(match fault {
            Fault::Partition { blocked, .. } => {
                let l = self.links(blocked);
                self.net.block(&l);
                json!({"links_blocked": l.len()})
            }
            Fault::Kill { nodes } | Fault::Pause { nodes } => {
                let pause = matches!(fault, Fault::Pause { .. });
                let mut done = Vec::new();
                for name in nodes {
                    let i = self.index(name)?;
                    if self.nodes[i].core.is_none() {
                        continue;
                    }
                    if pause {
                        self.nodes[i].paused = true;
                    } else {
                        self.crash_node(i);
                    }
                    done.push(i);
                }
                json!({"nodes": self.names(&done)})
            }
            Fault::CrashAll => {
                let running: Vec<usize> = (0..self.nodes.len())
                    .filter(|i| self.nodes[*i].core.is_some())
                    .collect();
                for i in &running {
                    self.crash_node(*i);
                }
                let names = self.names(&running);
                self.crashed_all = running;
                json!({"nodes": names})
            }
            Fault::AddNode { node } => {
                let i = self.index(node)?;
                self.start_node(i)?;
                json!({"node": node, "id": self.id_of(i)})
            }
            Fault::FailNode { node } => {
                let i = self.index(node)?;
                self.crash_node(i);
                self.nodes[i].failed = true;
                json!({"node": node, "id": self.id_of(i)})
            }
            Fault::Flaky {
                links,
                loss_pct,
                duplicate_pct,
            } => {
                let l = self.links(links);
                self.net.set_flaky(&l, *loss_pct, *duplicate_pct);
                json!({"links": l.len()})
            }
            Fault::Slow {
                links,
                delay_ms,
                jitter_ms,
            } => {
                let l = self.links(links);
                self.net
                    .set_slow(&l, delay_ms * 1_000_000, jitter_ms * 1_000_000);
                json!({"links": l.len()})
            }
            Fault::DuplicateKey { node, duplicate } => self.start_duplicate(node, duplicate)?,
            Fault::Byzantine { nodes, behaviour } => self.start_byzantine(nodes, *behaviour)?,
        })
    }

    fn stop_fault(&mut self, fault: &Fault) -> Result<Value, BackendError> {
        Ok(match fault {
            Fault::Partition { blocked, .. } => {
                let l = self.links(blocked);
                self.net.unblock(&l);
                json!({"links_unblocked": l.len()})
            }
            Fault::Kill { nodes } | Fault::Pause { nodes } => {
                let mut done = Vec::new();
                for name in nodes {
                    let i = self.index(name)?;
                    if matches!(fault, Fault::Pause { .. }) {
                        if self.nodes[i].paused {
                            self.resume_node(i);
                            done.push(i);
                        }
                    } else if self.nodes[i].core.is_none() && !self.nodes[i].failed {
                        self.start_node(i)?;
                        done.push(i);
                    }
                }
                json!({"nodes": self.names(&done)})
            }
            Fault::CrashAll => {
                let all = std::mem::take(&mut self.crashed_all);
                for i in &all {
                    self.start_node(*i)?;
                }
                json!({"nodes": self.names(&all)})
            }
            Fault::AddNode { node } => {
                let i = self.index(node)?;
                json!({"node": node, "id": self.id_of(i)})
            }
            Fault::FailNode { node } => json!({"node": node}),
            Fault::Flaky { links, .. } => {
                let l = self.links(links);
                self.net.clear_flaky(&l);
                json!({"links": l.len()})
            }
            Fault::Slow { links, .. } => {
                let l = self.links(links);
                self.net.clear_slow(&l);
                json!({"links": l.len()})
            }
            Fault::DuplicateKey { duplicate, .. } => {
                let i = self.index(duplicate)?;
                self.crash_node(i);
                self.nodes[i].failed = true;
                json!({"duplicate": duplicate, "stopped": true})
            }
            Fault::Byzantine { nodes, .. } => self.stop_byzantine(nodes)?,
        })
    }

    fn heal_all(&mut self) -> Result<Value, BackendError> {
        self.net.heal();
        let mut resumed = Vec::new();
        let mut restarted = Vec::new();
        let mut stopped = Vec::new();
        self.crashed_all.clear();
        let honest_again = self.stop_all_byzantine();
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            if n.duplicate && !n.failed {
                self.crash_node(i);
                self.nodes[i].failed = true;
                stopped.push(i);
            } else if n.paused {
                self.resume_node(i);
                resumed.push(i);
            } else if n.core.is_none() && n.started && !n.failed {
                self.start_node(i)?;
                restarted.push(i);
            }
        }
        let mut out = json!({
            "resumed": self.names(&resumed),
            "restarted": self.names(&restarted),
            "duplicates_stopped": self.names(&stopped),
        });
        // Only when there were any, so runs without adversaries record what they did.
        if !honest_again.is_empty() {
            out["adversaries_stopped"] = json!(honest_again);
        }
        Ok(out)
    }

    fn status(&mut self, node: &str) -> Option<Value> {
        let i = self.index(node).ok()?;
        let core = self.nodes[i].core.as_ref()?;
        serde_json::to_value(core.status()).ok()
    }

    fn live_nodes(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.core.is_some() && !n.duplicate)
            .map(|n| n.name.clone())
            .collect()
    }

    fn dump(&mut self) -> Result<Vec<NodeDumpData>, BackendError> {
        Ok(self
            .nodes
            .iter()
            .filter(|n| n.started)
            .map(|n| NodeDumpData {
                name: n.name.clone(),
                chain: n.disk.blocks().cloned().collect(),
                status: n
                    .core
                    .as_ref()
                    .and_then(|c| serde_json::to_value(c.status()).ok()),
                alive: n.core.is_some(),
            })
            .collect())
    }
}
