//! Keys, signatures and a verified-signature cache.
//!
//! Every consensus message is signed with the sender's ed25519 key (protocol.md §2).
//! Verification dominates the CPU cost of consensus, and the same signature is often
//! checked twice (a precommit when it arrives, and again inside the next block's
//! `last_commit`), so verified signatures are remembered in a bounded cache.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};

/// 32 bytes shown as lower-case hex in JSON and raw in the binary encoding.
///
/// Used for node ids (ed25519 public keys, protocol.md §1) and SHA-256 hashes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bytes32(pub [u8; 32]);

/// A node id: the node's ed25519 public key (protocol.md §1).
pub type NodeId = Bytes32;
/// A SHA-256 digest.
pub type Hash = Bytes32;

impl Bytes32 {
    /// Lower-case hex, the spec's textual form of ids and hashes.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        let v = hex::decode(s).map_err(|_| CryptoError::BadHex(s.chars().take(80).collect()))?;
        let arr: [u8; 32] = v
            .try_into()
            .map_err(|_| CryptoError::BadLength("32-byte value", s.len() / 2))?;
        Ok(Bytes32(arr))
    }

    /// First 8 hex characters: enough to tell nodes apart in logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Debug for Bytes32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.short())
    }
}

impl fmt::Display for Bytes32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

impl Serialize for Bytes32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Bytes32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Bytes32::from_hex(&s).map_err(serde::de::Error::custom)
        } else {
            Ok(Bytes32(<[u8; 32]>::deserialize(d)?))
        }
    }
}

/// An ed25519 signature, hex in JSON.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sig(pub [u8; 64]);

impl Sig {
    /// Parses 128 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        let v = hex::decode(s).map_err(|_| CryptoError::BadHex(s.chars().take(80).collect()))?;
        let arr: [u8; 64] = v
            .try_into()
            .map_err(|_| CryptoError::BadLength("signature", s.len() / 2))?;
        Ok(Sig(arr))
    }
}

impl fmt::Debug for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sig:{}", hex::encode(&self.0[..4]))
    }
}

impl Serialize for Sig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(self.0))
        } else {
            // serde has no impl for [u8; 64]: two halves keep the encoding fixed-size.
            let (a, b) = self.0.split_at(32);
            let a: [u8; 32] = a.try_into().unwrap_or([0; 32]);
            let b: [u8; 32] = b.try_into().unwrap_or([0; 32]);
            (a, b).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Sig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Sig::from_hex(&s).map_err(serde::de::Error::custom)
        } else {
            let (a, b) = <([u8; 32], [u8; 32])>::deserialize(d)?;
            let mut out = [0u8; 64];
            out[..32].copy_from_slice(&a);
            out[32..].copy_from_slice(&b);
            Ok(Sig(out))
        }
    }
}

/// Errors from parsing keys, ids and signatures.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Not hexadecimal.
    #[error("not valid hex: {0:?}")]
    BadHex(String),
    /// Hex of the wrong length.
    #[error("wrong length for a {0}: {1} bytes")]
    BadLength(&'static str, usize),
    /// 32 bytes that are not an ed25519 public key.
    #[error("not an ed25519 public key")]
    BadKey,
}

/// A node's or operator's signing key.
#[derive(Clone)]
pub struct Keypair {
    sk: SigningKey,
    id: NodeId,
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({})", self.id.short())
    }
}

impl Keypair {
    /// A key from 32 secret bytes (what `node.key` holds, hex-encoded).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let sk = SigningKey::from_bytes(&secret);
        let id = Bytes32(sk.verifying_key().to_bytes());
        Keypair { sk, id }
    }

    /// A fresh key from the given RNG (seeded in the simulator, OS entropy otherwise).
    pub fn generate<R: rand::RngCore + rand::CryptoRng>(rng: &mut R) -> Self {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        Self::from_secret(secret)
    }

    /// The public key as the node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The secret, for writing key files.
    pub fn secret_hex(&self) -> String {
        hex::encode(self.sk.to_bytes())
    }

    /// Parses a key file's hex contents.
    pub fn from_secret_hex(s: &str) -> Result<Self, CryptoError> {
        let b = Bytes32::from_hex(s.trim())?;
        Ok(Self::from_secret(b.0))
    }

    /// Signs `msg` under a domain tag so a signature for one message kind can never
    /// be replayed as another.
    pub fn sign(&self, domain: &[u8], msg: &[u8]) -> Sig {
        let data = tagged(domain, msg);
        Sig(self.sk.sign(&data).to_bytes())
    }
}

