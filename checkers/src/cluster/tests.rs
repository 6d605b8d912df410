//! Tests across the five checkers: a valid run passes all of them, garbage never
//! panics, and a model node with one wrong formula ([`Bugs`]) builds chains the
//! checkers find invalid.

use serde_json::json;

use super::fixture::*;
use super::*;
use crate::history::History;
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
    };
    let rs = check_cluster(&empty);
    assert_eq!(rs.len(), 5);
}
