//! The `rw-register` workload end to end on the simulator (harness.md §4, issue
//! 15): a seeded run records Elle-style read-write register transactions, with
//! unique writes per key and reads that name the write they saw, under faults.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rollcall::checks::{checker_name, infer_workload};
use rollcall::options::TestOptions;
use rollcall::progress::Progress;
use rollcall::run::{cluster, run, Seeds};
use rollcall::sim::{sim_timeouts, SimBackend, SimOptions};
use rollcall_checkers::{History, OpType};
use rollcall_workloads::{NemesisKind, WorkloadKind};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn simulate_history(opts: &TestOptions) -> History {
    let spec = cluster(opts);
    let mut backend = SimBackend::new(
        spec.clone(),
        SimOptions {
            timeouts: sim_timeouts(),
            ..SimOptions::default()
        },
        ChaCha8Rng::seed_from_u64(Seeds::from_seed(opts.seed).backend),
    )
    .unwrap();
    let progress = Progress::new(opts.time_limit_s, true);
    let out = run(opts, &spec, &mut backend, &progress).unwrap();
    History::parse_jsonl(&out.history).unwrap()
}

/// Micro-ops as (f, key, value).
fn micro_ops(v: &Value) -> Vec<(String, String, Value)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let m = m.as_array().unwrap();
            assert_eq!(m.len(), 3, "{m:?}");
            (
                m[0].as_str().unwrap().to_string(),
                m[1].as_str().unwrap().to_string(),
                m[2].clone(),
            )
        })
        .collect()
}

#[test]
fn a_rw_register_run_records_read_write_transactions() {
    let opts = TestOptions {
        seed: 11,
        workload: WorkloadKind::RwRegister,
        time_limit_s: 10,
        nemesis: vec![NemesisKind::Partition, NemesisKind::Kill],
        nemesis_interval_s: 2,
        ..TestOptions::default()
    };
    // validate() also asks for the workload's checker, which may not be in this
    // build yet (elle-rw-register); the run itself needs only the workload.
    let h = simulate_history(&opts);
    assert!(h.ops().len() > 200, "only {} ops", h.ops().len());
    assert_eq!(infer_workload(&h), Some(WorkloadKind::RwRegister));
    assert_eq!(checker_name(WorkloadKind::RwRegister), "elle-rw-register");

    let mut writes: BTreeMap<(String, i64), u64> = BTreeMap::new();
    let mut reads_seen = Vec::new();
    let mut kinds = BTreeSet::new();
    for op in h.ops() {
        assert_eq!(op.f, "txn");
        assert!(op.tx_id.is_some(), "client op without tx_id");
        kinds.insert(format!("{:?}", op.kind));
        let mops = micro_ops(&op.invoke_value);
        // Workload transactions hold 1-4 micro-ops; the final reads read every key.
        let final_read = mops.iter().all(|(f, _, _)| f == "r");
        assert!(
            (1..=4).contains(&mops.len()) || final_read,
            "a transaction of {} micro-ops",
            mops.len()
        );
        for (f, k, v) in &mops {
            match f.as_str() {
                "w" => {
                    let v = v.as_i64().unwrap();
                    let again = writes.insert((k.clone(), v), op.invoke_index);
                    assert!(again.is_none(), "{k}={v} written twice");
                }
                "r" => assert!(v.is_null(), "invoke read with a value"),
                other => panic!("unexpected micro-op {other}"),
            }
        }
        if op.kind == OpType::Ok {
            let done = micro_ops(op.complete_value.as_ref().unwrap());
            assert_eq!(done.len(), mops.len());
            for ((f, k, v), (f0, k0, _)) in done.iter().zip(&mops) {
                assert_eq!((f, k), (f0, k0));
                if f == "r" && !v.is_null() {
                    reads_seen.push((k.clone(), v.as_i64().unwrap()));
                }
            }
        }
    }
    // Every value read was written by some transaction of the history.
    assert!(
        reads_seen.len() > 50,
        "only {} non-empty reads",
        reads_seen.len()
    );
    for r in &reads_seen {
        assert!(writes.contains_key(r), "read {r:?} of a value nobody wrote");
    }
    let keys: BTreeSet<&String> = writes.keys().map(|(k, _)| k).collect();
    assert!(keys.len() > 3, "keys never rotated: {keys:?}");
    assert!(kinds.contains("Ok"), "{kinds:?}");
}
