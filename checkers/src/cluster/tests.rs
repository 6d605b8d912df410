//! Synthetic clusters with real keys and real signed certificates: a valid run
//! passes every checker, and each single corruption is caught by the right one.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use rollcall_node_core::chain::ChainState;
use rollcall_node_core::crypto::{Bytes32, Keypair, NodeId};
use rollcall_node_core::roster::Roster;
use rollcall_node_core::types::{
    AddNode, Block, Certificate, CommitSig, CommittedBlock, Genesis, Op, Params, RosterEntry, Tx,
    TxBody, DOMAIN_ADD_NODE, DOMAIN_VOTE,
};
use serde_json::{json, Value};

use super::*;

fn key(i: u8) -> Keypair {
    Keypair::from_secret([i; 32])
}

fn operator() -> Keypair {
    Keypair::from_secret([200; 32])
}

fn entry(i: u8) -> RosterEntry {
    RosterEntry {
        number: 0,
        id: key(i).id(),
        addr: format!("n{i}:26600"),
    }
}

/// Builds a chain the way honest nodes would, with the node's own `ChainState`.
#[derive(Clone)]
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
            roster: (1..=n).map(entry).collect(),
            operators: vec![operator().id()],
            params,
        };
        let keys = (1..=60u8).map(|i| (key(i).id(), key(i))).collect();
        Builder {
            state: ChainState::new(genesis),
            keys,
            dead: BTreeSet::new(),
            chain: Vec::new(),
        }
    }

    fn genesis(&self) -> Genesis {
        self.state.genesis().clone()
    }

    fn add_tx(&self, i: u8) -> Tx {
        let req = AddNode {
            id: key(i).id(),
            addr: format!("n{i}:26600"),
            nonce: u64::from(i),
        };
        let sig = operator().sign(DOMAIN_ADD_NODE, &req.sign_bytes("test-chain"));
        Tx {
            id: format!("add-n{i}"),
            body: TxBody::AddNode {
                req,
                sig: Some(sig),
            },
        }
    }

    fn sign_cert(&self, roster: &Roster, block: &Block) -> Option<Certificate> {
        let mut cert = Certificate {
            epoch: block.epoch,
            height: block.height,
            round: block.round,
            block: block.hash(),
            evict: block.evict,
            sigs: Vec::new(),
        };
        for e in roster.entries() {
            if cert.sigs.len() == roster.quorum() {
                break;
            }
            if self.dead.contains(&e.id) {
                continue;
            }
            let k = self.keys.get(&e.id)?;
            let sig = k.sign(DOMAIN_VOTE, &cert.vote_of(e.id).sign_bytes());
            cert.sigs.push(CommitSig {
                validator: e.id,
                sig,
            });
        }
        (cert.sigs.len() == roster.quorum()).then_some(cert)
    }

    /// Commits the next block; `skip` makes a live proposer miss its slot (a slow
    /// node), `mutate` corrupts the block before it is signed.
    fn block(
        &mut self,
        txs: Vec<Tx>,
        skip: &dyn Fn(u64, NodeId) -> bool,
        mutate: &mut dyn FnMut(&mut Block),
    ) -> Option<()> {
        let h = self.state.height + 1;
        let roster = self.state.roster().clone();
        let n = roster.len() as u32;
        let alive = |id: &NodeId| !self.dead.contains(id);
        let round = (0..2 * n)
            .find(|&r| {
                let p = roster.proposer(h, r);
                alive(&p) && !skip(h, p)
            })
            .or_else(|| (0..n).find(|&r| alive(&roster.proposer(h, r))))?;
        let mut block = Block {
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
        mutate(&mut block);
        let cert = self.sign_cert(&roster, &block)?;
        self.state.apply(&block, cert.clone());
        self.chain.push(CommittedBlock { block, cert });
        Some(())
    }

    fn status(&self) -> Value {
        json!({
            "id": key(1).id().to_hex(),
            "height": self.state.height,
            "epoch": self.state.epoch(),
            "role": "validator",
            "roster": self.state.roster().entries(),
            "abnormal": self.state.expected_evict().map(|x| x.to_hex()),
        })
    }
}

