//! Liveness after an asynchronous period (issue 16). The `async` nemesis delays
//! every link past the base round timeouts; its stop is the global stabilisation
//! time (GST) of the partial-synchrony model (Dwork–Lynch–Stockmeyer 1988), after
//! which Tendermint decides (Buchman–Kwon–Milosevic 2018, Lemma 6) — but only
//! because its timeouts grew with the round during the asynchronous period
//! (protocol.md §2 "timeouts that grow with the round"): a node at round `R` at GST
//! finishes that round at its grown timeouts, and the rounds after it are longer
//! still. So the bound after GST is
//!
//! `B_gst = d + Σ_{r=R}^{R+f} T(r) + commit + B_fault / 2`
//!
//! where `d` is the fault's delay plus jitter (messages sent before GST still
//! arrive that late), `T(r) = propose(r) + 2·vote(r)` a round whose timeouts all
//! expire (`timeout(r) = base + r·delta`), `R` the highest round a node was in at
//! GST (recorded by the harness; else the most rounds the period's length allows),
//! rounds `R..R+f` the current round and up to f rounds of absent proposers, and
//! `B_fault / 2` one more height at round-0 timeouts (an operation may miss the
//! first block after GST), `B_fault` being the bound of [`super::fault_windows`].
//! A client operation must complete `ok` within `B_gst` of GST wherever the faults
//! in force keep a quorum up and timely from GST to `GST + B_gst`, whatever else
//! starts or stops meanwhile (`no-commit-after-gst`, invalid); the windows after GST
//! are judged by the fault-window bound only from `GST + B_gst` on, and the final
//! heal's bound is at least what is left of `B_gst`.

use serde_json::{json, Value};

use super::fault_windows::{client_end, members_at, windows, FaultTiming};
use super::{is_client, Analysis, ClusterRun, Finding, LIVENESS};
use crate::history::OpType;
use crate::result::Validity;
use rollcall_history::Phase;

/// One end of an asynchronous period: when, how far the rounds had grown, and the
/// bound within which the cluster must commit after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Gst {
    /// History index of the step that ended it (the `async` stop or the final heal).
    pub index: u64,
    /// When, ns.
    pub time: u64,
    /// The highest round a node was in at GST.
    pub round: u64,
    /// Whether `round` was recorded (else estimated from the period's length).
    pub recorded: bool,
    /// The period's delay plus jitter, ms.
    pub delay_ms: u64,
    /// `B_gst`, ns (module doc).
    pub bound_ns: u64,
}

/// `B_gst` of the module doc, ns, for a node at `round` and links that delayed
/// messages by up to `delay_ms`; saturates rather than overflows on a history's
/// outlandish values.
pub fn gst_bound_ns(t: &FaultTiming, round: u64, delay_ms: u64) -> u64 {
    let round = round.min(MAX_ROUND);
    let rounds: u64 = (round..=round + t.f as u64).map(|r| t.round_ms(r)).sum();
    (delay_ms.saturating_add(rounds))
        .saturating_add(t.timeouts.commit_ms)
        .saturating_mul(1_000_000)
        .saturating_add(t.bound_ns() / 2)
}

/// Rounds beyond this are read as this (a history may hold anything).
const MAX_ROUND: u64 = 10_000;

/// The highest round a node can reach within `ns` of a height's start: the first
/// node to leave round `r` does so by its precommit timeout, `vote(r)` (L65), so
/// round `R` needs `Σ_{r<R} vote(r) ≤ ns` (round skips follow nodes already there).
pub fn rounds_within(t: &FaultTiming, ns: u64) -> u64 {
    let (mut r, mut spent) = (0u64, 0u64);
    loop {
        spent += (t.timeouts.vote_ms + r * t.timeouts.vote_delta_ms).max(1) * 1_000_000;
        if spent > ns || r >= MAX_ROUND {
            return r;
        }
        r += 1;
    }
}

/// The delay plus jitter an `async` step records, ms.
fn delay_of(v: &Value) -> u64 {
    let ms = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    ms("delay_ms") + ms("jitter_ms")
}

/// Every GST of the history: each `async` stop, and the final heal for a period
/// still open then.
pub(crate) fn points(an: &Analysis, t: &FaultTiming) -> Vec<Gst> {
    let mut open: Vec<(u64, u64)> = Vec::new();
    let mut out = Vec::new();
    let mut end = |e: &super::Nemesis, (since, delay_ms): (u64, u64)| {
        let recorded = e.value.get("max_round").and_then(Value::as_u64);
        let round = recorded.unwrap_or_else(|| rounds_within(t, e.time.saturating_sub(since)));
        out.push(Gst {
            index: e.index,
            time: e.time,
            round,
            recorded: recorded.is_some(),
            delay_ms,
            bound_ns: gst_bound_ns(t, round, delay_ms),
        });
    };
    for e in &an.nemesis {
        match e.phase {
            Phase::Start if e.fault == "async" => open.push((e.time, delay_of(&e.value))),
            Phase::Stop if e.fault == "async" && !open.is_empty() => end(e, open.remove(0)),
            Phase::HealAll => open.drain(..).for_each(|p| end(e, p)),
            _ => {}
        }
    }
    out
}

