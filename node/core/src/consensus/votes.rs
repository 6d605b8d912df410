//! The tally of one round's prevotes or precommits.

use crate::crypto::{Hash, NodeId};
use crate::types::SignedVote;
use std::collections::BTreeMap;

/// Distinct values one validator may be recorded under in one vote set: its vote
/// and one conflicting vote (bounds what an equivocator can make us store).
const MAX_VALUES_PER_VALIDATOR: usize = 2;

/// What adding a vote did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Added {
    /// A new vote: tallies changed.
    New,
    /// Already held.
    Duplicate,
    /// A second, different vote by a validator: evidence of equivocation. It is
    /// tallied under its own value (`counted`) unless the validator is at its limit.
    Equivocation { counted: bool },
}

/// The prevotes or precommits of one round.
///
/// A validator counts at most once per value and once in the total of distinct
/// voters, so it can never be counted twice toward one quorum. An equivocator is
/// tallied under each value it signed: safe, since two quorums for different values
/// intersect in f+1 signers, at least one of them honest, and honest nodes never sign
/// both; and needed for liveness, or honest nodes that heard the twin votes in a
/// different order would never agree on a polka (CometBFT keeps conflicting votes for
/// the same reason). DESIGN R5.
#[derive(Default)]
pub(super) struct VoteSet {
    /// Each validator's first vote: what totals count and what we re-send.
    pub(super) votes: BTreeMap<NodeId, SignedVote>,
    /// The votes for each value.
    by_value: BTreeMap<Option<Hash>, BTreeMap<NodeId, SignedVote>>,
}

impl VoteSet {
    /// Adds a vote; an equivocator's second value is tallied under that value
    /// (DESIGN R5), never twice under one.
    pub(super) fn add(&mut self, v: SignedVote) -> Added {
        let who = v.vote.validator;
        let Some(prev) = self.votes.get(&who) else {
            self.by_value
                .entry(v.vote.block)
                .or_default()
                .insert(who, v.clone());
            self.votes.insert(who, v);
            return Added::New;
        };
        if prev.vote == v.vote {
            return Added::Duplicate;
        }
        let tally = self.by_value.entry(v.vote.block).or_default();
        if tally.get(&who).is_some_and(|x| x.vote == v.vote) {
            return Added::Duplicate;
        }
        let values = self
            .by_value
            .values()
            .filter(|t| t.contains_key(&who))
            .count();
        let counted = values < MAX_VALUES_PER_VALIDATOR
            && !self
                .by_value
                .get(&v.vote.block)
                .is_some_and(|t| t.contains_key(&who));
        if counted {
            self.by_value
                .entry(v.vote.block)
                .or_default()
                .insert(who, v);
        }
        // Paired with the certificate's check in `make_cert`.
        debug_assert!(
            self.by_value
                .values()
                .filter(|t| t.contains_key(&who))
                .count()
                <= MAX_VALUES_PER_VALIDATOR,
            "a tally never counts a validator twice"
        );
        Added::Equivocation { counted }
    }
    /// Forgets every vote of `who` (a far round it moved past, `catch_up`).
    pub(super) fn remove(&mut self, who: &NodeId) {
        self.votes.remove(who);
        self.by_value.retain(|_, t| {
            t.remove(who);
            !t.is_empty()
        });
    }
    /// Votes for `value`.
    pub(super) fn count(&self, value: &Option<Hash>) -> usize {
        self.by_value.get(value).map(|t| t.len()).unwrap_or(0)
    }
    /// Distinct voters.
    pub(super) fn total(&self) -> usize {
        self.votes.len()
    }
    /// A value (block or nil) with at least `q` votes.
    pub(super) fn quorum_value(&self, q: usize) -> Option<Option<Hash>> {
        self.by_value
            .iter()
            .find(|(_, t)| t.len() >= q)
            .map(|(v, _)| *v)
    }
    /// The votes for one value.
    pub(super) fn for_value(&self, value: &Option<Hash>) -> impl Iterator<Item = &SignedVote> {
        self.by_value
            .get(value)
            .into_iter()
            .flat_map(|t| t.values())
    }
}
