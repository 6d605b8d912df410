//! The real runtime: drives the sans-IO core with tokio TCP, real timers, an fsync'd
//! store and the HTTP API.
//!
//! The outputs of a batch of inputs are merged and go through `Store::commit`:
//! their writes are made durable (one fsync per file) before any of their effects
//! leaves the node (protocol.md §6), and the batch's transaction gossip is sent as
//! one frame.

use crate::api;
use crate::config::Home;
use crate::consensus::{Core, Effect, Input, Output, Status, Submit};
use crate::crypto::{NodeId, Verifier};
use crate::net::{encode_frame, Net, SYNC_RESPONSE_BYTES};
use crate::store::FsDevice;
use crate::types::{CommittedBlock, Message, RosterEntry, Tx, TxOutcome};
use anyhow::Context;
use rollcall_node_core::store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

/// The answer to a submitted transaction.
#[derive(Debug)]
pub enum SubmitReply {
    /// Committed (possibly earlier, for a resubmitted id).
    Committed(TxOutcome),
    /// Invalid: will never apply.
    Rejected(String),
    /// Mempool full.
    Busy,
}

/// Requests from the API to the driver loop.
pub enum Cmd {
    /// Submit a transaction; the reply comes when it commits.
    Submit(Tx, oneshot::Sender<SubmitReply>),
    /// Current status.
    Status(oneshot::Sender<Status>),
    /// The roster in force at a height: (epoch, entries).
    Roster(u64, oneshot::Sender<Option<(u64, Vec<RosterEntry>)>>),
}

/// What the API needs to reach the node.
#[derive(Clone)]
pub struct NodeHandle {
    /// Commands to the driver.
    pub cmd: mpsc::Sender<Cmd>,
    /// Read access to committed blocks.
    pub store: Arc<Mutex<Store<FsDevice>>>,
    /// How long `POST /tx` waits for the commit.
    pub tx_timeout: Duration,
}

impl NodeHandle {
    /// A stored block.
    pub fn block(&self, h: u64) -> Option<CommittedBlock> {
        self.store
            .lock()
            .ok()
            .and_then(|s| s.block(h).ok().flatten())
    }
}

/// An extension point on what a node sends to its peers, for tools built from the
/// node's types (the `rollcall-adversary` binary, issue 12): every message the core
/// sends goes through [`Outbound::outgoing`], every message it receives is shown to
/// [`Outbound::observe`], and [`Outbound::tick`] may add messages of its own on a
/// timer. `rollcall-node` itself installs none ([`run`]): its sends take the direct
/// path, with no extra work per message.
pub trait Outbound: Send {
    /// What really goes out for one message of the core, to `to` (or to every peer
    /// when `None`); `peers` are the connected peers a broadcast reaches.
    fn outgoing(
        &mut self,
        to: Option<NodeId>,
        msg: &Message,
        peers: &[NodeId],
    ) -> Vec<(NodeId, Message)>;
    /// A message a peer delivered (before the core handles it).
    fn observe(&mut self, _from: NodeId, _msg: &Message) {}
    /// Messages sent on its own, every [`Outbound::tick_every`].
    fn tick(&mut self, _peers: &[NodeId]) -> Vec<(NodeId, Message)> {
        Vec::new()
    }
    /// How often [`Outbound::tick`] runs; `None`: never.
    fn tick_every(&self) -> Option<Duration> {
        None
    }
}

/// Runs a node from its home directory until the process is stopped.
pub async fn run(home: Home) -> anyhow::Result<()> {
    run_with(home, None).await
}

/// [`run`] with every peer message going through `outbound` (see [`Outbound`]).
pub async fn run_with(home: Home, outbound: Option<Box<dyn Outbound>>) -> anyhow::Result<()> {
    let id = home.key.id();
    let span = tracing::info_span!("node", id = %id.short());
    run_inner(home, outbound).instrument(span).await
}

/// The node's channels and its core, ready for the driver loop.
struct Started {
    core: Core,
    driver: Driver,
    in_rx: mpsc::Receiver<Input>,
    cmd_rx: mpsc::Receiver<Cmd>,
}

