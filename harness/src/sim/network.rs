//! The simulated network: per-link delay with jitter, loss, duplication (reorder
//! follows from jitter), and partitions of any shape as a set of blocked directed
//! links (harness.md §2, §5). The nemesis sets the whole fault state at once
//! (`LinkControl::apply_links`).

use super::SimBackend;
use crate::backend::{BackendError, DirectedLink, LinkCaps, LinkControl, LinkFaults};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

/// Base one-way delay of every link, ns (1–5 ms).
pub const BASE_DELAY_NS: (u64, u64) = (1_000_000, 5_000_000);

/// Link faults, keyed by directed (from, to) node index.
#[derive(Debug, Default, Clone)]
pub struct Network {
    /// Links on which nothing is delivered.
    pub blocked: BTreeSet<(usize, usize)>,
    /// (loss %, duplicate %).
    pub flaky: BTreeMap<(usize, usize), (u32, u32)>,
    /// (extra delay ns, jitter ns).
    pub slow: BTreeMap<(usize, usize), (u64, u64)>,
    /// Senders whose proposals are dropped (a Twins phase's proposer choice).
    pub muted: BTreeSet<usize>,
}

impl Network {
    /// The delays (ns) of the copies of one message sent on `from → to`: none when
    /// blocked or lost, two when duplicated.
    pub fn deliveries(&self, rng: &mut ChaCha8Rng, from: usize, to: usize) -> Vec<u64> {
        if self.blocked.contains(&(from, to)) {
            return Vec::new();
        }
        let mut copies = 1;
        if let Some((loss, dup)) = self.flaky.get(&(from, to)) {
            if rng.gen_range(0..100) < *loss {
                return Vec::new();
            }
            if rng.gen_range(0..100) < *dup {
                copies = 2;
            }
        }
        let (extra, jitter) = self.slow.get(&(from, to)).copied().unwrap_or((0, 0));
        (0..copies)
            .map(|_| {
                let j = if jitter > 0 {
                    rng.gen_range(0..=jitter)
                } else {
                    0
                };
                rng.gen_range(BASE_DELAY_NS.0..=BASE_DELAY_NS.1) + extra + j
            })
            .collect()
    }
}

/// Simulated links honour every link fault exactly, one way where asked.
impl LinkControl for SimBackend {
    fn link_caps(&self) -> LinkCaps {
        LinkCaps::exact()
    }

    fn drops_proposals(&self) -> bool {
        true
    }

    fn apply_links(&mut self, want: &LinkFaults) -> Result<(), BackendError> {
        let idx = |(a, b): &DirectedLink| Some((self.index(a).ok()?, self.index(b).ok()?));
        self.net = Network {
            blocked: want.cut.iter().filter_map(idx).collect(),
            flaky: (want.lossy.iter())
                .filter_map(|(l, f)| Some((idx(l)?, (f.loss_pct, f.duplicate_pct))))
                .collect(),
            slow: (want.slow.iter())
                .filter_map(|(l, s)| {
                    Some((idx(l)?, (s.delay_ms * 1_000_000, s.jitter_ms * 1_000_000)))
                })
                .collect(),
            muted: (want.muted.iter())
                .filter_map(|n| self.index(n).ok())
                .collect(),
        };
        Ok(())
    }
}
