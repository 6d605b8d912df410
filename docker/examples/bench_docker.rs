//! Measures the docker backend's fixed costs: cold image build, cached image lookup, and
//! starting 5 containers until each answers TCP.
//!
//! `cargo run --release -p rollcall-docker --example bench_docker -- [BINARY] [PORT] [--image-only]`
//!
//! `--image-only` stops after the two image timings (for binaries that do not take a
//! port as their only argument, such as `rollcall-node`).
//!
//! BINARY defaults to `rollcall-echo` next to this example's directory (build it with
//! `cargo build --release -p rollcall-docker --bin rollcall-echo`); it is started with
//! PORT (default 7000) as its only argument. For the real node pass its binary and a
//! port it listens on, e.g. `target/release/rollcall-node 8080` (it then runs with
//! `PORT` as its command, so use a node that accepts that or adapt `cmd` below).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rollcall_docker::image::remove_image_for;
use rollcall_docker::{
    cleanup, connect, ensure_image, tcp_reachable_from_host, CleanupScope, Network, NodeSpec,
};

const NODES: u8 = 5;

fn default_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/examples/bench_docker -> target/<profile>/rollcall-echo
    let candidate = exe.parent()?.parent()?.join("rollcall-echo");
    candidate.is_file().then_some(candidate)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let image_only = all.iter().any(|a| a == "--image-only");
    let mut args = all.into_iter().filter(|a| a != "--image-only");
    let binary = match args.next().map(PathBuf::from).or_else(default_binary) {
        Some(b) => b,
        None => {
            return Err(
                "usage: bench_docker [BINARY] [PORT] (no rollcall-echo found: \
                 cargo build --release -p rollcall-docker --bin rollcall-echo)"
                    .into(),
            )
        }
    };
    let port: u16 = match args.next() {
        Some(p) => p.parse()?,
        None => 7000,
    };
    let docker = connect().await?;
    println!("binary: {}", binary.display());

    let removed = remove_image_for(&docker, &binary).await?;
    let t = Instant::now();
    let image = ensure_image(&docker, &binary).await?;
    let cold = t.elapsed();
    println!(
        "cold image build:   {:>8.3} s  ({}, previous image removed: {removed})",
        cold.as_secs_f64(),
        image.name
    );

    let t = Instant::now();
    let cached = ensure_image(&docker, &binary).await?;
    let warm = t.elapsed();
    println!(
        "cached image build: {:>8.3} s  (built: {})",
        warm.as_secs_f64(),
        cached.built
    );

    if image_only {
        return Ok(());
    }
    let run_id = format!("bench-{}", std::process::id());
    let result = start_cluster(&docker, &run_id, &image.name, port).await;
    let report = cleanup(&docker, &CleanupScope::Run(run_id)).await?;
    println!(
        "cleanup: removed {} containers, {} networks",
        report.containers.len(),
        report.networks.len()
    );
    result
}

async fn start_cluster(
    docker: &rollcall_docker::Docker,
    run_id: &str,
    image: &str,
    port: u16,
) -> Result<(), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let net = Network::create(docker, run_id).await?;
    let net_time = t.elapsed();
    let specs: Vec<NodeSpec> = (0..NODES)
        .map(|i| {
            let mut spec = NodeSpec::node(&format!("n{}", i + 1), net.node_ip(i), None);
            spec.cmd = vec![port.to_string()];
            spec
        })
        .collect();
    let nodes = net.start_nodes(image, &specs).await?;
    let started = t.elapsed();
    let deadline = Instant::now() + Duration::from_secs(30);
    for c in &nodes {
        let addr = SocketAddr::from((c.ip, port));
        while !tcp_reachable_from_host(addr, Duration::from_millis(200)).await {
            if Instant::now() > deadline {
                return Err(format!("{} never answered on {addr}", c.name).into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let answering = t.elapsed();
    println!("network create:     {:>8.3} s", net_time.as_secs_f64());
    println!(
        "{NODES} containers started: {:>8.3} s (create+start, concurrent)",
        started.as_secs_f64()
    );
    println!(
        "{NODES} containers answer TCP: {:>6.3} s (from network create)",
        answering.as_secs_f64()
    );
    Ok(())
}
