//! Overlapping fault schedules (issue 16): up to `max_concurrent` fault intervals
//! at once, as real outages combine (a partition while a node restarts).
//!
//! The composition rules, checked by [`check_composition`] and kept by
//! [`plan_overlapping`]:
//! - at most `max_concurrent` intervals at once, each of a different kind;
//! - a node is held by at most one node fault at a time (`kill`, `pause`, `disk`,
//!   `byzantine`, `duplicate-key`, `fail-node`), and `crash-all` holds every node, so
//!   no heal of one fault can undo another's hold on the same node;
//! - the nodes that may lie or stay silent (Byzantine adversaries, a key's twin, a
//!   damaged or failing disk, a node failed for good) never number more than f = ⌊(n−1)/3⌋ at once (one when f is 0,
//!   as the one-at-a-time schedule allows a lone `disk` or `duplicate-key`), and the
//!   adversaries alone never more than f: going beyond the fault model takes an
//!   explicit schedule, as before. A `fail-node` victim counts among them for the
//!   rest of the run (it stays in the roster, silent, until evicted: with a node
//!   whose signing log was damaged beside it, 5 validators lost their quorum for
//!   good; explore, `--max-concurrent-faults 3`, seed 2);
//! - link faults (`partition`, `flaky`, `slow`, `async`), `add-node` and `clock` hold no
//!   node: they compose with everything, the nemesis computing the links from all
//!   that hold (a node's clock is its machine's, whatever else happens to it);
//! - every interval stops by the time limit, where the final heal ends everything.

use crate::faults::{fault_on, max_faulty, some_nodes, Fault, NemesisKind, PlanSpec, PlannedFault};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore};
use std::collections::BTreeSet;

/// What a fault holds while it is active.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holds {
    /// Every node (`crash-all`).
    pub all: bool,
    /// The nodes it holds exclusively.
    pub nodes: BTreeSet<String>,
    /// The nodes it may make lie (counted against f).
    pub faulty: BTreeSet<String>,
    /// How many of them are Byzantine adversaries.
    pub byzantine: usize,
}

/// What `f` holds: the basis of every composition rule.
pub fn holds(f: &Fault) -> Holds {
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<String>>();
    match f {
        Fault::Kill { nodes } | Fault::Pause { nodes } => Holds {
            nodes: set(nodes),
            ..Holds::default()
        },
        Fault::CrashAll => Holds {
            all: true,
            ..Holds::default()
        },
        Fault::Disk { node, .. } | Fault::DuplicateKey { node, .. } | Fault::FailNode { node } => {
            Holds {
                nodes: set(std::slice::from_ref(node)),
                faulty: set(std::slice::from_ref(node)),
                ..Holds::default()
            }
        }
        Fault::Byzantine { nodes, .. } => Holds {
            nodes: set(nodes),
            faulty: set(nodes),
            byzantine: nodes.len(),
            all: false,
        },
        Fault::Partition { .. }
        | Fault::Flaky { .. }
        | Fault::Slow { .. }
        | Fault::Async { .. }
        | Fault::AddNode { .. }
        | Fault::Clock { .. }
        | Fault::MuteProposals { .. } => Holds::default(),
    }
}

/// The faults active at one moment, and what they hold together.
#[derive(Default)]
struct Active {
    /// (stop, kind, holds) of each active interval.
    faults: Vec<(u64, NemesisKind, Holds)>,
    /// The `fail-node` victim: counted against f for the rest of the run, as it
    /// stays in the roster, not signing, until it is evicted.
    gone: BTreeSet<String>,
}

impl Active {
    fn at(&mut self, t: u64) {
        self.faults.retain(|(stop, _, _)| *stop > t);
    }
    fn has_kind(&self, k: NemesisKind) -> bool {
        self.faults.iter().any(|(_, kind, _)| *kind == k)
    }
    fn all_held(&self) -> bool {
        self.faults.iter().any(|(_, _, h)| h.all)
    }
    fn held(&self) -> BTreeSet<String> {
        self.faults
            .iter()
            .flat_map(|(_, _, h)| h.nodes.clone())
            .collect()
    }
    fn faulty(&self) -> BTreeSet<String> {
        (self.faults.iter())
            .flat_map(|(_, _, h)| h.faulty.clone())
            .chain(self.gone.iter().cloned())
            .collect()
    }
    fn byzantine(&self) -> usize {
        self.faults.iter().map(|(_, _, h)| h.byzantine).sum()
    }
    fn next_stop(&self) -> Option<u64> {
        self.faults.iter().map(|(stop, _, _)| *stop).min()
    }
}

/// Whether `h`, started while `a` holds, keeps every rule for a roster of `n`.
fn composes(a: &Active, h: &Holds, n: usize) -> Result<(), String> {
    let held = a.held();
    if (h.all && (!held.is_empty() || a.all_held())) || (a.all_held() && !h.nodes.is_empty()) {
        return Err("crash-all holds every node".into());
    }
    if let Some(x) = h.nodes.intersection(&held).next() {
        return Err(format!("{x} is held by two node faults"));
    }
    let f = max_faulty(n);
    let faulty = a.faulty().union(&h.faulty).count();
    if !h.faulty.is_empty() && faulty > f.max(1) {
        return Err(format!("{faulty} nodes may lie at once, f = {f}"));
    }
    if h.byzantine > 0 && a.byzantine() + h.byzantine > f {
        return Err(format!(
            "{} adversaries at once, f = {f}",
            a.byzantine() + h.byzantine
        ));
    }
    Ok(())
}

