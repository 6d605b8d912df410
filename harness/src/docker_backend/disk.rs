//! The `disk` nemesis's primitives on containers (issue 13; what the fault means is
//! `crate::nemesis`'s): a killed node's real store files are damaged from the host
//! through its bind-mounted home, and a full disk is a host tmpfs under the node's
//! data directory shrunk to what it holds, so the node's writes get ENOSPC from the
//! kernel. A failing fsync (EIO) cannot be injected into a container: it stays
//! unsupported (recorded `degraded`); the simulator covers it.

use super::{DockerBackend, State};
use crate::backend::{DiskControl, DiskUnsupported};
use crate::options::TestOptions;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rollcall_docker::{damage_file, Damage, DataMount};
use rollcall_node_core::store::LogFile;
use rollcall_workloads::{DiskFault, Fault, NemesisKind};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use tracing::{info, warn};

/// Size of a node's data mount: far above what a test writes (tmpfs takes memory
/// only for what is stored), so only the `full` fault ever fills it.
pub const DATA_MOUNT_BYTES: u64 = 1 << 30;

/// Whether a run may inject a full disk, so its nodes need size-limited data mounts:
/// the `disk` nemesis is on, or an explicit schedule has a disk fault.
pub fn wants_data_mounts(opts: &TestOptions) -> bool {
    opts.nemesis.contains(&NemesisKind::Disk)
        || (opts.schedule.iter().flatten()).any(|p| matches!(p.fault, Fault::Disk { .. }))
}

/// The docker backend's disk-fault state.
#[derive(Debug)]
pub(super) struct DiskState {
    /// Each node's data mount, by node index.
    mounts: BTreeMap<usize, DataMount>,
    /// Why a data mount could not be made (the full fault is then unsupported).
    mount_error: Option<String>,
    /// Nodes whose mount is full now.
    full: BTreeSet<usize>,
    /// Why a node stopped itself (its process exited), by node index.
    stopped: BTreeMap<usize, String>,
    /// Draws where to damage a file.
    rng: ChaCha8Rng,
}

