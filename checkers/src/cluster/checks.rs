//! The five node-side checkers of harness.md §7 over a replayed [`Analysis`].

use std::collections::BTreeMap;

use rollcall_node_core::crypto::{Hash, NodeId};
use rollcall_node_core::types::RosterEntry;
use serde_json::{json, Map, Value};

use super::replay::show;
use super::{
    is_client, result, Analysis, ClusterRun, Finding, Nemesis, ADD_NODE, AGREEMENT, EVICTION,
    LIVENESS, ROSTER,
};
use crate::history::OpType;
use crate::result::{CheckResult, Validity};

/// Faults during which a pause in commits is expected (harness.md §5).
const DISRUPTIVE: &[&str] = &[
    "partition",
    "kill",
    "pause",
    "crash-all",
    "flaky",
    "slow",
    "duplicate-key",
];

/// harness.md §7 `chain-agreement`: per-block findings of the replays, plus forks
/// (two nodes holding blocks with different hashes at one height).
pub(crate) fn chain_agreement(run: &ClusterRun, an: &Analysis) -> CheckResult {
    let mut findings = an.findings_of(AGREEMENT);
    let max = an.replays.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut first_fork = None;
    let mut forked_heights = 0u64;
    for h in 1..=max {
        let mut groups: BTreeMap<Hash, Vec<&str>> = BTreeMap::new();
        for r in &an.replays {
            if let Some(rec) = r.at(h) {
                groups.entry(rec.hash).or_default().push(&r.name);
            }
        }
        if groups.len() > 1 {
            forked_heights += 1;
            first_fork.get_or_insert(h);
            let desc: Vec<String> = groups
                .iter()
                .map(|(hash, ns)| format!("{} hold {}", ns.join(","), hash.short()))
                .collect();
            let mut f = Finding::new(
                AGREEMENT,
                "fork",
                Validity::Invalid,
                Some(h),
                "",
                format!("nodes disagree at height {h}: {}", desc.join("; ")),
                json!({"blocks": groups.iter().map(|(k, v)| (k.to_hex(), v.clone())).collect::<BTreeMap<_, _>>()}),
            );
            f.nodes = groups.values().flatten().map(|s| s.to_string()).collect();
            findings.push(f);
        }
    }
    let mut details = Map::new();
    details.insert(
        "heights".into(),
        json!(run
            .nodes
            .iter()
            .zip(&an.replays)
            .map(|(n, r)| (n.name.clone(), r.len()))
            .collect::<BTreeMap<_, _>>()),
    );
    details.insert("first_fork_height".into(), json!(first_fork));
    details.insert("forked_heights".into(), json!(forked_heights));
    result(
        AGREEMENT,
        findings,
        details,
        format!(
            "{} nodes agree on every common height (up to {max}); every certificate has a quorum of valid signatures",
            an.replays.len()
        ),
    )
}

/// Parses a status field, recording a malformed status as an Unknown finding.
fn status_u64(status: &Value, key: &str) -> Option<u64> {
    status.get(key).and_then(Value::as_u64)
}

