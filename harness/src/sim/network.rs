//! The simulated network: per-link delay with jitter, loss, duplication (reorder
//! follows from jitter), and partitions of any shape as a set of blocked directed
//! links (harness.md §2, §5).

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

/// Base one-way delay of every link, ns (1–5 ms).
pub const BASE_DELAY_NS: (u64, u64) = (1_000_000, 5_000_000);

/// Link faults, keyed by directed (from, to) node index.
#[derive(Debug, Default, Clone)]
pub struct Network {
    blocked: BTreeSet<(usize, usize)>,
    /// (loss %, duplicate %).
    flaky: BTreeMap<(usize, usize), (u32, u32)>,
    /// (extra delay ns, jitter ns).
    slow: BTreeMap<(usize, usize), (u64, u64)>,
}

impl Network {
    /// Blocks these links.
    pub fn block(&mut self, links: &[(usize, usize)]) {
        self.blocked.extend(links.iter().copied());
    }

    /// Unblocks these links.
    pub fn unblock(&mut self, links: &[(usize, usize)]) {
        for l in links {
            self.blocked.remove(l);
        }
    }

    /// Makes links lossy.
    pub fn set_flaky(&mut self, links: &[(usize, usize)], loss_pct: u32, dup_pct: u32) {
        for l in links {
            self.flaky.insert(*l, (loss_pct, dup_pct));
        }
    }

    /// Makes links reliable again.
    pub fn clear_flaky(&mut self, links: &[(usize, usize)]) {
        for l in links {
            self.flaky.remove(l);
        }
    }

    /// Slows links.
    pub fn set_slow(&mut self, links: &[(usize, usize)], delay_ns: u64, jitter_ns: u64) {
        for l in links {
            self.slow.insert(*l, (delay_ns, jitter_ns));
        }
    }

    /// Restores link speed.
    pub fn clear_slow(&mut self, links: &[(usize, usize)]) {
        for l in links {
            self.slow.remove(l);
        }
    }

    /// Heals everything.
    pub fn heal(&mut self) {
        self.blocked.clear();
        self.flaky.clear();
        self.slow.clear();
    }

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
