//! Findings: what a checker observed, merged across nodes and turned into a
//! [`CheckResult`] with its anomalies.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::result::{Anomaly, CheckResult, Validity};

/// Anomalies of one kind kept in a result; the rest are only counted in `details`.
const MAX_PER_KIND: usize = 20;

/// One observation of a checker, before it becomes an [`Anomaly`]: findings that
/// differ only by node are merged, so a defect every node holds is reported once.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    pub checker: &'static str,
    pub kind: String,
    pub severity: Validity,
    pub height: Option<u64>,
    pub nodes: BTreeSet<String>,
    pub explanation: String,
    pub extra: Value,
    pub ops: Vec<u64>,
}

impl Finding {
    pub(crate) fn new(
        checker: &'static str,
        kind: &str,
        severity: Validity,
        height: Option<u64>,
        node: &str,
        explanation: String,
        extra: Value,
    ) -> Finding {
        let mut nodes = BTreeSet::new();
        if !node.is_empty() {
            nodes.insert(node.to_string());
        }
        Finding {
            checker,
            kind: kind.to_string(),
            severity,
            height,
            nodes,
            explanation,
            extra,
            ops: Vec::new(),
        }
    }

    pub(crate) fn with_ops(mut self, ops: Vec<u64>) -> Finding {
        self.ops = ops;
        self
    }

    fn into_anomaly(self) -> Anomaly {
        let mut extra = match self.extra {
            Value::Object(m) => m,
            Value::Null => serde_json::Map::new(),
            other => {
                let mut m = serde_json::Map::new();
                m.insert("data".into(), other);
                m
            }
        };
        if let Some(h) = self.height {
            extra.insert("height".into(), json!(h));
        }
        if !self.nodes.is_empty() {
            extra.insert("nodes".into(), json!(self.nodes));
        }
        extra.insert("severity".into(), json!(self.severity));
        let nodes = if self.nodes.is_empty() {
            String::new()
        } else {
            format!(
                " [{}]",
                self.nodes.iter().cloned().collect::<Vec<_>>().join(",")
            )
        };
        Anomaly {
            kind: self.kind,
            explanation: format!("{}{nodes}", self.explanation),
            ops: self.ops,
            extra: Value::Object(extra),
        }
    }
}

/// Merges findings that differ only by node.
fn merge(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    let mut index: BTreeMap<(String, Option<u64>, String), usize> = BTreeMap::new();
    for f in findings {
        let key = (f.kind.clone(), f.height, f.explanation.clone());
        match index.get(&key) {
            Some(&i) => out[i].nodes.extend(f.nodes),
            None => {
                index.insert(key, out.len());
                out.push(f);
            }
        }
    }
    out
}

/// Turns a checker's findings and notes into its [`CheckResult`].
pub(crate) fn result(
    checker: &str,
    findings: Vec<Finding>,
    mut details: serde_json::Map<String, Value>,
    valid_summary: String,
) -> CheckResult {
    let findings = merge(findings);
    let validity = findings
        .iter()
        .map(|f| f.severity)
        .fold(Validity::Valid, Validity::and);
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut anomalies = Vec::new();
    for f in findings {
        let c = by_kind.entry(f.kind.clone()).or_insert(0);
        *c += 1;
        if *c <= MAX_PER_KIND {
            anomalies.push(f.into_anomaly());
        }
    }
    let summary = match validity {
        Validity::Valid => valid_summary,
        _ => {
            let kinds: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
            format!("{}: {}", validity_word(validity), kinds.join(", "))
        }
    };
    details.insert("anomaly_counts".into(), json!(by_kind));
    CheckResult {
        checker: checker.to_string(),
        validity,
        summary,
        anomalies,
        details: Value::Object(details),
        elapsed_ms: 0.0,
    }
}

fn validity_word(v: Validity) -> &'static str {
    match v {
        Validity::Valid => "valid",
        Validity::Unknown => "unknown",
        Validity::Invalid => "invalid",
    }
}
