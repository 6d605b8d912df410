//! A run as the node-side checkers see it: the genesis, every node's dump and the
//! history, read from a stored run directory (harness.md §8).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::DEFAULT_LIVENESS_BOUND_NS;
use crate::history::{History, HistoryError};
use crate::oracle::wire::{CommittedBlock, Genesis};

/// One node's final state as dumped at the end of a run (harness.md §8
/// `nodes/<n>/`): the run data crate's one dump shape, with the chain typed and the
/// status kept as the JSON the node wrote — a malformed `/status` from a buggy node
/// is a finding here (`status-malformed`), not a run that cannot be read.
pub type NodeDump = rollcall_history::NodeDump<Vec<CommittedBlock>, Value>;

/// Everything the node-side checkers look at: the genesis, every node's dump, the
/// history (nemesis events and client operations) and the liveness bound.
#[derive(Debug, Clone)]
pub struct ClusterRun {
    /// The run's genesis (height 0).
    pub genesis: Genesis,
    /// Every node's dump.
    pub nodes: Vec<NodeDump>,
    /// The recorded history (harness.md §6).
    pub history: History,
    /// The bound of the liveness checks, in ns ([`DEFAULT_LIVENESS_BOUND_NS`]).
    pub liveness_bound_ns: u64,
    /// The run's timeouts and f, from which the bounds while faults are in force
    /// ([`super::fault_windows::fault_bound_ns`]) and after an asynchronous period
    /// ([`super::gst::gst_bound_ns`]) derive; `None` when the timeouts are not
    /// known, and those checks are skipped.
    pub fault_timing: Option<super::fault_windows::FaultTiming>,
}

/// Why a run directory could not be loaded; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A JSON file does not hold what it should.
    #[error("{path}: invalid {what}: {source}")]
    Json {
        /// The path.
        path: PathBuf,
        /// What the file should hold.
        what: &'static str,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The history could not be read.
    #[error("{path}: {source}")]
    History {
        /// The path.
        path: PathBuf,
        /// The history error (with its line).
        source: HistoryError,
    },
    /// A node's dump (`nodes/<n>/chain.json`, `status.json`, `alive`) could not be
    /// read; the error names the file.
    #[error("{0}")]
    Node(#[from] rollcall_history::RunDirError),
}

fn read(path: &Path) -> Result<Vec<u8>, ClusterError> {
    std::fs::read(path).map_err(|source| ClusterError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<T, ClusterError> {
    let bytes = read(path)?;
    serde_json::from_slice(&bytes).map_err(|source| ClusterError::Json {
        path: path.to_path_buf(),
        what,
        source,
    })
}

impl ClusterRun {
    /// Reads a run directory (harness.md §8): `genesis.json`, `history.jsonl`, and for
    /// every directory `nodes/<n>/` that holds a `chain.json` (a JSON array of
    /// `CommittedBlock`): the chain, `status.json` (optional) and `alive` (optional,
    /// "true"/"false", default true). Directories without `chain.json` (e.g. only a
    /// log) are skipped. Nodes are sorted by name. Never panics.
    pub fn load(run_dir: &Path) -> Result<ClusterRun, ClusterError> {
        let genesis: Genesis = read_json(&run_dir.join("genesis.json"), "genesis")?;
        let hpath = run_dir.join("history.jsonl");
        let history = History::from_file(&hpath).map_err(|source| ClusterError::History {
            path: hpath.clone(),
            source,
        })?;
        let ndir = run_dir.join("nodes");
        let dir = rollcall_history::RunDir::new(run_dir);
        let nodes = if ndir.exists() {
            node_dirs(&ndir)?
                .iter()
                .filter_map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                .map(|name| dir.read_node(&name))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        Ok(ClusterRun {
            genesis,
            nodes,
            history,
            liveness_bound_ns: DEFAULT_LIVENESS_BOUND_NS,
            fault_timing: None,
        })
    }
}

/// The directories under `nodes/` that hold a `chain.json`, sorted by name.
fn node_dirs(ndir: &Path) -> Result<Vec<PathBuf>, ClusterError> {
    let io = |source| ClusterError::Io {
        path: ndir.to_path_buf(),
        source,
    };
    let mut dirs = Vec::new();
    for e in std::fs::read_dir(ndir).map_err(io)? {
        let p = e.map_err(io)?.path();
        if p.is_dir() && p.join("chain.json").exists() {
            dirs.push(p);
        }
    }
    dirs.sort();
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use crate::cluster::fixture::*;
    use crate::cluster::*;
    use std::path::Path;

    use crate::result::Validity;

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("rollcall-cluster-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    fn write_run(dir: &Path, run: &ClusterRun) {
        let w = |p: std::path::PathBuf, bytes: Vec<u8>| {
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(p, bytes).expect("write");
        };
        w(
            dir.join("genesis.json"),
            serde_json::to_vec_pretty(&run.genesis).expect("json"),
        );
        w(
            dir.join("history.jsonl"),
            run.history.to_jsonl().into_bytes(),
        );
        for n in &run.nodes {
            let nd = dir.join("nodes").join(&n.name);
            w(
                nd.join("chain.json"),
                serde_json::to_vec(&n.chain).expect("json"),
            );
            if let Some(s) = &n.status {
                w(nd.join("status.json"), s.to_string().into_bytes());
            }
            w(nd.join("alive"), format!("{}\n", n.alive).into_bytes());
        }
    }

    #[test]
    fn load_round_trips_and_reports_bad_files() {
        let run = standard();
        let dir = temp_dir("load");
        write_run(&dir, &run);
        std::fs::create_dir_all(dir.join("nodes/spare")).expect("mkdir");
        let back = ClusterRun::load(&dir).expect("loads");
        assert_eq!(back.nodes, run.nodes);
        assert_eq!(back.genesis, run.genesis);
        assert_eq!(back.liveness_bound_ns, DEFAULT_LIVENESS_BOUND_NS);
        assert!(check_cluster(&back)
            .iter()
            .all(|r| r.validity == Validity::Valid));

        std::fs::write(dir.join("nodes/n2/alive"), "maybe").expect("write");
        let e = ClusterRun::load(&dir).expect_err("bad alive");
        assert!(matches!(e, ClusterError::Node(_)), "{e}");
        assert!(e.to_string().contains("nodes/n2/alive"), "{e}");
        std::fs::write(dir.join("nodes/n2/alive"), "true").expect("write");

        std::fs::write(dir.join("nodes/n3/chain.json"), "[{\"block\": 1}]").expect("write");
        let e = ClusterRun::load(&dir).expect_err("bad chain");
        assert!(matches!(e, ClusterError::Node(_)), "{e}");
        assert!(e.to_string().contains("nodes/n3/chain.json"), "{e}");

        std::fs::write(dir.join("history.jsonl"), "{\"index\":0,\"ti").expect("write");
        let e = ClusterRun::load(&dir).expect_err("bad history");
        assert!(e.to_string().contains("history.jsonl"), "{e}");

        std::fs::remove_file(dir.join("genesis.json")).expect("rm");
        let e = ClusterRun::load(&dir).expect_err("no genesis");
        assert!(e.to_string().contains("genesis.json"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
