//! The `equivocation` checker (issue 13): no honest validator ever signs two
//! different votes, or two different proposals, for the same height, round and
//! step — including across its own crashes and restarts, which is exactly what a
//! lost or corrupted signing state would cause (protocol.md §6). It sees a
//! double-sign directly, before it becomes a fork (Tendermint's "duplicate vote
//! evidence"; the node's own rule lives in `node/core/src/consensus/sign_state.rs`).
//!
//! Its input is every signed proposal and vote the simulated network carried, as
//! [`SignedRecord`]s. Validators that are Byzantine by design (a duplicate-key twin
//! shares its original's key; a Byzantine nemesis marks its node) are excluded.

use crate::result::{Anomaly, CheckResult, Validity};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// What a signature is for: the step of `(height, round, step)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignedStep {
    /// A block proposal.
    Proposal,
    /// A prevote.
    Prevote,
    /// A precommit.
    Precommit,
}

/// One signed message as the network carried it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SignedRecord {
    /// The signer's node id (hex).
    pub signer: String,
    /// Height.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// Step.
    pub step: SignedStep,
    /// SHA-256 (hex) of the exact signed bytes: two records with the same view
    /// and different digests are two different signatures.
    pub digest: String,
    /// What was signed, for people: a block hash prefix or "nil".
    pub value: String,
    /// Simulated time it was first sent, ns.
    pub time_ns: u64,
    /// The node that sent it.
    pub node: String,
}

/// The checker's name in results.
pub const NAME: &str = "equivocation";

/// Checks `records`, ignoring the signers in `byzantine` (node ids, hex). `None`
/// records (a backend that cannot see signed messages) is `unknown`.
pub fn check(records: Option<&[SignedRecord]>, byzantine: &BTreeSet<String>) -> CheckResult {
    let start = std::time::Instant::now();
    let Some(records) = records else {
        return result(
            Validity::Unknown,
            "this backend does not record signed messages".into(),
            vec![],
            json!({}),
            start,
        );
    };
    let mut views: BTreeMap<(&str, u64, u32, SignedStep), BTreeMap<&str, &SignedRecord>> =
        BTreeMap::new();
    for r in records.iter().filter(|r| !byzantine.contains(&r.signer)) {
        let view = (r.signer.as_str(), r.height, r.round, r.step);
        let by_digest = views.entry(view).or_default();
        // Keep the earliest sighting of each distinct signature.
        let e = by_digest.entry(r.digest.as_str()).or_insert(r);
        if r.time_ns < e.time_ns {
            *e = r;
        }
    }
    let anomalies: Vec<Anomaly> = views
        .iter()
        .filter(|(_, d)| d.len() > 1)
        .map(|((signer, h, r, step), d)| {
            let both: Vec<&SignedRecord> = d.values().copied().collect();
            let values: Vec<String> = both
                .iter()
                .map(|x| format!("{} (sent by {} at {} ns)", x.value, x.node, x.time_ns))
                .collect();
            Anomaly {
                kind: "double-sign".into(),
                explanation: format!(
                    "validator {} signed {} different {:?}s at height {h} round {r}: {}",
                    short(signer),
                    both.len(),
                    step,
                    values.join(" vs ")
                ),
                ops: vec![],
                extra: json!(both),
            }
        })
        .collect();
    let signers: BTreeSet<&str> = views.keys().map(|k| k.0).collect();
    let details = json!({
        "signatures": records.len(),
        "views": views.len(),
        "signers": signers.len(),
        "excluded": byzantine,
    });
    if anomalies.is_empty() {
        let s = format!(
            "no honest validator signed twice for one view ({} signed views of {} signers)",
            views.len(),
            signers.len()
        );
        result(Validity::Valid, s, anomalies, details, start)
    } else {
        let s = format!("{} double-signed views", anomalies.len());
        result(Validity::Invalid, s, anomalies, details, start)
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn result(
    validity: Validity,
    summary: String,
    anomalies: Vec<Anomaly>,
    details: serde_json::Value,
    start: std::time::Instant,
) -> CheckResult {
    CheckResult {
        checker: NAME.into(),
        validity,
        summary,
        anomalies,
        details,
        elapsed_ms: start.elapsed().as_secs_f64() * 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(signer: &str, h: u64, step: SignedStep, digest: &str, t: u64) -> SignedRecord {
        SignedRecord {
            signer: signer.into(),
            height: h,
            round: 0,
            step,
            digest: digest.into(),
            value: format!("block {digest}"),
            time_ns: t,
            node: "n1".into(),
        }
    }

    fn honest() -> Vec<SignedRecord> {
        vec![
            rec("aa", 1, SignedStep::Proposal, "p1", 1),
            rec("aa", 1, SignedStep::Prevote, "v1", 2),
            // The same signature seen twice (a re-send) is not an equivocation.
            rec("aa", 1, SignedStep::Prevote, "v1", 3),
            rec("aa", 1, SignedStep::Precommit, "c1", 4),
            rec("bb", 1, SignedStep::Prevote, "v2", 2),
            rec("aa", 2, SignedStep::Prevote, "v3", 5),
        ]
    }

    #[test]
    fn an_honest_record_is_valid() {
        let r = check(Some(&honest()), &BTreeSet::new());
        assert_eq!(r.validity, Validity::Valid, "{r:?}");
    }

    #[test]
    fn a_planted_double_sign_is_caught() {
        let mut recs = honest();
        // After a restart that forgot its signing state, aa prevotes again for
        // height 1 round 0, differently.
        recs.push(rec("aa", 1, SignedStep::Prevote, "v9", 10));
        let r = check(Some(&recs), &BTreeSet::new());
        assert_eq!(r.validity, Validity::Invalid);
        assert_eq!(r.anomalies.len(), 1);
        assert!(r.anomalies[0].explanation.contains("height 1 round 0"));
        // A double proposal is caught too.
        let mut recs = honest();
        recs.push(rec("bb", 3, SignedStep::Proposal, "x", 1));
        recs.push(rec("bb", 3, SignedStep::Proposal, "y", 2));
        assert_eq!(
            check(Some(&recs), &BTreeSet::new()).validity,
            Validity::Invalid
        );
    }

    #[test]
    fn byzantine_by_design_signers_are_excluded() {
        let mut recs = honest();
        recs.push(rec("aa", 1, SignedStep::Prevote, "v9", 10));
        let byz = BTreeSet::from(["aa".to_string()]);
        assert_eq!(check(Some(&recs), &byz).validity, Validity::Valid);
    }

    #[test]
    fn no_records_is_unknown() {
        assert_eq!(check(None, &BTreeSet::new()).validity, Validity::Unknown);
    }
}
