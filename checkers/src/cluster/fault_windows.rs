//! Liveness while faults are in force (issue 16): between two nemesis steps the
//! faults stay as they are; where what is in force still leaves `q(n)` roster
//! members up and all directly connected to each other, Tendermint must keep
//! deciding (Buchman–Kwon–Milosevic 2018, Lemma 6: after GST, a round with a correct
//! proposer decides). Every client operation sent to one of those members in such a
//! window must complete (`ok` or `fail`) within a bound derived from the timeouts;
//! one that does not is a stall (`stalled-during-faults`, invalid).
//!
//! The reading is conservative, so a finding is a real stall: a node a fault touches
//! in any way (killed, paused, failed, Byzantine, a twin, a lying disk until the final
//! heal) is down, a link a fault touches in any way (cut, lossy, slow) is cut, a
//! window holding an AddNode or a fault of unknown scope is not judged, and each
//! window is judged only after a settling time (one bound) from its start.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::{is_client, Analysis, ClusterRun, Finding, Nemesis, LIVENESS};
use crate::history::{Op, OpType};
use crate::oracle::wire::NodeId;
use crate::result::Validity;
use rollcall_history::Phase;

/// The consensus timeouts a bound is derived from (protocol.md §2; the node's
/// `Timeouts`, in milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundTimeouts {
    /// Propose timeout of round 0.
    pub propose_ms: u64,
    /// Added to it per round.
    pub propose_delta_ms: u64,
    /// Prevote / precommit timeout of round 0.
    pub vote_ms: u64,
    /// Added to it per round.
    pub vote_delta_ms: u64,
    /// Pause after a commit.
    pub commit_ms: u64,
}

/// Longest an operation may take while a quorum is up and connected, in ns: with
/// `f` members down, the first correct proposer comes at the latest in round `f`
/// (proposers rotate, protocol.md §1), and each round before it costs at most its
/// propose and two vote timeouts (L57–L67), which also covers delivery and the
/// round that decides; an operation may just miss one height and need the next, so
/// twice that.
pub fn fault_bound_ns(t: &RoundTimeouts, f: usize) -> u64 {
    let round =
        |r: u64| t.propose_ms + r * t.propose_delta_ms + 2 * (t.vote_ms + r * t.vote_delta_ms);
    let height: u64 = (0..=f as u64).map(round).sum::<u64>() + t.commit_ms;
    2 * height * 1_000_000
}

/// What the liveness checks know of a run's timing: its nodes' timeouts and the
/// most members a window may lose (f). Every bound of issue 16 derives from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultTiming {
    /// The nodes' round timeouts.
    pub timeouts: RoundTimeouts,
    /// f = n − q(n) of the largest roster the run can reach.
    pub f: usize,
}

impl FaultTiming {
    /// The bound on an operation while a quorum is up and connected ([`fault_bound_ns`]).
    pub fn bound_ns(&self) -> u64 {
        fault_bound_ns(&self.timeouts, self.f)
    }

    /// The most a slowed link may add (delay plus jitter, ms) and still count as
    /// timely: half the shortest round-0 timeout, so a proposal and the votes it
    /// needs arrive within every round-0 timeout even from a node that started the
    /// round one delay late. A slower link counts as cut while it lasts.
    pub fn timely_ms(&self) -> u64 {
        self.timeouts.propose_ms.min(self.timeouts.vote_ms) / 2
    }

    /// Round `r`'s full length when every timeout of it expires, ms: propose(r) +
    /// prevote(r) + precommit(r) (L57–L67, timeouts growing by their deltas).
    pub fn round_ms(&self, r: u64) -> u64 {
        let t = &self.timeouts;
        t.propose_ms + r * t.propose_delta_ms + 2 * (t.vote_ms + r * t.vote_delta_ms)
    }
}

/// One fault in force: its name, the nodes and directed links it touches, whether
/// it keeps its windows from being judged, whether its links stay timely (a delay
/// under [`FaultTiming::timely_ms`]) and when it started.
#[derive(Debug, Clone, PartialEq)]
struct Open {
    fault: String,
    nodes: BTreeSet<String>,
    links: BTreeSet<(String, String)>,
    blocks: bool,
    timely: bool,
}

/// What the faults in force do to nodes and links at one moment.
#[derive(Debug, Default, Clone)]
pub(crate) struct InForce {
    /// The faults in force.
    open: Vec<Open>,
    /// Down until the end of the run (a failed node).
    gone: BTreeSet<String>,
    /// Down until the final heal (a disk that may have lied or stopped its node).
    suspect: BTreeSet<String>,
    /// Until then the rounds grown during an asynchronous period may still be
    /// running: no operation is judged before it (issue 16, `gst.rs`).
    pub(crate) settle_until: u64,
}

