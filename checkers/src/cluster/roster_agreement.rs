//! `roster-agreement` (harness.md §7): every node derives the same roster at every
//! height, and each node's final `/status` matches the derived roster and epoch.

use std::collections::BTreeMap;

use serde_json::{json, Map};

use super::analysis::status_u64;
use super::{result, Analysis, ClusterRun, Finding, ROSTER};
use crate::oracle::wire::{Hash, NodeId, RosterEntry};
use crate::result::{CheckResult, Validity};

/// harness.md §7 `roster-agreement`.
pub(crate) fn check(run: &ClusterRun, an: &Analysis) -> CheckResult {
    let mut findings = an.findings_of(ROSTER);
    let max = an.replays.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut previous: Option<String> = None;
    for h in 1..=max {
        let mut groups: BTreeMap<Hash, Vec<&str>> = BTreeMap::new();
        for r in &an.replays {
            if h <= r.len() {
                groups
                    .entry(r.era_at(h).roster.hash())
                    .or_default()
                    .push(&r.name);
            }
        }
        if groups.len() > 1 {
            let desc: Vec<String> = groups
                .iter()
                .map(|(hash, ns)| format!("{} derive roster {}", ns.join(","), hash.short()))
                .collect();
            let desc = desc.join("; ");
            // One finding per stretch of heights with the same disagreement.
            if previous.as_deref() != Some(desc.as_str()) {
                let mut f = Finding::new(
                    ROSTER,
                    "roster-disagreement",
                    Validity::Invalid,
                    Some(h),
                    "",
                    format!("from height {h}: {desc}"),
                    json!({}),
                );
                f.nodes = groups.values().flatten().map(|s| s.to_string()).collect();
                findings.push(f);
            }
            previous = Some(desc);
        } else {
            previous = None;
        }
    }
    // Each node's final /status against the roster derived at its height + 1.
    for (n, own) in run.nodes.iter().zip(&an.replays) {
        let Some(status) = &n.status else { continue };
        let Some(height) = status_u64(status, "height") else {
            findings.push(Finding::new(
                ROSTER,
                "status-malformed",
                Validity::Unknown,
                None,
                &n.name,
                "final status has no numeric `height`".into(),
                json!({}),
            ));
            continue;
        };
        let reference = if height <= own.len() {
            Some(own)
        } else {
            an.canonical()
                .filter(|c| c.len() >= height)
                .or_else(|| an.replays.iter().find(|r| r.len() >= height))
        };
        let Some(reference) = reference else {
            findings.push(Finding::new(
                ROSTER,
                "status-beyond-chains",
                Validity::Unknown,
                None,
                &n.name,
                format!("final status is at height {height}, beyond every chain dump"),
                json!({}),
            ));
            continue;
        };
        let era = reference.era_at(height + 1);
        if let Some(r) = status.get("roster") {
            match serde_json::from_value::<Vec<RosterEntry>>(r.clone()) {
                Ok(entries) if entries.as_slice() == era.roster.entries() => {}
                Ok(entries) => findings.push(Finding::new(
                    ROSTER,
                    "status-roster-mismatch",
                    Validity::Invalid,
                    Some(height + 1),
                    &n.name,
                    format!(
                        "final status reports a roster of {} ({}) for height {} but the chain derives {} ({})",
                        entries.len(),
                        ids(entries.iter().map(|e| e.id)),
                        height + 1,
                        era.roster.len(),
                        ids(era.roster.entries().iter().map(|e| e.id)),
                    ),
                    json!({}),
                )),
                Err(e) => findings.push(Finding::new(
                    ROSTER,
                    "status-malformed",
                    Validity::Unknown,
                    None,
                    &n.name,
                    format!("final status `roster` is not a roster: {e}"),
                    json!({}),
                )),
            }
        }
        if let Some(epoch) = status_u64(status, "epoch") {
            if epoch != era.epoch {
                findings.push(Finding::new(
                    ROSTER,
                    "status-epoch-mismatch",
                    Validity::Invalid,
                    Some(height + 1),
                    &n.name,
                    format!(
                        "final status reports epoch {epoch} but the chain derives epoch {} for height {}",
                        era.epoch,
                        height + 1
                    ),
                    json!({}),
                ));
            }
        }
    }
    let mut details = Map::new();
    if let Some(c) = an.canonical() {
        details.insert(
            "eras".into(),
            json!(c
                .eras
                .iter()
                .map(|e| json!({
                    "from_height": e.from_height,
                    "epoch": e.epoch,
                    "roster": e.roster.entries().iter().map(|x| x.id.to_hex()).collect::<Vec<_>>(),
                }))
                .collect::<Vec<_>>()),
        );
    }
    result(
        ROSTER,
        findings,
        details,
        "every node derives the same roster at every height, matching each block's roster_hash and epoch".into(),
    )
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
