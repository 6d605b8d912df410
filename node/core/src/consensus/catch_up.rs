//! Far-future rounds within one height (issue 12): how many rounds beyond the next
//! one a validator can make us store.
//!
//! A node keeps every proposal and vote of its current height by round, so a signer
//! that sends messages for ever higher rounds of a height that does not end (a stall
//! with no quorum) would grow memory without limit. CometBFT's `HeightVoteSet.AddVote`
//! allows each peer two "catch-up" rounds beyond round + 1. Here the budget is per
//! signer (a signature, not the relaying peer, says who made a message), and a
//! signer's *newest* two far rounds are kept: a newer one replaces its oldest, so an
//! honest validator that is ahead still shows where it is now and the f+1 round skip
//! (L55) still finds it. DESIGN R7.

use super::round::RoundState;
use super::Core;
use crate::crypto::NodeId;

/// Rounds beyond `round + 1` one signer may have stored at one height.
pub(super) const CATCH_UP_ROUNDS: usize = 2;

impl Core {
    /// Whether `signer`'s proposal or vote for `round` of this height may be stored.
    /// Rounds up to the next are always admitted; a far round takes one of the
    /// signer's catch-up places, and making room drops its oldest far round (counted
    /// in `dropped.far_round`, as is a refused one).
    pub(super) fn admit_round(&mut self, signer: NodeId, round: u32) -> bool {
        let next = self.rs.round.saturating_add(1);
        if round <= next {
            return true;
        }
        let far = self.rs.catch_up.entry(signer).or_default();
        // Rounds we have reached since are no longer far.
        far.retain(|r| *r > next);
        if far.contains(&round) {
            return true;
        }
        if far.len() < CATCH_UP_ROUNDS {
            far.insert(round);
            return true;
        }
        self.dropped.far_round += 1;
        let Some(oldest) = far.first().copied().filter(|o| *o < round) else {
            return false;
        };
        far.remove(&oldest);
        far.insert(round);
        self.rs.forget(signer, oldest);
        true
    }
}

impl RoundState {
    /// Drops what `signer` made us store for `round` (a far round it moved past).
    fn forget(&mut self, signer: NodeId, round: u32) {
        for sets in [&mut self.prevotes, &mut self.precommits] {
            if let Some(set) = sets.get_mut(&round) {
                set.remove(&signer);
                if set.total() == 0 {
                    sets.remove(&round);
                }
            }
        }
        if self
            .proposals
            .get(&round)
            .is_some_and(|(p, _)| p.proposer == signer)
        {
            self.proposals.remove(&round);
        }
    }
}
