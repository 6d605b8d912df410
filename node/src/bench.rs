//! `rollcall-node bench`: starts a local testnet as child processes and loads it
//! over HTTP from this (separate) process. Measures sustained committed
//! transactions per second, commit latency at half that load, and blocks per second
//! with empty blocks. A benchmark, not a test: it prints figures.

use crate::TestnetArgs;
use anyhow::Context;
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
    nodes: usize,
    /// Seconds per measured phase.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Requests in flight during the throughput phase.
    #[arg(long, default_value_t = 512)]
    concurrency: usize,
    /// Offered load of the latency phase (default: half the measured throughput).
    #[arg(long)]
    rate: Option<u64>,
    /// First port.
    #[arg(long, default_value_t = 27600)]
    base_port: u16,
    /// Where to write the testnet (a temp dir by default).
    #[arg(long)]
    dir: Option<PathBuf>,
}

struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs the benchmark.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("rollcall-bench-{}", std::process::id())),
    };
    let _ = std::fs::remove_dir_all(&dir);
    let ta = TestnetArgs {
        nodes: args.nodes,
        dir: dir.clone(),
        spare: 0,
        host: "127.0.0.1".into(),
        base_port: args.base_port,
        eviction_total: 1000,
        eviction_ratio: "1/10".into(),
        min_roster: 3,
        propose_ms: 1000,
        vote_ms: 500,
        empty_block_ms: 100,
        tick_ms: 250,
        seed: Some(1),
    };
    let (_, _, nodes) = rollcall_node::testnet::write(&dir, &ta.spec()?)?;
    let exe = std::env::current_exe()?;
    let mut children = Children(Vec::new());
    for n in &nodes {
        let log = std::fs::File::create(n.home.join("node.log"))?;
        children.0.push(
            Command::new(&exe)
                .arg("run")
                .arg("--home")
                .arg(&n.home)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("starting a node")?,
        );
    }
    let apis: Vec<String> = nodes
        .iter()
        .map(|n| format!("http://{}", n.config.api_addr))
        .collect();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(args.concurrency)
            .timeout(Duration::from_secs(15))
            .build()?;
        wait_healthy(&client, &apis).await?;
        println!("rollcall-node bench: {} nodes on loopback, load from this process", args.nodes);

        let h0 = height(&client, &apis[0]).await?;
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(args.duration.min(5))).await;
        let h1 = height(&client, &apis[0]).await?;
        let empty_bps = (h1 - h0) as f64 / t0.elapsed().as_secs_f64();
        println!("empty blocks:        {empty_bps:8.1} blocks/s");

        let hs = height(&client, &apis[0]).await?;
        let (thr, lat) = load(&client, &apis, args.concurrency, None, args.duration, "t").await;
        let he = height(&client, &apis[0]).await?;
        let blocks = (he - hs) as f64 / args.duration as f64;
        println!(
            "max throughput:      {thr:8.0} tx/s committed   ({} in flight; {blocks:.1} blocks/s; p50 {:.1} ms, p99 {:.1} ms)",
            args.concurrency, lat.0, lat.1
        );
        let rate = args.rate.unwrap_or((thr / 2.0) as u64).max(1);
        let (thr2, lat2) = load(&client, &apis, args.concurrency, Some(rate), args.duration, "l").await;
        println!(
            "latency at {rate} tx/s: p50 {:.1} ms, p99 {:.1} ms   ({thr2:.0} tx/s committed)",
            lat2.0, lat2.1
        );
        anyhow::Ok(())
    })?;
    drop(children);
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

async fn wait_healthy(client: &reqwest::Client, apis: &[String]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    for a in apis {
        loop {
            if client
                .get(format!("{a}/health"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            if Instant::now() > deadline {
                anyhow::bail!("node {a} did not answer /health within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

async fn height(client: &reqwest::Client, api: &str) -> anyhow::Result<u64> {
    let v: serde_json::Value = client
        .get(format!("{api}/status"))
        .send()
        .await?
        .json()
        .await?;
    v["height"].as_u64().context("status without height")
}

/// Closed loop (`rate = None`: `concurrency` workers back to back) or open loop at
/// `rate` tx/s. Returns committed tx/s and (p50, p99) latency in ms.
async fn load(
    client: &reqwest::Client,
    apis: &[String],
    concurrency: usize,
    rate: Option<u64>,
    secs: u64,
    tag: &'static str,
) -> (f64, (f64, f64)) {
    let done = Arc::new(AtomicU64::new(0));
    let lats = Arc::new(Mutex::new(Vec::<f64>::new()));
    let seq = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let send = {
        let (client, apis, done, lats, seq) = (
            client.clone(),
            apis.to_vec(),
            done.clone(),
            lats.clone(),
            seq.clone(),
        );
        move || {
            let (client, apis, done, lats, seq) = (
                client.clone(),
                apis.clone(),
                done.clone(),
                lats.clone(),
                seq.clone(),
            );
            async move {
                let i = seq.fetch_add(1, Ordering::Relaxed);
                let api = &apis[(i as usize) % apis.len()];
                let body = serde_json::json!({"id": format!("{tag}{i}"), "ops": [["append", format!("k{}", i % 64), i as i64]]});
                let t = Instant::now();
                if let Ok(r) = client.post(format!("{api}/tx")).json(&body).send().await {
                    if r.status().is_success() && Instant::now() <= end {
                        done.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut l) = lats.lock() {
                            l.push(t.elapsed().as_secs_f64() * 1000.0);
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
                let send = send.clone();
                tasks.push(tokio::spawn(async move {
                    while Instant::now() < end {
                        send().await;
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
                    tasks.push(tokio::spawn(send()));
                }
            }
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let n = done.load(Ordering::Relaxed) as f64;
    let mut l = lats.lock().map(|l| l.clone()).unwrap_or_default();
    l.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    (n / secs as f64, (pct(0.5), pct(0.99)))
}