/// The nodes a step names: its typed `node`, and the `nodes` / `adversaries` lists
/// of its value.
fn names(e: &Nemesis) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = e.node.iter().cloned().collect();
    for k in ["nodes", "adversaries"] {
        if let Some(l) = e.value.get(k).and_then(Value::as_array) {
            out.extend(l.iter().filter_map(|x| x.as_str().map(String::from)));
        }
    }
    out
}

fn links(v: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for k in ["blocked", "links"] {
        for pair in v.get(k).and_then(Value::as_array).into_iter().flatten() {
            if let (Some(a), Some(b)) = (
                pair.get(0).and_then(Value::as_str),
                pair.get(1).and_then(Value::as_str),
            ) {
                out.insert((a.to_string(), b.to_string()));
            }
        }
    }
    out
}

/// Whether a `slow` or `async` step delays its links by no more than `timely_ms`.
fn timely(e: &Nemesis, timely_ms: u64) -> bool {
    let ms = |k: &str| e.value.get(k).and_then(Value::as_u64);
    matches!(e.fault.as_str(), "slow" | "async")
        && ms("delay_ms").is_some_and(|d| d + ms("jitter_ms").unwrap_or(0) <= timely_ms)
}

impl InForce {
    fn apply(&mut self, e: &Nemesis, timely_ms: u64) {
        match e.phase {
            Phase::HealAll => {
                self.open.clear();
                self.suspect.clear();
            }
            Phase::Start | Phase::Once => {
                let (ns, ls) = (names(e), links(&e.value));
                match e.fault.as_str() {
                    "fail-node" => self.gone.extend(ns.iter().cloned()),
                    "disk" => self.suspect.extend(ns.iter().cloned()),
                    _ => {}
                }
                let blocks = e.fault == "add-node" || (ns.is_empty() && ls.is_empty());
                if e.phase == Phase::Start {
                    self.open.push(Open {
                        fault: e.fault.clone(),
                        nodes: ns,
                        links: ls,
                        blocks,
                        timely: timely(e, timely_ms),
                    });
                }
            }
            Phase::Stop => {
                let (ns, ls) = (names(e), links(&e.value));
                let same = |o: &Open| o.fault == e.fault && o.nodes == ns && o.links == ls;
                let at = (self.open.iter().position(same))
                    .or_else(|| self.open.iter().position(|o| o.fault == e.fault));
                if let Some(i) = at {
                    self.open.remove(i);
                }
            }
        }
    }

    fn down(&self) -> BTreeSet<String> {
        let mut d: BTreeSet<String> = self.gone.union(&self.suspect).cloned().collect();
        for o in &self.open {
            d.extend(o.nodes.iter().cloned());
        }
        d
    }

    fn cut(&self, a: &str, b: &str) -> bool {
        self.open.iter().filter(|o| !o.timely).any(|o| {
            o.links
                .iter()
                .any(|(x, y)| (x == a && y == b) || (x == b && y == a))
        })
    }

    fn blocked(&self) -> bool {
        self.open.iter().any(|o| o.blocks)
    }

    /// The largest set of members up and all connected to each other, if it is a
    /// quorum of `members` and nothing in force keeps the moment from being judged.
    pub(crate) fn quorum_up(&self, members: &[String]) -> Option<Vec<String>> {
        if self.blocked() {
            return None;
        }
        let down = self.down();
        let up: Vec<String> = (members.iter())
            .filter(|m| !down.contains(*m))
            .cloned()
            .collect();
        let clique = largest_clique(&up, self);
        (clique.len() >= crate::oracle::quorum::quorum(members.len())).then_some(clique)
    }
}

/// The largest set of `up` nodes all directly connected (small rosters: every
/// subset, largest first).
fn largest_clique(up: &[String], state: &InForce) -> Vec<String> {
    let n = up.len().min(16);
    let mut best: Vec<String> = Vec::new();
    for mask in 1u32..(1 << n) {
        if (mask.count_ones() as usize) <= best.len() {
            continue;
        }
        let set: Vec<&String> = (0..n)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| &up[i])
            .collect();
        let all = set
            .iter()
            .enumerate()
            .all(|(i, a)| set[i + 1..].iter().all(|b| !state.cut(a, b)));
        if all {
            best = set.into_iter().cloned().collect();
        }
    }
    best
}

