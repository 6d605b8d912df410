//! The roster replay: from the genesis, block by block, the roster, epoch and
//! proposal window in force at every height (protocol.md §4.2, §5).
//!
//! Committing block `h` applies its AddNode transactions in order (each judged by
//! [`add_node::check`] against the roster as the earlier ones left it), records its
//! proposer in the window, then deletes its `evict` node. Every add and every
//! delete is one membership change: the epoch grows by one per change, the window
//! is reset, and the new roster governs `h+1`.

use super::add_node::{self, Rejection, UsedNonces};
use super::eviction::ProposalWindow;
use super::roster::Roster;
use super::wire::{AddNode, Block, Genesis, NodeId, Sig, TxBody, Verifier};

/// Decides whether an AddNode applies: [`add_node::check`] in the oracle; tests
/// substitute a wrong rule to model a node with that bug.
pub type Admission = fn(
    &Genesis,
    &Roster,
    &UsedNonces,
    &AddNode,
    Option<&Sig>,
    &Verifier,
) -> Result<NodeId, Rejection>;

/// One roster and the first height it governs.
#[derive(Debug, Clone)]
pub struct Era {
    /// First height it governs.
    pub from_height: u64,
    /// Its epoch (protocol.md §1: +1 per membership change).
    pub epoch: u64,
    /// The roster.
    pub roster: Roster,
}

/// What committing one block changed in the membership.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// The outcome of every AddNode of the block: its index in `txs`, and the
    /// added id or the reason it was rejected.
    pub adds: Vec<(usize, Result<NodeId, Rejection>)>,
    /// The nodes added, in order.
    pub added: Vec<NodeId>,
    /// The node deleted by the block's `evict`.
    pub evicted: Option<NodeId>,
    /// The block's `evict` named a node outside the roster (nothing deleted).
    pub evict_not_member: Option<NodeId>,
}

/// The membership state after the last replayed block.
#[derive(Clone)]
pub struct Membership {
    genesis: Genesis,
    eras: Vec<Era>,
    window: ProposalWindow,
    used: UsedNonces,
    admit: Admission,
}

impl Membership {
    /// The state at height 0: the genesis roster, epoch 0, an empty window.
    pub fn new(genesis: &Genesis) -> Membership {
        Membership {
            eras: vec![Era {
                from_height: 1,
                epoch: 0,
                roster: Roster::new(genesis.roster.clone()),
            }],
            genesis: genesis.clone(),
            window: ProposalWindow::default(),
            used: UsedNonces::new(),
            admit: add_node::check,
        }
    }

    /// Like [`Membership::new`] with another AddNode rule (to model a node bug).
    pub fn with_admission(genesis: &Genesis, admit: Admission) -> Membership {
        Membership {
            admit,
            ..Membership::new(genesis)
        }
    }

    /// The genesis the replay started from.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Every era so far, in order; never empty.
    pub fn eras(&self) -> &[Era] {
        &self.eras
    }

    /// The era that governs the next height.
    pub fn current(&self) -> &Era {
        // `eras` is never empty: `new` pushes the genesis era.
        &self.eras[self.eras.len() - 1]
    }

    /// The era in force at `height` (meaningful for 1..=next height).
    pub fn era_at(&self, height: u64) -> &Era {
        let i = self.eras.partition_point(|e| e.from_height <= height);
        &self.eras[i.saturating_sub(1)]
    }

    /// The roster that governs the next height.
    pub fn roster(&self) -> &Roster {
        &self.current().roster
    }

    /// The epoch of the next height.
    pub fn epoch(&self) -> u64 {
        self.current().epoch
    }

    /// The proposal window (protocol.md §5).
    pub fn window(&self) -> &ProposalWindow {
        &self.window
    }

    /// The rule of protocol.md §5 for the next height.
    pub fn expected_evict(&self) -> Option<NodeId> {
        self.window.abnormal(self.roster(), &self.genesis.params)
    }

