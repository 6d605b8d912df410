//! Properties of the generators: every generated operation is well-formed for its
//! workload, append values are unique per key, and fault schedules are well-ordered
//! and respect the cluster (harness.md §4, §5).

use proptest::prelude::*;
use rollcall_node_core::types::Op;
use rollcall_workloads::strategies::{fault_schedule, op_sequence, ops_from_seed};
use rollcall_workloads::{Fault, NemesisKind, WorkloadKind};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn well_formed(kind: WorkloadKind, inv: &rollcall_workloads::Invocation) -> Result<(), String> {
    if inv.ops.is_empty() || inv.ops.len() > 64 {
        return Err(format!("{} micro-ops", inv.ops.len()));
    }
    match kind {
        WorkloadKind::Append | WorkloadKind::RwRegister => {
            let arr = inv.value.as_array().ok_or("txn value is not an array")?;
            if inv.f != "txn" || arr.len() != inv.ops.len() || !(1..=4).contains(&arr.len()) {
                return Err(format!("bad txn {inv:?}"));
            }
            for (m, op) in arr.iter().zip(&inv.ops) {
                let ok = match (m.as_array().map(|a| a.as_slice()), op) {
                    (Some([f, k, Value::Null]), Op::Read(key)) => f == "r" && k == key,
                    (Some([f, k, v]), Op::Append(key, x)) if kind == WorkloadKind::Append => {
                        f == "append" && k == key && v.as_i64() == Some(*x)
                    }
                    (Some([f, k, v]), Op::Write(key, x)) if kind == WorkloadKind::RwRegister => {
                        f == "w" && k == key && v.as_i64() == Some(*x)
                    }
                    _ => false,
                };
                if !ok {
                    return Err(format!("micro-op {m} does not match {op:?}"));
                }
            }
        }
        WorkloadKind::Register => {
            let [Value::String(k), v] = inv.value.as_array().map(|a| a.as_slice()).unwrap_or(&[])
            else {
                return Err(format!("register value {}", inv.value));
            };
            let ok = match (inv.f.as_str(), inv.ops.as_slice()) {
                ("read", [Op::Read(key)]) => key == k && v.is_null(),
                ("write", [Op::Write(key, x)]) => key == k && v.as_i64() == Some(*x),
                ("cas", [Op::Cas(key, o, n)]) => key == k && *v == serde_json::json!([o, n]),
                _ => false,
            };
            if !ok {
                return Err(format!("register op {inv:?}"));
            }
        }
        WorkloadKind::Bank => match (inv.f.as_str(), inv.ops.as_slice()) {
            ("read", ops) => {
                if !ops.iter().all(|o| matches!(o, Op::Read(_))) {
                    return Err("bank read with a write".into());
                }
            }
            ("transfer", [Op::Append(a, x), Op::Append(b, y)]) => {
                if a == b || *x != -*y || *y <= 0 || inv.value["amount"].as_i64() != Some(*y) {
                    return Err(format!("bad transfer {inv:?}"));
                }
            }
            _ => return Err(format!("bank op {inv:?}")),
        },
        WorkloadKind::Mixed => {
            let part = rollcall_workloads::mixed::SubWorkload::of(&inv.f, &inv.value)
                .ok_or_else(|| format!("mixed op of no part {inv:?}"))?;
            return well_formed(part, inv);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn generated_ops_are_well_formed((kind, ops) in op_sequence()) {
        for inv in &ops {
            if let Err(e) = well_formed(kind, inv) {
                prop_assert!(false, "{}", e);
            }
        }
    }

    #[test]
    fn append_values_are_unique_per_key(seed in any::<u64>(), len in 1usize..600) {
        let mut seen: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
        for inv in ops_from_seed(WorkloadKind::Append, seed, len, 8) {
            for op in &inv.ops {
                if let Op::Append(k, v) = op {
                    prop_assert!(seen.entry(k.clone()).or_default().insert(*v), "{} appended twice to {}", v, k);
                }
            }
        }
    }

    #[test]
    fn same_seed_same_ops(kind in rollcall_workloads::strategies::workload_kind(), seed in any::<u64>()) {
        prop_assert_eq!(ops_from_seed(kind, seed, 100, 4), ops_from_seed(kind, seed, 100, 4));
    }

    #[test]
    fn schedules_are_well_ordered((spec, sched) in fault_schedule()) {
        let mut prev_end = 0u64;
        let mut members: BTreeSet<String> = spec.nodes.iter().cloned().collect();
        let mut fails = 0;
        for p in &sched {
            prop_assert!(spec.kinds.contains(&p.fault.kind()));
            if spec.max_concurrent <= 1 {
                prop_assert!(p.start_ns >= prev_end, "overlapping faults");
            }
            prop_assert!(p.start_ns > 0);
            match p.stop_ns {
                Some(s) => {
                    prop_assert!(s > p.start_ns);
                    prop_assert!(s <= spec.time_limit_ns);
                    prev_end = s;
                }
                None => {
                    prop_assert_eq!(p.fault.kind(), NemesisKind::FailNode);
                    prev_end = p.start_ns;
                }
            }
            match &p.fault {
                Fault::AddNode { node } => {
                    prop_assert!(spec.spares.contains(node));
                    prop_assert!(members.insert(node.clone()), "spare added twice");
                }
                Fault::FailNode { node } => {
                    fails += 1;
                    prop_assert!(members.remove(node));
                    prop_assert!(members.len() >= spec.min_roster.max(3));
                }
                Fault::Kill { nodes } | Fault::Pause { nodes } => {
                    prop_assert!(!nodes.is_empty());
                    prop_assert!(nodes.iter().all(|n| members.contains(n)));
                }
                Fault::Partition { blocked, .. } => {
                    prop_assert!(blocked.iter().all(|(a, b)| a != b && members.contains(a) && members.contains(b)));
                }
                Fault::DuplicateKey { node, duplicate } => {
                    prop_assert!(members.contains(node));
                    prop_assert_ne!(node, duplicate);
                }
                // One member at a time: always a minority.
                Fault::Disk { node, .. } => prop_assert!(members.contains(node)),
                Fault::Flaky { links, .. } | Fault::Slow { links, .. } => {
                    prop_assert!(links.iter().all(|(a, b)| a != b && members.contains(a) && members.contains(b)));
                }
                Fault::CrashAll => {}
                Fault::MuteProposals { nodes } => prop_assert!(nodes.iter().all(|n| members.contains(n))),
                // Issue 16: every link between members, both ways, delayed past the
                // base timeout by at most 3x, jitter at most half of it.
                Fault::Async { links, delay_ms, jitter_ms } => {
                    let b = spec.async_base_ms();
                    prop_assert!((b..=3 * b).contains(delay_ms));
                    prop_assert!(*jitter_ms <= b / 2);
                    prop_assert!(links.iter().all(|(a, b)| a != b && members.contains(a) && members.contains(b)));
                    prop_assert_eq!(links.len(), members.len() * (members.len() - 1));
                }
                Fault::Clock { node, rate_pct, jump_ms } => {
                    prop_assert!(members.contains(node));
                    prop_assert!((50..=200).contains(rate_pct));
                    prop_assert!(jump_ms.abs() <= 2000);
                }
                Fault::Byzantine { nodes, .. } => {
                    // Drawn schedules stay within the fault model (f = ⌊(n−1)/3⌋).
                    prop_assert!(!nodes.is_empty());
                    prop_assert!(nodes.len() <= rollcall_workloads::max_faulty(members.len()));
                    prop_assert!(nodes.iter().all(|n| members.contains(n)));
                }
            }
        }
        prop_assert!(fails <= 1);
    }

    /// Issue 16: never more than K intervals at once, each of its own kind, within
    /// the fault model (the composition rules of `overlap`), whatever K is.
    #[test]
    fn schedules_keep_the_concurrency_limit_and_the_fault_model((spec, sched) in fault_schedule()) {
        // K = 1 is the schedule of before issue 16, drawn as it was: it does not know
        // the rule that a fail-node victim counts against f for the rest of the run.
        if spec.max_concurrent > 1 {
            prop_assert_eq!(rollcall_workloads::overlap::check_composition(&spec, &sched), Ok(()));
        }
        let mut most = 0;
        for p in &sched {
            let at = p.start_ns;
            let active = sched
                .iter()
                .filter(|q| q.start_ns <= at && q.stop_ns.is_some_and(|s| s > at))
                .count();
            most = most.max(active);
            prop_assert!(p.stop_ns.is_none_or(|s| s <= spec.time_limit_ns));
        }
        prop_assert!(most <= spec.max_concurrent.max(1), "{} at once, K = {}", most, spec.max_concurrent);
    }
}

/// With K = 1 the planner draws exactly the one-at-a-time schedule of before issue
/// 16 (the golden runs depend on it): never two faults at once, whatever the seed.
#[test]
fn k1_schedules_never_overlap_and_k3_ones_do() {
    use rand::SeedableRng;
    let spec = |k| rollcall_workloads::PlanSpec {
        kinds: NemesisKind::ALL.to_vec(),
        interval_ns: 2_000_000_000,
        time_limit_ns: 40_000_000_000,
        nodes: (1..=4).map(|i| format!("n{i}")).collect(),
        spares: vec!["n5".into()],
        min_roster: 3,
        max_concurrent: k,
        base_timeout_ms: 220,
    };
    let overlaps = |p: &[rollcall_workloads::PlannedFault]| {
        p.windows(2)
            .any(|w| w[0].stop_ns.is_some_and(|s| s > w[1].start_ns))
    };
    let mut any = false;
    for seed in 0..30 {
        let draw = |k| {
            rollcall_workloads::plan(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed), &spec(k))
        };
        assert!(!overlaps(&draw(1)), "seed {seed}");
        assert_eq!(draw(0), draw(1), "K = 0 is K = 1");
        any |= overlaps(&draw(3));
    }
    assert!(any, "K = 3 never overlapped");
}

#[test]
fn nemesis_list_parsing() {
    assert_eq!(
        NemesisKind::parse_list("kill, partition,kill").unwrap(),
        vec![NemesisKind::Partition, NemesisKind::Kill]
    );
    assert_eq!(
        NemesisKind::parse_list("all").unwrap(),
        NemesisKind::ALL.to_vec(),
        "all is every kind"
    );
    assert_eq!(NemesisKind::ALL.len(), 13);
    assert!(NemesisKind::parse_list("kill,explode").is_err());
    assert!(NemesisKind::parse_list("").unwrap().is_empty());
}
