//! The `storage` view (issue 13): per node, the disk faults the nemesis injected,
//! the corruption the node detected, the blocks it dropped to fetch again, its
//! signing floor and whether it stopped itself (and why). It is invalid only when
//! a node kept running on storage it had itself declared untrustworthy, and
//! unknown when disk faults were injected but no node could be asked.

use crate::history::History;
use crate::result::{Anomaly, CheckResult, Validity};
use rollcall_history::Phase;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The checker's name in results.
pub const NAME: &str = "storage";

/// What one node's end-of-run dump says about its storage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeStorage {
    /// Node name.
    pub node: String,
    /// `/status` `storage` (the store's damage report), when the node answered.
    pub status: Option<Value>,
    /// Whether it was running at the end.
    pub alive: bool,
    /// Why it stopped itself, if it did (a failed write or sync, untrusted storage).
    pub stopped: Option<String>,
}

/// One row of the view.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
struct Row {
    faults_injected: u64,
    kinds: Vec<String>,
    corrupt_detected: Option<u64>,
    blocks_dropped_bytes: Option<u64>,
    sign_floor: Option<u64>,
    alive: bool,
    stopped: Option<String>,
}

/// Disk faults started per node, from the history's `disk` nemesis events.
fn injected(h: &History) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in h.nemesis() {
        if e.fault != "disk" || e.phase != Phase::Start {
            continue;
        }
        if let (Some(n), Some(k)) = (e.node, e.value["kind"].as_str()) {
            out.entry(n).or_default().push(k.to_string());
        }
    }
    out
}

/// The view over a run.
pub fn check(h: &History, nodes: &[NodeStorage]) -> CheckResult {
    let start = std::time::Instant::now();
    let faults = injected(h);
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut anomalies = Vec::new();
    for n in nodes {
        let s = n.status.as_ref();
        let num = |k: &str| s.and_then(|v| v[k].as_u64());
        let kinds = faults.get(&n.node).cloned().unwrap_or_default();
        if n.alive && s.is_some_and(|v| v["fatal"].is_string()) {
            anomalies.push(Anomaly {
                kind: "ran-on-untrusted-storage".into(),
                explanation: format!(
                    "{} kept running after declaring its storage untrusted",
                    n.node
                ),
                ops: vec![],
                extra: json!(s),
            });
        }
        rows.insert(
            n.node.clone(),
            Row {
                faults_injected: kinds.len() as u64,
                kinds,
                corrupt_detected: num("corrupt"),
                blocks_dropped_bytes: num("blocks_dropped_bytes"),
                sign_floor: num("sign_floor"),
                alive: n.alive,
                stopped: n.stopped.clone(),
            },
        );
    }
    let injected_total: usize = faults.values().map(Vec::len).sum();
    let detected: u64 = rows.values().filter_map(|r| r.corrupt_detected).sum();
    let stopped = rows.values().filter(|r| r.stopped.is_some()).count();
    let (validity, summary) = if !anomalies.is_empty() {
        (
            Validity::Invalid,
            format!("{} node(s) ran on untrusted storage", anomalies.len()),
        )
    } else if injected_total > 0 && rows.values().all(|r| r.corrupt_detected.is_none()) {
        (
            Validity::Unknown,
            format!("{injected_total} disk faults injected, no node status to read"),
        )
    } else {
        (
            Validity::Valid,
            format!(
                "{injected_total} disk faults injected, {detected} corruptions detected, {stopped} node(s) stopped themselves"
            ),
        )
    };
    CheckResult {
        checker: NAME.into(),
        validity,
        summary,
        anomalies,
        details: json!({ "nodes": rows }),
        elapsed_ms: start.elapsed().as_secs_f64() * 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history() -> History {
        let text = r#"{"index":0,"time":1,"process":"nemesis","type":"info","f":"disk","value":{"kind":"corrupt-sign","node":"n1","phase":"start"}}
{"index":1,"time":2,"process":"nemesis","type":"info","f":"disk","value":{"kind":"corrupt-sign","node":"n1","phase":"stop"}}
"#;
        History::parse_jsonl(text).unwrap()
    }

    fn node(name: &str, status: Value, alive: bool) -> NodeStorage {
        NodeStorage {
            node: name.into(),
            status: Some(status),
            alive,
            stopped: None,
        }
    }

    #[test]
    fn counts_faults_and_detections_per_node() {
        let nodes = [
            node(
                "n1",
                json!({"corrupt": 1, "blocks_dropped_bytes": 0, "sign_floor": 9}),
                true,
            ),
            node("n2", json!({"corrupt": 0, "blocks_dropped_bytes": 0}), true),
        ];
        let r = check(&history(), &nodes);
        assert_eq!(r.validity, Validity::Valid, "{r:?}");
        assert_eq!(r.details["nodes"]["n1"]["faults_injected"], 1);
        assert_eq!(r.details["nodes"]["n1"]["sign_floor"], 9);
        assert!(r.summary.contains("1 corruptions detected"));
    }

    #[test]
    fn a_node_running_on_untrusted_storage_is_invalid() {
        let nodes = [node(
            "n1",
            json!({"corrupt": 2, "fatal": "both logs corrupt"}),
            true,
        )];
        assert_eq!(check(&history(), &nodes).validity, Validity::Invalid);
    }

    #[test]
    fn injected_faults_without_any_status_are_unknown() {
        let nodes = [NodeStorage {
            node: "n1".into(),
            ..Default::default()
        }];
        assert_eq!(check(&history(), &nodes).validity, Validity::Unknown);
    }
}
