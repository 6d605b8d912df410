//! The `docker` backend (harness.md §2): one container per node on a private
//! labelled network with fixed addresses, from an image built out of the local
//! `rollcall-node` binary with nothing pulled from a registry (`rollcall-docker`).
//!
//! The run loop is synchronous; this backend owns a tokio runtime. Client
//! submissions run concurrently as tasks that POST `/tx` to the node's bridge
//! address and report through a channel. The node primitives are Docker API calls
//! (kill, pause, start) and the link primitive is `iptables`/`tc` inside the
//! containers, done before they return so the history records what was really
//! applied; what each fault means is `crate::nemesis`'s, as on the simulator. Time is the wall clock
//! since the cluster answered `/health` on every node.
//!
//! Nodes find each other by container name (`n1:26600`, the addresses of the
//! run's genesis, resolved by the engine's DNS on the run network), so the genesis
//! the checkers verify against is exactly the one the nodes run.

use crate::backend::{
    Backend, BackendError, ClientOutcome, Clients, Completed, LinkFaults, NodeControl,
    NodeDumpData, NodeState, Ticket,
};
use crate::cluster::{ClusterSpec, PEER_PORT};
use crate::commands::{CommandError, RunReport};
use crate::options::TestOptions;
use crate::progress::Progress;
use crate::run::{cluster, run};
use crate::store;
use rollcall_docker::{
    cleanup, connect, ensure_image_with, unmount_data_mounts, CleanupScope, Container, Docker,
    DockerError, Network, NodeSpec,
};
use rollcall_node::client::{ClientError, NodeClient, Submitted};
use rollcall_node::config::NodeConfig;
use rollcall_node::consensus::{Status, Timeouts};
use rollcall_node::types::{CommittedBlock, Tx};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

mod binary;
mod byzantine;
mod clock;
mod disk;
mod links;
pub use binary::{locate_adversary_binary, locate_node_binary};
pub use disk::{wants_data_mounts, DATA_MOUNT_BYTES};
use links::NodeRules;

/// The node API port inside every container (the peer port is [`PEER_PORT`]).
pub const API_PORT: u16 = 26601;
/// Rate of a `slow` link: low enough that consensus traffic queues up.
const SLOW_RATE_KBIT: u32 = 256;

/// Why the docker backend could not run a cluster: the harness failed (exit 255),
/// except [`DockerBackendError::Engine`], which means no usable engine (exit 254,
/// harness.md §3) and says how to get one.
#[derive(Debug, thiserror::Error)]
pub enum DockerBackendError {
    /// No engine answered; the message says how to start one or use `--backend sim`.
    #[error("{0}")]
    Engine(DockerError),
    /// An engine call, an exec inside a container or the image build failed.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// Writing node homes or logs failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The node binary could not be found or built.
    #[error("rollcall-node binary: {0}")]
    NodeBinary(String),
    /// The nodes did not all answer `/health` in time.
    #[error("the cluster did not come up: {0}")]
    Startup(String),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> DockerBackendError {
    let context = context.into();
    move |source| DockerBackendError::Io { context, source }
}

impl From<DockerBackendError> for BackendError {
    fn from(e: DockerBackendError) -> Self {
        BackendError::Other(e.to_string())
    }
}

fn be(e: DockerError) -> BackendError {
    BackendError::Other(e.to_string())
}

/// Settings of a docker cluster (harness.md §2).
#[derive(Clone, Debug)]
pub struct DockerOptions {
    /// Consensus timeouts written into every node's config.
    pub timeouts: Timeouts,
    /// How long the node's `POST /tx` waits for a commit before answering 504.
    pub tx_timeout_ms: u64,
    /// The client's own limit on one `POST /tx` (a timeout is `info`).
    pub client_timeout: Duration,
    /// How long the genesis nodes get to answer `/health`.
    pub startup_timeout: Duration,
    /// The node binary; `None` locates it (see [`locate_node_binary`]).
    pub node_binary: Option<PathBuf>,
    /// The adversary binary (the `byzantine` nemesis, issue 12); `None` locates it
    /// (see [`locate_adversary_binary`]).
    pub adversary_binary: Option<PathBuf>,
    /// A tmpfs of this size under every node's data directory, for the full-disk
    /// fault (issue 13); `None`: the data stays on the host's disk.
    pub data_mount_bytes: Option<u64>,
    /// Seed of where the disk nemesis damages files.
    pub seed: u64,
}

/// The same fast-ish timeouts as the node's own integration tests: rounds short
/// enough that faults and recoveries fit in a one-minute test.
pub fn docker_timeouts() -> Timeouts {
    Timeouts::fast()
}

impl DockerOptions {
    /// The settings `rollcall test --backend docker` uses.
    pub fn for_test(opts: &TestOptions) -> Self {
        let client = Duration::from_millis(opts.op_timeout_ms.max(1000));
        DockerOptions {
            timeouts: docker_timeouts(),
            tx_timeout_ms: client.as_millis().saturating_sub(1000).max(500) as u64,
            client_timeout: client,
            startup_timeout: Duration::from_secs(30),
            node_binary: None,
            adversary_binary: None,
            data_mount_bytes: wants_data_mounts(opts).then_some(DATA_MOUNT_BYTES),
            seed: crate::run::Seeds::from_seed(opts.seed).backend,
        }
    }
}

/// Where a node's container is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// A spare (or duplicate) whose container does not exist yet.
    NotCreated,
    Running,
    Paused,
    /// SIGKILLed, to be restarted.
    Killed,
    /// Stopped for good (fail-node, a stopped duplicate).
    Failed,
}

