//! `add-node` (harness.md §7, protocol.md §4): every acknowledged AddNode is in the
//! roster from its height on, the new node agrees and takes part, and the network
//! kept committing while it was added.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::analysis::event_id;
use super::{is_client, result, Analysis, ClusterRun, Finding, Nemesis, NodeReplay, ADD_NODE};
use crate::history::OpType;
use crate::oracle::wire::NodeId;
use crate::result::{CheckResult, Validity};
use rollcall_history::Phase;

/// Faults during which a pause in commits is expected (harness.md §5).
const DISRUPTIVE: &[&str] = &[
    "partition",
    "kill",
    "pause",
    "crash-all",
    "flaky",
    "slow",
    "duplicate-key",
    "mute-proposals",
];

/// Intervals `[start, end]` (ns) of the disruptive faults of the history; a start
/// without a stop lasts until the next `heal-all`, or forever.
fn disruptions(an: &Analysis) -> Vec<(u64, u64)> {
    let mut open: BTreeMap<(String, Option<String>), u64> = BTreeMap::new();
    let mut out = Vec::new();
    for e in &an.nemesis {
        if e.phase == Phase::HealAll {
            for (_, s) in std::mem::take(&mut open) {
                out.push((s, e.time));
            }
            continue;
        }
        if !DISRUPTIVE.contains(&e.fault.as_str()) {
            continue;
        }
        let key = (e.fault.clone(), e.node.clone());
        match e.phase {
            Phase::Stop => {
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
pub(crate) fn check(run: &ClusterRun, an: &Analysis) -> CheckResult {
    let mut findings = Vec::new();
    let mut adds = Vec::new();
    let faults = disruptions(an);
    let mut starts: BTreeMap<Option<String>, &Nemesis> = BTreeMap::new();
    for e in an.nemesis.iter().filter(|e| e.fault == "add-node") {
        if e.phase != Phase::Stop {
            starts.insert(e.node.clone(), e);
            continue;
        }
        let start = starts.remove(&e.node);
        let add = AddEvent::new(an, e, start);
        // The network committed throughout (protocol.md §4.5).
        if let Some(s) = start {
            check_commits_during(run, &faults, (s.time, e.time), &add, &mut findings);
        }
        adds.extend(judge_add(an, &add, &mut findings));
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

/// One add-node of the history: its stop event, node name, id and op indices.
struct AddEvent<'a> {
    stop: &'a Nemesis,
    name: String,
    id: Option<NodeId>,
    ops: Vec<u64>,
}

impl<'a> AddEvent<'a> {
    fn new(an: &Analysis, stop: &'a Nemesis, start: Option<&Nemesis>) -> AddEvent<'a> {
        let mut ops = vec![stop.index];
        if let Some(s) = start {
            ops.insert(0, s.index);
        }
        AddEvent {
            stop,
            name: stop.node.clone().unwrap_or_default(),
            id: event_id(an, stop).or_else(|| start.and_then(|s| event_id(an, s))),
            ops,
        }
    }

    fn finding(
        &self,
        kind: &str,
        v: Validity,
        h: Option<u64>,
        why: String,
        extra: Value,
    ) -> Finding {
        Finding::new(ADD_NODE, kind, v, h, &self.name, why, extra).with_ops(self.ops.clone())
    }
}

/// The verdict on one acknowledged add: applied by the chain (at the height the
/// history names), a member from then on, the new node agrees and takes part.
fn judge_add(an: &Analysis, add: &AddEvent<'_>, findings: &mut Vec<Finding>) -> Option<Value> {
    let e = add.stop;
    if e.acknowledged != Some(true) {
        return Some(json!({"node": add.name, "acknowledged": false}));
    }
    let Some(v) = add.id else {
        let why = "acknowledged add-node event names no node id".into();
        findings.push(add.finding(
            "add-node-id-unknown",
            Validity::Unknown,
            None,
            why,
            json!({}),
        ));
        return None;
    };
    let missing = |upto: String| {
        format!(
            "AddNode of {} was acknowledged{} but {upto}",
            v.short(),
            e.height
                .map(|h| format!(" at height {h}"))
                .unwrap_or_default()
        )
    };
    let Some(c) = an.canonical() else {
        let why = missing("no node dumped a chain".into());
        findings.push(add.finding(
            "acknowledged-add-missing",
            Validity::Invalid,
            e.height,
            why,
            json!({}),
        ));
        return None;
    };
    let Some(join) = applied_at(c, v, e.height) else {
        let why = missing(format!(
            "the chain (up to height {}) never adds it to the roster",
            c.len()
        ));
        let extra = json!({"id": v.to_hex()});
        findings.push(add.finding(
            "acknowledged-add-missing",
            Validity::Invalid,
            e.height,
            why,
            extra,
        ));
        return None;
    };
    if let Some(h) = e.height.filter(|&h| h != join) {
        let why = format!(
            "AddNode of {} was acknowledged at height {h} but the chain applies it at height {join}",
            v.short()
        );
        let extra = json!({"id": v.to_hex(), "applied_at": join});
        findings.push(add.finding(
            "acknowledged-add-wrong-height",
            Validity::Invalid,
            Some(h),
            why,
            extra,
        ));
    }
    let evicted_at = check_membership(c, add, v, join, findings);
    check_new_chain(an, c, add, findings);
    let participated = check_participation(an, c, add, (v, join, evicted_at), findings);
    Some(
        json!({"node": add.name, "id": v.to_hex(), "acknowledged": true, "joined_at": join, "first_participation": participated, "evicted_at": evicted_at}),
    )
}

/// The height at which the chain added `v`: the one nearest to the height the
/// history acknowledged, else the first.
fn applied_at(c: &NodeReplay, v: NodeId, acknowledged: Option<u64>) -> Option<u64> {
    (1..=c.len())
        .filter(|&h| c.at(h).is_some_and(|r| r.added.contains(&v)))
        .min_by_key(|&h| acknowledged.map(|a| a.abs_diff(h)).unwrap_or(h))
}

/// The added node is in the roster from `join + 1` until an eviction removes it;
/// returns the height of that eviction.
fn check_membership(
    c: &NodeReplay,
    add: &AddEvent<'_>,
    v: NodeId,
    join: u64,
    findings: &mut Vec<Finding>,
) -> Option<u64> {
    let evicted_at = (join + 1..=c.len()).find(|&h| c.at(h).is_some_and(|r| r.evicted == Some(v)));
    let member_until = evicted_at.unwrap_or(c.len() + 1);
    if let Some(h) = (join + 1..=member_until).find(|&h| !c.era_at(h).roster.contains(&v)) {
        let why = format!(
            "acknowledged node {} (added at height {join}) is missing from the roster at height {h}",
            v.short()
        );
        let extra = json!({"id": v.to_hex()});
        findings.push(add.finding(
            "added-node-not-in-roster",
            Validity::Invalid,
            Some(h),
            why,
            extra,
        ));
    }
    evicted_at
}

/// The new node's own chain (from its dump) equals the canonical one.
fn check_new_chain(an: &Analysis, c: &NodeReplay, add: &AddEvent<'_>, findings: &mut Vec<Finding>) {
    let Some(mine) = an.replay_of(&add.name) else {
        return;
    };
    if let Some(h) = (1..=mine.len().min(c.len()))
        .find(|&h| mine.at(h).map(|r| r.hash) != c.at(h).map(|r| r.hash))
    {
        let why = format!(
            "the new node's block at height {h} differs from {}'s",
            c.name
        );
        findings.push(add.finding(
            "new-node-chain-differs",
            Validity::Invalid,
            Some(h),
            why,
            json!({}),
        ));
    }
}

/// The new node proposes or signs after joining: silent for `2n` blocks with no
/// fault on it is invalid, fewer blocks (or a fault) unknown. Returns the first
/// height it took part in.
fn check_participation(
    an: &Analysis,
    c: &NodeReplay,
    add: &AddEvent<'_>,
    (v, join, evicted_at): (NodeId, u64, Option<u64>),
    findings: &mut Vec<Finding>,
) -> Option<u64> {
    let n = c.era_at(join + 1).roster.len() as u64;
    let last = evicted_at.unwrap_or(c.len()).min(c.len());
    let participated = (join + 1..=last).find(|&h| {
        c.at(h).is_some_and(|r| {
            r.proposer == v || r.signers.contains(&v) || r.later_signers.contains(&v)
        })
    });
    if participated.is_some() {
        return participated;
    }
    let e = add.stop;
    let hurt_later = an.nemesis.iter().any(|x| {
        x.time >= e.time
            && x.node == e.node
            && e.node.is_some()
            && matches!(
                x.fault.as_str(),
                "fail-node" | "kill" | "pause" | "crash-all"
            )
    });
    let extra = json!({"id": v.to_hex()});
    let f = if last >= join + 2 * n && !hurt_later {
        let why = format!(
            "node {} joined at height {join} but neither proposed nor signed any of the {} blocks after it",
            v.short(),
            last - join
        );
        add.finding("new-node-silent", Validity::Invalid, Some(join), why, extra)
    } else {
        let why = format!(
            "node {} joined at height {join}; only {} blocks followed (2n = {}){} and it neither proposed nor signed",
            v.short(),
            last - join,
            2 * n,
            if hurt_later { ", a fault hit it" } else { "" }
        );
        add.finding(
            "new-node-participation-unknown",
            Validity::Unknown,
            Some(join),
            why,
            extra,
        )
    };
    findings.push(f);
    None
}

/// "The network committed throughout" (protocol.md §4.5): a client op completes
/// `ok` inside `[from, to]`, or the window is shorter than the bound.
fn check_commits_during(
    run: &ClusterRun,
    faults: &[(u64, u64)],
    (from, to): (u64, u64),
    add: &AddEvent<'_>,
    findings: &mut Vec<Finding>,
) {
    let bound = run.liveness_bound_ns;
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
    let mut all = add.ops.clone();
    all.extend(invoked.iter().take(20));
    let why = format!(
        "between the add-node start ({from} ns) and stop ({to} ns), {} ns ≥ the bound {bound} ns, {why}",
        to - from
    );
    let f = Finding::new(
        ADD_NODE,
        kind,
        severity,
        None,
        &add.name,
        why,
        json!({"from": from, "to": to}),
    );
    findings.push(f.with_ops(all));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::cluster::fixture::*;
    use crate::cluster::*;

    #[test]
    fn acknowledged_add_node_missing_from_the_chain_is_caught() {
        let b = build_chain(&mut |h, blk| {
            if h == 3 {
                blk.txs.truncate(1);
            }
        });
        let mut run = run_of(&b, history("ok", 30, &[]));
        run.nodes.pop();
        assert_caught(&run, ADD_NODE, "acknowledged-add-missing", Some(3));
        // An acknowledged add of a node that no block holds.
        let extra = [
            json!({"time": 5 * S + 1, "process": "nemesis", "type": "info", "f": "add-node", "value": {"phase": "start", "node": "n6", "id": key(6).id().to_hex()}}),
            json!({"time": 5 * S + 2, "process": "nemesis", "type": "info", "f": "add-node", "value": {"phase": "stop", "node": "n6", "id": key(6).id().to_hex(), "acknowledged": true, "height": 6}}),
        ];
        let run = run_of(&build_chain(&mut |_, _| {}), history("ok", 30, &extra));
        assert_caught(&run, ADD_NODE, "acknowledged-add-missing", Some(6));
        assert_valid_except(&run, &[ADD_NODE]);
    }

    #[test]
    fn add_node_without_commits_during_it_is_caught() {
        // A 12 s add-node window (bound 10 s) in which every client op fails.
        let mut run = standard();
        let extra = [
            json!({"time": 26 * S + 1, "process": "nemesis", "type": "info", "f": "add-node", "value": {"phase": "start", "node": "n5", "id": key(5).id().to_hex()}}),
            json!({"time": 38 * S + 1, "process": "nemesis", "type": "info", "f": "add-node", "value": {"phase": "stop", "node": "n5", "id": key(5).id().to_hex(), "acknowledged": false}}),
        ];
        // Keep liveness satisfied: one ok right after the heal, outside the window.
        run.history = history_with(
            &|s| if s <= 26 { "ok".into() } else { "fail".into() },
            40,
            &extra,
        );
        assert_caught(&run, ADD_NODE, "commit-gap", None);
    }
}
