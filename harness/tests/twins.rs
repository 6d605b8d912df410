//! Twins mode (issue 12): enumeration, a clean search on the healthy node, a search
//! beyond the fault model that must find a fork and shrink it, and replay of a
//! stored scenario.

use rollcall::options::TestOptions;
use rollcall::twins::search::{twins, TwinsOptions};
use rollcall::twins::{sample, scenario_options, Proposer, Space};
use rollcall_checkers::Validity;
use std::collections::BTreeSet;
use std::process::Command;

fn nodes() -> Vec<String> {
    (1..=4).map(|i| format!("n{i}")).collect()
}

fn options(scenarios: u64, twins: usize, seed: u64) -> TwinsOptions {
    TwinsOptions {
        scenarios,
        phases: 3,
        twins,
        max_groups: 2,
        seed,
        base: TestOptions {
            time_limit_s: 3,
            name: "twins".into(),
            ..TestOptions::default()
        },
        only: None,
        shrink_budget: 40,
        threads: 2,
    }
}

/// (1) The enumeration is fixed, bounded and one-to-one; the sample is seeded,
/// without repeats, and a longer search starts with a shorter one's scenarios.
#[test]
fn enumeration_is_deterministic_bounded_and_distinct() {
    let s = Space::new(&nodes(), 1, 2, 3).unwrap();
    assert_eq!(s, Space::new(&nodes(), 1, 2, 3).unwrap());
    let total = s.count().unwrap();
    assert_eq!(total, 27u64.pow(3));
    assert!(s.scenario(total).is_none());
    // Every scenario of a 2-phase space is distinct, and so are their schedules.
    let small = Space::new(&nodes(), 1, 2, 2).unwrap();
    let n = small.count().unwrap();
    let all: BTreeSet<_> = (0..n).map(|i| small.scenario(i).unwrap()).collect();
    assert_eq!(all.len() as u64, n);
    let base = TestOptions {
        time_limit_s: 3,
        ..TestOptions::default()
    };
    let schedules: BTreeSet<String> = all
        .iter()
        .map(|sc| serde_json::to_string(&scenario_options(&base, &small, sc).schedule).unwrap())
        .collect();
    assert_eq!(schedules.len() as u64, n);
    // Every phase of every scenario splits the twin pair or is full connectivity.
    for sc in &all {
        for p in &sc.phases {
            let side = |x: &str| p.groups.iter().position(|g| g.iter().any(|y| y == x));
            assert!(p.groups.len() == 1 || side("n2") != side("n2-dup"), "{sc}");
        }
    }
    // The seeded sample.
    let a = sample(7, total, 50);
    assert_eq!(a, sample(7, total, 50));
    assert_ne!(a, sample(8, total, 50));
    assert_eq!(a.iter().collect::<BTreeSet<_>>().len(), 50);
    assert!(a.iter().all(|i| *i < total));
    assert_eq!(sample(7, total, 20), a[..20].to_vec());
    // A space no larger than the bound is run whole, in order.
    assert_eq!(sample(7, 9, 100), (0..9).collect::<Vec<_>>());
    // Two twinned validators: the proposers of height 1, rounds 0 and 1.
    let two = Space::new(&nodes(), 2, 2, 1).unwrap();
    assert_eq!(two.pairs[1], ("n3".to_string(), "n3-dup".to_string()));
    assert_eq!(two.per_phase(), two.partitions.len() as u64 * 9);
    assert!(Space::new(&nodes(), 1, 2, 0).is_err());
    assert!(Space::new(&nodes(), 1, 4, 2).is_err());
}

/// (2) One twin is within the fault model (f = 1 of 4): every scenario is valid
/// under every checker a normal run has.
#[test]
fn a_small_search_on_the_healthy_node_is_all_valid() {
    let dir = tempfile::tempdir().unwrap();
    let r = twins(&options(8, 1, 1), dir.path(), &[]).unwrap();
    assert_eq!(r.outcomes.len(), 8);
    for o in &r.outcomes {
        assert_eq!(
            o.validity,
            Validity::Valid,
            "scenario {} ({}): {:?}",
            o.position,
            o.scenario,
            o.findings
        );
    }
    assert!(r.failure.is_none());
    // The sample had partitions and proposer choices in it, not only quiet phases.
    let phases: Vec<_> = r
        .outcomes
        .iter()
        .flat_map(|o| o.scenario.phases.clone())
        .collect();
    assert!(phases.iter().any(|p| p.groups.len() > 1));
    assert!(phases.iter().any(|p| p.proposers[0] != Proposer::Both));
}

