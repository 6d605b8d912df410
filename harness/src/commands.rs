//! The subcommands behind the CLI (harness.md §3), returning Jepsen exit codes:
//! 0 valid, 1 invalid, 2 unknown, 254 bad arguments, 255 the harness failed.

use crate::checks::{check_run, infer_workload, node_dumps, Results};
use crate::options::{BackendKind, TestOptions};
use crate::progress::Progress;
use crate::run::{cluster, run, Seeds};
use crate::sim::{sim_timeouts, SimBackend, SimOptions};
use crate::store::{self, RunFiles};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rollcall_checkers::cluster::ClusterRun;
use rollcall_checkers::{compose, History, Validity};
use rollcall_workloads::WorkloadKind;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Exit code for bad arguments (harness.md §3).
pub const EXIT_BAD_ARGS: i32 = 254;
/// Exit code for a failure of the harness itself (harness.md §3).
pub const EXIT_HARNESS: i32 = 255;

/// An error with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct CommandError {
    /// 254 or 255.
    pub code: i32,
    /// What went wrong.
    pub msg: String,
}

impl CommandError {
    /// Bad arguments (254).
    pub fn args(msg: impl Into<String>) -> Self {
        CommandError {
            code: EXIT_BAD_ARGS,
            msg: msg.into(),
        }
    }
    /// Harness failure (255).
    pub fn harness(msg: impl Into<String>) -> Self {
        CommandError {
            code: EXIT_HARNESS,
            msg: msg.into(),
        }
    }
}

/// One finished run.
pub struct RunReport {
    /// Its folder.
    pub dir: PathBuf,
    /// The composed verdict.
    pub valid: Validity,
    /// `history.jsonl`.
    pub history: String,
    /// `schedule.json` as written.
    pub schedule: String,
    /// Every checker's result.
    pub results: Results,
}

/// Runs one test and stores it (harness.md §8).
pub fn run_one(
    opts: &TestOptions,
    store_dir: &Path,
    command: &[String],
    quiet: bool,
) -> Result<RunReport, CommandError> {
    opts.validate()
        .map_err(|e| CommandError::args(e.to_string()))?;
    if opts.backend == BackendKind::Docker {
        return crate::docker_backend::run_one(opts, store_dir, command, quiet);
    }
    let sim = simulate(opts, quiet)?;
    store_run(opts, sim, store_dir, command)
}

/// A finished simulated run, checked but not stored.
pub struct Simulated {
    /// The cluster it ran.
    pub spec: crate::cluster::ClusterSpec,
    /// History, schedule and dumps.
    pub out: crate::run::RunOutput,
    /// Every checker's result.
    pub results: Results,
}

/// Runs one test on the sim backend and checks it, storing nothing: the inner loop
/// of `rollcall explore`, and the first half of [`run_one`].
pub fn simulate(opts: &TestOptions, quiet: bool) -> Result<Simulated, CommandError> {
    opts.validate()
        .map_err(|e| CommandError::args(e.to_string()))?;
    let spec = cluster(opts);
    let mut backend = SimBackend::new(
        spec.clone(),
        SimOptions {
            timeouts: sim_timeouts(),
            lying_disk: opts.lying_disk,
            panic_at_ns: opts.sim_panic_at_s.map(|s| s.saturating_mul(1_000_000_000)),
            no_sync: opts.no_sync,
        },
        ChaCha8Rng::seed_from_u64(Seeds::from_seed(opts.seed).backend),
    )
    .map_err(|e| CommandError::harness(e.to_string()))?;
    let progress = Progress::new(opts.time_limit_s, quiet);
    let outcome = crate::crash::catching(|| run(opts, &spec, &mut backend, &progress));
    progress.finish();
    let out = match outcome {
        Ok(out) => out.map_err(|e| CommandError::harness(format!("the simulation failed: {e}")))?,
        // A panic in the node core or the simulator is a verdict: stored, replayable.
        Err(crash) => return Ok(crashed(spec, &crash)),
    };
    let results = check_output(opts, &spec, &out)?;
    Ok(Simulated { spec, out, results })
}

/// A run that panicked: no history survives the unwinding, and the one result is
/// the invalid `crash` (the seed and options in `test.json` reproduce it).
fn crashed(spec: crate::cluster::ClusterSpec, crash: &crate::crash::Crash) -> Simulated {
    let result = crash.result();
    Simulated {
        spec,
        out: crate::run::RunOutput {
            history: String::new(),
            schedule: serde_json::json!({ "crash": result.summary }),
            dumps: Vec::new(),
        },
        results: Results {
            valid: Validity::Invalid,
            results: vec![result],
        },
    }
}

