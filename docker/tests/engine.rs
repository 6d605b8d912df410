//! Integration tests against a real Docker engine.
//!
//! They run whenever an engine answers. With no engine they fail with the connect error
//! unless `ROLLCALL_SKIP_DOCKER=1` (never with `CI=true`). Every test labels its objects with its own run id and
//! removes them through a guard, also when it panics.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use rollcall_docker::cluster::{list_labelled_containers, list_labelled_networks};
use rollcall_docker::{
    cleanup, connect, ensure_image, tcp_echo_from_host, tcp_reachable_from_host, CleanupScope,
    Container, Docker, Network, NodeSpec, SlowLink,
};

const PORT: u16 = 7000;

/// The stand-in node binary: a TCP echo server built with this crate.
fn echo_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_rollcall-echo"))
}

/// Connects, or returns None when the user opted out with `ROLLCALL_SKIP_DOCKER=1`.
async fn engine() -> Option<Docker> {
    match connect().await {
        Ok(d) => Some(d),
        // Never skipped in CI (`CI=true`): a missing engine there is a failure.
        Err(e)
            if std::env::var("ROLLCALL_SKIP_DOCKER").as_deref() == Ok("1")
                && !matches!(std::env::var("CI").as_deref(), Ok("true" | "1")) =>
        {
            eprintln!("skipping docker test: {e}");
            None
        }
        Err(e) => panic!("{e} (set ROLLCALL_SKIP_DOCKER=1 to skip the docker tests)"),
    }
}

/// Removes everything labelled with the run id when dropped, even during a panic.
struct Guard {
    docker: Docker,
    run_id: String,
}