impl DiskState {
    /// No mounts yet; damage drawn from `seed`.
    pub(super) fn new(seed: u64) -> Self {
        DiskState {
            mounts: BTreeMap::new(),
            mount_error: None,
            full: BTreeSet::new(),
            stopped: BTreeMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Why node `i` stopped itself, if it did.
    pub(super) fn stopped(&self, i: usize) -> Option<String> {
        self.stopped.get(&i).cloned()
    }
}

/// The damage a file-damaging fault does to a file of `len` bytes, drawn from `rng`:
/// a bit flip or a garbage sector in `blocks.log`, only bit flips in `sign.log` (a
/// garbage sector there could hit the last frame's header and pass for a torn
/// tail, which no CRC detects: DESIGN.md "Storage faults", limits), a cut of up to
/// 4 KiB off the tail of `blocks.log`.
fn draw(rng: &mut ChaCha8Rng, fault: DiskFault, len: u64) -> Damage {
    let offset = rng.gen_range(0..len);
    match fault {
        DiskFault::TruncateBlocks => Damage::CutTail {
            bytes: rng.gen_range(1..=len.min(4096)),
        },
        DiskFault::CorruptBlocks if rng.gen_bool(0.5) => Damage::Sector {
            offset,
            seed: rng.gen(),
        },
        _ => Damage::BitFlip {
            offset,
            bit: rng.gen_range(0..8),
        },
    }
}

impl DockerBackend {
    /// Mounts node `i`'s data mount when the run asked for them (before its
    /// container exists). A failure is remembered, not fatal: the run goes on and
    /// the full fault is recorded `degraded` with the reason.
    pub(super) fn mount_data(&mut self, i: usize) {
        let Some(size) = self.opts.data_mount_bytes else {
            return;
        };
        let path = self.nodes[i].home.join("data");
        match DataMount::mount(&path, size, &self.run_id) {
            Ok(m) => {
                self.disk.mounts.insert(i, m);
            }
            Err(e) => {
                warn!(node = %self.nodes[i].name, error = %e, "no size-limited data mount: the full-disk fault cannot be injected");
                self.disk.mount_error = Some(e.to_string());
            }
        }
    }

    /// If node `i` is thought running but its process has exited on its own (a
    /// fail-stop after a failed write), it is Killed from now on, with its reason.
    pub(super) fn notice_exit(&mut self, i: usize) {
        let Ok(c) = self.container(i) else {
            return;
        };
        if self.nodes[i].state != State::Running {
            return;
        }
        match self.rt.block_on(c.exited()) {
            Ok(Some(why)) => {
                info!(node = %self.nodes[i].name, %why, "the node stopped itself");
                self.nodes[i].state = State::Killed;
                self.installed.remove(&i);
                self.disk.stopped.insert(i, why);
                self.adversary_crashed(i);
            }
            Ok(None) => {}
            Err(e) => warn!(node = %self.nodes[i].name, error = %e, "cannot inspect the node"),
        }
    }

    fn node_index(&self, node: &str) -> Result<usize, DiskUnsupported> {
        self.index(node).map_err(|e| DiskUnsupported(e.to_string()))
    }
}

/// Disk faults on real files and a real tmpfs; EIO on sync is not injectable here.
impl DiskControl for DockerBackend {
    fn damage_disk(&mut self, node: &str, fault: DiskFault) -> Result<Value, DiskUnsupported> {
        let i = self.node_index(node)?;
        if self.nodes[i].state != State::Killed {
            return Err(DiskUnsupported(format!(
                "{node} is not stopped: only a stopped node's files are damaged"
            )));
        }
        let file = match fault {
            DiskFault::CorruptSign => LogFile::Sign,
            DiskFault::CorruptBlocks | DiskFault::TruncateBlocks => LogFile::Blocks,
            other => return Err(DiskUnsupported(format!("{other:?} does not damage files"))),
        };
        let path = self.nodes[i].home.join("data").join(file.name());
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len == 0 {
            return Ok(json!({"file": file.name(), "empty": true}));
        }
        let how = draw(&mut self.disk.rng, fault, len);
        let done = damage_file(&path, how).map_err(|e| DiskUnsupported(e.to_string()))?;
        info!(node, ?done, "damaged a stopped node's store file");
        serde_json::to_value(done).map_err(|e| DiskUnsupported(e.to_string()))
    }

    fn fail_disk(&mut self, node: &str, fault: Option<DiskFault>) -> Result<(), DiskUnsupported> {
        let i = self.node_index(node)?;
        match fault {
            Some(DiskFault::Full) => {
                let Some(m) = self.disk.mounts.get(&i) else {
                    return Err(DiskUnsupported(match &self.disk.mount_error {
                        Some(e) => format!("no size-limited data mount: {e}"),
                        None => "no size-limited data mount for this node".into(),
                    }));
                };
                let used = m.fill().map_err(|e| DiskUnsupported(e.to_string()))?;
                info!(node, used, "data mount full: the node's writes get ENOSPC");
                self.disk.full.insert(i);
                Ok(())
            }
            Some(DiskFault::SyncFails) => Err(DiskUnsupported(
                "a failing fsync (EIO) cannot be injected into a container (no faulty block device under its files): the simulator covers it".into(),
            )),
            Some(other) => Err(DiskUnsupported(format!("{other:?} damages files"))),
            None => {
                if self.disk.full.remove(&i) {
                    if let Some(m) = self.disk.mounts.get(&i) {
                        m.drain().map_err(|e| DiskUnsupported(e.to_string()))?;
                    }
                }
                // A node that stopped on the fault is Killed now: the stop restarts it.
                self.notice_exit(i);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_inside_the_file_and_sign_log_gets_only_bit_flips() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut kinds = BTreeSet::new();
        for _ in 0..500 {
            let len = rng.gen_range(1..20_000);
            for fault in [
                DiskFault::CorruptBlocks,
                DiskFault::CorruptSign,
                DiskFault::TruncateBlocks,
            ] {
                let d = draw(&mut rng, fault, len);
                match (fault, d) {
                    (_, Damage::BitFlip { offset, bit }) => {
                        assert!(offset < len && bit < 8);
                        kinds.insert((fault, "flip"));
                    }
                    (DiskFault::CorruptBlocks, Damage::Sector { offset, .. }) => {
                        assert!(offset < len);
                        kinds.insert((fault, "sector"));
                    }
                    (DiskFault::TruncateBlocks, Damage::CutTail { bytes }) => {
                        assert!(bytes >= 1 && bytes <= len.min(4096));
                    }
                    other => panic!("unexpected draw {other:?}"),
                }
            }
        }
        assert!(kinds.contains(&(DiskFault::CorruptBlocks, "sector")));
        assert!(kinds.contains(&(DiskFault::CorruptBlocks, "flip")));
        assert!(!kinds.contains(&(DiskFault::TruncateBlocks, "flip")));
    }

    #[test]
    fn only_runs_with_disk_faults_get_data_mounts() {
        let mut o = TestOptions::default();
        assert!(!wants_data_mounts(&o));
        o.nemesis = vec![NemesisKind::Kill, NemesisKind::Disk];
        assert!(wants_data_mounts(&o));
        o.nemesis = vec![NemesisKind::Kill];
        o.schedule = Some(vec![rollcall_workloads::PlannedFault {
            start_ns: 1,
            stop_ns: Some(2),
            fault: Fault::Disk {
                node: "n1".into(),
                kind: DiskFault::Full,
            },
        }]);
        assert!(wants_data_mounts(&o));
    }
}
