//! Replaying one node's chain dump from the genesis: the roster, epoch and
//! proposal window in force at every height, re-derived by the checker itself, and
//! every per-block finding (links, certificates, roster hashes, the eviction rule).
//!
//! Signature checking and the AddNode checks reuse the node's primitives
//! ([`Verifier`], [`check_add_node`], [`Roster`]); the eviction rule of protocol.md
//! §5 is re-implemented here ([`eviction_rule`]) so that a bug in the node's own rule
//! is caught rather than copied.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rollcall_node_core::chain::check_add_node;
use rollcall_node_core::crypto::{Hash, NodeId, Verifier};
use rollcall_node_core::roster::Roster;
use rollcall_node_core::types::{
    Certificate, CommittedBlock, Genesis, Params, TxBody, DOMAIN_VOTE,
};
use serde_json::json;

use super::{Finding, AGREEMENT, EVICTION, ROSTER};
use crate::result::Validity;

/// One roster and the first height it governs, as the checker derived it.
#[derive(Debug, Clone)]
pub struct DerivedEra {
    /// First height it governs.
    pub from_height: u64,
    /// Its epoch (protocol.md §1: +1 per membership change).
    pub epoch: u64,
    /// The roster.
    pub roster: Roster,
}

/// What the checker derived about one height of one node's chain.
#[derive(Debug, Clone)]
pub struct HeightRec {
    /// The block's hash.
    pub hash: Hash,
    /// The block's proposer.
    pub proposer: NodeId,
    /// Signers of the block's own certificate.
    pub signers: Vec<NodeId>,
    /// Signers of the precommits for this height carried in the next block's
    /// `last_commit` (filled when the next block is replayed).
    pub later_signers: Vec<NodeId>,
    /// The block's `evict` field.
    pub evict: Option<NodeId>,
    /// What the checker's own evaluation of protocol.md §5 says for this height.
    pub expected_evict: Option<NodeId>,
    /// Blocks in the proposal window before this height.
    pub window_total: u64,
    /// First height in that window (meaningless when the window is empty).
    pub window_start: u64,
    /// Nodes that AddNode transactions of this block added.
    pub added: Vec<NodeId>,
    /// The node this block's eviction removed.
    pub evicted: Option<NodeId>,
}

/// A node's chain replayed from the genesis.
#[derive(Debug, Clone)]
pub struct NodeReplay {
    /// The node's name ("n1").
    pub name: String,
    /// Heights 1..=len that could be replayed (a dump that is out of order stops
    /// the replay at the first bad entry).
    pub heights: Vec<HeightRec>,
    /// Every roster of the chain, in order; never empty.
    pub eras: Vec<DerivedEra>,
    /// The rule's answer for the height after the last one.
    pub next_expected_evict: Option<NodeId>,
}

impl NodeReplay {
    /// Last replayed height.
    pub fn len(&self) -> u64 {
        self.heights.len() as u64
    }

    /// True when nothing could be replayed.
    pub fn is_empty(&self) -> bool {
        self.heights.is_empty()
    }

    /// The era in force at `height`; meaningful for `1..=len()+1`.
    pub fn era_at(&self, height: u64) -> &DerivedEra {
        let i = self.eras.partition_point(|e| e.from_height <= height);
        &self.eras[i.saturating_sub(1)]
    }

    /// The record of `height` (1-based).
    pub fn at(&self, height: u64) -> Option<&HeightRec> {
        height
            .checked_sub(1)
            .and_then(|i| self.heights.get(i as usize))
    }
}

