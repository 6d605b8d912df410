//! Elle's `:sequential-keys?` and `:linearizable-keys?` for rw-register
//! (rw_register.clj `version-graphs`): each history is valid without the option
//! and invalid with it, because only the per-key order the option assumes
//! orders two writes of `x`, and that order closes a cycle.

mod common;

use common::B;
use rollcall_checkers::elle::RwRegisterChecker;
use rollcall_checkers::{CheckResult, Checker, History, Validity};
use serde_json::json;

/// Serializable (no process or realtime edges of its own), with the options.
fn check(h: &History, sequential: bool, linearizable: bool) -> CheckResult {
    let mut c = RwRegisterChecker::with_model("serializable").unwrap();
    c.opts.sequential_keys = sequential;
    c.opts.linearizable_keys = linearizable;
    c.check(h)
}

fn kinds(r: &CheckResult) -> Vec<String> {
    r.anomalies.iter().map(|a| a.kind.clone()).collect()
}

/// `x` is written 1 then 2 by processes `p1` then `p2`, one after the other in
/// real time. T3 reads x = 2 and writes y = 1; T4 reads y = 1 but x = 1. If 1
/// precedes 2, T4 must come before T2 (rw) yet after it (T2 wr T3 wr T4):
/// G-single. Nothing but the assumed per-key order says that 1 precedes 2.
fn two_writes_then_a_stale_read(p1: i64, p2: i64, stale: i64) -> History {
    let mut b = B::new();
    b.txn(p1, json!([["w", "x", 1]]));
    b.txn(p2, json!([["w", "x", 2]]));
    b.txn(3, json!([["r", "x", 2], ["w", "y", 1]]));
    b.txn(4, json!([["r", "y", 1], ["r", "x", stale]]));
    b.build()
}

#[track_caller]
fn g_single(r: &CheckResult) {
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
    // G-single, or Elle's G-single-item when the rw edge and a wr edge share x.
    assert!(
        kinds(r).iter().any(|k| k.starts_with("G-single")),
        "{:?}",
        kinds(r)
    );
}

#[track_caller]
fn valid(r: &CheckResult) {
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");
}

#[test]
fn sequential_keys_orders_versions_by_process() {
    let h = two_writes_then_a_stale_read(1, 1, 1);
    valid(&check(&h, false, false));
    g_single(&check(&h, true, false));
    // The same history reading the newer value is fine with the option too.
    valid(&check(&two_writes_then_a_stale_read(1, 1, 2), true, false));
    // Two processes: no process order between the writes, nothing inferred.
    valid(&check(&two_writes_then_a_stale_read(1, 2, 1), true, false));
}

/// As [`two_writes_then_a_stale_read`] on two processes, but T4 runs
/// concurrently with T2 and T3, so real time does not also order T3's read of 2
/// before T4's read of `stale`.
fn stale_read_concurrent_with_the_write(stale: i64) -> History {
    let t4 = json!([["r", "y", 1], ["r", "x", stale]]);
    let mut b = B::new();
    b.txn(1, json!([["w", "x", 1]]));
    b.tinv(4, t4.clone());
    b.txn(2, json!([["w", "x", 2]]));
    b.txn(3, json!([["r", "x", 2], ["w", "y", 1]]));
    b.tok(4, t4);
    b.build()
}

#[test]
fn linearizable_keys_orders_versions_by_real_time() {
    let h = stale_read_concurrent_with_the_write(1);
    valid(&check(&h, false, false));
    valid(&check(&h, true, false));
    g_single(&check(&h, false, true));
    valid(&check(
        &stale_read_concurrent_with_the_write(2),
        false,
        true,
    ));
    // All in sequence, T4's read of 1 after T3's read of 2 is itself a
    // per-key order 2 -> 1 against 1 -> 2: cyclic versions.
    let r = check(&two_writes_then_a_stale_read(1, 2, 1), false, true);
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
    assert!(kinds(&r).iter().any(|k| k == "cyclic-versions"));
}

#[test]
fn an_order_that_contradicts_the_initial_state_is_cyclic_versions() {
    // Process 1 writes x = 1, then reads nil: per-key sequential order says
    // 1 precedes nil, the initial state says nil precedes 1. Elle drops the
    // inference and reports cyclic-versions (ruling out PL-1 and above).
    let mut b = B::new();
    b.txn(1, json!([["w", "x", 1]]));
    b.txn(1, json!([["r", "x", null]]));
    let h = b.build();
    valid(&check(&h, false, false));
    let r = check(&h, true, false);
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
    let cyc = r
        .anomalies
        .iter()
        .find(|a| a.kind == "cyclic-versions")
        .expect("cyclic-versions");
    assert!(
        cyc.explanation.contains("sequential keys"),
        "{}",
        cyc.explanation
    );
    let mut ok = B::new();
    ok.txn(1, json!([["w", "x", 1]]));
    ok.txn(1, json!([["r", "x", 1]]));
    valid(&check(&ok.build(), true, true));
}
