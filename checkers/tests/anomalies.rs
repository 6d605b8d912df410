//! One hand-written history per anomaly the checkers name (harness.md §7), each
//! detected under the right name, and the same history made valid by one change.

mod common;

use common::{concurrent, B};
use rollcall_checkers::bank::BankChecker;
use rollcall_checkers::elle::ElleChecker;
use rollcall_checkers::linearizable::LinearizableChecker;
use rollcall_checkers::set::SetChecker;
use rollcall_checkers::{CheckResult, Checker, History, Validity};
use serde_json::json;
use std::collections::BTreeMap;

fn kinds(r: &CheckResult) -> Vec<String> {
    r.anomalies.iter().map(|a| a.kind.clone()).collect()
}

fn elle(h: &History) -> CheckResult {
    ElleChecker::default().check(h)
}

#[track_caller]
fn assert_elle(h: &History, kind: &str) -> CheckResult {
    let r = elle(h);
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
    assert!(
        kinds(&r).contains(&kind.to_string()),
        "expected {kind}, got {:?}",
        kinds(&r)
    );
    r
}

#[track_caller]
fn assert_elle_valid(h: &History) {
    let r = elle(h);
    assert_eq!(r.validity, Validity::Valid, "{r:#?}");
    assert!(r.anomalies.is_empty());
}

#[test]
fn g0_write_cycle() {
    let mk = |y: serde_json::Value| {
        concurrent(&[
            (1, json!([["append", "x", 1], ["append", "y", 2]])),
            (2, json!([["append", "x", 2], ["append", "y", 1]])),
            (3, json!([["r", "x", [1, 2]], ["r", "y", y]])),
        ])
    };
    let r = assert_elle(&mk(json!([1, 2])), "G0");
    let a = r.anomalies.iter().find(|a| a.kind == "G0").unwrap();
    assert!(
        a.explanation.contains("appended 1 to x before T"),
        "{}",
        a.explanation
    );
    assert!(a.explanation.contains("(ww)"));
    assert_eq!(a.extra["edges"].as_array().unwrap().len(), 2);
    assert!(r.details["ruled_out"]
        .as_array()
        .unwrap()
        .contains(&json!("read-uncommitted")));
    assert_elle_valid(&mk(json!([2, 1])));
}

#[test]
fn g1a_aborted_read() {
    let mk = |fail: bool| {
        let mut b = B::new();
        b.tinv(1, json!([["append", "x", 1]]));
        if fail {
            b.tfail(1, json!([["append", "x", 1]]));
        } else {
            b.tok(1, json!([["append", "x", 1]]));
        }
        b.txn(2, json!([["r", "x", [1]]]));
        b.build()
    };
    let r = assert_elle(&mk(true), "G1a");
    assert_eq!(r.anomalies[0].ops, vec![0, 2]);
    assert_elle_valid(&mk(false));
}

#[test]
fn g1b_intermediate_read() {
    let mk = |read: serde_json::Value| {
        concurrent(&[
            (1, json!([["append", "x", 1], ["append", "x", 2]])),
            (2, json!([["r", "x", read]])),
        ])
    };
    assert_elle(&mk(json!([1])), "G1b");
    assert_elle_valid(&mk(json!([1, 2])));
}

#[test]
fn g1c_circular_information_flow() {
    let mk = |t1_reads_y: serde_json::Value| {
        concurrent(&[
            (1, json!([["append", "x", 1], ["r", "y", t1_reads_y]])),
            (2, json!([["append", "y", 1], ["r", "x", [1]]])),
        ])
    };
    let r = assert_elle(&mk(json!([1])), "G1c");
    let a = r.anomalies.iter().find(|a| a.kind == "G1c").unwrap();
    assert!(a.explanation.contains("(wr)"));
    assert_elle_valid(&mk(json!([])));
}

#[test]
fn g_single_read_skew() {
    let mk = |t2_reads_x: serde_json::Value| {
        concurrent(&[
            (1, json!([["append", "x", 1], ["append", "y", 1]])),
            (2, json!([["r", "x", t2_reads_x], ["r", "y", [1]]])),
            (3, json!([["r", "x", [1]]])),
        ])
    };
    let r = assert_elle(&mk(json!([])), "G-single-item");
    assert!(!kinds(&r).contains(&"G2-item".to_string()));
    let a = r
        .anomalies
        .iter()
        .find(|a| a.kind == "G-single-item")
        .unwrap();
    assert!(a.explanation.contains("(rw)"));
    assert!(r.details["ruled_out"]
        .as_array()
        .unwrap()
        .contains(&json!("snapshot-isolation")));
    assert_elle_valid(&mk(json!([1])));
    // G-single does not rule out read committed
    let rc = ElleChecker::with_model("read-committed")
        .unwrap()
        .check(&mk(json!([])));
    assert_eq!(rc.validity, Validity::Valid);
}

