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
use rollcall_checkers::{compose, CheckResult, History, Validity};
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
            timeouts: if opts.flat_timeouts {
                flat(sim_timeouts())
            } else {
                sim_timeouts()
            },
            lying_disk: opts.lying_disk,
            panic_at_ns: opts.sim_panic_at_s.map(|s| s.saturating_mul(1_000_000_000)),
            no_sync: opts.no_sync,
            trust_synced_certs: opts.sim_trust_synced_certs,
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

/// `t` with timeouts that never grow with the round (`--flat-timeouts`, test-only).
fn flat(t: rollcall_node::consensus::Timeouts) -> rollcall_node::consensus::Timeouts {
    rollcall_node::consensus::Timeouts {
        propose_delta_ms: 0,
        vote_delta_ms: 0,
        ..t
    }
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
            attacks: None,
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
        crate::checks::Expectation::model(&opts.model),
        &spec.genesis,
        history,
        node_dumps(&out.dumps),
        Some(crate::checks::fault_timing(
            opts.backend,
            opts.nodes + opts.spare,
        )),
        out.attacks.clone().map(Ok),
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
            results: &results,
            dumps: &out.dumps,
            attacks: out.attacks.as_deref(),
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

/// Prints a line on stdout; a closed stdout (`rollcall check ... | head -1`) is
/// not an error worth a panic, as `println!` would make it: the verdict still
/// reaches the exit code.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = out.write_fmt(format_args!($($arg)*));
        let _ = out.write_all(b"\n");
    }};
}

/// Prints a run's verdicts on stdout.
pub fn print_results(r: &Results) {
    for c in &r.results {
        say!(
            "{:<18} {:<8} {}",
            c.checker,
            verdict_name(c.validity),
            c.summary
        );
    }
    say!("verdict: {}", verdict_name(r.valid));
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
        say!(
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
            say!("reproduce with: rollcall replay {}", r.dir.display());
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
        say!(
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

/// How `rollcall check` reads a history file: by extension, or forced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryFormat {
    /// The harness's JSON Lines (harness.md §6).
    Jsonl,
    /// Jepsen's `history.edn` (issue 15).
    JepsenEdn,
}

/// One thing `rollcall check` judges: a stored run folder or one history file.
enum Target {
    Run(PathBuf),
    File(PathBuf),
}

impl Target {
    fn path(&self) -> &Path {
        match self {
            Target::Run(p) | Target::File(p) => p,
        }
    }
}

/// A folder written by `rollcall test` (harness.md §8): checked as a whole run.
fn is_run_dir(p: &Path) -> bool {
    p.join("history.jsonl").is_file() && p.join("genesis.json").is_file()
}

/// The histories a directory holds: `*.edn`, `*.jsonl` and run folders, sorted.
fn dir_targets(dir: &Path) -> Result<Vec<Target>, CommandError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| CommandError::args(format!("{}: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let out: Vec<Target> = paths
        .into_iter()
        .filter_map(|p| {
            if is_run_dir(&p) {
                Some(Target::Run(p))
            } else if p.is_file() && p.extension().is_some_and(|e| e == "edn" || e == "jsonl") {
                Some(Target::File(p))
            } else {
                None
            }
        })
        .collect();
    if out.is_empty() {
        return Err(CommandError::args(format!(
            "{}: no run folder, *.edn or *.jsonl history in this directory",
            dir.display()
        )));
    }
    Ok(out)
}

fn targets(paths: &[PathBuf]) -> Result<Vec<Target>, CommandError> {
    let mut out = Vec::new();
    for p in paths {
        if is_run_dir(p) {
            out.push(Target::Run(p.clone()));
        } else if p.is_dir() {
            out.extend(dir_targets(p)?);
        } else if p.is_file() {
            out.push(Target::File(p.clone()));
        } else {
            return Err(CommandError::args(format!(
                "{}: no such file or directory",
                p.display()
            )));
        }
    }
    Ok(out)
}

/// What `rollcall check` was told beyond the paths.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckArgs<'a> {
    /// The workload, else from `test.json` or the history.
    pub workload: Option<WorkloadKind>,
    /// The file format, else by extension.
    pub format: Option<HistoryFormat>,
    /// Elle's consistency model, else from `test.json` or strict-serializable.
    pub model: Option<&'a str>,
    /// Elle's `:anomalies`: more anomalies that make a history invalid.
    pub anomalies: Option<&'a str>,
    /// Elle's `:wfr-keys?` for rw-register histories.
    pub wfr_keys: bool,
    /// Elle's `:sequential-keys?` for rw-register histories.
    pub sequential_keys: bool,
    /// Elle's `:linearizable-keys?` for rw-register histories.
    pub linearizable_keys: bool,
}

/// A history with no client operation checks nothing: `unknown`, never `valid`
/// (issue 14).
fn nothing_to_check(why: String) -> Results {
    let results = vec![CheckResult {
        checker: "history".into(),
        validity: Validity::Unknown,
        summary: why,
        anomalies: Vec::new(),
        details: serde_json::Value::Null,
        elapsed_ms: 0.0,
    }];
    Results {
        valid: Validity::Unknown,
        results,
    }
}

/// Re-checks one stored run folder (what `rollcall check DIR` does for each run).
pub fn check_run_dir(dir: &Path, a: CheckArgs) -> Result<Results, String> {
    let run = ClusterRun::load(dir).map_err(|e| e.to_string())?;
    if run.history.ops().is_empty() {
        return Ok(nothing_to_check(
            "the history has no client operations".into(),
        ));
    }
    let stored = store::load_options(dir).ok();
    let bound =
        (stored.as_ref()).map(|o| crate::checks::fault_timing(o.backend, o.nodes + o.spare));
    let workload = a
        .workload
        .or(stored.as_ref().map(|o| o.workload))
        .or_else(|| infer_workload(&run.history))
        .ok_or("cannot tell the workload: give --workload")?;
    let model = a
        .model
        .map(str::to_string)
        .or(stored.map(|o| o.model))
        .unwrap_or_else(|| "strict-serializable".into());
    let expect = crate::checks::Expectation {
        model: &model,
        anomalies: a.anomalies,
        wfr_keys: a.wfr_keys,
        sequential_keys: a.sequential_keys,
        linearizable_keys: a.linearizable_keys,
    };
    let attacks = rollcall_history::RunDir::new(dir)
        .read_attacks()
        .map_err(|e| e.to_string())
        .transpose();
    check_run(
        workload,
        expect,
        &run.genesis,
        run.history,
        run.nodes,
        bound,
        attacks,
    )
}

fn check_file(path: &Path, a: CheckArgs) -> Result<Results, String> {
    let format = a
        .format
        .unwrap_or(if path.extension().is_some_and(|e| e == "edn") {
            HistoryFormat::JepsenEdn
        } else {
            HistoryFormat::Jsonl
        });
    let history = match format {
        HistoryFormat::JepsenEdn => std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                rollcall_checkers::edn::parse_history(&String::from_utf8_lossy(&b))
                    .map_err(|e| e.to_string())
            }),
        HistoryFormat::Jsonl => History::from_file(path).map_err(|e| e.to_string()),
    }?;
    if history.ops().is_empty() {
        return Ok(nothing_to_check(format!(
            "the history has no client operations ({} events)",
            history.len()
        )));
    }
    let workload = a
        .workload
        .or_else(|| infer_workload(&history))
        .ok_or("cannot tell the workload: give --workload")?;
    let checkers = crate::checks::history_checkers(
        workload,
        crate::checks::Expectation {
            model: a.model.unwrap_or("strict-serializable"),
            anomalies: a.anomalies,
            wfr_keys: a.wfr_keys,
            sequential_keys: a.sequential_keys,
            linearizable_keys: a.linearizable_keys,
        },
        None,
    )?;
    let results: Vec<_> = checkers.iter().map(|c| c.check(&history)).collect();
    Ok(Results {
        valid: compose(&results),
        results,
    })
}