/// One judged window: when, from when its ops are judged, who could decide, and
/// the slowest judged operation.
struct Window {
    start: u64,
    from: u64,
    end: u64,
    clique: Vec<String>,
    judged: usize,
    slowest_ns: u64,
}

/// The windows of constant faults, each with the state in force; an asynchronous
/// period's end (GST, [`super::gst`]) sets how long its grown rounds may run on.
pub(crate) fn windows(
    an: &Analysis,
    end: u64,
    timing: &FaultTiming,
    gsts: &[super::gst::Gst],
) -> Vec<(u64, u64, InForce)> {
    let mut out = Vec::new();
    let mut state = InForce::default();
    let mut from = 0;
    for e in &an.nemesis {
        if e.time > from {
            out.push((from, e.time, state.clone()));
        }
        state.apply(e, timing.timely_ms());
        for g in gsts.iter().filter(|g| g.index == e.index) {
            state.settle_until = (state.settle_until).max(g.time.saturating_add(g.bound_ns));
        }
        from = from.max(e.time);
    }
    if end > from {
        out.push((from, end, state));
    }
    out
}

/// The member names at the height the history knows at `t` (from the canonical
/// replay); `None` if a member has no known name.
pub(crate) fn members_at(an: &Analysis, height: u64) -> Option<Vec<String>> {
    let c = an.canonical()?;
    let by_id: BTreeMap<NodeId, &String> = an.ids.iter().map(|(n, id)| (*id, n)).collect();
    let era = c.era_at(height.clamp(1, c.len() + 1));
    era.roster
        .entries()
        .iter()
        .map(|e| by_id.get(&e.id).map(|n| (*n).clone()))
        .collect()
}

/// Names of the members at `height` that some later roster of the canonical chain
/// no longer holds.
fn leaving(an: &Analysis, height: u64) -> BTreeSet<String> {
    let Some(c) = an.canonical() else {
        return BTreeSet::new();
    };
    let now = c.era_at(height.clamp(1, c.len() + 1));
    let by_id: BTreeMap<NodeId, &String> = an.ids.iter().map(|(n, id)| (*id, n)).collect();
    (now.roster.entries().iter())
        .filter(|e| {
            (c.eras.iter())
                .filter(|era| era.from_height > now.from_height)
                .any(|era| !era.roster.contains(&e.id))
        })
        .filter_map(|e| by_id.get(&e.id).map(|n| (*n).clone()))
        .collect()
}

/// Judges every window where a quorum is up and connected; adds a finding per
/// stalled operation (at most one per window) and returns the windows' details.
pub(crate) fn check(
    run: &ClusterRun,
    an: &Analysis,
    height_at: impl Fn(u64) -> Option<u64>,
    gsts: &[super::gst::Gst],
    findings: &mut Vec<Finding>,
) -> Value {
    let Some(timing) = run.fault_timing else {
        return json!({"skipped": "no bound: the run's timeouts are not known"});
    };
    let bound = timing.bound_ns();
    let ops: Vec<_> = run
        .history
        .ops()
        .iter()
        .filter(|o| is_client(o.process))
        .collect();
    let mut judged = Vec::new();
    for (t0, t1, state) in windows(an, client_end(run), &timing, gsts) {
        // Judged from one bound after the window starts (the height in progress
        // ends and restarted nodes catch up) or after the rounds an asynchronous
        // period grew have run out, ops sent at least a bound before it ends.
        let from = (t0 + bound).max(state.settle_until);
        if t1 < from.saturating_add(bound) {
            continue;
        }
        let Some(members) = members_at(an, height_at(t0).unwrap_or(0) + 1) else {
            continue;
        };
        let Some(clique) = state.quorum_up(&members) else {
            continue;
        };
        // A member a later roster drops (evicted at a height the history cannot
        // place in time) may already be outside the roster here: not judged.
        let leaving = leaving(an, height_at(t0).unwrap_or(0) + 1);
        let clique: Vec<String> = (clique.into_iter())
            .filter(|m| !leaving.contains(m))
            .collect();
        if clique.len() < crate::oracle::quorum::quorum(members.len()) {
            continue;
        }
        let mut w = Window {
            start: t0,
            from,
            end: t1,
            clique,
            judged: 0,
            slowest_ns: 0,
        };
        if let Some(i) = judge(&ops, &mut w, bound) {
            findings.push(stall(&w, bound, i));
        }
        judged.push(w);
    }
    detail(&judged, bound)
}