fn tagged(domain: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(domain.len() + 1 + msg.len());
    data.extend_from_slice(domain);
    data.push(0);
    data.extend_from_slice(msg);
    data
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash {
    Bytes32(Sha256::digest(data).into())
}

/// Checks signatures, remembering the ones already verified.
///
/// The cache is keyed by the full (key, message, signature) triple and holds only
/// triples that passed ed25519 verification, so a cached answer can never be reused
/// for different bytes or turn a bad signature good. It is process-wide: verifying
/// the same bytes gives the same answer whoever asks, so the simulated nodes of one
/// process and the checkers that re-verify their certificates share the work.
#[derive(Clone)]
pub struct Verifier {
    seen: Arc<Mutex<HashSet<Vec<u8>>>>,
    keys: Arc<Mutex<HashMap<NodeId, VerifyingKey>>>,
}

impl Default for Verifier {
    fn default() -> Self {
        type Shared = (
            Arc<Mutex<HashSet<Vec<u8>>>>,
            Arc<Mutex<HashMap<NodeId, VerifyingKey>>>,
        );
        static SHARED: std::sync::OnceLock<Shared> = std::sync::OnceLock::new();
        let (seen, keys) = SHARED.get_or_init(Default::default);
        Verifier {
            seen: seen.clone(),
            keys: keys.clone(),
        }
    }
}

/// One signature to check: signer, domain, message, signature.
pub type SigCheck<'a> = (NodeId, &'a [u8], Vec<u8>, Sig);

/// Entries kept before the cache is emptied (bounded memory).
const VERIFY_CACHE_LIMIT: usize = 200_000;

impl Verifier {
    /// A verifier with an empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when `sig` is `signer`'s signature over `msg` in `domain`.
    pub fn verify(&self, signer: &NodeId, domain: &[u8], msg: &[u8], sig: &Sig) -> bool {
        let key = cache_key(signer, domain, msg, sig);
        if self.is_cached(&key) {
            return true;
        }
        let Some(vk) = self.key(signer) else {
            return false;
        };
        let ok = vk
            .verify(&key[96..], &Signature::from_bytes(&sig.0))
            .is_ok();
        if ok {
            self.remember(vec![key]);
        }
        ok
    }

    /// Checks many signatures at once with ed25519 batch verification (about twice
    /// as fast per signature) and remembers them all when the batch holds; when it
    /// does not, nothing is remembered and [`Verifier::verify`] later finds the bad
    /// one. Used to pre-check a sync response's certificates.
    pub fn prime(&self, checks: &[SigCheck<'_>]) {
        let mut keys = Vec::new();
        let mut vks = Vec::new();
        let mut sigs = Vec::new();
        for (signer, domain, msg, sig) in checks {
            let key = cache_key(signer, domain, msg, sig);
            if self.is_cached(&key) {
                continue;
            }
            let Some(vk) = self.key(signer) else {
                return;
            };
            vks.push(vk);
            sigs.push(Signature::from_bytes(&sig.0));
            keys.push(key);
        }
        if keys.is_empty() {
            return;
        }
        let msgs: Vec<&[u8]> = keys.iter().map(|k| &k[96..]).collect();
        if ed25519_dalek::verify_batch(&msgs, &sigs, &vks).is_ok() {
            self.remember(keys);
        }
    }

    fn is_cached(&self, key: &[u8]) -> bool {
        self.seen.lock().map(|s| s.contains(key)).unwrap_or(false)
    }

    fn remember(&self, keys: Vec<Vec<u8>>) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() + keys.len() >= VERIFY_CACHE_LIMIT {
                seen.clear();
            }
            seen.extend(keys);
        }
    }

    /// The decompressed public key (decompression is a square root: cached).
    fn key(&self, signer: &NodeId) -> Option<VerifyingKey> {
        if let Some(vk) = self.keys.lock().ok().and_then(|k| k.get(signer).copied()) {
            return Some(vk);
        }
        let vk = VerifyingKey::from_bytes(&signer.0).ok()?;
        if let Ok(mut k) = self.keys.lock() {
            if k.len() >= VERIFY_CACHE_LIMIT {
                k.clear();
            }
            k.insert(*signer, vk);
        }
        Some(vk)
    }
}

