//! Tests across the five checkers: a valid run passes all of them, garbage never
//! panics, and a model node with one wrong formula ([`Bugs`]) builds chains the
//! checkers find invalid.

use serde_json::json;

use super::fixture::*;
use super::*;
use crate::history::History;
use crate::oracle::wire::{Tx, TxBody};
use crate::result::Validity;

#[test]
fn valid_cluster_passes_every_checker() {
    let run = standard();
    let rs = check_cluster(&run);
    let names: Vec<&str> = rs.iter().map(|r| r.checker.as_str()).collect();
    assert_eq!(names, [AGREEMENT, ROSTER, EVICTION, ADD_NODE, LIVENESS]);
    for r in &rs {
        assert_eq!(r.validity, Validity::Valid, "{}: {r:#?}", r.checker);
    }
    // The scenario really holds an add and an eviction.
    let ev = by_name(&rs, EVICTION);
    assert_eq!(
        ev.details["evictions"],
        json!([{"height": 12, "id": key(4).id().to_hex()}])
    );
    assert_eq!(ev.details["fail_node_victims"][0]["evicted_at"], json!(12));
    let add = by_name(&rs, ADD_NODE);
    assert_eq!(add.details["adds"][0]["joined_at"], json!(3));
    // The trait objects give the same verdicts.
    let checkers: Vec<Box<dyn ClusterChecker>> = vec![
        Box::new(ChainAgreement),
        Box::new(RosterAgreement),
        Box::new(Eviction),
        Box::new(AddNodeChecker),
        Box::new(Liveness),
    ];
    for c in checkers {
        let r = c.check(&run);
        assert_eq!(r.checker, c.name());
        assert_eq!(r.validity, Validity::Valid);
    }
}

#[test]
fn garbage_dumps_never_panic() {
    let mut run = standard();
    run.nodes[0].chain.swap(3, 7);
    run.nodes[1].chain[4].block.height = 99;
    run.nodes[2].chain[0].block.last_commit = run.nodes[2].chain[1].block.last_commit.clone();
    run.nodes[3].status = Some(json!({"height": "x", "roster": 7}));
    run.nodes[4].status = Some(json!({"height": 1000, "roster": []}));
    run.nodes[4].chain.clear();
    let rs = check_cluster(&run);
    assert_eq!(rs.len(), 5);
    assert_eq!(rs[0].validity, Validity::Invalid);
    assert!(has(&rs[0], "dump-out-of-order", Some(4)));
    let empty = ClusterRun {
        genesis: run.genesis.clone(),
        nodes: vec![],
        history: History::default(),
        liveness_bound_ns: 1,
        fault_timing: None,
    };
    let rs = check_cluster(&empty);
    assert_eq!(rs.len(), 5);
}

/// The standard run, with every node holding the chain a model node with `bugs`
/// built.
fn buggy_run(bugs: Bugs, add: &dyn Fn(&Builder) -> Tx) -> ClusterRun {
    run_of(
        &build_buggy(bugs, add, &mut |_, _| {}),
        history("ok", 30, &[]),
    )
}

fn signed_add(b: &Builder) -> Tx {
    b.add_tx(5)
}

#[test]
fn a_node_whose_quorum_is_one_short_is_caught() {
    // q(n) - 1 signatures on every certificate: invalid at every height, and the
    // last_commit copies are caught too.
    let run = buggy_run(
        Bugs {
            quorum_delta: -1,
            ..Bugs::default()
        },
        &signed_add,
    );
    let rs = check_cluster(&run);
    let r = by_name(&rs, AGREEMENT);
    assert_eq!(r.validity, Validity::Invalid, "{r:#?}");
    for h in [1, 2, 10] {
        assert!(has(r, "too-few-signatures", Some(h)), "height {h}: {r:#?}");
    }
    assert!(r
        .anomalies
        .iter()
        .any(|a| a.extra["which"] == "last_commit"));
    // Every one of the 30 certificates and 29 last_commits (only 20 are listed).
    assert_eq!(r.details["anomaly_counts"]["too-few-signatures"], json!(59));
}

#[test]
fn a_node_with_a_shifted_proposer_is_caught() {
    let run = buggy_run(
        Bugs {
            proposer_shift: 1,
            ..Bugs::default()
        },
        &signed_add,
    );
    assert_caught(&run, AGREEMENT, "wrong-proposer", Some(1));
    let r = by_name(&check_cluster(&run), AGREEMENT).clone();
    assert!(
        r.anomalies.iter().all(|a| a.kind == "wrong-proposer"),
        "{r:#?}"
    );
}

#[test]
fn a_node_that_evicts_one_block_early_is_caught() {
    // The honest chain evicts n4 at 12; the bug evicts it at 11.
    let run = buggy_run(
        Bugs {
            evict_early: true,
            ..Bugs::default()
        },
        &signed_add,
    );
    assert_caught(&run, EVICTION, "eviction-not-allowed", Some(11));
    let ev = by_name(&check_cluster(&run), EVICTION).clone();
    assert_eq!(
        ev.details["evictions"],
        json!([{"height": 11, "id": key(4).id().to_hex()}])
    );
}

#[test]
fn a_node_that_applies_an_unsigned_add_node_is_caught() {
    let unsigned = |b: &Builder| {
        let mut tx = b.add_tx(5);
        if let TxBody::AddNode { sig, .. } = &mut tx.body {
            *sig = None;
        }
        tx
    };
    let run = buggy_run(
        Bugs {
            admit_unsigned: true,
            ..Bugs::default()
        },
        &unsigned,
    );
    // From height 4 the node's roster holds n5, the oracle's does not.
    assert_caught(&run, ROSTER, "roster-hash-mismatch", Some(4));
    assert_caught(&run, ROSTER, "wrong-epoch", Some(4));
    // The same unsigned AddNode in an honest node's chain changes nothing.
    let honest = run_of(
        &build_buggy(Bugs::default(), &unsigned, &mut |_, _| {}),
        history("ok", 30, &[]),
    );
    let rs = check_cluster(&honest);
    assert_eq!(by_name(&rs, ROSTER).validity, Validity::Valid);
    assert_eq!(by_name(&rs, AGREEMENT).validity, Validity::Valid);
    // ...and the acknowledged add the history claims is missing.
    assert_caught(&honest, ADD_NODE, "acknowledged-add-missing", Some(3));
}
