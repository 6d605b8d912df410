//! One validation for a transaction, whichever way it arrives (issue 14): a property
//! test that the HTTP API, mempool gossip and block validation accept exactly the
//! same transactions — KV transactions and AddNodes (signed by the operator, by a
//! stranger, for another chain, or not at all; an AddNode that is well-formed but
//! cannot apply is refused by the API and gossip and committed as rejected in a block).

use proptest::prelude::*;
use rollcall_node::chain::ChainState;
use rollcall_node::client::signed_add_node;
use rollcall_node::consensus::{Core, Input, Submit, Timeouts};
use rollcall_node::crypto::{Keypair, Verifier};
use rollcall_node::types::{
    validate_tx, AddNode, Block, Genesis, Message, Op, Params, RosterEntry, Tx, TxBody,
};
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
        operators: vec![operator().id()],
        params: Params::default(),
    }
}

/// The genesis operator: AddNodes it signs for this chain are the authorised ones.
fn operator() -> Keypair {
    Keypair::from_secret([42; 32])
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

/// Who signed an AddNode.
#[derive(Clone, Copy, Debug)]
enum Signer {
    Operator,
    Stranger,
    OtherChain,
    Nobody,
}

fn add_node() -> impl Strategy<Value = Tx> {
    (
        len(),
        0u8..6,
        len(),
        any::<u64>(),
        prop_oneof![
            Just(Signer::Operator),
            Just(Signer::Stranger),
            Just(Signer::OtherChain),
            Just(Signer::Nobody)
        ],
    )
        .prop_map(|(id_len, who, addr_len, nonce, signer)| {
            // Node 1..4 are members already; 5 is new.
            let id = Keypair::from_secret([who + 1; 32]).id();
            let addr = format!("{}:1", "a".repeat(addr_len));
            let tx_id = "a".repeat(id_len);
            match signer {
                Signer::Operator => signed_add_node("paths", &operator(), id, &addr, nonce, tx_id),
                Signer::Stranger => signed_add_node(
                    "paths",
                    &Keypair::from_secret([9; 32]),
                    id,
                    &addr,
                    nonce,
                    tx_id,
                ),
                Signer::OtherChain => {
                    signed_add_node("other", &operator(), id, &addr, nonce, tx_id)
                }
                Signer::Nobody => Tx {
                    id: tx_id,
                    body: TxBody::AddNode {
                        req: AddNode { id, addr, nonce },
                        sig: None,
                    },
                },
            }
        })
}

fn tx() -> impl Strategy<Value = Tx> {
    prop_oneof![3 => kv_tx(), 1 => add_node()]
}

fn kv_tx() -> impl Strategy<Value = Tx> {
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
        // A block takes exactly the well-formed transactions: an AddNode that is
        // well-formed but cannot apply (a member already, a stranger's signature, a
        // used nonce) commits with a rejected outcome and changes nothing, while the
        // API and gossip refuse it up front. So what the API takes, a block takes
        // (a proposer never builds a block its peers refuse), and for KV
        // transactions, which have no such execution-time refusal, the two agree.
        prop_assert_eq!(block, validate_tx(&tx).is_ok(), "block vs validate_tx");
        if api {
            prop_assert!(block, "the API took what a block refuses");
        }
        if matches!(tx.body, TxBody::Kv(_)) {
            prop_assert_eq!(api, block, "api vs block");
        }
    }
}

/// The property is not vacuous for AddNodes: an operator's request for a new node
/// passes every path; the same request signed by a stranger passes only the block.
#[test]
fn an_operator_add_node_passes_every_path_and_a_strangers_only_the_block() {
    let keys: Vec<Keypair> = (1..5).map(|i| Keypair::from_secret([i; 32])).collect();
    let g = genesis(&keys);
    let new = Keypair::from_secret([5; 32]).id();
    let ok = signed_add_node("paths", &operator(), new, "h5:1", 7, "add-5".into());
    assert!(via_api(&g, &keys[0], &ok));
    assert!(via_gossip(&g, &keys, &ok));
    assert!(via_block(&g, &ok));
    let stranger = Keypair::from_secret([9; 32]);
    let bad = signed_add_node("paths", &stranger, new, "h5:1", 7, "add-5".into());
    assert!(!via_api(&g, &keys[0], &bad));
    assert!(!via_gossip(&g, &keys, &bad));
    assert!(via_block(&g, &bad));
}
