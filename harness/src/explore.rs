//! `rollcall explore` (harness.md §3): many random schedules on the sim backend from
//! one base seed; the first invalid run is shrunk to a minimal failing one (fewer
//! faults, shorter, fewer operations, fewer nodes) and stored with its seed, its
//! explicit schedule and a `replay` command line.
//!
//! Cases run on every core, yet the outcome is deterministic: the failure reported
//! is the lowest-numbered failing case, and every case below it has finished before
//! it is chosen. Shrinking is greedy (delta debugging over one candidate change at a
//! time) and re-runs the deterministic simulator, so a step is kept only when the
//! smaller run still fails one of the checkers the original failed.

use crate::commands::{simulate, store_run, CommandError, RunReport};
use crate::options::TestOptions;
use crate::run::{cluster, schedule};
use rollcall_checkers::Validity;
use rollcall_workloads::{Fault, PlannedFault};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// What `explore` runs.
#[derive(Clone, Debug)]
pub struct ExploreOptions {
    /// Cases to try.
    pub cases: u64,
    /// Base seed; case i runs with [`case_seed`]`(seed, i)`.
    pub seed: u64,
    /// Options every case starts from (the seed is replaced per case).
    pub base: TestOptions,
    /// Re-runs allowed while shrinking.
    pub shrink_budget: usize,
    /// Worker threads (cores).
    pub threads: usize,
    /// Which share of the cases this process runs (`--shard K/N`).
    pub shard: Shard,
}

/// One of `count` machines splitting a nightly search: shard `index` (0-based) runs
/// the cases `i` with `i % count == index`, so the shards partition the cases exactly
/// and each case keeps the seed it has in an unsharded run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 0-based shard number.
    pub index: u64,
    /// Number of shards.
    pub count: u64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl Shard {
    /// Parses the CLI's 1-based `K/N`.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let bad = || format!("--shard {s:?}: expected K/N with 1 <= K <= N (e.g. 2/8)");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k: u64 = k.trim().parse().map_err(|_| bad())?;
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        if n == 0 || k == 0 || k > n {
            return Err(bad());
        }
        Ok(Shard {
            index: k - 1,
            count: n,
        })
    }

    /// The `j`-th case index of this shard, if below `cases`.
    pub fn case(&self, j: u64, cases: u64) -> Option<u64> {
        let i = j.checked_mul(self.count)?.checked_add(self.index)?;
        (i < cases).then_some(i)
    }
}

/// How one case ended, for the summary and `--junit`.
#[derive(Clone, Debug)]
pub struct CaseOutcome {
    /// Its index.
    pub case: u64,
    /// Its seed.
    pub seed: u64,
    /// The composed verdict.
    pub validity: Validity,
    /// Checkers that were not valid, with their summaries.
    pub findings: Vec<String>,
    /// Wall seconds.
    pub secs: f64,
}

