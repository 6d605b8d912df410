//! The checkers' oracle against the node it judges: chains built by the node's own
//! `ChainState` (an honest node) replay to the same rosters, epochs, eviction
//! answers and transaction effects in the oracle, and where the node departs from
//! protocol.md the checkers say so.
//!
//! This is the only place of the checkers crate that runs the node's rule-bearing
//! code, and only as the system under test.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use rollcall_checkers::cluster::{check_cluster, ClusterRun, NodeDump, ROSTER};
use rollcall_checkers::oracle::ledger::tx_counts;
use rollcall_checkers::{History, Validity};
use rollcall_node_core::chain::ChainState;
use rollcall_node_core::crypto::{Keypair, NodeId};
use rollcall_node_core::types::{
    AddNode, Block, Certificate, CommitSig, CommittedBlock, Genesis, Op, OpResult, Params,
    RosterEntry, Tx, TxBody, DOMAIN_ADD_NODE, DOMAIN_VOTE,
};
use serde_json::{json, Value};

fn key(i: u8) -> Keypair {
    Keypair::from_secret([i; 32])
}

fn operator() -> Keypair {
    Keypair::from_secret([200; 32])
}

/// An honest node's chain, built with the node's `ChainState`.
struct Builder {
    state: ChainState,
    keys: BTreeMap<NodeId, Keypair>,
    dead: BTreeSet<NodeId>,
    chain: Vec<CommittedBlock>,
}

impl Builder {
    fn new(n: u8, params: Params) -> Builder {
        let genesis = Genesis {
            chain_id: "test-chain".into(),
            roster: (1..=n)
                .map(|i| RosterEntry {
                    number: 0,
                    id: key(i).id(),
                    addr: format!("n{i}:26600"),
                })
                .collect(),
            operators: vec![operator().id()],
            params,
        };
        Builder {
            state: ChainState::new(genesis),
            keys: (1..=60u8).map(|i| (key(i).id(), key(i))).collect(),
            dead: BTreeSet::new(),
            chain: Vec::new(),
        }
    }

    fn add_tx(&self, i: u8, nonce: u64) -> Tx {
        let req = AddNode {
            id: key(i).id(),
            addr: format!("n{i}:26600"),
            nonce,
        };
        let sig = operator().sign(DOMAIN_ADD_NODE, &req.sign_bytes("test-chain"));
        Tx {
            id: format!("add-n{i}-{nonce}"),
            body: TxBody::AddNode {
                req,
                sig: Some(sig),
            },
        }
    }

    /// Signs `q(n)` precommits from live members (keys are `[i; 32]`, i ≤ 60).
    fn sign_cert(&self, block: &Block) -> Option<Certificate> {
        let roster = self.state.roster();
        let mut cert = Certificate {
            epoch: block.epoch,
            height: block.height,
            round: block.round,
            block: block.hash(),
            evict: block.evict,
            sigs: Vec::new(),
        };
        for e in roster
            .entries()
            .iter()
            .filter(|e| !self.dead.contains(&e.id))
        {
            if cert.sigs.len() == roster.quorum() {
                break;
            }
            let sig = self
                .keys
                .get(&e.id)?
                .sign(DOMAIN_VOTE, &cert.vote_of(e.id).sign_bytes());
            cert.sigs.push(CommitSig {
                validator: e.id,
                sig,
            });
        }
        (cert.sigs.len() == roster.quorum()).then_some(cert)
    }

    /// Commits the next block at the first round whose proposer is alive and not
    /// skipped.
    fn block(&mut self, txs: Vec<Tx>, skip: &dyn Fn(u64, NodeId) -> bool) -> Option<()> {
        let h = self.state.height + 1;
        let roster = self.state.roster().clone();
        let n = roster.len() as u32;
        let alive = |id: &NodeId| !self.dead.contains(id);
        let round = (0..2 * n)
            .find(|&r| alive(&roster.proposer(h, r)) && !skip(h, roster.proposer(h, r)))
            .or_else(|| (0..n).find(|&r| alive(&roster.proposer(h, r))))?;
        let block = Block {
            height: h,
            round,
            epoch: self.state.epoch(),
            prev_hash: self.state.last_hash,
            proposer: roster.proposer(h, round),
            roster_hash: roster.hash(),
            txs,
            evict: self.state.expected_evict(),
            last_commit: self.state.last_cert.clone(),
        };
        let cert = self.sign_cert(&block)?;
        self.state.apply(&block, cert.clone());
        self.chain.push(CommittedBlock { block, cert });
        Some(())
    }