/// The eviction rule of protocol.md §5, written independently of the node's:
/// with `total >= eviction_total` and `n - 1 >= min_roster`, the candidates are the
/// entries whose `count × n × den < total × num`; the abnormal node is the candidate
/// with the smallest count, ties to the lowest roster number.
pub fn eviction_rule(
    counts: &BTreeMap<NodeId, u64>,
    total: u64,
    roster: &Roster,
    params: &Params,
) -> Option<NodeId> {
    let n = roster.entries().len() as u64;
    if total < params.eviction_total || n < 1 || n - 1 < u64::from(params.min_roster) {
        return None;
    }
    let mut best: Option<(u64, u32, NodeId)> = None;
    for e in roster.entries() {
        let count = counts.get(&e.id).copied().unwrap_or(0);
        let lhs = u128::from(count) * u128::from(n) * u128::from(params.eviction_ratio_den);
        let rhs = u128::from(total) * u128::from(params.eviction_ratio_num);
        if lhs >= rhs {
            continue;
        }
        let better = match best {
            None => true,
            Some((c, num, _)) => count < c || (count == c && e.number < num),
        };
        if better {
            best = Some((count, e.number, e.id));
        }
    }
    best.map(|(_, _, id)| id)
}

/// The proposal window of protocol.md §5: the proposers of the last
/// `eviction_total` blocks since the last membership change, with their heights.
#[derive(Debug, Default)]
struct Window {
    blocks: VecDeque<(u64, NodeId)>,
    counts: BTreeMap<NodeId, u64>,
}

impl Window {
    fn push(&mut self, height: u64, proposer: NodeId, cap: u64) {
        self.blocks.push_back((height, proposer));
        *self.counts.entry(proposer).or_insert(0) += 1;
        while self.blocks.len() as u64 > cap {
            if let Some((_, old)) = self.blocks.pop_front() {
                if let Some(c) = self.counts.get_mut(&old) {
                    *c = c.saturating_sub(1);
                }
            }
        }
    }

    fn total(&self) -> u64 {
        self.blocks.len() as u64
    }

    fn start(&self) -> u64 {
        self.blocks.front().map(|b| b.0).unwrap_or(0)
    }
}

/// Checks one certificate for `height` and `block` under `era` (protocol.md §2:
/// `q(n)` valid distinct signatures from the roster of its epoch). `which` names
/// the field ("cert" or "last_commit") in the findings.
#[allow(clippy::too_many_arguments)]
fn check_cert(
    cert: &Certificate,
    height: u64,
    block: &Hash,
    evict: Option<NodeId>,
    era: &DerivedEra,
    which: &str,
    at: u64,
    node: &str,
    verifier: &Verifier,
    out: &mut Vec<Finding>,
) {
    let mut push = |kind: &str, explanation: String| {
        out.push(Finding::new(
            AGREEMENT,
            kind,
            Validity::Invalid,
            Some(at),
            node,
            format!("height {at} {which}: {explanation}"),
            json!({ "which": which }),
        ));
    };
    if cert.height != height {
        push(
            "cert-mismatch",
            format!("certifies height {} instead of {height}", cert.height),
        );
    }
    if &cert.block != block {
        push(
            "cert-mismatch",
            format!(
                "certifies block {} instead of {}",
                cert.block.short(),
                block.short()
            ),
        );
    }
    if cert.epoch != era.epoch {
        push(
            "cert-mismatch",
            format!(
                "signed under epoch {} but the roster in force has epoch {}",
                cert.epoch, era.epoch
            ),
        );
    }
    if cert.evict != evict {
        push(
            "cert-mismatch",
            format!(
                "precommits carry evict {} but the block's evict is {}",
                show(cert.evict),
                show(evict)
            ),
        );
    }
    let mut good = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for cs in &cert.sigs {
        if !seen.insert(cs.validator) {
            push(
                "duplicate-signer",
                format!("signer {} appears twice", cs.validator.short()),
            );
            continue;
        }
        if !era.roster.contains(&cs.validator) {
            push(
                "unknown-signer",
                format!(
                    "signer {} is not in the roster of epoch {}",
                    cs.validator.short(),
                    era.epoch
                ),
            );
            continue;
        }
        let vote = cert.vote_of(cs.validator);
        if verifier.verify(&cs.validator, DOMAIN_VOTE, &vote.sign_bytes(), &cs.sig) {
            good.insert(cs.validator);
        } else {
            push(
                "bad-signature",
                format!("signature of {} does not verify", cs.validator.short()),
            );
        }
    }
    let q = era.roster.quorum();
    if good.len() < q {
        push(
            "too-few-signatures",
            format!(
                "{} valid distinct signatures from the roster, quorum q({}) is {q}",
                good.len(),
                era.roster.len()
            ),
        );
    }
}