/// Checks a schedule against the composition rules (module doc) for the roster of
/// `spec`; the first broken rule, with the fault's index.
pub fn check_composition(spec: &PlanSpec, sched: &[PlannedFault]) -> Result<(), String> {
    let mut members: BTreeSet<String> = spec.nodes.iter().cloned().collect();
    let mut active = Active::default();
    let mut order: Vec<&PlannedFault> = sched.iter().collect();
    order.sort_by_key(|p| p.start_ns);
    for (i, p) in order.into_iter().enumerate() {
        active.at(p.start_ns);
        let kind = p.fault.kind();
        let err = |e: String| format!("fault {i} ({kind} at {} ns): {e}", p.start_ns);
        if p.stop_ns.is_some() {
            if active.faults.len() >= spec.max_concurrent.max(1) {
                return Err(err("too many faults at once".into()));
            }
            if active.has_kind(kind) {
                return Err(err("two faults of one kind at once".into()));
            }
        }
        let h = holds(&p.fault);
        composes(&active, &h, members.len()).map_err(err)?;
        match &p.fault {
            Fault::AddNode { node } => {
                members.insert(node.clone());
            }
            Fault::FailNode { node } => {
                members.remove(node);
                active.gone.insert(node.clone());
            }
            _ => {}
        }
        if let Some(stop) = p.stop_ns {
            active.faults.push((stop, kind, h));
        }
    }
    Ok(())
}

/// The roster as the planner tracks it.
struct Roster<'a> {
    members: Vec<String>,
    spares: std::slice::Iter<'a, String>,
    failed: bool,
}

/// Draws an overlapping schedule (module doc): a fault starts every half to one
/// interval while fewer than `max_concurrent` hold, lasts one or two intervals, and
/// is drawn from the kinds that compose with those active.
pub fn plan_overlapping(rng: &mut dyn RngCore, spec: &PlanSpec) -> Vec<PlannedFault> {
    let mut out = Vec::new();
    if spec.kinds.is_empty() || spec.interval_ns == 0 || spec.nodes.is_empty() {
        return out;
    }
    let mut roster = Roster {
        members: spec.nodes.clone(),
        spares: spec.spares.iter(),
        failed: false,
    };
    let mut active = Active::default();
    let iv = spec.interval_ns;
    let mut t = iv;
    while t + iv <= spec.time_limit_ns {
        active.at(t);
        let drawn = if active.faults.len() < spec.max_concurrent {
            draw(rng, spec, &active, &mut roster)
        } else {
            None
        };
        let Some(fault) = drawn else {
            // Nothing composes now: wait for the next stop, or give up.
            match active.next_stop() {
                Some(s) => t = s,
                None => break,
            }
            continue;
        };
        let kind = fault.kind();
        if let Fault::FailNode { node } = &fault {
            active.gone.insert(node.clone());
        }
        let stop = (t + iv * rng.gen_range(1..=2)).min(spec.time_limit_ns);
        active.faults.push((stop, kind, holds(&fault)));
        out.push(PlannedFault {
            start_ns: t,
            stop_ns: (kind != NemesisKind::FailNode).then_some(stop),
            fault,
        });
        t += rng.gen_range((iv / 2).max(1)..=iv);
    }
    out
}

/// The kinds that compose with `active` now, and how many adversaries may join.
fn feasible(
    spec: &PlanSpec,
    active: &Active,
    roster: &Roster,
    free: &[String],
) -> (Vec<NemesisKind>, usize) {
    let n = roster.members.len();
    let held = active.held();
    let f = max_faulty(n);
    let lie_room = f.max(1).saturating_sub(active.faulty().len());
    let byz_room = f.saturating_sub(active.byzantine()).min(lie_room);
    let kinds = (spec.kinds.iter().copied())
        .filter(|k| !active.has_kind(*k))
        .filter(|k| match k {
            NemesisKind::AddNode => roster.spares.len() > 0,
            NemesisKind::FailNode => {
                !roster.failed && n > spec.min_roster.max(3) && !free.is_empty() && lie_room > 0
            }
            NemesisKind::CrashAll => held.is_empty() && !active.all_held(),
            NemesisKind::Kill | NemesisKind::Pause => !free.is_empty(),
            NemesisKind::Disk | NemesisKind::DuplicateKey => !free.is_empty() && lie_room > 0,
            NemesisKind::Byzantine => !free.is_empty() && byz_room > 0,
            NemesisKind::Partition
            | NemesisKind::Flaky
            | NemesisKind::Slow
            | NemesisKind::Async
            | NemesisKind::Clock
            | NemesisKind::MuteProposals => n > 0,
        })
        .collect();
    (kinds, byz_room)
}

