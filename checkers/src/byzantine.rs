//! harness.md §7 `byzantine`: what the adversaries of a run sent (per behaviour, from
//! the `byzantine` nemesis events' `sent` counts), what the honest nodes did with it
//! (their `/status` `dropped` counters by reason), and the eviction properties of
//! issue 12: no block commits an `evict` the rule of protocol.md §5 does not name (a
//! Byzantine proposer's lie, or votes steering it), and no node that no fault touched
//! is evicted. Chain safety itself is `chain-agreement`'s; this checker says whether
//! the run stayed within the fault model (at most f = ⌊(n−1)/3⌋ adversaries at once).

use std::collections::{BTreeMap, BTreeSet};

use rollcall_node_core::chain::ChainState;
use rollcall_node_core::crypto::NodeId;
use serde_json::{json, Map, Value};

use crate::cluster::{ClusterRun, NodeDump};
use crate::result::{Anomaly, CheckResult, Validity};
use rollcall_history::{NemesisEvent, Phase};

/// The checker's name (harness.md §7).
pub const BYZANTINE: &str = "byzantine";

/// The nemesis name of the faults this checker reads.
const FAULT: &str = "byzantine";

/// Whether a run had any `byzantine` fault (the checker runs only then).
pub fn has_adversaries(run: &ClusterRun) -> bool {
    run.history.nemesis().any(|e| e.fault == FAULT)
}

/// What the history says the adversaries did.
#[derive(Default)]
struct Attack {
    /// behaviour → (intervals, honest, deviant, suppressed).
    per_behaviour: BTreeMap<String, [u64; 4]>,
    adversaries: BTreeSet<String>,
    beyond: bool,
    not_applied: usize,
    max_at_once: usize,
}

