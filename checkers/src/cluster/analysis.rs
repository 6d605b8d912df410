//! What every node-side checker shares: each node's replay, the replay findings,
//! the nemesis events of the history and the node-name → id map.

use std::collections::BTreeMap;

use serde_json::Value;

use super::replay::{self, NodeReplay};
use super::{ClusterRun, Finding};
use crate::history::History;
use crate::oracle::wire::{Hash, NodeId, Verifier};
use rollcall_history::NemesisEvent;

/// A nemesis step of the history, typed once in the run data crate (harness.md §6).
pub(crate) type Nemesis = NemesisEvent;

fn nemesis_events(h: &History) -> Vec<Nemesis> {
    h.nemesis().collect()
}

/// The node id a nemesis step names (`value.id`, hex), if it parses.
fn nemesis_id(e: &Nemesis) -> Option<NodeId> {
    e.id.as_deref().and_then(|x| NodeId::from_hex(x).ok())
}

/// Everything the checkers share: every node's replay, the merged findings of the
/// replays, the nemesis events and the node-name → id map.
pub(crate) struct Analysis {
    pub replays: Vec<NodeReplay>,
    pub findings: Vec<Finding>,
    pub nemesis: Vec<Nemesis>,
    /// Name → id, from each node's status and the nemesis events.
    pub ids: BTreeMap<String, NodeId>,
    /// Index of the longest replay (alive nodes first on ties).
    pub canonical: Option<usize>,
}

impl Analysis {
    pub(crate) fn new(run: &ClusterRun) -> Analysis {
        let verifier = Verifier::new();
        let mut findings = Vec::new();
        let replays: Vec<NodeReplay> = run
            .nodes
            .iter()
            .map(|n| replay::replay(&run.genesis, &n.name, &n.chain, &verifier, &mut findings))
            .collect();
        let nemesis = nemesis_events(&run.history);
        let mut ids = BTreeMap::new();
        for n in &run.nodes {
            if let Some(id) = n
                .status
                .as_ref()
                .and_then(|s| s.get("id"))
                .and_then(Value::as_str)
                .and_then(|s| NodeId::from_hex(s).ok())
            {
                ids.insert(n.name.clone(), id);
            }
        }
        for e in &nemesis {
            if let (Some(n), Some(id)) = (&e.node, nemesis_id(e)) {
                ids.entry(n.clone()).or_insert(id);
            }
        }
        let canonical = replays
            .iter()
            .enumerate()
            .max_by_key(|(i, r)| (r.len(), run.nodes[*i].alive, std::cmp::Reverse(*i)))
            .map(|(i, _)| i);
        Analysis {
            replays,
            findings,
            nemesis,
            ids,
            canonical,
        }
    }

    pub(crate) fn canonical(&self) -> Option<&NodeReplay> {
        self.canonical.and_then(|i| self.replays.get(i))
    }

    /// The replay of the node named `name`.
    pub(crate) fn replay_of(&self, name: &str) -> Option<&NodeReplay> {
        self.replays.iter().find(|r| r.name == name)
    }

    /// The longest replayed height.
    pub(crate) fn max_height(&self) -> u64 {
        self.replays.iter().map(|r| r.len()).max().unwrap_or(0)
    }

    /// The nodes that replayed height `h`, grouped by what `key` derives there
    /// (a block hash, a roster hash): more than one group is a disagreement.
    pub(crate) fn groups_at(
        &self,
        h: u64,
        key: impl Fn(&NodeReplay) -> Hash,
    ) -> BTreeMap<Hash, Vec<&str>> {
        let mut groups: BTreeMap<Hash, Vec<&str>> = BTreeMap::new();
        for r in self.replays.iter().filter(|r| h <= r.len()) {
            groups.entry(key(r)).or_default().push(&r.name);
        }
        groups
    }

    pub(crate) fn findings_of(&self, checker: &str) -> Vec<Finding> {
        self.findings
            .iter()
            .filter(|f| f.checker == checker)
            .cloned()
            .collect()
    }
}

/// A numeric field of a node's final `/status`.
pub(crate) fn status_u64(status: &Value, key: &str) -> Option<u64> {
    status.get(key).and_then(Value::as_u64)
}

/// The id of a nemesis event's node: its `id` field, else the name → id map.
pub(crate) fn event_id(an: &Analysis, e: &Nemesis) -> Option<NodeId> {
    nemesis_id(e).or_else(|| e.node.as_ref().and_then(|n| an.ids.get(n).copied()))
}
