//! Shrinking steps on a fault schedule's times (issue 16), for `explore`: split an
//! overlap (the later of two overlapping faults starts when the earlier stops, so
//! they run one after the other), shorten one fault, move one earlier. Dropping a
//! fault is `explore`'s own step. A candidate that would break the composition
//! rules (`rollcall_workloads::overlap`) of a schedule that kept them is not offered,
//! so shrinking never turns a run into one beyond the fault model.

use crate::options::TestOptions;
use rollcall_workloads::overlap::check_composition;
use rollcall_workloads::{PlanSpec, PlannedFault};

/// Shortest fault a shorten step leaves, ns.
const MIN_FAULT_NS: u64 = 1_000_000_000;

/// The schedules one split away from `sched` ([`split_overlaps`]) that keep the
/// composition rules if `sched` did.
pub fn splits(o: &TestOptions, sched: &[PlannedFault]) -> Vec<Vec<PlannedFault>> {
    let limit_ns = o.time_limit_s.saturating_mul(1_000_000_000);
    composing(o, sched, split_overlaps(sched, limit_ns))
}

/// The schedules one shorter or earlier fault away from `sched`, each kept in
/// start order, that keep the composition rules if `sched` did.
pub fn time_edits(o: &TestOptions, sched: &[PlannedFault]) -> Vec<Vec<PlannedFault>> {
    let mut out = Vec::new();
    for (i, p) in sched.iter().enumerate() {
        let Some(stop) = p.stop_ns else { continue };
        let len = stop.saturating_sub(p.start_ns);
        if len >= 2 * MIN_FAULT_NS {
            let mut s = sched.to_vec();
            s[i].stop_ns = Some(p.start_ns + len / 2);
            out.push(s);
        }
    }
    for (i, p) in sched.iter().enumerate() {
        if p.start_ns >= 2 * MIN_FAULT_NS {
            let shift = p.start_ns / 2;
            let mut s = sched.to_vec();
            s[i].start_ns -= shift;
            s[i].stop_ns = p.stop_ns.map(|t| t - shift);
            out.push(in_order(s));
        }
    }
    composing(o, sched, out)
}

/// `cands` without those that break a composition rule `sched` kept.
fn composing(
    o: &TestOptions,
    sched: &[PlannedFault],
    mut cands: Vec<Vec<PlannedFault>>,
) -> Vec<Vec<PlannedFault>> {
    let spec = roster(o);
    if check_composition(&spec, sched).is_ok() {
        cands.retain(|s| check_composition(&spec, s).is_ok());
    }
    cands
}

/// For each pair of overlapping faults (`a` starts first, `b` starts before `a`
/// stops), the schedule where `b` starts when `a` stops, keeping its length but
/// stopping by the time limit. Permanent faults (`fail-node`) are points, not
/// intervals: they are never split.
pub fn split_overlaps(sched: &[PlannedFault], limit_ns: u64) -> Vec<Vec<PlannedFault>> {
    let mut out = Vec::new();
    for (i, a) in sched.iter().enumerate() {
        let Some(a_stop) = a.stop_ns else { continue };
        for (j, b) in sched.iter().enumerate() {
            let Some(b_stop) = b.stop_ns else { continue };
            let after = (b.start_ns, j) > (a.start_ns, i);
            if i == j || !after || b.start_ns >= a_stop || a_stop >= limit_ns {
                continue;
            }
            let mut s = sched.to_vec();
            s[j].start_ns = a_stop;
            s[j].stop_ns = Some((a_stop + (b_stop - b.start_ns)).min(limit_ns));
            out.push(in_order(s));
        }
    }
    out
}

/// Start order, stable: the run loop stops a fault before it starts a later one
/// at the same instant only when the stopped one comes first.
fn in_order(mut s: Vec<PlannedFault>) -> Vec<PlannedFault> {
    s.sort_by_key(|p| p.start_ns);
    s
}

/// The plan spec of `o`'s roster, as the composition check needs it.
fn roster(o: &TestOptions) -> PlanSpec {
    PlanSpec {
        kinds: o.nemesis.clone(),
        interval_ns: o.nemesis_interval_s.saturating_mul(1_000_000_000),
        time_limit_ns: o.time_limit_s.saturating_mul(1_000_000_000),
        nodes: (1..=o.nodes).map(|i| format!("n{i}")).collect(),
        spares: (o.nodes + 1..=o.nodes + o.spare)
            .map(|i| format!("n{i}"))
            .collect(),
        min_roster: o.min_roster as usize,
        max_concurrent: o.max_concurrent_faults,
        base_timeout_ms: crate::run::base_timeout_ms(o.backend),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollcall_workloads::Fault;

    const S: u64 = 1_000_000_000;

    fn at(start: u64, stop: u64, fault: Fault) -> PlannedFault {
        PlannedFault {
            start_ns: start * S,
            stop_ns: Some(stop * S),
            fault,
        }
    }

    fn kill(n: &str) -> Fault {
        Fault::Kill {
            nodes: vec![n.into()],
        }
    }

    fn cut() -> Fault {
        Fault::Partition {
            shape: rollcall_workloads::PartitionShape::One,
            groups: vec![vec!["n1".into()], vec!["n2".into()]],
            blocked: vec![("n1".into(), "n2".into()), ("n2".into(), "n1".into())],
        }
    }

    #[test]
    fn an_overlap_splits_into_two_faults_one_after_the_other() {
        let s = vec![at(2, 6, kill("n1")), at(4, 7, cut())];
        let split = split_overlaps(&s, 20 * S);
        assert_eq!(split, vec![vec![at(2, 6, kill("n1")), at(6, 9, cut())]]);
        // Sequential faults have nothing to split; a split stops by the limit.
        assert!(split_overlaps(&split[0], 20 * S).is_empty());
        assert_eq!(
            split_overlaps(&s, 8 * S),
            vec![vec![at(2, 6, kill("n1")), at(6, 8, cut())]]
        );
        // The later fault listed first is still the one moved.
        let rev = vec![at(4, 7, cut()), at(2, 6, kill("n1"))];
        assert_eq!(split_overlaps(&rev, 20 * S)[0][1], at(6, 9, cut()));
    }

    #[test]
    fn time_edits_shorten_move_and_keep_the_composition_rules() {
        let o = TestOptions {
            max_concurrent_faults: 2,
            time_limit_s: 20,
            ..TestOptions::default()
        };
        let s = vec![at(2, 6, kill("n1")), at(8, 12, kill("n2"))];
        let e = time_edits(&o, &s);
        assert!(e.contains(&vec![at(2, 4, kill("n1")), at(8, 12, kill("n2"))]));
        assert!(e.contains(&vec![at(1, 5, kill("n1")), at(8, 12, kill("n2"))]));
        // Moving the second kill to 4 s would overlap two kills: not offered.
        assert!(!e.contains(&vec![at(2, 6, kill("n1")), at(4, 8, kill("n2"))]));
        assert!(e.iter().all(|x| check_composition(&roster(&o), x).is_ok()));
    }
}
