//! Peer transport: length-prefixed postcard frames over TCP, a hello that names each
//! side, dialers that reconnect with backoff.
//!
//! Messages are signed individually, so the hello needs no authentication: a peer
//! that lies about its id can only misroute replies, never forge a vote. Garbage on
//! the peer port drops that connection with a log line; the node carries on.

use crate::consensus::Input;
use crate::crypto::NodeId;
use crate::types::Message;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Largest frame accepted (a sync batch is capped well below it).
pub const MAX_FRAME: usize = 64 << 20;
/// Frames queued per peer before new ones are dropped (consensus re-sends).
const QUEUE: usize = 8192;

#[derive(Serialize, Deserialize)]
struct Hello {
    chain_id: String,
    id: NodeId,
}

type Frame = Arc<Vec<u8>>;

/// Live connections by peer id: a connection number (so a closing connection only
/// removes itself) and the writer's queue.
type PeerTable = HashMap<NodeId, (u64, mpsc::Sender<Frame>)>;

/// Encodes a message as one frame.
pub fn encode_frame(msg: &Message) -> Frame {
    let payload = postcard::to_allocvec(msg).unwrap_or_default();
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&payload);
    Arc::new(out)
}

/// The set of live connections, by peer id.
#[derive(Clone)]
pub struct Net {
    me: NodeId,
    chain_id: String,
    peers: Arc<Mutex<PeerTable>>,
    dialing: Arc<Mutex<HashSet<String>>>,
    next_conn: Arc<std::sync::atomic::AtomicU64>,
    inbox: mpsc::Sender<Input>,
}

impl Net {
    /// A transport that delivers received messages to `inbox`.
    pub fn new(me: NodeId, chain_id: String, inbox: mpsc::Sender<Input>) -> Self {
        Net {
            me,
            chain_id,
            peers: Default::default(),
            dialing: Default::default(),
            next_conn: Default::default(),
            inbox,
        }
    }

    /// Accepts peer connections on `listener` forever.
    pub fn serve(&self, listener: TcpListener) {
        let net = self.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((sock, addr)) => {
                        let net = net.clone();
                        tokio::spawn(async move {
                            if let Err(e) = net.connection(sock).await {
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
                        if let Err(e) = net.connection(sock).await {
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

    async fn connection(&self, sock: TcpStream) -> anyhow::Result<()> {
        sock.set_nodelay(true)?;
        let (mut rd, wr) = sock.into_split();
        let mut wr = BufWriter::new(wr);
        let hello = postcard::to_allocvec(&Hello {
            chain_id: self.chain_id.clone(),
            id: self.me,
        })?;
        wr.write_all(&(hello.len() as u32).to_le_bytes()).await?;
        wr.write_all(&hello).await?;
        wr.flush().await?;
        let first = read_frame(&mut rd).await?;
        let peer: Hello = postcard::from_bytes(&first)
            .map_err(|e| anyhow::anyhow!("bad hello from peer: {e}"))?;
        if peer.chain_id != self.chain_id {
            anyhow::bail!("peer is on chain {:?}", peer.chain_id);
        }
        if peer.id == self.me {
            anyhow::bail!("connected to myself");
        }
        let (tx, mut rx) = mpsc::channel::<Frame>(QUEUE);
        let conn = self
            .next_conn
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut p) = self.peers.lock() {
            p.insert(peer.id, (conn, tx));
        }
        let writer = tokio::spawn(async move {
            while let Some(f) = rx.recv().await {
                if wr.write_all(&f).await.is_err() {
                    return;
                }
                while let Ok(f) = rx.try_recv() {
                    if wr.write_all(&f).await.is_err() {
                        return;
                    }
                }
                if wr.flush().await.is_err() {
                    return;
                }
            }
        });
        let result = async {
            loop {
                let frame = read_frame(&mut rd).await?;
                let msg: Message = match postcard::from_bytes(&frame) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(peer = %peer.id.short(), error = %e, "undecodable frame: dropping connection");
                        anyhow::bail!("undecodable frame");
                    }
                };
                if self
                    .inbox
                    .send(Input::Message { from: peer.id, msg })
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
        }
        .await;
        writer.abort();
        if let Ok(mut p) = self.peers.lock() {
            if p.get(&peer.id).is_some_and(|(c, _)| *c == conn) {
                p.remove(&peer.id);
            }
        }
        result
    }

    /// Sends to one peer if connected (dropped otherwise: consensus re-sends).
    pub fn send(&self, to: &NodeId, frame: Frame) {
        if let Ok(p) = self.peers.lock() {
            if let Some((_, tx)) = p.get(to) {
                let _ = tx.try_send(frame);
            }
        }
    }

    /// Sends to every connected peer.
    pub fn broadcast(&self, frame: Frame) {
        if let Ok(p) = self.peers.lock() {
            for (_, tx) in p.values() {
                let _ = tx.try_send(frame.clone());
            }
        }
    }
}

/// A plain disconnect is routine; anything else is a peer breaking the protocol,
/// which gets a log line (protocol.md §7: "a dropped connection and a log line").
fn log_close(addr: &str, e: &anyhow::Error) {
    if e.downcast_ref::<std::io::Error>().is_some() {
        tracing::debug!(%addr, error = %e, "peer connection closed");
    } else {
        tracing::warn!(%addr, error = %e, "peer broke the protocol: connection dropped");
    }
}

async fn read_frame<R: AsyncReadExt + Unpin>(rd: &mut R) -> anyhow::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    rd.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        tracing::warn!(len, "oversized frame from peer: dropping connection");
        anyhow::bail!("frame of {len} bytes is over the limit");
    }
    let mut buf = vec![0u8; len];
    rd.read_exact(&mut buf).await?;
    Ok(buf)
}
