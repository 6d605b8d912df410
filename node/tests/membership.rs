//! Adding consensus nodes while the network runs (protocol.md §4, seed 000), on real
//! processes.

mod common;

use common::Net;
use rollcall_node::types::Params;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Continuous appends against nodes 0..3 until `stop`; counts successes and failures.
fn start_load(
    net: Arc<Net>,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    bad: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut failures = Vec::new();
        let mut k = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let batch = (0..8).map(|j| {
                let net = net.clone();
                let id = format!("load-{}", k + j);
                async move {
                    let r = net
                        .append(((k + j) % 4) as usize, &id, "k", (k + j) as i64)
                        .await;
                    (id, r)
                }
            });
            for (id, (code, body)) in futures::future::join_all(batch).await {
                if code == 200 {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    bad.fetch_add(1, Ordering::Relaxed);
                    failures.push(format!("{id}: {code} {body}"));
                }
            }
            k += 8;
        }
        failures
    })
}

/// Whether `id` proposed a block or signed a certificate after `height`.
fn participates(chain: &[Value], id: &str, after: u64) -> (bool, bool) {
    let mut proposed = false;
    let mut signed = false;
    for b in chain {
        if b["block"]["height"].as_u64().unwrap_or(0) <= after {
            continue;
        }
        proposed |= b["block"]["proposer"] == id;
        signed |= b["cert"]["sigs"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x["validator"] == id));
    }
    (proposed, signed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_node_joins_under_load_without_failing_a_transaction() {
    let mut net = Net::start(22000, 4, 1, Params::default());
    for i in 0..4 {
        net.wait_healthy(i).await;
    }
    // The newcomer starts from the genesis with peer addresses only; it syncs as an
    // observer until it is added.
    net.spawn(4);
    net.wait_healthy(4).await;
    let net = Arc::new(net);
    let (stop, ok, bad) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let load = start_load(net.clone(), stop.clone(), ok.clone(), bad.clone());
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(net.status(4).await.unwrap()["role"], "syncing");
    let body = net.add_node_body(4, &net.operator, 1);
    let (code, res) = net.post(1, &body).await;
    assert_eq!(code, 200, "{res}");
    let joined_at = res["height"].as_u64().unwrap();
    // Epoch and roster change on every node; the newcomer becomes a validator.
    let me = net.id_hex(4);
    for i in 0..5 {
        let (n, me) = (net.clone(), me.clone());
        net.wait_for(&format!("node {i} sees the 5-node roster"), 20, || {
            let (n, me) = (n.clone(), me.clone());
            async move { n.roster_ids(i).await.contains(&me) }
        })
        .await;
    }
    let n4 = net.clone();
    net.wait_for("the newcomer is a validator", 20, || {
        let n4 = n4.clone();
        async move {
            n4.status(4)
                .await
                .is_some_and(|s| s["role"] == "validator" && s["epoch"] == 1)
        }
    })
    .await;
    let roster = net
        .get(0, &format!("/roster?height={}", joined_at + 1))
        .await
        .unwrap();
    assert_eq!(roster["roster"][4]["number"], 5);
    assert_eq!(roster["epoch"], 1);
    let before = net
        .get(0, &format!("/roster?height={joined_at}"))
        .await
        .unwrap();
    assert_eq!(before["roster"].as_array().unwrap().len(), 4);
    // Keep the load on while the newcomer takes turns proposing.
    net.wait_height(0, joined_at + 25, 30).await;
    stop.store(true, Ordering::Relaxed);
    let failures = load.await.unwrap();
    assert!(
        failures.is_empty(),
        "no transaction fails because of the addition: {failures:?}"
    );
    assert!(ok.load(Ordering::Relaxed) > 50);
    let h = net
        .assert_same_chain(&[0, 1, 2, 3, 4], joined_at + 20)
        .await;
    let chain = net.chain(0, h).await;
    let (proposed, signed) = participates(&chain, &me, joined_at);
    assert!(
        proposed && signed,
        "the 5th node proposes ({proposed}) and signs ({signed})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_added_in_a_row() {
    let mut net = Net::start(22100, 4, 3, Params::default());
    for i in 0..7 {
        net.spawn_if_spare(i);
    }
    for i in 0..7 {
        net.wait_healthy(i).await;
    }
    for (k, i) in (4..7).enumerate() {
        let (code, res) = net
            .post(0, &net.add_node_body(i, &net.operator, 10 + k as u64))
            .await;
        assert_eq!(code, 200, "{res}");
        let me = net.id_hex(i);
        net.wait_for(&format!("node {i} is a validator"), 30, || {
            let me = me.clone();
            let net = &net;
            async move {
                net.status(i)
                    .await
                    .is_some_and(|s| s["role"] == "validator")
                    && net.roster_ids(i).await.contains(&me)
            }
        })
        .await;
    }
    let st = net.status(0).await.unwrap();
    assert_eq!(st["epoch"], 3);
    let roster = st["roster"].as_array().unwrap();
    assert_eq!(roster.len(), 7);
    for (k, e) in roster.iter().enumerate() {
        assert_eq!(e["number"], k + 1);
    }
    assert_eq!(net.append(6, "after", "k", 1).await.0, 200);
    let h = net.height(0).await;
    net.wait_height(6, h, 20).await;
    net.assert_same_chain(&[0, 1, 2, 3, 4, 5, 6], h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_while_an_original_node_is_down() {
    let mut net = Net::start(22200, 4, 1, Params::default());
    net.spawn(4);
    for i in 0..5 {
        net.wait_healthy(i).await;
    }
    net.kill(3);
    let (code, res) = net.post(0, &net.add_node_body(4, &net.operator, 5)).await;
    assert_eq!(code, 200, "{res}");
    // n=5, q=4: the newcomer's votes are needed for progress with node 4 down.
    for k in 0..20 {
        assert_eq!(
            net.append(k % 3, &format!("x{k}"), "k", k as i64).await.0,
            200
        );
    }
    net.spawn(3);
    net.wait_healthy(3).await;
    let h = net.height(0).await;
    net.wait_height(3, h, 30).await;
    let st = net.status(3).await.unwrap();
    assert_eq!(st["epoch"], 1);
    assert_eq!(st["roster"].as_array().unwrap().len(), 5);
    net.assert_same_chain(&[0, 1, 2, 3, 4], h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorised_unsigned_and_duplicate_add_node_are_rejected() {
    let mut net = Net::start(22300, 4, 1, Params::default());
    net.spawn(4);
    for i in 0..5 {
        net.wait_healthy(i).await;
    }
    let h = net.height(0).await;
    let stranger = rollcall_node::crypto::Keypair::from_secret([9; 32]);
    let (code, body) = net.post(0, &net.add_node_body(4, &stranger, 1)).await;
    assert_eq!(code, 400);
    assert!(
        body["error"].as_str().unwrap().contains("operator"),
        "{body}"
    );
    let mut unsigned = net.add_node_body(4, &net.operator, 2);
    unsigned.as_object_mut().unwrap().remove("sig");
    let (code, body) = net.post(0, &unsigned).await;
    assert_eq!(code, 400);
    assert!(
        body["error"].as_str().unwrap().contains("not signed"),
        "{body}"
    );
    // A node already in the roster.
    let (code, body) = net.post(0, &net.add_node_body(0, &net.operator, 3)).await;
    assert_eq!(code, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("already in the roster"),
        "{body}"
    );
    // Malformed address (signed over the bad address).
    let mut bad_addr = net.add_node_body(4, &net.operator, 4);
    bad_addr["add_node"]["addr"] = Value::String("no-port".into());
    assert_eq!(net.post(0, &bad_addr).await.0, 400);
    // The roster did not change.
    assert_eq!(net.status(0).await.unwrap()["epoch"], 0);
    // Add for real, then again with another nonce: the second is rejected.
    assert_eq!(
        net.post(0, &net.add_node_body(4, &net.operator, 5)).await.0,
        200
    );
    // Rejected at submission (400) when node 1 has committed the first one, or
    // ordered and rejected at execution (409) when it has not yet: never applied.
    let (code, body) = net.post(1, &net.add_node_body(4, &net.operator, 6)).await;
    assert!(code == 400 || code == 409, "{code} {body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("already in the roster"),
        "{body}"
    );
    assert!(net.height(0).await > h);
    assert_eq!(net.status(0).await.unwrap()["epoch"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_started_long_after_its_add_node_syncs_and_joins() {
    let mut net = Net::start(22400, 4, 1, Params::default());
    for i in 0..4 {
        net.wait_healthy(i).await;
    }
    // The AddNode commits while the newcomer is not even running: n=5, q=4, and the
    // four originals carry on without it.
    let (code, res) = net.post(0, &net.add_node_body(4, &net.operator, 9)).await;
    assert_eq!(code, 200, "{res}");
    let joined = res["height"].as_u64().unwrap();
    for k in 0..20 {
        assert_eq!(
            net.append(k % 4, &format!("pre{k}"), "k", k as i64).await.0,
            200
        );
    }
    net.wait_height(0, joined + 40, 30).await;
    // Started now from the genesis, it replays the membership change, finds itself in
    // the roster and becomes a validator.
    net.spawn(4);
    net.wait_healthy(4).await;
    net.wait_for("the late newcomer is a validator", 30, || async {
        net.status(4)
            .await
            .is_some_and(|s| s["role"] == "validator" && s["epoch"] == 1)
    })
    .await;
    let h = net.height(0).await;
    net.wait_height(4, h, 30).await;
    net.assert_same_chain(&[0, 1, 2, 3, 4], h).await;
    // It votes: certificates after it caught up carry its signature.
    let me = net.id_hex(4);
    let target = net.height(0).await + 15;
    net.wait_height(0, target, 30).await;
    let chain = net.chain(0, target).await;
    let (_, signed) = participates(&chain, &me, h);
    assert!(signed, "the late newcomer signs certificates");
}