    /// n1's `/status` as the node derives it (its role the way
    /// `rollcall_node_core::consensus` computes it for an up-to-date node).
    fn status(&self) -> Value {
        let me = key(1).id();
        let role = if self.state.roster().contains(&me) {
            "validator"
        } else if self.state.was_evicted(&me) {
            "evicted"
        } else {
            "syncing"
        };
        json!({
            "id": me.to_hex(),
            "height": self.state.height,
            "epoch": self.state.epoch(),
            "role": role,
            "roster": self.state.roster().entries(),
            "abnormal": self.state.expected_evict().map(|x| x.to_hex()),
        })
    }

    fn run(&self) -> ClusterRun {
        ClusterRun {
            genesis: self.state.genesis().clone(),
            nodes: vec![NodeDump {
                name: "n1".into(),
                chain: self.chain.clone(),
                status: Some(self.status()),
                alive: true,
            }],
            history: History::default(),
            liveness_bound_ns: 10_000_000_000,
            fault_timing: None,
        }
    }
}

fn kv(ops: Vec<Op>, id: String) -> Tx {
    Tx {
        id,
        body: TxBody::Kv(ops),
    }
}

fn params() -> Params {
    Params {
        eviction_total: 8,
        eviction_ratio_num: 1,
        eviction_ratio_den: 10,
        min_roster: 3,
        max_block_txs: 100,
    }
}

/// One step of a random membership history.
#[derive(Debug, Clone)]
enum Step {
    Plain,
    Add,
    Kill(u8),
    Revive(u8),
    Slow(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => Just(Step::Plain),
        1 => Just(Step::Add),
        1 => any::<u8>().prop_map(Step::Kill),
        1 => any::<u8>().prop_map(Step::Revive),
        1 => any::<u8>().prop_map(Step::Slow),
    ]
}

