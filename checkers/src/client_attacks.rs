//! The `client-attacks` checker (issue 12): what the adversarial client sent never
//! took effect where it must not. A resubmitted transaction id is answered with its
//! first result and is committed at most once (protocol.md §3, "resubmitting the same
//! id never applies it twice"); an unsigned, wrong-key, forged or replayed AddNode is
//! never applied and its node never enters a roster (protocol.md §3 AddNode, §4).
//!
//! Its input is the client's record (`client-attacks.json`) and every node's final
//! chain and `/status`. Per kind it also counts what the nodes answered, so a reader
//! sees the attack was delivered and how it was turned away.

use crate::cluster::NodeDump;
use crate::result::{Anomaly, CheckResult, Validity};
use rollcall_history::{Answer, AttackKind, ClientAttack};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The checker's name in results.
pub const NAME: &str = "client-attacks";

/// Checks the adversarial client's record against the nodes' final state.
pub fn check(attacks: &[ClientAttack], nodes: &[NodeDump]) -> CheckResult {
    let mut anomalies: Vec<Anomaly> = attacks.iter().filter_map(answer_anomaly).collect();
    anomalies.extend(committed_twice(attacks, nodes));
    anomalies.extend(forged_members(attacks, nodes));
    let details = json!({ "by_kind": by_kind(attacks) });
    let (validity, summary) = if anomalies.is_empty() {
        let answered = attacks.iter().filter(|a| a.answer.is_some()).count();
        (
            Validity::Valid,
            format!(
                "{} adversarial requests ({answered} answered): no resubmission applied twice or changed its result, no forged AddNode applied",
                attacks.len()
            ),
        )
    } else {
        (
            Validity::Invalid,
            format!("{} adversarial requests took effect", anomalies.len()),
        )
    };
    CheckResult {
        checker: NAME.into(),
        validity,
        summary,
        anomalies,
        details,
        elapsed_ms: 0.0,
    }
}

/// A committed answer that contradicts the rules: a resubmission whose result is
/// not the first one, or an attacking AddNode that applied.
fn answer_anomaly(a: &ClientAttack) -> Option<Anomaly> {
    let Some(Answer::Ok {
        height,
        results,
        error,
    }) = &a.answer
    else {
        return None;
    };
    let (kind, why) = if a.kind.is_add_node() {
        if error.is_some() {
            return None;
        }
        (
            "forged-add-node-applied",
            format!(
                "{} {} sent to {} was applied at height {height}",
                a.kind.name(),
                a.tx_id,
                a.node
            ),
        )
    } else {
        let Some(Answer::Ok {
            height: h0,
            results: r0,
            error: e0,
        }) = &a.original
        else {
            return None;
        };
        if (h0, r0, e0) == (height, results, error) {
            return None;
        }
        (
            "resubmission-changed-result",
            format!(
                "{} of {} sent to {}: first committed at height {h0} with {r0}, now answered height {height} with {results}",
                a.kind.name(),
                a.tx_id,
                a.node
            ),
        )
    };
    Some(Anomaly {
        kind: kind.into(),
        explanation: why,
        ops: vec![],
        extra: serde_json::to_value(a).unwrap_or(Value::Null),
    })
}

/// Resubmitted ids that some node's chain holds in more than one block.
fn committed_twice(attacks: &[ClientAttack], nodes: &[NodeDump]) -> Vec<Anomaly> {
    let ids: BTreeSet<&str> = attacks
        .iter()
        .filter(|a| !a.kind.is_add_node())
        .map(|a| a.tx_id.as_str())
        .collect();
    let mut out = Vec::new();
    for n in nodes {
        let mut heights: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for cb in &n.chain {
            for tx in &cb.block.txs {
                if ids.contains(tx.id.as_str()) {
                    heights
                        .entry(tx.id.as_str())
                        .or_default()
                        .push(cb.block.height);
                }
            }
        }
        for (id, hs) in heights.into_iter().filter(|(_, hs)| hs.len() > 1) {
            out.push(Anomaly {
                kind: "resubmitted-id-committed-twice".into(),
                explanation: format!(
                    "{}'s chain holds resubmitted id {id} at heights {hs:?}",
                    n.name
                ),
                ops: vec![],
                extra: json!({"node": n.name, "tx_id": id, "heights": hs}),
            });
        }
    }
    out
}

/// Nodes that an unsigned, wrong-key or forged AddNode named and that some node's
/// final roster holds. (A replay names a node the operator really added.)
fn forged_members(attacks: &[ClientAttack], nodes: &[NodeDump]) -> Vec<Anomaly> {
    let forged: BTreeSet<&str> = attacks
        .iter()
        .filter(|a| a.kind.is_add_node() && a.kind != AttackKind::AddNodeReplay)
        .filter_map(|a| a.adds.as_deref())
        .collect();
    let mut out = Vec::new();
    for n in nodes {
        let roster = n.status.as_ref().and_then(|s| s.get("roster")?.as_array());
        for e in roster.into_iter().flatten() {
            let Some(id) = e.get("id").and_then(Value::as_str) else {
                continue;
            };
            if forged.contains(id) {
                out.push(Anomaly {
                    kind: "forged-add-node-in-roster".into(),
                    explanation: format!(
                        "{}'s roster holds {id}, named only by a forged AddNode",
                        n.name
                    ),
                    ops: vec![],
                    extra: json!({"node": n.name, "id": id}),
                });
            }
        }
    }
    out
}

