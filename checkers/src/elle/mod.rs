//! Elle's checkers (Kingsbury & Alvaro, "Elle", VLDB 2020; jepsen-io/elle),
//! harness.md §7: `elle-append` for list-append transactions
//! (list_append.clj) and `elle-rw-register` for read-write registers
//! (rw_register.clj).
//!
//! Both parse transactions into a compact form ([`txn`]), find the direct
//! anomalies ([`direct`], [`append`], [`register`]), infer version orders and
//! ww/wr/rw edges, add process or realtime edges as the expected models need
//! ([`graph`]), search each strongly connected component for cycles
//! ([`cycles`]) and judge with Elle's model lattice ([`models`], [`report`]).

mod append;
mod cycles;
mod direct;
mod graph;
mod keyorder;
pub mod models;
mod register;
mod report;
mod txn;

use serde_json::json;
use std::time::{Duration, Instant};

pub use report::Expect;

use crate::history::History;
use crate::result::{timed, CheckResult, Checker};
use graph::{Graph, PROC, RT};
use models::Names;
use report::{Found, Stats};
use txn::{InputProblem, Workload};

/// A model name Elle does not know (`validate-models`).
#[derive(Debug, thiserror::Error)]
#[error("unknown consistency model {0:?}; known: {known}", known = models::all_models().into_iter().collect::<Vec<_>>().join(", "))]
pub struct UnknownModel(pub String);

/// An anomaly name Elle does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown anomaly {0:?}; known: {known}", known = known_anomalies().into_iter().collect::<Vec<_>>().join(", "))]
pub struct UnknownAnomaly(pub String);

/// Every anomaly name `--anomalies` accepts.
pub fn known_anomalies() -> Names {
    let mut all = models::all_anomalies();
    all.extend(cycles::cycle_types());
    all
}

/// Options shared by both Elle checkers.
#[derive(Debug, Clone)]
pub struct ElleOptions {
    /// Expected models and prohibited anomalies.
    pub expect: Expect,
    /// Elle's `cycle-search-timeout` for each strongly connected component.
    pub per_scc_limit: Duration,
    /// Overall budget for cycle search; later components get a fallback cycle.
    pub cycle_search_limit: Duration,
    /// Elle's `:wfr-keys?` for rw-register: assume that within a transaction a
    /// write follows the read of the same key, and infer version order from it.
    /// Off by default, as in Elle (rw_register.clj), so `rollcall check` gives
    /// Elle's default verdict on a foreign history.
    pub wfr_keys: bool,
    /// Elle's `:sequential-keys?` for rw-register: assume each key is by itself
    /// sequentially consistent and infer version order from each process's
    /// order of transactions. Off by default, as in Elle.
    pub sequential_keys: bool,
    /// Elle's `:linearizable-keys?` for rw-register: assume each key is by
    /// itself linearizable and infer version order from real time. Off by
    /// default, as in Elle.
    pub linearizable_keys: bool,
}

impl Default for ElleOptions {
    fn default() -> Self {
        ElleOptions {
            expect: Expect {
                models: ["strict-serializable"].into_iter().collect(),
                anomalies: Names::new(),
            },
            per_scc_limit: Duration::from_secs(1),
            cycle_search_limit: Duration::from_secs(10),
            wfr_keys: false,
            sequential_keys: false,
            linearizable_keys: false,
        }
    }
}

impl ElleOptions {
    /// Options for a comma-separated list of models (Elle's `:consistency-models`).
    pub fn with_models(models_list: &str) -> Result<Self, UnknownModel> {
        let mut o = ElleOptions::default();
        o.expect.models = parse_names(models_list, models::known_model).map_err(UnknownModel)?;
        Ok(o)
    }

    /// Add a comma-separated list of anomalies that must not appear (`:anomalies`).
    pub fn with_anomalies(mut self, list: &str) -> Result<Self, UnknownAnomaly> {
        let known = known_anomalies();
        let find = |a: &str| known.iter().copied().find(|k| *k == a);
        self.expect.anomalies = parse_names(list, find).map_err(UnknownAnomaly)?;
        Ok(self)
    }

    /// Which order edges the expected anomalies need (`additional-graphs`):
    /// realtime if any realtime anomaly is reportable, else process if any
    /// process one is, else none.
    fn order_edges(&self) -> u8 {
        let r = self.expect.reportable();
        if r.iter().any(|a| a.ends_with("-realtime")) {
            RT
        } else if r.iter().any(|a| a.ends_with("-process")) {
            PROC
        } else {
            0
        }
    }

