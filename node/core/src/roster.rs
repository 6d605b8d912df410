//! The node list of one epoch (protocol.md §1, §4).

use crate::crypto::{sha256, Hash, NodeId};
use crate::types::{encode, RosterEntry};
use serde::{Deserialize, Serialize};

/// The ordered roster that governs the heights of one epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    entries: Vec<RosterEntry>,
}

/// `q(n) = floor(2n/3) + 1` (protocol.md §1).
pub fn quorum(n: usize) -> usize {
    2 * n / 3 + 1
}

impl Roster {
    /// A roster from entries, renumbered 1..n in the given order.
    pub fn new(entries: Vec<RosterEntry>) -> Self {
        let mut r = Roster { entries };
        r.renumber();
        r
    }

    fn renumber(&mut self) {
        for (i, e) in self.entries.iter_mut().enumerate() {
            e.number = i as u32 + 1;
        }
    }

    /// The entries in number order.
    pub fn entries(&self) -> &[RosterEntry] {
        &self.entries
    }

    /// n.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True for an empty roster (never the case for a valid chain).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The quorum of this roster.
    pub fn quorum(&self) -> usize {
        quorum(self.len())
    }

    /// Votes that prove at least one honest node is in a round: `f + 1 = n - q + 1`.
    pub fn skip_threshold(&self) -> usize {
        self.len() - self.quorum() + 1
    }

    /// Proposer of `(h, r)`: `roster[(h + r) mod n]` (protocol.md §1).
    pub fn proposer(&self, height: u64, round: u32) -> NodeId {
        let n = self.entries.len().max(1) as u64;
        let i = (height.wrapping_add(round as u64) % n) as usize;
        self.entries.get(i).map(|e| e.id).unwrap_or_default()
    }

    /// Whether `id` is a member.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.entries.iter().any(|e| &e.id == id)
    }

    /// The entry of `id`.
    pub fn get(&self, id: &NodeId) -> Option<&RosterEntry> {
        self.entries.iter().find(|e| &e.id == id)
    }

    /// SHA-256 of the canonical encoding of the entries.
    pub fn hash(&self) -> Hash {
        sha256(&encode(&self.entries))
    }

    /// Appends a new entry numbered n+1 (protocol.md §4.2).
    pub fn add(&mut self, id: NodeId, addr: String) {
        let number = self.entries.len() as u32 + 1;
        self.entries.push(RosterEntry { number, id, addr });
    }

    /// Deletes `id` and renumbers (protocol.md §5). Returns whether it was present.
    pub fn remove(&mut self, id: &NodeId) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| &e.id != id);
        self.renumber();
        before != self.entries.len()
    }
}

/// Checks that `addr` is `host:port` with a non-empty host and a non-zero port.
pub fn valid_addr(addr: &str) -> bool {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return false;
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':'));
    host_ok && port.parse::<u16>().map(|p| p > 0).unwrap_or(false)
}

/// A roster of `n` made-up ids `[i; 32]` for unit tests.
#[cfg(test)]
pub(crate) fn test_roster(n: u8) -> Roster {
    Roster::new(
        (1..=n)
            .map(|i| RosterEntry {
                number: 0,
                id: crate::crypto::Bytes32([i; 32]),
                addr: format!("h{i}:1"),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Bytes32;

    fn roster(n: u8) -> Roster {
        test_roster(n)
    }

    #[test]
    fn quorum_matches_spec_table() {
        assert_eq!(quorum(4), 3);
        assert_eq!(quorum(5), 4);
        assert_eq!(quorum(6), 5);
        assert_eq!(quorum(7), 5);
        assert_eq!(roster(4).skip_threshold(), 2);
    }

    #[test]
    fn proposer_rotates_with_height_and_round() {
        let r = roster(4);
        assert_eq!(r.proposer(0, 0), Bytes32([1; 32]));
        assert_eq!(r.proposer(1, 0), Bytes32([2; 32]));
        assert_eq!(r.proposer(1, 1), Bytes32([3; 32]));
        assert_eq!(r.proposer(3, 2), Bytes32([2; 32]));
    }

    #[test]
    fn add_and_remove_renumber() {
        let mut r = roster(4);
        r.add(Bytes32([9; 32]), "x:2".into());
        assert_eq!(r.entries()[4].number, 5);
        assert!(r.remove(&Bytes32([2; 32])));
        let nums: Vec<u32> = r.entries().iter().map(|e| e.number).collect();
        assert_eq!(nums, vec![1, 2, 3, 4]);
        assert_eq!(r.entries()[1].id, Bytes32([3; 32]));
        assert!(!r.remove(&Bytes32([2; 32])));
    }

    #[test]
    fn addresses() {
        assert!(valid_addr("127.0.0.1:26600"));
        assert!(valid_addr("node-5:80"));
        assert!(!valid_addr("nohost"));
        assert!(!valid_addr(":80"));
        assert!(!valid_addr("h:0"));
        assert!(!valid_addr("h:99999"));
        assert!(!valid_addr("h h:80"));
    }
}
