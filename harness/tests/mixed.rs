//! `--workload mixed` end to end (harness.md §4 `mixed`): append, register and bank
//! interleaved in one sim run under partitions and kills, each judged by its own
//! checker on its own operations only.

use rollcall::checks::{history_checkers, infer_workload, Expectation};
use rollcall::commands::{run_one, RunReport};
use rollcall::options::TestOptions;
use rollcall_checkers::{History, Validity};
use rollcall_workloads::{NemesisKind, WorkloadKind};
use serde_json::{json, Value};
use std::sync::OnceLock;

const PARTS: [&str; 3] = ["elle-append", "linearizable", "bank"];

/// One mixed run shared by the tests (a sim run is the slow part).
fn run() -> &'static RunReport {
    static RUN: OnceLock<(tempfile::TempDir, RunReport)> = OnceLock::new();
    &RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let o = TestOptions {
            workload: WorkloadKind::Mixed,
            nemesis: vec![NemesisKind::Partition, NemesisKind::Kill],
            nemesis_interval_s: 2,
            time_limit_s: 10,
            seed: 21,
            ..TestOptions::default()
        };
        let r = run_one(&o, dir.path(), &[], true).unwrap();
        (dir, r)
    })
    .1
}

/// The named checkers' verdicts on `history` re-checked as a mixed run.
fn recheck(history: &str) -> Vec<(String, Validity, Value)> {
    let h = History::parse_jsonl(history).unwrap();
    assert_eq!(infer_workload(&h), Some(WorkloadKind::Mixed));
    history_checkers(
        WorkloadKind::Mixed,
        Expectation::model("strict-serializable"),
        None,
    )
    .unwrap()
    .iter()
    .map(|c| {
        let r = c.check(&h);
        (r.checker, r.validity, r.details)
    })
    .collect()
}

#[test]
fn mixed_run_is_valid_and_every_part_checked_its_own_ops() {
    let r = run();
    assert_eq!(r.valid, Validity::Valid, "{}", r.dir.display());
    for name in PARTS.iter().chain(&["set"]) {
        let c = r.results.results.iter().find(|c| c.checker == *name);
        let c = c.unwrap_or_else(|| panic!("no {name} result"));
        assert_eq!(c.validity, Validity::Valid, "{name}: {}", c.summary);
    }
    let details = |name: &str| {
        let c = r.results.results.iter().find(|c| c.checker == name);
        c.map(|c| c.details.clone()).unwrap_or_default()
    };
    // Each checker's own count of what it judged, and what the split gave it.
    for (name, own) in [
        ("elle-append", "txns"),
        ("linearizable", "ops"),
        ("bank", "reads"),
    ] {
        let d = details(name);
        assert!(d[own].as_u64() > Some(20), "{name}: {d}");
        assert!(d["mixed_ops"].as_u64() > Some(50), "{name}: {d}");
    }
    let total = History::parse_jsonl(&r.history).unwrap().ops().len() as u64;
    let split: u64 = PARTS
        .iter()
        .map(|n| details(n)["mixed_ops"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(split, total, "every op goes to exactly one part");
    let faults = r
        .history
        .lines()
        .filter(|l| l.contains("\"nemesis\""))
        .count();
    assert!(faults > 0, "the nemesis ran");
}

/// `history` with the first ok event matching `pick` changed by `plant`.
fn planted(history: &str, pick: impl Fn(&Value) -> bool, plant: impl Fn(&mut Value)) -> String {
    let mut done = false;
    let lines: Vec<String> = history
        .lines()
        .map(|l| {
            let mut e: Value = serde_json::from_str(l).unwrap();
            if !done && e["type"] == "ok" && pick(&e) {
                plant(&mut e["value"]);
                done = true;
            }
            e.to_string()
        })
        .collect();
    assert!(done, "nothing to plant in");
    lines.join("\n") + "\n"
}

fn only_invalid(history: &str, culprit: &str) {
    for (name, validity, details) in recheck(history) {
        let want = if name == culprit {
            Validity::Invalid
        } else {
            Validity::Valid
        };
        assert_eq!(validity, want, "{name} with {culprit} planted: {details}");
    }
}

#[test]
fn healthy_history_rechecks_valid() {
    let checked = recheck(&run().history);
    let names: Vec<&str> = checked.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, PARTS);
    assert!(
        checked.iter().all(|c| c.1 == Validity::Valid),
        "{checked:?}"
    );
}

#[test]
fn corrupted_register_read_fails_only_linearizable() {
    let h = planted(
        &run().history,
        |e| e["f"] == "read" && e["value"].is_array(),
        |v| v[1] = json!(77),
    );
    only_invalid(&h, "linearizable");
}

#[test]
fn corrupted_bank_read_fails_only_bank() {
    let h = planted(
        &run().history,
        |e| e["f"] == "read" && e["value"].is_object(),
        |v| v["acct-0"] = json!(v["acct-0"].as_i64().unwrap_or(0) + 1),
    );
    only_invalid(&h, "bank");
}

#[test]
fn reordered_append_read_fails_only_elle_append() {
    let long_read = |m: &Value| m[0] == "r" && m[2].as_array().is_some_and(|l| l.len() >= 2);
    let h = planted(
        &run().history,
        |e| {
            e["f"] == "txn"
                && e["value"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(long_read))
        },
        |v| {
            let arr = v.as_array_mut().unwrap();
            let m = arr.iter_mut().find(|m| long_read(m)).unwrap();
            let l = m[2].as_array_mut().unwrap();
            l.swap(0, 1);
        },
    );
    only_invalid(&h, "elle-append");
}
