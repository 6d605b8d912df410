//! `rollcall-node`: run a node, make a local testnet, add a node, benchmark
//! (protocol.md §7).

use anyhow::Context;
use clap::{Parser, Subcommand};
use rollcall_node::client::NodeClient;
use rollcall_node::config::Home;
use rollcall_node::consensus::Timeouts;
use rollcall_node::crypto::Keypair;
use rollcall_node::testnet::{self, TestnetSpec};
use rollcall_node::types::{signed_add_node, Params};
use rollcall_node::wire::tx_json;
use std::path::PathBuf;

mod bench;
mod bench_flood;

#[derive(Parser)]
#[command(
    name = "rollcall-node",
    about = "A BFT ledger node whose roster changes while it runs"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a genesis, an operator key and node homes for a local network.
    Testnet(TestnetArgs),
    /// Run one node from its home directory.
    Run {
        /// The node's home (`DIR/nI`).
        #[arg(long)]
        home: PathBuf,
    },
    /// Submit an operator-signed AddNode for a node and wait for its commit.
    AddNode {
        /// Home of the node to add.
        #[arg(long)]
        home: PathBuf,
        /// The operator key file.
        #[arg(long)]
        operator_key: PathBuf,
        /// API URL of any running node, e.g. http://127.0.0.1:26601.
        #[arg(long)]
        via: String,
        /// Nonce (defaults to the current time in nanoseconds).
        #[arg(long)]
        nonce: Option<u64>,
    },
    /// Throughput and latency benchmark: starts a local testnet as child processes
    /// and loads it over HTTP from this process.
    Bench(bench::BenchArgs),
}

/// Options of `testnet` (also used by `bench`).
#[derive(clap::Args, Clone)]
pub struct TestnetArgs {
    /// Roster nodes.
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Output directory.
    #[arg(long)]
    dir: PathBuf,
    /// Spare nodes outside the genesis roster.
    #[arg(long, default_value_t = 0)]
    spare: usize,
    /// Host to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// First port (node i gets base+2i for peers, base+2i+1 for the API).
    #[arg(long, default_value_t = 26600)]
    base_port: u16,
    /// protocol.md §5 window.
    #[arg(long, default_value_t = 1000)]
    eviction_total: u64,
    /// protocol.md §5 ratio, as "num/den" (or a decimal like 0.1).
    #[arg(long, default_value = "1/10")]
    eviction_ratio: String,
    /// Never evict below this many nodes.
    #[arg(long, default_value_t = 3)]
    min_roster: u32,
    /// Propose timeout of round 0, ms.
    #[arg(long, default_value_t = 1000)]
    propose_ms: u64,
    /// Prevote/precommit timeout of round 0, ms.
    #[arg(long, default_value_t = 500)]
    vote_ms: u64,
    /// How long a proposer waits for transactions before an empty block, ms.
    #[arg(long, default_value_t = 100)]
    empty_block_ms: u64,
    /// Heartbeat, ms.
    #[arg(long, default_value_t = 250)]
    tick_ms: u64,
    /// Seed for the keys (random if absent).
    #[arg(long)]
    seed: Option<u64>,
}

fn parse_ratio(s: &str) -> anyhow::Result<(u64, u64)> {
    if let Some((a, b)) = s.split_once('/') {
        let (a, b): (u64, u64) = (a.trim().parse()?, b.trim().parse()?);
        if b == 0 || a > b {
            anyhow::bail!("eviction ratio {s:?} must be between 0 and 1");
        }
        return Ok((a, b));
    }
    let f: f64 = s.parse().with_context(|| format!("eviction ratio {s:?}"))?;
    if !(0.0..=1.0).contains(&f) {
        anyhow::bail!("eviction ratio {s:?} must be between 0 and 1");
    }
    Ok(((f * 1_000_000.0).round() as u64, 1_000_000))
}

impl TestnetArgs {
    fn spec(&self) -> anyhow::Result<TestnetSpec> {
        let (num, den) = parse_ratio(&self.eviction_ratio)?;
        Ok(TestnetSpec {
            nodes: self.nodes,
            spare: self.spare,
            host: self.host.clone(),
            base_port: self.base_port,
            params: Params {
                eviction_total: self.eviction_total,
                eviction_ratio_num: num,
                eviction_ratio_den: den,
                min_roster: self.min_roster,
                ..Params::default()
            },
            timeouts: Timeouts {
                propose_ms: self.propose_ms,
                vote_ms: self.vote_ms,
                empty_block_ms: self.empty_block_ms,
                tick_ms: self.tick_ms,
                ..Timeouts::default()
            },
            seed: self.seed,
            chain_id: "rollcall-testnet".into(),
        })
    }
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
    match cli.cmd {
        Command::Testnet(a) => {
            let (_, _, nodes) = testnet::write(&a.dir, &a.spec()?)?;
            for n in nodes {
                println!(
                    "{} {} peer={} api={}{}",
                    n.home.display(),
                    n.key.id(),
                    n.config.peer_addr,
                    n.config.api_addr,
                    if n.in_genesis { "" } else { " (spare)" }
                );
            }
            Ok(())
        }
        Command::Run { home } => {
            let home = Home::load(&home)?;
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(rollcall_node::runtime::run(home))
        }
        Command::AddNode {
            home,
            operator_key,
            via,
            nonce,
        } => {
            let home = Home::load(&home)?;
            let op = Keypair::from_secret_hex(
                &std::fs::read_to_string(&operator_key)
                    .with_context(|| format!("reading {}", operator_key.display()))?,
            )
            .context("parsing the operator key")?;
            let nonce = nonce.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0)
            });
            let tx = signed_add_node(
                &home.genesis.chain_id,
                &op,
                home.key.id(),
                &home.config.peer_addr,
                nonce,
                format!("add-{}-{nonce}", home.key.id().short()),
            );
            let http = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()?;
            let client = NodeClient::new(via.trim_end_matches('/'), http);
            let rt = tokio::runtime::Runtime::new()?;
            let (code, answer) = rt
                .block_on(client.post_tx_json(&tx_json(&tx)))
                .with_context(|| format!("POST {}/tx", client.base()))?;
            println!("{code} {answer}");
            if (200..300).contains(&code) {
                Ok(())
            } else {
                anyhow::bail!("AddNode was not committed ({code})")
            }
        }
        Command::Bench(args) => bench::run(args),
    }
}