/// Per kind: requests sent and what the nodes answered (ok applied, ok rejected at
/// execution, fail, info, none).
fn by_kind(attacks: &[ClientAttack]) -> Value {
    let mut m = serde_json::Map::new();
    for k in AttackKind::ALL {
        let mine: Vec<&ClientAttack> = attacks.iter().filter(|a| a.kind == k).collect();
        if mine.is_empty() {
            continue;
        }
        let count =
            |f: &dyn Fn(&Option<Answer>) -> bool| mine.iter().filter(|a| f(&a.answer)).count();
        m.insert(
            k.name().into(),
            json!({
                "sent": mine.len(),
                "committed": count(&|a| matches!(a, Some(Answer::Ok { error: None, .. }))),
                "rejected_at_execution": count(&|a| matches!(a, Some(Answer::Ok { error: Some(_), .. }))),
                "refused": count(&|a| matches!(a, Some(Answer::Fail { .. }))),
                "unknown": count(&|a| matches!(a, Some(Answer::Info { .. }) | None)),
            }),
        );
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::fixture::{key, standard};

    fn ok(height: u64, results: Value) -> Option<Answer> {
        Some(Answer::Ok {
            height,
            results,
            error: None,
        })
    }

    fn attack(
        kind: AttackKind,
        tx_id: &str,
        original: Option<Answer>,
        answer: Option<Answer>,
    ) -> ClientAttack {
        ClientAttack {
            time_ns: 1,
            kind,
            node: "n2".into(),
            tx_id: tx_id.into(),
            original,
            adds: None,
            answer,
            answered_ns: Some(2),
        }
    }

    fn kinds(r: &CheckResult) -> Vec<&str> {
        r.anomalies.iter().map(|a| a.kind.as_str()).collect()
    }

    /// The first result again, and refused forgeries, are valid; the counts say
    /// what each kind met.
    #[test]
    fn first_results_and_refused_forgeries_are_valid() {
        let run = standard();
        let mut forged = attack(AttackKind::AddNodeWrongKey, "adv-1", None, None);
        forged.adds = Some(key(40).id().to_hex());
        forged.answer = Some(Answer::Fail {
            error: "not signed by an operator".into(),
        });
        let attacks = vec![
            attack(
                AttackKind::ResubmitSame,
                "t5",
                ok(5, json!([])),
                ok(5, json!([])),
            ),
            forged,
        ];
        let r = check(&attacks, &run.nodes);
        assert_eq!(r.validity, Validity::Valid, "{r:?}");
        assert_eq!(r.details["by_kind"]["add-node-wrong-key"]["refused"], 1);
        assert_eq!(r.details["by_kind"]["resubmit-same"]["committed"], 1);
    }

    /// A resubmission answered with another result, and a forged AddNode that
    /// applied, are caught from the answers alone.
    #[test]
    fn a_changed_result_or_an_applied_forgery_is_invalid() {
        let run = standard();
        let attacks = vec![
            attack(
                AttackKind::ResubmitOther,
                "t5",
                ok(5, json!([])),
                ok(9, json!([])),
            ),
            attack(
                AttackKind::AddNodeUnsigned,
                "adv-2",
                None,
                ok(12, json!([])),
            ),
        ];
        let r = check(&attacks, &run.nodes);
        assert_eq!(r.validity, Validity::Invalid);
        assert_eq!(
            kinds(&r),
            ["resubmission-changed-result", "forged-add-node-applied"]
        );
    }

    /// The nodes' state is checked too: a resubmitted id in two blocks, and a
    /// roster holding a node only a forgery named (n5 here).
    #[test]
    fn a_second_commit_or_a_forged_member_in_the_state_is_invalid() {
        let mut run = standard();
        let again = run.nodes[1].chain[4].block.txs[0].clone();
        assert_eq!(again.id, "t5");
        run.nodes[1].chain[6].block.txs.push(again);
        let mut forged = attack(AttackKind::AddNodeForgedId, "adv-3", None, None);
        forged.adds = Some(key(5).id().to_hex());
        let attacks = vec![attack(AttackKind::ResubmitSame, "t5", None, None), forged];
        let r = check(&attacks, &run.nodes);
        assert_eq!(
            kinds(&r),
            [
                "resubmitted-id-committed-twice",
                "forged-add-node-in-roster"
            ]
        );
        // A replay names a node the operator really added: not a forged member.
        let mut replay = attack(AttackKind::AddNodeReplay, "adv-4", None, None);
        replay.adds = Some(key(5).id().to_hex());
        assert_eq!(
            check(&[replay], &standard().nodes).validity,
            Validity::Valid
        );
    }
}
