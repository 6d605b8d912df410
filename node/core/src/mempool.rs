//! Pending transactions in arrival order, deduplicated by id, bounded in count and
//! bytes (issue 14: a full mempool answers 503, never grows).

use crate::types::{validate_tx, Tx, MAX_BLOCK_TX_BYTES};
use std::collections::{BTreeMap, HashMap};

/// Transactions waiting for a block.
#[derive(Debug)]
pub struct Mempool {
    by_seq: BTreeMap<u64, (Tx, usize)>,
    seq_of: HashMap<String, u64>,
    next: u64,
    bytes: usize,
    limit: usize,
}

impl Default for Mempool {
    fn default() -> Self {
        Self::with_limit(MEMPOOL_LIMIT)
    }
}

/// Most transactions kept: beyond it new ones are refused (back-pressure, 503).
pub const MEMPOOL_LIMIT: usize = 100_000;
/// Most encoded transaction bytes kept (64 blocks' worth).
pub const MEMPOOL_BYTES: usize = 64 * MAX_BLOCK_TX_BYTES;

/// Why a transaction was not added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Its id is already pending.
    Duplicate,
    /// The pool is at its count or byte bound.
    Full,
    /// It fails [`validate_tx`] (callers validate first; this is the backstop).
    Invalid,
}

impl Mempool {
    /// An empty pool that keeps at most `limit` transactions (an operator setting,
    /// like CometBFT's `mempool.size`; the byte bound stays [`MEMPOOL_BYTES`]).
    pub fn with_limit(limit: usize) -> Self {
        Mempool {
            by_seq: BTreeMap::new(),
            seq_of: HashMap::new(),
            next: 0,
            bytes: 0,
            limit,
        }
    }

    /// Adds `tx` unless its id is already pending, it is invalid, or the pool is full.
    pub fn insert(&mut self, tx: Tx) -> Result<(), Refused> {
        if self.seq_of.contains_key(&tx.id) {
            return Err(Refused::Duplicate);
        }
        let size = validate_tx(&tx).map_err(|_| Refused::Invalid)?;
        if self.by_seq.len() >= self.limit || self.bytes + size > MEMPOOL_BYTES {
            return Err(Refused::Full);
        }
        self.seq_of.insert(tx.id.clone(), self.next);
        self.by_seq.insert(self.next, (tx, size));
        self.next += 1;
        self.bytes += size;
        Ok(())
    }

    /// Whether `id` is pending.
    pub fn contains(&self, id: &str) -> bool {
        self.seq_of.contains_key(id)
    }

    /// The oldest transactions up to `max` of them and [`MAX_BLOCK_TX_BYTES`] in all
    /// (they stay until committed): a block its peers accept (issue 14).
    pub fn reap(&self, max: usize) -> Vec<Tx> {
        let mut bytes = 0;
        self.by_seq
            .values()
            .take(max)
            .take_while(|(_, size)| {
                bytes += size;
                bytes <= MAX_BLOCK_TX_BYTES
            })
            .map(|(tx, _)| tx.clone())
            .collect()
    }

    /// Forgets a committed transaction.
    pub fn remove(&mut self, id: &str) {
        if let Some(seq) = self.seq_of.remove(id) {
            if let Some((_, size)) = self.by_seq.remove(&seq) {
                self.bytes -= size;
            }
        }
    }

    /// Number pending.
    pub fn len(&self) -> usize {
        self.by_seq.len()
    }

    /// Encoded bytes pending.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Op, TxBody};

    fn tx(i: usize, key_len: usize) -> Tx {
        Tx {
            id: format!("t{i}"),
            body: TxBody::Kv(vec![Op::Write("k".repeat(key_len), 1); 64]),
        }
    }

    #[test]
    fn reap_stops_at_the_block_byte_budget_and_insert_refuses_invalid() {
        let mut m = Mempool::default();
        for i in 0..100 {
            m.insert(tx(i, 256)).unwrap();
        }
        let reaped = m.reap(4000);
        let total: usize = reaped.iter().map(|t| validate_tx(t).unwrap()).sum();
        assert!(total <= MAX_BLOCK_TX_BYTES && reaped.len() < 100, "{total}");
        assert_eq!(m.insert(tx(0, 1)), Err(Refused::Duplicate));
        assert_eq!(m.insert(tx(1000, 257)), Err(Refused::Invalid));
        let before = m.bytes();
        m.remove("t0");
        assert!(m.bytes() < before);
    }

    #[test]
    fn a_pool_at_its_count_limit_refuses_until_one_leaves() {
        let mut m = Mempool::with_limit(3);
        for i in 0..3 {
            m.insert(tx(i, 1)).unwrap();
        }
        assert_eq!(m.insert(tx(3, 1)), Err(Refused::Full));
        assert_eq!(m.len(), 3);
        m.remove("t1");
        assert_eq!(m.insert(tx(3, 1)), Ok(()));
    }
}
