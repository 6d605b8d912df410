//! proptest strategies over the generators: operation sequences of each workload
//! and fault schedules, both drawn through the real seeded generators so the
//! properties test exactly what a run executes.

use crate::faults::{plan, NemesisKind, PlanSpec, PlannedFault};
use crate::ops::{make, Invocation, WorkloadKind};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Any workload kind, `mixed` included.
pub fn workload_kind() -> impl Strategy<Value = WorkloadKind> {
    let mut all = WorkloadKind::ALL.to_vec();
    all.push(WorkloadKind::Mixed);
    prop::sample::select(all)
}

/// `len` invocations of `kind` by `processes` processes (round robin), from a seed.
pub fn ops_from_seed(kind: WorkloadKind, seed: u64, len: usize, processes: u64) -> Vec<Invocation> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut w = make(kind);
    (0..len)
        .map(|i| w.invoke(&mut rng, i as u64 % processes.max(1)))
        .collect()
}

/// A workload, and a sequence of its invocations generated from an arbitrary seed.
pub fn op_sequence() -> impl Strategy<Value = (WorkloadKind, Vec<Invocation>)> {
    (workload_kind(), any::<u64>(), 1usize..400, 1u64..16)
        .prop_map(|(k, seed, len, procs)| (k, ops_from_seed(k, seed, len, procs)))
}

/// A plan spec: 1–7 nodes, 0–2 spares, any subset of nemeses, short intervals,
/// one to four faults at once (`--max-concurrent-faults`).
pub fn plan_spec() -> impl Strategy<Value = PlanSpec> {
    (
        1usize..8,
        0usize..3,
        prop::sample::subsequence(NemesisKind::ALL.to_vec(), 0..=NemesisKind::ALL.len()),
        1u64..10,
        1u64..200,
        1usize..5,
        1usize..=4,
    )
        .prop_map(|(n, s, kinds, interval, limit, min_roster, k)| PlanSpec {
            kinds,
            interval_ns: interval * 1_000_000_000,
            time_limit_ns: limit * 1_000_000_000,
            nodes: (1..=n).map(|i| format!("n{i}")).collect(),
            spares: (n + 1..=n + s).map(|i| format!("n{i}")).collect(),
            min_roster,
            max_concurrent: k,
            base_timeout_ms: 220,
        })
}

/// A plan spec and the schedule planned for it from an arbitrary seed.
pub fn fault_schedule() -> impl Strategy<Value = (PlanSpec, Vec<PlannedFault>)> {
    (plan_spec(), any::<u64>()).prop_map(|(spec, seed)| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let p = plan(&mut rng, &spec);
        (spec, p)
    })
}