/// Checks a finished run of either backend (harness.md §7).
pub fn check_output(
    opts: &TestOptions,
    spec: &crate::cluster::ClusterSpec,
    out: &crate::run::RunOutput,
) -> Result<Results, CommandError> {
    let history = History::parse_jsonl(&out.history)
        .map_err(|e| CommandError::harness(format!("the recorded history is malformed: {e}")))?;
    let kept = history.clone();
    check_run(
        opts.workload,
        &opts.model,
        &spec.genesis,
        history,
        node_dumps(&out.dumps),
    )
    .map(|r| crate::checks::with_dump_checks(r, &kept, &out.dumps))
    .map_err(CommandError::args)
}

/// Stores a checked run in a new `store_dir/<name>/<timestamp>/` (harness.md §8).
pub fn store_run(
    opts: &TestOptions,
    sim: Simulated,
    store_dir: &Path,
    command: &[String],
) -> Result<RunReport, CommandError> {
    let dir = store::new_run_dir(store_dir, &opts.name)
        .map_err(|e| CommandError::harness(e.to_string()))?;
    save_run(
        opts,
        &sim.spec,
        sim.out,
        sim.results,
        store_dir,
        dir,
        command,
    )
}

/// Writes a checked run into its folder `dir` of `store_dir` (harness.md §8), for
/// either backend.
pub fn save_run(
    opts: &TestOptions,
    spec: &crate::cluster::ClusterSpec,
    out: crate::run::RunOutput,
    results: Results,
    store_dir: &Path,
    dir: PathBuf,
    command: &[String],
) -> Result<RunReport, CommandError> {
    let schedule = format!(
        "{}\n",
        serde_json::to_string_pretty(&out.schedule).unwrap_or_default()
    );
    store::save(
        store_dir,
        &dir,
        &RunFiles {
            test: store::test_json(opts, command),
            genesis: &spec.genesis,
            schedule: &out.schedule,
            history: &out.history,
            results: &results.to_json(),
            dumps: &out.dumps,
        },
    )
    .map_err(|e| CommandError::harness(e.to_string()))?;
    Ok(RunReport {
        dir,
        valid: results.valid,
        history: out.history,
        schedule,
        results,
    })
}

/// Prints a run's verdicts on stdout.
pub fn print_results(r: &Results) {
    for c in &r.results {
        println!(
            "{:<18} {:<8} {}",
            c.checker,
            format!("{:?}", c.validity).to_lowercase(),
            c.summary
        );
    }
    println!("verdict: {}", format!("{:?}", r.valid).to_lowercase());
}

/// `rollcall test`: `test_count` runs with seeds `seed, seed+1, ...`, stopping at
/// the first invalid one (harness.md §3 `--test-count`).
pub fn test(
    opts: &TestOptions,
    test_count: u64,
    store_dir: &Path,
    command: &[String],
    quiet: bool,
    junit: Option<&Path>,
) -> Result<Validity, CommandError> {
    if test_count == 0 {
        return Err(CommandError::args("--test-count must be at least 1"));
    }
    let mut worst = Validity::Valid;
    let mut suites = Vec::new();
    for i in 0..test_count {
        let mut o = opts.clone();
        o.seed = opts.seed.wrapping_add(i);
        let started = Instant::now();
        // The seed first (TigerBeetle's VOPR habit): whatever happens next, the run
        // can be reproduced from this line.
        eprintln!("rollcall: seed {} ({:?} backend)", o.seed, o.backend);
        let r = run_one(&o, store_dir, command, quiet)?;
        print_results(&r.results);
        println!(
            "run {} (seed {}) in {:.2} s wall: {}",
            r.dir.display(),
            o.seed,
            started.elapsed().as_secs_f64(),
            format!("{:?}", r.valid).to_lowercase()
        );
        worst = worst.and(r.valid);
        let name = format!("{} (seed {})", r.dir.display(), o.seed);
        suites.push(crate::junit::run_suite(&name, &r.results));
        if let Some(path) = junit {
            // Rewritten after every run, so a nightly job killed mid-way keeps what ran.
            crate::junit::write(path, &suites).map_err(CommandError::harness)?;
        }
        if r.valid == Validity::Invalid {
            // Like Jepsen: stop at the first invalid run and say how to reproduce it.
            println!("reproduce with: rollcall replay {}", r.dir.display());
            break;
        }
    }
    Ok(worst)
}

