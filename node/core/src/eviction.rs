//! Detecting an abnormal node from its share of committed proposals (protocol.md §5,
//! seed 003).
//!
//! The proposal map is a pure function of the committed chain, so every honest node
//! holds the same map and evaluates the rule to the same answer.

use crate::crypto::NodeId;
use crate::roster::Roster;
use crate::types::Params;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Who proposed the last `eviction_total` committed blocks since the last membership
/// change: a sliding window (protocol.md §5, seed 003 [0071]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalMap {
    window: VecDeque<NodeId>,
    counts: BTreeMap<NodeId, u64>,
}

impl ProposalMap {
    /// Records the proposer of a committed block, forgetting the oldest past `cap`.
    pub fn record(&mut self, proposer: NodeId, cap: u64) {
        self.window.push_back(proposer);
        *self.counts.entry(proposer).or_default() += 1;
        while self.window.len() as u64 > cap {
            if let Some(old) = self.window.pop_front() {
                if let Some(c) = self.counts.get_mut(&old) {
                    *c -= 1;
                    if *c == 0 {
                        self.counts.remove(&old);
                    }
                }
            }
        }
    }

    /// Forgets everything: done on every membership change (seed 003 [0088]).
    pub fn reset(&mut self) {
        self.window.clear();
        self.counts.clear();
    }

    /// Blocks in the window.
    pub fn total(&self) -> u64 {
        self.window.len() as u64
    }

    /// How many blocks in the window `id` proposed.
    pub fn count(&self, id: &NodeId) -> u64 {
        self.counts.get(id).copied().unwrap_or(0)
    }
}

/// The rule of protocol.md §5, evaluated for the next height: the abnormal node, if
/// any. Candidates have `count × n × den < total × num`; the smallest count wins,
/// ties to the lowest roster number.
pub fn abnormal_node(map: &ProposalMap, roster: &Roster, params: &Params) -> Option<NodeId> {
    let n = roster.len() as u64;
    let total = map.total();
    if total < params.eviction_total || n.saturating_sub(1) < params.min_roster as u64 {
        return None;
    }
    roster
        .entries()
        .iter()
        .map(|e| (map.count(&e.id), e.number, e.id))
        .filter(|(count, _, _)| {
            (*count as u128) * (n as u128) * (params.eviction_ratio_den as u128)
                < (total as u128) * (params.eviction_ratio_num as u128)
        })
        .min()
        .map(|(_, _, id)| id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Bytes32;
    use crate::roster::test_roster as roster;

    fn map_with(counts: &[u64], cap: u64) -> ProposalMap {
        let mut m = ProposalMap::default();
        // Interleave so the window order does not matter for the counts.
        let mut left: Vec<u64> = counts.to_vec();
        while left.iter().any(|c| *c > 0) {
            for (i, c) in left.iter_mut().enumerate() {
                if *c > 0 {
                    *c -= 1;
                    m.record(Bytes32([i as u8 + 1; 32]), cap);
                }
            }
        }
        m
    }

    fn evaluate(counts: &[u64]) -> Option<u8> {
        let p = Params::default();
        let m = map_with(counts, p.eviction_total);
        abnormal_node(&m, &roster(counts.len() as u8), &p).map(|id| id.0[0])
    }

    #[test]
    fn seed_figures() {
        // The four rows of protocol.md §5.
        assert_eq!(evaluate(&[340, 320, 320, 20]), Some(4));
        assert_eq!(evaluate(&[476, 480, 24, 20]), Some(4));
        assert_eq!(evaluate(&[200, 200, 200, 15, 200, 185]), Some(4));
        assert_eq!(evaluate(&[250, 250, 250, 250]), None);
    }

    #[test]
    fn total_just_below_threshold_evicts_nobody() {
        assert_eq!(evaluate(&[340, 320, 319, 20]), None);
    }

    #[test]
    fn cut_off_is_strict_and_exact() {
        // n=4, total 1000: cut-off 25; 25 is not below it, 24 is.
        assert_eq!(evaluate(&[325, 325, 325, 25]), None);
        assert_eq!(evaluate(&[326, 325, 325, 24]), Some(4));
    }

    #[test]
    fn ties_go_to_the_lowest_number() {
        assert_eq!(evaluate(&[480, 10, 500, 10]), Some(2));
    }

    #[test]
    fn min_roster_stops_eviction() {
        let p = Params {
            min_roster: 4,
            ..Params::default()
        };
        let m = map_with(&[340, 320, 320, 20], p.eviction_total);
        assert_eq!(abnormal_node(&m, &roster(4), &p), None);
        let p3 = Params::default();
        let m3 = map_with(&[500, 495, 5], p3.eviction_total);
        assert_eq!(abnormal_node(&m3, &roster(3), &p3), None, "3 - 1 < 3");
    }

    #[test]
    fn reset_clears_counters() {
        let p = Params::default();
        let mut m = map_with(&[340, 320, 320, 20], p.eviction_total);
        m.reset();
        assert_eq!(m.total(), 0);
        assert_eq!(abnormal_node(&m, &roster(4), &p), None);
    }

    #[test]
    fn window_forgets_a_busy_node_that_died() {
        let p = Params {
            eviction_total: 100,
            ..Params::default()
        };
        let mut m = ProposalMap::default();
        // Node 4 proposed a quarter of a long history...
        for i in 0..1000u32 {
            m.record(Bytes32([(i % 4) as u8 + 1; 32]), p.eviction_total);
        }
        assert_eq!(abnormal_node(&m, &roster(4), &p), None);
        // ...then died: after a window without it, it is found.
        for i in 0..100u32 {
            m.record(Bytes32([(i % 3) as u8 + 1; 32]), p.eviction_total);
        }
        assert_eq!(m.count(&Bytes32([4; 32])), 0);
        assert_eq!(m.total(), 100);
        assert_eq!(abnormal_node(&m, &roster(4), &p), Some(Bytes32([4; 32])));
    }
}
