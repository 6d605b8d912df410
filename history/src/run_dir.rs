//! The run directory (harness.md §8): `test.json`, `genesis.json`,
//! `schedule.json`, `history.jsonl`, `results.json` and
//! `nodes/<n>/{chain.json,status.json,alive}`, each with its writer and its
//! reader in one place (issue 11), so the harness's store and the report read
//! and write the same bytes. Chain and genesis types belong to the node: they are
//! generic here, so this crate does not depend on it.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

use crate::history::{History, HistoryError};
use crate::result::Results;

/// `test.json`: options, seed, backend, commit, command line.
pub const TEST: &str = "test.json";
/// `genesis.json`: the initial roster.
pub const GENESIS: &str = "genesis.json";
/// `schedule.json`: the faults as planned and as applied.
pub const SCHEDULE: &str = "schedule.json";
/// `history.jsonl` (harness.md §6).
pub const HISTORY: &str = "history.jsonl";
/// `results.json` (harness.md §7).
pub const RESULTS: &str = "results.json";
/// `client-attacks.json`: the adversarial client's requests and answers (issue 12).
pub const ATTACKS: &str = "client-attacks.json";

/// Why a run file could not be written or read; `file` is relative to the run
/// directory (`nodes/n1/chain.json`), the way the report lists its notes.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    /// The file is not there.
    #[error("{file}: missing")]
    Missing {
        /// Relative path.
        file: String,
    },
    /// The OS refused.
    #[error("{file}: {source}")]
    Io {
        /// Relative path.
        file: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not the JSON it should be.
    #[error("{file}: not valid JSON: {msg}")]
    Json {
        /// Relative path.
        file: String,
        /// The parser's message.
        msg: String,
    },
    /// `history.jsonl` is not a valid history (with the line).
    #[error("{file}: {source}")]
    History {
        /// Relative path.
        file: String,
        /// Why, with the line.
        source: HistoryError,
    },
}

/// One node's final state as the harness dumps it at the end of a run
/// (`nodes/<n>/`, harness.md §8): the one shape of a node dump, written by the
/// harness and read back by `rollcall check`. The chain type `C` and status type `S`
/// are the node's (`Vec<CommittedBlock>`, `Status`) where the harness holds them;
/// the checkers read the status as plain JSON on purpose (a node's malformed
/// `/status` is a finding for them, not an unreadable run).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeDump<C, S> {
    /// Directory name under `nodes/`, e.g. `n1`.
    pub name: String,
    /// The final chain (`chain.json`, compact JSON).
    pub chain: C,
    /// The final `/status` (`status.json`, pretty), if the node answered.
    pub status: Option<S>,
    /// Whether the node was alive at the end (`alive`: `true\n` or `false\n`).
    pub alive: bool,
}

/// A run directory: where every run file is, and how it is written and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

/// Pretty JSON with a final newline: the form of every JSON file but the chain.
fn pretty(file: &str, v: &impl Serialize) -> Result<Vec<u8>, RunDirError> {
    let mut b = serde_json::to_vec_pretty(v).map_err(|e| RunDirError::Json {
        file: file.into(),
        msg: e.to_string(),
    })?;
    b.push(b'\n');
    Ok(b)
}

impl RunDir {
    /// The run directory at `root` (not created).
    pub fn new(root: impl Into<PathBuf>) -> RunDir {
        RunDir { root: root.into() }
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Writes `bytes` to the run file `file` (relative), creating its folder.
    pub fn write_bytes(&self, file: &str, bytes: &[u8]) -> Result<(), RunDirError> {
        let p = self.root.join(file);
        let io = |source| RunDirError::Io {
            file: file.into(),
            source,
        };
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&p, bytes).map_err(io)
    }