/// `rollcall replay RUN_DIR`: re-runs with the recorded seed and options and says
/// whether the history and schedule are byte-identical.
pub fn replay(run_dir: &Path, quiet: bool) -> Result<Validity, CommandError> {
    // `store/latest` is a symlink: resolve it so the new run lands in the same store.
    let run_dir = &run_dir
        .canonicalize()
        .map_err(|e| CommandError::args(format!("{}: {e}", run_dir.display())))?;
    let opts = store::load_options(run_dir).map_err(|e| CommandError::args(e.to_string()))?;
    eprintln!(
        "rollcall: replaying seed {} ({:?} backend)",
        opts.seed, opts.backend
    );
    let old_history = std::fs::read_to_string(run_dir.join("history.jsonl")).map_err(|e| {
        CommandError::args(format!("{}: {e}", run_dir.join("history.jsonl").display()))
    })?;
    let old_schedule = std::fs::read_to_string(run_dir.join("schedule.json")).unwrap_or_default();
    let store_dir = run_dir
        .parent()
        .and_then(|p| p.parent())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("store"));
    let command = vec![
        "rollcall".into(),
        "replay".into(),
        run_dir.display().to_string(),
    ];
    let r = run_one(&opts, &store_dir, &command, quiet)?;
    print_results(&r.results);
    let same_h = r.history == old_history;
    let same_s = r.schedule == old_schedule;
    if same_h && same_s {
        println!(
            "replay {}: history and schedule byte-identical",
            r.dir.display()
        );
        Ok(r.valid)
    } else {
        let line = old_history
            .lines()
            .zip(r.history.lines())
            .position(|(a, b)| a != b)
            .map(|i| i + 1);
        Err(CommandError::harness(format!(
            "replay {} differs from {}: history {}, schedule {} (first differing line {:?})",
            r.dir.display(),
            run_dir.display(),
            if same_h { "identical" } else { "differs" },
            if same_s { "identical" } else { "differs" },
            line
        )))
    }
}

/// `rollcall check RUN_DIR|HISTORY_FILE`: re-checks a stored run or a history file.
pub fn check(
    path: &Path,
    workload: Option<WorkloadKind>,
    edn: bool,
    model: Option<&str>,
) -> Result<Validity, CommandError> {
    if path.is_dir() {
        let run = ClusterRun::load(path).map_err(|e| CommandError::args(e.to_string()))?;
        let stored = store::load_options(path).ok();
        let workload = workload
            .or(stored.as_ref().map(|o| o.workload))
            .or_else(|| infer_workload(&run.history))
            .ok_or_else(|| CommandError::args("cannot tell the workload: give --workload"))?;
        let model = model
            .map(str::to_string)
            .or(stored.map(|o| o.model))
            .unwrap_or_else(|| "strict-serializable".into());
        let r = check_run(workload, &model, &run.genesis, run.history, run.nodes)
            .map_err(CommandError::args)?;
        print_results(&r);
        return Ok(r.valid);
    }
    let history = if edn {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CommandError::args(format!("{}: {e}", path.display())))?;
        rollcall_checkers::edn::parse_history(&text)
    } else {
        History::from_file(path)
    }
    .map_err(|e| CommandError::args(format!("{}: {e}", path.display())))?;
    let workload = workload
        .or_else(|| infer_workload(&history))
        .ok_or_else(|| CommandError::args("cannot tell the workload: give --workload"))?;
    let checkers =
        crate::checks::history_checkers(workload, model.unwrap_or("strict-serializable"), None)
            .map_err(CommandError::args)?;
    let results: Vec<_> = checkers.iter().map(|c| c.check(&history)).collect();
    let r = Results {
        valid: compose(&results),
        results,
    };
    print_results(&r);
    println!(
        "{}",
        serde_json::to_string_pretty(&r.to_json()).unwrap_or_default()
    );
    Ok(r.valid)
}

/// `rollcall bench-sim`: committed heights per wall-clock second of a fault-free
/// simulated cluster with no clients.
pub fn bench_sim(nodes: usize, seconds: f64, seed: u64) -> Result<(), CommandError> {
    let opts = TestOptions {
        nodes,
        spare: 0,
        seed,
        ..TestOptions::default()
    };
    opts.validate()
        .map_err(|e| CommandError::args(e.to_string()))?;
    let spec = cluster(&opts);
    let mut sim = SimBackend::new(
        spec,
        SimOptions {
            timeouts: sim_timeouts(),
            lying_disk: false,
            panic_at_ns: None,
            no_sync: false,
        },
        ChaCha8Rng::seed_from_u64(seed),
    )
    .map_err(|e| CommandError::harness(e.to_string()))?;
    use crate::backend::Backend;
    let start = Instant::now();
    let mut t = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        t += 100_000_000;
        sim.advance_to(t)
            .map_err(|e| CommandError::harness(e.to_string()))?;
    }
    let wall = start.elapsed().as_secs_f64();
    let h = sim.height(0);
    println!(
        "bench-sim: {nodes} nodes, no faults: {h} heights in {wall:.2} s wall ({:.0} heights/s), {:.1} s simulated ({:.1}x real time), {} events",
        h as f64 / wall,
        t as f64 / 1e9,
        t as f64 / 1e9 / wall,
        sim.events()
    );
    Ok(())
}