/// The seed of case `i`: well mixed, so neighbouring cases differ in every stream.
pub fn case_seed(seed: u64, i: u64) -> u64 {
    // splitmix64
    let mut z = seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The result of an exploration.
pub struct Explored {
    /// Cases run.
    pub cases_run: u64,
    /// Wall-clock seconds spent running cases (before shrinking).
    pub search_secs: f64,
    /// Every case that ran, in case order.
    pub outcomes: Vec<CaseOutcome>,
    /// The first failing case and its shrunk form, if any failed.
    pub failure: Option<Failure>,
}

/// A failing case before and after shrinking.
pub struct Failure {
    /// Its index.
    pub case: u64,
    /// Options of the case as found (with its explicit schedule).
    pub original: TestOptions,
    /// The minimal failing options.
    pub minimal: TestOptions,
    /// Checkers the original failed.
    pub failing: BTreeSet<String>,
    /// Re-runs spent shrinking.
    pub shrink_runs: usize,
    /// The stored minimal run.
    pub stored: RunReport,
}

fn invalid_checkers(opts: &TestOptions) -> Result<BTreeSet<String>, CommandError> {
    let s = simulate(opts, true)?;
    Ok(s.results
        .results
        .iter()
        .filter(|r| r.validity == Validity::Invalid)
        .map(|r| r.checker.clone())
        .collect())
}

/// Runs the exploration and stores the minimal failing run under `store_dir`.
pub fn explore(
    eo: &ExploreOptions,
    store_dir: &Path,
    command: &[String],
) -> Result<Explored, CommandError> {
    eo.base
        .validate()
        .map_err(|e| CommandError::args(e.to_string()))?;
    if eo.cases == 0 {
        return Err(CommandError::args("--cases must be at least 1"));
    }
    let started = Instant::now();
    let (case, outcomes) = search(eo)?;
    let search_secs = started.elapsed().as_secs_f64();
    let cases_run = outcomes.len() as u64;
    if case == u64::MAX {
        return Ok(Explored {
            cases_run,
            search_secs,
            outcomes,
            failure: None,
        });
    }
    // Pin the schedule the seed drew, so shrinking can edit it.
    let mut original = TestOptions {
        seed: case_seed(eo.seed, case),
        ..eo.base.clone()
    };
    original.schedule = Some(schedule(&original, &cluster(&original)));
    let failing = invalid_checkers(&original)?;
    if failing.is_empty() {
        return Err(CommandError::harness(format!(
            "case {case} failed but its pinned schedule does not: the simulator is not deterministic"
        )));
    }
    let (minimal, shrink_runs) = shrink(&original, &failing, eo.shrink_budget, invalid_checkers)?;
    let sim = simulate(&minimal, true)?;
    let stored = store_run(&minimal, sim, store_dir, command)?;
    Ok(Explored {
        cases_run,
        search_secs,
        outcomes,
        failure: Some(Failure {
            case,
            original,
            minimal,
            failing,
            shrink_runs,
            stored,
        }),
    })
}

/// Runs this shard's cases on every thread until the lowest failing case is known.
/// Returns that case (`u64::MAX`: none failed) and the outcomes a single-threaded
/// search would have produced, in case order.
fn search(eo: &ExploreOptions) -> Result<(u64, Vec<CaseOutcome>), CommandError> {
    let next = AtomicU64::new(0);
    // Lowest failing case index seen so far (u64::MAX: none).
    let first_fail = AtomicU64::new(u64::MAX);
    let error: Mutex<Option<CommandError>> = Mutex::new(None);
    let outcomes: Mutex<Vec<CaseOutcome>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..eo.threads.max(1) {
            scope.spawn(|| loop {
                let j = next.fetch_add(1, Ordering::SeqCst);
                let Some(i) = eo.shard.case(j, eo.cases) else {
                    return;
                };
                if i > first_fail.load(Ordering::SeqCst) {
                    return;
                }
                let opts = TestOptions {
                    seed: case_seed(eo.seed, i),
                    ..eo.base.clone()
                };
                let case_started = Instant::now();
                match simulate(&opts, true) {
                    Ok(s) => {
                        if let Ok(mut o) = outcomes.lock() {
                            o.push(outcome(i, &opts, &s, case_started));
                        }
                        if s.results.valid == Validity::Invalid {
                            first_fail.fetch_min(i, Ordering::SeqCst);
                        }
                    }
                    Err(e) => {
                        if let Ok(mut slot) = error.lock() {
                            slot.get_or_insert(e);
                        }
                        first_fail.store(0, Ordering::SeqCst);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = error.into_inner().ok().flatten() {
        return Err(e);
    }
    let case = first_fail.load(Ordering::SeqCst);
    let mut outcomes = outcomes.into_inner().unwrap_or_default();
    // Cases past the first failure may have finished on other threads: keep only
    // those a single-threaded search would have run, so the summary is deterministic.
    outcomes.retain(|o| o.case <= case);
    outcomes.sort_by_key(|o| o.case);
    Ok((case, outcomes))
}

fn outcome(
    case: u64,
    opts: &TestOptions,
    s: &crate::commands::Simulated,
    started: Instant,
) -> CaseOutcome {
    CaseOutcome {
        case,
        seed: opts.seed,
        validity: s.results.valid,
        findings: s
            .results
            .results
            .iter()
            .filter(|r| r.validity != Validity::Valid)
            .map(|r| format!("{}: {}", r.checker, r.summary))
            .collect(),
        secs: started.elapsed().as_secs_f64(),
    }
}

/// The `--junit` suite of an exploration: one test case per case that ran.
pub fn junit_suite(seed: u64, outcomes: &[CaseOutcome]) -> crate::junit::Suite {
    crate::junit::Suite {
        name: format!("rollcall explore seed {seed}"),
        cases: outcomes
            .iter()
            .map(|o| crate::junit::Case {
                name: format!("case {} (seed {})", o.case, o.seed),
                secs: o.secs,
                validity: o.validity,
                message: o.findings.join("; "),
            })
            .collect(),
    }
}

/// Greedy shrinking: apply the first candidate change that still fails (`invalid`
/// names the checkers a run fails), repeat until none does or the budget is spent.
fn shrink(
    start: &TestOptions,
    failing: &BTreeSet<String>,
    budget: usize,
    invalid: impl Fn(&TestOptions) -> Result<BTreeSet<String>, CommandError>,
) -> Result<(TestOptions, usize), CommandError> {
    greedy_shrink(start, failing, budget, candidates, invalid)
}

/// The one greedy shrinking loop (explore's schedules, Twins' scenarios): replace
/// `start` by the first of `candidates` that still fails one of the `failing`
/// checkers, until none does or `budget` runs are spent; the minimum and the runs.
pub fn greedy_shrink<T: Clone>(
    start: &T,
    failing: &BTreeSet<String>,
    budget: usize,
    candidates: impl Fn(&T) -> Vec<T>,
    invalid: impl Fn(&T) -> Result<BTreeSet<String>, CommandError>,
) -> Result<(T, usize), CommandError> {
    let mut best = start.clone();
    let mut runs = 0;
    'outer: loop {
        for cand in candidates(&best) {
            if runs >= budget {
                break 'outer;
            }
            runs += 1;
            if invalid(&cand)?.iter().any(|c| failing.contains(c)) {
                best = cand;
                continue 'outer;
            }
        }
        break;
    }
    Ok((best, runs))
}

/// Node names a fault names ("n3", "n1-dup", ...).
fn fault_nodes(f: &Fault) -> BTreeSet<String> {
    fn walk(v: &serde_json::Value, out: &mut BTreeSet<String>) {
        match v {
            serde_json::Value::String(s)
                if s.starts_with('n')
                    && s[1..].split('-').next().is_some_and(|d| {
                        !d.is_empty() && d.chars().all(|c| c.is_ascii_digit())
                    }) =>
            {
                out.insert(s.split('-').next().unwrap_or(s).to_string());
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(m) => m.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    if let Ok(v) = serde_json::to_value(f) {
        walk(&v, &mut out);
    }
    out
}

/// Smaller variants of `o`, most aggressive first: drop one fault (latest first),
/// split an overlap of two faults, halve the time limit, halve the load, remove
/// the last roster node, then shorten or move one fault (issue 16).
fn candidates(o: &TestOptions) -> Vec<TestOptions> {
    let mut out = Vec::new();
    let sched: Vec<PlannedFault> = o.schedule.clone().unwrap_or_default();
    let with = |s: Vec<PlannedFault>| TestOptions {
        schedule: Some(s),
        ..o.clone()
    };
    for i in (0..sched.len()).rev() {
        let mut s = sched.clone();
        s.remove(i);
        out.push(with(s));
    }
    out.extend(crate::reshape::splits(o, &sched).into_iter().map(with));
    if o.time_limit_s > 2 {
        let limit = o.time_limit_s / 2;
        let limit_ns = limit * 1_000_000_000;
        let s: Vec<PlannedFault> = sched
            .iter()
            .filter(|f| f.start_ns < limit_ns)
            .map(|f| PlannedFault {
                stop_ns: f.stop_ns.map(|t| t.min(limit_ns)),
                ..f.clone()
            })
            .collect();
        out.push(TestOptions {
            time_limit_s: limit,
            schedule: Some(s),
            ..o.clone()
        });
    }
    if o.concurrency > 1 {
        out.push(TestOptions {
            concurrency: o.concurrency / 2,
            ..o.clone()
        });
    }
    if o.rate > 2.0 {
        out.push(TestOptions {
            rate: (o.rate / 2.0).floor(),
            ..o.clone()
        });
    }
    // Fewer nodes only when no fault names the removed node or a spare (spare names
    // follow the roster size, so they would change meaning).
    if o.nodes > 1 {
        let gone: BTreeSet<String> = (o.nodes..o.nodes + o.spare + 1)
            .map(|i| format!("n{i}"))
            .collect();
        if sched
            .iter()
            .all(|f| fault_nodes(&f.fault).is_disjoint(&gone))
        {
            out.push(TestOptions {
                nodes: o.nodes - 1,
                ..o.clone()
            });
        }
    }
    out.extend(crate::reshape::time_edits(o, &sched).into_iter().map(with));
    out.retain(|c| c.validate().is_ok());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_seeds_differ_and_are_stable() {
        let a: BTreeSet<u64> = (0..1000).map(|i| case_seed(7, i)).collect();
        assert_eq!(a.len(), 1000);
        assert_eq!(case_seed(7, 3), case_seed(7, 3));
        assert_ne!(case_seed(7, 3), case_seed(8, 3));
    }

    #[test]
    fn candidates_shrink_every_dimension() {
        let mut o = TestOptions {
            nemesis: rollcall_workloads::NemesisKind::ALL.to_vec(),
            nemesis_interval_s: 2,
            time_limit_s: 20,
            ..TestOptions::default()
        };
        o.schedule = Some(schedule(&o, &cluster(&o)));
        let n = o.schedule.as_ref().map(|s| s.len()).unwrap_or(0);
        assert!(n >= 3);
        let c = candidates(&o);
        let fewer_faults = c
            .iter()
            .filter(|x| x.schedule.as_ref().map(|s| s.len()) == Some(n - 1))
            .count();
        assert_eq!(fewer_faults, n);
        assert!(c.iter().any(|x| x.time_limit_s == 10));
        assert!(c.iter().any(|x| x.concurrency == 4));
        assert!(c.iter().any(|x| x.rate < o.rate));
        // Every candidate's faults lie within its time limit.
        for x in &c {
            for f in x.schedule.iter().flatten() {
                assert!(f.start_ns < x.time_limit_s * 1_000_000_000);
            }
        }
    }

    #[test]
    fn shards_partition_the_cases_exactly() {
        for cases in [0u64, 1, 7, 100, 101] {
            for n in 1..=6u64 {
                let mut seen = Vec::new();
                for k in 1..=n {
                    let sh = Shard::parse(&format!("{k}/{n}")).unwrap();
                    seen.extend((0..).map_while(|j| sh.case(j, cases)));
                }
                seen.sort_unstable();
                assert_eq!(
                    seen,
                    (0..cases).collect::<Vec<_>>(),
                    "{cases} cases, {n} shards"
                );
            }
        }
        for bad in ["0/3", "4/3", "1/0", "x/2", "3", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Shard::parse(" 2 / 8").unwrap(),
            Shard { index: 1, count: 8 }
        );
    }

    #[test]
    fn fault_nodes_finds_names() {
        let f = Fault::Kill {
            nodes: vec!["n2".into(), "n3".into()],
        };
        let got = fault_nodes(&f);
        assert!(got.contains("n2") && got.contains("n3"));
    }

    /// Issue 16: shrinking an overlapping schedule. The failure (a stand-in for
    /// the simulator here) needs a kill while a partition holds; shrinking must
    /// drop every other fault, try splitting the two (which no longer fails) and
    /// keep them overlapping.
    #[test]
    fn shrinking_keeps_the_overlap_a_failure_needs() {
        use rollcall_workloads::NemesisKind as K;
        let mut o = TestOptions {
            nemesis: vec![K::Partition, K::Kill, K::Pause, K::Flaky],
            max_concurrent_faults: 3,
            nemesis_interval_s: 2,
            time_limit_s: 30,
            ..TestOptions::default()
        };
        o.schedule = Some(schedule(&o, &cluster(&o)));
        let overlapping = |o: &TestOptions| {
            let s = o.schedule.clone().unwrap_or_default();
            let of = |k: K| s.iter().filter(move |p| p.fault.kind() == k);
            of(K::Kill).any(|a| {
                of(K::Partition).any(|b| {
                    let (a1, b1) = (a.stop_ns.unwrap_or(0), b.stop_ns.unwrap_or(0));
                    a.start_ns < b1 && b.start_ns < a1
                })
            })
        };
        // Find a seed whose drawn schedule has the overlap and more besides.
        let mut seed = 1;
        while !(overlapping(&o) && o.schedule.as_ref().is_some_and(|s| s.len() > 3)) {
            seed += 1;
            o.seed = seed;
            o.schedule = Some(schedule(&o, &cluster(&o)));
            assert!(seed < 200, "no overlapping kill and partition drawn");
        }
        let failing: BTreeSet<String> = ["stand-in".to_string()].into();
        let split_tried = std::cell::Cell::new(false);
        let judge = |c: &TestOptions| {
            let sched = c.schedule.clone().unwrap_or_default();
            if sched.len() == 2 && !overlapping(c) {
                split_tried.set(true);
            }
            Ok(if overlapping(c) {
                failing.clone()
            } else {
                BTreeSet::new()
            })
        };
        let (min, _) = shrink(&o, &failing, 500, judge).unwrap();
        let s = min.schedule.clone().unwrap_or_default();
        let kinds: Vec<K> = s.iter().map(|p| p.fault.kind()).collect();
        assert_eq!(s.len(), 2, "{s:?}");
        assert!(kinds.contains(&K::Kill) && kinds.contains(&K::Partition));
        assert!(overlapping(&min));
        assert!(split_tried.get(), "the split step was never tried");
    }
}
