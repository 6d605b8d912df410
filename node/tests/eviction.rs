//! Evicting an abnormal node by its proposal count (protocol.md §5, seed 003), on
//! real processes.

mod common;

use common::Net;
use rollcall_node::chain::ChainState;
use rollcall_node::types::{CommittedBlock, Params};

fn params(total: u64) -> Params {
    Params {
        eviction_total: total,
        ..Params::default()
    }
}

/// Replays node `i`'s chain with the node's own chain state and checks that the
/// block's evict field equals the rule at every height; returns the evictions.
async fn evictions(net: &Net, i: usize) -> Vec<(u64, String)> {
    let h = net.height(i).await;
    let raw = net.chain(i, h).await;
    let genesis: rollcall_node::types::Genesis =
        serde_json::from_slice(&std::fs::read(net.dir.path().join("genesis.json")).unwrap())
            .unwrap();
    let mut state = ChainState::new(genesis);
    let mut out = Vec::new();
    for v in raw {
        let cb: CommittedBlock = serde_json::from_value(v).unwrap();
        assert_eq!(
            cb.block.evict,
            state.expected_evict(),
            "height {}",
            cb.block.height
        );
        if let Some(x) = cb.block.evict {
            out.push((cb.block.height, x.to_hex()));
        }
        state.apply(&cb.block, cb.cert);
    }
    out
}

async fn wait_roster_len(net: &Net, i: usize, n: usize, secs: u64) {
    net.wait_for(
        &format!("node {i} has a roster of {n}"),
        secs,
        || async move { net.roster_ids(i).await.len() == n },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_is_evicted_then_comes_back_only_through_add_node() {
    let mut net = Net::start(23000, 4, 0, params(100));
    for i in 0..4 {
        net.wait_healthy(i).await;
    }
    net.wait_height(0, 5, 20).await;
    let victim = net.id_hex(3);
    net.kill(3);
    wait_roster_len(&net, 0, 3, 120).await;
    // Evicted at the first height where the rule fires, and nowhere else.
    let ev = evictions(&net, 0).await;
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].1, victim);
    for i in 0..3 {
        wait_roster_len(&net, i, 3, 10).await;
        let st = net.status(i).await.unwrap();
        assert_eq!(st["epoch"], 1);
        assert!(
            st["proposal_total"].as_u64().unwrap() < 100,
            "the window was reset"
        );
    }
    // The survivors keep committing.
    for k in 0..10 {
        assert_eq!(
            net.append(k % 3, &format!("s{k}"), "k", k as i64).await.0,
            200
        );
    }
    // Restarted, the evicted node syncs, sees itself outside the roster and says so.
    net.spawn(3);
    net.wait_healthy(3).await;
    net.wait_for("the restarted node reports evicted", 30, || async {
        net.status(3).await.is_some_and(|s| s["role"] == "evicted")
    })
    .await;
    let h = net.height(0).await;
    for k in 0..10 {
        assert_eq!(
            net.append(k % 3, &format!("t{k}"), "k", k as i64).await.0,
            200
        );
    }
    assert!(net.height(0).await > h, "it does not disturb the network");
    assert_eq!(net.roster_ids(0).await.len(), 3);
    // Re-added with a new AddNode, it syncs and votes again.
    let (code, res) = net.post(0, &net.add_node_body(3, &net.operator, 77)).await;
    assert_eq!(code, 200, "{res}");
    let joined = res["height"].as_u64().unwrap();
    net.wait_for("the re-added node is a validator", 30, || async {
        net.status(3)
            .await
            .is_some_and(|s| s["role"] == "validator" && s["epoch"] == 2)
    })
    .await;
    // Counters were reset by the AddNode.
    net.wait_height(0, joined + 12, 30).await;
    let h = net.assert_same_chain(&[0, 1, 2, 3], joined + 12).await;
    let chain = net.chain(0, h).await;
    let signed = chain.iter().any(|b| {
        b["block"]["height"].as_u64().unwrap() > joined
            && b["cert"]["sigs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["validator"] == victim)
    });
    assert!(signed, "the re-added node signs certificates again");
    assert_eq!(evictions(&net, 0).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_nodes_evict_their_dead_one() {
    let mut net = Net::start(23100, 6, 0, params(60));
    for i in 0..6 {
        net.wait_healthy(i).await;
    }
    net.wait_height(0, 3, 20).await;
    let victim = net.id_hex(5);
    net.kill(5);
    wait_roster_len(&net, 0, 5, 120).await;
    let ev = evictions(&net, 0).await;
    assert_eq!(
        ev.iter().map(|e| e.1.clone()).collect::<Vec<_>>(),
        vec![victim]
    );
    for k in 0..10 {
        assert_eq!(
            net.append(k % 5, &format!("s{k}"), "k", k as i64).await.0,
            200
        );
    }
    let h = net.height(0).await;
    net.assert_same_chain(&[0, 1, 2, 3, 4], h.saturating_sub(2))
        .await;
}