/// The cache key: signer, signature, then the signed bytes (domain, 0, message).
fn cache_key(signer: &NodeId, domain: &[u8], msg: &[u8], sig: &Sig) -> Vec<u8> {
    let mut key = Vec::with_capacity(32 + 64 + domain.len() + 1 + msg.len());
    key.extend_from_slice(&signer.0);
    key.extend_from_slice(&sig.0);
    key.extend_from_slice(domain);
    key.push(0);
    key.extend_from_slice(msg);
    key
}

/// Checks that 32 bytes are a usable ed25519 public key.
pub fn check_public_key(id: &NodeId) -> Result<(), CryptoError> {
    VerifyingKey::from_bytes(&id.0)
        .map(|_| ())
        .map_err(|_| CryptoError::BadKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_domain_separation() {
        let k = Keypair::from_secret([7; 32]);
        let v = Verifier::new();
        let s = k.sign(b"vote", b"hello");
        assert!(v.verify(&k.id(), b"vote", b"hello", &s));
        assert!(v.verify(&k.id(), b"vote", b"hello", &s), "cached answer");
        assert!(!v.verify(&k.id(), b"proposal", b"hello", &s));
        assert!(!v.verify(&k.id(), b"vote", b"hellp", &s));
        let other = Keypair::from_secret([8; 32]);
        assert!(!v.verify(&other.id(), b"vote", b"hello", &s));
    }

    #[test]
    fn batch_priming_remembers_only_a_good_batch() {
        let v = Verifier::new();
        let ks: Vec<Keypair> = (30..34).map(|i| Keypair::from_secret([i; 32])).collect();
        let good: Vec<SigCheck> = ks
            .iter()
            .map(|k| {
                (
                    k.id(),
                    &b"vote"[..],
                    b"batch-a".to_vec(),
                    k.sign(b"vote", b"batch-a"),
                )
            })
            .collect();
        v.prime(&good);
        for (id, d, m, s) in &good {
            assert!(v.is_cached(&cache_key(id, d, m, s)));
        }
        // One forged signature: nothing in the batch is remembered, and the forged one
        // still fails on its own.
        let mut bad: Vec<SigCheck> = ks
            .iter()
            .map(|k| {
                (
                    k.id(),
                    &b"vote"[..],
                    b"batch-b".to_vec(),
                    k.sign(b"vote", b"batch-b"),
                )
            })
            .collect();
        bad[2].3 = ks[0].sign(b"vote", b"batch-b");
        v.prime(&bad);
        assert!(!v.is_cached(&cache_key(&bad[0].0, bad[0].1, &bad[0].2, &bad[0].3)));
        assert!(!v.verify(&bad[2].0, b"vote", b"batch-b", &bad[2].3));
        assert!(v.verify(&bad[0].0, b"vote", b"batch-b", &bad[0].3));
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let k = Keypair::from_secret([1; 32]);
        let id = k.id();
        assert_eq!(Bytes32::from_hex(&id.to_hex()).unwrap(), id);
        assert!(Bytes32::from_hex("zz").is_err());
        assert!(Bytes32::from_hex("abcd").is_err());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", id.to_hex()));
        let bin = postcard::to_allocvec(&id).unwrap();
        assert_eq!(postcard::from_bytes::<Bytes32>(&bin).unwrap(), id);
        let s = k.sign(b"d", b"m");
        let bin = postcard::to_allocvec(&s).unwrap();
        assert_eq!(postcard::from_bytes::<Sig>(&bin).unwrap(), s);
    }
}
