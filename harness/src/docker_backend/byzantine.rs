//! The `byzantine` nemesis on docker (harness.md §5, issue 12): while the fault
//! lasts, a validator's honest container is stopped and a `rollcall-adversary`
//! container runs in its place: the same home (bind mount: its chain, key and sign
//! log), the same address, alias and run labels, the node's real runtime with every
//! peer message rewritten by the sans-IO adversary, as on the simulator
//! (`crate::sim`'s byzantine.rs). Link rules are installed in whichever container
//! runs the node. On stop the adversary gets SIGTERM (it writes its final stats),
//! and the honest node starts again on its own disk. A crashed adversary is not
//! restarted as one: the node comes back honest, as on the simulator.

use super::{be, DockerBackend, State};
use crate::backend::{BackendError, NodeControl};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rollcall_adversary::{Behaviour, Stats, STATS_FILE};
use rollcall_docker::image::ADVERSARY_PATH_IN_IMAGE;
use rollcall_docker::Container;
use rollcall_workloads::max_faulty;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use tracing::{info, warn};

/// An adversary's SIGTERM grace: it writes its final stats and exits at once.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// The honest node's stop before its adversary starts (it exits on SIGTERM).
const HONEST_STOP_GRACE: Duration = Duration::from_secs(2);
/// Mixed into the run's backend seed for the adversaries' seeds.
const SEED_SALT: u64 = 0xb42a_7e5e_ed00_0012;

/// An adversary container running in a node's place.
pub(super) struct AdvRun {
    /// The adversary's container (what [`DockerBackend::container`] returns).
    pub(super) container: Container,
    seq: u64,
    behaviour: Behaviour,
}

/// The backend's adversary bookkeeping.
pub(super) struct ByzState {
    rng: ChaCha8Rng,
    seq: u64,
    /// What adversaries that crashed during the fault sent, until it stops.
    crashed: BTreeMap<usize, Stats>,
}

impl ByzState {
    /// Adversary seeds drawn from the run's backend seed.
    pub(super) fn new(seed: u64) -> Self {
        ByzState {
            rng: ChaCha8Rng::seed_from_u64(seed ^ SEED_SALT),
            seq: 0,
            crashed: BTreeMap::new(),
        }
    }
}

fn add(total: &mut Stats, s: &Stats) {
    total.honest += s.honest;
    total.deviant += s.deviant;
    total.suppressed += s.suppressed;
}