/// The final heal's bound: the run's, or what is left then of a `B_gst` that ran
/// into it, whichever is longer.
pub(crate) fn heal_bound(run: &ClusterRun, gsts: &[Gst], heal_time: u64) -> u64 {
    (gsts.iter())
        .filter(|g| g.time <= heal_time)
        .map(|g| g.time.saturating_add(g.bound_ns).saturating_sub(heal_time))
        .fold(run.liveness_bound_ns, u64::max)
}

/// Judges every GST after which a quorum stays up and timely (module doc); adds a
/// finding per GST after which nothing committed in time, returns the details.
pub(crate) fn check(
    run: &ClusterRun,
    an: &Analysis,
    gsts: &[Gst],
    height_at: impl Fn(u64) -> Option<u64>,
    findings: &mut Vec<Finding>,
) -> Value {
    let Some(timing) = run.fault_timing else {
        return json!([]);
    };
    let ws = windows(an, client_end(run), &timing, gsts);
    let heal = an.nemesis.iter().find(|e| e.phase == Phase::HealAll);
    let mut out = Vec::new();
    for g in gsts {
        let mut d = json!({
            "time": g.time, "max_round": g.round, "round_recorded": g.recorded,
            "delay_ms": g.delay_ms, "bound_ns": g.bound_ns,
        });
        let first_ok = first_ok_after(run, g.time);
        d["recovered_ns"] = json!(first_ok.map(|(c, _)| c - g.time));
        d["judged"] = json!(judge(run, an, g, &ws, heal, &height_at, first_ok, findings));
        out.push(d);
    }
    Value::Array(out)
}

/// Why a GST is not judged, or `"yes"` (and a finding if nothing committed in time).
#[allow(clippy::too_many_arguments)]
fn judge(
    run: &ClusterRun,
    an: &Analysis,
    g: &Gst,
    ws: &[(u64, u64, super::fault_windows::InForce)],
    heal: Option<&super::Nemesis>,
    height_at: &impl Fn(u64) -> Option<u64>,
    first_ok: Option<(u64, u64)>,
    findings: &mut Vec<Finding>,
) -> &'static str {
    let end = g.time.saturating_add(g.bound_ns);
    if heal.is_some_and(|h| h.time <= end) {
        return "the final heal comes first: its bound covers it";
    }
    // Every window from GST to the bound must keep a quorum up and timely.
    let span: Vec<_> = (ws.iter())
        .filter(|(t0, t1, _)| *t1 > g.time && *t0 < end)
        .collect();
    if span.last().is_none_or(|(_, t1, _)| *t1 < end) {
        return "the history ends before the bound";
    }
    for (t0, _, state) in span {
        let Some(members) = members_at(an, height_at(*t0).unwrap_or(0) + 1) else {
            return "roster unknown";
        };
        if state.quorum_up(&members).is_none() {
            return "no quorum up and timely until the bound";
        }
    }
    if first_ok.is_some_and(|(c, _)| c <= end) {
        return "yes";
    }
    let waiting: Vec<u64> = (run.history.ops().iter())
        .filter(|o| is_client(o.process) && o.invoke_time <= end)
        .filter(|o| o.complete_time.is_none_or(|c| c > g.time))
        .map(|o| o.invoke_index)
        .collect();
    if waiting.is_empty() {
        return "no client operation to commit";
    }
    let why = format!(
        "an asynchronous period ended at {} ns with rounds up to {}; no client operation completed ok within the bound {} ns after it",
        g.time, g.round, g.bound_ns
    );
    let mut ops = vec![g.index];
    ops.extend(waiting.iter().take(20));
    let detail = json!({"gst": g.time, "max_round": g.round, "bound_ns": g.bound_ns});
    let f = Finding::new(
        LIVENESS,
        "no-commit-after-gst",
        Validity::Invalid,
        None,
        "",
        why,
        detail,
    );
    findings.push(f.with_ops(ops));
    "yes"
}