fn read_attack(run: &ClusterRun) -> Attack {
    let mut a = Attack::default();
    for e in run.history.nemesis().filter(|e| e.fault == FAULT) {
        let v = &e.value;
        let behaviour = v["behaviour"].as_str().unwrap_or("?").to_string();
        let row = a.per_behaviour.entry(behaviour).or_default();
        if e.phase == Phase::Start {
            row[0] += 1;
            if v["applied"] == false {
                a.not_applied += 1;
            }
            let names = strings(&v["adversaries"]);
            a.max_at_once = a.max_at_once.max(names.len());
            a.adversaries.extend(names);
            a.beyond |= v["beyond_fault_model"] == true;
        } else if let Some(sent) = v["sent"].as_object() {
            for s in sent.values() {
                for (k, field) in ["honest", "deviant", "suppressed"].iter().enumerate() {
                    row[k + 1] += s[field].as_u64().unwrap_or(0);
                }
            }
        }
    }
    a
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|l| {
            l.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Every node name any other fault touched (named anywhere in its event).
fn disturbed(events: &[NemesisEvent], names: &BTreeSet<String>) -> BTreeSet<String> {
    fn walk(v: &Value, names: &BTreeSet<String>, out: &mut BTreeSet<String>) {
        match v {
            Value::String(s) if names.contains(s) => {
                out.insert(s.clone());
            }
            Value::Array(l) => l.iter().for_each(|x| walk(x, names, out)),
            Value::Object(m) => m.values().for_each(|x| walk(x, names, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for e in events
        .iter()
        .filter(|e| e.fault != FAULT && e.phase != Phase::HealAll)
    {
        walk(&e.value, names, &mut out);
    }
    out
}

/// Sum of the honest nodes' drop counters by reason, and each node's.
fn honest_drops(nodes: &[NodeDump], adversaries: &BTreeSet<String>) -> (Map<String, Value>, Value) {
    let mut total: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_node = Map::new();
    for n in nodes.iter().filter(|n| !adversaries.contains(&n.name)) {
        let Some(d) = n.status.as_ref().and_then(|s| s.get("dropped")) else {
            continue;
        };
        if let Some(m) = d.as_object() {
            for (k, v) in m {
                *total.entry(k.clone()).or_default() += v.as_u64().unwrap_or(0);
            }
        }
        per_node.insert(n.name.clone(), d.clone());
    }
    let total = total.into_iter().map(|(k, v)| (k, json!(v))).collect();
    (total, Value::Object(per_node))
}

/// Replays the longest chain: every block's `evict` against the rule, and every
/// eviction's victim against the nodes that a fault touched or that lied.
fn eviction_findings(
    run: &ClusterRun,
    excused: &BTreeSet<NodeId>,
    adversary_ids: &BTreeSet<NodeId>,
) -> Vec<Anomaly> {
    let mut out = Vec::new();
    let Some(longest) = run.nodes.iter().max_by_key(|n| n.chain.len()) else {
        return out;
    };
    let mut state = ChainState::new(run.genesis.clone());
    for cb in &longest.chain {
        let want = state.expected_evict();
        let b = &cb.block;
        if b.evict != want {
            let liar = if adversary_ids.contains(&b.proposer) {
                "a Byzantine proposer's"
            } else {
                "an"
            };
            out.push(anomaly(
                "evict-lie-committed",
                format!(
                    "{}: block {} (proposer {}) commits {liar} evict {:?} where the rule names {:?} (protocol.md §5)",
                    longest.name, b.height, b.proposer.short(), b.evict, want
                ),
            ));
        }
        if let Some(victim) = b.evict.filter(|v| !excused.contains(v)) {
            out.push(anomaly(
                "honest-evicted",
                format!(
                    "{}: block {} evicts {}, a node no fault touched and that never lied",
                    longest.name,
                    b.height,
                    victim.short()
                ),
            ));
        }
        state.apply(b, cb.cert.clone());
    }
    out
}

fn anomaly(kind: &str, explanation: String) -> Anomaly {
    Anomaly {
        kind: kind.into(),
        explanation,
        ops: Vec::new(),
        extra: Value::Null,
    }
}

/// The node ids of `names`, read from the dumps' `/status`.
fn ids_of(nodes: &[NodeDump], names: &BTreeSet<String>) -> BTreeSet<NodeId> {
    nodes
        .iter()
        .filter(|n| names.contains(&n.name))
        .filter_map(|n| n.status.as_ref()?.get("id")?.as_str().map(String::from))
        .filter_map(|h| NodeId::from_hex(&h).ok())
        .collect()
}

/// harness.md §7 `byzantine` (see the module doc).
pub fn check_byzantine(run: &ClusterRun) -> CheckResult {
    let attack = read_attack(run);
    let events: Vec<NemesisEvent> = run.history.nemesis().collect();
    let names: BTreeSet<String> = run.nodes.iter().map(|n| n.name.clone()).collect();
    let touched = disturbed(&events, &names);
    let adversary_ids = ids_of(&run.nodes, &attack.adversaries);
    let excused_names: BTreeSet<String> = touched.union(&attack.adversaries).cloned().collect();
    let mut excused = ids_of(&run.nodes, &excused_names);
    // Nodes without a status (dead at the end) cannot be mapped to an id: a dead
    // node's eviction is the rule's business (the `eviction` checker), so excuse
    // every id that no live honest node owns.
    let known_honest = ids_of(
        &run.nodes,
        &names.difference(&excused_names).cloned().collect(),
    );
    excused.extend(
        run.genesis
            .roster
            .iter()
            .map(|e| e.id)
            .filter(|id| !known_honest.contains(id)),
    );
    // A node that joined by add-node is not in the genesis roster: a fault that
    // touched it (add-node, fail-node) records its id, so excuse that too. Found
    // by an overlapping schedule (issue 16, seed 4): n5 added, then failed for
    // good and evicted, was reported as an honest node evicted.
    excused.extend(
        (events.iter())
            .filter(|e| e.fault != FAULT && e.phase != Phase::HealAll)
            .filter_map(|e| e.id.as_deref())
            .filter_map(|h| NodeId::from_hex(h).ok()),
    );
    let anomalies = eviction_findings(run, &excused, &adversary_ids);
    let (dropped, per_node) = honest_drops(&run.nodes, &attack.adversaries);
    let delivered: u64 = attack.per_behaviour.values().map(|r| r[2] + r[3]).sum();
    let n = run.genesis.roster.len();
    let f = n.saturating_sub(1) / 3;
    let (validity, summary) = verdict(&attack, &anomalies, delivered, f);
    let behaviours: Map<String, Value> = attack
        .per_behaviour
        .iter()
        .map(|(b, r)| {
            let v = json!({"intervals": r[0], "honest": r[1], "deviant": r[2], "suppressed": r[3]});
            (b.clone(), v)
        })
        .collect();
    CheckResult {
        checker: BYZANTINE.into(),
        validity,
        summary,
        anomalies,
        details: json!({
            "behaviours": behaviours,
            "adversaries": attack.adversaries,
            "max_adversaries_at_once": attack.max_at_once,
            "f": f,
            "beyond_fault_model": attack.beyond || attack.max_at_once > f,
            "honest_dropped": dropped,
            "honest_dropped_per_node": per_node,
        }),
        elapsed_ms: 0.0,
    }
}

fn verdict(attack: &Attack, anomalies: &[Anomaly], delivered: u64, f: usize) -> (Validity, String) {
    let beyond = attack.beyond || attack.max_at_once > f;
    let model = if beyond {
        format!(
            " — BEYOND the fault model ({} adversaries at once, f = {f}): an invalid verdict is expected",
            attack.max_at_once
        )
    } else {
        String::new()
    };
    if !anomalies.is_empty() {
        let s = format!("{} eviction anomalies under attack{model}", anomalies.len());
        return (Validity::Invalid, s);
    }
    if attack.not_applied > 0 || delivered == 0 {
        let s =
            format!("the adversaries sent nothing deviant: the attack was not delivered{model}");
        return (Validity::Unknown, s);
    }
    let s = format!(
        "{delivered} deviant or withheld messages from {} adversaries; no evict lie committed, no untouched node evicted{model}",
        attack.adversaries.len()
    );
    (Validity::Valid, s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;
    use rollcall_node_core::crypto::{Hash, Keypair};
    use rollcall_node_core::types::{
        Block, Certificate, CommittedBlock, Genesis, Params, RosterEntry,
    };

    fn keys() -> Vec<Keypair> {
        (1..=4).map(|i| Keypair::from_secret([i; 32])).collect()
    }

    fn genesis(ks: &[Keypair]) -> Genesis {
        Genesis {
            chain_id: "t".into(),
            roster: ks
                .iter()
                .enumerate()
                .map(|(i, k)| RosterEntry {
                    number: i as u32 + 1,
                    id: k.id(),
                    addr: format!("n{}:1", i + 1),
                })
                .collect(),
            operators: vec![],
            params: Params::default(),
        }
    }

    /// Height 1 proposed by n1, with the given `evict` (the rule names none there).
    fn chain(g: &Genesis, ks: &[Keypair], evict: Option<NodeId>) -> Vec<CommittedBlock> {
        let block = Block {
            height: 1,
            round: 0,
            epoch: 0,
            prev_hash: g.hash(),
            proposer: ks[0].id(),
            roster_hash: Hash::default(),
            txs: vec![],
            evict,
            last_commit: None,
        };
        let cert = Certificate {
            epoch: 0,
            height: 1,
            round: 0,
            block: block.hash(),
            evict,
            sigs: vec![],
        };
        vec![CommittedBlock { block, cert }]
    }

    fn history(adversaries: &[&str], deviant: u64) -> History {
        let start = json!({"index":0,"time":1,"process":"nemesis","type":"info","f":"byzantine",
            "value":{"phase":"start","behaviour":"mutate-evict","adversaries":adversaries,
                     "beyond_fault_model": adversaries.len() > 1}});
        let sent: Map<String, Value> = adversaries
            .iter()
            .map(|a| {
                (
                    a.to_string(),
                    json!({"honest": 5, "deviant": deviant, "suppressed": 0}),
                )
            })
            .collect();
        let stop = json!({"index":1,"time":2,"process":"nemesis","type":"info","f":"byzantine",
            "value":{"phase":"stop","behaviour":"mutate-evict","nodes":adversaries,"sent":sent}});
        History::parse_jsonl(&format!("{start}\n{stop}\n")).expect("history")
    }

    fn run(adversaries: &[&str], deviant: u64, evict: Option<usize>) -> ClusterRun {
        let ks = keys();
        let g = genesis(&ks);
        let nodes = ks
            .iter()
            .enumerate()
            .map(|(i, k)| NodeDump {
                name: format!("n{}", i + 1),
                chain: chain(&g, &ks, evict.map(|e| ks[e].id())),
                status: Some(json!({"id": k.id().to_hex(), "dropped": {"bad_evict": 3}})),
                alive: true,
            })
            .collect();
        ClusterRun {
            genesis: g,
            nodes,
            history: history(adversaries, deviant),
            liveness_bound_ns: 1,
            fault_timing: None,
        }
    }

    #[test]
    fn a_delivered_attack_without_lies_committed_is_valid() {
        let r = check_byzantine(&run(&["n1"], 7, None));
        assert_eq!(r.validity, Validity::Valid, "{}", r.summary);
        assert_eq!(r.details["behaviours"]["mutate-evict"]["deviant"], 7);
        assert_eq!(
            r.details["honest_dropped"]["bad_evict"], 9,
            "three honest nodes"
        );
        assert_eq!(r.details["beyond_fault_model"], false);
    }

    #[test]
    fn a_committed_evict_lie_evicting_an_honest_node_is_invalid() {
        let r = check_byzantine(&run(&["n1"], 7, Some(1)));
        assert_eq!(r.validity, Validity::Invalid);
        let kinds: BTreeSet<&str> = r.anomalies.iter().map(|a| a.kind.as_str()).collect();
        assert!(kinds.contains("evict-lie-committed"), "{kinds:?}");
        assert!(kinds.contains("honest-evicted"), "{kinds:?}");
        assert!(r.anomalies[0].explanation.contains("Byzantine proposer"));
    }

    #[test]
    fn an_attack_that_was_not_delivered_is_unknown() {
        let r = check_byzantine(&run(&["n1"], 0, None));
        assert_eq!(r.validity, Validity::Unknown);
    }

    #[test]
    fn more_than_f_adversaries_is_reported_beyond_the_fault_model() {
        let r = check_byzantine(&run(&["n1", "n2"], 7, None));
        assert_eq!(r.details["beyond_fault_model"], true);
        assert!(r.summary.contains("BEYOND"), "{}", r.summary);
    }
}