struct DNode {
    name: String,
    home: PathBuf,
    ip: Ipv4Addr,
    container: Option<Container>,
    state: State,
    duplicate: bool,
    /// Whose key it runs with (itself, or the original of a twin).
    key_of: usize,
    /// The adversary container running in its place during a `byzantine` fault.
    adversary: Option<byzantine::AdvRun>,
}

/// A docker cluster the run loop drives (harness.md §2).
pub struct DockerBackend {
    rt: tokio::runtime::Runtime,
    docker: Docker,
    run_id: String,
    network: Network,
    image: String,
    homes: PathBuf,
    log_dir: Option<PathBuf>,
    spec: ClusterSpec,
    opts: DockerOptions,
    nodes: Vec<DNode>,
    http: reqwest::Client,
    start: Instant,
    done_tx: mpsc::Sender<(Ticket, ClientOutcome)>,
    done_rx: mpsc::Receiver<(Ticket, ClientOutcome)>,
    local: Vec<(Ticket, ClientOutcome)>,
    abandoned: BTreeSet<Ticket>,
    next_ticket: Ticket,
    /// The link-fault state the nemesis last asked for.
    links: LinkFaults,
    /// The rules installed in each running node's namespace (absent: none).
    installed: BTreeMap<usize, NodeRules>,
    /// Whether `tc ... netem` works here, probed once at startup.
    netem: bool,
    cleaned: bool,
    /// Data mounts, full disks, and nodes that stopped themselves (issue 13).
    disk: disk::DiskState,
    /// Nodes whose clock is not true time (issue 16; absent: true time).
    clocks: BTreeMap<usize, rollcall_docker::clock::FakeClock>,
    /// Adversary seeds and what crashed adversaries sent (issue 12).
    byz: byzantine::ByzState,
    /// Seconds from nothing to every genesis node answering `/health`.
    pub startup_s: f64,
}

async fn wait_healthy(clients: &[NodeClient], limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    for c in clients {
        let left = deadline.saturating_duration_since(Instant::now());
        c.wait_healthy(left)
            .await
            .map_err(|e| format!("{} not healthy after {limit:?}: {e}", c.base()))?;
    }
    Ok(())
}