/// The last time a client operation was invoked or completed: the end of the run's
/// last window.
pub(crate) fn client_end(run: &ClusterRun) -> u64 {
    (run.history.ops().iter())
        .filter(|o| is_client(o.process))
        .filter_map(|o| o.complete_time.or(Some(o.invoke_time)))
        .max()
        .unwrap_or(0)
}

/// Times every op sent to the window's quorum from its judging start to one bound
/// before its end; the first that took longer than the bound, if any.
fn judge(ops: &[&Op], w: &mut Window, bound: u64) -> Option<u64> {
    let mut stalled = None;
    let judged = ops.iter().filter(|o| {
        o.invoke_time >= w.from
            && o.invoke_time + bound <= w.end
            && o.node.as_ref().is_some_and(|n| w.clique.contains(n))
    });
    for o in judged {
        w.judged += 1;
        let took = match (o.kind, o.complete_time) {
            (OpType::Ok | OpType::Fail, Some(c)) => c - o.invoke_time,
            _ => u64::MAX,
        };
        w.slowest_ns = w.slowest_ns.max(took.min(w.end - o.invoke_time));
        if took > bound && stalled.is_none() {
            stalled = Some(o.invoke_index);
        }
    }
    stalled
}

fn stall(w: &Window, bound: u64, op: u64) -> Finding {
    let why = format!(
        "between {} and {} ns {:?} were up and connected (a quorum), yet an operation sent to one of them did not complete within {bound} ns",
        w.start, w.end, w.clique
    );
    Finding::new(
        LIVENESS,
        "stalled-during-faults",
        Validity::Invalid,
        None,
        "",
        why,
        json!({"window": [w.start, w.end], "quorum_up": w.clique}),
    )
    .with_ops(vec![op])
}