/// Recovers the core, opens the peer and API ports and dials the roster.
async fn start(home: Home, outbound: Option<Box<dyn Outbound>>) -> anyhow::Result<Started> {
    let id = home.key.id();
    let (store, core) = recover(&home)?;
    let (in_tx, in_rx) = mpsc::channel::<Input>(65_536);
    let (cmd_tx, cmd_rx) = mpsc::channel::<Cmd>(65_536);
    let net = Net::new(&home.key, &home.genesis.chain_id, in_tx.clone())?;
    let listener = TcpListener::bind(&home.config.listen_addr)
        .await
        .with_context(|| format!("binding peer port {}", home.config.listen_addr))?;
    net.serve(listener);
    for addr in &home.config.bootstrap {
        if addr != &home.config.peer_addr {
            net.dial(addr.clone());
        }
    }
    net.set_members(core.chain().roster().entries().iter().map(|e| e.id));
    dial_roster(&net, id, core.chain().roster().entries());

    let store = Arc::new(Mutex::new(store));
    let handle = NodeHandle {
        cmd: cmd_tx,
        store: store.clone(),
        tx_timeout: Duration::from_millis(home.config.tx_timeout_ms),
    };
    let api_listener = TcpListener::bind(&home.config.api_addr)
        .await
        .with_context(|| format!("binding API port {}", home.config.api_addr))?;
    tokio::spawn(api::serve(api_listener, handle));
    tracing::info!(api = %home.config.api_addr, peer = %home.config.listen_addr, "node started");
    let driver = Driver {
        me: id,
        net,
        store,
        in_tx,
        waiters: HashMap::new(),
        outbound,
    };
    Ok(Started {
        core,
        driver,
        in_rx,
        cmd_rx,
    })
}

