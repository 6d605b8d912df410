//! Container primitives for the docker backend: engine connection, the run network,
//! node containers and their lifecycle, exec, logs and label-based cleanup.
//!
//! Every object created here carries the labels `rollcall=1` and `rollcall.run=<id>`;
//! cleanup only ever touches objects with `rollcall=1`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, ExecConfig, HostConfig, Ipam,
    IpamConfig, NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    ListNetworksOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StartContainerOptions, StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tracing::{debug, info, warn};

use crate::DockerError;

/// Label on every object this crate creates; cleanup selects on it.
pub const LABEL_ROLLCALL: &str = "rollcall";
/// Label carrying the run id, so one run's leftovers can be removed alone.
pub const LABEL_RUN: &str = "rollcall.run";
/// Label carrying the node name inside its run.
pub const LABEL_NODE: &str = "rollcall.node";
pub use crate::owner::{orphan, owner_alive, pid_alive, this_owner, LABEL_OWNER};
/// The default engine address when `DOCKER_HOST` is unset.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// How long `connect` waits for the engine's ping before giving up.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to the engine named by `DOCKER_HOST` (default: the local socket) and pings it.
///
/// Fails with [`DockerError::EngineUnreachable`], whose message tells the user how to
/// start an engine or to fall back to the sim backend.
pub async fn connect() -> Result<Docker, DockerError> {
    let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| DEFAULT_DOCKER_HOST.to_string());
    connect_to(&host).await
}

/// Connects to an explicit engine address (`unix://...`, `tcp://...`) and pings it.
///
/// Negotiates the API version down to the engine's (Debian's 20.10 speaks 1.41).
pub async fn connect_to(host: &str) -> Result<Docker, DockerError> {
    let unreachable = |reason: String| DockerError::EngineUnreachable {
        addr: host.to_string(),
        reason,
    };
    let docker = Docker::connect_with_host(host).map_err(|e| unreachable(e.to_string()))?;
    match tokio::time::timeout(PING_TIMEOUT, docker.ping()).await {
        Err(_) => {
            return Err(unreachable(format!(
                "no answer to ping in {PING_TIMEOUT:?}"
            )))
        }
        Ok(Err(e)) => return Err(unreachable(e.to_string())),
        Ok(Ok(_)) => {}
    }
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| unreachable(format!("version negotiation: {e}")))?;
    debug!(host, version = ?docker.client_version(), "connected to docker engine");
    Ok(docker)
}

/// Labels for an object of `run_id`, with optional extra pairs.
pub fn run_labels(run_id: &str, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut labels = HashMap::from([
        (LABEL_ROLLCALL.to_string(), "1".to_string()),
        (LABEL_RUN.to_string(), run_id.to_string()),
        (LABEL_OWNER.to_string(), this_owner()),
    ]);
    for (k, v) in extra {
        labels.insert((*k).to_string(), (*v).to_string());
    }
    labels
}

/// Docker object names allow `[a-zA-Z0-9][a-zA-Z0-9_.-]`; run ids are sanitised to that.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A private bridge network of one run, with a fixed /24 so node addresses are fixed.
#[derive(Clone)]
pub struct Network {
    docker: Docker,
    /// Engine id of the network.
    pub id: String,
    /// Network name, `rollcall-<run_id>`.
    pub name: String,
    /// The run this network belongs to.
    pub run_id: String,
    /// First three octets of the /24 (`172.28.X`).
    pub prefix: [u8; 3],
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("name", &self.name)
            .field("subnet", &self.subnet())
            .finish()
    }
}