impl Guard {
    fn new(docker: &Docker, test: &str) -> Guard {
        let run_id = format!("t-{test}-{}", std::process::id());
        Guard {
            docker: docker.clone(),
            run_id,
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let docker = self.docker.clone();
        let scope = CleanupScope::Run(self.run_id.clone());
        // Drop runs inside the test's runtime: clean up on a fresh one in another thread.
        let joined = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(cleanup(&docker, &scope))
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .join();
        if let Ok(Err(e)) = joined {
            eprintln!("cleanup of {} failed: {e}", self.run_id);
        }
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "rollcall_docker=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Starts `n` echo nodes on a fresh network and waits until each echoes from the host.
async fn echo_cluster(docker: &Docker, guard: &Guard, n: u8) -> (Network, Vec<Container>) {
    let image = ensure_image(docker, echo_binary()).await.expect("image");
    let net = Network::create(docker, &guard.run_id)
        .await
        .expect("network");
    let mut nodes = Vec::new();
    for i in 0..n {
        let mut spec = NodeSpec::node(&format!("n{}", i + 1), net.node_ip(i), None);
        spec.cmd = vec![PORT.to_string()];
        nodes.push(
            net.start_node(&image.name, &spec)
                .await
                .expect("start node"),
        );
    }
    for c in &nodes {
        wait_echo(c, true).await;
    }
    (net, nodes)
}

/// Waits (up to 10 s) until `c` echoes from the host (`want`) or stops echoing.
async fn wait_echo(c: &Container, want: bool) {
    let addr = SocketAddr::from((c.ip, PORT));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ok = tcp_echo_from_host(addr, Duration::from_millis(500)).await;
        if ok == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} echo from host: wanted {want}",
            c.name
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn probe(from: &Container, to: Ipv4Addr) -> bool {
    from.tcp_probe(to, PORT, 1).await.expect("probe exec")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_is_built_then_cached() {
    init_tracing();
    let Some(docker) = engine().await else { return };
    let first = ensure_image(&docker, echo_binary()).await.expect("image");
    assert!(first.name.starts_with("rollcall-node:"), "{}", first.name);
    let t = Instant::now();
    let second = ensure_image(&docker, echo_binary()).await.expect("cached");
    let cached = t.elapsed();
    assert!(!second.built, "second call must reuse the image");
    assert_eq!(first.name, second.name);
    assert!(
        cached < Duration::from_secs(2),
        "cached ensure took {cached:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_tools_and_logs() {
    init_tracing();
    let Some(docker) = engine().await else { return };
    let guard = Guard::new(&docker, "exec");
    let (net, nodes) = echo_cluster(&docker, &guard, 1).await;
    let n1 = &nodes[0];

    // Home bind mount and env: a file written in /data shows up on the host.
    let home = std::env::temp_dir().join(format!("{}-home", guard.run_id));
    let image = ensure_image(&docker, echo_binary()).await.expect("image");
    let mut spec = NodeSpec::node("h1", net.node_ip(5), Some(home.clone()));
    spec.cmd = vec![PORT.to_string()];
    spec.env = vec![("ROLLCALL_TEST".into(), "hello".into())];
    let h1 = net.start_node(&image.name, &spec).await.expect("start h1");
    h1.sh("echo $ROLLCALL_TEST > /data/marker")
        .await
        .expect("write marker");
    let marker = std::fs::read_to_string(home.join("marker")).expect("marker on host");
    assert_eq!(marker.trim(), "hello");
    let _ = std::fs::remove_dir_all(&home);
    for cmd in [
        &["iptables", "-V"][..],
        &["iptables", "-w", "-S"],
        &["ip", "-V"],
        &["ip", "addr"],
        &["tc", "qdisc", "show"],
        &["busybox", "true"],
    ] {
        let out = n1.exec(cmd).await.expect("exec");
        assert!(out.success(), "{cmd:?}: {out:?}");
    }
    let ipt = n1.exec(&["iptables", "-V"]).await.expect("exec");
    assert!(ipt.stdout.contains("legacy"), "{ipt:?}");
    let addr = n1
        .exec(&["ip", "-4", "addr", "show", "eth0"])
        .await
        .expect("ip");
    assert!(addr.stdout.contains(&n1.ip.to_string()), "{addr:?}");
    let out = n1
        .exec(&["sh", "-c", "echo out; echo err >&2; exit 3"])
        .await
        .expect("exec");
    assert_eq!(out.exit_code, 3);
    assert_eq!(out.stdout.trim(), "out");
    assert_eq!(out.stderr.trim(), "err");

    let dir = std::env::temp_dir().join(format!("{}-logs", guard.run_id));
    let log = dir.join("n1.log");
    n1.save_logs(&log).await.expect("logs");
    let text = std::fs::read_to_string(&log).expect("read log");
    assert!(text.contains("listening on 0.0.0.0:7000"), "{text}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_cuts_tcp_until_heal() {
    init_tracing();
    let Some(docker) = engine().await else { return };
    let guard = Guard::new(&docker, "partition");
    let (_net, nodes) = echo_cluster(&docker, &guard, 3).await;
    let (n1, n2, n3) = (&nodes[0], &nodes[1], &nodes[2]);
    assert!(probe(n1, n2.ip).await, "n1 -> n2 before the partition");
    assert!(n1.tcp_echo(n2.ip, PORT, 1).await.expect("echo"));

    // {n1} | {n2}: rules on both sides, n3 stays connected to both.
    n1.block(&[n2.ip]).await.expect("block n1");
    n2.block(&[n1.ip]).await.expect("block n2");
    assert_eq!(n1.rules().await.expect("rules").len(), 2);
    assert!(!probe(n1, n2.ip).await, "n1 -> n2 must be cut");
    assert!(!probe(n2, n1.ip).await, "n2 -> n1 must be cut");
    assert!(probe(n1, n3.ip).await, "n1 -> n3 still up");
    assert!(probe(n3, n2.ip).await, "n3 -> n2 still up");
    assert!(
        tcp_reachable_from_host(SocketAddr::from((n2.ip, PORT)), Duration::from_secs(1)).await,
        "the host is not partitioned"
    );

    n1.heal().await.expect("heal n1");
    n2.heal().await.expect("heal n2");
    assert!(n1.rules().await.expect("rules").is_empty());
    assert!(probe(n1, n2.ip).await, "n1 -> n2 after heal");
    assert!(probe(n2, n1.ip).await, "n2 -> n1 after heal");
}

/// `block_from` on the receiver cuts one direction only: n1's packets stop
/// arriving at n2, n2's still arrive at n1 (counted by the receiving kernel, so
/// replies, which the cut drops, do not matter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_from_cuts_one_direction() {
    init_tracing();
    let Some(docker) = engine().await else { return };
    let guard = Guard::new(&docker, "oneway");
    let (_net, nodes) = echo_cluster(&docker, &guard, 2).await;
    let (n1, n2) = (&nodes[0], &nodes[1]);
    let arrives = |from: &Container, to: &Container| {
        let (from, to) = (from.clone(), to.clone());
        async move {
            let before = to.icmp_echos_received().await.expect("snmp");
            from.send_pings(to.ip, 2).await.expect("ping");
            to.icmp_echos_received().await.expect("snmp") > before
        }
    };
    assert!(
        arrives(n1, n2).await && arrives(n2, n1).await,
        "no path before the cut"
    );
    n2.block_from(&[n1.ip]).await.expect("block_from");
    assert_eq!(n2.rules().await.expect("rules").len(), 1);
    assert!(n1.rules().await.expect("rules").is_empty());
    assert!(!arrives(n1, n2).await, "n1 -> n2 still arrives");
    assert!(arrives(n2, n1).await, "n2 -> n1 was cut too");
    n2.heal().await.expect("heal");
    assert!(arrives(n1, n2).await, "n1 -> n2 after heal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_kill_restart_stop() {
    init_tracing();
    let Some(docker) = engine().await else { return };
    let guard = Guard::new(&docker, "lifecycle");
    let (_net, nodes) = echo_cluster(&docker, &guard, 2).await;
    let (n1, n2) = (&nodes[0], &nodes[1]);

    // Pause: the kernel still accepts connections, but nothing answers.
    n2.pause().await.expect("pause");
    assert!(
        !n1.tcp_echo(n2.ip, PORT, 1).await.expect("echo"),
        "paused n2 echoed"
    );
    wait_echo(n2, false).await;
    n2.unpause().await.expect("unpause");
    assert!(
        n1.tcp_echo(n2.ip, PORT, 2).await.expect("echo"),
        "unpaused n2 silent"
    );
    wait_echo(n2, true).await;

    // Kill + restart: the process dies, comes back, and the rules are gone.
    n2.block(&[n1.ip]).await.expect("block");
    assert!(!n2.rules().await.expect("rules").is_empty());
    n2.kill().await.expect("kill");
    assert!(!n2.is_running().await.expect("inspect"));
    assert!(!probe(n1, n2.ip).await, "killed n2 accepted a connection");
    n2.start().await.expect("restart");
    wait_echo(n2, true).await;
    assert!(
        n2.rules().await.expect("rules").is_empty(),
        "rules survived a restart"
    );
    let addr = n2
        .exec(&["ip", "-4", "addr", "show", "eth0"])
        .await
        .expect("ip");
    assert!(
        addr.stdout.contains(&n2.ip.to_string()),
        "address changed: {addr:?}"
    );
    assert!(
        probe(n1, n2.ip).await,
        "restarted n2 reachable at its fixed address"
    );
    n2.heal()
        .await
        .expect("heal of a restarted node is a no-op");

    // Stop for good.
    n2.stop(Duration::from_secs(1)).await.expect("stop");
    assert!(!n2.is_running().await.expect("inspect"));
    assert!(!probe(n1, n2.ip).await, "stopped n2 reachable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_and_rate_limit() {
    init_tracing();
    let Some(docker) = engine().await else { return };
    let guard = Guard::new(&docker, "loss");
    let (_net, nodes) = echo_cluster(&docker, &guard, 2).await;
    let (n1, n2) = (&nodes[0], &nodes[1]);

    // Probability 1: every packet n1 -> n2 dropped.
    n1.lossy(&[n2.ip], 1.0).await.expect("loss 1.0");
    assert!(!probe(n1, n2.ip).await, "loss 1.0 still connects");
    n1.heal().await.expect("heal");
    n1.lossy(&[n2.ip], 0.3).await.expect("loss 0.3");
    let rules = n1.rules().await.expect("rules");
    assert!(
        rules
            .iter()
            .any(|r| r.contains("statistic") && r.contains("0.29")),
        "{rules:?}"
    );
    assert!(n1.lossy(&[n2.ip], 1.5).await.is_err());
    n1.heal().await.expect("heal");

    let netem = n1.netem_available().await.expect("netem probe");
    eprintln!("netem available: {netem}");
    let applied = n1
        .slow(
            SlowLink {
                rate_kbit: 512,
                delay_ms: Some(50),
                jitter_ms: 0,
            },
            &[n2.ip],
        )
        .await
        .expect("htb slow link");
    assert_eq!(applied.delay, netem);
    let qd = n1
        .exec(&["tc", "qdisc", "show", "dev", "eth0"])
        .await
        .expect("tc");
    assert!(qd.stdout.contains("htb"), "{qd:?}");
    assert!(
        n1.tcp_echo(n2.ip, PORT, 2).await.expect("echo"),
        "slow link still works"
    );
    n1.slow(
        SlowLink {
            rate_kbit: 1024,
            delay_ms: None,
            jitter_ms: 0,
        },
        &[],
    )
    .await
    .expect("tbf slow");
    let qd = n1
        .exec(&["tc", "qdisc", "show", "dev", "eth0"])
        .await
        .expect("tc");
    assert!(qd.stdout.contains("tbf"), "{qd:?}");
    n1.heal_all().await.expect("heal all");
    let qd = n1
        .exec(&["tc", "qdisc", "show", "dev", "eth0"])
        .await
        .expect("tc");
    assert!(!qd.stdout.contains("tbf"), "{qd:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_labelled_objects() {
    init_tracing();
    let Some(docker) = engine().await else { return };
    let guard = Guard::new(&docker, "cleanup");
    let scope = CleanupScope::Run(guard.run_id.clone());
    let (_net, _nodes) = echo_cluster(&docker, &guard, 2).await;
    assert_eq!(
        list_labelled_containers(&docker, &scope)
            .await
            .expect("list")
            .len(),
        2
    );
    assert_eq!(
        list_labelled_networks(&docker, &scope)
            .await
            .expect("list")
            .len(),
        1
    );
    let report = cleanup(&docker, &scope).await.expect("cleanup");
    assert_eq!(report.containers.len(), 2, "{report:?}");
    assert_eq!(report.networks.len(), 1, "{report:?}");
    assert!(list_labelled_containers(&docker, &scope)
        .await
        .expect("list")
        .is_empty());
    assert!(list_labelled_networks(&docker, &scope)
        .await
        .expect("list")
        .is_empty());
    // A second cleanup finds nothing and succeeds.
    assert_eq!(
        cleanup(&docker, &scope).await.expect("again"),
        Default::default()
    );
}

/// Two runs on one engine (issue 16): a starting run removes only objects whose
/// owner process is gone (or that carry no owner, from before the label), never
/// those of a live run; `rollcall clean` (scope All) would remove them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_cleanup_spares_live_owners() {
    use bollard::models::NetworkCreateRequest;
    use rollcall_docker::cluster::{
        owner_alive, this_owner, LABEL_OWNER, LABEL_ROLLCALL, LABEL_RUN,
    };
    let Some(docker) = engine().await else { return };
    let run = format!("t-orphans-{}", std::process::id());
    let host = this_owner()
        .rsplit_once(':')
        .map(|(h, _)| h.to_string())
        .unwrap_or_default();
    // pid_max is at most 2^22: this pid cannot exist.
    let dead = format!("{host}:{}", (1u32 << 22) + 7);
    assert!(owner_alive(Some(&this_owner())) && !owner_alive(Some(&dead)) && !owner_alive(None));
    let owners = [
        ("live", Some(this_owner())),
        ("dead", Some(dead)),
        ("old", None),
    ];
    for (tag, owner) in &owners {
        let mut labels = std::collections::HashMap::from([
            (LABEL_ROLLCALL.to_string(), "1".to_string()),
            (LABEL_RUN.to_string(), run.clone()),
        ]);
        if let Some(o) = owner {
            labels.insert(LABEL_OWNER.to_string(), o.clone());
        }
        let req = NetworkCreateRequest {
            name: format!("{run}-{tag}"),
            labels: Some(labels),
            ..Default::default()
        };
        docker.create_network(req).await.expect("create network");
    }
    let report = cleanup(&docker, &CleanupScope::Orphans)
        .await
        .expect("cleanup");
    let mut removed: Vec<&str> = report
        .networks
        .iter()
        .map(String::as_str)
        .filter(|n| n.starts_with(&run))
        .collect();
    removed.sort();
    assert_eq!(removed, [format!("{run}-dead"), format!("{run}-old")]);
    let left = list_labelled_networks(&docker, &CleanupScope::Run(run.clone()))
        .await
        .expect("list");
    assert_eq!(
        left.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>(),
        [format!("{run}-live")]
    );
    cleanup(&docker, &CleanupScope::Run(run))
        .await
        .expect("cleanup the live one");
}
