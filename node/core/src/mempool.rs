//! Pending transactions in arrival order, deduplicated by id.

use crate::types::Tx;
use std::collections::{BTreeMap, HashMap};

/// Transactions waiting for a block.
#[derive(Debug, Default)]
pub struct Mempool {
    by_seq: BTreeMap<u64, Tx>,
    seq_of: HashMap<String, u64>,
    next: u64,
}

/// Most transactions kept: beyond it new ones are refused (back-pressure, 503).
pub const MEMPOOL_LIMIT: usize = 100_000;

impl Mempool {
    /// Adds `tx` unless its id is already pending. Returns whether it was added.
    pub fn insert(&mut self, tx: Tx) -> bool {
        if self.seq_of.contains_key(&tx.id) || self.by_seq.len() >= MEMPOOL_LIMIT {
            return false;
        }
        self.seq_of.insert(tx.id.clone(), self.next);
        self.by_seq.insert(self.next, tx);
        self.next += 1;
        true
    }

    /// Whether `id` is pending.
    pub fn contains(&self, id: &str) -> bool {
        self.seq_of.contains_key(id)
    }

    /// The oldest `max` transactions (they stay until committed).
    pub fn reap(&self, max: usize) -> Vec<Tx> {
        self.by_seq.values().take(max).cloned().collect()
    }

    /// Forgets a committed transaction.
    pub fn remove(&mut self, id: &str) {
        if let Some(seq) = self.seq_of.remove(id) {
            self.by_seq.remove(&seq);
        }
    }

    /// Number pending.
    pub fn len(&self) -> usize {
        self.by_seq.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }
}