impl Network {
    /// Creates the run's network in a free `172.28.X.0/24`, X derived from the run id.
    ///
    /// Subnets already used by any engine network are skipped, and a clash at creation
    /// (two runs racing) moves on to the next candidate.
    pub async fn create(docker: &Docker, run_id: &str) -> Result<Network, DockerError> {
        let name = format!("rollcall-{}", sanitize(run_id));
        let used = used_subnets(docker).await?;
        let start = fnv(run_id) % 256;
        for i in 0..256u32 {
            let x = ((start + i) % 256) as u8;
            let subnet = format!("172.28.{x}.0/24");
            if used.iter().any(|u| overlaps(u, [172, 28, x])) {
                continue;
            }
            let req = NetworkCreateRequest {
                name: name.clone(),
                driver: Some("bridge".into()),
                ipam: Some(Ipam {
                    driver: Some("default".into()),
                    config: Some(vec![IpamConfig {
                        subnet: Some(subnet.clone()),
                        gateway: Some(format!("172.28.{x}.1")),
                        ..Default::default()
                    }]),
                    options: None,
                }),
                labels: Some(run_labels(run_id, &[])),
                ..Default::default()
            };
            match docker.create_network(req).await {
                Ok(resp) => {
                    info!(network = %name, %subnet, "created run network");
                    return Ok(Network {
                        docker: docker.clone(),
                        id: resp.id,
                        name,
                        run_id: run_id.to_string(),
                        prefix: [172, 28, x],
                    });
                }
                Err(e) if e.to_string().contains("overlap") => {
                    debug!(%subnet, "subnet taken meanwhile, trying the next");
                    continue;
                }
                Err(e) => return Err(DockerError::api(format!("create network {name}"), e)),
            }
        }
        Err(DockerError::NoFreeSubnet {
            run_id: run_id.to_string(),
        })
    }

    /// The subnet in CIDR form.
    pub fn subnet(&self) -> String {
        let [a, b, c] = self.prefix;
        format!("{a}.{b}.{c}.0/24")
    }

    /// The fixed address of host number `host` (2..=254) on this network.
    pub fn ip(&self, host: u8) -> Ipv4Addr {
        let [a, b, c] = self.prefix;
        Ipv4Addr::new(a, b, c, host)
    }

    /// The fixed address of node `index` (0-based): `.10`, `.11`, ...
    pub fn node_ip(&self, index: u8) -> Ipv4Addr {
        self.ip(10u8.saturating_add(index))
    }

    /// Creates and starts one node container on this network (see [`NodeSpec`]).
    pub async fn start_node(&self, image: &str, spec: &NodeSpec) -> Result<Container, DockerError> {
        let container_name = format!(
            "rollcall-{}-{}",
            sanitize(&self.run_id),
            sanitize(&format!("{}{}", spec.name, spec.container_suffix))
        );
        let labels = run_labels(&self.run_id, &[(LABEL_NODE, &spec.name)]);
        let binds = crate::mounts::node_binds(spec)?;
        let endpoint = EndpointSettings {
            ipam_config: Some(EndpointIpamConfig {
                ipv4_address: Some(spec.ip.to_string()),
                ..Default::default()
            }),
            aliases: Some(vec![spec.name.clone()]),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            hostname: Some(spec.name.clone()),
            entrypoint: spec.entrypoint.clone(),
            cmd: Some(spec.cmd.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(labels),
            host_config: Some(HostConfig {
                binds: Some(binds),
                cap_add: Some(vec!["NET_ADMIN".into()]),
                network_mode: Some(self.name.clone()),
                init: Some(false),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(self.name.clone(), endpoint)])),
            }),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(
                Some(
                    CreateContainerOptionsBuilder::default()
                        .name(&container_name)
                        .build(),
                ),
                body,
            )
            .await
            .map_err(|e| DockerError::api(format!("create container {container_name}"), e))?;
        let container = Container {
            docker: self.docker.clone(),
            id: created.id,
            name: container_name,
            node: spec.name.clone(),
            ip: spec.ip,
        };
        container.start().await?;
        info!(container = %container.name, ip = %container.ip, "started node container");
        Ok(container)
    }

    /// Creates and starts several nodes concurrently (create+start is ~0.5 s each).
    ///
    /// On error the containers that did start are left for [`cleanup`] to remove.
    pub async fn start_nodes(
        &self,
        image: &str,
        specs: &[NodeSpec],
    ) -> Result<Vec<Container>, DockerError> {
        futures_util::future::try_join_all(specs.iter().map(|s| self.start_node(image, s))).await
    }

    /// Removes the network (its containers must be gone first; see [`cleanup`]).
    pub async fn remove(&self) -> Result<(), DockerError> {
        self.docker
            .remove_network(&self.id)
            .await
            .map_err(|e| DockerError::api(format!("remove network {}", self.name), e))
    }
}

