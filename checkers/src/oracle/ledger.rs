//! The full chain replay: the membership ([`Membership`]) plus the KV application
//! ([`Kv`]) and the outcome of every transaction (protocol.md §3), from which the
//! `set` checker learns which transactions took effect.
//!
//! A transaction id takes effect at most once (protocol.md §3: "resubmitting the
//! same id never applies it twice"): a later occurrence of a committed id is not
//! executed and is reported as [`Effect::Duplicate`].

use std::collections::{BTreeMap, HashSet};

use super::add_node::Rejection;
use super::kv::Kv;
use super::membership::{Change, Membership};
use super::wire::{Block, CommittedBlock, Genesis, OpResult, TxBody, Verifier};

/// What one transaction of a block did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A KV transaction that executed, with its per-op results.
    Kv(Vec<OpResult>),
    /// A KV transaction aborted by a type error: nothing applied.
    KvAborted(String),
    /// An AddNode that changed the roster.
    Added,
    /// An AddNode that was rejected.
    AddRejected(Rejection),
    /// The id was already committed: not executed again.
    Duplicate,
}

impl Effect {
    /// Whether the transaction changed the state. A KV transaction made only of
    /// `cas` ops none of which applied changed nothing (the register workload
    /// records it as `fail`, harness.md §6).
    pub fn took_effect(&self) -> bool {
        match self {
            Effect::Kv(results) => {
                results.is_empty()
                    || !results
                        .iter()
                        .all(|r| matches!(r, OpResult::Cas { applied: false, .. }))
            }
            Effect::Added => true,
            Effect::KvAborted(_) | Effect::AddRejected(_) | Effect::Duplicate => false,
        }
    }
}

/// The state derived from the genesis and the committed blocks so far.
#[derive(Clone)]
pub struct Ledger {
    membership: Membership,
    kv: Kv,
    committed: HashSet<String>,
    verifier: Verifier,
}

impl Ledger {
    /// The state at height 0.
    pub fn new(genesis: &Genesis) -> Ledger {
        Ledger {
            membership: Membership::new(genesis),
            kv: Kv::default(),
            committed: HashSet::new(),
            verifier: Verifier::new(),
        }
    }

    /// The membership state (roster, epoch, window).
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The KV state.
    pub fn kv(&self) -> &Kv {
        &self.kv
    }

    /// Commits `block` at `height`: every transaction's id and effect, in order,
    /// and the membership change.
    pub fn apply(&mut self, height: u64, block: &Block) -> (Vec<(String, Effect)>, Change) {
        let stale: Vec<bool> = block
            .txs
            .iter()
            .map(|tx| !self.committed.insert(tx.id.clone()))
            .collect();
        let change = self.membership.apply(height, block, &self.verifier, &|i| {
            stale.get(i).copied().unwrap_or(true)
        });
        let mut adds = change.adds.iter().cloned().collect::<BTreeMap<_, _>>();
        let mut out = Vec::with_capacity(block.txs.len());
        for (i, tx) in block.txs.iter().enumerate() {
            let effect = if stale[i] {
                Effect::Duplicate
            } else {
                match &tx.body {
                    TxBody::Kv(ops) => match self.kv.execute(ops) {
                        Ok(results) => Effect::Kv(results),
                        Err(e) => Effect::KvAborted(e),
                    },
                    TxBody::AddNode { .. } => match adds.remove(&i) {
                        Some(Ok(_)) => Effect::Added,
                        Some(Err(r)) => Effect::AddRejected(r),
                        None => Effect::Duplicate,
                    },
                }
            };
            out.push((tx.id.clone(), effect));
        }
        (out, change)
    }
}

/// How often each transaction id of `chain` took effect or appeared again after
/// its commit (the `set` checker's input, harness.md §7): 1 for every id that took
/// effect, plus 1 for every later occurrence of a committed id, so that a
/// duplicate shows; an id that changed nothing (rejected, aborted, or only `cas`
/// ops that did not apply) counts 0.
pub fn tx_counts(genesis: &Genesis, chain: &[CommittedBlock]) -> BTreeMap<String, usize> {
    let mut ledger = Ledger::new(genesis);
    let mut counts = BTreeMap::new();
    for (i, cb) in chain.iter().enumerate() {
        let (effects, _) = ledger.apply(i as u64 + 1, &cb.block);
        for (id, effect) in effects {
            if effect.took_effect() || effect == Effect::Duplicate {
                *counts.entry(id).or_insert(0) += 1;
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::wire::{Certificate, Hash, Op, Params, Tx};

    fn genesis() -> Genesis {
        Genesis {
            chain_id: "c".into(),
            roster: Vec::new(),
            operators: Vec::new(),
            params: Params::default(),
        }
    }

    fn kv(id: &str, ops: Vec<Op>) -> Tx {
        Tx {
            id: id.into(),
            body: TxBody::Kv(ops),
        }
    }

    fn committed(txs: Vec<Tx>) -> CommittedBlock {
        let block = Block {
            height: 1,
            round: 0,
            epoch: 0,
            prev_hash: Hash::default(),
            proposer: Hash::default(),
            roster_hash: Hash::default(),
            txs,
            evict: None,
            last_commit: None,
        };
        let cert = Certificate {
            epoch: 0,
            height: 1,
            round: 0,
            block: block.hash(),
            evict: None,
            sigs: Vec::new(),
        };
        CommittedBlock { block, cert }
    }

    #[test]
    fn counts_what_took_effect_and_every_repeat() {
        let chain = vec![
            committed(vec![
                kv("w", vec![Op::Write("x".into(), 1)]),
                kv("cas-no", vec![Op::Cas("x".into(), 5, 6)]),
                kv("cas-yes", vec![Op::Cas("x".into(), 1, 2)]),
                kv("aborted", vec![Op::Append("x".into(), 1)]),
                kv("read", vec![Op::Read("x".into())]),
            ]),
            committed(vec![
                kv("w", vec![Op::Write("x".into(), 9)]),
                kv("w", vec![Op::Write("x".into(), 10)]),
                kv("cas-no", vec![Op::Write("x".into(), 11)]),
            ]),
        ];
        let counts = tx_counts(&genesis(), &chain);
        let want: BTreeMap<String, usize> = [("w", 3), ("cas-yes", 1), ("read", 1), ("cas-no", 1)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(counts, want);
        // The repeats were not executed: x is still 2.
        let mut l = Ledger::new(&genesis());
        for (i, cb) in chain.iter().enumerate() {
            l.apply(i as u64 + 1, &cb.block);
        }
        assert_eq!(l.kv().get("x"), Some(&crate::oracle::wire::Value::Int(2)));
    }
}