    /// Commits `block` (at height `height`), whatever it holds: the caller checks
    /// it; this only derives what follows from it. `stale(i)` says that transaction
    /// `i` repeats an id committed before, so it is not executed (protocol.md §3).
    pub fn apply(
        &mut self,
        height: u64,
        block: &Block,
        verifier: &Verifier,
        stale: &dyn Fn(usize) -> bool,
    ) -> Change {
        let mut change = Change::default();
        let mut roster = self.roster().clone();
        for (i, tx) in block.txs.iter().enumerate() {
            let TxBody::AddNode { req, sig } = &tx.body else {
                continue;
            };
            if stale(i) {
                continue;
            }
            let verdict = (self.admit)(
                &self.genesis,
                &roster,
                &self.used,
                req,
                sig.as_ref(),
                verifier,
            );
            if let Ok(operator) = verdict {
                self.used.insert((operator, req.nonce));
                roster.add(req.id, req.addr.clone());
                change.added.push(req.id);
            }
            change.adds.push((i, verdict.map(|_| req.id)));
        }
        self.window
            .push(height, block.proposer, self.genesis.params.eviction_total);
        if let Some(x) = block.evict {
            if roster.remove(&x) {
                change.evicted = Some(x);
            } else {
                change.evict_not_member = Some(x);
            }
        }
        let changes = change.added.len() as u64 + u64::from(change.evicted.is_some());
        if changes > 0 {
            self.window = ProposalWindow::default();
            let epoch = self.epoch() + changes;
            self.eras.push(Era {
                from_height: height + 1,
                epoch,
                roster,
            });
        }
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::wire::{Hash, Keypair, Params, RosterEntry, Tx, DOMAIN_ADD_NODE};

    fn key(i: u8) -> Keypair {
        Keypair::from_secret([i; 32])
    }

    fn genesis() -> Genesis {
        Genesis {
            chain_id: "c".into(),
            roster: (1..=4)
                .map(|i| RosterEntry {
                    number: 0,
                    id: key(i).id(),
                    addr: format!("n{i}:1"),
                })
                .collect(),
            operators: vec![key(200).id()],
            params: Params {
                eviction_total: 4,
                ..Params::default()
            },
        }
    }

    fn add(i: u8, nonce: u64, signed: bool) -> Tx {
        let req = AddNode {
            id: key(i).id(),
            addr: format!("n{i}:1"),
            nonce,
        };
        let sig = signed.then(|| key(200).sign(DOMAIN_ADD_NODE, &req.sign_bytes("c")));
        Tx {
            id: format!("add-{i}-{nonce}"),
            body: TxBody::AddNode { req, sig },
        }
    }

    fn block(h: u64, proposer: u8, txs: Vec<Tx>, evict: Option<u8>) -> Block {
        Block {
            height: h,
            round: 0,
            epoch: 0,
            prev_hash: Hash::default(),
            proposer: key(proposer).id(),
            roster_hash: Hash::default(),
            txs,
            evict: evict.map(|i| key(i).id()),
            last_commit: None,
        }
    }

    fn ids(r: &Roster) -> Vec<u8> {
        r.entries()
            .iter()
            .map(|e| (1..=60).find(|&i| key(i).id() == e.id).unwrap_or(0))
            .collect()
    }

    #[test]
    fn every_change_is_one_epoch_and_resets_the_window() {
        let v = Verifier::new();
        let mut m = Membership::new(&genesis());
        let none = |_| false;
        for h in 1..=3 {
            m.apply(h, &block(h, 1, vec![], None), &v, &none);
        }
        assert_eq!(m.window().total(), 3);
        // Two adds in one block: +2, numbered n+1 and n+2; an unsigned one and a
        // replayed nonce do nothing.
        let txs = vec![
            add(5, 1, true),
            add(6, 2, true),
            add(7, 3, false),
            add(8, 1, true),
        ];
        let c = m.apply(4, &block(4, 1, txs, None), &v, &none);
        assert_eq!(c.added, [key(5).id(), key(6).id()]);
        assert_eq!(c.adds[2].1, Err(Rejection::Unsigned));
        assert!(matches!(
            c.adds[3].1,
            Err(Rejection::NonceReused { nonce: 1, .. })
        ));
        assert_eq!((m.epoch(), ids(m.roster())), (2, vec![1, 2, 3, 4, 5, 6]));
        assert_eq!(m.window().total(), 0, "reset on the change");
        assert_eq!(m.era_at(4).epoch, 0);
        assert_eq!(m.era_at(5).epoch, 2);
        // An eviction renumbers; one of a non-member deletes nothing.
        let c = m.apply(5, &block(5, 2, vec![], Some(3)), &v, &none);
        assert_eq!(c.evicted, Some(key(3).id()));
        assert_eq!((m.epoch(), ids(m.roster())), (3, vec![1, 2, 4, 5, 6]));
        assert_eq!(m.roster().entries()[2].number, 3);
        let c = m.apply(6, &block(6, 2, vec![], Some(3)), &v, &none);
        assert_eq!(c.evict_not_member, Some(key(3).id()));
        assert_eq!(m.epoch(), 3);
        // A stale (already committed) AddNode is not executed.
        let c = m.apply(7, &block(7, 2, vec![add(9, 9, true)], None), &v, &|_| true);
        assert!(c.adds.is_empty() && c.added.is_empty());
        assert_eq!(m.eras().len(), 3);
    }
}