/// The adversary binary's arguments (see `rollcall-adversary --help`).
fn adversary_args(behaviour: Behaviour, seed: u64, allies: &[String]) -> Vec<String> {
    let mut cmd: Vec<String> = ["--home", "/data", "--behaviour", behaviour.name(), "--seed"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    cmd.push(seed.to_string());
    for a in allies {
        cmd.push("--ally".into());
        cmd.push(a.clone());
    }
    cmd
}

impl DockerBackend {
    /// Starts a `byzantine` fault: the named running validators get adversary
    /// containers colluding with each other; more than f of them is beyond the
    /// fault model, and the recorded details say so (as on the simulator).
    pub(super) fn start_adversaries(
        &mut self,
        names: &[String],
        behaviour: Behaviour,
    ) -> Result<Value, BackendError> {
        let mut idx = Vec::new();
        for name in names {
            let i = self.index(name)?;
            let n = &self.nodes[i];
            if n.state == State::Running && n.adversary.is_none() && !n.duplicate {
                idx.push(i);
            }
        }
        let ids: Vec<String> = (idx.iter())
            .map(|i| self.node_id(&self.nodes[*i].name))
            .collect::<Result<_, _>>()?;
        for (k, &i) in idx.iter().enumerate() {
            let allies: Vec<String> = (ids.iter().enumerate())
                .filter(|(j, _)| *j != k)
                .map(|(_, id)| id.clone())
                .collect();
            let seed = self.byz.rng.gen();
            self.replace_with_adversary(i, behaviour, seed, &allies)?;
        }
        self.sync_rules(&idx)?;
        let n = self.spec.genesis.roster.len();
        Ok(json!({
            "adversaries": idx.iter().map(|i| self.nodes[*i].name.clone()).collect::<Vec<_>>(),
            "ids": ids,
            "f": max_faulty(n),
            "beyond_fault_model": idx.len() > max_faulty(n),
        }))
    }

    /// Stops node `i`'s honest container and starts its adversary in its place.
    fn replace_with_adversary(
        &mut self,
        i: usize,
        behaviour: Behaviour,
        seed: u64,
        allies: &[String],
    ) -> Result<(), BackendError> {
        let honest = (self.nodes[i].container.clone()).ok_or_else(|| {
            BackendError::Other(format!("{} has no container", self.nodes[i].name))
        })?;
        // A stale file of an earlier interval must not be read as this one's.
        let _ = std::fs::remove_file(self.nodes[i].home.join(STATS_FILE));
        self.byz.seq += 1;
        let seq = self.byz.seq;
        let mut spec = self.node_spec(i);
        spec.entrypoint = Some(vec![ADVERSARY_PATH_IN_IMAGE.into()]);
        spec.cmd = adversary_args(behaviour, seed, allies);
        spec.container_suffix = format!("-adv{seq}");
        self.rt
            .block_on(honest.stop(HONEST_STOP_GRACE))
            .map_err(be)?;
        self.installed.remove(&i);
        let started = self
            .rt
            .block_on(self.network.start_node(&self.image, &spec));
        let container = match started {
            Ok(c) => c,
            Err(e) => {
                // Leave the node as it was: honest and running.
                let back = self.rt.block_on(honest.start());
                if let Err(b) = back {
                    warn!(node = %self.nodes[i].name, error = %b, "cannot restart the honest node");
                    self.nodes[i].state = State::Killed;
                }
                return Err(be(e));
            }
        };
        info!(node = %self.nodes[i].name, %behaviour, seed, container = %container.name, "adversary in the node's place");
        self.nodes[i].adversary = Some(AdvRun {
            container,
            seq,
            behaviour,
        });
        Ok(())
    }

    /// Stops a `byzantine` fault: each named node's adversary is stopped and its
    /// honest node starts again on its own disk (paused if the adversary was);
    /// what each adversary sent goes into the history (harness.md §7 `byzantine`).
    pub(super) fn stop_adversaries(&mut self, names: &[String]) -> Result<Value, BackendError> {
        let mut sent = serde_json::Map::new();
        let mut back = Vec::new();
        for name in names {
            let i = self.index(name)?;
            let mut total = self.byz.crashed.remove(&i);
            if let Some(a) = self.nodes[i].adversary.take() {
                let paused = self.nodes[i].state == State::Paused;
                let c = a.container.clone();
                let stopped = self.rt.block_on(async {
                    if paused {
                        c.unpause().await?;
                    }
                    c.stop(STOP_GRACE).await
                });
                if let Err(e) = stopped {
                    warn!(node = %name, error = %e, "stopping the adversary (it may have exited)");
                }
                add(
                    total.get_or_insert_with(Stats::default),
                    &self.retire(i, &a),
                );
                self.honest_back(i, paused)?;
                back.push(i);
            }
            if let Some(t) = total {
                sent.insert(name.clone(), json!(t));
            }
        }
        self.sync_rules(&back)?;
        Ok(json!({ "sent": sent }))
    }

    /// The final heal: every adversary stopped, its node honest again; their names.
    pub(super) fn stop_all_adversaries(&mut self) -> Vec<String> {
        let names: Vec<String> = (self.nodes.iter())
            .filter(|n| n.adversary.is_some())
            .map(|n| n.name.clone())
            .collect();
        if let Err(e) = self.stop_adversaries(&names) {
            warn!(error = %e, "final heal: an adversary could not be replaced by its node");
        }
        self.byz.crashed.clear();
        names
    }

    /// After node `i`'s container died (killed, or exited on its own): if it was an
    /// adversary, its counts are kept for the fault's stop and the node comes back
    /// honest when restarted.
    pub(super) fn adversary_crashed(&mut self, i: usize) {
        let Some(a) = self.nodes[i].adversary.take() else {
            return;
        };
        let stats = self.retire(i, &a);
        add(self.byz.crashed.entry(i).or_default(), &stats);
    }

    /// Reads a stopped adversary's stats from the node's home, keeps its log and
    /// removes its container.
    fn retire(&self, i: usize, a: &AdvRun) -> Stats {
        let n = &self.nodes[i];
        let path = n.home.join(STATS_FILE);
        let stats = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Stats>(&b).map_err(|e| e.to_string()))
            .unwrap_or_else(|e| {
                warn!(node = %n.name, error = %e, "no adversary stats: counted as nothing sent");
                Stats::default()
            });
        self.save_adversary_log(&n.name, a);
        if let Err(e) = self.rt.block_on(a.container.remove()) {
            warn!(container = %a.container.name, error = %e, "cannot remove the adversary container");
        }
        info!(node = %n.name, ?stats, "adversary stopped");
        stats
    }

    /// Starts node `i`'s own container again (paused, if it is to stay paused).
    fn honest_back(&mut self, i: usize, paused: bool) -> Result<(), BackendError> {
        let c = (self.nodes[i].container.clone()).ok_or_else(|| {
            BackendError::Other(format!("{} has no container", self.nodes[i].name))
        })?;
        self.installed.remove(&i);
        self.rt
            .block_on(async {
                c.start().await?;
                if paused {
                    c.pause().await?;
                }
                Ok::<(), rollcall_docker::DockerError>(())
            })
            .map_err(be)
    }

    /// Saves an adversary container's log as `nodes/<n>/adversary-<k>-<behaviour>.log`.
    pub(super) fn save_adversary_log(&self, node: &str, a: &AdvRun) {
        let Some(dir) = &self.log_dir else { return };
        let path = (dir.join(node)).join(format!("adversary-{}-{}.log", a.seq, a.behaviour));
        if let Err(e) = self.rt.block_on(a.container.save_logs(&path)) {
            warn!(node, error = %e, "cannot save the adversary log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_adversary_gets_its_behaviour_seed_and_every_ally() {
        let a = adversary_args(Behaviour::Equivocate, 9, &["aa".into(), "bb".into()]);
        assert_eq!(
            a.join(" "),
            "--home /data --behaviour equivocate --seed 9 --ally aa --ally bb"
        );
    }
}