/// (3) and (4): two twinned validators of 4 is beyond the fault model; Twins must
/// find a scenario where the honest nodes commit conflicting blocks, shrink it to
/// fewer phases, and the stored run must replay byte-identically and invalid.
#[test]
fn beyond_the_fault_model_twins_finds_a_fork_shrinks_it_and_replay_agrees() {
    let dir = tempfile::tempdir().unwrap();
    // Seed 2: scenario 3 of 10 is the first to fork (honest n1 and n4 end on
    // different chains from height 9); it shrinks from 3 phases to 2 in 17 re-runs.
    let r = twins(
        &options(10, 2, 2),
        dir.path(),
        &["rollcall".into(), "twins".into()],
    )
    .unwrap();
    assert!(r.invalid() >= 1);
    let f = r
        .failure
        .expect("two twins of four fork the chain in some scenario");
    assert!(f.failing.contains("chain-agreement"), "{:?}", f.failing);
    let fork = f
        .stored
        .results
        .results
        .iter()
        .find(|c| c.checker == "chain-agreement")
        .unwrap();
    assert_eq!(fork.validity, Validity::Invalid);
    assert!(fork.anomalies.iter().any(|a| a.kind == "fork"), "{fork:?}");
    assert!(
        f.minimal.phases.len() < f.outcome.scenario.phases.len(),
        "{}",
        f.minimal
    );
    assert_eq!(f.stored.valid, Validity::Invalid);
    let out = Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .args(["replay", "--quiet"])
        .arg(&f.stored.dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "replay is invalid too: {text}");
    assert!(text.contains("byte-identical"), "{text}");
}

/// (4) `rollcall twins --scenario i` runs scenario i alone, stores it, and
/// `rollcall replay` reproduces it byte for byte.
#[test]
fn one_scenario_alone_is_stored_and_replays_byte_identically() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_rollcall");
    let out = Command::new(bin)
        .args([
            "twins",
            "--scenarios",
            "8",
            "--scenario",
            "5",
            "--seed",
            "1",
            "--threads",
            "1",
        ])
        .arg("--store")
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("1 scenarios run"), "{text}");
    let run = dir.path().join("latest").canonicalize().unwrap();
    let test_json = std::fs::read_to_string(run.join("test.json")).unwrap();
    assert!(test_json.contains("duplicate-key"), "{test_json}");
    let out = Command::new(bin)
        .args(["replay", "--quiet"])
        .arg(&run)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("byte-identical"), "{text}");
}

/// The proposer choice is real: while every node's proposals are muted nothing
/// commits, and commits resume at the mute's stop (the simulator drops exactly the
/// proposals, not the votes or the rest).
#[test]
fn muted_proposals_stop_commits_until_the_mute_ends() {
    use rollcall_workloads::{Fault, PlannedFault};
    let all: Vec<String> = nodes();
    let opts = TestOptions {
        time_limit_s: 4,
        spare: 0,
        schedule: Some(vec![PlannedFault {
            start_ns: 0,
            stop_ns: Some(2_000_000_000),
            fault: Fault::MuteProposals { nodes: all },
        }]),
        ..TestOptions::default()
    };
    let s = rollcall::commands::simulate(&opts, true).unwrap();
    let oks: Vec<u64> = s
        .out
        .history
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "ok" && v["process"].is_u64())
        .filter_map(|v| v["time"].as_u64())
        .collect();
    assert!(!oks.is_empty());
    assert!(
        oks.iter().all(|t| *t > 2_000_000_000),
        "committed while muted: {:?}",
        &oks[..3.min(oks.len())]
    );
    assert_eq!(s.results.valid, Validity::Valid, "{:?}", s.results.results);
}