/// What one node container runs and where.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Node name within the run (`n1`); also the hostname and network alias.
    pub name: String,
    /// Fixed address on the run network (see [`Network::node_ip`]).
    pub ip: Ipv4Addr,
    /// Host directory bind-mounted as the node's home, so chains survive restarts and
    /// the harness can read them afterwards.
    pub home: Option<PathBuf>,
    /// Where `home` appears inside the container.
    pub home_in_container: String,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Arguments to the entrypoint (the node binary), e.g. `["run", "--home", "/data"]`.
    pub cmd: Vec<String>,
    /// Replaces the image entrypoint (tests: busybox; issue 12: the adversary); `None`: the node.
    pub entrypoint: Option<Vec<String>>,
    /// Host directory of the node's clock control file ([`crate::clock::bind`]).
    pub clock_dir: Option<PathBuf>,
    /// Appended to the container name of a second container of this node (an adversary in
    /// its place, issue 12; empty: its own); hostname, alias, address, labels stay the node's.
    pub container_suffix: String,
}

impl NodeSpec {
    /// A spec running `rollcall-node run --home /data` with `home` mounted at /data.
    pub fn node(name: &str, ip: Ipv4Addr, home: Option<PathBuf>) -> Self {
        NodeSpec {
            name: name.to_string(),
            ip,
            home,
            home_in_container: "/data".into(),
            env: Vec::new(),
            cmd: vec!["run".into(), "--home".into(), "/data".into()],
            entrypoint: None,
            clock_dir: None,
            container_suffix: String::new(),
        }
    }
}

/// The result of a command run inside a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit status (-1 if the engine did not report one).
    pub exit_code: i64,
    /// Everything the command wrote on stdout.
    pub stdout: String,
    /// Everything the command wrote on stderr.
    pub stderr: String,
}

impl ExecOutput {
    /// True when the command exited 0.
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

/// A node container: lifecycle, exec, logs. Cheap to clone (the client is shared).
#[derive(Clone)]
pub struct Container {
    pub(crate) docker: Docker,
    /// Engine id.
    pub id: String,
    /// Container name, `rollcall-<run>-<node>`.
    pub name: String,
    /// Node name within the run.
    pub node: String,
    /// Fixed address on the run network; the host reaches it directly.
    pub ip: Ipv4Addr,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("name", &self.name)
            .field("ip", &self.ip)
            .finish()
    }
}

impl Container {
    /// Starts the (created or killed/stopped) container again; its network rules are gone.
    pub async fn start(&self) -> Result<(), DockerError> {
        self.docker
            .start_container(&self.id, None::<StartContainerOptions>)
            .await
            .map_err(|e| DockerError::api(format!("start {}", self.name), e))
    }

    /// SIGKILLs the node: the crash fault (no chance to flush anything).
    pub async fn kill(&self) -> Result<(), DockerError> {
        self.docker
            .kill_container(
                &self.id,
                Some(
                    KillContainerOptionsBuilder::default()
                        .signal("SIGKILL")
                        .build(),
                ),
            )
            .await
            .map_err(|e| DockerError::api(format!("kill {}", self.name), e))
    }

    /// Freezes every process of the node (cgroup freezer); the kernel still answers ICMP.
    pub async fn pause(&self) -> Result<(), DockerError> {
        self.docker
            .pause_container(&self.id)
            .await
            .map_err(|e| DockerError::api(format!("pause {}", self.name), e))
    }

    /// Resumes a paused node.
    pub async fn unpause(&self) -> Result<(), DockerError> {
        self.docker
            .unpause_container(&self.id)
            .await
            .map_err(|e| DockerError::api(format!("unpause {}", self.name), e))
    }

