//! The roster (node list) of protocol.md §1 and its two changes: an AddNode appends
//! the new entry as number `n+1` (§4.2); an eviction deletes the entry and
//! renumbers the rest 1..n in order (§5).

use super::proposer::proposer_index;
use super::quorum::quorum;
use super::wire::{encode, sha256, Hash, NodeId, RosterEntry};

/// The ordered entries of one epoch, numbered 1..n in order (protocol.md §1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    entries: Vec<RosterEntry>,
}

impl Roster {
    /// The genesis roster: the entries in the given order, numbered 1..n
    /// (protocol.md §1 "`number` runs 1..n in order").
    pub fn new(entries: Vec<RosterEntry>) -> Roster {
        let mut r = Roster { entries };
        r.renumber();
        r
    }

    fn renumber(&mut self) {
        for (i, e) in self.entries.iter_mut().enumerate() {
            e.number = u32::try_from(i + 1).unwrap_or(u32::MAX);
        }
    }

    /// The entries in number order.
    pub fn entries(&self) -> &[RosterEntry] {
        &self.entries
    }

    /// `n`.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True for an empty roster (never valid, but a corrupt dump can lead here).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `id` is a member.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.entries.iter().any(|e| &e.id == id)
    }

    /// `q(n)` of this roster (protocol.md §1).
    pub fn quorum(&self) -> usize {
        quorum(self.len())
    }

    /// The proposer of `(height, round)`: `roster[(h + r) mod n]` (protocol.md §1);
    /// `None` for an empty roster.
    pub fn proposer(&self, height: u64, round: u32) -> Option<NodeId> {
        proposer_index(height, round, self.len()).map(|i| self.entries[i].id)
    }

    /// The block's `roster_hash`: SHA-256 of the canonical encoding of the entries
    /// (the wire contract of protocol.md §2).
    pub fn hash(&self) -> Hash {
        sha256(&encode(&self.entries))
    }

    /// protocol.md §4.2: the new entry is appended as number `n+1`.
    pub fn add(&mut self, id: NodeId, addr: String) {
        let number = u32::try_from(self.len() + 1).unwrap_or(u32::MAX);
        self.entries.push(RosterEntry { number, id, addr });
    }

    /// protocol.md §5: delete `id` and renumber. Returns whether it was a member.
    pub fn remove(&mut self, id: &NodeId) -> bool {
        let before = self.len();
        self.entries.retain(|e| &e.id != id);
        self.renumber();
        before != self.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::wire::Bytes32;

    fn id(i: u8) -> NodeId {
        Bytes32([i; 32])
    }

    fn roster(n: u8) -> Roster {
        Roster::new(
            (1..=n)
                .map(|i| RosterEntry {
                    number: 99,
                    id: id(i),
                    addr: format!("n{i}:1"),
                })
                .collect(),
        )
    }

    fn numbers(r: &Roster) -> Vec<(u32, u8)> {
        r.entries().iter().map(|e| (e.number, e.id.0[0])).collect()
    }

    #[test]
    fn add_appends_n_plus_one_and_remove_renumbers() {
        let mut r = roster(4);
        assert_eq!(numbers(&r), [(1, 1), (2, 2), (3, 3), (4, 4)]);
        r.add(id(9), "n9:1".into());
        assert_eq!(numbers(&r), [(1, 1), (2, 2), (3, 3), (4, 4), (5, 9)]);
        assert!(r.remove(&id(2)));
        assert_eq!(numbers(&r), [(1, 1), (2, 3), (3, 4), (4, 9)]);
        assert!(!r.remove(&id(2)));
        assert_eq!(r.quorum(), 3);
    }

    #[test]
    fn proposer_follows_the_renumbered_order() {
        let mut r = roster(4);
        assert_eq!(r.proposer(1, 0), Some(id(2)));
        assert_eq!(r.proposer(1, 1), Some(id(3)));
        r.remove(&id(1));
        // [2, 3, 4]: (1 + 0) mod 3 = 1 → node 3.
        assert_eq!(r.proposer(1, 0), Some(id(3)));
        assert_eq!(Roster::new(Vec::new()).proposer(1, 0), None);
    }

    #[test]
    fn hash_covers_order_numbers_and_addresses() {
        let a = roster(4);
        let mut b = a.clone();
        b.entries[3].addr = "elsewhere:1".into();
        assert_ne!(a.hash(), b.hash());
        let mut c = roster(4);
        c.remove(&id(4));
        c.add(id(4), "n4:1".into());
        assert_eq!(a.hash(), c.hash(), "same entries, same numbers, same hash");
        let mut d = roster(4);
        d.remove(&id(3));
        d.add(id(3), "n3:1".into());
        assert_ne!(a.hash(), d.hash(), "order is part of the roster");
    }
}
