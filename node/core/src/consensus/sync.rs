//! Block sync: who is ahead, asking for blocks, and checking the ones that come
//! back against their certificates (protocol.md §4.3).

use super::round::Step;
use super::{Core, Effect, Output};
use crate::crypto::NodeId;
use crate::types::{CommittedBlock, Message, DOMAIN_VOTE};

/// Blocks asked for in one sync request.
pub const SYNC_BATCH: u64 = 256;
/// Heartbeats during which a peer that served an invalid block is not asked again.
pub(super) const DISTRUST_TICKS: u32 = 20;

impl Core {
    /// The highest height a peer claimed.
    pub(super) fn best_peer_height(&self) -> u64 {
        self.peer_heights.values().copied().max().unwrap_or(0)
    }

    /// Asks the peer furthest ahead for the next batch of blocks.
    pub(super) fn request_sync(&mut self, fx: &mut Output) {
        let my = self.chain.height;
        // The peer furthest ahead; ties to the lowest id for determinism.
        let best = self
            .peer_heights
            .iter()
            .filter(|(id, h)| **h > my && **id != self.id())
            .max_by_key(|(id, h)| (**h, std::cmp::Reverse(**id)));
        if let Some((peer, ph)) = best {
            let to = (*ph).min(my + SYNC_BATCH);
            let peer = *peer;
            self.sync_inflight = Some((peer, my + 1, self.ticks));
            fx.push(Effect::Send {
                to: peer,
                msg: Message::SyncRequest { from: my + 1, to },
            });
        }
    }

    /// Raises what we know of a peer's height.
    pub(super) fn note_peer(&mut self, peer: NodeId, height: u64) {
        if self
            .distrusted
            .get(&peer)
            .is_some_and(|until| *until > self.ticks)
        {
            return;
        }
        let e = self.peer_heights.entry(peer).or_default();
        if height > *e {
            *e = height;
        }
    }

    /// A synced block extends our chain and its certificate decides it under the
    /// roster of its height (protocol.md §4.4), unless the node was weakened on
    /// purpose ([`Core::weaken_trust_synced_certificates`]).
    fn check_synced(&self, cb: &CommittedBlock) -> Result<(), crate::chain::BlockError> {
        self.chain.check_synced_block(&cb.block, &self.verifier)?;
        if self.trust_synced_certs {
            return Ok(());
        }
        self.chain.check_cert(&cb.block, &cb.cert, &self.verifier)
    }

    /// Blocks from a peer: each must extend our chain and carry a valid certificate
    /// of its era (protocol.md §4.3); a bad one makes us stop trusting the peer.
    pub(super) fn on_sync_response(
        &mut self,
        from: NodeId,
        blocks: Vec<CommittedBlock>,
        fx: &mut Output,
    ) {
        if self.sync_inflight.is_some_and(|(p, _, _)| p == from) {
            self.sync_inflight = None;
        }
        let last = blocks.last().map(|b| b.block.height).unwrap_or(0);
        // Pipeline: ask for the next batch before verifying this one.
        if last > self.chain.height && self.sync_inflight.is_none() {
            let best = self.best_peer_height();
            if best > last {
                let to = best.min(last + SYNC_BATCH);
                self.sync_inflight = Some((from, last + 1, self.ticks));
                fx.push(Effect::Send {
                    to: from,
                    msg: Message::SyncRequest { from: last + 1, to },
                });
            }
        }
        // Batch-check every certificate signature of the response first; the checks
        // below then hit the cache (a bad batch is simply not cached).
        let sign_bytes: Vec<(crate::crypto::NodeId, Vec<u8>, crate::crypto::Sig)> = blocks
            .iter()
            .filter(|cb| cb.block.height > self.chain.height)
            .flat_map(|cb| {
                cb.cert.sigs.iter().map(|s| {
                    (
                        s.validator,
                        cb.cert.vote_of(s.validator).sign_bytes(),
                        s.sig,
                    )
                })
            })
            .collect();
        let checks: Vec<crate::crypto::SigCheck> = sign_bytes
            .into_iter()
            .map(|(id, msg, sig)| (id, DOMAIN_VOTE, msg, sig))
            .collect();
        self.verifier.prime(&checks);
        for cb in blocks {
            if cb.block.height <= self.chain.height {
                continue;
            }
            if cb.block.height != self.chain.height + 1 {
                break;
            }
            if let Err(e) = self.check_synced(&cb) {
                tracing::warn!(peer = %from.short(), height = cb.block.height, error = %e, "refusing synced block");
                self.dropped.invalid_block += 1;
                // Do not trust this peer's claims any more, for a while.
                self.peer_heights.remove(&from);
                self.distrusted.insert(from, self.ticks + DISTRUST_TICKS);
                self.sync_inflight = None;
                return;
            }
            self.note_peer(from, cb.block.height);
            self.apply_committed(cb, fx);
        }
        if self.rs.step == Step::Committed && self.started {
            self.next_height(fx);
        }
    }
}
