//! Replaying one node's chain dump from the genesis with the checker's own oracle
//! ([`crate::oracle`]): the roster, epoch and proposal window in force at every
//! height, and every per-block finding (links, proposers, certificates, roster
//! hashes, epochs, the eviction rule).
//!
//! Nothing rule-bearing comes from the node: the quorum, proposer rotation, AddNode
//! validity, roster changes and the eviction rule are the oracle's, so a bug in one
//! of the node's formulas is caught rather than copied.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::{Finding, AGREEMENT, EVICTION, ROSTER};
use crate::oracle::ledger::{Effect, Ledger};
use crate::oracle::membership::{Change, Era, Membership};
use crate::oracle::wire::{
    Block, Certificate, CommittedBlock, Genesis, Hash, NodeId, Verifier, DOMAIN_VOTE,
};
use crate::result::Validity;

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
    /// What the oracle's evaluation of protocol.md §5 says for this height.
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
    pub eras: Vec<Era>,
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
    pub fn era_at(&self, height: u64) -> &Era {
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

/// A node id or "null", for explanations.
pub fn show(id: Option<NodeId>) -> String {
    id.map(|i| i.short()).unwrap_or_else(|| "null".into())
}

/// Where the findings of one node's replay go.
struct Sink<'a> {
    name: &'a str,
    verifier: &'a Verifier,
    out: &'a mut Vec<Finding>,
}

impl Sink<'_> {
    fn push(&mut self, checker: &'static str, kind: &str, h: u64, why: String, extra: Value) {
        self.out.push(Finding::new(
            checker,
            kind,
            Validity::Invalid,
            Some(h),
            self.name,
            why,
            extra,
        ));
    }
}

/// The certificate a check expects: what it must certify, and under which era.
struct Expect<'a> {
    height: u64,
    block: &'a Hash,
    evict: Option<NodeId>,
    era: &'a Era,
    /// "cert" or "last_commit", for the findings.
    which: &'static str,
}

/// Checks one certificate against `want` (protocol.md §2: `q(n)` valid distinct
/// precommits from the roster of its epoch, all for the block and its `evict`).
/// Findings are reported at height `at`.
fn check_cert(cert: &Certificate, want: &Expect<'_>, at: u64, sink: &mut Sink<'_>) {
    let which = want.which;
    let push = |sink: &mut Sink<'_>, kind: &str, why: String| {
        sink.push(
            AGREEMENT,
            kind,
            at,
            format!("height {at} {which}: {why}"),
            json!({ "which": which }),
        )
    };
    let mismatches = [
        (cert.height != want.height).then(|| {
            format!(
                "certifies height {} instead of {}",
                cert.height, want.height
            )
        }),
        (&cert.block != want.block).then(|| {
            format!(
                "certifies block {} instead of {}",
                cert.block.short(),
                want.block.short()
            )
        }),
        (cert.epoch != want.era.epoch).then(|| {
            format!(
                "signed under epoch {} but the roster in force has epoch {}",
                cert.epoch, want.era.epoch
            )
        }),
        (cert.evict != want.evict).then(|| {
            format!(
                "precommits carry evict {} but the block's evict is {}",
                show(cert.evict),
                show(want.evict)
            )
        }),
    ];
    for why in mismatches.into_iter().flatten() {
        push(sink, "cert-mismatch", why);
    }
    let verifier = sink.verifier;
    let good = count_good_signatures(cert, want.era, verifier, &mut |kind, why| {
        push(sink, kind, why)
    });
    let q = want.era.roster.quorum();
    if good < q {
        push(
            sink,
            "too-few-signatures",
            format!(
                "{good} valid distinct signatures from the roster, quorum q({}) is {q}",
                want.era.roster.len()
            ),
        );
    }
}

