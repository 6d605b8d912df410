//! `liveness` (harness.md §7): after the final `heal-all` a client operation
//! completes `ok` within the bound and the alive roster members' chains grew.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::analysis::status_u64;
use super::{is_client, result, Analysis, ClusterRun, Finding, Nemesis, LIVENESS};
use crate::history::OpType;
use crate::result::{CheckResult, Validity};
use rollcall_history::Phase;

/// The committed heights the history shows (nemesis `height` fields and client
/// completions that carry one), as (time, highest height shown by then), read in one
/// pass so the final heal and every fault window look it up rather than rescan.
struct KnownHeights(Vec<(u64, u64)>);

impl KnownHeights {
    fn new(run: &ClusterRun) -> KnownHeights {
        let mut v: Vec<(u64, u64)> = (run.history.events().iter())
            .filter(|e| e.kind != OpType::Invoke && e.kind != OpType::Fail)
            .filter_map(|e| {
                let h = (e.extra.get("height").and_then(Value::as_u64))
                    .or_else(|| e.value.get("height").and_then(Value::as_u64))?;
                Some((e.time, h))
            })
            .collect();
        v.sort_by_key(|(t, _)| *t);
        let mut top = 0;
        for (_, h) in v.iter_mut() {
            top = top.max(*h);
            *h = top;
        }
        KnownHeights(v)
    }

    /// The largest committed height shown at or before `t`, if any.
    fn at(&self, t: u64) -> Option<u64> {
        let i = self.0.partition_point(|(x, _)| *x <= t);
        i.checked_sub(1).map(|i| self.0[i].1)
    }
}

/// harness.md §7 `liveness`.
pub(crate) fn check(run: &ClusterRun, an: &Analysis) -> CheckResult {
    let mut findings = Vec::new();
    let mut details = Map::new();
    let bound = run.liveness_bound_ns;
    details.insert("bound_ns".into(), json!(bound));
    let Some(heal) = an.nemesis.iter().rev().find(|e| e.phase == Phase::HealAll) else {
        let why = "the history has no heal-all nemesis event".into();
        let f = Finding::new(
            LIVENESS,
            "no-heal-all",
            Validity::Unknown,
            None,
            "",
            why,
            json!({}),
        );
        return result(LIVENESS, vec![f], details, String::new());
    };
    details.insert("heal_time".into(), json!(heal.time));
    let gsts = (run.fault_timing.as_ref()).map_or_else(Vec::new, |t| super::gst::points(an, t));
    let bound = super::gst::heal_bound(run, &gsts, heal.time);
    details.insert("bound_ns".into(), json!(bound));
    let recovery = check_recovery(run, heal, bound, &mut findings);
    details.insert("recovery_ns".into(), json!(recovery));
    let heights = KnownHeights::new(run);
    let known = heights.at(heal.time);
    details.insert("height_at_heal".into(), json!(known));
    let finals = check_growth(run, an, known, &mut findings);
    details.insert("final_heights".into(), json!(finals));
    let during = super::fault_windows::check(run, an, |t| heights.at(t), &gsts, &mut findings);
    details.insert("during_faults".into(), during);
    if !gsts.is_empty() {
        let after = super::gst::check(run, an, &gsts, |t| heights.at(t), &mut findings);
        details.insert("after_gst".into(), after);
    }
    result(
        LIVENESS,
        findings,
        details,
        format!(
            "the cluster committed again {} ns after the final heal (bound {bound} ns)",
            recovery.unwrap_or(0)
        ),
    )
}