fn kv(h: u64) -> Tx {
    Tx {
        id: format!("t{h}"),
        body: TxBody::Kv(vec![Op::Append("k".into(), h as i64)]),
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

const S: u64 = 1_000_000_000;
const HEIGHTS: u64 = 30;

/// The standard chain: 4 nodes, n5 added at height 3, n4 dead from height 4 and
/// evicted at height 12 by the rule, 30 blocks. `hook(h, block)` corrupts.
fn build_chain(hook: &mut dyn FnMut(u64, &mut Block)) -> Builder {
    let mut b = Builder::new(4, params());
    for h in 1..=HEIGHTS {
        let mut txs = vec![kv(h)];
        if h == 3 {
            txs.push(b.add_tx(5));
        }
        if h == 4 {
            b.dead.insert(key(4).id());
        }
        b.block(txs, &|_, _| false, &mut |blk| hook(h, blk))
            .expect("builder commits");
    }
    b
}

/// The standard history: an op per second, add-node n5 at 2.5–3.2 s, fail-node n4
/// at 3.5 s, heal-all at 25.5 s. `after_heal` decides the ops after the heal.
fn history(after_heal: &str, end: u64, extra: &[Value]) -> History {
    history_with(
        &|s| {
            if s > 25 {
                after_heal.to_string()
            } else {
                "ok".into()
            }
        },
        end,
        extra,
    )
}

/// Like [`history`], with the completion type of the op at second `s` chosen by `kind_of`.
fn history_with(kind_of: &dyn Fn(u64) -> String, end: u64, extra: &[Value]) -> History {
    let mut evs: Vec<(u64, Value)> = Vec::new();
    for s in 1..=end {
        let t = s * S;
        let kind = kind_of(s);
        evs.push((
            t - S / 2,
            json!({"process": 0, "type": "invoke", "f": "txn", "value": [["append", "k", s]]}),
        ));
        evs.push((
            t,
            json!({"process": 0, "type": kind, "f": "txn", "value": [["append", "k", s]]}),
        ));
    }
    let n = |f: &str, t: u64, v: Value| {
        (
            t,
            json!({"process": "nemesis", "type": "info", "f": f, "value": v}),
        )
    };
    evs.push(n(
        "add-node",
        2 * S + S / 2 + 1,
        json!({"phase": "start", "node": "n5", "id": key(5).id().to_hex()}),
    ));
    evs.push(n("add-node", 3 * S + S / 5, json!({"phase": "stop", "node": "n5", "id": key(5).id().to_hex(), "acknowledged": true, "height": 3})));
    evs.push(n(
        "fail-node",
        3 * S + S / 2 + 1,
        json!({"phase": "start", "node": "n4", "id": key(4).id().to_hex()}),
    ));
    evs.push(n("heal-all", 25 * S + S / 2 + 1, json!({})));
    for e in extra {
        let t = e.get("time").and_then(Value::as_u64).unwrap_or(0);
        evs.push((t, e.clone()));
    }
    evs.sort_by_key(|(t, _)| *t);
    let mut text = String::new();
    for (i, (t, mut v)) in evs.into_iter().enumerate() {
        v["index"] = json!(i);
        v["time"] = json!(t);
        text.push_str(&v.to_string());
        text.push('\n');
    }
    History::parse_jsonl(&text).expect("valid history")
}

fn run_of(b: &Builder, history: History) -> ClusterRun {
    let full = b.chain.clone();
    let dump =
        |name: &str, chain: Vec<CommittedBlock>, alive: bool, status: Option<Value>| NodeDump {
            name: name.into(),
            chain,
            status,
            alive,
        };
    ClusterRun {
        genesis: b.genesis(),
        nodes: vec![
            dump("n1", full.clone(), true, Some(b.status())),
            dump("n2", full.clone(), true, None),
            dump("n3", full.clone(), true, None),
            dump("n4", full[..3].to_vec(), false, None),
            dump("n5", full, true, None),
        ],
        history,
        liveness_bound_ns: DEFAULT_LIVENESS_BOUND_NS,
    }
}

fn standard() -> ClusterRun {
    run_of(&build_chain(&mut |_, _| {}), history("ok", 30, &[]))
}

fn by_name<'a>(rs: &'a [CheckResult], name: &str) -> &'a CheckResult {
    rs.iter().find(|r| r.checker == name).expect("checker ran")
}