/// One fault that composes with `active`, or `None` when no kind does.
fn draw(
    rng: &mut dyn RngCore,
    spec: &PlanSpec,
    active: &Active,
    roster: &mut Roster,
) -> Option<Fault> {
    let held = active.held();
    let free: Vec<String> = (roster.members.iter())
        .filter(|m| !held.contains(*m) && !active.all_held())
        .cloned()
        .collect();
    let (feasible, byz_room) = feasible(spec, active, roster, &free);
    let kind = feasible.choose(rng).copied()?;
    Some(match kind {
        NemesisKind::AddNode => {
            let node = roster.spares.next()?.clone();
            roster.members.push(node.clone());
            Fault::AddNode { node }
        }
        NemesisKind::FailNode => {
            roster.failed = true;
            let node = free[rng.gen_range(0..free.len())].clone();
            roster.members.retain(|m| *m != node);
            Fault::FailNode { node }
        }
        NemesisKind::Kill => Fault::Kill {
            nodes: some_nodes(rng, &free),
        },
        NemesisKind::Pause => Fault::Pause {
            nodes: some_nodes(rng, &free),
        },
        NemesisKind::Byzantine => {
            let k = rng.gen_range(1..=byz_room.min(free.len()));
            let mut nodes: Vec<String> = free.choose_multiple(rng, k).cloned().collect();
            nodes.sort();
            let behaviour = crate::Behaviour::ALL[rng.gen_range(0..crate::Behaviour::ALL.len())];
            Fault::Byzantine { nodes, behaviour }
        }
        NemesisKind::Disk | NemesisKind::DuplicateKey => {
            fault_on(rng, kind, &free, spec.async_base_ms())
        }
        other => fault_on(rng, other, &roster.members, spec.async_base_ms()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn spec(k: usize) -> PlanSpec {
        PlanSpec {
            kinds: NemesisKind::ALL.to_vec(),
            interval_ns: 2_000_000_000,
            time_limit_ns: 60_000_000_000,
            nodes: (1..=4).map(|i| format!("n{i}")).collect(),
            spares: vec!["n5".into()],
            min_roster: 3,
            max_concurrent: k,
            base_timeout_ms: 220,
        }
    }

    #[test]
    fn overlapping_schedules_overlap_and_keep_the_rules() {
        let mut overlapped = false;
        for seed in 0..20 {
            let s = spec(3);
            let p = plan_overlapping(&mut ChaCha8Rng::seed_from_u64(seed), &s);
            assert_eq!(check_composition(&s, &p), Ok(()), "seed {seed}: {p:?}");
            overlapped |= p
                .windows(2)
                .any(|w| w[0].stop_ns.is_some_and(|s| s > w[1].start_ns));
        }
        assert!(overlapped, "no schedule overlapped");
    }

    #[test]
    fn broken_schedules_are_caught() {
        let s = spec(2);
        let at = |start: u64, stop: u64, fault: Fault| PlannedFault {
            start_ns: start,
            stop_ns: Some(stop),
            fault,
        };
        let kill = |n: &str| Fault::Kill {
            nodes: vec![n.into()],
        };
        let pause = Fault::Pause {
            nodes: vec!["n1".into()],
        };
        let e = check_composition(&s, &[at(1, 5, kill("n1")), at(2, 6, pause)]).unwrap_err();
        assert!(e.contains("n1 is held by two"), "{e}");
        let e = check_composition(&s, &[at(1, 5, kill("n1")), at(2, 6, kill("n2"))]).unwrap_err();
        assert!(e.contains("one kind"), "{e}");
        let disk = Fault::Disk {
            node: "n2".into(),
            kind: crate::DiskFault::Full,
        };
        let byz = Fault::Byzantine {
            nodes: vec!["n3".into()],
            behaviour: crate::Behaviour::ALL[0],
        };
        let e = check_composition(&s, &[at(1, 5, disk), at(2, 6, byz.clone())]).unwrap_err();
        assert!(e.contains("may lie at once"), "{e}");
        let e = check_composition(&s, &[at(1, 5, kill("n1")), at(2, 6, Fault::CrashAll)]);
        assert!(e.unwrap_err().contains("crash-all"));
        let three = [
            at(1, 9, kill("n1")),
            at(2, 9, byz),
            at(3, 9, Fault::CrashAll),
        ];
        assert!(check_composition(&s, &three).is_err());
        // A node failed for good stays silent in the roster: it counts against f.
        let fail = PlannedFault {
            start_ns: 1,
            stop_ns: None,
            fault: Fault::FailNode { node: "n4".into() },
        };
        let disk = Fault::Disk {
            node: "n2".into(),
            kind: crate::DiskFault::CorruptSign,
        };
        let e = check_composition(&s, &[fail, at(7, 9, disk)]).unwrap_err();
        assert!(e.contains("may lie at once"), "{e}");
        // Sequential is fine.
        assert_eq!(
            check_composition(&s, &[at(1, 5, kill("n1")), at(5, 6, kill("n1"))]),
            Ok(())
        );
    }
}