/// A client op completes `ok` within the bound after the heal; returns how long
/// after the heal the first one did.
fn check_recovery(
    run: &ClusterRun,
    heal: &Nemesis,
    bound: u64,
    findings: &mut Vec<Finding>,
) -> Option<u64> {
    let t = heal.time;
    let client: Vec<_> = run
        .history
        .ops()
        .iter()
        .filter(|o| is_client(o.process))
        .collect();
    let first_ok = client
        .iter()
        .filter(|o| o.kind == OpType::Ok)
        .filter_map(|o| {
            o.complete_time
                .filter(|&c| c >= t)
                .map(|c| (c, o.invoke_index))
        })
        .min();
    match first_ok {
        Some((c, _)) if c - t <= bound => {}
        Some((c, i)) => {
            let why = format!(
                "the first client op to complete ok after the heal did so {} ns after it, beyond the bound {bound} ns",
                c - t
            );
            let f = Finding::new(
                LIVENESS,
                "slow-recovery",
                Validity::Invalid,
                None,
                "",
                why,
                json!({}),
            );
            findings.push(f.with_ops(vec![heal.index, i]));
        }
        None => {
            let after: Vec<u64> = client
                .iter()
                .filter(|o| o.invoke_time >= t || o.complete_time.is_none_or(|c| c >= t))
                .map(|o| o.invoke_index)
                .collect();
            let (kind, severity, why) = no_recovery(run, t, bound, &after);
            let mut ops = vec![heal.index];
            ops.extend(after.iter().take(20));
            findings.push(
                Finding::new(LIVENESS, kind, severity, None, "", why, json!({})).with_ops(ops),
            );
        }
    }
    first_ok.map(|(c, _)| c - t)
}

/// Why nothing completed ok after the heal at `t`, given the client ops that ran
/// after it: none ran or the history ended too soon (unknown), or they all
/// failed to commit (invalid).
fn no_recovery(
    run: &ClusterRun,
    t: u64,
    bound: u64,
    after: &[u64],
) -> (&'static str, Validity, String) {
    let last_time = run
        .history
        .events()
        .iter()
        .map(|e| e.time)
        .max()
        .unwrap_or(0);
    if after.is_empty() {
        let why = "no client operation ran after the heal".to_string();
        ("no-client-ops-after-heal", Validity::Unknown, why)
    } else if last_time.saturating_sub(t) < bound {
        let why = format!(
            "nothing completed ok after the heal, but the history ends {} ns after it, before the bound",
            last_time.saturating_sub(t)
        );
        ("history-too-short", Validity::Unknown, why)
    } else {
        let why = format!(
            "{} client operations ran after the heal and none completed ok",
            after.len()
        );
        ("no-commit-after-heal", Validity::Invalid, why)
    }
}

/// The alive roster members' chains grew past the height `known` at the heal;
/// returns every node's final height.
fn check_growth(
    run: &ClusterRun,
    an: &Analysis,
    known: Option<u64>,
    findings: &mut Vec<Finding>,
) -> BTreeMap<String, u64> {
    let final_roster = an.canonical().map(|c| c.era_at(c.len() + 1).roster.clone());
    let mut finals = BTreeMap::new();
    for (n, r) in run.nodes.iter().zip(&an.replays) {
        let status_h = n.status.as_ref().and_then(|s| status_u64(s, "height"));
        let h = r.len().max(status_h.unwrap_or(0));
        finals.insert(n.name.clone(), h);
        let member = match (an.ids.get(&n.name), &final_roster) {
            (Some(id), Some(roster)) => roster.contains(id),
            _ => true,
        };
        if let Some(k) = known.filter(|&k| n.alive && member && h <= k) {
            let why = format!(
                "alive roster member ends at height {h}, not past height {k} known at the heal"
            );
            let kind = "node-stalled-after-heal";
            findings.push(Finding::new(
                LIVENESS,
                kind,
                Validity::Invalid,
                Some(h),
                &n.name,
                why,
                json!({}),
            ));
        }
    }
    finals
}

#[cfg(test)]
mod tests {
    use crate::cluster::fixture::*;
    use crate::cluster::*;
    use crate::history::History;
    use crate::result::Validity;

    #[test]
    fn no_commit_after_heal_is_caught() {
        let mut run = standard();
        run.history = history("fail", 40, &[]);
        assert_caught(&run, LIVENESS, "no-commit-after-heal", None);
        // Without a heal-all the verdict is unknown.
        let text: String = run
            .history
            .to_jsonl()
            .lines()
            .filter(|l| !l.contains("heal-all"))
            .map(|l| format!("{l}\n"))
            .collect();
        run.history = History::parse_jsonl(&text).expect("history");
        let r = by_name(&check_cluster(&run), LIVENESS).clone();
        assert_eq!(r.validity, Validity::Unknown);
    }

    #[test]
    fn stalled_alive_node_is_caught() {
        let mut run = standard();
        // n2 alive but its chain stopped at height 2, before the height 3 known at the heal.
        run.nodes[1].chain.truncate(2);
        assert_caught(&run, LIVENESS, "node-stalled-after-heal", Some(2));
    }
}
