//! Test fixture: synthetic clusters with real keys and real signed certificates,
//! built by a model node whose formulas can be made wrong one at a time ([`Bugs`]),
//! so that each test shows a node bug becoming a checker finding.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::*;
use crate::history::History;
use crate::oracle::add_node::{Rejection, UsedNonces};
use crate::oracle::membership::Membership;
use crate::oracle::roster::Roster;
use crate::oracle::wire::{
    AddNode, Block, Certificate, CommitSig, CommittedBlock, Genesis, Hash, Keypair, NodeId, Op,
    Params, RosterEntry, Sig, Tx, TxBody, Verifier, DOMAIN_ADD_NODE, DOMAIN_VOTE,
};
use crate::result::{CheckResult, Validity};

pub fn key(i: u8) -> Keypair {
    Keypair::from_secret([i; 32])
}

pub fn operator() -> Keypair {
    Keypair::from_secret([200; 32])
}

pub fn entry(i: u8) -> RosterEntry {
    RosterEntry {
        number: 0,
        id: key(i).id(),
        addr: format!("n{i}:26600"),
    }
}

/// Wrong formulas the model node can be built with (all off: an honest node).
#[derive(Clone, Copy, Default)]
pub struct Bugs {
    /// Certificates hold `q(n) + quorum_delta` signatures.
    pub quorum_delta: i64,
    /// The proposer is `roster[(h + r + proposer_shift) mod n]`.
    pub proposer_shift: u64,
    /// The eviction fires one block before the rule names the node.
    pub evict_early: bool,
    /// An AddNode without a signature is applied anyway.
    pub admit_unsigned: bool,
}

/// An AddNode rule that forgets to require the operator signature.
fn admit_unsigned(
    g: &Genesis,
    r: &Roster,
    used: &UsedNonces,
    req: &AddNode,
    sig: Option<&Sig>,
    v: &Verifier,
) -> Result<NodeId, Rejection> {
    match sig {
        None if !r.contains(&req.id) => Ok(operator().id()),
        _ => crate::oracle::add_node::check(g, r, used, req, sig, v),
    }
}

/// The model node's committed state.
#[derive(Clone)]
pub struct Model {
    pub membership: Membership,
    pub height: u64,
    pub last_hash: Hash,
    pub last_cert: Option<Certificate>,
    pub bugs: Bugs,
}

impl Model {
    fn new(genesis: Genesis, bugs: Bugs) -> Model {
        let membership = if bugs.admit_unsigned {
            Membership::with_admission(&genesis, admit_unsigned)
        } else {
            Membership::new(&genesis)
        };
        Model {
            last_hash: genesis.hash(),
            membership,
            height: 0,
            last_cert: None,
            bugs,
        }
    }

    pub fn genesis(&self) -> &Genesis {
        self.membership.genesis()
    }

    pub fn roster(&self) -> &Roster {
        self.membership.roster()
    }

    pub fn epoch(&self) -> u64 {
        self.membership.epoch()
    }

    /// protocol.md §1, restated here rather than taken from the oracle so that a
    /// bug in the oracle's rotation fails these tests: `roster[(h + r) mod n]`.
    pub fn proposer(&self, h: u64, r: u32) -> NodeId {
        let entries = self.roster().entries();
        let n = entries.len().max(1) as u64;
        let i = (h + u64::from(r) + self.bugs.proposer_shift) % n;
        entries.get(i as usize).map(|e| e.id).unwrap_or_default()
    }

    /// The `evict` the model puts in the block it proposes at the next height.
    pub fn evict_for(&self, block: &Block) -> Option<NodeId> {
        let now = self.membership.expected_evict();
        if !self.bugs.evict_early || now.is_some() {
            return now;
        }
        let mut next = self.membership.clone();
        next.apply(block.height, block, &Verifier::new(), &|_| false);
        next.expected_evict()
    }

    pub fn expected_evict(&self) -> Option<NodeId> {
        self.membership.expected_evict()
    }

    /// How many precommits the model puts in a certificate: the smallest `q` with
    /// `3q > 2n` (protocol.md §1, restated independently of the oracle), plus the
    /// bug's offset.
    pub fn signatures(&self) -> usize {
        let n = self.roster().len();
        let q = (1..=n).find(|q| 3 * q > 2 * n).unwrap_or(n) as i64;
        usize::try_from(q + self.bugs.quorum_delta).unwrap_or(0)
    }

    fn apply(&mut self, block: &Block, cert: Certificate) {
        self.membership
            .apply(block.height, block, &Verifier::new(), &|_| false);
        self.height = block.height;
        self.last_hash = block.hash();
        self.last_cert = Some(cert);
    }
}

/// Builds a chain the way the model node would.
#[derive(Clone)]
pub struct Builder {
    pub state: Model,
    pub keys: BTreeMap<NodeId, Keypair>,
    pub dead: BTreeSet<NodeId>,
    pub chain: Vec<CommittedBlock>,
}

impl Builder {
    pub fn buggy(n: u8, params: Params, bugs: Bugs) -> Builder {
        let genesis = Genesis {
            chain_id: "test-chain".into(),
            roster: (1..=n).map(entry).collect(),
            operators: vec![operator().id()],
            params,
        };
        let keys = (1..=60u8).map(|i| (key(i).id(), key(i))).collect();
        Builder {
            state: Model::new(genesis, bugs),
            keys,
            dead: BTreeSet::new(),
            chain: Vec::new(),
        }
    }