/// Counts the distinct roster members whose precommit signature verifies,
/// reporting duplicates, outsiders and bad signatures.
fn count_good_signatures(
    cert: &Certificate,
    era: &Era,
    verifier: &Verifier,
    report: &mut dyn FnMut(&str, String),
) -> usize {
    let mut good = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for cs in &cert.sigs {
        let who = cs.validator.short();
        if !seen.insert(cs.validator) {
            report("duplicate-signer", format!("signer {who} appears twice"));
        } else if !era.roster.contains(&cs.validator) {
            report(
                "unknown-signer",
                format!("signer {who} is not in the roster of epoch {}", era.epoch),
            );
        } else if verifier.verify(
            &cs.validator,
            DOMAIN_VOTE,
            &cert.vote_of(cs.validator).sign_bytes(),
            &cs.sig,
        ) {
            good.insert(cs.validator);
        } else {
            report(
                "bad-signature",
                format!("signature of {who} does not verify"),
            );
        }
    }
    good.len()
}

/// The header checks of block `h` against the state the chain up to `h-1` left:
/// link, proposer rotation (protocol.md §1), epoch and roster hash (§4.2, §5).
fn check_header(b: &Block, h: u64, last_hash: &Hash, m: &Membership, sink: &mut Sink<'_>) {
    if &b.prev_hash != last_hash {
        sink.push(
            AGREEMENT,
            "broken-link",
            h,
            format!(
                "block {h} has prev_hash {} but the previous block's hash is {}",
                b.prev_hash.short(),
                last_hash.short()
            ),
            json!({}),
        );
    }
    let want = m.roster().proposer(h, b.round);
    if Some(b.proposer) != want {
        sink.push(
            AGREEMENT,
            "wrong-proposer",
            h,
            format!(
                "block {h} round {} proposed by {} but roster[(h + r) mod n] is {}",
                b.round,
                b.proposer.short(),
                show(want)
            ),
            json!({}),
        );
    }
    if b.epoch != m.epoch() {
        sink.push(
            ROSTER,
            "wrong-epoch",
            h,
            format!(
                "block {h} has epoch {} but the derived epoch is {}",
                b.epoch,
                m.epoch()
            ),
            json!({}),
        );
    }
    let roster_hash = m.roster().hash();
    if b.roster_hash != roster_hash {
        sink.push(
            ROSTER,
            "roster-hash-mismatch",
            h,
            format!(
                "block {h} has roster_hash {} but the roster derived from the genesis hashes to {}",
                b.roster_hash.short(),
                roster_hash.short()
            ),
            json!({}),
        );
    }
}

/// The block's `last_commit`: absent at height 1, else a certificate of block
/// `h-1` under the era of `h-1`. Returns its signers.
fn check_last_commit(
    b: &Block,
    h: u64,
    prev: Option<(&Hash, Option<NodeId>)>,
    m: &Membership,
    sink: &mut Sink<'_>,
) -> Option<Vec<NodeId>> {
    let extra = json!({"which": "last_commit"});
    match (&b.last_commit, prev) {
        (None, None) => None,
        (Some(_), None) => {
            let why = "block 1 carries a last_commit but there is no block 0 to certify";
            sink.push(AGREEMENT, "cert-mismatch", h, why.into(), extra);
            None
        }
        (None, Some(_)) => {
            let why = format!("block {h} carries no last_commit for height {}", h - 1);
            sink.push(AGREEMENT, "missing-last-commit", h, why, extra);
            None
        }
        (Some(lc), Some((hash, evict))) => {
            let want = Expect {
                height: h - 1,
                block: hash,
                evict,
                era: m.era_at(h - 1),
                which: "last_commit",
            };
            check_cert(lc, &want, h, sink);
            Some(lc.sigs.iter().map(|s| s.validator).collect())
        }
    }
}

/// Compares the block's `evict` with the oracle's rule for height `h`
/// (protocol.md §5: evaluated on the chain up to `h-1`).
fn check_evict(b: &Block, h: u64, expected: Option<NodeId>, m: &Membership, sink: &mut Sink<'_>) {
    if b.evict == expected {
        return;
    }
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
    let w = m.window();
    let counts: BTreeMap<String, u64> = m
        .roster()
        .entries()
        .iter()
        .map(|e| (e.id.to_hex(), w.count(&e.id)))
        .collect();
    let total = w.total();
    sink.push(
        EVICTION,
        kind,
        h,
        format!("{why} (window total {total}, n {}, counts {counts:?})", m.roster().len()),
        json!({"evict": b.evict.map(|x| x.to_hex()), "rule": expected.map(|x| x.to_hex()), "total": total, "counts": counts}),
    );
}

