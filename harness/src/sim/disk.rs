//! A simulated disk per node: the committed blocks and the signing state.
//!
//! An honest disk keeps every persist effect once it is executed, which is the
//! runtime's contract (persists are durable before any later effect, protocol.md
//! §6), so a crash keeps them. The lying disk (a test-only broken environment)
//! acknowledges the same writes but loses those of the last [`LIE_WINDOW_NS`] of
//! simulated time on a crash, like a disk that ignores fsync.

use rollcall_node_core::consensus::SignState;
use rollcall_node_core::types::CommittedBlock;

/// How much a lying disk forgets on a crash.
pub const LIE_WINDOW_NS: u64 = 1_000_000_000;

/// One node's durable state.
#[derive(Debug, Default, Clone)]
pub struct Disk {
    /// Blocks in height order, with the time each was written.
    blocks: Vec<(CommittedBlock, u64)>,
    /// Signing states with their write time; an honest disk keeps only the last.
    sign: Vec<(SignState, u64)>,
    lying: bool,
}

impl Disk {
    /// An empty disk; `lying` makes it lose recent writes on a crash.
    pub fn new(lying: bool) -> Self {
        Disk {
            lying,
            ..Default::default()
        }
    }

    /// `Effect::PersistBlock`.
    pub fn append_block(&mut self, cb: CommittedBlock, now: u64) {
        self.blocks.push((cb, now));
    }

    /// `Effect::PersistSignState`.
    pub fn save_sign_state(&mut self, s: SignState, now: u64) {
        if self.lying {
            // Keep the newest state older than the window and everything after it.
            let cutoff = now.saturating_sub(LIE_WINDOW_NS);
            let keep_from = self
                .sign
                .iter()
                .rposition(|(_, t)| *t <= cutoff)
                .unwrap_or(0);
            self.sign.drain(..keep_from);
        } else {
            self.sign.clear();
        }
        self.sign.push((s, now));
    }

    /// What survives a crash at `now`.
    pub fn crash(&mut self, now: u64) {
        if !self.lying {
            return;
        }
        let cutoff = now.saturating_sub(LIE_WINDOW_NS);
        let keep = self.blocks.partition_point(|(_, t)| *t <= cutoff);
        self.blocks.truncate(keep);
        let keep = self.sign.partition_point(|(_, t)| *t <= cutoff);
        self.sign.truncate(keep);
    }

    /// The stored chain, for replay and dumps.
    pub fn blocks(&self) -> impl Iterator<Item = &CommittedBlock> {
        self.blocks.iter().map(|(b, _)| b)
    }

    /// Blocks `from..=to` that are stored (heights start at 1).
    pub fn range(&self, from: u64, to: u64) -> Vec<CommittedBlock> {
        let lo = from.saturating_sub(1) as usize;
        let hi = (to as usize).min(self.blocks.len());
        if lo >= hi {
            return Vec::new();
        }
        self.blocks[lo..hi].iter().map(|(b, _)| b.clone()).collect()
    }

    /// The last signing state, for `restore_sign_state`.
    pub fn sign_state(&self) -> Option<SignState> {
        self.sign.last().map(|(s, _)| s.clone())
    }

    /// Stored height.
    pub fn height(&self) -> u64 {
        self.blocks.len() as u64
    }
}
