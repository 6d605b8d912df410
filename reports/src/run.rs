//! Reading a run directory as the harness writes it (harness.md §8:
//! `test.json`, `schedule.json`, `history.jsonl`, `results.json`,
//! `nodes/<n>/`). Every file is optional and may be corrupt: what cannot be
//! read becomes a note shown in the report, so a partial run still renders.

use rollcall_checkers::result::{CheckResult, Validity};
use rollcall_checkers::History;
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

fn read_json(dir: &Path, name: &str, notes: &mut Vec<String>) -> Option<Value> {
    let p = dir.join(name);
    match std::fs::read(&p) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                notes.push(format!("{name}: not valid JSON: {e}"));
                None
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            notes.push(format!("{name}: missing"));
            None
        }
        Err(e) => {
            notes.push(format!("{name}: {e}"));
            None
        }
    }
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

fn read_node(dir: &Path, name: &str, notes: &mut Vec<String>) -> NodeData {
    let mut n = NodeData {
        name: name.to_string(),
        ..Default::default()
    };
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_file()).unwrap_or(false) {
                n.files.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    n.files.sort();
    let mut sub = Vec::new();
    if n.files.iter().any(|f| f == "chain.json") {
        if let Some(v) = read_json(dir, "chain.json", &mut sub) {
            n.chain = parse_chain(&v);
        }
    }
    if n.files.iter().any(|f| f == "status.json") {
        n.status = read_json(dir, "status.json", &mut sub);
    }
    if let Ok(s) = std::fs::read_to_string(dir.join("alive")) {
        n.alive = s.trim().parse().ok();
    }
    notes.extend(sub.into_iter().map(|s| format!("nodes/{name}/{s}")));
    n
}

impl RunData {
    /// Read whatever the run directory holds. Never fails: problems are notes.
    pub fn load(dir: &Path) -> RunData {
        let mut notes = Vec::new();
        let test = read_json(dir, "test.json", &mut notes);
        let schedule = read_json(dir, "schedule.json", &mut notes);
        let results =
            read_json(dir, "results.json", &mut notes).map(|v| parse_results(&v, &mut notes));
        let genesis = if dir.join("genesis.json").exists() {
            read_json(dir, "genesis.json", &mut notes)
        } else {
            None
        };
        let mut history = None;
        let mut history_lines = Vec::new();
        let hp = dir.join("history.jsonl");
        match std::fs::read(&hp) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
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
                    Err(e) => notes.push(format!("history.jsonl: {e}")),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                notes.push("history.jsonl: missing".into())
            }
            Err(e) => notes.push(format!("history.jsonl: {e}")),
        }
        let mut nodes = Vec::new();
        if let Ok(rd) = std::fs::read_dir(dir.join("nodes")) {
            let mut names: Vec<String> = rd
                .flatten()
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for name in names {
                nodes.push(read_node(&dir.join("nodes").join(&name), &name, &mut notes));
            }
        }
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