fn has(r: &CheckResult, kind: &str, height: Option<u64>) -> bool {
    r.anomalies
        .iter()
        .any(|a| a.kind == kind && height.is_none_or(|h| a.extra.get("height") == Some(&json!(h))))
}

/// Asserts that only `checker` is invalid, with an anomaly `kind` at `height`.
fn assert_caught(run: &ClusterRun, checker: &str, kind: &str, height: Option<u64>) {
    let rs = check_cluster(run);
    let r = by_name(&rs, checker);
    assert_eq!(r.validity, Validity::Invalid, "{checker}: {r:#?}");
    assert!(
        has(r, kind, height),
        "{checker} lacks {kind} at {height:?}: {r:#?}"
    );
}

fn assert_valid_except(run: &ClusterRun, except: &[&str]) {
    for r in check_cluster(run) {
        if !except.contains(&r.checker.as_str()) {
            assert_eq!(r.validity, Validity::Valid, "{}: {r:#?}", r.checker);
        }
    }
}

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
fn fork_is_caught() {
    let a = build_chain(&mut |_, _| {});
    let b = build_chain(&mut |h, blk| {
        if h == 20 {
            blk.txs[0].id = "other".into();
        }
    });
    let mut run = run_of(&a, history("ok", 30, &[]));
    run.nodes[2].chain = b.chain.clone();
    assert_caught(&run, AGREEMENT, "fork", Some(20));
    let r = &check_cluster(&run)[0];
    assert_eq!(r.details["first_fork_height"], json!(20));
    assert!(!has(r, "fork", Some(19)));
    assert_valid_except(&run, &[AGREEMENT]);
}

#[test]
fn too_few_signatures_are_caught() {
    let mut run = standard();
    run.nodes[1].chain[10].cert.sigs.pop();
    assert_caught(&run, AGREEMENT, "too-few-signatures", Some(11));
    assert_valid_except(&run, &[AGREEMENT]);
}

#[test]
fn forged_signature_is_caught() {
    let mut run = standard();
    run.nodes[0].chain[10].cert.sigs[0].sig.0[0] ^= 1;
    assert_caught(&run, AGREEMENT, "bad-signature", Some(11));
    // A forged last_commit too.
    let mut run = standard();
    if let Some(lc) = run.nodes[0].chain[5].block.last_commit.as_mut() {
        lc.sigs[1].sig.0[7] ^= 0x40;
    }
    // The block hash changed, so the cert and the next link break as well; the
    // forged precommit is named.
    let rs = check_cluster(&run);
    assert!(rs[0]
        .anomalies
        .iter()
        .any(|a| a.kind == "bad-signature" && a.extra["which"] == "last_commit"));
}

#[test]
fn unknown_and_duplicate_signers_are_caught() {
    let mut run = standard();
    let c = &mut run.nodes[0].chain[20].cert;
    let dup = c.sigs[0].clone();
    c.sigs[1] = dup;
    assert_caught(&run, AGREEMENT, "duplicate-signer", Some(21));
    let mut run = standard();
    let c = &mut run.nodes[0].chain[20].cert;
    let outsider = key(9);
    c.sigs[0] = CommitSig {
        validator: outsider.id(),
        sig: outsider.sign(DOMAIN_VOTE, &c.vote_of(outsider.id()).sign_bytes()),
    };
    assert_caught(&run, AGREEMENT, "unknown-signer", Some(21));
}

#[test]
fn wrong_prev_hash_is_caught() {
    let b = build_chain(&mut |h, blk| {
        if h == 15 {
            blk.prev_hash = Bytes32([9; 32]);
        }
    });
    let run = run_of(&b, history("ok", 30, &[]));
    assert_caught(&run, AGREEMENT, "broken-link", Some(15));
    let r = &check_cluster(&run)[0];
    assert!(
        r.anomalies.iter().all(|a| a.kind == "broken-link"),
        "{r:#?}"
    );
}