/// `rollcall check PATH...` (harness.md §3): re-checks stored runs and history
/// files (JSON Lines or Jepsen EDN), a directory meaning every run folder and
/// history in it, all in one process. Each prints its checkers and its verdict; a
/// file that cannot be read is `unknown` with the reason (and its line). The last
/// line sums up; the verdict, and so the exit code, is the composition of all
/// (harness.md §7). A path that does not exist is a bad argument (254).
pub fn check(paths: &[PathBuf], a: CheckArgs) -> Result<Validity, CommandError> {
    if a.model.is_some() || a.anomalies.is_some() {
        crate::checks::Expectation {
            model: a.model.unwrap_or("strict-serializable"),
            anomalies: a.anomalies,
            wfr_keys: a.wfr_keys,
            sequential_keys: a.sequential_keys,
            linearizable_keys: a.linearizable_keys,
        }
        .elle_options()
        .map_err(CommandError::args)?;
    }
    let targets = targets(paths)?;
    let mut counts = [0usize; 3];
    let mut worst = Validity::Valid;
    for t in &targets {
        let shown = t.path().display();
        let checked = match t {
            Target::Run(p) => check_run_dir(p, a),
            Target::File(p) => check_file(p, a),
        };
        let valid = match checked {
            Ok(r) => {
                say!("== {shown}");
                print_results(&r);
                if targets.len() == 1 {
                    say!(
                        "{}",
                        serde_json::to_string_pretty(&r.to_json()).unwrap_or_default()
                    );
                }
                r.valid
            }
            Err(e) => {
                say!("== {shown}");
                say!("verdict: unknown: cannot check: {e}");
                Validity::Unknown
            }
        };
        counts[valid as usize] += 1;
        worst = worst.and(valid);
    }
    say!(
        "summary: {} checked: {} valid, {} invalid, {} unknown; verdict {}",
        targets.len(),
        counts[Validity::Valid as usize],
        counts[Validity::Invalid as usize],
        counts[Validity::Unknown as usize],
        verdict_name(worst)
    );
    Ok(worst)
}

/// The lowercase spelling of a verdict, as results.json writes it.
fn verdict_name(v: Validity) -> &'static str {
    match v {
        Validity::Valid => "valid",
        Validity::Invalid => "invalid",
        Validity::Unknown => "unknown",
    }
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
            trust_synced_certs: false,
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
    say!(
        "bench-sim: {nodes} nodes, no faults: {h} heights in {wall:.2} s wall ({:.0} heights/s), {:.1} s simulated ({:.1}x real time), {} events",
        h as f64 / wall,
        t as f64 / 1e9,
        t as f64 / 1e9 / wall,
        sim.events()
    );
    Ok(())
}