/// Replays `chain` from `genesis`, pushing every per-block finding into `out`.
pub(crate) fn replay(
    genesis: &Genesis,
    name: &str,
    chain: &[CommittedBlock],
    verifier: &Verifier,
    out: &mut Vec<Finding>,
) -> NodeReplay {
    let mut sink = Sink {
        name,
        verifier,
        out,
    };
    let mut ledger = Ledger::new(genesis);
    let mut heights: Vec<HeightRec> = Vec::with_capacity(chain.len());
    let mut last_hash = genesis.hash();
    for (i, cb) in chain.iter().enumerate() {
        let h = i as u64 + 1;
        let b = &cb.block;
        if b.height != h {
            let why = format!(
                "entry {i} of the chain dump holds height {} instead of {h}; replay stops here",
                b.height
            );
            sink.push(AGREEMENT, "dump-out-of-order", h, why, json!({}));
            break;
        }
        let hash = b.hash();
        let m = ledger.membership();
        let (expected, window_total, window_start) =
            (m.expected_evict(), m.window().total(), m.window().start());
        check_header(b, h, &last_hash, m, &mut sink);
        let want = Expect {
            height: h,
            block: &hash,
            evict: b.evict,
            era: m.current(),
            which: "cert",
        };
        check_cert(&cb.cert, &want, h, &mut sink);
        let prev = heights.last().map(|r| (&last_hash, r.evict));
        if let Some(signers) = check_last_commit(b, h, prev, m, &mut sink) {
            if let Some(p) = heights.last_mut() {
                p.later_signers = signers;
            }
        }
        check_evict(b, h, expected, m, &mut sink);
        let limit = u64::from(ledger.membership().genesis().params.max_block_txs);
        let (effects, change) = ledger.apply(h, b);
        check_txs(&effects, limit, h, &mut sink);
        report_bad_evict(&change, h, &mut sink);
        heights.push(HeightRec {
            hash,
            proposer: b.proposer,
            signers: cb.cert.sigs.iter().map(|s| s.validator).collect(),
            later_signers: Vec::new(),
            evict: b.evict,
            expected_evict: expected,
            window_total,
            window_start,
            added: change.added,
            evicted: change.evicted,
        });
        last_hash = hash;
    }
    let m = ledger.membership();
    NodeReplay {
        name: name.to_string(),
        heights,
        eras: m.eras().to_vec(),
        next_expected_evict: m.expected_evict(),
    }
}

/// protocol.md §3: a transaction id is committed once ("resubmitting the same id
/// never applies it twice"), and a block stays within `max_block_txs`.
fn check_txs(effects: &[(String, Effect)], limit: u64, h: u64, sink: &mut Sink<'_>) {
    let repeats: Vec<&str> = effects
        .iter()
        .filter(|(_, e)| *e == Effect::Duplicate)
        .map(|(id, _)| id.as_str())
        .collect();
    if !repeats.is_empty() {
        let shown: Vec<&str> = repeats.iter().take(10).copied().collect();
        let why = format!(
            "block {h} holds {} transaction(s) whose id was already committed: {}",
            repeats.len(),
            shown.join(", ")
        );
        sink.push(AGREEMENT, "duplicate-tx", h, why, json!({"tx_ids": shown}));
    }
    if effects.len() as u64 > limit {
        let why = format!(
            "block {h} holds {} transactions, more than max_block_txs {limit}",
            effects.len()
        );
        sink.push(AGREEMENT, "too-many-txs", h, why, json!({}));
    }
}

/// A block whose `evict` names a node outside the roster deletes nothing.
fn report_bad_evict(change: &Change, h: u64, sink: &mut Sink<'_>) {
    if let Some(x) = change.evict_not_member {
        let why = format!("block {h} evicts {} which is not in the roster", x.short());
        sink.push(EVICTION, "evict-not-in-roster", h, why, json!({}));
    }
}