#[test]
fn g2_item_write_skew() {
    let mk = |t2_reads_y: serde_json::Value| {
        concurrent(&[
            (1, json!([["r", "x", []], ["append", "y", 1]])),
            (2, json!([["r", "y", t2_reads_y], ["append", "x", 1]])),
            (3, json!([["r", "x", [1]], ["r", "y", [1]]])),
        ])
    };
    let r = assert_elle(&mk(json!([])), "G2-item");
    assert!(!kinds(&r).contains(&"G-single".to_string()));
    // write skew is allowed under snapshot isolation
    let si = ElleChecker::with_model("snapshot-isolation")
        .unwrap()
        .check(&mk(json!([])));
    assert_eq!(si.validity, Validity::Valid);
    assert_elle_valid(&mk(json!([1])));
}

#[test]
fn g_single_realtime_stale_read() {
    let mk = |read: serde_json::Value| {
        let mut b = B::new();
        b.tinv(3, json!([["r", "x", [1]]]));
        b.txn(1, json!([["append", "x", 1]]));
        b.txn(2, json!([["r", "x", read]]));
        b.tok(3, json!([["r", "x", [1]]]));
        b.build()
    };
    let r = assert_elle(&mk(json!([])), "G-single-item-realtime");
    assert_eq!(kinds(&r), vec!["G-single-item-realtime"]);
    let a = &r.anomalies[0];
    assert!(a.explanation.contains("(realtime)"), "{}", a.explanation);
    // serializable allows it: only the realtime order is violated
    let ser = ElleChecker::with_model("serializable")
        .unwrap()
        .check(&mk(json!([])));
    assert_eq!(ser.validity, Validity::Valid);
    assert_elle_valid(&mk(json!([1])));
}

#[test]
fn g_single_process() {
    let mk = |read: serde_json::Value| {
        let mut b = B::new();
        b.tinv(3, json!([["r", "x", [1]]]));
        b.txn(1, json!([["append", "x", 1]]));
        b.txn(1, json!([["r", "x", read]]));
        b.tok(3, json!([["r", "x", [1]]]));
        b.build()
    };
    // Under strict serializability Elle adds realtime edges (which subsume the
    // process order); a strong-session model adds process edges instead.
    assert_elle(&mk(json!([])), "G-single-item-realtime");
    let r = ElleChecker::with_model("strong-session-serializable")
        .unwrap()
        .check(&mk(json!([])));
    assert_eq!(r.validity, Validity::Invalid);
    assert_eq!(kinds(&r), vec!["G-single-item-process"]);
    assert!(r.anomalies[0].explanation.contains("(process)"));
    assert!(r.details["ruled_out"]
        .as_array()
        .unwrap()
        .contains(&json!("strong-session-serializable")));
    assert_elle_valid(&mk(json!([1])));
}

fn g2_realtime(same_process: bool, t3_reads_y: serde_json::Value) -> History {
    let p3 = if same_process { 2 } else { 3 };
    let t1 = json!([["r", "x", []], ["r", "z", [1]]]);
    let t2 = json!([["append", "x", 1]]);
    let t3 = json!([["r", "y", t3_reads_y]]);
    let t4 = json!([["append", "y", 1], ["append", "z", 1]]);
    let t5 = json!([["r", "x", [1]], ["r", "y", [1]]]);
    let mut b = B::new();
    b.tinv(5, t5.clone());
    b.tinv(1, t1.clone());
    b.tinv(2, t2.clone());
    b.tinv(4, t4.clone());
    b.tok(2, t2);
    b.tinv(p3, t3.clone());
    b.tok(4, t4);
    b.tok(p3, t3);
    b.tok(1, t1);
    b.tok(5, t5);
    b.build()
}

