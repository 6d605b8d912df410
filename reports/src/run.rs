//! Reading a run directory as the harness writes it (harness.md §8:
//! `test.json`, `schedule.json`, `history.jsonl`, `results.json`,
//! `nodes/<n>/`). Every file is optional and may be corrupt: what cannot be
//! read becomes a note shown in the report, so a partial run still renders.
//! The files are read through `rollcall_history::RunDir`, the same code the
//! harness writes them with (issue 11).

use rollcall_checkers::result::{CheckResult, Validity};
use rollcall_checkers::History;
use rollcall_history::{RunDir, RunDirError};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The combined verdict and the per-checker results of `results.json`.
#[derive(Debug, Clone, Default)]
pub struct Results {
    /// The overall verdict as recorded (`valid`), if readable.
    pub valid: Option<Validity>,
    /// Every checker result that could be read.
    pub checkers: Vec<CheckResult>,
}

/// One committed block, reduced to what the roster-over-time view needs.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockInfo {
    /// Block height.
    pub height: u64,
    /// Roster epoch the block was committed in.
    pub epoch: u64,
    /// Addresses (or ids) of the nodes added by AddNode transactions.
    pub adds: Vec<String>,
    /// The node id evicted when this block committed.
    pub evict: Option<String>,
}

/// A node's directory `nodes/<n>/`: its final chain, status and files.
#[derive(Debug, Clone, Default)]
pub struct NodeData {
    /// Directory name, e.g. `n1`.
    pub name: String,
    /// The final chain dump, reduced (empty if unreadable).
    pub chain: Vec<BlockInfo>,
    /// `status.json`, if readable.
    pub status: Option<Value>,
    /// Whether the node was alive at the end (`alive` file), if recorded.
    pub alive: Option<bool>,
    /// File names in the node directory (for links to logs and dumps).
    pub files: Vec<String>,
}

/// Everything the report shows, read from one run directory.
#[derive(Debug, Default)]
pub struct RunData {
    /// The run directory.
    pub dir: PathBuf,
    /// `test.json`: the options, seed, backend, commit and command line.
    pub test: Option<Value>,
    /// `schedule.json`: the faults as planned and as applied.
    pub schedule: Option<Value>,
    /// `results.json`.
    pub results: Option<Results>,
    /// `history.jsonl`, parsed and paired.
    pub history: Option<History>,
    /// The history's non-blank lines, in event order (`history.events()[i]` is
    /// line `history_lines[i]`), shown verbatim next to each anomaly.
    pub history_lines: Vec<String>,
    /// `genesis.json`, if present (the initial roster).
    pub genesis: Option<Value>,
    /// `nodes/<n>/`, sorted by name.
    pub nodes: Vec<NodeData>,
    /// What could not be read, and why.
    pub notes: Vec<String>,
}

/// The value, or `None` with the reason as a note (`results.json: missing`).
fn noted<T>(r: Result<T, RunDirError>, notes: &mut Vec<String>) -> Option<T> {
    r.map_err(|e| notes.push(e.to_string())).ok()
}

/// Parse `results.json` tolerantly: a checker entry that does not match the
/// schema is skipped with a note rather than losing the whole verdict table.
pub fn parse_results(v: &Value, notes: &mut Vec<String>) -> Results {
    let valid = v
        .get("valid")
        .and_then(|x| serde_json::from_value::<Validity>(x.clone()).ok());
    let mut checkers = Vec::new();
    if let Some(arr) = v.get("checkers").and_then(Value::as_array) {
        for (i, c) in arr.iter().enumerate() {
            match serde_json::from_value::<CheckResult>(c.clone()) {
                Ok(r) => checkers.push(r),
                Err(e) => notes.push(format!("results.json: checker #{i} unreadable: {e}")),
            }
        }
    } else {
        notes.push("results.json: no \"checkers\" array".into());
    }
    Results { valid, checkers }
}

/// Reduce a chain dump (a JSON array of `{"block": {...}, "cert": {...}}`) to
/// heights, epochs, adds and evictions. Blocks without a height are skipped.
pub fn parse_chain(v: &Value) -> Vec<BlockInfo> {
    let Some(arr) = v.as_array() else {
        return Vec::new();
    };
    arr.iter()
        .filter_map(|b| {
            let blk = b.get("block").unwrap_or(b);
            let height = blk.get("height")?.as_u64()?;
            let epoch = blk.get("epoch").and_then(Value::as_u64).unwrap_or(0);
            let adds = blk
                .get("txs")
                .and_then(Value::as_array)
                .map(|txs| {
                    txs.iter()
                        .filter_map(|t| {
                            let a = t.get("body")?.get("AddNode")?;
                            let req = a.get("req").unwrap_or(a);
                            let name = req
                                .get("addr")
                                .or_else(|| req.get("id"))
                                .and_then(Value::as_str)
                                .unwrap_or("?");
                            Some(name.to_string())
                        })
                        .collect()
                })
                .unwrap_or_default();
            let evict = match blk.get("evict") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
            };
            Some(BlockInfo {
                height,
                epoch,
                adds,
                evict,
            })
        })
        .collect()
}