    /// Stops the node for good (SIGTERM, SIGKILL after `grace`): the fail-node fault.
    pub async fn stop(&self, grace: Duration) -> Result<(), DockerError> {
        let t = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        self.docker
            .stop_container(
                &self.id,
                Some(StopContainerOptionsBuilder::default().t(t).build()),
            )
            .await
            .map_err(|e| DockerError::api(format!("stop {}", self.name), e))
    }

    /// Removes the container (forced, with its anonymous volumes).
    pub async fn remove(&self) -> Result<(), DockerError> {
        self.docker
            .remove_container(
                &self.id,
                Some(
                    RemoveContainerOptionsBuilder::default()
                        .force(true)
                        .v(true)
                        .build(),
                ),
            )
            .await
            .map_err(|e| DockerError::api(format!("remove {}", self.name), e))
    }

    /// Whether the container's main process is running (paused counts as running).
    pub async fn is_running(&self) -> Result<bool, DockerError> {
        let info = self
            .docker
            .inspect_container(&self.id, None)
            .await
            .map_err(|e| DockerError::api(format!("inspect {}", self.name), e))?;
        Ok(info.state.and_then(|s| s.running).unwrap_or(false))
    }

    /// Runs `cmd` inside the container and returns its exit code and output.
    pub async fn exec(&self, cmd: &[&str]) -> Result<ExecOutput, DockerError> {
        let what = || format!("exec `{}` in {}", cmd.join(" "), self.name);
        let exec = self
            .docker
            .create_exec(
                &self.id,
                ExecConfig {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| DockerError::api(what(), e))?;
        let started = self
            .docker
            .start_exec(
                &exec.id,
                Some(StartExecOptions {
                    detach: false,
                    tty: false,
                    output_capacity: None,
                }),
            )
            .await
            .map_err(|e| DockerError::api(what(), e))?;
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        if let StartExecResults::Attached { mut output, .. } = started {
            while let Some(item) = output.next().await {
                match item.map_err(|e| DockerError::api(what(), e))? {
                    bollard::container::LogOutput::StdErr { message } => {
                        stderr.extend_from_slice(&message)
                    }
                    other => stdout.extend_from_slice(other.as_ref()),
                }
            }
        }
        let inspect = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .map_err(|e| DockerError::api(what(), e))?;
        let out = ExecOutput {
            exit_code: inspect.exit_code.unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        };
        debug!(container = %self.name, cmd = %cmd.join(" "), exit = out.exit_code, "exec");
        Ok(out)
    }

    /// Runs `cmd` and fails with [`DockerError::ExecFailed`] unless it exits 0.
    pub async fn exec_ok(&self, cmd: &[&str]) -> Result<ExecOutput, DockerError> {
        let out = self.exec(cmd).await?;
        if out.success() {
            Ok(out)
        } else {
            Err(DockerError::ExecFailed {
                container: self.name.clone(),
                command: cmd.join(" "),
                exit_code: out.exit_code,
                stderr: out.stderr.trim().to_string(),
            })
        }
    }

    /// Runs a shell script with busybox `sh -c`, failing unless it exits 0.
    pub async fn sh(&self, script: &str) -> Result<ExecOutput, DockerError> {
        self.exec_ok(&["/bin/sh", "-c", script]).await
    }

    /// ICMP echo requests this container's kernel has received (`Icmp: InEchos` of
    /// `/proc/net/snmp`, its own network namespace). Counted after the INPUT
    /// hook, so a packet an iptables rule dropped is not counted: the receiving
    /// side's proof that packets from a peer arrive, whatever happens to replies.
    ///
    /// A read has no side effect, so a failed exec (the engine answers 126 now and
    /// then under load) is tried again, three times in all.
    pub async fn icmp_echos_received(&self) -> Result<u64, DockerError> {
        let mut tries = 0;
        let out = loop {
            tries += 1;
            match self.exec_ok(&["cat", "/proc/net/snmp"]).await {
                Ok(o) => break o,
                Err(e) if tries >= 3 => return Err(e),
                Err(e) => {
                    debug!(container = %self.name, error = %e, "reading /proc/net/snmp: trying again");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let icmp: Vec<&str> = out
            .stdout
            .lines()
            .filter(|l| l.starts_with("Icmp:"))
            .collect();
        let parsed = match icmp.as_slice() {
            [names, values, ..] => names
                .split_whitespace()
                .zip(values.split_whitespace())
                .find(|(n, _)| *n == "InEchos")
                .and_then(|(_, v)| v.parse().ok()),
            _ => None,
        };
        parsed.ok_or_else(|| {
            DockerError::Invalid(format!(
                "no Icmp InEchos in /proc/net/snmp of {}",
                self.name
            ))
        })
    }

    /// Sends `count` ICMP echo requests to `ip` from inside this container (busybox
    /// `ping`), waiting at most about a second for each; whether replies came back
    /// is not reported (see [`Container::icmp_echos_received`] on the receiver).
    pub async fn send_pings(&self, ip: Ipv4Addr, count: u32) -> Result<(), DockerError> {
        let script = format!("ping -c {count} -W 1 {ip} >/dev/null 2>&1; true");
        self.sh(&script).await.map(|_| ())
    }

    /// Probes TCP from inside this container: true if `ip:port` accepts a connection
    /// within about `timeout_secs` seconds (busybox `nc -w`). A paused peer still accepts
    /// (the kernel does the handshake); use [`Container::tcp_echo`] to see a pause.
    pub async fn tcp_probe(
        &self,
        ip: Ipv4Addr,
        port: u16,
        timeout_secs: u32,
    ) -> Result<bool, DockerError> {
        let t = timeout_secs.max(1);
        let script = format!(
            "echo rollcall-probe | timeout {} nc -w {t} {ip} {port}",
            t + 1
        );
        let out = self.exec(&["/bin/sh", "-c", &script]).await?;
        // busybox nc dies with "timed out" / "can't connect" when the connection fails;
        // a connected nc either exits 0 or is killed by `timeout` while the peer is silent.
        let failed = out.stderr.contains("timed out")
            || out.stderr.contains("can't connect")
            || out.stderr.contains("No route")
            || (out.exit_code != 0 && out.exit_code != 124 && out.exit_code != 143);
        debug!(container = %self.name, %ip, port, reachable = !failed, exit = out.exit_code, stderr = %out.stderr.trim(), "tcp probe");
        Ok(!failed)
    }

    /// Checks from inside this container that `ip:port` echoes a line back within about
    /// `timeout_secs` (busybox `nc`). Unlike [`Container::tcp_probe`] this notices a paused
    /// peer, whose kernel still completes the TCP handshake.
    pub async fn tcp_echo(
        &self,
        ip: Ipv4Addr,
        port: u16,
        timeout_secs: u32,
    ) -> Result<bool, DockerError> {
        let t = timeout_secs.max(1);
        let script = format!(
            "echo rollcall-echo | timeout {} nc -w {t} {ip} {port}",
            t + 1
        );
        let out = self.exec(&["/bin/sh", "-c", &script]).await?;
        Ok(out.stdout.contains("rollcall-echo"))
    }

    /// Writes the container's stdout and stderr so far to `path` (the run store's node log).
    pub async fn save_logs(&self, path: &Path) -> Result<u64, DockerError> {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| DockerError::io(format!("create {}", parent.display()), e))?;
        }
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|e| DockerError::io(format!("create {}", path.display()), e))?;
        let mut stream = self.docker.logs(
            &self.id,
            Some(
                LogsOptionsBuilder::default()
                    .stdout(true)
                    .stderr(true)
                    .follow(false)
                    .build(),
            ),
        );
        let mut written = 0u64;
        while let Some(item) = stream.next().await {
            let chunk = item.map_err(|e| DockerError::api(format!("logs of {}", self.name), e))?;
            let bytes = chunk.into_bytes();
            file.write_all(&bytes)
                .await
                .map_err(|e| DockerError::io(format!("write {}", path.display()), e))?;
            written += bytes.len() as u64;
        }
        file.flush()
            .await
            .map_err(|e| DockerError::io(format!("write {}", path.display()), e))?;
        Ok(written)
    }
}

/// Which leftovers [`cleanup`] removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CleanupScope {
    /// Only objects of one run (`rollcall.run=<id>`).
    Run(String),
    /// Every object labelled `rollcall=1` (`rollcall clean`).
    All,
    /// Those whose owner process is gone ([`owner_alive`]): a starting run's cleanup.
    Orphans,
}

