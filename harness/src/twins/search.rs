//! Running a Twins search (issue 12): every chosen scenario on the simulator,
//! checked by every checker a normal run has, on every core with a deterministic
//! outcome; the lowest-numbered failing scenario is shrunk (drop a phase, then a
//! phase's partition replaced by full connectivity, then two groups merged, then
//! both copies allowed to propose) and the minimal run stored like `explore`'s.

use super::{sample, scenario_options, Phase, Proposer, Scenario, Space};
use crate::commands::{simulate, store_run, CommandError, RunReport};
use crate::options::TestOptions;
use rollcall_checkers::Validity;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// What a Twins search runs.
#[derive(Clone, Debug)]
pub struct TwinsOptions {
    /// Most scenarios to run (the enumeration is sampled beyond it).
    pub scenarios: u64,
    /// Phases per scenario.
    pub phases: usize,
    /// Twinned validators (1 = f for 4 nodes; more is beyond the fault model).
    pub twins: usize,
    /// Most groups in a phase's partition (2 or 3).
    pub max_groups: usize,
    /// Seed of the sample and of every scenario's run.
    pub seed: u64,
    /// Options every scenario's run starts from (workload, time limit, nodes...).
    pub base: TestOptions,
    /// Only this scenario (its position in the sample), for reproducing one alone.
    pub only: Option<u64>,
    /// Re-runs allowed while shrinking.
    pub shrink_budget: usize,
    /// Worker threads (cores).
    pub threads: usize,
}

/// How one scenario ended.
#[derive(Clone, Debug)]
pub struct ScenarioOutcome {
    /// Its position in the search.
    pub position: u64,
    /// Its number in the enumeration.
    pub index: u64,
    /// The scenario.
    pub scenario: Scenario,
    /// The composed verdict.
    pub validity: Validity,
    /// Checkers that were not valid, with their summaries.
    pub findings: Vec<String>,
    /// Wall seconds.
    pub secs: f64,
}

/// A failing scenario before and after shrinking.
pub struct TwinsFailure {
    /// The first failing scenario's outcome.
    pub outcome: ScenarioOutcome,
    /// Checkers it failed.
    pub failing: BTreeSet<String>,
    /// The minimal failing scenario.
    pub minimal: Scenario,
    /// Re-runs spent shrinking.
    pub shrink_runs: usize,
    /// The stored minimal run.
    pub stored: RunReport,
}

/// The result of a Twins search.
pub struct TwinsReport {
    /// The scenario space.
    pub space: Space,
    /// Scenarios in the space.
    pub total: u64,
    /// Every scenario that ran, in search order.
    pub outcomes: Vec<ScenarioOutcome>,
    /// Wall seconds running them (before shrinking).
    pub search_secs: f64,
    /// The first failure, shrunk; `None` when every scenario was valid.
    pub failure: Option<TwinsFailure>,
    /// A run stored for `--scenario` (valid or not), for `replay`.
    pub stored: Option<RunReport>,
}

impl TwinsReport {
    /// Scenarios whose verdict was invalid.
    pub fn invalid(&self) -> usize {
        (self.outcomes.iter())
            .filter(|o| o.validity == Validity::Invalid)
            .count()
    }
}

/// The space a search's options describe, over the base options' roster.
pub fn space_of(to: &TwinsOptions) -> Result<Space, CommandError> {
    let names: Vec<String> = (1..=to.base.nodes).map(|i| format!("n{i}")).collect();
    Space::new(&names, to.twins, to.max_groups, to.phases)
        .map_err(|e| CommandError::args(e.to_string()))
}

/// The space and its size, once the options are known to make sense.
fn checked_space(to: &TwinsOptions) -> Result<(Space, u64), CommandError> {
    let space = space_of(to)?;
    let total = space
        .count()
        .map_err(|e| CommandError::args(e.to_string()))?;
    let phases_ns = to.phases as u64 * super::phase_ns(&crate::sim::sim_timeouts());
    if to.base.time_limit_s.saturating_mul(1_000_000_000) <= phases_ns {
        return Err(CommandError::args(format!(
            "--time-limit must be longer than the {} phases ({} ms)",
            to.phases,
            phases_ns / 1_000_000
        )));
    }
    if to.scenarios == 0 {
        return Err(CommandError::args("--scenarios must be at least 1"));
    }
    Ok((space, total))
}

