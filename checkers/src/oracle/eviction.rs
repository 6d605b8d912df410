//! The eviction rule of protocol.md §5 (seed 003), re-read from the spec.
//!
//! The proposal map counts, per roster entry, the proposers of the last
//! `eviction_total` committed blocks since the last membership change; `total` is
//! the number of blocks in that window. The rule for height `h` is evaluated on the
//! chain up to `h-1`: with `total >= eviction_total` and `n - 1 >= min_roster`, the
//! candidates are the entries with `count < ratio × total / n`, compared exactly as
//! `count × n × den < total × num`; the abnormal node is the candidate with the
//! smallest count, ties to the lowest roster number.

use std::collections::{BTreeMap, VecDeque};

use super::roster::Roster;
use super::wire::{NodeId, Params};

/// The sliding proposal window of protocol.md §5, with each block's height so that
/// the checkers can say which heights it covered.
#[derive(Debug, Clone, Default)]
pub struct ProposalWindow {
    blocks: VecDeque<(u64, NodeId)>,
    counts: BTreeMap<NodeId, u64>,
}

impl ProposalWindow {
    /// Records the proposer of the committed block `height`, forgetting the oldest
    /// blocks beyond `cap` (= `eviction_total`).
    pub fn push(&mut self, height: u64, proposer: NodeId, cap: u64) {
        self.blocks.push_back((height, proposer));
        *self.counts.entry(proposer).or_insert(0) += 1;
        while self.blocks.len() as u64 > cap {
            if let Some((_, old)) = self.blocks.pop_front() {
                if let Some(c) = self.counts.get_mut(&old) {
                    *c = c.saturating_sub(1);
                }
            }
        }
    }

    /// `total`: blocks in the window.
    pub fn total(&self) -> u64 {
        self.blocks.len() as u64
    }

    /// First height in the window (0 when it is empty).
    pub fn start(&self) -> u64 {
        self.blocks.front().map(|b| b.0).unwrap_or(0)
    }

    /// Proposals of `id` in the window.
    pub fn count(&self, id: &NodeId) -> u64 {
        self.counts.get(id).copied().unwrap_or(0)
    }

    /// The counts, per proposer.
    pub fn counts(&self) -> &BTreeMap<NodeId, u64> {
        &self.counts
    }

    /// The rule's answer on this window (protocol.md §5).
    pub fn abnormal(&self, roster: &Roster, params: &Params) -> Option<NodeId> {
        eviction_rule(&self.counts, self.total(), roster, params)
    }
}

/// The rule of protocol.md §5 on explicit counts: the abnormal node, if any.
pub fn eviction_rule(
    counts: &BTreeMap<NodeId, u64>,
    total: u64,
    roster: &Roster,
    params: &Params,
) -> Option<NodeId> {
    let n = roster.len() as u64;
    if total < params.eviction_total || n < 1 || n - 1 < u64::from(params.min_roster) {
        return None;
    }
    let cut = u128::from(total) * u128::from(params.eviction_ratio_num);
    let mut best: Option<(u64, u32, NodeId)> = None;
    for e in roster.entries() {
        let count = counts.get(&e.id).copied().unwrap_or(0);
        let scaled = u128::from(count) * u128::from(n) * u128::from(params.eviction_ratio_den);
        if scaled >= cut {
            continue;
        }
        let better = match best {
            None => true,
            Some((c, num, _)) => count < c || (count == c && e.number < num),
        };
        if better {
            best = Some((count, e.number, e.id));
        }
    }
    best.map(|(_, _, id)| id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::wire::{Bytes32, RosterEntry};

    fn id(i: usize) -> NodeId {
        Bytes32([i as u8; 32])
    }

    fn roster(n: usize) -> Roster {
        Roster::new(
            (1..=n)
                .map(|i| RosterEntry {
                    number: 0,
                    id: id(i),
                    addr: format!("n{i}:1"),
                })
                .collect(),
        )
    }

    /// Fills a window with `counts` (node i+1 proposes counts[i] blocks),
    /// interleaved, under the default parameters.
    fn window(counts: &[u64]) -> ProposalWindow {
        let cap = Params::default().eviction_total;
        let mut w = ProposalWindow::default();
        let mut left = counts.to_vec();
        let mut h = 0;
        while left.iter().any(|c| *c > 0) {
            for (i, c) in left.iter_mut().enumerate().filter(|(_, c)| **c > 0) {
                *c -= 1;
                h += 1;
                w.push(h, id(i + 1), cap);
            }
        }
        w
    }

    fn evaluate(counts: &[u64]) -> Option<usize> {
        let w = window(counts);
        let got = w.abnormal(&roster(counts.len()), &Params::default());
        got.map(|x| usize::from(x.0[0]))
    }

    #[test]
    fn reproduces_the_seed_table() {
        // protocol.md §5, the seed's own figures: (counts, evicted).
        assert_eq!(evaluate(&[340, 320, 320, 20]), Some(4));
        assert_eq!(
            evaluate(&[476, 480, 24, 20]),
            Some(4),
            "3 and 4 are candidates"
        );
        assert_eq!(evaluate(&[200, 200, 200, 15, 200, 185]), Some(4));
        assert_eq!(evaluate(&[250, 250, 250, 250]), None);
    }

    #[test]
    fn cut_off_is_strict_and_exact() {
        // n=4, total 1000: cut-off 25; 25 × 4 × 10 == 1000 is not below it.
        assert_eq!(evaluate(&[325, 325, 325, 25]), None);
        assert_eq!(evaluate(&[326, 325, 325, 24]), Some(4));
        // n=6, cut-off 16.7: 16 is below, 17 is not.
        assert_eq!(evaluate(&[200, 200, 200, 16, 200, 184]), Some(4));
        assert_eq!(evaluate(&[200, 200, 200, 17, 200, 183]), None);
    }

    #[test]
    fn total_min_roster_and_ties() {
        // One block short of eviction_total: nobody.
        assert_eq!(evaluate(&[340, 320, 319, 20]), None);
        // Ties go to the lowest number.
        assert_eq!(evaluate(&[480, 10, 500, 10]), Some(2));
        // min_roster: n - 1 must stay >= min_roster.
        let strict = Params {
            min_roster: 4,
            ..Params::default()
        };
        let w = window(&[340, 320, 320, 20]);
        assert_eq!(w.abnormal(&roster(4), &strict), None);
        assert_eq!(evaluate(&[500, 495, 5]), None, "3 - 1 < 3");
        // An entry that proposed nothing in the window has count 0.
        assert_eq!(evaluate(&[500, 500, 0, 0]), Some(3));
    }

    #[test]
    fn the_window_slides() {
        let p = Params {
            eviction_total: 100,
            ..Params::default()
        };
        let mut w = ProposalWindow::default();
        for h in 0..1000u64 {
            w.push(h + 1, id(h as usize % 4 + 1), p.eviction_total);
        }
        assert_eq!(w.abnormal(&roster(4), &p), None);
        assert_eq!(w.start(), 901);
        // Node 4 dies: after a window without it, it is found.
        for h in 1000..1100u64 {
            w.push(h + 1, id(h as usize % 3 + 1), p.eviction_total);
        }
        assert_eq!(w.count(&id(4)), 0);
        assert_eq!(w.total(), 100);
        assert_eq!(w.abnormal(&roster(4), &p), Some(id(4)));
    }
}