#[test]
fn g2_item_realtime_and_process() {
    // T1 -rw-> T2 -rt-> T3 -rw-> T4 -wr-> T1: two rw edges, never adjacent,
    // so Elle names it G-nonadjacent (item), which rules out snapshot isolation.
    let r = assert_elle(
        &g2_realtime(false, json!([])),
        "G-nonadjacent-item-realtime",
    );
    assert_eq!(kinds(&r), vec!["G-nonadjacent-item-realtime"]);
    assert!(r.details["ruled_out"]
        .as_array()
        .unwrap()
        .contains(&json!("strong-snapshot-isolation")));
    let session = ElleChecker::with_model("strong-session-snapshot-isolation").unwrap();
    let r = session.check(&g2_realtime(true, json!([])));
    assert_eq!(kinds(&r), vec!["G-nonadjacent-item-process"]);
    assert_eq!(r.validity, Validity::Invalid);
    assert!(!kinds(&r).contains(&"G2-item".to_string()));
    assert_eq!(
        session.check(&g2_realtime(true, json!([1]))).validity,
        Validity::Valid
    );
    assert_elle_valid(&g2_realtime(false, json!([1])));
    assert_elle_valid(&g2_realtime(true, json!([1])));
}

#[test]
fn internal_inconsistency() {
    let mk = |read: serde_json::Value| {
        concurrent(&[
            (1, json!([["append", "x", 5], ["r", "x", read]])),
            (2, json!([["r", "x", [5]]])),
        ])
    };
    assert_elle(&mk(json!([])), "internal");
    assert_elle_valid(&mk(json!([5])));
}

#[test]
fn duplicate_elements() {
    let mk = |read: serde_json::Value| {
        concurrent(&[
            (1, json!([["append", "x", 1]])),
            (2, json!([["r", "x", read]])),
        ])
    };
    assert_elle(&mk(json!([1, 1])), "duplicate-elements");
    assert_elle_valid(&mk(json!([1])));
}

#[test]
fn incompatible_order() {
    let mk = |read: serde_json::Value| {
        concurrent(&[
            (1, json!([["append", "x", 1]])),
            (2, json!([["append", "x", 2]])),
            (3, json!([["r", "x", [1, 2]]])),
            (4, json!([["r", "x", read]])),
        ])
    };
    let r = assert_elle(&mk(json!([2, 1])), "incompatible-order");
    assert!(r.anomalies[0].explanation.contains("[1 2]"));
    assert_elle_valid(&mk(json!([1, 2])));
}

#[test]
fn lost_update() {
    let mk = |t2_read: serde_json::Value| {
        let mut b = B::new();
        b.txn(9, json!([["append", "x", 0]]));
        let t1 = json!([["r", "x", [0]], ["append", "x", 1]]);
        let t2 = json!([["r", "x", t2_read], ["append", "x", 2]]);
        let t3 = json!([["r", "x", [0, 1, 2]]]);
        b.tinv(1, t1.clone())
            .tinv(2, t2.clone())
            .tinv(3, t3.clone());
        b.tok(1, t1).tok(2, t2).tok(3, t3);
        b.build()
    };
    assert_elle(&mk(json!([0])), "lost-update");
    assert_elle_valid(&mk(json!([0, 1])));
}

// ------------------------------------------------------------ linearizable

fn lin(h: &History) -> CheckResult {
    LinearizableChecker::default().check(h)
}

#[test]
fn nonlinearizable_register_read() {
    // write 1 completes, then a read sees 2 which nobody wrote... until the fix.
    let mk = |read: i64| {
        let mut b = B::new();
        b.inv(1, "write", json!(["a", 1]))
            .ok(1, "write", json!(["a", 1]));
        b.inv(2, "read", json!(["a", null]))
            .ok(2, "read", json!(["a", read]));
        b.build()
    };
    let r = lin(&mk(2));
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
    assert_eq!(kinds(&r), vec!["nonlinearizable"]);
    assert_eq!(r.anomalies[0].ops[0], 2, "the stuck op is the read");
    assert!(r.anomalies[0].explanation.contains("read a -> 2"));
    assert_eq!(lin(&mk(1)).validity, Validity::Valid);
}

#[test]
fn stale_register_read() {
    // w1 then w2 complete; a later read still sees 1.
    let mk = |read: i64| {
        let mut b = B::new();
        b.inv(1, "write", json!(["a", 1]))
            .ok(1, "write", json!(["a", 1]));
        b.inv(1, "write", json!(["a", 2]))
            .ok(1, "write", json!(["a", 2]));
        // a concurrent cas keeps it interesting
        b.inv(3, "cas", json!(["a", [2, 3]]));
        b.inv(2, "read", json!(["a", null]))
            .ok(2, "read", json!(["a", read]));
        b.ok(3, "cas", json!(["a", [2, 3]]));
        b.build()
    };
    let r = lin(&mk(1));
    assert_eq!(r.validity, Validity::Invalid);
    let a = &r.anomalies[0];
    assert_eq!(a.ops[0], 5, "{a:#?}");
    assert!(a.extra["concurrent"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["invoke"] == 4));
    assert_eq!(lin(&mk(2)).validity, Validity::Valid);
    assert_eq!(lin(&mk(3)).validity, Validity::Valid);
}

