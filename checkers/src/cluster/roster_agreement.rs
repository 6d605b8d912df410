//! `roster-agreement` (harness.md §7): every node derives the same roster at every
//! height, and each node's final `/status` matches the derived roster and epoch.

use serde_json::{json, Map, Value};

use super::analysis::status_u64;
use super::{result, Analysis, ClusterRun, Finding, NodeReplay, ROSTER};
use crate::oracle::membership::Era;
use crate::oracle::wire::{NodeId, RosterEntry};
use crate::result::{CheckResult, Validity};

/// harness.md §7 `roster-agreement`.
pub(crate) fn check(run: &ClusterRun, an: &Analysis) -> CheckResult {
    let mut findings = an.findings_of(ROSTER);
    disagreements(an, &mut findings);
    for (n, own) in run.nodes.iter().zip(&an.replays) {
        if let Some(status) = &n.status {
            check_status(&n.name, status, own, an, &mut findings);
        }
    }
    let mut details = Map::new();
    if let Some(c) = an.canonical() {
        details.insert("eras".into(), eras_detail(c));
    }
    result(
        ROSTER,
        findings,
        details,
        "every node derives the same roster at every height, matching each block's roster_hash and epoch".into(),
    )
}

/// Heights at which nodes derive different rosters: one finding per stretch of
/// heights with the same disagreement.
fn disagreements(an: &Analysis, findings: &mut Vec<Finding>) {
    let mut previous: Option<String> = None;
    for h in 1..=an.max_height() {
        let groups = an.groups_at(h, |r| r.era_at(h).roster.hash());
        if groups.len() <= 1 {
            previous = None;
            continue;
        }
        let desc: Vec<String> = groups
            .iter()
            .map(|(hash, ns)| format!("{} derive roster {}", ns.join(","), hash.short()))
            .collect();
        let desc = desc.join("; ");
        if previous.as_deref() != Some(desc.as_str()) {
            let why = format!("from height {h}: {desc}");
            let mut f = finding("roster-disagreement", Validity::Invalid, Some(h), "", why);
            f.nodes = groups.values().flatten().map(|s| s.to_string()).collect();
            findings.push(f);
        }
        previous = Some(desc);
    }
}

fn finding(kind: &str, v: Validity, h: Option<u64>, node: &str, why: String) -> Finding {
    Finding::new(ROSTER, kind, v, h, node, why, json!({}))
}

/// A node's final `/status` against the roster and epoch derived for the height
/// after its own (from its chain, or a longer one when its dump is shorter).
fn check_status(
    name: &str,
    status: &Value,
    own: &NodeReplay,
    an: &Analysis,
    findings: &mut Vec<Finding>,
) {
    let Some(height) = status_u64(status, "height") else {
        let why = "final status has no numeric `height`".into();
        findings.push(finding(
            "status-malformed",
            Validity::Unknown,
            None,
            name,
            why,
        ));
        return;
    };
    let reference = if height <= own.len() {
        Some(own)
    } else {
        an.canonical()
            .filter(|c| c.len() >= height)
            .or_else(|| an.replays.iter().find(|r| r.len() >= height))
    };
    let Some(reference) = reference else {
        let why = format!("final status is at height {height}, beyond every chain dump");
        findings.push(finding(
            "status-beyond-chains",
            Validity::Unknown,
            None,
            name,
            why,
        ));
        return;
    };
    let era = reference.era_at(height + 1);
    if let Some(r) = status.get("roster") {
        compare_roster(name, r, era, height + 1, findings);
    }
    if let Some(epoch) = status_u64(status, "epoch").filter(|e| *e != era.epoch) {
        let why = format!(
            "final status reports epoch {epoch} but the chain derives epoch {} for height {}",
            era.epoch,
            height + 1
        );
        let kind = "status-epoch-mismatch";
        findings.push(finding(
            kind,
            Validity::Invalid,
            Some(height + 1),
            name,
            why,
        ));
    }
}

/// A status `roster` against the derived roster of height `at`.
fn compare_roster(name: &str, reported: &Value, era: &Era, at: u64, findings: &mut Vec<Finding>) {
    match serde_json::from_value::<Vec<RosterEntry>>(reported.clone()) {
        Ok(entries) if entries.as_slice() == era.roster.entries() => {}
        Ok(entries) => {
            let why = format!(
                "final status reports a roster of {} ({}) for height {at} but the chain derives {} ({})",
                entries.len(),
                ids(entries.iter().map(|e| e.id)),
                era.roster.len(),
                ids(era.roster.entries().iter().map(|e| e.id)),
            );
            let kind = "status-roster-mismatch";
            findings.push(finding(kind, Validity::Invalid, Some(at), name, why));
        }
        Err(e) => {
            let why = format!("final status `roster` is not a roster: {e}");
            findings.push(finding(
                "status-malformed",
                Validity::Unknown,
                None,
                name,
                why,
            ));
        }
    }
}

/// Every era of a replay, for `details`.
fn eras_detail(c: &NodeReplay) -> Value {
    json!(c
        .eras
        .iter()
        .map(|e| json!({
            "from_height": e.from_height,
            "epoch": e.epoch,
            "roster": e.roster.entries().iter().map(|x| x.id.to_hex()).collect::<Vec<_>>(),
        }))
        .collect::<Vec<_>>())
}

fn ids(it: impl Iterator<Item = NodeId>) -> String {
    it.map(|i| i.short()).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::cluster::fixture::*;
    use crate::cluster::*;
    use crate::oracle::wire::Bytes32;

    #[test]
    fn roster_hash_mismatch_is_caught() {
        let b = build_chain(&mut |h, blk| {
            if h == 16 {
                blk.roster_hash = Bytes32([7; 32]);
            }
        });
        let run = run_of(&b, history("ok", 30, &[]));
        assert_caught(&run, ROSTER, "roster-hash-mismatch", Some(16));
        assert_valid_except(&run, &[ROSTER]);
    }

    #[test]
    fn status_roster_mismatch_is_caught() {
        let mut run = standard();
        if let Some(s) = run.nodes[0].status.as_mut() {
            s["roster"] = json!([entry(1), entry(2), entry(3)]);
        }
        assert_caught(&run, ROSTER, "status-roster-mismatch", Some(31));
    }
}
