//! Peer transport: Noise-encrypted, authenticated connections ([`crate::noise`]),
//! postcard frames, dialers that reconnect with backoff, and bounds on everything a
//! peer can make this node hold (issue 14).
//!
//! Every connection proves its peer's node id in the handshake, so the runtime can
//! trust `from` when it decides which messages count (only roster members' consensus
//! and mempool messages do). A connection costs at most one frame of [`MAX_FRAME`]
//! bytes plus 128 KiB of buffers; there are at most [`MAX_CONNS`] inbound and
//! [`MAX_CONNS_PER_IP`] handshaking from one address. A peer that is silent for
//! [`IDLE_TIMEOUT`], leaves a frame half-sent for [`FRAME_TIMEOUT`] or does not finish
//! the handshake in [`HANDSHAKE_TIMEOUT`] is dropped. Every drop is counted.

use crate::consensus::Input;
use crate::crypto::{Keypair, NodeId};
use crate::noise::{ChannelError, Local};
use crate::types::{Message, MAX_BLOCK_TX_BYTES};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Largest frame accepted: a proposal or sync response carries at most one
/// full block ([`MAX_BLOCK_TX_BYTES`] of transactions plus its certificates) beyond
/// the sync budget, so twice the block budget plus 2 MiB of margin holds any legal
/// message (not the 64 MiB of old).
pub const MAX_FRAME: usize = 2 * MAX_BLOCK_TX_BYTES + (2 << 20);
/// Most bytes of blocks one sync response carries (one block more if the first alone
/// is larger), measured on the encoded blocks.
pub const SYNC_RESPONSE_BYTES: usize = MAX_BLOCK_TX_BYTES;
/// Most inbound peer connections (outbound ones go to roster and bootstrap
/// addresses only, so members stay reachable however the inbound slots are used).
pub const MAX_CONNS: usize = 64;
/// Most inbound connections from one IP address still in their handshake (the ones
/// that prove nothing yet; proven ones are one per node id).
pub const MAX_CONNS_PER_IP: usize = 4;
/// Time allowed for the Noise handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest silence (peers announce every tick, well under this).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest time from a frame's first piece to its last.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames queued per peer before new ones are dropped (consensus re-sends).
const QUEUE: usize = 1024;
/// Bytes queued per peer before new frames are dropped: a slow or hostile reader
/// cannot make the node hold more than this for it.
const QUEUE_BYTES: usize = 2 * MAX_FRAME;

/// An encoded message (postcard), not yet sealed for a connection.
type Frame = Arc<Vec<u8>>;

/// Live connections by peer id: a connection number (so a closing connection only
/// removes itself) and the writer's queue.
type PeerTable = HashMap<NodeId, (u64, Outbox)>;

/// A connection's writer queue and the bytes in it.
#[derive(Clone)]
struct Outbox {
    tx: mpsc::Sender<Frame>,
    queued: Arc<std::sync::atomic::AtomicUsize>,
}

impl Outbox {
    fn push(&self, frame: Frame) {
        let n = frame.len();
        if self.queued.fetch_add(n, Ordering::Relaxed) + n > QUEUE_BYTES
            || self.tx.try_send(frame).is_err()
        {
            self.queued.fetch_sub(n, Ordering::Relaxed);
        }
    }
}

/// Connections refused or dropped by the transport, by reason (merged into
/// `/status`'s `dropped`).
#[derive(Debug, Default)]
pub struct NetDrops {
    /// Over the total or per-address connection cap.
    pub refused_connection: AtomicU64,
    /// Handshake failed, timed out, or the peer did not prove its id.
    pub bad_handshake: AtomicU64,
    /// Oversized, undecodable, undecryptable or too slow frames.
    pub bad_frame: AtomicU64,
    /// A non-member's frame other than a sync request or response.
    pub non_member: AtomicU64,
    /// A non-member's sync frames over [`NON_MEMBER_FRAMES_PER_SEC`].
    pub rate_limited: AtomicU64,
}

/// Bytes a non-member connection may send per second: beyond it the node stops
/// reading that socket for the rest of the second, so TCP back-pressure, not the
/// node's CPU, absorbs a flood.
pub const NON_MEMBER_BYTES_PER_SEC: usize = 256 << 10;

/// Sync frames all non-members together may send per second (a newcomer must sync; an
/// outsider must not make the node serve or check blocks without bound).
pub const NON_MEMBER_FRAMES_PER_SEC: u32 = 20;

/// postcard's tags of [`Message`]'s variants a non-member may send: its first byte
/// is the variant index (a varint, one byte below 128), so a non-member's other
/// frames are dropped before they are decoded or queued.
const SYNC_TAGS: [u8; 2] = [4, 5];

/// Encodes a message as one frame.
pub fn encode_frame(msg: &Message) -> Frame {
    Arc::new(crate::types::encode(msg))
}

