//! Collecting anomalies and turning them into a verdict the way Elle's
//! `result-map` does (elle/txn.clj): anomalies the expected models (or the
//! `anomalies` option) prohibit make the history invalid; only
//! `cycle-search-timeout` / `empty-transaction-graph` left make it unknown;
//! the boundary (`:not`, `:also-not`) comes from every anomaly found.

use serde_json::{json, Value};
use std::collections::BTreeMap;

use super::cycles::cycle_exists_model;
use super::graph::{Edge, PROC, RW, WR, WW};
use super::models::{self, Names};
use super::txn::Txns;
use crate::result::{Anomaly, CheckResult, Validity};

/// At most this many examples of each anomaly kind are kept in full.
const MAX_PER_KIND: usize = 10;

/// Explains one ww/wr/rw edge in a workload's own terms.
pub(crate) type Explain = fn(&Txns, &Edge) -> String;

/// Anomalies found so far, by kind, with their explanations.
pub(crate) struct Found<'a> {
    pub t: &'a Txns,
    explain: Explain,
    kinds: BTreeMap<&'static str, (usize, Vec<Anomaly>)>,
}

impl<'a> Found<'a> {
    pub(crate) fn new(t: &'a Txns, explain: Explain) -> Self {
        Found {
            t,
            explain,
            kinds: BTreeMap::new(),
        }
    }

    /// Record one case of `kind`.
    pub(crate) fn add(
        &mut self,
        kind: &'static str,
        explanation: String,
        ops: Vec<u64>,
        extra: Value,
    ) {
        let e = self.kinds.entry(kind).or_insert((0, Vec::new()));
        e.0 += 1;
        if e.1.len() < MAX_PER_KIND {
            e.1.push(Anomaly {
                kind: kind.into(),
                explanation,
                ops,
                extra,
            });
        }
    }

    pub(crate) fn kinds(&self) -> Names {
        self.kinds.keys().copied().collect()
    }

    fn edge_text(&self, e: &Edge) -> String {
        let (a, b) = (self.t.name(e.from), self.t.name(e.to));
        match e.kind {
            WW | WR | RW => (self.explain)(self.t, e),
            PROC => {
                let p = self
                    .t
                    .txns
                    .get(e.from as usize)
                    .map(|x| x.process.to_string());
                format!(
                    "{a} then {b} on process {} (process)",
                    p.unwrap_or_default()
                )
            }
            _ => {
                let c = self
                    .t
                    .txns
                    .get(e.from as usize)
                    .map(|x| x.complete)
                    .unwrap_or(0);
                let i = self.t.invoke(e.to);
                format!("{a} completed (index {c}) before {b} was invoked (index {i}) (realtime)")
            }
        }
    }

    /// Record a dependency cycle, each step explained.
    pub(crate) fn cycle(&mut self, kind: &'static str, cycle: &[Edge]) {
        let steps: Vec<String> = cycle.iter().map(|e| self.edge_text(e)).collect();
        let nodes: Vec<u64> = cycle.iter().map(|e| self.t.invoke(e.from)).collect();
        let names: Vec<String> = nodes.iter().map(|i| format!("T{i}")).collect();
        let first = names.first().cloned().unwrap_or_default();
        let explanation = format!(
            "{kind} cycle {} -> {first}: {}",
            names.join(" -> "),
            steps.join("; ")
        );
        let edges: Vec<Value> = cycle
            .iter()
            .zip(&steps)
            .map(|(e, s)| {
                json!({
                    "from": self.t.invoke(e.from),
                    "to": self.t.invoke(e.to),
                    "kind": kind_name(e.kind),
                    "explanation": s,
                })
            })
            .collect();
        self.add(
            kind,
            explanation,
            nodes.clone(),
            json!({"cycle": nodes, "edges": edges}),
        );
    }

    /// Record that a cycle forbidden by `model` exists among `txns`.
    pub(crate) fn cycle_exists(&mut self, kind: &'static str, model: &str, txns: &[u32]) {
        let mut ops: Vec<u64> = txns.iter().map(|&t| self.t.invoke(t)).collect();
        ops.sort_unstable();
        let explanation = format!(
            "a cycle that {model} forbids exists among these {} transactions (the search for a specific cycle may have found a stronger one or none)",
            ops.len()
        );
        let extra = json!({"not": model, "scc_size": ops.len(), "scc": ops});
        self.add(kind, explanation, ops, extra);
    }
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        WW => "ww",
        WR => "wr",
        RW => "rw",
        PROC => "process",
        _ => "realtime",
    }
}