/// Removes the leftovers of runs whose owner process is gone (containers, networks,
/// data mounts); live runs sharing the engine are left alone (issue 16).
fn remove_leftovers(rt: &tokio::runtime::Runtime, docker: &Docker) -> Result<(), DockerError> {
    let left = rt.block_on(cleanup(docker, &CleanupScope::Orphans))?;
    if !left.containers.is_empty() || !left.networks.is_empty() {
        warn!(containers = ?left.containers, networks = ?left.networks, "removed leftovers of an earlier run");
    }
    // Not fatal: a run that cannot unmount (not root) cannot mount either.
    match rollcall_docker::unmount_orphan_data_mounts() {
        Ok(m) if !m.is_empty() => warn!(mounts = ?m, "unmounted data mounts of an earlier run"),
        Err(e) => warn!(error = %e, "cannot unmount data mounts of an earlier run"),
        Ok(_) => {}
    }
    Ok(())
}

/// Removes this run's objects when the harness gets Ctrl-C or SIGTERM, then exits
/// 255 (the harness did not finish: harness.md §3).
async fn cleanup_on_signal(docker: Docker, run_id: String, homes: PathBuf) {
    let term = async {
        #[cfg(unix)]
        {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
    eprintln!("rollcall: interrupted: removing the run's containers and network");
    if let Err(e) = cleanup(&docker, &CleanupScope::Run(run_id.clone())).await {
        eprintln!("rollcall: cleanup failed: {e} (run `rollcall clean`)");
    }
    if let Err(e) = unmount_data_mounts(Some(&run_id)) {
        eprintln!("rollcall: {e} (run `rollcall clean`)");
    }
    let _ = std::fs::remove_dir_all(&homes);
    std::process::exit(255);
}

impl DockerBackend {
    /// Builds (or reuses) the image, removes leftovers of earlier runs by label,
    /// creates the run network and starts the genesis nodes, and waits until all
    /// answer `/health`. Node logs are saved under `log_dir/<n>/node.log` by
    /// [`Clients::dump`] and [`DockerBackend::save_logs`].
    pub fn start(
        spec: &ClusterSpec,
        opts: DockerOptions,
        log_dir: Option<PathBuf>,
    ) -> Result<Self, DockerBackendError> {
        let t0 = Instant::now();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(io_err("start the tokio runtime"))?;
        let docker = rt.block_on(connect()).map_err(DockerBackendError::Engine)?;
        let t_img = Instant::now();
        let image = rt.block_on(ensure_image_with(&docker, &binary::image_binaries(&opts)?))?;
        info!(image = %image.name, built = image.built, ms = t_img.elapsed().as_millis() as u64, "node image ready");
        remove_leftovers(&rt, &docker)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() % 1_000_000_000_000)
            .unwrap_or(0);
        let run_id = format!("{}-{nanos}", std::process::id());
        let homes = std::env::temp_dir().join(format!("rollcall-{run_id}"));
        let on_signal = cleanup_on_signal(docker.clone(), run_id.clone(), homes.clone());
        rt.spawn(on_signal);
        let network = rt.block_on(Network::create(&docker, &run_id))?;
        let http = reqwest::Client::builder()
            .timeout(opts.client_timeout)
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| DockerBackendError::Startup(format!("HTTP client: {e}")))?;
        let nodes = spec
            .names
            .iter()
            .enumerate()
            .map(|(i, name)| DNode {
                name: name.clone(),
                home: homes.join(name),
                ip: network.node_ip(i as u8),
                container: None,
                state: State::NotCreated,
                duplicate: false,
                key_of: i,
                adversary: None,
            })
            .collect();
        let (done_tx, done_rx) = mpsc::channel();
        // From here on, Drop removes what was created, also when startup fails.
        let mut b = DockerBackend {
            rt,
            docker,
            run_id,
            network,
            image: image.name,
            homes,
            log_dir,
            spec: spec.clone(),
            disk: disk::DiskState::new(opts.seed),
            byz: byzantine::ByzState::new(opts.seed),
            opts,
            nodes,
            http,
            start: Instant::now(),
            done_tx,
            done_rx,
            local: Vec::new(),
            abandoned: BTreeSet::new(),
            next_ticket: 0,
            links: LinkFaults::default(),
            installed: BTreeMap::new(),
            clocks: BTreeMap::new(),
            netem: false,
            cleaned: false,
            startup_s: 0.0,
        };
        for i in 0..b.nodes.len() {
            b.write_home(i, i)?;
        }
        let roster: Vec<usize> = (0..spec.roster_nodes).collect();
        let specs: Vec<NodeSpec> = roster.iter().map(|i| b.node_spec(*i)).collect();
        let containers = b.rt.block_on(b.network.start_nodes(&b.image, &specs))?;
        for (i, c) in roster.iter().zip(containers) {
            b.nodes[*i].container = Some(c);
            b.nodes[*i].state = State::Running;
        }
        let clients: Vec<NodeClient> = roster.iter().map(|i| b.client(*i)).collect();
        if let Err(e) =
            b.rt.block_on(wait_healthy(&clients, b.opts.startup_timeout))
        {
            b.save_logs();
            return Err(DockerBackendError::Startup(e));
        }
        if let Some(c) = b.nodes[0].container.clone() {
            b.netem = b.rt.block_on(c.netem_available())?;
            info!(
                netem = b.netem,
                "netem probe: slow links get {}",
                if b.netem {
                    "a rate limit and delay"
                } else {
                    "a rate limit only"
                }
            );
        }
        b.startup_s = t0.elapsed().as_secs_f64();
        info!(
            run = %b.run_id,
            nodes = spec.roster_nodes,
            subnet = %b.network.subnet(),
            seconds = b.startup_s,
            "docker cluster up: every node answers /health"
        );
        b.start = Instant::now();
        Ok(b)
    }

    /// The run id, as in the containers' `rollcall.run` label.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// A node's fixed address on the run network.
    pub fn ip(&self, node: &str) -> Option<Ipv4Addr> {
        self.nodes.iter().find(|n| n.name == node).map(|n| n.ip)
    }

    /// Whether `from`'s container can open a TCP connection to `to`'s peer port
    /// (a check that partitions really cut traffic: TCP, since ICMP is answered
    /// by the kernel even of a paused container).
    pub fn peer_reachable(&self, from: &str, to: &str) -> Result<bool, BackendError> {
        let i = self.index(from)?;
        let ip = self.nodes[self.index(to)?].ip;
        let c = self.container(i)?;
        self.rt.block_on(c.tcp_probe(ip, PEER_PORT, 2)).map_err(be)
    }

    /// Whether IP packets from `from`'s container arrive in `to`'s: three pings,
    /// counted by `to`'s kernel after its firewall (a one-way cut check that does
    /// not depend on replies, which TCP and ping both need).
    pub fn packets_arrive(&self, from: &str, to: &str) -> Result<bool, BackendError> {
        let (src, dst) = (
            self.container(self.index(from)?)?,
            self.container(self.index(to)?)?,
        );
        self.rt
            .block_on(async {
                let before = dst.icmp_echos_received().await?;
                src.send_pings(dst.ip, 3).await?;
                Ok::<bool, DockerError>(dst.icmp_echos_received().await? > before)
            })
            .map_err(be)
    }

    /// Writes node `i`'s home: the seed-generated key of node `key_of`, the run's
    /// genesis, a config listening on every address of the container, and the data
    /// mount if the run wants one.
    fn write_home(&mut self, i: usize, key_of: usize) -> Result<(), DockerBackendError> {
        let n = &self.nodes[i];
        let key = self.spec.keys.get(key_of).ok_or_else(|| {
            DockerBackendError::Startup(format!("no key for node index {key_of}"))
        })?;
        std::fs::create_dir_all(&n.home).map_err(io_err(format!("create {}", n.home.display())))?;
        let config = NodeConfig {
            id: key.id().to_hex(),
            listen_addr: format!("0.0.0.0:{PEER_PORT}"),
            peer_addr: format!("{}:{PEER_PORT}", n.name),
            api_addr: format!("0.0.0.0:{API_PORT}"),
            bootstrap: self
                .spec
                .genesis
                .roster
                .iter()
                .map(|e| e.addr.clone())
                .collect(),
            timeouts: self.opts.timeouts.clone(),
            tx_timeout_ms: self.opts.tx_timeout_ms,
            mempool_txs: rollcall_node_core::mempool::MEMPOOL_LIMIT,
        };
        let write = |name: &str, bytes: Vec<u8>| {
            let p = n.home.join(name);
            std::fs::write(&p, bytes).map_err(io_err(format!("write {}", p.display())))
        };
        write(
            "config.json",
            serde_json::to_vec_pretty(&config).unwrap_or_default(),
        )?;
        write("node.key", key.secret_hex().into_bytes())?;
        write(
            "genesis.json",
            serde_json::to_vec_pretty(&self.spec.genesis).unwrap_or_default(),
        )?;
        self.mount_data(i);
        self.write_clock(i)
            .map(drop)
            .map_err(|e| DockerBackendError::Startup(e.to_string()))
    }

    fn node_spec(&self, i: usize) -> NodeSpec {
        let n = &self.nodes[i];
        let mut s = NodeSpec::node(&n.name, n.ip, Some(n.home.clone()));
        s.clock_dir = Some(self.clock_dir(i));
        s.env.push(("RUST_LOG".into(), "info".into()));
        s.env.push(("NO_COLOR".into(), "1".into()));
        s
    }

    fn index(&self, name: &str) -> Result<usize, BackendError> {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| BackendError::UnknownNode(name.to_string()))
    }

    /// The container running node `i` now: an adversary in its place, or its own.
    fn container(&self, i: usize) -> Result<Container, BackendError> {
        let n = &self.nodes[i];
        (n.adversary.as_ref().map(|a| a.container.clone()))
            .or_else(|| n.container.clone())
            .ok_or_else(|| BackendError::Other(format!("{} has no container", self.nodes[i].name)))
    }

    /// Creates and starts the container of a spare or duplicate node.
    fn create_node(&mut self, i: usize) -> Result<(), BackendError> {
        self.write_clock(i)?;
        let spec = self.node_spec(i);
        let c = self
            .rt
            .block_on(self.network.start_node(&self.image, &spec))
            .map_err(be)?;
        self.nodes[i].container = Some(c);
        self.nodes[i].state = State::Running;
        Ok(())
    }

    /// SIGKILLs node `i` (unpausing first: a frozen process cannot be killed
    /// cleanly); its rules vanish with the namespace.
    fn kill_node(&mut self, i: usize) -> Result<(), BackendError> {
        let state = self.nodes[i].state;
        if !matches!(state, State::Running | State::Paused) {
            return Ok(());
        }
        let c = self.container(i)?;
        self.rt
            .block_on(async {
                if state == State::Paused {
                    c.unpause().await?;
                }
                c.kill().await
            })
            .map_err(be)?;
        self.nodes[i].state = State::Killed;
        self.installed.remove(&i);
        self.adversary_crashed(i);
        Ok(())
    }

    /// Saves every created container's log under the log dir (also when a run
    /// fails: harness.md §8 `nodes/<n>/`). Errors are logged, not returned.
    pub fn save_logs(&self) {
        let Some(dir) = &self.log_dir else { return };
        for n in &self.nodes {
            let Some(c) = &n.container else { continue };
            let path = dir.join(&n.name).join("node.log");
            if let Err(e) = self.rt.block_on(c.save_logs(&path)) {
                warn!(node = %n.name, error = %e, "cannot save the node log");
            }
            if let Some(a) = &n.adversary {
                self.save_adversary_log(&n.name, a);
            }
        }
    }

    /// Node `i`'s API client (its fixed address on the run network).
    fn client(&self, i: usize) -> NodeClient {
        let base = format!("http://{}:{API_PORT}", self.nodes[i].ip);
        NodeClient::new(base, self.http.clone())
    }

    /// A stopped node's chain, read from its home (bind-mounted, so it survives).
    fn chain_from_disk(home: &Path) -> Result<Vec<CommittedBlock>, String> {
        rollcall_node::store::read_chain(&home.join("data"))
            .map_err(|e| format!("{}: {e}", home.display()))
    }

    /// Removes this run's containers, network, data mounts and node homes now (also
    /// done on drop); idempotent.
    pub fn shutdown(&mut self) -> Result<(), DockerBackendError> {
        if self.cleaned {
            return Ok(());
        }
        self.cleaned = true;
        let r = self.rt.block_on(cleanup(
            &self.docker,
            &CleanupScope::Run(self.run_id.clone()),
        ));
        // Unmounted first: removing the homes must not empty a live mount.
        let m = unmount_data_mounts(Some(&self.run_id));
        let _ = std::fs::remove_dir_all(&self.homes);
        r.and(m).map(|_| ()).map_err(DockerBackendError::from)
    }
}

