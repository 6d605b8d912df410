//! `eviction` (harness.md §7, protocol.md §5): the oracle's rule against every
//! block's `evict` (found by the replay), each node's reported `abnormal`, and the
//! fate of every `fail-node` victim.

use serde_json::{json, Map, Value};

use super::analysis::{event_id, status_u64};
use super::replay::show;
use super::{result, Analysis, ClusterRun, Finding, EVICTION};
use crate::oracle::wire::NodeId;
use crate::result::{CheckResult, Validity};

/// harness.md §7 `eviction`, protocol.md §5: the per-height comparison of the rule
/// with each block's `evict` (done in the replay), each node's reported `abnormal`,
/// and the fate of every `fail-node` victim.
pub(crate) fn check(run: &ClusterRun, an: &Analysis) -> CheckResult {
    let mut findings = an.findings_of(EVICTION);
    let params = &run.genesis.params;
    for (n, own) in run.nodes.iter().zip(&an.replays) {
        let Some(status) = &n.status else { continue };
        if status_u64(status, "height") != Some(own.len()) {
            continue;
        }
        let Some(reported) = status.get("abnormal") else {
            continue;
        };
        let reported = match reported {
            Value::Null => None,
            Value::String(s) => NodeId::from_hex(s).ok(),
            _ => None,
        };
        if reported != own.next_expected_evict {
            findings.push(Finding::new(
                EVICTION,
                "status-abnormal-mismatch",
                Validity::Invalid,
                Some(own.len() + 1),
                &n.name,
                format!(
                    "final status names {} as abnormal for height {} but the rule names {}",
                    show(reported),
                    own.len() + 1,
                    show(own.next_expected_evict)
                ),
                json!({}),
            ));
        }
    }
    let mut victims = Vec::new();
    if let Some(c) = an.canonical() {
        for e in an.nemesis.iter().filter(|e| e.f == "fail-node") {
            if e.phase.as_deref() == Some("stop") {
                continue;
            }
            let name = e.node.clone().unwrap_or_default();
            let Some(v) = event_id(an, e) else {
                findings.push(
                    Finding::new(
                        EVICTION,
                        "fail-node-victim-unknown",
                        Validity::Unknown,
                        None,
                        &name,
                        "fail-node event names no node id, and no status maps its name to one"
                            .into(),
                        json!({}),
                    )
                    .with_ops(vec![e.index]),
                );
                continue;
            };
            // The victim's last sign of life: a proposal or a precommit in the chain.
            let last_seen = c
                .heights
                .iter()
                .enumerate()
                .filter(|(_, r)| {
                    r.proposer == v || r.signers.contains(&v) || r.later_signers.contains(&v)
                })
                .map(|(i, _)| i as u64 + 1)
                .max()
                .unwrap_or(0);
            let evicted_at = c
                .heights
                .iter()
                .enumerate()
                .filter(|(_, r)| r.evicted == Some(v))
                .map(|(i, _)| i as u64 + 1)
                .next_back();
            let required_at = c
                .heights
                .iter()
                .enumerate()
                .find(|(_, r)| r.expected_evict == Some(v))
                .map(|(i, _)| i as u64 + 1);
            let window_full_after = |min_ok: bool| {
                (1..=c.len()).find(|&h| {
                    let (Some(r), era) = (c.at(h), c.era_at(h)) else {
                        return false;
                    };
                    let n = era.roster.len() as u64;
                    r.window_total >= params.eviction_total
                        && r.window_total > 0
                        && r.window_start > last_seen
                        && era.roster.contains(&v)
                        && ((n.saturating_sub(1) >= u64::from(params.min_roster)) == min_ok)
                })
            };
            let verdict;
            if let Some(h) = evicted_at.filter(|&h| h >= last_seen) {
                verdict = json!({"node": name, "id": v.to_hex(), "evicted_at": h, "last_seen": last_seen});
            } else if let Some(h) = required_at {
                verdict = json!({"node": name, "id": v.to_hex(), "required_at": h, "last_seen": last_seen});
                findings.push(
                    Finding::new(
                        EVICTION,
                        "victim-not-evicted",
                        Validity::Invalid,
                        Some(h),
                        &name,
                        format!(
                            "fail-node victim {} (last seen at height {last_seen}) is named by the rule at height {h} but never evicted",
                            v.short()
                        ),
                        json!({"id": v.to_hex()}),
                    )
                    .with_ops(vec![e.index]),
                );
            } else if let Some(h) = window_full_after(false) {
                verdict = json!({"node": name, "id": v.to_hex(), "min_roster_forbids_at": h, "last_seen": last_seen});
            } else {
                let other = window_full_after(true);
                verdict = json!({"node": name, "id": v.to_hex(), "last_seen": last_seen, "final_height": c.len()});
                findings.push(
                    Finding::new(
                        EVICTION,
                        "victim-eviction-unknown",
                        Validity::Unknown,
                        None,
                        &name,
                        match other {
                            Some(h) => format!(
                                "fail-node victim {} was not evicted: at height {h} the rule named another silent node first and the chain did not go on long enough afterwards",
                                v.short()
                            ),
                            None => format!(
                                "not enough blocks after the failure to require eviction: victim {} last seen at height {last_seen}, chain ends at {}, eviction_total {}",
                                v.short(),
                                c.len(),
                                params.eviction_total
                            ),
                        },
                        json!({"id": v.to_hex()}),
                    )
                    .with_ops(vec![e.index]),
                );
            }
            victims.push(verdict);
        }
    }
    let mut details = Map::new();
    if let Some(c) = an.canonical() {
        let evictions: Vec<Value> = c
            .heights
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                r.evicted
                    .map(|x| json!({"height": i + 1, "id": x.to_hex()}))
            })
            .collect();
        details.insert("evictions".into(), json!(evictions));
        details.insert("heights_checked".into(), json!(c.len()));
    }
    details.insert("fail_node_victims".into(), json!(victims));
    result(
        EVICTION,
        findings,
        details,
        "every block's evict field equals the rule of protocol.md §5, recomputed at every height"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::cluster::fixture::*;
    use crate::cluster::*;
    use crate::result::Validity;

    #[test]
    fn eviction_the_rule_does_not_allow_is_caught() {
        let b = build_chain(&mut |h, blk| {
            if h == 20 {
                blk.evict = Some(key(2).id());
            }
        });
        let run = run_of(&b, history("ok", 30, &[]));
        assert_caught(&run, EVICTION, "eviction-not-allowed", Some(20));
        assert_valid_except(&run, &[EVICTION]);
    }

    #[test]
    fn missed_eviction_is_caught() {
        let b = build_chain(&mut |h, blk| {
            if h == 12 {
                blk.evict = None;
            }
        });
        let run = run_of(&b, history("ok", 30, &[]));
        assert_caught(&run, EVICTION, "missed-eviction", Some(12));
        let r = by_name(&check_cluster(&run), EVICTION).clone();
        assert_eq!(r.anomalies.len(), 1, "{r:#?}");
        // The node's rule fired again at 13, so the victim is evicted after all.
        assert_eq!(r.details["fail_node_victims"][0]["evicted_at"], json!(13));
        assert_valid_except(&run, &[EVICTION]);
    }

    #[test]
    fn fail_node_victim_unknown_when_the_chain_is_short() {
        let mut run = standard();
        for n in &mut run.nodes {
            n.chain.truncate(10);
            n.status = None;
        }
        let r = by_name(&check_cluster(&run), EVICTION).clone();
        assert_eq!(r.validity, Validity::Unknown, "{r:#?}");
        assert!(has(&r, "victim-eviction-unknown", None));
    }
}
