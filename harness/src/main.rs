//! `rollcall`: the harness CLI (harness.md §3). Exit codes follow Jepsen: 0 valid,
//! 1 invalid, 2 unknown, 254 bad arguments, 255 the harness itself failed.

use clap::{Parser, Subcommand};
use rollcall::commands::{self, CommandError, EXIT_BAD_ARGS};
use rollcall::options::{BackendKind, TestOptions};
use rollcall_checkers::Validity;
use rollcall_workloads::{NemesisKind, WorkloadKind};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "rollcall",
    about = "Jepsen-style fault injection for the rollcall BFT ledger"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args)]
struct TestArgs {
    /// sim (deterministic simulation) or docker.
    #[arg(long, value_enum, default_value = "sim")]
    backend: BackendKind,
    /// Roster nodes.
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Spare nodes for add-node.
    #[arg(long, default_value_t = 1)]
    spare: usize,
    /// Seconds of workload (simulated time on sim).
    #[arg(long, default_value_t = 60)]
    time_limit: u64,
    /// Client processes.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Operations per second over all clients.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// append, register, bank or rw-register.
    #[arg(long, default_value = "append")]
    workload: String,
    /// Comma list: partition,kill,pause,crash-all,add-node,fail-node,flaky,slow,duplicate-key,byzantine,disk,clock,async (or all, none).
    #[arg(long, default_value = "")]
    nemesis: String,
    /// Seconds between nemesis steps.
    #[arg(long, default_value_t = 5)]
    nemesis_interval: u64,
    /// Most nemesis intervals active at once, of different kinds (1: one fault at a time).
    #[arg(long, default_value_t = 2)]
    max_concurrent_faults: usize,
    /// protocol.md §5 window (default 100 on sim, 200 on docker, so a fail-node victim is evicted within a short run).
    #[arg(long)]
    eviction_total: Option<u64>,
    /// Seed (random when absent; recorded in test.json).
    #[arg(long)]
    seed: Option<u64>,
    /// Runs, with seeds seed, seed+1, ...
    #[arg(long, default_value_t = 1)]
    test_count: u64,
    /// Run name (store folder).
    #[arg(long, default_value = "rollcall")]
    name: String,
    /// Run store.
    #[arg(long, default_value = "store")]
    store: PathBuf,
    /// Elle consistency model.
    #[arg(long, default_value = "strict-serializable")]
    model: String,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// Test-only: a simulated disk that acknowledges fsync but loses the last second on a crash.
    #[arg(long, hide = true)]
    sim_lying_disk: bool,
    /// Write JUnit XML here: one test suite per run, one test case per checker.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Test-only: the simulator panics at this simulated second (a `crash` verdict).
    #[arg(long, hide = true)]
    sim_panic_at: Option<u64>,
    /// Test-only: the simulated nodes' stores skip their sync, so a crash loses acknowledged writes.
    #[arg(long, hide = true)]
    sim_no_sync: bool,
    /// No adversarial client (resubmitted ids, forged and replayed AddNodes) beside the workload.
    #[arg(long)]
    no_adversarial_client: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a test (harness.md §3).
    Test(TestArgs),
    /// Re-check stored runs and history files (JSON Lines or Jepsen EDN); a directory means every run and history in it.
    Check {
        /// Run folders, history files, or directories of them.
        #[arg(required = true, num_args = 1..)]
        paths: Vec<PathBuf>,
        /// append, register, bank or rw-register (default: from test.json or the history).
        #[arg(long)]
        workload: Option<String>,
        /// jsonl or jepsen-edn (default: by file extension).
        #[arg(long)]
        format: Option<String>,
        /// Elle consistency model.
        #[arg(long)]
        model: Option<String>,
        /// Anomalies Elle must also find absent, comma-separated (e.g. G0,G1c).
        #[arg(long)]
        anomalies: Option<String>,
        /// rw-register: assume writes follow reads within a txn (Elle's `:wfr-keys?`).
        #[arg(long)]
        wfr_keys: bool,
        /// rw-register: assume each key is sequentially consistent; version order
        /// from each process's order of txns (Elle's `:sequential-keys?`).
        #[arg(long)]
        sequential_keys: bool,
        /// rw-register: assume each key is linearizable; version order from real
        /// time (Elle's `:linearizable-keys?`).
        #[arg(long)]
        linearizable_keys: bool,
    },
    /// Run again with the recorded seed and options; report whether the history is byte-identical.
    Replay {
        /// The run folder.
        run_dir: PathBuf,
        /// No progress line.
        #[arg(long)]
        quiet: bool,
    },
    /// Remove leftover containers, networks and data mounts of any run (label rollcall=1).
    Clean,
    /// Random schedules on sim from a base seed; shrink the first failure and store it.
    Explore(ExploreArgs),
    /// Twins (issue 12): enumerate partitions and proposers per phase with a duplicated validator on sim; shrink the first failure and store it.
    Twins(TwinsArgs),
    /// Browse the run store in a web UI (harness.md §8).
    Serve {
        /// Run store.
        #[arg(long, default_value = "store")]
        store: PathBuf,
        /// Port on 127.0.0.1.
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Committed heights per wall-clock second in sim, 4 nodes, no faults.
    BenchSim {
        /// Nodes.
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Wall-clock seconds to run.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(clap::Args)]
struct ExploreArgs {
    /// Cases (random schedules) to try.
    #[arg(long, default_value_t = 1000)]
    cases: u64,
    /// Base seed (random when absent; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Simulated seconds of workload per case.
    #[arg(long, default_value_t = 30)]
    time_limit: u64,
    /// Roster nodes.
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Spare nodes for add-node.
    #[arg(long, default_value_t = 1)]
    spare: usize,
    /// Client processes.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Operations per second over all clients.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// append, register, bank or rw-register.
    #[arg(long, default_value = "append")]
    workload: String,
    /// Comma list of nemeses (default all).
    #[arg(long, default_value = "all")]
    nemesis: String,
    /// Seconds between nemesis steps.
    #[arg(long, default_value_t = 5)]
    nemesis_interval: u64,
    /// Most nemesis intervals active at once, of different kinds (1: one fault at a time).
    #[arg(long, default_value_t = 2)]
    max_concurrent_faults: usize,
    /// protocol.md §5 window.
    #[arg(long, default_value_t = 100)]
    eviction_total: u64,
    /// Re-runs allowed while shrinking.
    #[arg(long, default_value_t = 300)]
    shrink_budget: usize,
    /// Worker threads (default: the machine's cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Run name (store folder).
    #[arg(long, default_value = "explore")]
    name: String,
    /// Run store.
    #[arg(long, default_value = "store")]
    store: PathBuf,
    /// Run only shard K of N (1-based): N machines split one search exactly.
    #[arg(long, default_value = "1/1")]
    shard: String,
    /// Write JUnit XML here: one test case per case run.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Test-only: a simulated disk that acknowledges fsync but loses the last second on a crash.
    #[arg(long, hide = true)]
    sim_lying_disk: bool,
    /// No adversarial client (resubmitted ids, forged and replayed AddNodes) beside the workload.
    #[arg(long)]
    no_adversarial_client: bool,
}

#[derive(clap::Args)]
struct TwinsArgs {
    /// Most scenarios to run (more in the enumeration: a seeded sample of them).
    #[arg(long, default_value_t = 100)]
    scenarios: u64,
    /// Phases per scenario, each one failed round 0 of simulated time.
    #[arg(long, default_value_t = 3)]
    phases: usize,
    /// Twinned validators (1 = f of 4; 2 is beyond the fault model).
    #[arg(long, default_value_t = 1)]
    twins: usize,
    /// Most groups in a phase's partition (2 or 3).
    #[arg(long, default_value_t = 2)]
    groups: usize,
    /// Seed of the sample and of every scenario's run (random when absent; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Run only this scenario (0-based position in the search) and store it.
    #[arg(long)]
    scenario: Option<u64>,
    /// append, register, bank or rw-register.
    #[arg(long, default_value = "append")]
    workload: String,
    /// Simulated seconds per scenario before the final heal (the phases, then settling).
    #[arg(long, default_value_t = 3)]
    time_limit: u64,
    /// Roster nodes.
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Client processes.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Operations per second over all clients.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Re-runs allowed while shrinking.
    #[arg(long, default_value_t = 100)]
    shrink_budget: usize,
    /// Worker threads (default: the machine's cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Run name (store folder).
    #[arg(long, default_value = "twins")]
    name: String,
    /// Run store.
    #[arg(long, default_value = "store")]
    store: PathBuf,
    /// Write JUnit XML here: one test case per scenario.
    #[arg(long)]
    junit: Option<PathBuf>,
}

fn twins_options(
    a: &TwinsArgs,
    seed: u64,
) -> Result<rollcall::twins::search::TwinsOptions, CommandError> {
    Ok(rollcall::twins::search::TwinsOptions {
        scenarios: a.scenarios,
        phases: a.phases,
        twins: a.twins,
        max_groups: a.groups,
        seed,
        base: TestOptions {
            nodes: a.nodes,
            time_limit_s: a.time_limit,
            concurrency: a.concurrency,
            rate: a.rate,
            workload: workload(&a.workload)?,
            name: a.name.clone(),
            ..TestOptions::default()
        },
        only: a.scenario,
        shrink_budget: a.shrink_budget,
        threads: a
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
    })
}

fn twins(a: TwinsArgs, command: &[String]) -> Result<i32, CommandError> {
    use rollcall::twins::search;
    let seed = a.seed.unwrap_or_else(rand::random);
    let to = twins_options(&a, seed)?;
    eprintln!("rollcall: twins seed {seed}");
    let r = search::twins(&to, &a.store, command)?;
    if let Some(path) = &a.junit {
        let suite = search::junit_suite(seed, &r.outcomes);
        rollcall::junit::write(path, &[suite]).map_err(CommandError::harness)?;
    }
    let twinned: Vec<&str> = r.space.pairs.iter().map(|(o, _)| o.as_str()).collect();
    rollcall::say!(
        "twins: seed {seed}: {} scenarios run of {} enumerated ({} phases, {} partitions per phase, twinned {}), {} invalid, in {:.1} s wall ({:.0} scenarios/minute)",
        r.outcomes.len(),
        r.total,
        a.phases,
        r.space.partitions.len(),
        twinned.join(","),
        r.invalid(),
        r.search_secs,
        r.outcomes.len() as f64 / r.search_secs.max(1e-9) * 60.0
    );
    let f = rollcall_workloads::max_faulty(a.nodes);
    if a.twins > f {
        rollcall::say!("twins: {} twinned validators is beyond the fault model (f = {f} of {}): an invalid result is expected, not a bug", a.twins, a.nodes);
    }
    if let (Some(s), Some(o)) = (&r.stored, r.outcomes.first()) {
        rollcall::say!("scenario {} (#{}): {}", o.position, o.index, o.scenario);
        commands::print_results(&s.results);
        rollcall::say!(
            "stored: {}; reproduce with: rollcall replay {}",
            s.dir.display(),
            s.dir.display()
        );
    }
    let Some(fail) = r.failure else {
        rollcall::say!("twins: no invalid scenario");
        return Ok(0);
    };
    print_twins_failure(&fail);
    Ok(Validity::Invalid.exit_code())
}

fn print_twins_failure(fail: &rollcall::twins::search::TwinsFailure) {
    let o = &fail.outcome;
    rollcall::say!(
        "twins: scenario {} (#{}) is invalid ({}): {}",
        o.position,
        o.index,
        fail.failing.iter().cloned().collect::<Vec<_>>().join(", "),
        o.scenario
    );
    rollcall::say!(
        "twins: shrunk in {} re-runs from {} phases to {}: {}",
        fail.shrink_runs,
        o.scenario.phases.len(),
        fail.minimal.phases.len(),
        fail.minimal
    );
    commands::print_results(&fail.stored.results);
    rollcall::say!("minimal failing run: {}", fail.stored.dir.display());
    rollcall::say!(
        "reproduce with: rollcall replay {}",
        fail.stored.dir.display()
    );
}

fn explore(a: ExploreArgs, command: &[String]) -> Result<i32, CommandError> {
    let nemesis =
        NemesisKind::parse_list(&a.nemesis).map_err(|e| CommandError::args(e.to_string()))?;
    let seed = a.seed.unwrap_or_else(rand::random);
    let eo = rollcall::explore::ExploreOptions {
        cases: a.cases,
        seed,
        base: TestOptions {
            nodes: a.nodes,
            spare: a.spare,
            time_limit_s: a.time_limit,
            concurrency: a.concurrency,
            rate: a.rate,
            workload: workload(&a.workload)?,
            nemesis,
            nemesis_interval_s: a.nemesis_interval,
            max_concurrent_faults: a.max_concurrent_faults,
            eviction_total: a.eviction_total,
            name: a.name.clone(),
            lying_disk: a.sim_lying_disk,
            adversarial_client: !a.no_adversarial_client,
            ..TestOptions::default()
        },
        shrink_budget: a.shrink_budget,
        threads: a
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        shard: rollcall::explore::Shard::parse(&a.shard).map_err(CommandError::args)?,
    };
    eprintln!("rollcall: explore seed {seed}, shard {}", a.shard);
    let r = rollcall::explore::explore(&eo, &a.store, command)?;
    if let Some(path) = &a.junit {
        let suite = rollcall::explore::junit_suite(seed, &r.outcomes);
        rollcall::junit::write(path, &[suite]).map_err(CommandError::harness)?;
    }
    rollcall::say!(
        "explore: seed {seed}: {} cases of {} simulated s in {:.1} s wall ({:.0} runs/minute)",
        r.cases_run,
        a.time_limit,
        r.search_secs,
        r.cases_run as f64 / r.search_secs.max(1e-9) * 60.0
    );
    let Some(f) = r.failure else {
        rollcall::say!("explore: no invalid run");
        return Ok(0);
    };
    let faults = |o: &TestOptions| o.schedule.as_ref().map_or(0, |s| s.len());
    rollcall::say!(
        "explore: case {} (seed {}) is invalid ({}); shrunk in {} re-runs from {} faults, {} s, {} nodes, {} clients to {} faults, {} s, {} nodes, {} clients",
        f.case,
        f.original.seed,
        f.failing.iter().cloned().collect::<Vec<_>>().join(", "),
        f.shrink_runs,
        faults(&f.original),
        f.original.time_limit_s,
        f.original.nodes,
        f.original.concurrency,
        faults(&f.minimal),
        f.minimal.time_limit_s,
        f.minimal.nodes,
        f.minimal.concurrency,
    );
    commands::print_results(&f.stored.results);
    rollcall::say!("minimal failing run: {}", f.stored.dir.display());
    rollcall::say!("reproduce with: rollcall replay {}", f.stored.dir.display());
    Ok(f.stored.valid.exit_code())
}

fn workload(s: &str) -> Result<WorkloadKind, CommandError> {
    s.parse()
        .map_err(|e: rollcall_workloads::ops::UnknownWorkload| CommandError::args(e.to_string()))
}

fn options(a: &TestArgs) -> Result<TestOptions, CommandError> {
    let nemesis =
        NemesisKind::parse_list(&a.nemesis).map_err(|e| CommandError::args(e.to_string()))?;
    Ok(TestOptions {
        backend: a.backend,
        nodes: a.nodes,
        spare: a.spare,
        time_limit_s: a.time_limit,
        concurrency: a.concurrency,
        rate: a.rate,
        workload: workload(&a.workload)?,
        nemesis,
        nemesis_interval_s: a.nemesis_interval,
        max_concurrent_faults: a.max_concurrent_faults,
        eviction_total: a.eviction_total.unwrap_or(match a.backend {
            BackendKind::Sim => 100,
            BackendKind::Docker => 200,
        }),
        seed: a.seed.unwrap_or_else(rand::random),
        name: a.name.clone(),
        model: a.model.clone(),
        lying_disk: a.sim_lying_disk,
        sim_panic_at_s: a.sim_panic_at,
        no_sync: a.sim_no_sync,
        adversarial_client: !a.no_adversarial_client,
        ..TestOptions::default()
    })
}

fn dispatch(cli: Cli) -> Result<i32, CommandError> {
    let command: Vec<String> = std::env::args().collect();
    let v = match cli.cmd {
        Cmd::Test(a) => {
            let opts = options(&a)?;
            commands::test(
                &opts,
                a.test_count,
                &a.store,
                &command,
                a.quiet,
                a.junit.as_deref(),
            )?
        }
        Cmd::Check {
            paths,
            workload: w,
            format,
            model,
            anomalies,
            wfr_keys,
            sequential_keys,
            linearizable_keys,
        } => {
            let format = match format.as_deref() {
                None => None,
                Some("jsonl") => Some(commands::HistoryFormat::Jsonl),
                Some("jepsen-edn" | "edn") => Some(commands::HistoryFormat::JepsenEdn),
                Some(other) => {
                    return Err(CommandError::args(format!(
                        "unknown --format {other:?} (jsonl, jepsen-edn)"
                    )))
                }
            };
            let args = commands::CheckArgs {
                workload: w.as_deref().map(workload).transpose()?,
                format,
                model: model.as_deref(),
                anomalies: anomalies.as_deref(),
                wfr_keys,
                sequential_keys,
                linearizable_keys,
            };
            commands::check(&paths, args)?
        }
        Cmd::Replay { run_dir, quiet } => commands::replay(&run_dir, quiet)?,
        Cmd::Clean => return rollcall::docker_backend::clean().map(|()| 0),
        Cmd::Explore(a) => return explore(a, &command),
        Cmd::Twins(a) => return twins(a, &command),
        Cmd::Serve { store, port } => {
            let rt = tokio::runtime::Runtime::new()
                .map_err(|e| CommandError::harness(format!("tokio: {e}")))?;
            rollcall::say!("serving {} on http://127.0.0.1:{port}/", store.display());
            rt.block_on(rollcall_reports::serve(store, port))
                .map_err(|e| CommandError::harness(e.to_string()))?;
            return Ok(0);
        }
        Cmd::BenchSim {
            nodes,
            seconds,
            seed,
        } => {
            commands::bench_sim(nodes, seconds, seed)?;
            return Ok(0);
        }
    };
    Ok(v.exit_code())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_BAD_ARGS } else { 0 };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("rollcall: {e}");
            ExitCode::from(e.code as u8)
        }
    }
}