fn read_node(run: &RunDir, name: &str, notes: &mut Vec<String>) -> NodeData {
    let files = run.node_file_names(name);
    let has = |f: &str| files.iter().any(|x| x == f);
    NodeData {
        name: name.to_string(),
        chain: if has("chain.json") {
            noted(run.read_chain::<Value>(name), notes)
                .map(|v| parse_chain(&v))
                .unwrap_or_default()
        } else {
            Vec::new()
        },
        status: has("status.json")
            .then(|| noted(run.read_status(name), notes))
            .flatten(),
        alive: run.read_alive(name).ok(),
        files,
    }
}

impl RunData {
    /// Read whatever the run directory holds. Never fails: problems are notes.
    pub fn load(dir: &Path) -> RunData {
        let run = RunDir::new(dir);
        let mut notes = Vec::new();
        let test = noted(run.read_test(), &mut notes);
        let schedule = noted(run.read_schedule(), &mut notes);
        let results = noted(run.read_results(), &mut notes).map(|v| parse_results(&v, &mut notes));
        let genesis = match run.read_genesis::<Value>() {
            Err(RunDirError::Missing { .. }) => None,
            r => noted(r, &mut notes),
        };
        let mut history = None;
        let mut history_lines = Vec::new();
        if let Some(text) = noted(run.read_history_text(), &mut notes) {
            match History::parse_jsonl(&text) {
                Ok(h) => {
                    history_lines = text
                        .split('\n')
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_string)
                        .collect();
                    history = Some(h);
                }
                Err(e) => notes.push(format!("{}: {e}", rollcall_history::run_dir::HISTORY)),
            }
        }
        let nodes = run
            .node_names()
            .iter()
            .map(|name| read_node(&run, name, &mut notes))
            .collect();
        RunData {
            dir: dir.to_path_buf(),
            test,
            schedule,
            results,
            history,
            history_lines,
            genesis,
            nodes,
            notes,
        }
    }

    /// The run's name from `test.json` (`options.name` or `name`), if any.
    pub fn name(&self) -> Option<String> {
        let t = self.test.as_ref()?;
        t.pointer("/options/name")
            .or_else(|| t.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// The overall verdict: as recorded, else composed from the checkers.
    pub fn verdict(&self) -> Option<Validity> {
        let r = self.results.as_ref()?;
        r.valid
            .or_else(|| Some(rollcall_checkers::compose(&r.checkers)))
    }
}

/// A field of `test.json` looked up at the top level, then under `options`
/// (the harness nests the options; other writers may not).
pub fn test_field<'a>(test: &'a Value, key: &str) -> Option<&'a Value> {
    test.get(key)
        .or_else(|| test.get("options").and_then(|o| o.get(key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chain_reduces_adds_and_evictions() {
        let v = json!([
            {"block": {"height": 1, "epoch": 0, "txs": [], "evict": null}},
            {"block": {"height": 2, "epoch": 0, "txs": [{"id": "a", "body": {"AddNode": {"req": {"id": "ab", "addr": "n5:26600"}}}}], "evict": null}},
            {"block": {"height": 3, "epoch": 1, "txs": [], "evict": "deadbeef"}},
            {"nonsense": true}
        ]);
        let c = parse_chain(&v);
        assert_eq!(c.len(), 3);
        assert_eq!(c[1].adds, vec!["n5:26600".to_string()]);
        assert_eq!(c[2].evict.as_deref(), Some("deadbeef"));
    }

    #[test]
    fn missing_and_corrupt_files_are_notes() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("results.json"), "{not json").unwrap();
        std::fs::write(d.path().join("history.jsonl"), "{\"index\":0").unwrap();
        let r = RunData::load(d.path());
        assert!(r.results.is_none() && r.history.is_none());
        assert!(r
            .notes
            .iter()
            .any(|n| n.starts_with("results.json: not valid JSON")));
        assert!(r.notes.iter().any(|n| n.starts_with("history.jsonl:")));
        assert!(r.notes.iter().any(|n| n == "test.json: missing"));
    }
}