/// The next tick of `every`, or never.
async fn next_tick(every: &mut Option<tokio::time::Interval>) {
    match every {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn run_inner(home: Home, outbound: Option<Box<dyn Outbound>>) -> anyhow::Result<()> {
    let Started {
        mut core,
        mut driver,
        mut in_rx,
        mut cmd_rx,
    } = start(home, outbound).await?;
    let mut ticks = (driver.outbound.as_ref())
        .and_then(|o| o.tick_every())
        .map(tokio::time::interval);
    let out = core.start();
    driver.execute(out)?;
    loop {
        let mut out = Output::default();
        tokio::select! {
            Some(i) = in_rx.recv() => {
                driver.observe(&i);
                out.extend(core.handle(i));
            }
            Some(c) = cmd_rx.recv() => driver.command(&mut core, c, &mut out),
            _ = next_tick(&mut ticks) => driver.tick(),
            else => return Ok(()),
        }
        // Take what else is ready, so one fsync and one gossip frame serve many inputs.
        for _ in 0..512 {
            if let Ok(i) = in_rx.try_recv() {
                driver.observe(&i);
                out.extend(core.handle(i));
            } else if let Ok(c) = cmd_rx.try_recv() {
                driver.command(&mut core, c, &mut out);
            } else {
                break;
            }
        }
        driver.execute(out)?;
    }
}

/// Opens the store and replays it into a core (protocol.md §6), with the operator's
/// mempool bound applied before anything arrives.
fn recover(home: &Home) -> anyhow::Result<(Store<FsDevice>, Core)> {
    let store = crate::store::open(&home.data_dir())?;
    let mut core = Core::recover(
        home.genesis.clone(),
        home.key.clone(),
        home.config.timeouts.clone(),
        Verifier::new(),
        &store,
    )
    .context("replaying the stored chain")?;
    core.set_mempool_limit(home.config.mempool_txs);
    tracing::info!(
        height = store.height(),
        truncated_bytes = store.truncated_bytes(),
        epoch = core.chain().epoch(),
        "recovered from store"
    );
    Ok((store, core))
}

fn dial_roster(net: &Net, me: NodeId, entries: &[RosterEntry]) {
    for e in entries {
        if e.id != me {
            net.dial(e.addr.clone());
        }
    }
}

struct Driver {
    me: NodeId,
    net: Net,
    store: Arc<Mutex<Store<FsDevice>>>,
    in_tx: mpsc::Sender<Input>,
    waiters: HashMap<String, Vec<oneshot::Sender<SubmitReply>>>,
    /// The send filter of a tool built on the runtime; `None` for the real node.
    outbound: Option<Box<dyn Outbound>>,
}

impl Driver {
    /// Sends one message of the core, through [`Outbound`] if one is installed.
    fn send(&mut self, to: Option<NodeId>, msg: &Message) {
        let Some(o) = self.outbound.as_mut() else {
            match to {
                Some(to) => self.net.send(&to, encode_frame(msg)),
                None => self.net.broadcast(encode_frame(msg)),
            }
            return;
        };
        for (peer, m) in o.outgoing(to, msg, &self.net.peer_ids()) {
            self.net.send(&peer, encode_frame(&m));
        }
    }

    /// Shows a delivered message to the [`Outbound`], if any.
    fn observe(&mut self, i: &Input) {
        if let (Some(o), Input::Message { from, msg }) = (self.outbound.as_mut(), i) {
            o.observe(*from, msg);
        }
    }

    /// The [`Outbound`]'s own messages.
    fn tick(&mut self) {
        let Some(o) = self.outbound.as_mut() else {
            return;
        };
        for (peer, m) in o.tick(&self.net.peer_ids()) {
            self.net.send(&peer, encode_frame(&m));
        }
    }

    fn command(&mut self, core: &mut Core, c: Cmd, fx: &mut Output) {
        match c {
            Cmd::Submit(tx, reply) => {
                let id = tx.id.clone();
                let (res, more) = core.submit(tx);
                fx.extend(more);
                let _ = match res {
                    Submit::Committed(o) => reply.send(SubmitReply::Committed(o)),
                    Submit::Rejected(r) => reply.send(SubmitReply::Rejected(r)),
                    Submit::Busy => reply.send(SubmitReply::Busy),
                    Submit::Pending => {
                        self.waiters.entry(id).or_default().push(reply);
                        Ok(())
                    }
                };
            }
            Cmd::Status(reply) => {
                let mut s = core.status();
                let d = &self.net.drops;
                let get =
                    |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
                s.dropped.refused_connection = get(&d.refused_connection);
                s.dropped.bad_handshake = get(&d.bad_handshake);
                s.dropped.bad_frame = get(&d.bad_frame);
                s.dropped.non_member = get(&d.non_member);
                s.dropped.rate_limited = get(&d.rate_limited);
                s.dropped_messages = s.dropped.total();
                let _ = reply.send(s);
            }
            Cmd::Roster(h, reply) => {
                let chain = core.chain();
                let ans = (h >= 1 && h <= chain.height + 1).then(|| {
                    let era = chain.era_at(h);
                    (era.epoch, era.roster.entries().to_vec())
                });
                let _ = reply.send(ans);
            }
        }
    }

    /// Commits the batch's output (durable writes first, §6), then performs its
    /// effects in order, with the transaction gossip merged into one frame last.
    fn execute(&mut self, out: Output) -> anyhow::Result<()> {
        let store_arc = self.store.clone();
        let mut store = store_arc
            .lock()
            .map_err(|_| anyhow::anyhow!("store lock poisoned"))?;
        let fx = store.commit(out)?;
        let mut gossip = Vec::new();
        let mut bytes = 0;
        for e in fx {
            match e {
                Effect::Broadcast(Message::Txs(txs)) => {
                    for tx in txs {
                        // Gossip frames stay within one block's budget.
                        let size = crate::types::validate_tx(&tx).unwrap_or(0);
                        if bytes + size > crate::types::MAX_BLOCK_TX_BYTES && !gossip.is_empty() {
                            let batch = std::mem::take(&mut gossip);
                            self.perform(&store, Effect::Broadcast(Message::Txs(batch)));
                            bytes = 0;
                        }
                        bytes += size;
                        gossip.push(tx);
                    }
                }
                other => self.perform(&store, other),
            }
        }
        if !gossip.is_empty() {
            self.perform(&store, Effect::Broadcast(Message::Txs(gossip)));
        }
        Ok(())
    }

    fn perform(&mut self, store: &Store<FsDevice>, e: Effect) {
        match e {
            Effect::Send { to, msg } => self.send(Some(to), &msg),
            Effect::Broadcast(msg) => self.send(None, &msg),
            Effect::Schedule { timeout, after_ms } => {
                let tx = self.in_tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(after_ms)).await;
                    let _ = tx.send(Input::Timeout(timeout)).await;
                });
            }
            Effect::Committed { outcomes, .. } => {
                for (id, o) in outcomes {
                    for w in self.waiters.remove(&id).unwrap_or_default() {
                        let _ = w.send(SubmitReply::Committed(o.clone()));
                    }
                }
            }
            Effect::RosterChanged(r) => {
                self.net.set_members(r.entries().iter().map(|e| e.id));
                dial_roster(&self.net, self.me, r.entries());
            }
            Effect::ServeBlocks { to_peer, from, to } => {
                let mut blocks = Vec::new();
                let mut bytes = 0usize;
                for h in from..=to {
                    match store.block(h) {
                        Ok(Some(cb)) => {
                            // Measured exactly, so the response fits the frame limit.
                            bytes += postcard::experimental::serialized_size(&cb)
                                .unwrap_or(usize::MAX / 2);
                            if bytes > SYNC_RESPONSE_BYTES && !blocks.is_empty() {
                                break;
                            }
                            blocks.push(cb);
                        }
                        _ => break,
                    }
                }
                if !blocks.is_empty() {
                    self.send(Some(to_peer), &Message::SyncResponse(blocks));
                }
            }
        }
    }
}