/// Builds a random honest chain: adds, deaths and slow proposers.
fn random_chain(n: u8, p: Params, steps: &[Step]) -> Builder {
    let mut b = Builder::new(n, p);
    let mut next = 30u8;
    // A slow node proposes only at heights that are multiples of its period.
    let mut slow: BTreeMap<NodeId, u64> = BTreeMap::new();
    for (i, s) in steps.iter().enumerate() {
        let roster = b.state.roster().clone();
        let pick = |x: u8| roster.entries()[x as usize % roster.len()].id;
        let mut txs = vec![kv(vec![Op::Append("k".into(), i as i64)], format!("t{i}"))];
        match s {
            Step::Plain => {}
            Step::Add => {
                txs.push(b.add_tx(next, u64::from(next)));
                next += 1;
            }
            Step::Kill(x) => {
                let alive = roster
                    .entries()
                    .iter()
                    .filter(|e| !b.dead.contains(&e.id))
                    .count();
                if alive > roster.quorum() {
                    b.dead.insert(pick(*x));
                }
            }
            Step::Revive(x) => {
                b.dead.remove(&pick(*x));
            }
            Step::Slow(x) => {
                slow.insert(pick(*x), 2 + u64::from(*x % 4));
            }
        }
        let sl = slow.clone();
        if b.block(txs, &move |h, id| sl.get(&id).is_some_and(|m| h % m != 0))
            .is_none()
        {
            break;
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random adds, deaths and slow nodes, evictions by the node's rule: the
    /// oracle derives the node's rosters and epochs at every height, agrees with
    /// its eviction answer, and every node-side safety checker finds it valid.
    #[test]
    fn oracle_agrees_with_the_honest_node(
        n in 4u8..=6,
        total in 3u64..=8,
        ratio in prop_oneof![Just((1u64, 10u64)), Just((1, 2)), Just((1, 1)), Just((2, 3))],
        steps in proptest::collection::vec(step(), 10..60),
    ) {
        let p = Params {
            eviction_total: total,
            eviction_ratio_num: ratio.0,
            eviction_ratio_den: ratio.1,
            ..params()
        };
        let b = random_chain(n, p, &steps);
        let rs = check_cluster(&b.run());
        for res in rs.iter().take(3) {
            prop_assert_eq!(res.validity, Validity::Valid, "{:#?}", res);
        }
        let roster = rs.iter().find(|r| r.checker == ROSTER).expect("roster-agreement ran");
        let node_eras: Vec<Value> = b.state.eras().iter().map(|e| json!({
            "from_height": e.from_height,
            "epoch": e.epoch,
            "roster": e.roster.entries().iter().map(|x| x.id.to_hex()).collect::<Vec<_>>(),
        })).collect();
        prop_assert_eq!(&roster.details["eras"], &json!(node_eras));
    }

    /// Random KV transactions (type errors, cas that do and do not apply,
    /// duplicate-free ids): the oracle's ledger takes the same transactions to
    /// have had an effect as the node's outcomes say.
    #[test]
    fn ledger_agrees_with_the_node_on_tx_effects(
        txs in proptest::collection::vec(proptest::collection::vec((0u8..5, 0u8..3, 0i64..3), 1..4), 1..60),
    ) {
        let mut b = Builder::new(4, params());
        let keys = ["a", "b", "c"];
        for (i, ops) in txs.iter().enumerate() {
            let ops = ops.iter().map(|&(kind, k, v)| {
                let k = keys[k as usize].to_string();
                match kind {
                    0 => Op::Read(k),
                    1 => Op::Write(k, v),
                    2 => Op::Cas(k, v, v + 1),
                    _ => Op::Append(k, v),
                }
            }).collect();
            let tx = kv(ops, format!("t{}", i));
            prop_assert!(b.block(vec![tx], &|_, _| false).is_some());
        }
        let ours = tx_counts(b.state.genesis(), &b.chain);
        let theirs: BTreeMap<String, usize> = (0..txs.len())
            .map(|i| format!("t{i}"))
            .filter(|id| b.state.outcome(id).is_some_and(|o| {
                o.error.is_none()
                    && (o.results.is_empty()
                        || !o.results.iter().all(|r| matches!(r, OpResult::Cas { applied: false, .. })))
            }))
            .map(|id| (id, 1))
            .collect();
        prop_assert_eq!(ours, theirs);
    }
}

/// protocol.md §3: "if that operator's nonce was used before (the chain records
/// used nonces: a replayed AddNode never applies)". An AddNode of n6 reusing the
/// nonce of n5's: the checkers find the chain invalid exactly when the node
/// applied it.
#[test]
fn an_add_node_reusing_a_nonce_is_judged_by_the_spec() {
    let mut b = Builder::new(4, params());
    b.block(vec![b.add_tx(5, 7)], &|_, _| false)
        .expect("commits");
    b.block(vec![b.add_tx(6, 7)], &|_, _| false)
        .expect("commits");
    for _ in 0..3 {
        b.block(vec![], &|_, _| false).expect("commits");
    }
    let node_applied = b.state.roster().contains(&key(6).id());
    eprintln!("the node applied the replayed AddNode: {node_applied}");
    let rs = check_cluster(&b.run());
    let roster = rs.iter().find(|r| r.checker == ROSTER).expect("ran");
    let caught = roster
        .anomalies
        .iter()
        .any(|a| a.kind == "roster-hash-mismatch");
    assert_eq!(
        caught, node_applied,
        "node applied: {node_applied}; {roster:#?}"
    );
    assert_eq!(
        roster.validity == Validity::Invalid,
        node_applied,
        "{roster:#?}"
    );
}

/// AddNodes the spec rejects (unsigned, signed by another key, for a member, with
/// a malformed address) next to one it accepts: the oracle and the node agree on
/// every roster, and the chain is valid.
#[test]
fn rejected_add_nodes_leave_both_rosters_alike() {
    let mut b = Builder::new(4, params());
    let with =
        |mut tx: Tx, f: &dyn Fn(&mut AddNode, &mut Option<rollcall_node_core::crypto::Sig>)| {
            if let TxBody::AddNode { req, sig } = &mut tx.body {
                f(req, sig);
            }
            tx
        };
    let unsigned = with(b.add_tx(5, 1), &|_, s| *s = None);
    let other_key = with(b.add_tx(6, 2), &|r, s| {
        *s = Some(key(9).sign(DOMAIN_ADD_NODE, &r.sign_bytes("test-chain")));
    });
    let member = b.add_tx(2, 3);
    let bad_addr = with(b.add_tx(7, 4), &|r, s| {
        r.addr = "no-port".into();
        *s = Some(operator().sign(DOMAIN_ADD_NODE, &r.sign_bytes("test-chain")));
    });
    let good = b.add_tx(8, 5);
    b.block(
        vec![unsigned, other_key, member, bad_addr, good],
        &|_, _| false,
    )
    .expect("commits");
    for _ in 0..4 {
        b.block(vec![], &|_, _| false).expect("commits");
    }
    assert_eq!(
        b.state.roster().len(),
        5,
        "the node applied only the good one"
    );
    let rs = check_cluster(&b.run());
    for r in rs.iter().take(3) {
        assert_eq!(r.validity, Validity::Valid, "{r:#?}");
    }
    let roster = rs.iter().find(|r| r.checker == ROSTER).expect("ran");
    let last = &roster.details["eras"][1]["roster"];
    assert_eq!(last.as_array().map(Vec::len), Some(5), "{roster:#?}");
    assert_eq!(last[4], json!(key(8).id().to_hex()));
}