impl Drop for DockerBackend {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            warn!(error = %e, run = %self.run_id, "cleanup failed: run `rollcall clean`");
        }
    }
}

/// What a client learned from `POST /tx`: 200 → ok, 409 → ordered but rejected at
/// execution (the workload decides, as on sim), 400 → fail, a refused connection →
/// fail (nothing was sent), anything else (503, 504, timeout, a dropped
/// connection, an unreadable answer) → info.
fn client_outcome(r: Result<Submitted, ClientError>) -> ClientOutcome {
    match r {
        Ok(Submitted::Committed(o)) => ClientOutcome::Ok(o),
        Ok(Submitted::Refused(e)) => ClientOutcome::Fail(e),
        Ok(Submitted::Unknown { status, error }) => {
            ClientOutcome::Info(format!("HTTP {status}: {error}"))
        }
        Err(e @ ClientError::Connect { .. }) => ClientOutcome::Fail(e.to_string()),
        Err(ClientError::Timeout { .. }) => ClientOutcome::Info("timeout".into()),
        Err(e) => ClientOutcome::Info(e.to_string()),
    }
}

impl Backend for DockerBackend {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn advance_to(&mut self, t_ns: u64) -> Result<(), BackendError> {
        let now = self.now_ns();
        if t_ns > now {
            std::thread::sleep(Duration::from_nanos(t_ns - now));
        }
        Ok(())
    }
}