#[test]
fn roster_hash_mismatch_is_caught() {
    let b = build_chain(&mut |h, blk| {
        if h == 16 {
            blk.roster_hash = Bytes32([7; 32]);
        }
    });
    let run = run_of(&b, history("ok", 30, &[]));
    assert_caught(&run, ROSTER, "roster-hash-mismatch", Some(16));
    assert_valid_except(&run, &[ROSTER]);
}

#[test]
fn status_roster_mismatch_is_caught() {
    let mut run = standard();
    if let Some(s) = run.nodes[0].status.as_mut() {
        s["roster"] = json!([entry(1), entry(2), entry(3)]);
    }
    assert_caught(&run, ROSTER, "status-roster-mismatch", Some(31));
}

#[test]
fn eviction_the_rule_does_not_allow_is_caught() {
    let b = build_chain(&mut |h, blk| {
        if h == 20 {
            blk.evict = Some(key(2).id());
        }
    });
    let run = run_of(&b, history("ok", 30, &[]));
    assert_caught(&run, EVICTION, "eviction-not-allowed", Some(20));
    assert_valid_except(&run, &[EVICTION]);
}

#[test]
fn missed_eviction_is_caught() {
    let b = build_chain(&mut |h, blk| {
        if h == 12 {
            blk.evict = None;
        }
    });
    let run = run_of(&b, history("ok", 30, &[]));
    assert_caught(&run, EVICTION, "missed-eviction", Some(12));
    let r = by_name(&check_cluster(&run), EVICTION).clone();
    assert_eq!(r.anomalies.len(), 1, "{r:#?}");
    // The node's rule fired again at 13, so the victim is evicted after all.
    assert_eq!(r.details["fail_node_victims"][0]["evicted_at"], json!(13));
    assert_valid_except(&run, &[EVICTION]);
}

#[test]
fn fail_node_victim_unknown_when_the_chain_is_short() {
    let mut run = standard();
    for n in &mut run.nodes {
        n.chain.truncate(10);
        n.status = None;
    }
    let r = by_name(&check_cluster(&run), EVICTION).clone();
    assert_eq!(r.validity, Validity::Unknown, "{r:#?}");
    assert!(has(&r, "victim-eviction-unknown", None));
}

#[test]
fn acknowledged_add_node_missing_from_the_chain_is_caught() {
    let b = build_chain(&mut |h, blk| {
        if h == 3 {
            blk.txs.truncate(1);
        }
    });
    let mut run = run_of(&b, history("ok", 30, &[]));
    run.nodes.pop();
    assert_caught(&run, ADD_NODE, "acknowledged-add-missing", Some(3));
    // An acknowledged add of a node that no block holds.
    let extra = [
        json!({"time": 5 * S + 1, "process": "nemesis", "type": "info", "f": "add-node", "value": {"phase": "start", "node": "n6", "id": key(6).id().to_hex()}}),
        json!({"time": 5 * S + 2, "process": "nemesis", "type": "info", "f": "add-node", "value": {"phase": "stop", "node": "n6", "id": key(6).id().to_hex(), "acknowledged": true, "height": 6}}),
    ];
    let run = run_of(&build_chain(&mut |_, _| {}), history("ok", 30, &extra));
    assert_caught(&run, ADD_NODE, "acknowledged-add-missing", Some(6));
    assert_valid_except(&run, &[ADD_NODE]);
}

#[test]
fn add_node_without_commits_during_it_is_caught() {
    // A 12 s add-node window (bound 10 s) in which every client op fails.
    let mut run = standard();
    let extra = [
        json!({"time": 26 * S + 1, "process": "nemesis", "type": "info", "f": "add-node", "value": {"phase": "start", "node": "n5", "id": key(5).id().to_hex()}}),
        json!({"time": 38 * S + 1, "process": "nemesis", "type": "info", "f": "add-node", "value": {"phase": "stop", "node": "n5", "id": key(5).id().to_hex(), "acknowledged": false}}),
    ];
    // Keep liveness satisfied: one ok right after the heal, outside the window.
    run.history = history_with(
        &|s| if s <= 26 { "ok".into() } else { "fail".into() },
        40,
        &extra,
    );
    assert_caught(&run, ADD_NODE, "commit-gap", None);
}

