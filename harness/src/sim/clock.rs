//! The `clock` nemesis on the simulator (issue 16): each node's clock may run at
//! its own rate and jump. The node core is sans-IO: its timeouts are
//! `Effect::Schedule { after_ms }` and the simulator decides when they fire, so a
//! node whose clock runs at rate r fires a timer after `after_ms / r` of simulated
//! time, and a jump of its clock moves every pending timer of that node by the jump
//! (forward: due sooner, at once if the jump passes it; back: due later).

use super::{EventKind, SimBackend};
use crate::backend::BackendError;
use rollcall_node_core::consensus::TimeoutKind;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A clock at its true rate, in percent.
pub(super) const TRUE_RATE: u32 = 100;

/// Per-node clock state, by node index (twins included); absent is the true clock.
#[derive(Debug, Default)]
pub(super) struct Clocks {
    /// Rate in percent of simulated time (50: half speed, 200: double).
    rate_pct: BTreeMap<usize, u32>,
    /// Heartbeats fired per node: what the tests read to see a clock fault act
    /// (the heartbeat's rate is the node's clock's alone; the other timers follow
    /// the consensus, which the rest of the cluster drives).
    ticks: BTreeMap<usize, u64>,
}

impl Clocks {
    /// Simulated ns until a timer of `after_ms` on node `i`'s clock fires.
    pub(super) fn timer_ns(&self, i: usize, after_ms: u64) -> u64 {
        let rate = u128::from(self.rate(i));
        let ns = u128::from(after_ms) * 1_000_000 * u128::from(TRUE_RATE) / rate;
        u64::try_from(ns).unwrap_or(u64::MAX)
    }

    fn rate(&self, i: usize) -> u32 {
        self.rate_pct.get(&i).copied().unwrap_or(TRUE_RATE).max(1)
    }

    /// Counts a fired timer of node `i` if it is a heartbeat.
    pub(super) fn fired(&mut self, i: usize, kind: TimeoutKind) {
        if kind == TimeoutKind::Tick {
            *self.ticks.entry(i).or_default() += 1;
        }
    }
}

impl SimBackend {
    /// Sets node `name`'s clock rate and jumps it by `jump_ms` (negative: back):
    /// every pending timer of the node is rescaled to the new rate and moved by the
    /// jump. Returns what was done, for the history.
    pub(super) fn set_clock(
        &mut self,
        name: &str,
        rate_pct: u32,
        jump_ms: i64,
    ) -> Result<Value, BackendError> {
        let i = self.index(name)?;
        let old = u128::from(self.clocks.rate(i));
        let new = u128::from(rate_pct.max(1));
        let jump_ns = u128::from(jump_ms.unsigned_abs()) * 1_000_000 * u128::from(TRUE_RATE) / new;
        let now = self.now;
        let mut moved = 0u64;
        let mut events = std::mem::take(&mut self.queue).into_vec();
        for e in &mut events {
            let mine = matches!(e.kind, EventKind::Timer { node, .. } if node == i);
            if !mine || e.time <= now {
                continue;
            }
            let mut left = u128::from(e.time - now) * old / new;
            left = if jump_ms >= 0 {
                left.saturating_sub(jump_ns)
            } else {
                left + jump_ns
            };
            e.time = now.saturating_add(u64::try_from(left).unwrap_or(u64::MAX));
            moved += 1;
        }
        self.queue = events.into();
        if rate_pct == TRUE_RATE {
            self.clocks.rate_pct.remove(&i);
        } else {
            self.clocks.rate_pct.insert(i, rate_pct.max(1));
        }
        Ok(json!({"node": name, "rate_pct": rate_pct, "jump_ms": jump_ms, "timers_moved": moved}))
    }

    /// The final heal: every clock at the true rate; the nodes whose was not.
    /// Pending timers keep their times (the heal is not a jump).
    pub(super) fn reset_clocks(&mut self) -> Vec<String> {
        let was = std::mem::take(&mut self.clocks.rate_pct);
        was.into_keys()
            .map(|i| self.nodes[i].name.clone())
            .collect()
    }

    /// When node `name`'s earliest pending timer fires, ns (tests read it to see a
    /// jump move the node's timers).
    pub fn next_timer_ns(&self, name: &str) -> Option<u64> {
        let i = self.index(name).ok()?;
        (self.queue.iter())
            .filter(|e| matches!(e.kind, EventKind::Timer { node, .. } if node == i))
            .map(|e| e.time)
            .min()
    }

    /// Heartbeat timers node `name` has fired so far.
    pub fn heartbeats_fired(&self, name: &str) -> u64 {
        self.index(name)
            .map_or(0, |i| self.clocks.ticks.get(&i).copied().unwrap_or(0))
    }
}
