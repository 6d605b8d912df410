//! The `async` nemesis on the simulator (issue 16): every link delayed past the base
//! round timeouts for a while, then timely again (GST). Tendermint decides during
//! and after it only because its timeouts grow with the round; a node whose
//! timeouts do not grow makes no progress while it lasts.

use rollcall::commands::simulate;
use rollcall::options::TestOptions;
use rollcall_checkers::Validity;
use rollcall_workloads::{Fault, NemesisKind, PlannedFault};
use serde_json::Value;

const S: u64 = 1_000_000_000;
/// The simulator's longest round-0 timeout: propose 200 ms + empty-block wait 20 ms.
const BASE_MS: u64 = 220;
/// The asynchronous period: 3 s to 11 s.
const FROM_S: u64 = 3;
const GST_S: u64 = 11;

fn all_links() -> Vec<(String, String)> {
    let n: Vec<String> = (1..=4).map(|i| format!("n{i}")).collect();
    let mut v = Vec::new();
    for a in &n {
        for b in n.iter().filter(|b| *b != a) {
            v.push((a.clone(), b.clone()));
        }
    }
    v
}

/// Twice the base timeouts on every link (plus up to 10 % jitter) from 3 s to 11 s.
fn twice_the_timeouts(seed: u64, flat_timeouts: bool) -> TestOptions {
    TestOptions {
        seed,
        time_limit_s: 24,
        flat_timeouts,
        schedule: Some(vec![PlannedFault {
            start_ns: FROM_S * S,
            stop_ns: Some(GST_S * S),
            fault: Fault::Async {
                links: all_links(),
                delay_ms: 2 * BASE_MS,
                jitter_ms: BASE_MS / 10,
            },
        }]),
        ..TestOptions::default()
    }
}

fn lines(history: &str) -> Vec<Value> {
    (history.lines())
        .map(|l| serde_json::from_str(l).expect("history line"))
        .collect()
}

/// Client ops that completed ok between `a` and `b` seconds.
fn oks_between(h: &[Value], a: f64, b: f64) -> usize {
    let ns = |s: f64| (s * S as f64) as u64;
    (h.iter())
        .filter(|e| e["type"] == "ok" && e["process"].is_u64())
        .filter(|e| (ns(a)..ns(b)).contains(&e["time"].as_u64().unwrap_or(0)))
        .count()
}

fn async_step<'a>(h: &'a [Value], phase: &str) -> &'a Value {
    (h.iter())
        .find(|e| e["f"] == "async" && e["value"]["phase"] == phase)
        .map(|e| &e["value"])
        .expect("async step")
}

/// The height every node had committed when the period started and at GST.
fn heights(h: &[Value]) -> (u64, u64) {
    let top = |phase: &str| {
        let rounds = async_step(h, phase)["rounds"].as_object().expect("rounds");
        (rounds.values())
            .filter_map(|r| r["height"].as_u64())
            .max()
            .expect("heights")
    };
    (top("start"), top("stop"))
}

/// The rounds (of their certificates) in which the heights after `from` up to
/// `to` were decided, on n1.
fn decided_in(sim: &rollcall::commands::Simulated, from: u64, to: u64) -> Vec<u32> {
    (sim.out.dumps[0].chain.iter())
        .filter(|b| b.cert.height > from && b.cert.height <= to)
        .map(|b| b.cert.round)
        .collect()
}

#[test]
fn rounds_grow_during_an_async_period_and_commits_resume_within_the_bound_after_gst() {
    for seed in [1, 2, 3] {
        let sim = simulate(&twice_the_timeouts(seed, false), true).expect("run");
        let bad: Vec<String> = (sim.results.results.iter())
            .filter(|c| c.validity != Validity::Valid)
            .map(|c| format!("{}: {}", c.checker, c.summary))
            .collect();
        assert!(bad.is_empty(), "seed {seed}: {bad:?}");
        let h = lines(&sim.out.history);
        // Heights are decided during the period, each only in a round whose
        // propose timeout (220 + 100·r ms) has grown past the delay (440 ms + jitter):
        // r >= 3. The first of them may have been under way in round 0 before it.
        let (from, to) = heights(&h);
        assert!(
            to > from,
            "seed {seed}: nothing decided from {from} during the period"
        );
        let rounds = decided_in(&sim, from, to);
        assert!(
            rounds.iter().max() >= Some(&3) && rounds.iter().skip(1).all(|r| *r >= 3),
            "seed {seed}: heights {from}..={to} decided in rounds {rounds:?}"
        );
        // The history records the rounds at GST (the height under way, from round 0
        // again), and the liveness checker judged the GST: commits resumed within B_gst.
        assert!(async_step(&h, "stop")["max_round"].is_u64());
        let live = (sim.results.results.iter())
            .find(|c| c.checker == "liveness")
            .expect("liveness");
        let after = &live.details["after_gst"][0];
        assert_eq!(after["judged"], "yes", "seed {seed}: {after}");
        let (took, bound) = (after["recovered_ns"].as_u64(), after["bound_ns"].as_u64());
        assert!(took.is_some() && took < bound, "seed {seed}: {after}");
        // Clients see commits again within a second of GST.
        assert!(
            oks_between(&h, GST_S as f64, GST_S as f64 + 1.0) > 0,
            "seed {seed}"
        );
    }
}

#[test]
fn timeouts_that_do_not_grow_make_no_progress_while_links_are_slower_than_them() {
    let sim = simulate(&twice_the_timeouts(1, true), true).expect("run");
    let h = lines(&sim.out.history);
    // Every node up and every message delivered, yet no height is decided: no round
    // is ever long enough. The rounds climb all the same.
    let (from, to) = heights(&h);
    assert_eq!(
        from, to,
        "flat timeouts decided {from}..{to} during the period"
    );
    assert!(async_step(&h, "stop")["max_round"].as_u64().unwrap_or(0) >= 3);
    assert_eq!(oks_between(&h, FROM_S as f64 + 0.5, GST_S as f64), 0);
    // The same schedule with growing timeouts decides (the test above), and after
    // GST the links are timely and even flat timeouts decide again.
    assert!(oks_between(&h, GST_S as f64, GST_S as f64 + 3.0) > 0);
}

#[test]
fn drawn_async_schedules_replay_byte_identically_and_stay_valid() {
    for (seed, k) in [(4, 1), (5, 2)] {
        let o = TestOptions {
            seed,
            time_limit_s: 30,
            nemesis_interval_s: 4,
            nemesis: vec![
                NemesisKind::Async,
                NemesisKind::Kill,
                NemesisKind::Partition,
            ],
            max_concurrent_faults: k,
            ..TestOptions::default()
        };
        let a = simulate(&o, true).expect("run");
        let b = simulate(&o, true).expect("run");
        assert_eq!(a.out.history, b.out.history, "seed {seed}");
        assert_eq!(a.out.schedule, b.out.schedule, "seed {seed}");
        let planned = a.out.schedule["planned"].as_array().expect("planned");
        let drawn: Vec<&Value> = (planned.iter())
            .filter(|p| p["fault"]["f"] == "async")
            .collect();
        assert!(!drawn.is_empty(), "seed {seed}: {planned:?}");
        for p in drawn {
            let d = p["fault"]["delay_ms"].as_u64().unwrap();
            assert!((BASE_MS..=3 * BASE_MS).contains(&d), "{p}");
        }
        let bad: Vec<String> = (a.results.results.iter())
            .filter(|c| c.validity != Validity::Valid)
            .map(|c| format!("{}: {}", c.checker, c.summary))
            .collect();
        assert!(bad.is_empty(), "seed {seed}: {bad:?}");
    }
}
