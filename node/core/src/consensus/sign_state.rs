//! The double-sign guard and the durable signing state (protocol.md §6): what the
//! node signed last, its lock with the proof of lock, and its own recent votes.

use super::round::Step;
use super::{Core, Output, Persist};
use crate::crypto::Hash;
use crate::types::{Block, SignedVote, VoteKind};
use serde::{Deserialize, Serialize};

/// Step order used by the double-sign guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SignStep {
    /// A proposal.
    Propose,
    /// A prevote.
    Prevote,
    /// A precommit.
    Precommit,
}

/// What the node last signed, and its lock: durable before the signature leaves the
/// node, so a restarted node never signs two different messages for one step and
/// never forgets the block it locked on (protocol.md §6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignState {
    /// Height.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// Step.
    pub step: SignStep,
    /// What was signed (block hash or nil).
    pub block: Option<Hash>,
    /// Tendermint's locked round and block at this height.
    pub locked: Option<(u32, Block)>,
    /// The proof of lock: the q(n) prevotes for the locked block in the locked
    /// round. Votes live in memory, so without it a crash of every node leaves locks
    /// that nobody can justify any more; a re-proposal of the locked block is then
    /// never accepted and nodes locked on different blocks stall for ever.
    pub pol: Vec<SignedVote>,
    /// This node's own votes of its last two rounds at this height. A restarted node
    /// resumes in its last round and re-sends them, so peers a round behind can still
    /// complete the quorum they need (with q(n) = every live node, one node alone in
    /// a later round would otherwise stall everyone).
    pub own: Vec<SignedVote>,
}

/// The round of a floor marker: a signing state the store writes in place of one it
/// found corrupt, meaning "may have signed anything up to this height" (issue 13). No
/// real round reaches it.
pub const FLOOR_ROUND: u32 = u32::MAX;

impl SignState {
    /// The floor marker for `height` (see [`FLOOR_ROUND`]): durable, so a node whose
    /// signing state was corrupt keeps refusing to sign at or below `height` across
    /// later restarts too, until it signs above it.
    pub fn floor(height: u64) -> SignState {
        SignState {
            height,
            round: FLOOR_ROUND,
            step: SignStep::Precommit,
            block: None,
            locked: None,
            pol: Vec::new(),
            own: Vec::new(),
        }
    }

    /// Whether this is a floor marker rather than something signed.
    pub fn is_floor(&self) -> bool {
        self.round == FLOOR_ROUND
    }
}

impl Core {
    /// Restores the double-sign guard and the lock after a restart (protocol.md §6).
    ///
    /// A node that signed at the height it restarts in resumes in the round it last
    /// signed in, at the step after its last signature, with its own votes of its
    /// last two rounds back in the tallies (the heartbeat re-sends them): as
    /// Tendermint does replaying its WAL. Resuming at round 0 stalled (the guard
    /// forbids signing there again, so nobody voted and no timeout fired); resuming a
    /// round later stalled too when that left one node alone ahead of peers that
    /// needed its vote (DESIGN R1).
    pub(super) fn restore_sign_state(&mut self, s: SignState) {
        self.last_signed = Some((s.height, s.round, s.step, s.block));
        if s.is_floor() {
            // Nothing was signed in a round to resume: only the guard holds.
            return;
        }
        if s.height == self.chain.height + 1 {
            self.rs.round = s.round;
            self.resume_step = Some(match s.step {
                SignStep::Propose => Step::Propose,
                SignStep::Prevote => Step::Prevote,
                SignStep::Precommit => Step::Precommit,
            });
            for v in s.own.iter().filter(|v| v.vote.height == s.height) {
                let set = match v.vote.kind {
                    VoteKind::Prevote => self.rs.prevotes.entry(v.vote.round).or_default(),
                    VoteKind::Precommit => self.rs.precommits.entry(v.vote.round).or_default(),
                };
                let _ = set.add(v.clone());
            }
            // DESIGN R2: the lock comes back with the prevotes that justify it.
            self.rs.locked = s.locked.clone();
            self.rs.locked_pol = s.pol.clone();
            for v in s.pol {
                if v.vote.height == s.height && v.vote.kind == VoteKind::Prevote {
                    let _ = self.rs.prevotes.entry(v.vote.round).or_default().add(v);
                }
            }
            self.rs.valid = s.locked;
        }
    }

    /// The double-sign guard: never sign below the last signed step, and at the same
    /// step only the same value (ed25519 is deterministic, so that re-sends the same
    /// signature).
    pub(super) fn may_sign(&self, h: u64, r: u32, step: SignStep, value: Option<Hash>) -> bool {
        match self.last_signed {
            None => true,
            Some((lh, lr, ls, lv)) => {
                let last = (lh, lr, ls);
                let now = (h, r, step);
                now > last || (now == last && lv == value)
            }
        }
    }

    /// Records a signature about to leave: the guard moves on, and the signing
    /// state (with the lock, its proof and our recent votes) must be durable before
    /// the signed message is sent (protocol.md §6).
    pub(super) fn persist_sign(
        &mut self,
        h: u64,
        r: u32,
        step: SignStep,
        value: Option<Hash>,
        fx: &mut Output,
    ) {
        // Paired with the store's check when it writes the state.
        debug_assert!(
            self.last_signed
                .is_none_or(|(lh, lr, ls, _)| (lh, lr, ls) <= (h, r, step)),
            "the signing state only moves forward"
        );
        self.last_signed = Some((h, r, step, value));
        fx.persist(Persist::SignState(Box::new(SignState {
            height: h,
            round: r,
            step,
            block: value,
            locked: self.rs.locked.clone(),
            // DESIGN R2: the proof of lock is durable with the lock.
            pol: if self.rs.locked.is_some() {
                self.rs.locked_pol.clone()
            } else {
                Vec::new()
            },
            // DESIGN R1: our votes of this round and the one before.
            own: self.own_votes(r.saturating_sub(1)),
        })));
    }

    /// This node's votes at the current height from round `from` on.
    pub(super) fn own_votes(&self, from: u32) -> Vec<SignedVote> {
        let me = self.id();
        self.rs
            .prevotes
            .range(from..)
            .chain(self.rs.precommits.range(from..))
            .filter_map(|(_, set)| set.votes.get(&me).cloned())
            .collect()
    }
}