/// The node primitives on containers (the faults' meaning: `crate::nemesis`).
impl NodeControl for DockerBackend {
    fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    fn node_state(&self, node: &str) -> Result<NodeState, BackendError> {
        Ok(match self.nodes[self.index(node)?].state {
            State::NotCreated => NodeState::NotStarted,
            State::Running => NodeState::Running,
            State::Paused => NodeState::Paused,
            State::Killed => NodeState::Killed,
            State::Failed => NodeState::Failed,
        })
    }

    fn is_twin(&self, node: &str) -> bool {
        self.index(node).is_ok_and(|i| self.nodes[i].duplicate)
    }

    fn node_id(&self, node: &str) -> Result<String, BackendError> {
        let k = self.nodes[self.index(node)?].key_of;
        (self.spec.keys.get(k))
            .map(|k| k.id().to_hex())
            .ok_or_else(|| BackendError::Other(format!("no key for {node}")))
    }

    fn kill(&mut self, node: &str) -> Result<(), BackendError> {
        let i = self.index(node)?;
        self.kill_node(i)
    }

    fn restart(&mut self, node: &str) -> Result<(), BackendError> {
        let i = self.index(node)?;
        let c = self.container(i)?;
        self.write_clock(i)?;
        self.rt.block_on(c.start()).map_err(be)?;
        self.nodes[i].state = State::Running;
        self.sync_rules(&[i])
    }