/// A node id or "null", for explanations.
pub fn show(id: Option<NodeId>) -> String {
    id.map(|i| i.short()).unwrap_or_else(|| "null".into())
}

/// Replays `chain` from `genesis`, pushing every per-block finding into `out`.
pub(crate) fn replay(
    genesis: &Genesis,
    name: &str,
    chain: &[CommittedBlock],
    verifier: &Verifier,
    out: &mut Vec<Finding>,
) -> NodeReplay {
    let params = &genesis.params;
    let mut roster = Roster::new(genesis.roster.clone());
    let mut epoch = 0u64;
    let mut eras = vec![DerivedEra {
        from_height: 1,
        epoch,
        roster: roster.clone(),
    }];
    let mut window = Window::default();
    let mut heights: Vec<HeightRec> = Vec::with_capacity(chain.len());
    let mut last_hash = genesis.hash();
    for (i, cb) in chain.iter().enumerate() {
        let h = i as u64 + 1;
        let b = &cb.block;
        if b.height != h {
            out.push(Finding::new(
                AGREEMENT,
                "dump-out-of-order",
                Validity::Invalid,
                Some(h),
                name,
                format!(
                    "entry {i} of the chain dump holds height {} instead of {h}; replay stops here",
                    b.height
                ),
                json!({}),
            ));
            break;
        }
        let hash = b.hash();
        let era = eras[eras.len() - 1].clone();
        if b.prev_hash != last_hash {
            out.push(Finding::new(
                AGREEMENT,
                "broken-link",
                Validity::Invalid,
                Some(h),
                name,
                format!(
                    "block {h} has prev_hash {} but the previous block's hash is {}",
                    b.prev_hash.short(),
                    last_hash.short()
                ),
                json!({}),
            ));
        }
        let want_proposer = roster.proposer(h, b.round);
        if b.proposer != want_proposer {
            out.push(Finding::new(
                AGREEMENT,
                "wrong-proposer",
                Validity::Invalid,
                Some(h),
                name,
                format!(
                    "block {h} round {} proposed by {} but roster[(h + r) mod n] is {}",
                    b.round,
                    b.proposer.short(),
                    want_proposer.short()
                ),
                json!({}),
            ));
        }
        if b.epoch != epoch {
            out.push(Finding::new(
                ROSTER,
                "wrong-epoch",
                Validity::Invalid,
                Some(h),
                name,
                format!(
                    "block {h} has epoch {} but the derived epoch is {epoch}",
                    b.epoch
                ),
                json!({}),
            ));
        }
        if b.roster_hash != roster.hash() {
            out.push(Finding::new(
                ROSTER,
                "roster-hash-mismatch",
                Validity::Invalid,
                Some(h),
                name,
                format!(
                    "block {h} has roster_hash {} but the roster derived from the genesis hashes to {}",
                    b.roster_hash.short(),
                    roster.hash().short()
                ),
                json!({}),
            ));
        }
        check_cert(
            &cb.cert, h, &hash, b.evict, &era, "cert", h, name, verifier, out,
        );
        match (&b.last_commit, h) {
            (None, 1) => {}
            (Some(_), 1) => out.push(Finding::new(
                AGREEMENT,
                "cert-mismatch",
                Validity::Invalid,
                Some(1),
                name,
                "block 1 carries a last_commit but there is no block 0 to certify".into(),
                json!({"which": "last_commit"}),
            )),
            (None, _) => out.push(Finding::new(
                AGREEMENT,
                "missing-last-commit",
                Validity::Invalid,
                Some(h),
                name,
                format!("block {h} carries no last_commit for height {}", h - 1),
                json!({"which": "last_commit"}),
            )),
            (Some(lc), _) => {
                let prev_era = if eras.len() >= 2 && era.from_height == h {
                    eras[eras.len() - 2].clone()
                } else {
                    era.clone()
                };
                let prev_evict = heights.last().and_then(|r| r.evict);
                check_cert(
                    lc,
                    h - 1,
                    &last_hash,
                    prev_evict,
                    &prev_era,
                    "last_commit",
                    h,
                    name,
                    verifier,
                    out,
                );
                if let Some(prev) = heights.last_mut() {
                    prev.later_signers = lc.sigs.iter().map(|s| s.validator).collect();
                }
            }
        }
        // protocol.md §5: the rule for h is evaluated from the chain up to h-1.
        let expected = eviction_rule(&window.counts, window.total(), &roster, params);
        let window_total = window.total();
        let window_start = window.start();
        if b.evict != expected {
            let (kind, why) = match (b.evict, expected) {
                (Some(x), None) => (
                    "eviction-not-allowed",
                    format!("block {h} evicts {} but the rule names nobody", x.short()),
                ),
                (None, Some(y)) => (
                    "missed-eviction",
                    format!(
                        "the rule names {} at height {h} but the block's evict is null",
                        y.short()
                    ),
                ),
                (x, y) => (
                    "wrong-eviction",
                    format!(
                        "block {h} evicts {} but the rule names {}",
                        show(x),
                        show(y)
                    ),
                ),
            };
            let counts: BTreeMap<String, u64> = roster
                .entries()
                .iter()
                .map(|e| {
                    (
                        e.id.to_hex(),
                        window.counts.get(&e.id).copied().unwrap_or(0),
                    )
                })
                .collect();
            out.push(Finding::new(
                EVICTION,
                kind,
                Validity::Invalid,
                Some(h),
                name,
                format!(
                    "{why} (window total {window_total}, n {}, counts {counts:?})",
                    roster.len()
                ),
                json!({"evict": b.evict.map(|x| x.to_hex()), "rule": expected.map(|x| x.to_hex()), "total": window_total, "counts": counts}),
            ));
        }
        // Apply: AddNode transactions in order, then the proposer, then the eviction
        // (protocol.md §4.2, §5).
        let mut added = Vec::new();
        for tx in &b.txs {
            if let TxBody::AddNode { req, sig } = &tx.body {
                if check_add_node(genesis, &roster, req, sig.as_ref()).is_ok() {
                    roster.add(req.id, req.addr.clone());
                    added.push(req.id);
                }
            }
        }
        window.push(h, b.proposer, params.eviction_total);
        let mut evicted = None;
        if let Some(x) = b.evict {
            if roster.remove(&x) {
                evicted = Some(x);
            } else {
                out.push(Finding::new(
                    EVICTION,
                    "evict-not-in-roster",
                    Validity::Invalid,
                    Some(h),
                    name,
                    format!("block {h} evicts {} which is not in the roster", x.short()),
                    json!({}),
                ));
            }
        }
        let changes = added.len() as u64 + u64::from(evicted.is_some());
        if changes > 0 {
            epoch += changes;
            window = Window::default();
            eras.push(DerivedEra {
                from_height: h + 1,
                epoch,
                roster: roster.clone(),
            });
        }
        heights.push(HeightRec {
            hash,
            proposer: b.proposer,
            signers: cb.cert.sigs.iter().map(|s| s.validator).collect(),
            later_signers: Vec::new(),
            evict: b.evict,
            expected_evict: expected,
            window_total,
            window_start,
            added,
            evicted,
        });
        last_hash = hash;
    }
    let next_expected_evict = eviction_rule(&window.counts, window.total(), &roster, params);
    NodeReplay {
        name: name.to_string(),
        heights,
        eras,
        next_expected_evict,
    }
}
