//! `rollcall-adversary`: runs one validator home as a Byzantine adversary (issue 12,
//! harness.md §5 `byzantine` on docker): the real node runtime, every peer message
//! rewritten by the behaviour given on the command line, what it sent kept in the
//! home's stats file ([`rollcall_adversary::STATS_FILE`]), rewritten every second
//! and on SIGTERM.

use anyhow::Context;
use clap::Parser;
use rollcall_adversary::{Adversary, Behaviour, Stats, STATS_FILE};
use rollcall_adversary_node::{write_stats, AdversaryHook};
use rollcall_node::config::Home;
use rollcall_node_core::crypto::NodeId;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "rollcall-adversary",
    about = "A rollcall validator that lies: the real node, its messages mutated"
)]
struct Cli {
    /// The validator's home (as for `rollcall-node run`).
    #[arg(long)]
    home: PathBuf,
    /// What it does (mutate-round, equivocate, withhold, flood, ...).
    #[arg(long)]
    behaviour: Behaviour,
    /// Seed of its choices.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Node id (hex) of a colluding adversary; repeat for each.
    #[arg(long = "ally")]
    allies: Vec<String>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match real_main(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    let home = Home::load(&cli.home)?;
    let allies = (cli.allies.iter())
        .map(|h| NodeId::from_hex(h).with_context(|| format!("ally id {h:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let adv = Adversary::new(
        home.key.clone(),
        &home.genesis,
        cli.behaviour,
        allies,
        cli.seed,
    );
    let stats = Arc::new(Mutex::new(Stats::default()));
    let path = home.dir.join(STATS_FILE);
    write_stats(&path, &Stats::default()).with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(behaviour = %cli.behaviour, seed = cli.seed, allies = cli.allies.len(), "adversary starting");
    let hook = AdversaryHook::new(adv, stats.clone());
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        tokio::spawn(keep_writing(path.clone(), stats.clone()));
        tokio::select! {
            r = rollcall_node::runtime::run_with(home, Some(Box::new(hook))) => r,
            _ = terminated() => {
                save(&path, &stats);
                tracing::info!("adversary stopped");
                Ok(())
            }
        }
    })
}

/// Rewrites the stats file every second (a SIGKILL loses at most that).
async fn keep_writing(path: PathBuf, stats: Arc<Mutex<Stats>>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        every.tick().await;
        save(&path, &stats);
    }
}

fn save(path: &Path, stats: &Mutex<Stats>) {
    let now = stats.lock().map(|s| s.clone()).unwrap_or_default();
    if let Err(e) = write_stats(path, &now) {
        tracing::warn!(error = %e, path = %path.display(), "cannot write the stats file");
    }
}

/// SIGTERM or Ctrl-C.
async fn terminated() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
