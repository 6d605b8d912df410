//! The heartbeat: status announcements, re-sending this node's own messages (lost
//! messages are otherwise never repaired), and sync checks; and the receiving side
//! of announcements.

use super::round::Step;
use super::{Core, Effect, Output, TimeoutKind};
use crate::types::{Announce, Message, SignedAnnounce, DOMAIN_ANNOUNCE};
use std::collections::BTreeSet;

impl Core {
    /// Our signed height, epoch and roster; `new_view` after a membership change
    /// (protocol.md §4.3).
    pub(super) fn announce(&self, new_view: bool) -> SignedAnnounce {
        let announce = Announce {
            from: self.id(),
            epoch: self.chain.epoch(),
            height: self.chain.height,
            roster_hash: self.chain.roster().hash(),
            new_view,
        };
        let sig = self
            .key
            .sign(DOMAIN_ANNOUNCE, &crate::types::encode(&announce));
        SignedAnnounce { announce, sig }
    }

    /// Heartbeat: announce, re-send this round's own messages (lost messages are
    /// otherwise never repaired), and pull blocks from a peer that is ahead.
    pub(super) fn on_tick(&mut self, fx: &mut Output) {
        self.ticks += 1;
        self.distrusted.retain(|_, until| *until > self.ticks);
        fx.push(self.schedule(TimeoutKind::Tick, 0, 0, self.timeouts.tick_ms));
        fx.push(Effect::Broadcast(Message::Announce(self.announce(false))));
        if self.rs.step != Step::Committed && self.is_member() {
            let me = self.id();
            let r = self.rs.round;
            if let Some((p, _)) = self.rs.proposals.get(&r) {
                if p.proposer == me {
                    fx.push(Effect::Broadcast(Message::Proposal(Box::new(p.clone()))));
                }
            }
            // Our votes of this round, of the previous one (a node that moved on alone
            // after a quorum of precommits must let the others reach that quorum too,
            // or with f+1 of us needed to skip rounds they never follow it: DESIGN R4),
            // and of the rounds of our lock and valid value (DESIGN R3).
            let mut rounds: BTreeSet<u32> = [r, r.saturating_sub(1)].into();
            rounds.extend(self.rs.locked.as_ref().map(|(lr, _)| *lr));
            rounds.extend(self.rs.valid.as_ref().map(|(vr, _)| *vr));
            for rr in &rounds {
                for set in [self.rs.prevotes.get(rr), self.rs.precommits.get(rr)]
                    .into_iter()
                    .flatten()
                {
                    if let Some(v) = set.votes.get(&me) {
                        fx.push(Effect::Broadcast(Message::Vote(v.clone())));
                    }
                }
            }
            // And the polka behind our valid value, which others may have missed
            // (DESIGN R3).
            if let Some((vr, b)) = &self.rs.valid {
                self.relay_polka(*vr, b.hash(), fx);
            }
        }
        let stale = self
            .sync_inflight
            .is_some_and(|(_, _, at)| self.ticks.saturating_sub(at) >= 4);
        if stale {
            // It did not answer (down, unreachable, or lying about its height):
            // forget its claim so the next request goes to another peer (DESIGN R6).
            if let Some((peer, _, _)) = self.sync_inflight {
                self.peer_heights.remove(&peer);
            }
        }
        if self.sync_inflight.is_none() || stale {
            self.sync_inflight = None;
            self.request_sync(fx);
        }
    }

    /// A peer's heartbeat or view-change announcement: note its height, and fetch
    /// the blocks of a view change we have not seen (protocol.md §4.3).
    pub(super) fn on_announce(&mut self, sa: SignedAnnounce, fx: &mut Output) {
        let a = &sa.announce;
        // A heartbeat from a peer no further than we are, or than we knew it to be,
        // changes nothing: skip it without a signature check (heartbeats come from
        // every peer several times a second; verifying them all cost as much as
        // consensus itself).
        let known = self.peer_heights.get(&a.from).copied().unwrap_or(0);
        if !a.new_view && (a.height <= self.chain.height || a.height <= known) {
            return;
        }
        if !self
            .verifier
            .verify(&a.from, DOMAIN_ANNOUNCE, &crate::types::encode(a), &sa.sig)
        {
            self.dropped.bad_signature += 1;
            return;
        }
        self.note_peer(a.from, a.height);
        if a.new_view && a.epoch > self.chain.epoch() && self.sync_inflight.is_none() {
            // A view change we have not seen: fetch the blocks that carry it.
            self.request_sync(fx);
        }
    }
}