    fn pause(&mut self, node: &str) -> Result<(), BackendError> {
        let i = self.index(node)?;
        let c = self.container(i)?;
        self.rt.block_on(c.pause()).map_err(be)?;
        self.nodes[i].state = State::Paused;
        Ok(())
    }

    fn resume(&mut self, node: &str) -> Result<(), BackendError> {
        let i = self.index(node)?;
        let c = self.container(i)?;
        self.write_clock(i)?;
        self.rt.block_on(c.unpause()).map_err(be)?;
        self.nodes[i].state = State::Running;
        // A paused container cannot exec: rules changed meanwhile are applied now.
        self.sync_rules(&[i])
    }

    fn stop_for_good(&mut self, node: &str) -> Result<(), BackendError> {
        let i = self.index(node)?;
        self.kill_node(i)?;
        if self.nodes[i].state != State::NotCreated {
            self.nodes[i].state = State::Failed;
        }
        Ok(())
    }

    fn start_new(&mut self, node: &str) -> Result<(), BackendError> {
        let i = self.index(node)?;
        self.create_node(i)?;
        self.sync_rules(&[i])
    }

    fn set_clock(
        &mut self,
        node: &str,
        rate: u32,
        jump: i64,
    ) -> Result<Option<serde_json::Value>, BackendError> {
        self.set_node_clock(node, rate, jump).map(Some)
    }