/// Runs the search; stores the shrunk failure (or, with `only`, the one run)
/// under `store_dir`.
pub fn twins(
    to: &TwinsOptions,
    store_dir: &Path,
    command: &[String],
) -> Result<TwinsReport, CommandError> {
    let (space, total) = checked_space(to)?;
    let mut chosen: Vec<(u64, u64)> = sample(to.seed, total, to.scenarios)
        .into_iter()
        .enumerate()
        .map(|(p, i)| (p as u64, i))
        .collect();
    if let Some(p) = to.only {
        chosen.retain(|(q, _)| *q == p);
        if chosen.is_empty() {
            return Err(CommandError::args(format!(
                "--scenario {p}: the search has {} scenarios (0..{})",
                to.scenarios.min(total),
                to.scenarios.min(total)
            )));
        }
    }
    let base = TestOptions {
        seed: to.seed,
        ..to.base.clone()
    };
    let started = Instant::now();
    let outcomes = run_all(&base, &space, &chosen, to.threads)?;
    let search_secs = started.elapsed().as_secs_f64();
    let mut report = TwinsReport {
        space,
        total,
        outcomes,
        search_secs,
        failure: None,
        stored: None,
    };
    let one = (to.only).and(report.outcomes.first().map(|o| o.scenario.clone()));
    if let Some(scenario) = one {
        let opts = scenario_options(&base, &report.space, &scenario);
        let sim = simulate(&opts, true)?;
        report.stored = Some(store_run(&opts, sim, store_dir, command)?);
    }
    let first = report
        .outcomes
        .iter()
        .find(|o| o.validity == Validity::Invalid);
    if let Some(o) = first.cloned() {
        report.failure = Some(shrink_and_store(
            &base,
            &report.space,
            o,
            to.shrink_budget,
            store_dir,
            command,
        )?);
    }
    Ok(report)
}