    pub fn genesis(&self) -> Genesis {
        self.state.genesis().clone()
    }

    pub fn add_tx(&self, i: u8) -> Tx {
        self.add_tx_nonce(i, u64::from(i))
    }

    pub fn add_tx_nonce(&self, i: u8, nonce: u64) -> Tx {
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

    fn sign_cert(&self, roster: &Roster, block: &Block) -> Option<Certificate> {
        let mut cert = Certificate {
            epoch: block.epoch,
            height: block.height,
            round: block.round,
            block: block.hash(),
            evict: block.evict,
            sigs: Vec::new(),
        };
        let want = self.state.signatures();
        for e in roster.entries() {
            if cert.sigs.len() == want {
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
        (cert.sigs.len() == want).then_some(cert)
    }

    /// The first round whose proposer is alive and not slow at `h`.
    fn round(&self, h: u64, skip: &dyn Fn(u64, NodeId) -> bool) -> Option<u32> {
        let n = self.state.roster().len() as u32;
        let alive = |id: &NodeId| !self.dead.contains(id);
        (0..2 * n)
            .find(|&r| {
                let p = self.state.proposer(h, r);
                alive(&p) && !skip(h, p)
            })
            .or_else(|| (0..n).find(|&r| alive(&self.state.proposer(h, r))))
    }

    /// Commits the next block; `skip` makes a live proposer miss its slot (a slow
    /// node), `mutate` corrupts the block before it is signed.
    pub fn block(
        &mut self,
        txs: Vec<Tx>,
        skip: &dyn Fn(u64, NodeId) -> bool,
        mutate: &mut dyn FnMut(&mut Block),
    ) -> Option<()> {
        let h = self.state.height + 1;
        let roster = self.state.roster().clone();
        let round = self.round(h, skip)?;
        let mut block = Block {
            height: h,
            round,
            epoch: self.state.epoch(),
            prev_hash: self.state.last_hash,
            proposer: self.state.proposer(h, round),
            roster_hash: roster.hash(),
            txs,
            evict: None,
            last_commit: self.state.last_cert.clone(),
        };
        block.evict = self.state.evict_for(&block);
        mutate(&mut block);
        let cert = self.sign_cert(&roster, &block)?;
        self.state.apply(&block, cert.clone());
        self.chain.push(CommittedBlock { block, cert });
        Some(())
    }

    pub fn status(&self) -> Value {
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

pub fn kv(h: u64) -> Tx {
    Tx {
        id: format!("t{h}"),
        body: TxBody::Kv(vec![Op::Append("k".into(), h as i64)]),
    }
}

pub fn params() -> Params {
    Params {
        eviction_total: 8,
        eviction_ratio_num: 1,
        eviction_ratio_den: 10,
        min_roster: 3,
        max_block_txs: 100,
    }
}

pub const S: u64 = 1_000_000_000;
pub const HEIGHTS: u64 = 30;

/// The standard chain: 4 nodes, n5 added at height 3, n4 dead from height 4 and
/// evicted at height 12 by the rule, 30 blocks. `hook(h, block)` corrupts.
pub fn build_chain(hook: &mut dyn FnMut(u64, &mut Block)) -> Builder {
    build_buggy(Bugs::default(), &|b| b.add_tx(5), hook)
}

/// The standard chain built by a model node with `bugs`; `add` makes the AddNode
/// of n5 committed at height 3.
pub fn build_buggy(
    bugs: Bugs,
    add: &dyn Fn(&Builder) -> Tx,
    hook: &mut dyn FnMut(u64, &mut Block),
) -> Builder {
    let mut b = Builder::buggy(4, params(), bugs);
    for h in 1..=HEIGHTS {
        let mut txs = vec![kv(h)];
        if h == 3 {
            txs.push(add(&b));
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
pub fn history(after_heal: &str, end: u64, extra: &[Value]) -> History {
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
pub fn history_with(kind_of: &dyn Fn(u64) -> String, end: u64, extra: &[Value]) -> History {
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

pub fn run_of(b: &Builder, history: History) -> ClusterRun {
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
        fault_timing: None,
    }
}

pub fn standard() -> ClusterRun {
    run_of(&build_chain(&mut |_, _| {}), history("ok", 30, &[]))
}

pub fn by_name<'a>(rs: &'a [CheckResult], name: &str) -> &'a CheckResult {
    rs.iter().find(|r| r.checker == name).expect("checker ran")
}

pub fn has(r: &CheckResult, kind: &str, height: Option<u64>) -> bool {
    r.anomalies
        .iter()
        .any(|a| a.kind == kind && height.is_none_or(|h| a.extra.get("height") == Some(&json!(h))))
}

/// Asserts that only `checker` is invalid, with an anomaly `kind` at `height`.
pub fn assert_caught(run: &ClusterRun, checker: &str, kind: &str, height: Option<u64>) {
    let rs = check_cluster(run);
    let r = by_name(&rs, checker);
    assert_eq!(r.validity, Validity::Invalid, "{checker}: {r:#?}");
    assert!(
        has(r, kind, height),
        "{checker} lacks {kind} at {height:?}: {r:#?}"
    );
}

pub fn assert_valid_except(run: &ClusterRun, except: &[&str]) {
    for r in check_cluster(run) {
        if !except.contains(&r.checker.as_str()) {
            assert_eq!(r.validity, Validity::Valid, "{}: {r:#?}", r.checker);
        }
    }
}
