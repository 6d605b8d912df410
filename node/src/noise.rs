//! The peer channel's security: a Noise XX handshake (the `snow` crate, a maintained
//! implementation of the Noise Protocol Framework, the handshake libp2p and
//! WireGuard build on) with the node's ed25519 identity bound into it, then
//! encrypted, length-bounded frames (issue 14).
//!
//! Binding (as libp2p-noise does, `noise-libp2p-static-key`): each side sends, inside
//! the encrypted handshake payload, its node id and an ed25519 signature over the chain
//! id and its Noise static key. Noise proves the peer holds that static key's private
//! half; the signature proves the id's owner vouches for the key. So a peer proves the
//! id it claims, and a payload copied from another connection is useless without the
//! other node's static private key, which never leaves its process.

use crate::crypto::{Keypair, NodeId, Sig, Verifier};
use serde::{Deserialize, Serialize};
use snow::{HandshakeState, StatelessTransportState};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The Noise protocol name: XX (both static keys sent, encrypted), X25519,
/// ChaCha20-Poly1305, SHA-256.
pub const PATTERN: &str = "Noise_XX_25519_ChaChaPoly_SHA256";
/// Signature domain of the binding between a node id and its Noise static key.
pub const DOMAIN_PEER: &[u8] = b"rollcall/peer-static/v1";
/// Largest Noise message (Noise spec §3).
const NOISE_MAX: usize = 65535;
/// AEAD tag bytes.
const TAG: usize = 16;
/// Plaintext per Noise transport message.
const CHUNK: usize = NOISE_MAX - TAG;

/// Why a frame could not be read; the connection is dropped and the drop counted.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The socket failed or closed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Nothing arrived in time, or a frame stayed half-sent too long.
    #[error("peer too slow: {0}")]
    Timeout(&'static str),
    /// A frame announced more bytes than the limit (refused before allocating).
    #[error("frame of {0} bytes is over the limit")]
    Oversized(usize),
    /// Decryption, handshake or identity check failed.
    #[error("noise: {0}")]
    Crypto(String),
}

impl From<snow::Error> for ChannelError {
    fn from(e: snow::Error) -> Self {
        ChannelError::Crypto(e.to_string())
    }
}

#[derive(Serialize, Deserialize)]
struct Identity {
    id: NodeId,
    sig: Sig,
}

/// This node's side of every handshake: its id key and a Noise static key made at
/// start (never stored: a restart simply signs a new one).
pub struct Local {
    chain_id: String,
    static_private: Vec<u8>,
    payload: Vec<u8>,
}

fn binding(chain_id: &str, static_public: &[u8]) -> Vec<u8> {
    crate::types::encode(&(chain_id, static_public))
}

fn builder(chain_id: &str) -> Result<snow::Builder<'_>, ChannelError> {
    let params = PATTERN
        .parse()
        .map_err(|e: snow::Error| ChannelError::Crypto(e.to_string()))?;
    // The chain id is the prologue: peers of another network fail the handshake.
    Ok(snow::Builder::new(params).prologue(chain_id.as_bytes())?)
}

impl Local {
    /// A fresh Noise static key signed by `key` for `chain_id`.
    pub fn new(key: &Keypair, chain_id: &str) -> Result<Self, ChannelError> {
        let kp = builder(chain_id)?.generate_keypair()?;
        let sig = key.sign(DOMAIN_PEER, &binding(chain_id, &kp.public));
        Ok(Local {
            chain_id: chain_id.to_string(),
            static_private: kp.private,
            payload: crate::types::encode(&Identity { id: key.id(), sig }),
        })
    }

    /// A handshake side whose payload claims `claimed` but is signed by `key`: what an
    /// impersonator can send. For the hostile tests and the flood bench, which must
    /// see such a peer refused.
    pub fn impersonating(
        key: &Keypair,
        claimed: NodeId,
        chain_id: &str,
    ) -> Result<Self, ChannelError> {
        let mut l = Local::new(key, chain_id)?;
        let real: Identity =
            postcard::from_bytes(&l.payload).map_err(|e| ChannelError::Crypto(e.to_string()))?;
        l.payload = crate::types::encode(&Identity {
            id: claimed,
            sig: real.sig,
        });
        Ok(l)
    }

    /// Runs the XX handshake on `sock` within `limit`; returns the proven peer id and
    /// the two directions of the encrypted channel.
    pub async fn handshake<S>(
        &self,
        sock: &mut S,
        initiator: bool,
        limit: Duration,
    ) -> Result<(NodeId, Sealer, Opener), ChannelError>
    where
        S: AsyncReadExt + AsyncWrite + Unpin,
    {
        tokio::time::timeout(limit, self.handshake_inner(sock, initiator))
            .await
            .map_err(|_| ChannelError::Timeout("handshake"))?
    }

    async fn handshake_inner<S>(
        &self,
        sock: &mut S,
        initiator: bool,
    ) -> Result<(NodeId, Sealer, Opener), ChannelError>
    where
        S: AsyncReadExt + AsyncWrite + Unpin,
    {
        let b = builder(&self.chain_id)?.local_private_key(&self.static_private)?;
        let mut hs = if initiator {
            b.build_initiator()?
        } else {
            b.build_responder()?
        };
        let mut buf = vec![0u8; NOISE_MAX];
        let peer_payload = if initiator {
            send_hs(sock, &mut hs, &[]).await?; // -> e
            let p = recv_hs(sock, &mut hs, &mut buf).await?; // <- e, ee, s, es
            send_hs(sock, &mut hs, &self.payload).await?; // -> s, se
            p
        } else {
            recv_hs(sock, &mut hs, &mut buf).await?;
            send_hs(sock, &mut hs, &self.payload).await?;
            recv_hs(sock, &mut hs, &mut buf).await?
        };
        let peer = self.check_identity(&hs, &peer_payload)?;
        let st = std::sync::Arc::new(hs.into_stateless_transport_mode()?);
        Ok((
            peer,
            Sealer {
                st: st.clone(),
                nonce: 0,
            },
            Opener {
                st,
                nonce: 0,
                buf,
                plain: vec![0u8; NOISE_MAX],
            },
        ))
    }

