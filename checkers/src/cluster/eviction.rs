//! `eviction` (harness.md §7, protocol.md §5): the oracle's rule against every
//! block's `evict` (found by the replay), each node's reported `abnormal`, and the
//! fate of every `fail-node` victim.

use serde_json::{json, Map, Value};

use super::analysis::{event_id, status_u64};
use super::replay::show;
use super::{result, Analysis, ClusterRun, Finding, Nemesis, NodeReplay, EVICTION};
use crate::oracle::wire::{NodeId, Params};
use crate::result::{CheckResult, Validity};
use rollcall_history::Phase;

/// harness.md §7 `eviction`, protocol.md §5: the per-height comparison of the rule
/// with each block's `evict` (done in the replay), each node's reported `abnormal`,
/// and the fate of every `fail-node` victim.
pub(crate) fn check(run: &ClusterRun, an: &Analysis) -> CheckResult {
    let mut findings = an.findings_of(EVICTION);
    for (n, own) in run.nodes.iter().zip(&an.replays) {
        if let Some(status) = &n.status {
            check_abnormal(&n.name, status, own, &mut findings);
            check_role(&n.name, status, own, an.ids.get(&n.name), &mut findings);
        }
    }
    let mut victims = Vec::new();
    let mut details = Map::new();
    if let Some(c) = an.canonical() {
        for e in an.nemesis.iter().filter(|e| e.fault == "fail-node") {
            if e.phase != Phase::Stop {
                victims.extend(judge_victim(run, an, c, e, &mut findings));
            }
        }
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

/// A node's final `/status` `abnormal` against the rule for its next height (only
/// when the status and the dump are at the same height).
fn check_abnormal(name: &str, status: &Value, own: &NodeReplay, findings: &mut Vec<Finding>) {
    if status_u64(status, "height") != Some(own.len()) {
        return;
    }
    let reported = match status.get("abnormal") {
        None => return,
        Some(Value::String(s)) => NodeId::from_hex(s).ok(),
        Some(_) => None,
    };
    if reported != own.next_expected_evict {
        let why = format!(
            "final status names {} as abnormal for height {} but the rule names {}",
            show(reported),
            own.len() + 1,
            show(own.next_expected_evict)
        );
        let (kind, h) = ("status-abnormal-mismatch", Some(own.len() + 1));
        findings.push(Finding::new(
            EVICTION,
            kind,
            Validity::Invalid,
            h,
            name,
            why,
            json!({}),
        ));
    }
}

/// protocol.md §5: a running node that an eviction deleted (and no AddNode brought
/// back) says `role: "evicted"` in its final `/status`; no other node does, and a
/// node outside the roster is never a `validator`. Judged on the node's own chain,
/// when its status is at the height of its dump.
fn check_role(
    name: &str,
    status: &Value,
    own: &NodeReplay,
    id: Option<&NodeId>,
    findings: &mut Vec<Finding>,
) {
    let (Some(id), Some(role)) = (id, status.get("role").and_then(Value::as_str)) else {
        return;
    };
    if status_u64(status, "height") != Some(own.len()) {
        return;
    }
    let last = |hit: &dyn Fn(&super::replay::HeightRec) -> bool| {
        own.heights
            .iter()
            .zip(1u64..)
            .filter(|(r, _)| hit(r))
            .map(|(_, h)| h)
            .last()
    };
    let evicted = last(&|r| r.evicted == Some(*id));
    let added = last(&|r| r.added.contains(id));
    let member = own.era_at(own.len() + 1).roster.contains(id);
    let deleted = !member && evicted.is_some_and(|e| added.is_none_or(|a| a < e));
    let fits = match role {
        "evicted" => deleted,
        "validator" => member,
        _ => !deleted,
    };
    if !fits {
        let why = format!(
            "final status says role {role:?} at height {} but the chain {}",
            own.len(),
            match (member, deleted) {
                (true, _) => "has it in the roster".to_string(),
                (false, true) => format!("evicted it at height {}", evicted.unwrap_or(0)),
                (false, false) => "has it outside the roster without evicting it".to_string(),
            }
        );
        let (kind, h) = ("status-role-mismatch", Some(own.len() + 1));
        findings.push(Finding::new(
            EVICTION,
            kind,
            Validity::Invalid,
            h,
            name,
            why,
            json!({}),
        ));
    }
}

/// What the canonical chain says about one `fail-node` victim.
struct VictimFacts {
    /// Its last proposal or precommit in the chain (0: never).
    last_seen: u64,
    /// The last height that evicted it.
    evicted_at: Option<u64>,
    /// The first height at which the rule named it.
    required_at: Option<u64>,
}

impl VictimFacts {
    fn of(c: &NodeReplay, v: NodeId) -> VictimFacts {
        let heights = || c.heights.iter().zip(1u64..);
        VictimFacts {
            last_seen: heights()
                .filter(|(r, _)| {
                    r.proposer == v || r.signers.contains(&v) || r.later_signers.contains(&v)
                })
                .map(|(_, h)| h)
                .max()
                .unwrap_or(0),
            evicted_at: heights()
                .filter(|(r, _)| r.evicted == Some(v))
                .map(|(_, h)| h)
                .last(),
            required_at: heights()
                .find(|(r, _)| r.expected_evict == Some(v))
                .map(|(_, h)| h),
        }
    }

    /// The first height whose window was full of blocks after the victim's last
    /// sign of life while it was a member, with `n - 1 >= min_roster` equal to
    /// `min_ok`.
    fn window_full_after(
        &self,
        c: &NodeReplay,
        v: NodeId,
        p: &Params,
        min_ok: bool,
    ) -> Option<u64> {
        (1..=c.len()).find(|&h| {
            let (Some(r), era) = (c.at(h), c.era_at(h)) else {
                return false;
            };
            let n = era.roster.len() as u64;
            r.window_total >= p.eviction_total
                && r.window_total > 0
                && r.window_start > self.last_seen
                && era.roster.contains(&v)
                && ((n.saturating_sub(1) >= u64::from(p.min_roster)) == min_ok)
        })
    }
}

/// The verdict on one `fail-node` victim: evicted after it fell silent, required
/// by the rule but never evicted (invalid), kept by `min_roster`, or not decidable
/// from a chain this short (unknown).
fn judge_victim(
    run: &ClusterRun,
    an: &Analysis,
    c: &NodeReplay,
    e: &Nemesis,
    findings: &mut Vec<Finding>,
) -> Option<Value> {
    let name = e.node.clone().unwrap_or_default();
    let mut push = |kind: &str, v: Validity, h: Option<u64>, why: String, extra: Value| {
        let f = Finding::new(EVICTION, kind, v, h, &name, why, extra).with_ops(vec![e.index]);
        findings.push(f);
    };
    let Some(v) = event_id(an, e) else {
        let why = "fail-node event names no node id, and no status maps its name to one";
        push(
            "fail-node-victim-unknown",
            Validity::Unknown,
            None,
            why.into(),
            json!({}),
        );
        return None;
    };
    let params = &run.genesis.params;
    let f = VictimFacts::of(c, v);
    let last_seen = f.last_seen;
    let verdict = |k: &str, h: u64| {
        Some(json!({"node": name, "id": v.to_hex(), k: h, "last_seen": last_seen}))
    };
    if let Some(h) = f.evicted_at.filter(|&h| h >= last_seen) {
        return verdict("evicted_at", h);
    }
    if let Some(h) = f.required_at {
        let why = format!(
            "fail-node victim {} (last seen at height {last_seen}) is named by the rule at height {h} but never evicted",
            v.short()
        );
        push(
            "victim-not-evicted",
            Validity::Invalid,
            Some(h),
            why,
            json!({"id": v.to_hex()}),
        );
        return verdict("required_at", h);
    }
    if let Some(h) = f.window_full_after(c, v, params, false) {
        return verdict("min_roster_forbids_at", h);
    }
    let why = match f.window_full_after(c, v, params, true) {
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
    };
    push(
        "victim-eviction-unknown",
        Validity::Unknown,
        None,
        why,
        json!({"id": v.to_hex()}),
    );
    verdict("final_height", c.len())
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

    #[test]
    fn status_role_must_follow_the_eviction() {
        // n4 is evicted at 12; give it the full chain and a status.
        let with_n4 = |role: &str| {
            let mut run = standard();
            run.nodes[3].chain = run.nodes[0].chain.clone();
            run.nodes[3].alive = true;
            run.nodes[3].status = Some(json!({
                "id": key(4).id().to_hex(), "height": 30, "epoch": 2, "role": role,
            }));
            run
        };
        let r = by_name(&check_cluster(&with_n4("evicted")), EVICTION).clone();
        assert_eq!(r.validity, Validity::Valid, "{r:#?}");
        for wrong in ["validator", "syncing"] {
            assert_caught(&with_n4(wrong), EVICTION, "status-role-mismatch", Some(31));
        }
        // A member that claims to be evicted.
        let mut run = standard();
        if let Some(s) = run.nodes[0].status.as_mut() {
            s["role"] = json!("evicted");
        }
        assert_caught(&run, EVICTION, "status-role-mismatch", Some(31));
    }
}
