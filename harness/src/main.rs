//! `rollcall`: the harness CLI (harness.md §3). Exit codes follow Jepsen: 0 valid,
//! 1 invalid, 2 unknown, 254 bad arguments, 255 the harness itself failed.

use clap::{Parser, Subcommand};
use rollcall::commands::{self, CommandError, EXIT_BAD_ARGS};
use rollcall::options::{BackendKind, TestOptions};
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
    /// append, register or bank.
    #[arg(long, default_value = "append")]
    workload: String,
    /// Comma list: partition,kill,pause,crash-all,add-node,fail-node,flaky,slow,duplicate-key (or all, none).
    #[arg(long, default_value = "")]
    nemesis: String,
    /// Seconds between nemesis steps.
    #[arg(long, default_value_t = 5)]
    nemesis_interval: u64,
    /// protocol.md §5 window (default 100 on sim so evictions happen in short runs).
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
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a test (harness.md §3).
    Test(TestArgs),
    /// Re-check a stored run or a history file.
    Check {
        /// A run folder or a history file.
        path: PathBuf,
        /// append, register or bank (default: from test.json or the history).
        #[arg(long)]
        workload: Option<String>,
        /// jsonl or jepsen-edn (default: by file extension).
        #[arg(long)]
        format: Option<String>,
        /// Elle consistency model.
        #[arg(long)]
        model: Option<String>,
    },
    /// Run again with the recorded seed and options; report whether the history is byte-identical.
    Replay {
        /// The run folder.
        run_dir: PathBuf,
        /// No progress line.
        #[arg(long)]
        quiet: bool,
    },
    /// Remove leftover containers and networks of any run (label rollcall=1).
    Clean,
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

fn workload(s: &str) -> Result<WorkloadKind, CommandError> {
    if s == "mixed" {
        return Err(CommandError::args(
            "--workload mixed is not yet available (append, register, bank)",
        ));
    }
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
        eviction_total: a.eviction_total.unwrap_or(match a.backend {
            BackendKind::Sim => 100,
            BackendKind::Docker => 1000,
        }),
        seed: a.seed.unwrap_or_else(rand::random),
        name: a.name.clone(),
        model: a.model.clone(),
        lying_disk: a.sim_lying_disk,
        ..TestOptions::default()
    })
}

fn dispatch(cli: Cli) -> Result<i32, CommandError> {
    let command: Vec<String> = std::env::args().collect();
    let v = match cli.cmd {
        Cmd::Test(a) => {
            let opts = options(&a)?;
            commands::test(&opts, a.test_count, &a.store, &command, a.quiet)?
        }
        Cmd::Check {
            path,
            workload: w,
            format,
            model,
        } => {
            let w = w.as_deref().map(workload).transpose()?;
            let edn = match format.as_deref() {
                None => path.extension().is_some_and(|e| e == "edn"),
                Some("jsonl") => false,
                Some("jepsen-edn") => true,
                Some(other) => {
                    return Err(CommandError::args(format!(
                        "unknown --format {other:?} (jsonl, jepsen-edn)"
                    )))
                }
            };
            commands::check(&path, w, edn, model.as_deref())?
        }
        Cmd::Replay { run_dir, quiet } => commands::replay(&run_dir, quiet)?,
        Cmd::Clean => {
            rollcall::docker_backend::clean()?;
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
