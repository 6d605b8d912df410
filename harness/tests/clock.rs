//! The `clock` nemesis on the simulator (issue 16): a node whose clock runs at
//! another rate fires its timers at that rate, a jump moves its pending timers,
//! and the cluster stays valid through both.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rollcall::backend::Backend;
use rollcall::commands::simulate;
use rollcall::nemesis::Nemesis;
use rollcall::options::TestOptions;
use rollcall::run::cluster;
use rollcall::sim::{SimBackend, SimOptions};
use rollcall_checkers::Validity;
use rollcall_workloads::{Fault, NemesisKind, PlannedFault};

const S: u64 = 1_000_000_000;

fn clock(node: &str, rate_pct: u32, jump_ms: i64) -> Fault {
    Fault::Clock {
        node: node.into(),
        rate_pct,
        jump_ms,
    }
}

fn fired(sim: &SimBackend) -> (u64, u64) {
    (sim.heartbeats_fired("n1"), sim.heartbeats_fired("n2"))
}

/// Heartbeat timers n1 and n2 fire over `secs` simulated seconds from now.
fn fired_over(sim: &mut SimBackend, secs: u64) -> (u64, u64) {
    let (a, b) = fired(sim);
    let t = sim.now_ns() + secs * S;
    sim.advance_to(t).unwrap();
    let (c, d) = fired(sim);
    (c - a, d - b)
}

#[test]
fn a_clock_fault_changes_when_that_nodes_timers_fire() {
    let o = TestOptions::default();
    let mut sim = SimBackend::new(
        cluster(&o),
        SimOptions::default(),
        ChaCha8Rng::seed_from_u64(3),
    )
    .unwrap();
    let mut nemesis = Nemesis::default();
    sim.advance_to(2 * S).unwrap();
    let (n1, n2) = fired_over(&mut sim, 4);
    assert!(n1 >= 12 && n2 >= 12, "heartbeats every 250 ms: {n1} {n2}");
    let ratio = |(a, b): (u64, u64)| a as f64 / b.max(1) as f64;
    assert!(
        (0.7..1.4).contains(&ratio((n1, n2))),
        "true clocks: {n1} vs {n2}"
    );

    let fast = clock("n1", 200, 0);
    let v = nemesis.start(&mut sim, &fast).unwrap();
    assert_eq!(v["rate_pct"], 200);
    let r = ratio(fired_over(&mut sim, 4));
    assert!(r > 1.6, "n1 at 2x fired {r}x n2's heartbeats");
    nemesis.stop(&mut sim, &fast).unwrap();

    let slow = clock("n1", 50, 0);
    nemesis.start(&mut sim, &slow).unwrap();
    let r = ratio(fired_over(&mut sim, 4));
    assert!(r < 0.7, "n1 at 0.5x fired {r}x n2's heartbeats");
    nemesis.stop(&mut sim, &slow).unwrap();
    let r = ratio(fired_over(&mut sim, 4));
    assert!(
        (0.7..1.4).contains(&r),
        "n1 back at 1x fired {r}x n2's heartbeats"
    );

    // A jump back delays every pending timer of n1 by the jump; one forward makes
    // those it passes due at once.
    let now = sim.now_ns();
    assert!(sim.next_timer_ns("n1").unwrap() < now + S);
    let back = clock("n1", 100, -5000);
    let v = nemesis.start(&mut sim, &back).unwrap();
    assert!(v["timers_moved"].as_u64().unwrap() > 0, "{v}");
    assert!(sim.next_timer_ns("n1").unwrap() >= now + 5 * S);
    assert!(sim.next_timer_ns("n2").unwrap() < now + S, "n2 untouched");
    nemesis.stop(&mut sim, &back).unwrap();
    let ahead = clock("n1", 100, 10_000);
    nemesis.start(&mut sim, &ahead).unwrap();
    assert_eq!(sim.next_timer_ns("n1"), Some(now));
    // The final heal puts every clock back at the true rate.
    nemesis.start(&mut sim, &clock("n2", 50, 0)).unwrap();
    let v = nemesis.heal_all(&mut sim).unwrap();
    assert_eq!(v["clocks_reset"], serde_json::json!(["n2"]));
}

fn assert_valid(o: &TestOptions) -> serde_json::Value {
    let sim = simulate(o, true).expect("simulated run");
    let bad: Vec<String> = (sim.results.results.iter())
        .filter(|c| c.validity != Validity::Valid)
        .map(|c| format!("{}: {}", c.checker, c.summary))
        .collect();
    assert!(bad.is_empty(), "seed {}: {bad:?}", o.seed);
    sim.out.schedule
}

#[test]
fn slow_fast_and_jumping_clocks_leave_the_cluster_valid() {
    let at = |start: u64, stop: u64, fault: Fault| PlannedFault {
        start_ns: start * S,
        stop_ns: Some(stop * S),
        fault,
    };
    let o = TestOptions {
        seed: 4,
        time_limit_s: 16,
        schedule: Some(vec![
            at(2, 10, clock("n1", 50, -1500)),
            at(4, 12, clock("n2", 200, 2000)),
        ]),
        ..TestOptions::default()
    };
    let schedule = assert_valid(&o);
    let applied = schedule["applied"].as_array().unwrap();
    let clocks: Vec<_> = applied.iter().filter(|e| e["f"] == "clock").collect();
    assert_eq!(clocks.len(), 4, "{applied:?}");
    assert_eq!(clocks[0]["value"]["rate_pct"], 50);
    assert_eq!(clocks[0]["value"]["jump_ms"], -1500);
    assert_eq!(clocks[0]["value"]["phase"], "start");
    // Drawn schedules with clocks among other faults, two at once.
    for seed in [1, 2] {
        let o = TestOptions {
            seed,
            time_limit_s: 20,
            nemesis_interval_s: 2,
            nemesis: vec![
                NemesisKind::Clock,
                NemesisKind::Partition,
                NemesisKind::Kill,
            ],
            max_concurrent_faults: 2,
            ..TestOptions::default()
        };
        let s = assert_valid(&o);
        assert!(s["planned"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["fault"]["f"] == "clock"));
    }
}