    fn check_identity(&self, hs: &HandshakeState, payload: &[u8]) -> Result<NodeId, ChannelError> {
        let ident: Identity = postcard::from_bytes(payload)
            .map_err(|e| ChannelError::Crypto(format!("bad identity payload: {e}")))?;
        let remote = hs
            .get_remote_static()
            .ok_or_else(|| ChannelError::Crypto("no remote static key".into()))?;
        let bytes = binding(&self.chain_id, remote);
        if !Verifier::new().verify(&ident.id, DOMAIN_PEER, &bytes, &ident.sig) {
            return Err(ChannelError::Crypto(format!(
                "peer claiming {} did not prove it",
                ident.id.short()
            )));
        }
        Ok(ident.id)
    }
}

async fn send_hs<S: AsyncWrite + Unpin>(
    sock: &mut S,
    hs: &mut HandshakeState,
    payload: &[u8],
) -> Result<(), ChannelError> {
    let mut msg = vec![0u8; NOISE_MAX];
    let n = hs.write_message(payload, &mut msg)?;
    write_msg(sock, &msg[..n]).await?;
    sock.flush().await?;
    Ok(())
}

async fn recv_hs<S: AsyncReadExt + Unpin>(
    sock: &mut S,
    hs: &mut HandshakeState,
    buf: &mut [u8],
) -> Result<Vec<u8>, ChannelError> {
    let n = read_msg(sock, buf).await?;
    let mut out = vec![0u8; NOISE_MAX];
    let m = hs.read_message(&buf[..n], &mut out)?;
    out.truncate(m);
    Ok(out)
}

async fn write_msg<S: AsyncWrite + Unpin>(sock: &mut S, msg: &[u8]) -> std::io::Result<()> {
    sock.write_all(&(msg.len() as u16).to_be_bytes()).await?;
    sock.write_all(msg).await
}

/// Reads one length-prefixed Noise message into `buf` (at most 64 KiB: the memory a
/// connection pins before anything is decoded).
async fn read_msg<S: AsyncReadExt + Unpin>(sock: &mut S, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut len = [0u8; 2];
    sock.read_exact(&mut len).await?;
    let n = u16::from_be_bytes(len) as usize;
    sock.read_exact(&mut buf[..n]).await?;
    Ok(n)
}

/// The sending half: encrypts a frame as Noise messages (4-byte length, then the
/// payload, cut into 64 KiB pieces).
pub struct Sealer {
    st: std::sync::Arc<StatelessTransportState>,
    nonce: u64,
}

impl Sealer {
    /// The wire bytes of one frame.
    pub fn seal(&mut self, payload: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let mut plain = Vec::with_capacity(payload.len() + 4);
        plain.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        plain.extend_from_slice(payload);
        let mut out = Vec::with_capacity(plain.len() + (plain.len() / CHUNK + 1) * (TAG + 2));
        let mut msg = vec![0u8; NOISE_MAX];
        for chunk in plain.chunks(CHUNK) {
            let n = self.st.write_message(self.nonce, chunk, &mut msg)?;
            self.nonce += 1;
            out.extend_from_slice(&(n as u16).to_be_bytes());
            out.extend_from_slice(&msg[..n]);
        }
        Ok(out)
    }
}

/// The receiving half: decrypts frames, refusing one over the limit before
/// allocating it, and timing out idle peers and half-sent frames.
pub struct Opener {
    st: std::sync::Arc<StatelessTransportState>,
    nonce: u64,
    buf: Vec<u8>,
    plain: Vec<u8>,
}

impl Opener {
    async fn next<S: AsyncReadExt + Unpin>(&mut self, sock: &mut S) -> Result<usize, ChannelError> {
        let n = read_msg(sock, &mut self.buf).await?;
        let m = self
            .st
            .read_message(self.nonce, &self.buf[..n], &mut self.plain)?;
        self.nonce += 1;
        Ok(m)
    }

    /// The next frame's payload. `idle` bounds the wait for its first piece, `whole`
    /// the time from its first piece to its last (slow senders).
    pub async fn read_frame<S: AsyncReadExt + Unpin>(
        &mut self,
        sock: &mut S,
        max: usize,
        idle: Duration,
        whole: Duration,
    ) -> Result<Vec<u8>, ChannelError> {
        let m = tokio::time::timeout(idle, self.next(sock))
            .await
            .map_err(|_| ChannelError::Timeout("idle"))??;
        if m < 4 {
            return Err(ChannelError::Crypto("frame without a length".into()));
        }
        let len = u32::from_le_bytes([self.plain[0], self.plain[1], self.plain[2], self.plain[3]])
            as usize;
        if len > max {
            return Err(ChannelError::Oversized(len));
        }
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&self.plain[4..m]);
        let rest = async {
            while out.len() < len {
                let m = self.next(sock).await?;
                out.extend_from_slice(&self.plain[..m]);
            }
            Ok::<_, ChannelError>(())
        };
        tokio::time::timeout(whole, rest)
            .await
            .map_err(|_| ChannelError::Timeout("half-sent frame"))??;
        if out.len() != len {
            return Err(ChannelError::Crypto("frame longer than announced".into()));
        }
        Ok(out)
    }
}