#[test]
fn no_commit_after_heal_is_caught() {
    let mut run = standard();
    run.history = history("fail", 40, &[]);
    assert_caught(&run, LIVENESS, "no-commit-after-heal", None);
    // Without a heal-all the verdict is unknown.
    let text: String = run
        .history
        .to_jsonl()
        .lines()
        .filter(|l| !l.contains("heal-all"))
        .map(|l| format!("{l}\n"))
        .collect();
    run.history = History::parse_jsonl(&text).expect("history");
    let r = by_name(&check_cluster(&run), LIVENESS).clone();
    assert_eq!(r.validity, Validity::Unknown);
}

#[test]
fn stalled_alive_node_is_caught() {
    let mut run = standard();
    // n2 alive but its chain stopped at height 2, before the height 3 known at the heal.
    run.nodes[1].chain.truncate(2);
    assert_caught(&run, LIVENESS, "node-stalled-after-heal", Some(2));
}

#[test]
fn eviction_rule_reproduces_the_seed_figures() {
    // protocol.md §5's table.
    let rows: [(&[u64], Option<u8>); 4] = [
        (&[340, 320, 320, 20], Some(4)),
        (&[476, 480, 24, 20], Some(4)),
        (&[200, 200, 200, 15, 200, 185], Some(4)),
        (&[250, 250, 250, 250], None),
    ];
    for (counts, want) in rows {
        let roster = Roster::new((1..=counts.len() as u8).map(entry).collect());
        let map: BTreeMap<NodeId, u64> = counts
            .iter()
            .enumerate()
            .map(|(i, c)| (key(i as u8 + 1).id(), *c))
            .collect();
        let total = counts.iter().sum();
        let got = eviction_rule(&map, total, &roster, &Params::default());
        assert_eq!(got, want.map(|i| key(i).id()), "{counts:?}");
    }
    // Ties go to the lowest number; min_roster stops it.
    let roster = Roster::new((1..=4).map(entry).collect());
    let map: BTreeMap<NodeId, u64> = [
        (key(1).id(), 480),
        (key(2).id(), 10),
        (key(3).id(), 500),
        (key(4).id(), 10),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        eviction_rule(&map, 1000, &roster, &Params::default()),
        Some(key(2).id())
    );
    let strict = Params {
        min_roster: 4,
        ..Params::default()
    };
    assert_eq!(eviction_rule(&map, 1000, &roster, &strict), None);
    assert_eq!(eviction_rule(&map, 999, &roster, &Params::default()), None);
    // The cut-off is strict and exact: 25 × 4 × 10 == 1000 is not below it.
    let at = |c: [u64; 4]| -> BTreeMap<NodeId, u64> {
        (1..=4u8).zip(c).map(|(i, c)| (key(i).id(), c)).collect()
    };
    let p = Params::default();
    assert_eq!(
        eviction_rule(&at([325, 325, 325, 25]), 1000, &roster, &p),
        None
    );
    assert_eq!(
        eviction_rule(&at([326, 325, 325, 24]), 1000, &roster, &p),
        Some(key(4).id())
    );
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rollcall-cluster-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn write_run(dir: &Path, run: &ClusterRun) {
    let w = |p: std::path::PathBuf, bytes: Vec<u8>| {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, bytes).expect("write");
    };
    w(
        dir.join("genesis.json"),
        serde_json::to_vec_pretty(&run.genesis).expect("json"),
    );
    w(
        dir.join("history.jsonl"),
        run.history.to_jsonl().into_bytes(),
    );
    for n in &run.nodes {
        let nd = dir.join("nodes").join(&n.name);
        w(
            nd.join("chain.json"),
            serde_json::to_vec(&n.chain).expect("json"),
        );
        if let Some(s) = &n.status {
            w(nd.join("status.json"), s.to_string().into_bytes());
        }
        w(nd.join("alive"), format!("{}\n", n.alive).into_bytes());
    }
}