/// What [`cleanup`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Names of removed containers.
    pub containers: Vec<String>,
    /// Names of removed networks.
    pub networks: Vec<String>,
}

fn label_filters(scope: &CleanupScope) -> HashMap<String, Vec<String>> {
    let mut labels = vec![format!("{LABEL_ROLLCALL}=1")];
    if let CleanupScope::Run(id) = scope {
        labels.push(format!("{LABEL_RUN}={id}"));
    }
    HashMap::from([("label".to_string(), labels)])
}

/// Containers (any state) carrying the labels of `scope`; used by cleanup and by tests.
pub async fn list_labelled_containers(
    docker: &Docker,
    scope: &CleanupScope,
) -> Result<Vec<(String, String)>, DockerError> {
    let list = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&label_filters(scope))
                .build(),
        ))
        .await
        .map_err(|e| DockerError::api("list containers", e))?;
    Ok(list
        .into_iter()
        .filter(|c| *scope != CleanupScope::Orphans || orphan(c.labels.as_ref()))
        .filter_map(|c| {
            let id = c.id?;
            let name = c
                .names
                .and_then(|n| n.first().cloned())
                .unwrap_or_else(|| id.clone());
            Some((id, name.trim_start_matches('/').to_string()))
        })
        .collect())
}

/// Networks carrying the labels of `scope`.
pub async fn list_labelled_networks(
    docker: &Docker,
    scope: &CleanupScope,
) -> Result<Vec<(String, String)>, DockerError> {
    let list = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&label_filters(scope))
                .build(),
        ))
        .await
        .map_err(|e| DockerError::api("list networks", e))?;
    Ok(list
        .into_iter()
        .filter(|n| *scope != CleanupScope::Orphans || orphan(n.labels.as_ref()))
        .filter_map(|n| Some((n.id?, n.name.unwrap_or_default())))
        .collect())
}