/// What the caller expects to hold: Elle's `:consistency-models` and `:anomalies`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    /// Models the history must satisfy.
    pub models: Names,
    /// Further anomalies that must not appear.
    pub anomalies: Names,
}

impl Expect {
    /// `prohibited-anomaly-types`.
    pub fn prohibited(&self) -> Names {
        let mut p = models::all_anomalies_implying(&self.anomalies);
        p.extend(models::anomalies_prohibited_by(&self.models));
        p
    }
    /// `reportable-anomaly-types`.
    pub fn reportable(&self) -> Names {
        let mut r = self.prohibited();
        r.extend(["empty-transaction-graph", "cycle-search-timeout"]);
        r
    }
}

/// `remove-redundant-cycle-exists`: a cycle-exists case adds nothing when other
/// anomalies already rule its model out.
fn without_redundant_cycle_exists(kinds: &Names) -> Names {
    let others: Names = kinds
        .iter()
        .copied()
        .filter(|k| !k.ends_with("-cycle-exists"))
        .collect();
    let impossible = models::impossible_models(&others);
    kinds
        .iter()
        .copied()
        .filter(|k| cycle_exists_model(k).is_none_or(|m| !impossible.contains(m)))
        .collect()
}

/// Counts of the run, for `details`.
pub(crate) struct Stats {
    pub edges: usize,
    pub sccs: usize,
}

/// The checker result: verdict, summary and Elle's boundary in `details`.
pub(crate) fn result(name: &str, found: Found<'_>, expect: &Expect, stats: Stats) -> CheckResult {
    let all = found.kinds();
    let prohibited = expect.prohibited();
    let reportable: Names = all.intersection(&expect.reportable()).copied().collect();
    let reportable = without_redundant_cycle_exists(&reportable);
    let bad: Names = reportable.intersection(&prohibited).copied().collect();
    let validity = if reportable.is_empty() {
        Validity::Valid
    } else if !bad.is_empty() {
        Validity::Invalid
    } else {
        Validity::Unknown
    };
    let (not, also_not, possible) = models::boundary(&all);
    let counts: BTreeMap<&str, usize> = found.kinds.iter().map(|(k, v)| (*k, v.0)).collect();
    let list = |s: &Names| s.iter().copied().collect::<Vec<_>>().join(", ");
    let summary = match validity {
        Validity::Valid if all.is_empty() => {
            format!("{} transactions show no anomalies", found.t.txns.len())
        }
        Validity::Valid => format!("found only {}, which the expected models allow", list(&all)),
        Validity::Invalid => format!("found {}; ruled out: {}", list(&reportable), list(&not)),
        Validity::Unknown => format!("could not decide: {}", list(&reportable)),
    };
    let anomalies: Vec<Anomaly> = found
        .kinds
        .into_iter()
        .filter(|(k, _)| reportable.contains(k))
        .flat_map(|(_, (_, v))| v)
        .collect();
    CheckResult {
        checker: name.into(),
        validity,
        summary,
        anomalies,
        details: json!({
            "models": expect.models,
            "anomalies_option": expect.anomalies,
            "txns": found.t.txns.len(),
            "keys": found.t.key_names.len(),
            "anomaly_types": reportable,
            "all_anomaly_types": all,
            "anomaly_counts": counts,
            "not": not,
            "also_not": also_not,
            "ruled_out": not.union(&also_not).collect::<Vec<_>>(),
            "not_ruled_out": possible,
            "edges": stats.edges,
            "nontrivial_sccs": stats.sccs,
        }),
        elapsed_ms: 0.0,
    }
}

/// The verdict when the input itself is the problem: `unknown`, with the reason.
pub(crate) fn unknown(name: &str, reason: String, details: Value) -> CheckResult {
    CheckResult {
        checker: name.into(),
        validity: Validity::Unknown,
        summary: reason,
        anomalies: Vec::new(),
        details,
        elapsed_ms: 0.0,
    }
}
