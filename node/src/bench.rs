//! `rollcall-node bench`: starts a local testnet as child processes and loads it
//! over HTTP from this (separate) process, through [`rollcall_node::client::NodeClient`]. Measures sustained committed
//! transactions per second, commit latency at half that load, and blocks per second
//! with empty blocks. A benchmark, not a test: it prints figures.

use crate::TestnetArgs;
use anyhow::Context;
use rollcall_node::client::{NodeClient, Submitted};
use rollcall_node::consensus::Role;
use rollcall_node::types::{Op, Tx, TxBody};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Options of `bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Nodes.
    #[arg(long, default_value_t = 4)]
    pub(crate) nodes: usize,
    /// Seconds per measured phase.
    #[arg(long, default_value_t = 10)]
    pub(crate) duration: u64,
    /// Requests in flight during the throughput phase.
    #[arg(long, default_value_t = 512)]
    pub(crate) concurrency: usize,
    /// Offered load of the latency phase (default: half the measured throughput).
    #[arg(long)]
    rate: Option<u64>,
    /// First port.
    #[arg(long, default_value_t = 27600)]
    pub(crate) base_port: u16,
    /// Where to write the testnet (a temp dir by default).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// What to measure: throughput (tx/s, latency, empty blocks/s), add-node
    /// (throughput during an addition vs steady state), sync (a newcomer's block sync
    /// rate on a long chain), eviction (blocks/s with a dead node before and after its
    /// eviction vs a healthy 3-node network), flood (committed tx/s while a
    /// non-member peer floods node 1, as a share of the same run without the flood,
    /// and node 1's peak RSS).
    #[arg(long, default_value = "throughput")]
    scenario: String,
    /// Chain length for the sync scenario.
    #[arg(long, default_value_t = 10_000)]
    sync_blocks: u64,
    /// eviction_total for the eviction scenario.
    #[arg(long, default_value_t = 100)]
    eviction_total: u64,
}

/// Runs the benchmark.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.scenario.as_str() {
        "throughput" => throughput(args),
        "add-node" => add_node(args),
        "sync" => sync(args),
        "eviction" => eviction(args),
        "flood" => crate::bench_flood::flood(args),
        other => anyhow::bail!(
            "unknown scenario {other:?} (throughput, add-node, sync, eviction, flood)"
        ),
    }
}

/// A testnet of child processes; killed on drop.
pub(crate) struct Cluster {
    dir: PathBuf,
    keep: bool,
    pub(crate) nodes: Vec<rollcall_node::testnet::TestnetNode>,
    operator: rollcall_node::crypto::Keypair,
    pub(crate) chain_id: String,
    pub(crate) procs: Vec<Option<Child>>,
    /// API clients of every node, one shared connection pool.
    pub(crate) apis: Vec<NodeClient>,
}

impl Cluster {
    pub(crate) fn new(
        args: &BenchArgs,
        tag: &str,
        ta: TestnetArgs,
        http: &reqwest::Client,
    ) -> anyhow::Result<Cluster> {
        let dir = match &args.dir {
            Some(d) => d.join(tag),
            None => {
                std::env::temp_dir().join(format!("rollcall-bench-{}-{tag}", std::process::id()))
            }
        };
        let _ = std::fs::remove_dir_all(&dir);
        let (g, operator, nodes) = rollcall_node::testnet::write(&dir, &ta.spec()?)?;
        let apis = nodes
            .iter()
            .map(|n| NodeClient::new(format!("http://{}", n.config.api_addr), http.clone()))
            .collect();
        let procs = nodes.iter().map(|_| None).collect();
        let mut c = Cluster {
            dir,
            keep: args.dir.is_some(),
            nodes,
            operator,
            chain_id: g.chain_id,
            procs,
            apis,
        };
        for i in 0..ta.nodes {
            c.spawn(i)?;
        }
        Ok(c)
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let n = &self.nodes[i];
        let log = std::fs::File::create(n.home.join("node.log"))?;
        self.procs[i] = Some(
            Command::new(std::env::current_exe()?)
                .arg("run")
                .arg("--home")
                .arg(&n.home)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("starting a node")?,
        );
        Ok(())
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Submits node `i`'s operator-signed AddNode through node `via`.
    async fn add_node(&self, via: usize, i: usize, nonce: u64) -> bool {
        let n = &self.nodes[i];
        let r = self.apis[via]
            .add_node(
                &self.chain_id,
                &self.operator,
                n.key.id(),
                &n.config.peer_addr,
                nonce,
            )
            .await;
        matches!(r, Ok(Submitted::Committed(o)) if o.error.is_none())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            self.kill(i);
        }
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub(crate) fn testnet_args(nodes: usize, spare: usize, base_port: u16) -> TestnetArgs {
    TestnetArgs {
        nodes,
        dir: PathBuf::new(),
        spare,
        host: "127.0.0.1".into(),
        base_port,
        eviction_total: 1000,
        eviction_ratio: "1/10".into(),
        min_roster: 3,
        propose_ms: 1000,
        vote_ms: 500,
        empty_block_ms: 100,
        tick_ms: 250,
        seed: Some(1),
    }
}

pub(crate) fn client(concurrency: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(15))
        .build()?)
}

/// Throughput during an addition vs steady state, in one run (issue: add a node).
/// One continuous closed-loop load; the AddNode goes in half way. Reported: the
/// 4-node steady state before it, the addition window (submission until the newcomer
/// is a validator, plus one second), and the 5-node steady state after.
fn add_node(args: BenchArgs) -> anyhow::Result<()> {
    let http = client(args.concurrency)?;
    let mut c = Cluster::new(&args, "add", testnet_args(4, 1, args.base_port), &http)?;
    let rt = tokio::runtime::Runtime::new()?;
    let apis4 = c.apis[..4].to_vec();
    rt.block_on(wait_healthy(&apis4))?;
    c.spawn(4)?;
    rt.block_on(wait_healthy(&c.apis[4..]))?;
    match args.rate {
        None => println!("rollcall-node bench --scenario add-node: 4 nodes + 1 joining, closed-loop load, {} in flight", args.concurrency),
        Some(r) => println!("rollcall-node bench --scenario add-node: 4 nodes + 1 joining, open-loop load of {r} tx/s"),
    }
    let secs = args.duration.max(6) * 2;
    let start = Instant::now();
    let half = Duration::from_secs(secs / 2);
    let c = Arc::new(c);
    let (done, (ok, t_add, t_joined)) = rt.block_on(async {
        let cc = c.clone();
        let adder = tokio::spawn(async move {
            tokio::time::sleep(half).await;
            let t_add = start.elapsed();
            let ok = cc.add_node(0, 4, 1).await;
            loop {
                let role = cc.apis[4].status().await.ok().map(|s| s.role);
                if role == Some(Role::Validator) || start.elapsed() > half * 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (ok, t_add, start.elapsed())
        });
        let done = load_timed(&apis4, args.concurrency, args.rate, secs, start).await;
        (
            done,
            adder
                .await
                .unwrap_or((false, Duration::ZERO, Duration::ZERO)),
        )
    });
    let rate = |from: Duration, to: Duration| {
        let n = done.iter().filter(|(t, _)| *t >= from && *t < to).count() as f64;
        n / (to - from).as_secs_f64().max(1e-9)
    };
    let end = Duration::from_secs(secs);
    let window_end = (t_joined + Duration::from_secs(1)).min(end);
    let steady = rate(Duration::from_secs(1), t_add);
    let during = rate(t_add, window_end);
    let after = rate(window_end, end);
    println!("4-node steady state:  {steady:8.0} tx/s");
    println!(
        "during the addition:  {during:8.0} tx/s   (AddNode committed: {ok}; submitted at {:.1} s, newcomer a validator at {:.2} s; window to {:.2} s)",
        t_add.as_secs_f64(),
        t_joined.as_secs_f64(),
        window_end.as_secs_f64()
    );
    println!("5-node steady state:  {after:8.0} tx/s   (the larger roster's own cost: q(5)=4, 25 vs 16 votes per step)");
    println!(
        "ratio:                {:8.1} % of steady state during the addition (target >= 90 %)",
        during / steady * 100.0
    );
    Ok(())
}

/// Closed-loop load (`concurrency` back-to-back workers) or open-loop at `rate`
/// tx/s for `secs`; returns each success's completion time since `start` and its
/// latency. Only successes completed within the window count.
async fn load_timed(
    apis: &[NodeClient],
    concurrency: usize,
    rate: Option<u64>,
    secs: u64,
    start: Instant,
) -> Vec<(Duration, Duration)> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let done = Arc::new(Mutex::new(Vec::<(Duration, Duration)>::new()));
    let end = start + Duration::from_secs(secs);
    let one = {
        let (apis, done) = (apis.to_vec(), done.clone());
        move || {
            let (apis, done) = (apis.clone(), done.clone());
            async move {
                // Ids stay unique across the phases of one bench process.
                let i = SEQ.fetch_add(1, Ordering::Relaxed);
                let api = &apis[(i as usize) % apis.len()];
                let tx = Tx {
                    id: format!("a{i}"),
                    body: TxBody::Kv(vec![Op::Append(format!("k{}", i % 64), i as i64)]),
                };
                let t = Instant::now();
                if let Ok(Submitted::Committed(o)) = api.submit(&tx).await {
                    if o.error.is_none() && Instant::now() <= end {
                        if let Ok(mut d) = done.lock() {
                            d.push((start.elapsed(), t.elapsed()));
                        }
                    }
                }
            }
        }
    };
    let mut tasks = Vec::new();
    match rate {
        None => {
            for _ in 0..concurrency {
                let one = one.clone();
                tasks.push(tokio::spawn(async move {
                    while Instant::now() < end {
                        one().await;
                    }
                }));
            }
        }
        Some(rate) => {
            let tick = Duration::from_millis(5);
            let per_tick = rate as f64 * tick.as_secs_f64();
            let mut owed = 0.0;
            let mut iv = tokio::time::interval(tick);
            while Instant::now() < end {
                iv.tick().await;
                owed += per_tick;
                while owed >= 1.0 {
                    owed -= 1.0;
                    tasks.push(tokio::spawn(one()));
                }
            }
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let v = done.lock().map(|d| d.clone()).unwrap_or_default();
    v
}

/// A newcomer's block sync rate from one peer on a long chain.
fn sync(args: BenchArgs) -> anyhow::Result<()> {
    let mut ta = testnet_args(4, 1, args.base_port);
    ta.empty_block_ms = 0;
    let mut c = Cluster::new(&args, "sync", ta, &client(64)?)?;
    let rt = tokio::runtime::Runtime::new()?;
    let apis4 = c.apis[..4].to_vec();
    rt.block_on(wait_healthy(&apis4))?;
    println!(
        "rollcall-node bench --scenario sync: building a chain of {} blocks...",
        args.sync_blocks
    );
    let t = Instant::now();
    loop {
        let h = rt.block_on(apis4[0].height())?;
        if h >= args.sync_blocks {
            println!(
                "chain built: {h} blocks in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            break;
        }
        if t.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("the chain grew to only {h} blocks in 600 s");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // Stop block production so the newcomer syncs a fixed chain from one peer.
    for i in 1..4 {
        c.kill(i);
    }
    let target = rt.block_on(apis4[0].height())?;
    let t = Instant::now();
    c.spawn(4)?;
    let api4 = c.apis[4].clone();
    rt.block_on(async {
        loop {
            if api4.height().await.unwrap_or(0) >= target {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let secs = t.elapsed().as_secs_f64();
    println!(
        "newcomer synced {target} blocks from one peer in {secs:.2} s (process start included): {:.0} blocks/s, every certificate verified (target >= 2000)",
        target as f64 / secs
    );
    Ok(())
}

/// Blocks/s with one of 4 nodes dead, before and after its eviction, vs a healthy
/// 3-node network (issue: eviction; the seed's headline claim).
fn eviction(args: BenchArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let http = client(16)?;
    let secs = args.duration;
    let healthy3 = {
        let ta = testnet_args(3, 0, args.base_port + 100);
        let c = Cluster::new(&args, "healthy3", ta, &http)?;
        rt.block_on(wait_healthy(&c.apis))?;
        rt.block_on(blocks_per_sec(&c.apis[0], secs))?
    };
    let mut ta = testnet_args(4, 0, args.base_port);
    ta.eviction_total = args.eviction_total;
    let mut c = Cluster::new(&args, "evict", ta, &http)?;
    rt.block_on(wait_healthy(&c.apis[..4]))?;
    println!(
        "rollcall-node bench --scenario eviction: 4 nodes, eviction_total {}, node 4 killed",
        args.eviction_total
    );
    c.kill(3);
    let api0 = c.apis[0].clone();
    let (h0, t0) = (rt.block_on(api0.height())?, Instant::now());
    let (h_ev, t_ev) = rt.block_on(async {
        loop {
            let st = api0.status().await?;
            if st.roster.len() == 3 {
                return anyhow::Ok((st.height, Instant::now()));
            }
            if t0.elapsed() > Duration::from_secs(900) {
                anyhow::bail!("no eviction within 900 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })?;
    let before = (h_ev - h0) as f64 / (t_ev - t0).as_secs_f64();
    let after = rt.block_on(blocks_per_sec(&api0, secs))?;
    println!("healthy 3-node network:    {healthy3:6.2} blocks/s");
    println!(
        "dead node, before eviction: {before:6.2} blocks/s  ({} blocks in {:.1} s)",
        h_ev - h0,
        (t_ev - t0).as_secs_f64()
    );
    println!("after eviction:             {after:6.2} blocks/s  = {:.1} % of the healthy 3-node rate (target >= 90 %)", after / healthy3 * 100.0);
    Ok(())
}

async fn blocks_per_sec(api: &NodeClient, secs: u64) -> anyhow::Result<f64> {
    let h0 = api.height().await?;
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    Ok((api.height().await? - h0) as f64 / t.elapsed().as_secs_f64())
}

/// Sustained tx/s, latency at half load, and empty blocks/s (issue: node core).
fn throughput(args: BenchArgs) -> anyhow::Result<()> {
    let ta = testnet_args(args.nodes, 0, args.base_port);
    let c = Cluster::new(&args, "throughput", ta, &client(args.concurrency)?)?;
    let apis = c.apis.clone();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        wait_healthy(&apis).await?;
        println!("rollcall-node bench: {} nodes on loopback, load from this process", args.nodes);

        let h0 = apis[0].height().await?;
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(args.duration.min(5))).await;
        let h1 = apis[0].height().await?;
        let empty_bps = (h1 - h0) as f64 / t0.elapsed().as_secs_f64();
        println!("empty blocks:        {empty_bps:8.1} blocks/s");

        let hs = apis[0].height().await?;
        let (thr, lat) = load(&apis, args.concurrency, None, args.duration).await;
        let he = apis[0].height().await?;
        let blocks = (he - hs) as f64 / args.duration as f64;
        println!(
            "max throughput:      {thr:8.0} tx/s committed   ({} in flight; {blocks:.1} blocks/s; p50 {:.1} ms, p99 {:.1} ms)",
            args.concurrency, lat.0, lat.1
        );
        let rate = args.rate.unwrap_or((thr / 2.0) as u64).max(1);
        let (thr2, lat2) = load(&apis, args.concurrency, Some(rate), args.duration).await;
        println!(
            "latency at {rate} tx/s: p50 {:.1} ms, p99 {:.1} ms   ({thr2:.0} tx/s committed)",
            lat2.0, lat2.1
        );
        anyhow::Ok(())
    })?;
    drop(c);
    Ok(())
}

pub(crate) async fn wait_healthy(apis: &[NodeClient]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    for a in apis {
        let left = deadline.saturating_duration_since(Instant::now());
        a.wait_healthy(left)
            .await
            .with_context(|| format!("node {} did not answer /health within 20 s", a.base()))?;
    }
    Ok(())
}

/// Closed loop (`rate = None`: `concurrency` workers back to back) or open loop at
/// `rate` tx/s. Returns committed tx/s and (p50, p99) latency in ms.
pub(crate) async fn load(
    apis: &[NodeClient],
    concurrency: usize,
    rate: Option<u64>,
    secs: u64,
) -> (f64, (f64, f64)) {
    let done = load_timed(apis, concurrency, rate, secs, Instant::now()).await;
    let mut l: Vec<f64> = done
        .iter()
        .map(|(_, lat)| lat.as_secs_f64() * 1000.0)
        .collect();
    l.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    (done.len() as f64 / secs as f64, (pct(0.5), pct(0.99)))
}
