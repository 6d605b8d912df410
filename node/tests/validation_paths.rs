//! One validation for a transaction, whichever way it arrives (issue 14): a property
//! test that the HTTP API, mempool gossip and block validation accept exactly the
//! same transactions.

use proptest::prelude::*;
use rollcall_node::chain::ChainState;
use rollcall_node::consensus::{Core, Input, Submit, Timeouts};
use rollcall_node::crypto::{Keypair, Verifier};
use rollcall_node::types::{Block, Genesis, Message, Op, Params, RosterEntry, Tx, TxBody};
use rollcall_node::wire::{tx_from_json, tx_json};

fn genesis(keys: &[Keypair]) -> Genesis {
    Genesis {
        chain_id: "paths".into(),
        roster: keys
            .iter()
            .enumerate()
            .map(|(i, k)| RosterEntry {
                number: i as u32 + 1,
                id: k.id(),
                addr: format!("h{i}:1"),
            })
            .collect(),
        operators: vec![],
        params: Params::default(),
    }
}

/// Whether `POST /tx` accepts it: the JSON form parses and the core does not refuse it.
fn via_api(g: &Genesis, key: &Keypair, tx: &Tx) -> bool {
    let Ok(parsed) = tx_from_json(&tx_json(tx)) else {
        return false;
    };
    let mut core = Core::new(g.clone(), key.clone(), Timeouts::fast(), Verifier::new());
    !matches!(core.submit(parsed).0, Submit::Rejected(_))
}

/// Whether gossip from a member puts it in the mempool.
fn via_gossip(g: &Genesis, keys: &[Keypair], tx: &Tx) -> bool {
    let mut core = Core::new(
        g.clone(),
        keys[0].clone(),
        Timeouts::fast(),
        Verifier::new(),
    );
    let msg = Message::Txs(vec![tx.clone()]);
    let _effects = core.handle(Input::Message {
        from: keys[1].id(),
        msg,
    });
    core.status().mempool == 1
}

/// Whether a block at height 1 holding it passes block validation.
fn via_block(g: &Genesis, tx: &Tx) -> bool {
    let chain = ChainState::new(g.clone());
    let block = Block {
        height: 1,
        round: 0,
        epoch: 0,
        prev_hash: chain.last_hash,
        proposer: chain.roster().proposer(1, 0),
        roster_hash: chain.roster().hash(),
        txs: vec![tx.clone()],
        evict: chain.expected_evict(),
        last_commit: None,
    };
    chain.check_block(&block, &Verifier::new()).is_ok()
}

/// Lengths around every limit (0, 1, 256, 257) and beyond.
fn len() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        Just(1),
        Just(256),
        Just(257),
        0usize..400,
        Just(100_000)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    (0u8..4, len(), any::<i64>(), any::<i64>()).prop_map(|(f, n, a, b)| {
        let k = "k".repeat(n);
        match f {
            0 => Op::Read(k),
            1 => Op::Write(k, a),
            2 => Op::Cas(k, a, b),
            _ => Op::Append(k, a),
        }
    })
}

fn tx() -> impl Strategy<Value = Tx> {
    (
        len(),
        prop_oneof![
            prop::collection::vec(op(), 0..3),
            prop::collection::vec(op(), 60..70)
        ],
    )
        .prop_map(|(n, ops)| Tx {
            id: "i".repeat(n),
            body: TxBody::Kv(ops),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn api_gossip_and_blocks_accept_the_same_transactions(tx in tx()) {
        let keys: Vec<Keypair> = (1..5).map(|i| Keypair::from_secret([i; 32])).collect();
        let g = genesis(&keys);
        let api = via_api(&g, &keys[0], &tx);
        let gossip = via_gossip(&g, &keys, &tx);
        let block = via_block(&g, &tx);
        prop_assert_eq!(api, gossip, "api vs gossip");
        prop_assert_eq!(api, block, "api vs block");
    }
}