#[test]
fn info_write_may_or_may_not_happen_and_fail_never_does() {
    let mk = |kind: &str, read: serde_json::Value| {
        let mut b = B::new();
        b.inv(1, "write", json!(["a", 1]))
            .ev(1, kind, "write", json!(["a", 1]));
        b.inv(2, "read", json!(["a", null]))
            .ok(2, "read", json!(["a", read]));
        b.build()
    };
    assert_eq!(lin(&mk("info", json!(1))).validity, Validity::Valid);
    assert_eq!(lin(&mk("info", json!(null))).validity, Validity::Valid);
    assert_eq!(lin(&mk("fail", json!(null))).validity, Validity::Valid);
    assert_eq!(lin(&mk("fail", json!(1))).validity, Validity::Invalid);
}

#[test]
fn time_limit_yields_unknown() {
    let h = rollcall_checkers::gen::register_history(&rollcall_checkers::gen::GenConfig {
        ops: 300,
        processes: 5,
        keys: 1,
        seed: 3,
        ..Default::default()
    });
    // 300 ops on one key need at least 300 search steps; the clock is checked
    // every 256, by which time a 1 ns budget is spent.
    let r = LinearizableChecker::with_time_limit(std::time::Duration::from_nanos(1)).check(&h);
    assert_eq!(r.validity, Validity::Unknown, "{r:#?}");
    assert_eq!(r.details["unknown_keys"]["0"], "time limit reached");
    let big = LinearizableChecker::default().check(&h);
    assert_eq!(big.validity, Validity::Valid);
}

// ------------------------------------------------------------ set and bank

fn set_history() -> History {
    let mut b = B::new();
    for (p, ty) in [(1, "ok"), (2, "fail"), (3, "info"), (4, "ok")] {
        b.inv(p, "txn", json!([]));
        b.ev(p, ty, "txn", json!([]));
    }
    let mut text = String::new();
    for (i, line) in b.jsonl().lines().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["tx_id"] = json!(["t1", "t2", "t3", "t4"][i / 2]);
        text.push_str(&format!("{v}\n"));
    }
    History::parse_jsonl(&text).unwrap()
}

fn chain(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn set_lost_and_duplicated_elements() {
    let h = set_history();
    let ok = SetChecker::new(chain(&[("t1", 1), ("t3", 1), ("t4", 1)])).check(&h);
    assert_eq!(ok.validity, Validity::Valid, "{ok:#?}");
    let ok2 = SetChecker::new(chain(&[("t1", 1), ("t4", 1)])).check(&h);
    assert_eq!(ok2.validity, Validity::Valid, "info may be absent");

    let lost = SetChecker::new(chain(&[("t1", 1)])).check(&h);
    assert_eq!(lost.validity, Validity::Invalid);
    assert_eq!(kinds(&lost), vec!["lost"]);
    assert_eq!(lost.anomalies[0].ops, vec![6]);

    let dup = SetChecker::new(chain(&[("t1", 2), ("t4", 1)])).check(&h);
    assert_eq!(kinds(&dup), vec!["duplicated"]);
    assert_eq!(dup.anomalies[0].ops, vec![0]);

    let failed = SetChecker::new(chain(&[("t1", 1), ("t2", 1), ("t4", 1)])).check(&h);
    assert_eq!(kinds(&failed), vec!["failed-but-committed"]);
}

#[test]
fn bank_total_violation() {
    let mk = |b1: i64| {
        let mut b = B::new();
        b.inv(1, "transfer", json!({"from": "a", "to": "b", "amount": 5}))
            .ok(1, "transfer", json!({"from": "a", "to": "b", "amount": 5}));
        b.inv(2, "read", json!(null))
            .ok(2, "read", json!({"a": 5, "b": b1}));
        b.build()
    };
    let c = BankChecker::new(20);
    assert_eq!(c.check(&mk(15)).validity, Validity::Valid);
    let r = c.check(&mk(10));
    assert_eq!(r.validity, Validity::Invalid);
    assert_eq!(kinds(&r), vec!["wrong-total"]);
    assert_eq!(r.anomalies[0].ops, vec![2]);
    let neg = BankChecker::new(0).check(&mk(-5));
    assert_eq!(kinds(&neg), vec!["negative-balance"]);
}
