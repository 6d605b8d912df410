//! The node's role and its `/status` snapshot (protocol.md §5, §7).

use super::votes::VoteSet;
use super::Core;
use crate::crypto::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The node's role (protocol.md §5, §7 `/status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// In the roster and up to date.
    Validator,
    /// Catching up, or waiting to be added.
    Syncing,
    /// Deleted from the roster by an eviction, not re-added.
    Evicted,
}

/// Counters of messages dropped, by reason (visible in `/status`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    /// Signature did not verify.
    pub bad_signature: u64,
    /// Signer not in the roster of the message's epoch.
    pub unknown_signer: u64,
    /// Epoch older than ours.
    pub stale_epoch: u64,
    /// Evict field disagrees with the rule (protocol.md §5).
    pub bad_evict: u64,
    /// A second, different vote for one step by one validator (kept as evidence and
    /// tallied once per value, never twice toward one quorum).
    pub equivocation: u64,
    /// Invalid proposal or synced block.
    pub invalid_block: u64,
    /// A gossiped transaction failing `validate_tx` or the AddNode rules (issue 14).
    #[serde(default)]
    pub invalid_tx: u64,
    /// A gossiped transaction refused because the mempool is full.
    #[serde(default)]
    pub mempool_full: u64,
    /// A message for a height beyond the next: not stored, and not allowed to move
    /// the peer heights `/status` reports unless its signature checks out (issue 14).
    #[serde(default)]
    pub far_future: u64,
    /// A vote or proposal for a round beyond round + 1 past its signer's two
    /// catch-up rounds of this height, or one such round dropped for a newer
    /// (issue 12, `consensus::catch_up`).
    #[serde(default)]
    pub far_round: u64,
    /// A next-height message not kept because the future queue is full.
    #[serde(default)]
    pub future_full: u64,
    /// A consensus or mempool message from a peer outside the roster (counted by the
    /// transport, which knows the authenticated peer id; issue 14).
    #[serde(default)]
    pub non_member: u64,
    /// A non-member's sync request over its rate (issue 14).
    #[serde(default)]
    pub rate_limited: u64,
    /// Peer connections refused by the connection caps (counted by the transport).
    #[serde(default)]
    pub refused_connection: u64,
    /// Peer handshakes that failed, timed out or did not prove the claimed id.
    #[serde(default)]
    pub bad_handshake: u64,
    /// Peer connections dropped for an oversized, undecodable or too slow frame.
    #[serde(default)]
    pub bad_frame: u64,
}

impl Dropped {
    /// All drops.
    pub fn total(&self) -> u64 {
        self.bad_signature
            + self.unknown_signer
            + self.stale_epoch
            + self.bad_evict
            + self.equivocation
            + self.invalid_block
            + self.invalid_tx
            + self.mempool_full
            + self.far_future
            + self.far_round
            + self.future_full
            + self.non_member
            + self.rate_limited
            + self.refused_connection
            + self.bad_handshake
            + self.bad_frame
    }
}

/// A snapshot for `/status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    /// Node id.
    pub id: NodeId,
    /// Last committed height.
    pub height: u64,
    /// Epoch of the next height.
    pub epoch: u64,
    /// Current round.
    pub round: u32,
    /// Step in the round (propose, prevote, precommit, committed).
    pub step: String,
    /// Round of the Tendermint lock, if locked.
    pub locked_round: Option<u32>,
    /// Round of the valid value, if any.
    pub valid_round: Option<u32>,
    /// Prevotes and precommits held per round: (round, prevoters, precommitters).
    pub votes: Vec<(u32, usize, usize)>,
    /// Role.
    pub role: Role,
    /// Roster of the next height.
    pub roster: Vec<crate::types::RosterEntry>,
    /// Proposal counts of the window, by node id hex.
    pub proposal_counts: BTreeMap<String, u64>,
    /// Blocks in the window.
    pub proposal_total: u64,
    /// The abnormal node the rule names for the next height.
    pub abnormal: Option<NodeId>,
    /// Total dropped messages.
    pub dropped_messages: u64,
    /// Drops by reason.
    pub dropped: Dropped,
    /// Pending transactions.
    pub mempool: usize,
    /// Highest height a peer claimed.
    pub best_peer_height: u64,
    /// What the store found wrong with its files at the last start (issue 13).
    pub storage: crate::store::Damage,
}

impl Core {
    /// The role of protocol.md §5/§7.
    pub fn role(&self) -> Role {
        let me = self.id();
        if !self.chain.roster().contains(&me) {
            if self.chain.was_evicted(&me) {
                Role::Evicted
            } else {
                Role::Syncing
            }
        } else if self.best_peer_height() > self.chain.height + 2 {
            Role::Syncing
        } else {
            Role::Validator
        }
    }

    /// A snapshot for `/status`.
    pub fn status(&self) -> Status {
        let roster = self.chain.roster();
        Status {
            id: self.id(),
            height: self.chain.height,
            epoch: self.chain.epoch(),
            round: self.rs.round,
            step: format!("{:?}", self.rs.step).to_lowercase(),
            locked_round: self.rs.locked.as_ref().map(|(r, _)| *r),
            valid_round: self.rs.valid.as_ref().map(|(r, _)| *r),
            votes: self
                .rs
                .prevotes
                .keys()
                .chain(self.rs.precommits.keys())
                .copied()
                .collect::<BTreeSet<u32>>()
                .into_iter()
                .map(|r| {
                    let n = |m: &BTreeMap<u32, VoteSet>| m.get(&r).map_or(0, |s| s.total());
                    (r, n(&self.rs.prevotes), n(&self.rs.precommits))
                })
                .collect(),
            role: self.role(),
            storage: self.storage.clone(),
            roster: roster.entries().to_vec(),
            proposal_counts: roster
                .entries()
                .iter()
                .map(|e| (e.id.to_hex(), self.chain.proposals().count(&e.id)))
                .collect(),
            proposal_total: self.chain.proposals().total(),
            abnormal: self.chain.expected_evict(),
            dropped_messages: self.dropped.total(),
            dropped: self.dropped.clone(),
            mempool: self.mempool.len(),
            best_peer_height: self.best_peer_height(),
        }
    }
}