    /// Reads the run file `file` (relative); absent is [`RunDirError::Missing`].
    pub fn read_bytes(&self, file: &str) -> Result<Vec<u8>, RunDirError> {
        std::fs::read(self.root.join(file)).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => RunDirError::Missing { file: file.into() },
            _ => RunDirError::Io {
                file: file.into(),
                source,
            },
        })
    }

    /// Writes `v` as pretty JSON and a newline.
    pub fn write_pretty(&self, file: &str, v: &impl Serialize) -> Result<(), RunDirError> {
        self.write_bytes(file, &pretty(file, v)?)
    }

    /// Reads a JSON run file into `T`.
    pub fn read_json<T: DeserializeOwned>(&self, file: &str) -> Result<T, RunDirError> {
        serde_json::from_slice(&self.read_bytes(file)?).map_err(|e| RunDirError::Json {
            file: file.into(),
            msg: e.to_string(),
        })
    }

    /// Writes `test.json`.
    pub fn write_test(&self, test: &Value) -> Result<(), RunDirError> {
        self.write_pretty(TEST, test)
    }

    /// Reads `test.json`.
    pub fn read_test(&self) -> Result<Value, RunDirError> {
        self.read_json(TEST)
    }

    /// Writes `genesis.json`.
    pub fn write_genesis(&self, genesis: &impl Serialize) -> Result<(), RunDirError> {
        self.write_pretty(GENESIS, genesis)
    }

    /// Reads `genesis.json` as the node's genesis type (or a JSON value).
    pub fn read_genesis<G: DeserializeOwned>(&self) -> Result<G, RunDirError> {
        self.read_json(GENESIS)
    }

    /// Writes `schedule.json`.
    pub fn write_schedule(&self, schedule: &Value) -> Result<(), RunDirError> {
        self.write_pretty(SCHEDULE, schedule)
    }

    /// Reads `schedule.json`.
    pub fn read_schedule(&self) -> Result<Value, RunDirError> {
        self.read_json(SCHEDULE)
    }

    /// Writes `history.jsonl`, as recorded.
    pub fn write_history(&self, jsonl: &str) -> Result<(), RunDirError> {
        self.write_bytes(HISTORY, jsonl.as_bytes())
    }

    /// Reads `history.jsonl` as text (invalid UTF-8 replaced).
    pub fn read_history_text(&self) -> Result<String, RunDirError> {
        Ok(String::from_utf8_lossy(&self.read_bytes(HISTORY)?).into_owned())
    }

    /// Reads and validates `history.jsonl`.
    pub fn read_history(&self) -> Result<History, RunDirError> {
        History::parse_jsonl(&self.read_history_text()?).map_err(|source| RunDirError::History {
            file: HISTORY.into(),
            source,
        })
    }

    /// Writes `client-attacks.json` (issue 12), the adversarial client's record.
    pub fn write_attacks(&self, attacks: &[crate::ClientAttack]) -> Result<(), RunDirError> {
        self.write_pretty(ATTACKS, &attacks)
    }

    /// Reads `client-attacks.json`; `None` for a run that had no adversarial client
    /// (the file is absent), an error for one whose file is unreadable.
    pub fn read_attacks(&self) -> Result<Option<Vec<crate::ClientAttack>>, RunDirError> {
        if !self.root.join(ATTACKS).exists() {
            return Ok(None);
        }
        self.read_json(ATTACKS).map(Some)
    }

    /// Writes `results.json`.
    pub fn write_results(&self, results: &Results) -> Result<(), RunDirError> {
        self.write_pretty(RESULTS, &results.to_json())
    }

    /// Reads `results.json` as JSON (the report reads it tolerantly, entry by entry).
    pub fn read_results(&self) -> Result<Value, RunDirError> {
        self.read_json(RESULTS)
    }

    fn node_file(name: &str, file: &str) -> String {
        format!("nodes/{name}/{file}")
    }

    /// Writes `nodes/<name>/{chain.json,status.json,alive}`. The status is written
    /// through a JSON value, so its keys are sorted whatever type holds it.
    pub fn write_node<C: Serialize, S: Serialize>(
        &self,
        n: &NodeDump<C, S>,
    ) -> Result<(), RunDirError> {
        let chain_file = Self::node_file(&n.name, "chain.json");
        let chain = serde_json::to_vec(&n.chain).map_err(|e| RunDirError::Json {
            file: chain_file.clone(),
            msg: e.to_string(),
        })?;
        self.write_bytes(&chain_file, &chain)?;
        if let Some(s) = &n.status {
            let file = Self::node_file(&n.name, "status.json");
            let v = serde_json::to_value(s).map_err(|e| RunDirError::Json {
                file: file.clone(),
                msg: e.to_string(),
            })?;
            self.write_pretty(&file, &v)?;
        }
        let alive: &[u8] = if n.alive { b"true\n" } else { b"false\n" };
        self.write_bytes(&Self::node_file(&n.name, "alive"), alive)
    }

    /// Reads `nodes/<name>/` back: `chain.json` (required), `status.json` and
    /// `alive` (optional; a missing `alive` means the node was alive).
    pub fn read_node<C: DeserializeOwned, S: DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<NodeDump<C, S>, RunDirError> {
        let chain = self.read_chain(name)?;
        let status_file = Self::node_file(name, "status.json");
        let status = if self.root.join(&status_file).exists() {
            Some(self.read_json(&status_file)?)
        } else {
            None
        };
        let alive = if self.root.join(Self::node_file(name, "alive")).exists() {
            self.read_alive(name)?
        } else {
            true
        };
        Ok(NodeDump {
            name: name.to_string(),
            chain,
            status,
            alive,
        })
    }

    /// The sorted names of the folders (`dirs`) or files in `dir`; none if unreadable.
    fn entries(dir: &Path, dirs: bool) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                e.file_type()
                    .is_ok_and(|t| if dirs { t.is_dir() } else { t.is_file() })
            })
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The node directories under `nodes/`, sorted by name.
    pub fn node_names(&self) -> Vec<String> {
        Self::entries(&self.root.join("nodes"), true)
    }

    /// The files in `nodes/<name>/`, sorted (for links to logs and dumps).
    pub fn node_file_names(&self, name: &str) -> Vec<String> {
        Self::entries(&self.root.join("nodes").join(name), false)
    }

    /// Reads `nodes/<name>/chain.json` as the node's chain type (or a JSON value).
    pub fn read_chain<C: DeserializeOwned>(&self, name: &str) -> Result<C, RunDirError> {
        self.read_json(&Self::node_file(name, "chain.json"))
    }

    /// Reads `nodes/<name>/status.json`.
    pub fn read_status(&self, name: &str) -> Result<Value, RunDirError> {
        self.read_json(&Self::node_file(name, "status.json"))
    }

    /// Reads `nodes/<name>/alive`.
    pub fn read_alive(&self, name: &str) -> Result<bool, RunDirError> {
        let file = Self::node_file(name, "alive");
        let text = String::from_utf8_lossy(&self.read_bytes(&file)?).into_owned();
        text.trim().parse().map_err(|_| RunDirError::Json {
            file,
            msg: format!("expected true or false, found {:?}", text.trim()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{CheckResult, Validity};
    use serde_json::json;

    /// The bytes the harness has always written (harness.md §8): pretty JSON and a
    /// newline, a compact chain, `true\n`.
    #[test]
    fn every_file_round_trips_with_its_historic_bytes() {
        let d = tempfile::tempdir().unwrap();
        let run = RunDir::new(d.path());
        run.write_test(&json!({"seed": 1, "options": {"name": "x"}}))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join(TEST)).unwrap(),
            "{\n  \"options\": {\n    \"name\": \"x\"\n  },\n  \"seed\": 1\n}\n"
        );
        assert_eq!(run.read_test().unwrap()["seed"], 1);
        run.write_schedule(&json!({"planned": []})).unwrap();
        assert_eq!(run.read_schedule().unwrap(), json!({"planned": []}));
        run.write_genesis(&json!({"roster": ["a"]})).unwrap();
        assert_eq!(run.read_genesis::<Value>().unwrap()["roster"][0], "a");
        let line = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"read","value":null}"#;
        run.write_history(&format!("{line}\n")).unwrap();
        assert_eq!(run.read_history().unwrap().len(), 1);
        let results = Results::new(vec![CheckResult {
            checker: "set".into(),
            validity: Validity::Invalid,
            summary: "s".into(),
            anomalies: vec![],
            details: Value::Null,
            elapsed_ms: 1.5,
        }]);
        run.write_results(&results).unwrap();
        let text = std::fs::read_to_string(d.path().join(RESULTS)).unwrap();
        assert!(
            text.starts_with("{\n  \"checkers\": [\n")
                && text.ends_with("\"valid\": \"invalid\"\n}\n"),
            "{text}"
        );
        assert_eq!(run.read_results().unwrap()["valid"], "invalid");
        let status = json!({"height": 3});
        for (name, alive) in [("n2", false), ("n1", true)] {
            run.write_node(&NodeDump {
                name: name.to_string(),
                chain: json!([{"block": {"height": 1}}]),
                status: Some(status.clone()),
                alive,
            })
            .unwrap();
        }
        assert_eq!(run.node_names(), ["n1", "n2"]);
        assert_eq!(
            run.node_file_names("n1"),
            ["alive", "chain.json", "status.json"]
        );
        assert_eq!(
            std::fs::read_to_string(d.path().join("nodes/n1/chain.json")).unwrap(),
            r#"[{"block":{"height":1}}]"#
        );
        assert!(run.read_alive("n1").unwrap());
        assert!(!run.read_alive("n2").unwrap());
        assert_eq!(run.read_status("n1").unwrap(), status);
        assert_eq!(
            run.read_chain::<Value>("n2").unwrap()[0]["block"]["height"],
            1
        );
        let back: NodeDump<Value, Value> = run.read_node("n2").unwrap();
        assert_eq!((back.status, back.alive), (Some(status), false));
    }

    /// A typed status is written with sorted keys, as a JSON value always was, and a
    /// node directory without `status.json` or `alive` reads as no status, alive.
    #[test]
    fn a_typed_status_is_written_sorted_and_optional_files_default() {
        #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
        struct Status {
            role: String,
            height: u64,
        }
        let d = tempfile::tempdir().unwrap();
        let run = RunDir::new(d.path());
        let dump = NodeDump {
            name: "n1".into(),
            chain: vec![1u64, 2],
            status: Some(Status {
                role: "validator".into(),
                height: 2,
            }),
            alive: true,
        };
        run.write_node(&dump).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("nodes/n1/status.json")).unwrap(),
            "{\n  \"height\": 2,\n  \"role\": \"validator\"\n}\n"
        );
        assert_eq!(run.read_node::<Vec<u64>, Status>("n1").unwrap(), dump);
        std::fs::remove_file(d.path().join("nodes/n1/status.json")).unwrap();
        std::fs::remove_file(d.path().join("nodes/n1/alive")).unwrap();
        let bare = run.read_node::<Vec<u64>, Status>("n1").unwrap();
        assert_eq!((bare.status, bare.alive), (None, true));
    }

    #[test]
    fn errors_name_the_file_relative_to_the_run() {
        let d = tempfile::tempdir().unwrap();
        let run = RunDir::new(d.path());
        assert_eq!(
            run.read_test().unwrap_err().to_string(),
            "test.json: missing"
        );
        std::fs::write(d.path().join(RESULTS), "{nope").unwrap();
        assert!(run
            .read_results()
            .unwrap_err()
            .to_string()
            .starts_with("results.json: not valid JSON"));
        std::fs::write(d.path().join(HISTORY), "{\"index\":0").unwrap();
        assert_eq!(
            run.read_history().unwrap_err().to_string(),
            "history.jsonl: line 1: truncated last line (the history ends mid-record)"
        );
        std::fs::create_dir_all(d.path().join("nodes/n1")).unwrap();
        std::fs::write(d.path().join("nodes/n1/alive"), "maybe\n").unwrap();
        assert!(run
            .read_alive("n1")
            .unwrap_err()
            .to_string()
            .starts_with("nodes/n1/alive: not valid JSON: expected true or false"));
    }
}