fn detail(ws: &[Window], bound: u64) -> Value {
    let longest = ws.iter().map(|w| w.slowest_ns).max().unwrap_or(0);
    json!({
        "bound_ns": bound,
        "windows_judged": ws.len(),
        "slowest_op_ns": longest,
        "windows": ws.iter().take(50).map(|w| json!({
            "start": w.start, "end": w.end, "quorum_up": w.clique,
            "ops_judged": w.judged, "slowest_op_ns": w.slowest_ns,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cluster::check_cluster;
    use crate::cluster::fixture::*;
    use crate::history::History;

    const S: u64 = 1_000_000_000;

    /// The standard chain, every node's id known, and a history of `ops`
    /// (invoke s, completion s or `None` for never, node) plus `nemesis` steps
    /// (time s, f, value), healed at 40 s.
    pub(crate) fn run(
        ops: &[(f64, Option<f64>, &str)],
        nemesis: &[(f64, &str, Value)],
    ) -> ClusterRun {
        let mut evs: Vec<(u64, Value)> = Vec::new();
        let ns = |x: f64| (x * S as f64) as u64;
        for (p, (inv, done, node)) in ops.iter().enumerate() {
            let op = |kind: &str| json!({"process": p, "type": kind, "f": "txn", "value": [["append", "k", p]], "node": node});
            evs.push((ns(*inv), op("invoke")));
            evs.push((
                done.map_or(ns(39.0), ns),
                op(if done.is_some() { "ok" } else { "info" }),
            ));
        }
        for (t, f, v) in nemesis {
            evs.push((
                ns(*t),
                json!({"process": "nemesis", "type": "info", "f": f, "value": v}),
            ));
        }
        evs.push((
            ns(40.0),
            json!({"process": "nemesis", "type": "info", "f": "heal-all", "value": {}}),
        ));
        evs.sort_by_key(|(t, _)| *t);
        let mut text = String::new();
        for (i, (t, mut v)) in evs.into_iter().enumerate() {
            v["index"] = json!(i);
            v["time"] = json!(t);
            text.push_str(&format!("{v}\n"));
        }
        let mut r = run_of(
            &build_chain(&mut |_, _| {}),
            History::parse_jsonl(&text).unwrap(),
        );
        for (i, n) in r.nodes.iter_mut().enumerate() {
            n.status = Some(json!({"id": key(i as u8 + 1).id().to_hex()}));
        }
        r.fault_timing = Some(one_second());
        r
    }

    /// Timeouts whose f = 1 bound is exactly 1 s.
    pub(crate) fn one_second() -> FaultTiming {
        let timeouts = RoundTimeouts {
            propose_ms: 100,
            propose_delta_ms: 0,
            vote_ms: 50,
            vote_delta_ms: 0,
            commit_ms: 100,
        };
        FaultTiming { timeouts, f: 1 }
    }

    fn stalls(r: &ClusterRun) -> usize {
        found(r, "stalled-during-faults")
    }

    /// How many `kind` findings the liveness checker makes on `r`.
    pub(crate) fn found(r: &ClusterRun, kind: &str) -> usize {
        let rs = check_cluster(r);
        let l = by_name(&rs, LIVENESS);
        l.anomalies.iter().filter(|a| a.kind == kind).count()
    }

    #[test]
    fn an_op_stuck_while_a_quorum_is_up_and_connected_is_a_stall() {
        let kill = |t, phase| (t, "kill", json!({"phase": phase, "nodes": ["n4"]}));
        let quick = [(12.0, Some(12.3), "n2"), (14.0, Some(14.5), "n3")];
        assert_eq!(
            stalls(&run(&quick, &[kill(10.0, "start"), kill(20.0, "stop")])),
            0
        );
        // One node of four down: n1..n3 are a connected quorum; an op to n3 hangs.
        let stuck = [(12.0, Some(12.3), "n2"), (14.0, None, "n3")];
        assert_eq!(
            stalls(&run(&stuck, &[kill(10.0, "start"), kill(20.0, "stop")])),
            1
        );
        // Judged only after the window settles and while it lasts: an op sent
        // within a bound of either end is not.
        let edge = [(10.5, None, "n3"), (19.5, None, "n3")];
        assert_eq!(
            stalls(&run(&edge, &[kill(10.0, "start"), kill(20.0, "stop")])),
            0
        );
        // An op to the down node is not judged either.
        assert_eq!(
            stalls(&run(
                &[(14.0, None, "n4")],
                &[kill(10.0, "start"), kill(20.0, "stop")]
            )),
            0
        );
    }

    #[test]
    fn no_quorum_connected_means_no_judgement() {
        let stuck = [(14.0, None, "n3")];
        // Two of four down.
        let two = json!({"phase": "start", "nodes": ["n1", "n2"]});
        assert_eq!(stalls(&run(&stuck, &[(10.0, "kill", two)])), 0);
        // One down and a cut between two of the other three: no connected three.
        let cut = json!({"phase": "start", "blocked": [["n2", "n3"]]});
        let kill = json!({"phase": "start", "nodes": ["n4"]});
        assert_eq!(
            stalls(&run(
                &stuck,
                &[(10.0, "kill", kill.clone()), (10.0, "partition", cut)]
            )),
            0
        );
        // A fault of unknown scope, or an AddNode in flight, is not judged.
        assert_eq!(
            stalls(&run(
                &stuck,
                &[(10.0, "mystery", json!({"phase": "start"}))]
            )),
            0
        );
        let add = json!({"phase": "start", "node": "n5"});
        assert_eq!(stalls(&run(&stuck, &[(10.0, "add-node", add)])), 0);
        // The same stuck op with only the kill: judged, and a stall.
        assert_eq!(stalls(&run(&stuck, &[(10.0, "kill", kill)])), 1);
    }

    /// A member the chain evicts later (n4 in the standard chain, evicted at
    /// height 12) may already be outside the roster when an op to it hangs: ops
    /// to it are not judged, nor counted toward the quorum; ops to the others are.
    /// (An adversary evicted for its invalid proposals keeps running honest outside
    /// the roster and answers nothing: a false stall before this rule.)
    #[test]
    fn an_op_to_a_member_evicted_later_is_not_a_stall() {
        let slow = |t, phase| (t, "slow", json!({"phase": phase, "links": [["n9", "n8"]]}));
        let steps = [slow(10.0, "start"), slow(20.0, "stop")];
        assert_eq!(stalls(&run(&[(14.0, None, "n4")], &steps)), 0);
        assert_eq!(stalls(&run(&[(14.0, None, "n3")], &steps)), 1);
        // With n1 also down, n2 and n3 are no quorum of four without n4.
        let kill = |t, phase| (t, "kill", json!({"phase": phase, "nodes": ["n1"]}));
        let both = [kill(10.0, "start"), kill(20.0, "stop")];
        assert_eq!(stalls(&run(&[(14.0, None, "n3")], &both)), 0);
    }

    #[test]
    fn the_bound_grows_with_f_and_the_timeouts() {
        let t = RoundTimeouts {
            propose_ms: 200,
            propose_delta_ms: 100,
            vote_ms: 100,
            vote_delta_ms: 50,
            commit_ms: 100,
        };
        // f = 1: rounds 0 and 1 cost 400 and 600 ms; the height 1.1 s; twice that.
        assert_eq!(fault_bound_ns(&t, 1), 2_200_000_000);
        assert!(fault_bound_ns(&t, 2) > fault_bound_ns(&t, 1));
    }
}