/// Runs `chosen` (position, enumeration index) on every thread; outcomes in
/// position order whatever the threads did.
fn run_all(
    base: &TestOptions,
    space: &Space,
    chosen: &[(u64, u64)],
    threads: usize,
) -> Result<Vec<ScenarioOutcome>, CommandError> {
    let next = AtomicUsize::new(0);
    let error: Mutex<Option<CommandError>> = Mutex::new(None);
    let outcomes: Mutex<Vec<ScenarioOutcome>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(&(position, index)) = chosen.get(k) else {
                    return;
                };
                let Some(scenario) = space.scenario(index) else {
                    return;
                };
                let started = Instant::now();
                let opts = scenario_options(base, space, &scenario);
                match simulate(&opts, true) {
                    Ok(s) => {
                        let o = ScenarioOutcome {
                            position,
                            index,
                            scenario,
                            validity: s.results.valid,
                            findings: (s.results.results.iter())
                                .filter(|r| r.validity != Validity::Valid)
                                .map(|r| format!("{}: {}", r.checker, r.summary))
                                .collect(),
                            secs: started.elapsed().as_secs_f64(),
                        };
                        if let Ok(mut v) = outcomes.lock() {
                            v.push(o);
                        }
                    }
                    Err(e) => {
                        if let Ok(mut slot) = error.lock() {
                            slot.get_or_insert(e);
                        }
                        next.store(chosen.len(), Ordering::SeqCst);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = error.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut v = outcomes.into_inner().unwrap_or_default();
    v.sort_by_key(|o| o.position);
    Ok(v)
}

/// The checkers a scenario's run fails.
fn invalid_checkers(
    base: &TestOptions,
    space: &Space,
    scenario: &Scenario,
) -> Result<BTreeSet<String>, CommandError> {
    let s = simulate(&scenario_options(base, space, scenario), true)?;
    Ok((s.results.results.iter())
        .filter(|r| r.validity == Validity::Invalid)
        .map(|r| r.checker.clone())
        .collect())
}

fn shrink_and_store(
    base: &TestOptions,
    space: &Space,
    outcome: ScenarioOutcome,
    budget: usize,
    store_dir: &Path,
    command: &[String],
) -> Result<TwinsFailure, CommandError> {
    let failing = invalid_checkers(base, space, &outcome.scenario)?;
    if failing.is_empty() {
        return Err(CommandError::harness(format!(
            "scenario {} failed once but not again: the simulator is not deterministic",
            outcome.position
        )));
    }
    let (minimal, shrink_runs) = shrink(&outcome.scenario, &failing, budget, |s| {
        invalid_checkers(base, space, s)
    })?;
    let opts = scenario_options(base, space, &minimal);
    let stored = store_run(&opts, simulate(&opts, true)?, store_dir, command)?;
    Ok(TwinsFailure {
        outcome,
        failing,
        minimal,
        shrink_runs,
        stored,
    })
}

/// Greedy shrinking: the first candidate that still fails one of `failing`
/// replaces the scenario, until none does or the budget is spent
/// ([`crate::explore::greedy_shrink`] over [`candidates`]).
pub fn shrink(
    start: &Scenario,
    failing: &BTreeSet<String>,
    budget: usize,
    invalid: impl Fn(&Scenario) -> Result<BTreeSet<String>, CommandError>,
) -> Result<(Scenario, usize), CommandError> {
    crate::explore::greedy_shrink(start, failing, budget, candidates, invalid)
}

/// Smaller scenarios, most aggressive first: one phase dropped (the later phases
/// move earlier), one phase's partition replaced by full connectivity, two groups
/// of one phase merged, one twin pair's proposer choice back to both.
pub fn candidates(s: &Scenario) -> Vec<Scenario> {
    let mut out = Vec::new();
    let with = |k: usize, p: Phase| {
        let mut c = s.clone();
        c.phases[k] = p;
        c
    };
    for k in (0..s.phases.len()).rev() {
        let mut c = s.clone();
        c.phases.remove(k);
        out.push(c);
    }
    for (k, p) in s.phases.iter().enumerate() {
        if p.groups.len() > 1 {
            let all: Vec<String> = p.groups.concat();
            out.push(with(
                k,
                Phase {
                    groups: vec![all],
                    ..p.clone()
                },
            ));
        }
    }
    for (k, p) in s.phases.iter().enumerate() {
        if p.groups.len() > 2 {
            for a in 0..p.groups.len() {
                for b in a + 1..p.groups.len() {
                    let mut g = p.groups.clone();
                    let moved = g.remove(b);
                    g[a].extend(moved);
                    out.push(with(
                        k,
                        Phase {
                            groups: g,
                            ..p.clone()
                        },
                    ));
                }
            }
        }
    }
    for (k, p) in s.phases.iter().enumerate() {
        for (j, who) in p.proposers.iter().enumerate() {
            if *who != Proposer::Both {
                let mut q = p.clone();
                q.proposers[j] = Proposer::Both;
                out.push(with(k, q));
            }
        }
    }
    out
}

/// The `--junit` suite of a search: one test case per scenario.
pub fn junit_suite(seed: u64, outcomes: &[ScenarioOutcome]) -> crate::junit::Suite {
    crate::junit::Suite {
        name: format!("rollcall twins seed {seed}"),
        cases: (outcomes.iter())
            .map(|o| crate::junit::Case {
                name: format!("scenario {} (#{}): {}", o.position, o.index, o.scenario),
                secs: o.secs,
                validity: o.validity,
                message: o.findings.join("; "),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinking_drops_phases_then_partitions_then_proposers() {
        let space = Space::new(&["n1", "n2", "n3", "n4"].map(String::from), 1, 3, 4).unwrap();
        // Find a scenario whose phase 2 is a 3-group partition with a proposer choice.
        let s = (0..space.count().unwrap())
            .step_by(97)
            .filter_map(|i| space.scenario(i))
            .find(|s| s.phases[2].groups.len() == 3 && s.phases[2].proposers[0] != Proposer::Both)
            .unwrap();
        let key = s.phases[2].groups.clone();
        // A stand-in failure: some phase still splits the groups of `key` 0 and 1.
        let fails = |c: &Scenario| {
            let split = c.phases.iter().any(|p| {
                let side = |x: &String| p.groups.iter().position(|g| g.contains(x));
                side(&key[0][0]) != side(&key[1][0])
            });
            Ok(if split {
                ["stand-in".to_string()].into()
            } else {
                BTreeSet::new()
            })
        };
        let failing: BTreeSet<String> = ["stand-in".to_string()].into();
        let (min, runs) = shrink(&s, &failing, 500, fails).unwrap();
        assert!(runs > 0);
        assert_eq!(min.phases.len(), 1, "{min}");
        assert_eq!(min.phases[0].groups.len(), 2, "merged to two groups: {min}");
        assert_eq!(min.phases[0].proposers, vec![Proposer::Both]);
    }
}