#[test]
fn load_round_trips_and_reports_bad_files() {
    let run = standard();
    let dir = temp_dir("load");
    write_run(&dir, &run);
    std::fs::create_dir_all(dir.join("nodes/spare")).expect("mkdir");
    let back = ClusterRun::load(&dir).expect("loads");
    assert_eq!(back.nodes, run.nodes);
    assert_eq!(back.genesis, run.genesis);
    assert_eq!(back.liveness_bound_ns, DEFAULT_LIVENESS_BOUND_NS);
    assert!(check_cluster(&back)
        .iter()
        .all(|r| r.validity == Validity::Valid));

    std::fs::write(dir.join("nodes/n2/alive"), "maybe").expect("write");
    let e = ClusterRun::load(&dir).expect_err("bad alive");
    assert!(matches!(e, ClusterError::BadAlive { .. }), "{e}");
    assert!(e.to_string().contains("n2"), "{e}");
    std::fs::write(dir.join("nodes/n2/alive"), "true").expect("write");

    std::fs::write(dir.join("nodes/n3/chain.json"), "[{\"block\": 1}]").expect("write");
    let e = ClusterRun::load(&dir).expect_err("bad chain");
    assert!(matches!(e, ClusterError::Json { .. }), "{e}");
    assert!(e.to_string().contains("n3/chain.json"), "{e}");

    std::fs::write(dir.join("history.jsonl"), "{\"index\":0,\"ti").expect("write");
    let e = ClusterRun::load(&dir).expect_err("bad history");
    assert!(e.to_string().contains("history.jsonl"), "{e}");

    std::fs::remove_file(dir.join("genesis.json")).expect("rm");
    let e = ClusterRun::load(&dir).expect_err("no genesis");
    assert!(e.to_string().contains("genesis.json"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random adds, deaths and slow nodes; evictions follow the node's rule. The
    /// checker's derived roster and epoch equal the node's `ChainState` replay at
    /// every height, and every node-side safety checker finds the chain valid.
    #[test]
    fn derived_rosters_agree_with_chain_state(
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
        let mut b = Builder::new(n, p);
        let mut next = 30u8;
        // A slow node proposes only at heights that are multiples of its period.
        let mut slow: BTreeMap<NodeId, u64> = BTreeMap::new();
        for (i, s) in steps.iter().enumerate() {
            let roster = b.state.roster().clone();
            let pick = |x: u8| roster.entries()[x as usize % roster.len()].id;
            let mut txs = vec![kv(i as u64)];
            match s {
                Step::Plain => {}
                Step::Add => {
                    txs.push(b.add_tx(next));
                    next += 1;
                }
                Step::Kill(x) => {
                    let alive = roster.entries().iter().filter(|e| !b.dead.contains(&e.id)).count();
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
            if b.block(txs, &move |h, id| sl.get(&id).is_some_and(|m| h % m != 0), &mut |_| {}).is_none() {
                break;
            }
        }
        let mut findings = Vec::new();
        let verifier = rollcall_node_core::crypto::Verifier::new();
        let r = replay::replay(&b.genesis(), "n1", &b.chain, &verifier, &mut findings);
        prop_assert!(findings.is_empty(), "{:#?}", findings);
        for h in 1..=b.state.height + 1 {
            let mine = r.era_at(h);
            let theirs = b.state.era_at(h);
            prop_assert_eq!(mine.roster.entries(), theirs.roster.entries(), "height {}", h);
            prop_assert_eq!(mine.epoch, theirs.epoch, "height {}", h);
        }
        prop_assert_eq!(r.next_expected_evict, b.state.expected_evict());
        let run = ClusterRun {
            genesis: b.genesis(),
            nodes: vec![NodeDump { name: "n1".into(), chain: b.chain.clone(), status: Some(b.status()), alive: true }],
            history: History::default(),
            liveness_bound_ns: DEFAULT_LIVENESS_BOUND_NS,
        };
        for res in check_cluster(&run).iter().take(3) {
            prop_assert_eq!(res.validity, Validity::Valid, "{:#?}", res);
        }
    }
}