    fn reset_clocks(&mut self) -> Vec<String> {
        self.reset_node_clocks()
    }

    fn add_twin(&mut self, of: &str, twin: &str) -> Result<(), BackendError> {
        let orig = self.index(of)?;
        let i = self.nodes.len();
        let host = u8::try_from(i)
            .ok()
            .filter(|h| *h < 240)
            .ok_or_else(|| BackendError::Other("no address left".into()))?;
        self.nodes.push(DNode {
            name: twin.to_string(),
            home: self.homes.join(twin),
            ip: self.network.node_ip(host),
            container: None,
            state: State::NotCreated,
            duplicate: true,
            key_of: self.nodes[orig].key_of,
            adversary: None,
        });
        self.write_home(i, self.nodes[orig].key_of)?;
        Ok(())
    }

    fn start_byzantine(
        &mut self,
        nodes: &[String],
        behaviour: rollcall_adversary::Behaviour,
    ) -> Result<Option<serde_json::Value>, BackendError> {
        self.start_adversaries(nodes, behaviour).map(Some)
    }

    fn stop_byzantine(
        &mut self,
        nodes: &[String],
    ) -> Result<Option<serde_json::Value>, BackendError> {
        self.stop_adversaries(nodes).map(Some)
    }

    fn stop_all_byzantine(&mut self) -> Vec<String> {
        self.stop_all_adversaries()
    }
}

impl Clients for DockerBackend {
    fn submit(&mut self, node: &str, tx: Tx) -> Ticket {
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        let i = match self.index(node) {
            Ok(i) => i,
            Err(e) => {
                self.local
                    .push((ticket, ClientOutcome::Fail(e.to_string())));
                return ticket;
            }
        };
        let client = self.client(i);
        let done = self.done_tx.clone();
        self.rt.spawn(async move {
            let outcome = client_outcome(client.submit(&tx).await);
            let _ = done.send((ticket, outcome));
        });
        ticket
    }

    fn abandon(&mut self, ticket: Ticket) {
        self.abandoned.insert(ticket);
    }

    fn poll_completions(&mut self) -> Vec<Completed> {
        // Stamped when the loop learns them, so history times never go backwards;
        // a later completion time only widens an operation's window (still sound).
        let now = self.now_ns();
        let mut got: Vec<(Ticket, ClientOutcome)> = std::mem::take(&mut self.local);
        got.extend(self.done_rx.try_iter());
        got.into_iter()
            .filter(|(t, _)| !self.abandoned.remove(t))
            .map(|(ticket, outcome)| Completed {
                ticket,
                time_ns: now,
                outcome,
            })
            .collect()
    }

    fn status(&mut self, node: &str) -> Option<Status> {
        let i = self.index(node).ok()?;
        if self.nodes[i].state != State::Running {
            return None;
        }
        let client = self.client(i).with_read_timeout(Duration::from_secs(2));
        self.rt.block_on(client.status()).ok()
    }