/// The set of live connections, by peer id.
#[derive(Clone)]
pub struct Net {
    me: NodeId,
    local: Arc<Local>,
    peers: Arc<Mutex<PeerTable>>,
    dialing: Arc<Mutex<HashSet<String>>>,
    conns: Arc<Mutex<(usize, HashMap<IpAddr, usize>)>>,
    next_conn: Arc<AtomicU64>,
    members: Arc<std::sync::RwLock<HashSet<NodeId>>>,
    /// All non-members' sync frames in the current second (one budget for all of
    /// them, so many outsider keys do not multiply it).
    outsiders: Arc<Mutex<(std::time::Instant, u32)>>,
    inbox: mpsc::Sender<Input>,
    /// Drop counters.
    pub drops: Arc<NetDrops>,
}

/// An inbound connection's place under the caps, released when it ends; its
/// per-address share is released once the handshake proves the peer.
struct Slot {
    conns: Arc<Mutex<(usize, HashMap<IpAddr, usize>)>>,
    pending: Option<IpAddr>,
}

impl Slot {
    fn proven(&mut self) {
        if let (Some(ip), Ok(mut c)) = (self.pending.take(), self.conns.lock()) {
            if let Some(n) = c.1.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    c.1.remove(&ip);
                }
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.proven();
        if let Ok(mut c) = self.conns.lock() {
            c.0 = c.0.saturating_sub(1);
        }
    }
}

impl Net {
    /// A transport that proves `key`'s id to peers of `chain_id` and delivers received
    /// messages to `inbox`.
    pub fn new(key: &Keypair, chain_id: &str, inbox: mpsc::Sender<Input>) -> anyhow::Result<Self> {
        Ok(Net {
            me: key.id(),
            local: Arc::new(Local::new(key, chain_id)?),
            peers: Default::default(),
            dialing: Default::default(),
            conns: Default::default(),
            next_conn: Default::default(),
            members: Default::default(),
            outsiders: Arc::new(Mutex::new((std::time::Instant::now(), 0))),
            inbox,
            drops: Default::default(),
        })
    }

    /// The roster in force: only these peers' consensus and mempool frames are
    /// delivered (the ids are proven by the handshake; issue 14).
    pub fn set_members(&self, ids: impl IntoIterator<Item = NodeId>) {
        if let Ok(mut m) = self.members.write() {
            *m = ids.into_iter().collect();
        }
    }

    fn is_member(&self, id: &NodeId) -> bool {
        self.members.read().is_ok_and(|m| m.contains(id))
    }

