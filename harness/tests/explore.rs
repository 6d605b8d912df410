//! `rollcall explore` finds a planted failure (the test-only lying disk of the
//! simulator), shrinks it, and `replay` of the stored run gives the same verdict
//! (harness.md §3).

use rollcall::explore::{explore, ExploreOptions};
use rollcall::options::TestOptions;
use rollcall_checkers::Validity;
use rollcall_workloads::NemesisKind;
use std::process::Command;

#[test]
fn explore_finds_and_shrinks_the_lying_disk_and_replay_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let eo = ExploreOptions {
        cases: 30,
        seed: 1,
        base: TestOptions {
            time_limit_s: 12,
            nemesis: vec![
                NemesisKind::CrashAll,
                NemesisKind::Kill,
                NemesisKind::Partition,
            ],
            nemesis_interval_s: 2,
            lying_disk: true,
            ..TestOptions::default()
        },
        shrink_budget: 60,
        threads: 2,
        shard: Default::default(),
    };
    let r = explore(&eo, dir.path(), &["rollcall".into(), "explore".into()]).unwrap();
    let f = r.failure.expect("the lying disk makes some case invalid");
    assert_eq!(f.stored.valid, Validity::Invalid);
    let before = f.original.schedule.as_ref().map_or(0, |s| s.len());
    let after = f.minimal.schedule.as_ref().map_or(0, |s| s.len());
    assert!(after <= 2, "shrunk to {after} faults (from {before})");
    assert!(after <= before);
    assert!(f.minimal.concurrency <= f.original.concurrency && f.minimal.nodes <= f.original.nodes);
    // The shrunk run is reproducible from what it recorded.
    let out = Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .args(["replay", "--quiet"])
        .arg(&f.stored.dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "replay is invalid too: {text}");
    assert!(text.contains("byte-identical"), "{text}");
    // Its report exists and names the replay command.
    let html = std::fs::read_to_string(f.stored.dir.join("report.html")).unwrap();
    assert!(html.contains("rollcall replay"));
}

#[test]
fn explore_on_an_honest_disk_finds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let eo = ExploreOptions {
        cases: 4,
        seed: 3,
        base: TestOptions {
            time_limit_s: 8,
            nemesis: NemesisKind::ALL.to_vec(),
            nemesis_interval_s: 2,
            ..TestOptions::default()
        },
        shrink_budget: 10,
        threads: 2,
        shard: Default::default(),
    };
    let r = explore(&eo, dir.path(), &[]).unwrap();
    assert_eq!(r.cases_run, 4);
    assert!(r.failure.is_none());
}
