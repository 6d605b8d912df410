//! AddNode validity, re-read from protocol.md §3 and §4: an AddNode `{id, addr,
//! nonce}` applies only if one of the genesis operator keys signed it (over the
//! chain id and the request, in the AddNode signature domain), the id is an ed25519
//! public key not already in the roster, the address is `host:port`, and that
//! operator has not used the nonce before.
//!
//! Only the bytes (`AddNode::sign_bytes`, [`DOMAIN_ADD_NODE`]) and the signature
//! primitive ([`Verifier`]) come from the node: they are the wire contract.

use std::collections::BTreeSet;

use super::roster::Roster;
use super::wire::{check_public_key, AddNode, Genesis, NodeId, Sig, Verifier, DOMAIN_ADD_NODE};

/// Why an AddNode does not apply (protocol.md §3: "rejected, with a reason").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No signature at all.
    #[error("AddNode is not signed")]
    Unsigned,
    /// Signed, but by no operator key of the genesis (or over other bytes).
    #[error("AddNode is not signed by an operator key of the genesis")]
    NotOperator,
    /// The id is not an ed25519 public key, so it names no node (protocol.md §1).
    #[error("AddNode id {0} is not an ed25519 public key")]
    BadId(String),
    /// The node is already a member.
    #[error("node {0} is already in the roster")]
    AlreadyMember(String),
    /// The address is not `host:port`.
    #[error("malformed address {0:?}")]
    BadAddr(String),
    /// The operator used this nonce before: a replayed AddNode never applies.
    #[error("operator {operator} already used nonce {nonce}")]
    NonceReused {
        /// The signing operator.
        operator: String,
        /// The nonce.
        nonce: u64,
    },
}

/// The (operator, nonce) pairs of the AddNodes the chain applied so far
/// (protocol.md §3: "the chain records used nonces").
pub type UsedNonces = BTreeSet<(NodeId, u64)>;

/// Decides whether `req` with `sig` applies on top of `roster`; on success returns
/// the operator whose key signed it (the nonce is then recorded under it).
pub fn check(
    genesis: &Genesis,
    roster: &Roster,
    used: &UsedNonces,
    req: &AddNode,
    sig: Option<&Sig>,
    verifier: &Verifier,
) -> Result<NodeId, Rejection> {
    let sig = sig.ok_or(Rejection::Unsigned)?;
    let bytes = req.sign_bytes(&genesis.chain_id);
    let operator = genesis
        .operators
        .iter()
        .find(|op| verifier.verify(op, DOMAIN_ADD_NODE, &bytes, sig))
        .copied()
        .ok_or(Rejection::NotOperator)?;
    if check_public_key(&req.id).is_err() {
        return Err(Rejection::BadId(req.id.to_hex()));
    }
    if roster.contains(&req.id) {
        return Err(Rejection::AlreadyMember(req.id.to_hex()));
    }
    if !is_host_port(&req.addr) {
        return Err(Rejection::BadAddr(req.addr.clone()));
    }
    if used.contains(&(operator, req.nonce)) {
        return Err(Rejection::NonceReused {
            operator: operator.to_hex(),
            nonce: req.nonce,
        });
    }
    Ok(operator)
}

/// protocol.md §1: `addr` is `host:port` of the peer port. The host is a DNS name
/// or IPv4 literal (letters, digits, `.`, `-`, `_`, at most 253 characters) or a
/// bracketed IPv6 literal; the port is 1..=65535.
pub fn is_host_port(addr: &str) -> bool {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return false;
    };
    let port_ok =
        port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p > 0);
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => {
            !v6.is_empty()
                && v6
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        }
        None => {
            !host.is_empty()
                && host.len() <= 253
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        }
    };
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::wire::{Keypair, Params, RosterEntry};

    fn genesis() -> Genesis {
        Genesis {
            chain_id: "c1".into(),
            roster: vec![RosterEntry {
                number: 1,
                id: Keypair::from_secret([1; 32]).id(),
                addr: "n1:1".into(),
            }],
            operators: vec![Keypair::from_secret([200; 32]).id()],
            params: Params::default(),
        }
    }

    fn req(i: u8, nonce: u64) -> AddNode {
        AddNode {
            id: Keypair::from_secret([i; 32]).id(),
            addr: format!("n{i}:26600"),
            nonce,
        }
    }

    fn signed(key: u8, chain: &str, r: &AddNode) -> Sig {
        Keypair::from_secret([key; 32]).sign(DOMAIN_ADD_NODE, &r.sign_bytes(chain))
    }

    #[test]
    fn each_rule_of_the_spec_rejects() {
        let g = genesis();
        let roster = Roster::new(g.roster.clone());
        let v = Verifier::new();
        let none = UsedNonces::new();
        let r = req(5, 1);
        let op = Keypair::from_secret([200; 32]).id();
        assert_eq!(
            check(&g, &roster, &none, &r, Some(&signed(200, "c1", &r)), &v),
            Ok(op)
        );
        assert_eq!(
            check(&g, &roster, &none, &r, None, &v),
            Err(Rejection::Unsigned)
        );
        // Another key, or the operator's key over another chain id or domain.
        for sig in [
            signed(201, "c1", &r),
            signed(200, "c2", &r),
            Keypair::from_secret([200; 32]).sign(b"rollcall/vote/v1", &r.sign_bytes("c1")),
        ] {
            assert_eq!(
                check(&g, &roster, &none, &r, Some(&sig), &v),
                Err(Rejection::NotOperator)
            );
        }
        // A signature over other fields (the nonce is covered).
        let other = req(5, 2);
        assert_eq!(
            check(&g, &roster, &none, &r, Some(&signed(200, "c1", &other)), &v),
            Err(Rejection::NotOperator)
        );
        let member = req(1, 1);
        assert!(matches!(
            check(
                &g,
                &roster,
                &none,
                &member,
                Some(&signed(200, "c1", &member)),
                &v
            ),
            Err(Rejection::AlreadyMember(_))
        ));
        let mut bad = req(5, 1);
        bad.addr = "n5".into();
        assert!(matches!(
            check(&g, &roster, &none, &bad, Some(&signed(200, "c1", &bad)), &v),
            Err(Rejection::BadAddr(_))
        ));
        // An id that is no ed25519 public key names no node.
        let not_a_key = (0..=255u8)
            .map(|i| crate::oracle::wire::Bytes32([i; 32]))
            .find(|id| check_public_key(id).is_err())
            .expect("some [i; 32] is not a curve point");
        let mut bad_id = req(5, 1);
        bad_id.id = not_a_key;
        assert!(matches!(
            check(
                &g,
                &roster,
                &none,
                &bad_id,
                Some(&signed(200, "c1", &bad_id)),
                &v
            ),
            Err(Rejection::BadId(_))
        ));
        let used: UsedNonces = [(op, 1)].into_iter().collect();
        assert!(matches!(
            check(&g, &roster, &used, &r, Some(&signed(200, "c1", &r)), &v),
            Err(Rejection::NonceReused { nonce: 1, .. })
        ));
    }

    #[test]
    fn addresses() {
        for ok in ["n1:26600", "10.0.0.1:1", "[::1]:80", "a-b_c.d:65535"] {
            assert!(is_host_port(ok), "{ok}");
        }
        for bad in [
            "n1", ":80", "n1:", "n1:0", "n1:65536", "n1:+80", "a b:1", "[]:1", "n1:x",
        ] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }
}