    fn live_nodes(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| matches!(n.state, State::Running | State::Paused) && !n.duplicate)
            .map(|n| n.name.clone())
            .collect()
    }

    fn dump(&mut self) -> Result<Vec<NodeDumpData>, BackendError> {
        self.save_logs();
        let mut out = Vec::new();
        for i in 0..self.nodes.len() {
            let (name, state, home) = {
                let n = &self.nodes[i];
                (n.name.clone(), n.state, n.home.clone())
            };
            if state == State::NotCreated || self.nodes[i].container.is_none() {
                continue;
            }
            self.notice_exit(i);
            let state = self.nodes[i].state;
            let status = self.status(&name);
            let chain = if state == State::Running {
                (self.rt.block_on(self.client(i).chain()))
                    .map_err(|e| e.to_string())
                    .or_else(|e| {
                    warn!(node = %name, error = %e, "chain via the API failed: reading the store");
                    Self::chain_from_disk(&home)
                })
            } else {
                Self::chain_from_disk(&home)
            }
            .map_err(|e| BackendError::Other(format!("dump of {name}: {e}")))?;
            out.push(NodeDumpData {
                byzantine_key: None,
                stopped: self.disk.stopped(i),
                name,
                chain,
                status,
                alive: matches!(state, State::Running | State::Paused),
                signed: None,
            });
        }
        Ok(out)
    }
}

fn start_error(e: DockerBackendError) -> CommandError {
    match e {
        DockerBackendError::Engine(_) => CommandError::args(e.to_string()),
        e => CommandError::harness(format!("docker backend: {e}")),
    }
}

/// `rollcall test --backend docker` (harness.md §2, §8): like the sim's run, plus
/// node logs under `nodes/<n>/node.log`, written also when the run fails, and the
/// run's containers and network removed however it ends.
pub fn run_one(
    opts: &TestOptions,
    store_dir: &Path,
    command: &[String],
    quiet: bool,
) -> Result<RunReport, CommandError> {
    let spec = cluster(opts);
    let dir = store::new_run_dir(store_dir, &opts.name)
        .map_err(|e| CommandError::harness(e.to_string()))?;
    let mut backend = DockerBackend::start(
        &spec,
        DockerOptions::for_test(opts),
        Some(dir.join("nodes")),
    )
    .map_err(start_error)?;
    if !quiet {
        eprintln!(
            "docker cluster of {} nodes up in {:.2} s (run {})",
            opts.nodes,
            backend.startup_s,
            backend.run_id()
        );
    }
    let progress = Progress::new(opts.time_limit_s, quiet);
    let out = run(opts, &spec, &mut backend, &progress);
    progress.finish();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            // Keep what can be kept: logs and chains of every node.
            if let Ok(dumps) = backend.dump() {
                save_dumps(&dir, &dumps);
            }
            let _ = backend.shutdown();
            return Err(CommandError::harness(format!(
                "the docker run failed: {e} (node logs in {})",
                dir.join("nodes").display()
            )));
        }
    };
    if let Err(e) = backend.shutdown() {
        warn!(error = %e, "cleanup failed: run `rollcall clean`");
    }
    drop(backend);
    let results = crate::commands::check_output(opts, &spec, &out)?;
    crate::commands::save_run(opts, &spec, out, results, store_dir, dir, command)
}

/// What a failed run keeps of each node (the logs are saved already), through the
/// run directory's one writer.
fn save_dumps(dir: &Path, dumps: &[NodeDumpData]) {
    let run = rollcall_history::RunDir::new(dir);
    for d in dumps {
        if let Err(e) = run.write_node(&d.files()) {
            warn!(node = %d.name, error = %e, "could not keep the node's dump");
        }
    }
}

/// `rollcall clean` (harness.md §3): removes every container and network labelled
/// `rollcall=1`, whichever run left them.
pub fn clean() -> Result<(), CommandError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CommandError::harness(format!("tokio runtime: {e}")))?;
    let docker = rt
        .block_on(connect())
        .map_err(|e| CommandError::args(e.to_string()))?;
    let r = rt
        .block_on(cleanup(&docker, &CleanupScope::All))
        .map_err(|e| CommandError::harness(e.to_string()))?;
    let mounts = unmount_data_mounts(None).map_err(|e| CommandError::harness(e.to_string()))?;
    println!(
        "removed {} containers, {} networks, {} data mounts",
        r.containers.len(),
        r.networks.len(),
        mounts.len()
    );
    Ok(())
}