/// Force-removes every container, then every network, labelled `rollcall=1` (and the
/// run id for [`CleanupScope::Run`]). Objects without the label are never touched.
///
/// Keeps going past individual failures and reports the first one at the end.
pub async fn cleanup(docker: &Docker, scope: &CleanupScope) -> Result<CleanupReport, DockerError> {
    let mut report = CleanupReport::default();
    let mut first_err = None;
    for (id, name) in list_labelled_containers(docker, scope).await? {
        match docker
            .remove_container(
                &id,
                Some(
                    RemoveContainerOptionsBuilder::default()
                        .force(true)
                        .v(true)
                        .build(),
                ),
            )
            .await
        {
            Ok(()) => report.containers.push(name),
            Err(e) if e.to_string().contains("404") || e.to_string().contains("No such") => {}
            Err(e) => {
                warn!(container = %name, error = %e, "cleanup: cannot remove container");
                first_err.get_or_insert(DockerError::api(format!("remove container {name}"), e));
            }
        }
    }
    for (id, name) in list_labelled_networks(docker, scope).await? {
        match docker.remove_network(&id).await {
            Ok(()) => report.networks.push(name),
            Err(e) if e.to_string().contains("404") || e.to_string().contains("No such") => {}
            Err(e) => {
                warn!(network = %name, error = %e, "cleanup: cannot remove network");
                first_err.get_or_insert(DockerError::api(format!("remove network {name}"), e));
            }
        }
    }
    if !report.containers.is_empty() || !report.networks.is_empty() {
        info!(
            ?scope,
            containers = report.containers.len(),
            networks = report.networks.len(),
            "cleaned up"
        );
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Waits for Ctrl-C, then removes the objects of `scope` and returns what was removed.
///
/// Meant for `tokio::select!` next to the run, so an interrupted run leaves nothing
/// behind; the caller decides how to exit afterwards.
pub async fn cleanup_on_ctrl_c(
    docker: &Docker,
    scope: &CleanupScope,
) -> Result<CleanupReport, DockerError> {
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| DockerError::io("wait for Ctrl-C", e))?;
    warn!(?scope, "interrupted: removing containers and networks");
    cleanup(docker, scope).await
}

/// Whether the host gets a line echoed back from `addr` within `timeout` (echo payloads
/// only): notices paused processes, which a bare connect does not.
pub async fn tcp_echo_from_host(addr: SocketAddr, timeout: Duration) -> bool {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let Ok(mut s) = TcpStream::connect_timeout(&addr, timeout) else {
            return false;
        };
        if s.set_read_timeout(Some(timeout)).is_err() || s.write_all(b"ping\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).is_ok() && &buf == b"ping\n"
    })
    .await
    .unwrap_or(false)
}