    fn run(&self, name: &str, h: &History, w: Workload) -> CheckResult {
        let t = txn::parse(h, w);
        if let Some(r) = input_problem(name, &t) {
            return r;
        }
        let mut found = Found::new(
            &t,
            if w == Workload::ListAppend {
                append::explain
            } else {
                register::explain
            },
        );
        let mut edges = match w {
            Workload::ListAppend => append::analyse(&mut found),
            Workload::Register => register::analyse(
                &mut found,
                register::Sources {
                    wfr_keys: self.wfr_keys,
                    sequential_keys: self.sequential_keys,
                    linearizable_keys: self.linearizable_keys,
                },
            ),
        };
        match self.order_edges() {
            RT => graph::realtime_edges(&t, &mut edges),
            PROC => graph::process_edges(&t, &mut edges),
            _ => {}
        }
        if edges.is_empty() {
            found.add(
                "empty-transaction-graph",
                "no two transactions are related by any dependency, so nothing can be said".into(),
                Vec::new(),
                json!({}),
            );
        }
        let n_edges = edges.len();
        let g = Graph::new(t.len(), edges);
        let limits = cycles::Limits {
            per_scc: self.per_scc_limit,
            deadline: Instant::now() + self.cycle_search_limit,
        };
        let sccs = cycles::search(&g, &limits, &mut found);
        drop(g);
        report::result(
            name,
            found,
            &self.expect,
            Stats {
                edges: n_edges,
                sccs,
            },
        )
    }
}

fn parse_names(list: &str, find: impl Fn(&str) -> Option<&'static str>) -> Result<Names, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| find(s).ok_or_else(|| s.to_string()))
        .collect()
}

/// `unknown` when the input is the problem: bad micro-ops, a value written
/// twice to a key, or no transaction at all.
fn input_problem(name: &str, t: &txn::Txns) -> Option<CheckResult> {
    let reason = match t.problems.first() {
        Some(InputProblem::BadMop { op, mop }) => format!(
            "operation at index {op} has a micro-op this checker cannot interpret: {mop} ({} such operations)",
            t.problems.iter().filter(|p| matches!(p, InputProblem::BadMop { .. })).count()
        ),
        Some(InputProblem::DuplicateWrite { op, key, value }) => format!(
            "value {value} written to key {key} more than once (operation at index {op}; a client retry?): the version order cannot be recovered"
        ),
        None if t.txns.is_empty() => "no transactions the checker recognised: nothing to judge".into(),
        None => return None,
    };
    let examples: Vec<String> = t
        .problems
        .iter()
        .take(8)
        .map(|p| format!("{p:?}"))
        .collect();
    Some(report::unknown(
        name,
        reason,
        json!({"problems": examples, "problem_count": t.problems.len(), "txns": t.txns.len()}),
    ))
}

/// Elle's list-append checker (`elle-append`, harness.md §7).
#[derive(Debug, Clone, Default)]
pub struct ElleChecker {
    /// Models, anomalies and time limits.
    pub opts: ElleOptions,
}

impl ElleChecker {
    /// A checker expecting the named model(s), comma-separated.
    pub fn with_model(model: &str) -> Result<Self, UnknownModel> {
        Ok(ElleChecker {
            opts: ElleOptions::with_models(model)?,
        })
    }
}

impl Checker for ElleChecker {
    fn name(&self) -> &str {
        "elle-append"
    }
    fn check(&self, h: &History) -> CheckResult {
        timed(|| self.opts.run(self.name(), h, Workload::ListAppend))
    }
}

/// Elle's read-write register checker (`elle-rw-register`).
#[derive(Debug, Clone, Default)]
pub struct RwRegisterChecker {
    /// Models, anomalies and time limits.
    pub opts: ElleOptions,
}

impl RwRegisterChecker {
    /// A checker expecting the named model(s), comma-separated.
    pub fn with_model(model: &str) -> Result<Self, UnknownModel> {
        Ok(RwRegisterChecker {
            opts: ElleOptions::with_models(model)?,
        })
    }
}

impl Checker for RwRegisterChecker {
    fn name(&self) -> &str {
        "elle-rw-register"
    }
    fn check(&self, h: &History) -> CheckResult {
        timed(|| self.opts.run(self.name(), h, Workload::Register))
    }
}