/// harness.md §7 `roster-agreement`.
pub(crate) fn roster_agreement(run: &ClusterRun, an: &Analysis) -> CheckResult {
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

/// The id of a nemesis event's node: its `id` field, else the name → id map.
fn event_id(an: &Analysis, e: &Nemesis) -> Option<NodeId> {
    e.id.or_else(|| e.node.as_ref().and_then(|n| an.ids.get(n).copied()))
}

/// harness.md §7 `eviction`, protocol.md §5: the per-height comparison of the rule
/// with each block's `evict` (done in the replay), each node's reported `abnormal`,
/// and the fate of every `fail-node` victim.
pub(crate) fn eviction(run: &ClusterRun, an: &Analysis) -> CheckResult {
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

/// Intervals `[start, end]` (ns) of the disruptive faults of the history; a start
/// without a stop lasts until the next `heal-all`, or forever.
fn disruptions(an: &Analysis) -> Vec<(u64, u64)> {
    let mut open: BTreeMap<(String, Option<String>), u64> = BTreeMap::new();
    let mut out = Vec::new();
    for e in &an.nemesis {
        if e.f == "heal-all" {
            for (_, s) in std::mem::take(&mut open) {
                out.push((s, e.time));
            }
            continue;
        }
        if !DISRUPTIVE.contains(&e.f.as_str()) {
            continue;
        }
        let key = (e.f.clone(), e.node.clone());
        match e.phase.as_deref() {
            Some("stop") => {
                if let Some(s) = open.remove(&key) {
                    out.push((s, e.time));
                }
            }
            _ => {
                open.entry(key).or_insert(e.time);
            }
        }
    }
    out.extend(open.into_values().map(|s| (s, u64::MAX)));
    out
}

/// harness.md §7 `add-node`, protocol.md §4.
pub(crate) fn add_node(run: &ClusterRun, an: &Analysis) -> CheckResult {
    let mut findings = Vec::new();
    let mut adds = Vec::new();
    let bound = run.liveness_bound_ns;
    let faults = disruptions(an);
    let mut starts: BTreeMap<Option<String>, &Nemesis> = BTreeMap::new();
    for e in an.nemesis.iter().filter(|e| e.f == "add-node") {
        if e.phase.as_deref() != Some("stop") {
            starts.insert(e.node.clone(), e);
            continue;
        }
        let start = starts.remove(&e.node);
        let name = e.node.clone().unwrap_or_default();
        let id = event_id(an, e).or_else(|| start.and_then(|s| event_id(an, s)));
        let mut ops = vec![e.index];
        if let Some(s) = start {
            ops.insert(0, s.index);
        }
        // The network committed throughout (protocol.md §4.5).
        if let Some(s) = start {
            check_commits_during(
                run,
                &faults,
                s.time,
                e.time,
                bound,
                &name,
                &ops,
                &mut findings,
            );
        }
        if e.acknowledged != Some(true) {
            adds.push(json!({"node": name, "acknowledged": false}));
            continue;
        }
        let Some(v) = id else {
            findings.push(
                Finding::new(
                    ADD_NODE,
                    "add-node-id-unknown",
                    Validity::Unknown,
                    None,
                    &name,
                    "acknowledged add-node event names no node id".into(),
                    json!({}),
                )
                .with_ops(ops),
            );
            continue;
        };
        let Some(c) = an.canonical() else {
            findings.push(
                Finding::new(
                    ADD_NODE,
                    "acknowledged-add-missing",
                    Validity::Invalid,
                    e.height,
                    &name,
                    format!(
                        "AddNode of {} was acknowledged but no node dumped a chain",
                        v.short()
                    ),
                    json!({}),
                )
                .with_ops(ops),
            );
            continue;
        };
        let applied = c
            .heights
            .iter()
            .enumerate()
            .filter(|(_, r)| r.added.contains(&v))
            .map(|(i, _)| i as u64 + 1)
            .min_by_key(|&h| e.height.map(|a| a.abs_diff(h)).unwrap_or(h));
        let Some(join) = applied else {
            findings.push(
                Finding::new(
                    ADD_NODE,
                    "acknowledged-add-missing",
                    Validity::Invalid,
                    e.height,
                    &name,
                    format!(
                        "AddNode of {} was acknowledged{} but the chain (up to height {}) never adds it to the roster",
                        v.short(),
                        e.height.map(|h| format!(" at height {h}")).unwrap_or_default(),
                        c.len()
                    ),
                    json!({"id": v.to_hex()}),
                )
                .with_ops(ops),
            );
            continue;
        };
        if let Some(h) = e.height.filter(|&h| h != join) {
            findings.push(
                Finding::new(
                    ADD_NODE,
                    "acknowledged-add-wrong-height",
                    Validity::Invalid,
                    Some(h),
                    &name,
                    format!(
                        "AddNode of {} was acknowledged at height {h} but the chain applies it at height {join}",
                        v.short()
                    ),
                    json!({"id": v.to_hex(), "applied_at": join}),
                )
                .with_ops(ops.clone()),
            );
        }
        // In the roster from join+1 on, until an eviction removes it.
        let evicted_at = c
            .heights
            .iter()
            .enumerate()
            .skip(join as usize)
            .find(|(_, r)| r.evicted == Some(v))
            .map(|(i, _)| i as u64 + 1);
        let member_until = evicted_at.unwrap_or(c.len() + 1);
        if let Some(h) = (join + 1..=member_until)
            .find(|&h| !c.era_at(h).roster.contains(&v) && h <= c.len() + 1)
        {
            findings.push(
                Finding::new(
                    ADD_NODE,
                    "added-node-not-in-roster",
                    Validity::Invalid,
                    Some(h),
                    &name,
                    format!(
                        "acknowledged node {} (added at height {join}) is missing from the roster at height {h}",
                        v.short()
                    ),
                    json!({"id": v.to_hex()}),
                )
                .with_ops(ops.clone()),
            );
        }
        // Its own chain equals the others' (from its dump).
        if let Some(mine) = an.replay_of(&name) {
            if let Some(h) = (1..=mine.len().min(c.len()))
                .find(|&h| mine.at(h).map(|r| r.hash) != c.at(h).map(|r| r.hash))
            {
                findings.push(
                    Finding::new(
                        ADD_NODE,
                        "new-node-chain-differs",
                        Validity::Invalid,
                        Some(h),
                        &name,
                        format!(
                            "the new node's block at height {h} differs from {}'s",
                            c.name
                        ),
                        json!({}),
                    )
                    .with_ops(ops.clone()),
                );
            }
        }
        // It proposes or signs after joining.
        let n = c.era_at(join + 1).roster.len() as u64;
        let last = evicted_at.unwrap_or(c.len()).min(c.len());
        let participated = (join + 1..=last).find(|&h| {
            c.at(h).is_some_and(|r| {
                r.proposer == v || r.signers.contains(&v) || r.later_signers.contains(&v)
            })
        });
        if participated.is_none() {
            let hurt_later = an.nemesis.iter().any(|x| {
                x.time >= e.time
                    && x.node == e.node
                    && e.node.is_some()
                    && matches!(x.f.as_str(), "fail-node" | "kill" | "pause" | "crash-all")
            });
            if last >= join + 2 * n && !hurt_later {
                findings.push(
                    Finding::new(
                        ADD_NODE,
                        "new-node-silent",
                        Validity::Invalid,
                        Some(join),
                        &name,
                        format!(
                            "node {} joined at height {join} but neither proposed nor signed any of the {} blocks after it",
                            v.short(),
                            last - join
                        ),
                        json!({"id": v.to_hex()}),
                    )
                    .with_ops(ops.clone()),
                );
            } else {
                findings.push(
                    Finding::new(
                        ADD_NODE,
                        "new-node-participation-unknown",
                        Validity::Unknown,
                        Some(join),
                        &name,
                        format!(
                            "node {} joined at height {join}; only {} blocks followed (2n = {}){} and it neither proposed nor signed",
                            v.short(),
                            last - join,
                            2 * n,
                            if hurt_later { ", a fault hit it" } else { "" }
                        ),
                        json!({"id": v.to_hex()}),
                    )
                    .with_ops(ops.clone()),
                );
            }
        }
        adds.push(json!({"node": name, "id": v.to_hex(), "acknowledged": true, "joined_at": join, "first_participation": participated, "evicted_at": evicted_at}));
    }
    let mut details = Map::new();
    details.insert("adds".into(), json!(adds));
    result(
        ADD_NODE,
        findings,
        details,
        "every acknowledged AddNode is in the roster; the new nodes agree, take part, and the network kept committing".into(),
    )
}

/// "The network committed throughout" (protocol.md §4.5): a client op completes
/// `ok` inside `[from, to]`, or the window is shorter than the bound.
#[allow(clippy::too_many_arguments)]
fn check_commits_during(
    run: &ClusterRun,
    faults: &[(u64, u64)],
    from: u64,
    to: u64,
    bound: u64,
    name: &str,
    ops: &[u64],
    findings: &mut Vec<Finding>,
) {
    if to.saturating_sub(from) < bound {
        return;
    }
    let client = run.history.ops().iter().filter(|o| is_client(o.process));
    let mut invoked = Vec::new();
    for o in client {
        if o.kind == OpType::Ok && o.complete_time.is_some_and(|t| t >= from && t <= to) {
            return;
        }
        if o.invoke_time >= from && o.invoke_time <= to {
            invoked.push(o.invoke_index);
        }
    }
    let excused = faults.iter().any(|&(s, e)| s <= to && e >= from);
    let (kind, severity, why) = if invoked.is_empty() {
        (
            "no-client-ops-during-add",
            Validity::Unknown,
            "no client operation was invoked",
        )
    } else if excused {
        (
            "commit-gap-during-fault",
            Validity::Unknown,
            "no client operation completed ok, while another fault was active",
        )
    } else {
        (
            "commit-gap",
            Validity::Invalid,
            "no client operation completed ok",
        )
    };
    let mut all = ops.to_vec();
    all.extend(invoked.iter().take(20));
    findings.push(
        Finding::new(
            ADD_NODE,
            kind,
            severity,
            None,
            name,
            format!(
                "between the add-node start ({from} ns) and stop ({to} ns), {} ns ≥ the bound {bound} ns, {why}",
                to - from
            ),
            json!({"from": from, "to": to}),
        )
        .with_ops(all),
    );
}

/// The largest committed height the history shows at or before `t` (nemesis
/// `height` fields and client completions that carry one), if any.
fn height_known_at(run: &ClusterRun, t: u64) -> Option<u64> {
    run.history
        .events()
        .iter()
        .filter(|e| e.time <= t && e.kind != OpType::Invoke && e.kind != OpType::Fail)
        .filter_map(|e| {
            e.extra
                .get("height")
                .and_then(Value::as_u64)
                .or_else(|| e.value.get("height").and_then(Value::as_u64))
        })
        .max()
}

/// harness.md §7 `liveness`.
pub(crate) fn liveness(run: &ClusterRun, an: &Analysis) -> CheckResult {
    let mut findings = Vec::new();
    let mut details = Map::new();
    let bound = run.liveness_bound_ns;
    details.insert("bound_ns".into(), json!(bound));
    let Some(heal) = an.nemesis.iter().rev().find(|e| e.f == "heal-all") else {
        findings.push(Finding::new(
            LIVENESS,
            "no-heal-all",
            Validity::Unknown,
            None,
            "",
            "the history has no heal-all nemesis event".into(),
            json!({}),
        ));
        return result(LIVENESS, findings, details, String::new());
    };
    let t = heal.time;
    details.insert("heal_time".into(), json!(t));
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
    details.insert("recovery_ns".into(), json!(first_ok.map(|(c, _)| c - t)));
    match first_ok {
        Some((c, _)) if c - t <= bound => {}
        Some((c, i)) => findings.push(
            Finding::new(
                LIVENESS,
                "slow-recovery",
                Validity::Invalid,
                None,
                "",
                format!(
                    "the first client op to complete ok after the heal did so {} ns after it, beyond the bound {bound} ns",
                    c - t
                ),
                json!({}),
            )
            .with_ops(vec![heal.index, i]),
        ),
        None => {
            let last_time = run.history.events().iter().map(|e| e.time).max().unwrap_or(0);
            let after: Vec<u64> = client
                .iter()
                .filter(|o| o.invoke_time >= t || o.complete_time.is_none_or(|c| c >= t))
                .map(|o| o.invoke_index)
                .collect();
            let (kind, severity, why) = if after.is_empty() {
                (
                    "no-client-ops-after-heal",
                    Validity::Unknown,
                    "no client operation ran after the heal".to_string(),
                )
            } else if last_time.saturating_sub(t) < bound {
                (
                    "history-too-short",
                    Validity::Unknown,
                    format!(
                        "nothing completed ok after the heal, but the history ends {} ns after it, before the bound",
                        last_time.saturating_sub(t)
                    ),
                )
            } else {
                (
                    "no-commit-after-heal",
                    Validity::Invalid,
                    format!(
                        "{} client operations ran after the heal and none completed ok",
                        after.len()
                    ),
                )
            };
            let mut ops = vec![heal.index];
            ops.extend(after.iter().take(20));
            findings.push(Finding::new(LIVENESS, kind, severity, None, "", why, json!({})).with_ops(ops));
        }
    }
    // The alive roster members' chains grew past the height known at the heal.
    let known = height_known_at(run, t);
    details.insert("height_at_heal".into(), json!(known));
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
        if let Some(k) = known {
            if n.alive && member && h <= k {
                findings.push(Finding::new(
                    LIVENESS,
                    "node-stalled-after-heal",
                    Validity::Invalid,
                    Some(h),
                    &n.name,
                    format!(
                        "alive roster member ends at height {h}, not past height {k} known at the heal"
                    ),
                    json!({}),
                ));
            }
        }
    }
    details.insert("final_heights".into(), json!(finals));
    result(
        LIVENESS,
        findings,
        details,
        format!(
            "the cluster committed again {} ns after the final heal (bound {bound} ns)",
            first_ok.map(|(c, _)| c - t).unwrap_or(0)
        ),
    )
}