/// Whether the host can open a TCP connection to `addr` within `timeout`.
///
/// The host reaches bridge addresses directly, so no ports need publishing.
pub async fn tcp_reachable_from_host(addr: SocketAddr, timeout: Duration) -> bool {
    tokio::task::spawn_blocking(move || TcpStream::connect_timeout(&addr, timeout).is_ok())
        .await
        .unwrap_or(false)
}

/// Subnets (CIDR strings) used by every network the engine knows.
async fn used_subnets(docker: &Docker) -> Result<Vec<String>, DockerError> {
    let nets = docker
        .list_networks(None)
        .await
        .map_err(|e| DockerError::api("list networks", e))?;
    Ok(nets
        .into_iter()
        .filter_map(|n| n.ipam.and_then(|i| i.config))
        .flatten()
        .filter_map(|c| c.subnet)
        .collect())
}

/// Whether CIDR `used` overlaps the /24 starting at `prefix`.
fn overlaps(used: &str, prefix: [u8; 3]) -> bool {
    let Some((addr, len)) = used.split_once('/') else {
        return false;
    };
    let (Ok(addr), Ok(len)) = (addr.parse::<Ipv4Addr>(), len.parse::<u32>()) else {
        return false; // IPv6 or malformed: cannot clash with an IPv4 /24
    };
    let ours = u32::from(Ipv4Addr::new(prefix[0], prefix[1], prefix[2], 0));
    let theirs = u32::from(addr);
    let common = len.min(24);
    let mask = if common == 0 {
        0
    } else {
        u32::MAX << (32 - common)
    };
    ours & mask == theirs & mask
}

/// FNV-1a: a stable small hash of the run id (std's hasher is randomised per process).
fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_detection() {
        assert!(overlaps("172.16.0.0/12", [172, 28, 5]));
        assert!(overlaps("172.28.5.0/24", [172, 28, 5]));
        assert!(overlaps("172.28.5.128/25", [172, 28, 5]));
        assert!(!overlaps("172.28.6.0/24", [172, 28, 5]));
        assert!(!overlaps("172.17.0.0/16", [172, 28, 5]));
        assert!(!overlaps("fd00::/64", [172, 28, 5]));
    }

    #[test]
    fn names_are_sanitised() {
        assert_eq!(sanitize("run 1/a"), "run-1-a");
    }

    #[tokio::test]
    async fn missing_engine_error_is_clear() {
        let err = connect_to("unix:///nonexistent/rollcall-test/docker.sock")
            .await
            .expect_err("no engine there");
        let msg = err.to_string();
        assert!(
            msg.contains(
                "Docker engine not reachable at unix:///nonexistent/rollcall-test/docker.sock"
            ),
            "{msg}"
        );
        assert!(msg.contains("systemctl start docker"), "{msg}");
        assert!(msg.contains("--backend sim"), "{msg}");
    }
}