    /// Whether a frame from `peer` goes on to decoding: a member's always; a
    /// non-member's only if it is a sync frame within the rate (drops counted).
    fn admit(&self, peer: &NodeId, frame: &[u8]) -> bool {
        if self.is_member(peer) {
            return true;
        }
        if !frame.first().is_some_and(|t| SYNC_TAGS.contains(t)) {
            self.drops.non_member.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let Ok(mut window) = self.outsiders.lock() else {
            return false;
        };
        let now = std::time::Instant::now();
        if now.duration_since(window.0) >= Duration::from_secs(1) {
            *window = (now, 0);
        }
        window.1 += 1;
        if window.1 > NON_MEMBER_FRAMES_PER_SEC {
            self.drops.rate_limited.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Takes an inbound connection slot, or refuses (counted).
    fn slot(&self, ip: IpAddr) -> Option<Slot> {
        let mut c = self.conns.lock().ok()?;
        let per_ip = c.1.get(&ip).copied().unwrap_or(0);
        if c.0 >= MAX_CONNS || per_ip >= MAX_CONNS_PER_IP {
            self.drops
                .refused_connection
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        c.0 += 1;
        *c.1.entry(ip).or_default() += 1;
        Some(Slot {
            conns: self.conns.clone(),
            pending: Some(ip),
        })
    }

    /// Accepts peer connections on `listener` forever.
    pub fn serve(&self, listener: TcpListener) {
        let net = self.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((sock, addr)) => {
                        let Some(mut slot) = net.slot(addr.ip()) else {
                            tracing::debug!(%addr, "connection cap reached: refused");
                            continue;
                        };
                        let net = net.clone();
                        tokio::spawn(async move {
                            let r = net.connection(sock, Some(&mut slot)).await;
                            drop(slot);
                            if let Err(e) = r {
                                log_close(&addr.to_string(), &e);
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
    }

    /// Keeps a connection to `addr` open, redialing with backoff.
    pub fn dial(&self, addr: String) {
        {
            let Ok(mut d) = self.dialing.lock() else {
                return;
            };
            if !d.insert(addr.clone()) {
                return;
            }
        }
        let net = self.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(50);
            loop {
                match TcpStream::connect(&addr).await {
                    Ok(sock) => {
                        backoff = Duration::from_millis(50);
                        if let Err(e) = net.connection(sock, None).await {
                            log_close(&addr, &e);
                        }
                    }
                    Err(e) => tracing::trace!(%addr, error = %e, "dial failed"),
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        });
    }

    /// Runs one connection; `inbound` holds the slot of an accepted one (we answer
    /// the handshake), `None` means we dialed (we start it).
    async fn connection(
        &self,
        mut sock: TcpStream,
        inbound: Option<&mut Slot>,
    ) -> Result<(), ChannelError> {
        sock.set_nodelay(true)?;
        let initiator = inbound.is_none();
        let (peer, mut sealer, mut opener) = match self
            .local
            .handshake(&mut sock, initiator, HANDSHAKE_TIMEOUT)
            .await
        {
            Ok(x) => x,
            Err(e) => {
                // Unfinished or garbled handshakes are a protocol break (logged).
                self.drops.bad_handshake.fetch_add(1, Ordering::Relaxed);
                return Err(ChannelError::Crypto(format!("handshake: {e}")));
            }
        };
        if let Some(slot) = inbound {
            slot.proven();
        }
        if peer == self.me {
            return Err(ChannelError::Crypto("connected to myself".into()));
        }
        let (mut rd, wr) = sock.into_split();
        let mut wr = BufWriter::new(wr);
        let (tx, mut rx) = mpsc::channel::<Frame>(QUEUE);
        let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut p) = self.peers.lock() {
            p.insert(
                peer,
                (
                    conn,
                    Outbox {
                        tx,
                        queued: queued.clone(),
                    },
                ),
            );
        }
        let writer = tokio::spawn(async move {
            while let Some(f) = rx.recv().await {
                queued.fetch_sub(f.len(), Ordering::Relaxed);
                let Ok(bytes) = sealer.seal(&f) else { return };
                if wr.write_all(&bytes).await.is_err() {
                    return;
                }
                if rx.is_empty() && wr.flush().await.is_err() {
                    return;
                }
            }
        });
        let result = self.read_loop(peer, &mut rd, &mut opener).await;
        writer.abort();
        if let Ok(mut p) = self.peers.lock() {
            if p.get(&peer).is_some_and(|(c, _)| *c == conn) {
                p.remove(&peer);
            }
        }
        if matches!(result, Err(ref e) if !matches!(e, ChannelError::Io(_))) {
            self.drops.bad_frame.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn read_loop(
        &self,
        peer: NodeId,
        rd: &mut tokio::net::tcp::OwnedReadHalf,
        opener: &mut crate::noise::Opener,
    ) -> Result<(), ChannelError> {
        let mut budget = (tokio::time::Instant::now(), 0usize);
        loop {
            let frame = opener
                .read_frame(rd, MAX_FRAME, IDLE_TIMEOUT, FRAME_TIMEOUT)
                .await?;
            if !self.is_member(&peer) {
                let now = tokio::time::Instant::now();
                if now.duration_since(budget.0) >= Duration::from_secs(1) {
                    budget = (now, 0);
                }
                budget.1 += frame.len();
                if budget.1 > NON_MEMBER_BYTES_PER_SEC {
                    tokio::time::sleep_until(budget.0 + Duration::from_secs(1)).await;
                }
            }
            if !self.admit(&peer, &frame) {
                continue;
            }
            let msg: Message = postcard::from_bytes(&frame).map_err(|e| {
                tracing::warn!(peer = %peer.short(), error = %e, "undecodable frame");
                ChannelError::Crypto(format!("undecodable frame: {e}"))
            })?;
            drop(frame);
            if self
                .inbox
                .send(Input::Message { from: peer, msg })
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    }

    /// Sends to one peer if connected (dropped otherwise: consensus re-sends).
    pub fn send(&self, to: &NodeId, frame: Frame) {
        if let Ok(p) = self.peers.lock() {
            if let Some((_, tx)) = p.get(to) {
                tx.push(frame);
            }
        }
    }

    /// Ids of the connected peers, sorted (what [`Net::broadcast`] reaches now).
    pub fn peer_ids(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self
            .peers
            .lock()
            .map(|p| p.keys().copied().collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// Sends to every connected peer.
    pub fn broadcast(&self, frame: Frame) {
        if let Ok(p) = self.peers.lock() {
            for (_, tx) in p.values() {
                tx.push(frame.clone());
            }
        }
    }
}

/// A plain disconnect is routine; anything else is a peer breaking the protocol,
/// which gets a log line (protocol.md §7: "a dropped connection and a log line").
fn log_close(addr: &str, e: &ChannelError) {
    if let ChannelError::Io(e) = e {
        tracing::debug!(%addr, error = %e, "peer connection closed");
    } else {
        tracing::warn!(%addr, error = %e, "peer broke the protocol: connection dropped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The non-member filter reads postcard's variant tag: it must match the encoding.
    #[test]
    fn sync_tags_are_the_sync_variants_and_only_them() {
        let tag = |m: &Message| encode_frame(m)[0];
        assert!(SYNC_TAGS.contains(&tag(&Message::SyncRequest { from: 1, to: 2 })));
        assert!(SYNC_TAGS.contains(&tag(&Message::SyncResponse(vec![]))));
        assert!(!SYNC_TAGS.contains(&tag(&Message::Txs(vec![]))));
    }
}