/// The first client op to complete `ok` after `t`: (completion time, invoke index).
fn first_ok_after(run: &ClusterRun, t: u64) -> Option<(u64, u64)> {
    (run.history.ops().iter())
        .filter(|o| is_client(o.process) && o.kind == OpType::Ok)
        .filter_map(|o| {
            o.complete_time
                .filter(|&c| c > t)
                .map(|c| (c, o.invoke_index))
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::fault_windows::tests::{found, run};
    use crate::cluster::fault_windows::RoundTimeouts;

    /// The simulator's timeouts, f = 1: a round-0 height bound of 2.2 s.
    fn sim() -> FaultTiming {
        let timeouts = RoundTimeouts {
            propose_ms: 200,
            propose_delta_ms: 100,
            vote_ms: 100,
            vote_delta_ms: 50,
            commit_ms: 100,
        };
        FaultTiming { timeouts, f: 1 }
    }

    fn all_links() -> Vec<[&'static str; 2]> {
        let n = ["n1", "n2", "n3", "n4"];
        let mut v = Vec::new();
        for a in n {
            for b in n.iter().filter(|b| **b != a) {
                v.push([a, *b]);
            }
        }
        v
    }

    /// An `async` period from 10 s to 20 s (440 ms + 40 ms of jitter) whose end
    /// records `max_round`.
    fn period(f: &'static str, max_round: u64) -> Vec<(f64, &'static str, Value)> {
        let v = |phase: &str| {
            let mut v =
                json!({"phase": phase, "links": all_links(), "delay_ms": 440, "jitter_ms": 40});
            if phase == "stop" {
                v["max_round"] = json!(max_round);
            }
            v
        };
        vec![(10.0, f, v("start")), (20.0, f, v("stop"))]
    }

    fn with_sim(mut r: ClusterRun) -> ClusterRun {
        r.fault_timing = Some(sim());
        r
    }

    #[test]
    fn the_bound_after_gst_grows_with_the_rounds_reached() {
        let t = sim();
        // Rounds 3 and 4 at grown timeouts (1.0 s and 1.2 s), the delay, the commit
        // pause and one height at round-0 timeouts (1.1 s).
        assert_eq!(gst_bound_ns(&t, 3, 480), 3_880_000_000);
        assert!(gst_bound_ns(&t, 10, 480) > gst_bound_ns(&t, 3, 480));
        // A history's outlandish values saturate, never overflow.
        assert_eq!(gst_bound_ns(&t, u64::MAX, u64::MAX), u64::MAX);
        // Round r needs Σ_{r'<r} vote(r') of time: 100, 150, 200, ... ms.
        assert_eq!(rounds_within(&t, 0), 0);
        assert_eq!(rounds_within(&t, 250_000_000), 2);
        assert_eq!(rounds_within(&t, 10_000_000_000), 18);
    }

    #[test]
    fn commits_that_do_not_resume_within_the_bound_after_gst_are_caught() {
        // An op stuck through the period completes 1 s after GST: in time.
        let ok = [(12.0, Some(21.0), "n2"), (25.0, Some(25.1), "n3")];
        let r = with_sim(run(&ok, &period("async", 3)));
        assert_eq!(found(&r, "no-commit-after-gst"), 0);
        // Nothing completes until 5.1 s after GST, beyond B_gst = 3.88 s.
        let late = [(12.0, None, "n2"), (25.0, Some(25.1), "n3")];
        let r = with_sim(run(&late, &period("async", 3)));
        assert_eq!(found(&r, "no-commit-after-gst"), 1);
        // At round 12 the bound is longer: the same history is in time.
        let r = with_sim(run(&late, &period("async", 12)));
        assert_eq!(found(&r, "no-commit-after-gst"), 0);
    }

    #[test]
    fn windows_after_gst_are_judged_only_once_the_grown_rounds_ran_out() {
        // Sent 2.5 s after GST, done 2.5 s later: beyond the round-0 bound (2.2 s),
        // a stall if the slow links had been timely, not while B_gst (3.88 s) runs.
        let ops = [(12.0, Some(20.5), "n2"), (22.5, Some(25.0), "n3")];
        let r = with_sim(run(&ops, &period("async", 3)));
        assert_eq!(found(&r, "stalled-during-faults"), 0);
        assert_eq!(found(&r, "no-commit-after-gst"), 0);
        // Sent after B_gst and as slow: a stall.
        let ops = [(12.0, Some(20.5), "n2"), (26.0, Some(28.5), "n3")];
        let r = with_sim(run(&ops, &period("async", 3)));
        assert_eq!(found(&r, "stalled-during-faults"), 1);
    }

    #[test]
    fn links_slower_than_the_timeouts_are_not_judged_timely_ones_are() {
        let stuck = [(14.0, None, "n3")];
        // During the asynchronous period no quorum is timely: not judged.
        let r = with_sim(run(&stuck, &period("async", 3)));
        assert_eq!(found(&r, "stalled-during-faults"), 0);
        // A `slow` fault below half the shortest timeout (50 ms) keeps links timely.
        let slow = |delay: u64| {
            let v = |phase: &str| json!({"phase": phase, "links": all_links(), "delay_ms": delay, "jitter_ms": 10});
            vec![(10.0, "slow", v("start")), (20.0, "slow", v("stop"))]
        };
        let r = with_sim(run(&stuck, &slow(30)));
        assert_eq!(found(&r, "stalled-during-faults"), 1);
        // One above it does not.
        let r = with_sim(run(&stuck, &slow(45)));
        assert_eq!(found(&r, "stalled-during-faults"), 0);
    }
}
