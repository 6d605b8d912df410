//! Storage durability (issue 13): the real store runs on the simulator's disk with
//! a real disk's crash semantics and crash points inside a step. With its sync
//! removed (the test-only `no_sync` switch), `explore` over every default nemesis
//! finds acknowledged writes lost and shrinks them to at most two faults; with the
//! sync in place the same cases find nothing.

use rollcall::explore::{explore, ExploreOptions};
use rollcall::options::TestOptions;
use rollcall_checkers::Validity;
use rollcall_workloads::NemesisKind;

fn cases(no_sync: bool) -> ExploreOptions {
    ExploreOptions {
        cases: 6,
        seed: 5,
        base: TestOptions {
            time_limit_s: 12,
            nemesis: NemesisKind::ALL.to_vec(),
            nemesis_interval_s: 2,
            no_sync,
            ..TestOptions::default()
        },
        shrink_budget: 40,
        threads: 2,
        shard: Default::default(),
    }
}

#[test]
fn explore_finds_lost_acknowledged_writes_without_the_sync() {
    let dir = tempfile::tempdir().unwrap();
    let r = explore(&cases(true), dir.path(), &[]).unwrap();
    let f = r
        .failure
        .expect("without its sync the store loses acknowledged writes");
    assert_eq!(f.stored.valid, Validity::Invalid);
    let after = f.minimal.schedule.as_ref().map_or(0, |s| s.len());
    assert!(after <= 2, "shrunk to {after} faults");
    let results = std::fs::read_to_string(f.stored.dir.join("results.json")).unwrap();
    assert!(results.contains("lost"), "a lost write is named: {results}");
}

#[test]
fn explore_over_the_same_cases_with_the_sync_finds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let r = explore(&cases(false), dir.path(), &[]).unwrap();
    assert_eq!(r.cases_run, 6);
    assert!(r.failure.is_none(), "{:?}", r.failure.map(|f| f.stored.dir));
}

/// Runs `rollcall test` with `extra` flags and returns the `equivocation` result.
fn equivocation_of(extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "test",
        "--time-limit",
        "12",
        "--nemesis",
        "crash-all,kill",
        "--nemesis-interval",
        "2",
        "--seed",
        "1",
        "--quiet",
        "--store",
    ];
    args.push(dir.path().to_str().unwrap());
    args.extend_from_slice(extra);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .args(&args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let path = dir.path().join("latest/results.json");
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}: {text}"));
    let results: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let checkers = results["checkers"].as_array().unwrap().clone();
    checkers
        .into_iter()
        .find(|c| c["checker"] == "equivocation")
        .unwrap_or_else(|| panic!("no equivocation result: {text}"))
}

/// A disk that forgets acknowledged syncs makes restarted nodes forget what they
/// signed: the `equivocation` checker sees the double-signs; the honest disk under
/// the same kills has none.
#[test]
fn equivocation_catches_a_node_that_forgot_its_signing_state() {
    let honest = equivocation_of(&[]);
    assert_eq!(honest["validity"], "valid", "{honest}");
    let lying = equivocation_of(&["--sim-lying-disk"]);
    assert_eq!(lying["validity"], "invalid", "{lying}");
    assert_eq!(lying["anomalies"][0]["kind"], "double-sign");
}

/// The `disk` nemesis on the real store and node: corrupt blocks, a corrupt
/// signing state, cut tails, a full disk and failing syncs, one node at a time.
/// Every checker stays valid (no acknowledged write lost, no double-sign, the
/// chains agree), and the damage was detected: some node's `/status` reports it.
#[test]
fn the_disk_nemesis_is_detected_and_survived() {
    let mut detected = 0;
    for seed in ["1", "2", "6"] {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rollcall"))
            .args(["test", "--time-limit", "20", "--nemesis", "disk,kill"])
            .args([
                "--nemesis-interval",
                "2",
                "--seed",
                seed,
                "--quiet",
                "--store",
            ])
            .arg(dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "seed {seed}: {text}");
        assert!(text.contains("equivocation"), "{text}");
        let nodes = dir.path().join("latest/nodes");
        for e in std::fs::read_dir(&nodes).unwrap() {
            let p = e.unwrap().path().join("status.json");
            if let Ok(raw) = std::fs::read(&p) {
                let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
                detected += v["storage"]["corrupt"].as_u64().unwrap_or(0);
            }
        }
    }
    assert!(detected > 0, "no node reported the corruption it was given");
}
