//! The adversarial client (issue 12): alongside the workload, one client that
//! resubmits transaction ids (with the same and with other ops, to other nodes,
//! across crashes) and submits unsigned, wrong-key, forged and replayed AddNodes.
//! Its requests and answers go to `client-attacks.json`; the `client-attacks`
//! checker (`rollcall_checkers::client_attacks`) judges them with the nodes' final
//! state, and the chain checkers see whatever it got committed.
//!
//! It draws from its own seeded stream, so it never shifts the workload's choices,
//! and only acts when `--adversarial-client` is on.

use crate::backend::{Backend, ClientOutcome, Ticket};
use crate::cluster::{addr, ClusterSpec};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rollcall_history::{Answer, AttackKind, ClientAttack};
use rollcall_node::crypto::Keypair;
use rollcall_node::types::{signed_add_node, AddNode, Op, Tx, TxBody, TxOutcome};
use std::collections::{BTreeMap, VecDeque};

/// Mean gap between two adversarial requests, ns (uniform in ½×–1½×).
const GAP_NS: u64 = 800_000_000;
/// Workload transactions remembered for resubmission.
const SEEN_LIMIT: usize = 256;

/// A workload transaction the client may resubmit.
struct Seen {
    tx: Tx,
    node: String,
    /// Its committed answer; `None` when its outcome is unknown (`info`).
    first: Option<Answer>,
}

/// The adversarial client of one run.
pub(crate) struct Attacker {
    rng: ChaCha8Rng,
    next_ns: u64,
    seen: VecDeque<Seen>,
    /// Operator AddNodes the nemesis got committed (what a replay or forgery reuses).
    operator_adds: Vec<Tx>,
    pending: BTreeMap<Ticket, usize>,
    records: Vec<ClientAttack>,
    seq: u64,
}

impl Attacker {
    /// A client drawing from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Attacker {
            rng: ChaCha8Rng::seed_from_u64(seed),
            next_ns: GAP_NS,
            seen: VecDeque::new(),
            operator_adds: Vec::new(),
            pending: BTreeMap::new(),
            records: Vec::new(),
            seq: 0,
        }
    }

    /// A workload transaction completed `ok` (`first` is its answer) or `info`
    /// (`None`); a `fail` is not offered: it certainly did not apply, so a
    /// resubmission that applies would contradict the history.
    pub(crate) fn saw(&mut self, tx: Tx, node: &str, first: Option<&TxOutcome>) {
        if self.seen.len() == SEEN_LIMIT {
            self.seen.pop_front();
        }
        self.seen.push_back(Seen {
            tx,
            node: node.to_string(),
            first: first.map(answer_ok),
        });
    }

    /// The nemesis's AddNode `tx` was committed.
    pub(crate) fn saw_operator_add(&mut self, tx: Tx) {
        self.operator_adds.push(tx);
    }

    /// Whether `ticket` is one of its requests.
    pub(crate) fn owns(&self, ticket: Ticket) -> bool {
        self.pending.contains_key(&ticket)
    }

    /// Whether any request is unanswered.
    pub(crate) fn any_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Records the answer to `ticket`.
    pub(crate) fn answered(&mut self, ticket: Ticket, time_ns: u64, outcome: &ClientOutcome) {
        if let Some(i) = self.pending.remove(&ticket) {
            let r = &mut self.records[i];
            r.answered_ns = Some(time_ns);
            r.answer = Some(match outcome {
                ClientOutcome::Ok(o) => answer_ok(o),
                ClientOutcome::Fail(e) => Answer::Fail { error: e.clone() },
                ClientOutcome::Info(e) => Answer::Info { error: e.clone() },
            });
        }
    }

    /// Gives up on requests older than `timeout_ns` (recorded `info`).
    pub(crate) fn timeouts(&mut self, b: &mut dyn Backend, now: u64, timeout_ns: u64) {
        let old: Vec<Ticket> = (self.pending.iter())
            .filter(|(_, i)| now.saturating_sub(self.records[**i].time_ns) >= timeout_ns)
            .map(|(t, _)| *t)
            .collect();
        for t in old {
            b.abandon(t);
            self.answered(t, now, &ClientOutcome::Info("timeout".into()));
        }
    }

    /// Sends the next request when it is due, to one of `nodes`.
    pub(crate) fn tick(&mut self, b: &mut dyn Backend, spec: &ClusterSpec, nodes: &[String]) {
        let now = b.now_ns();
        if now < self.next_ns || nodes.is_empty() {
            return;
        }
        self.next_ns = now + self.rng.gen_range(GAP_NS / 2..=GAP_NS + GAP_NS / 2);
        let Some((kind, tx, original, adds, avoid)) = self.draw(spec) else {
            return;
        };
        let others: Vec<&String> = nodes
            .iter()
            .filter(|n| Some(*n) != avoid.as_ref())
            .collect();
        let node = (others.choose(&mut self.rng).copied())
            .or(nodes.first())
            .cloned()
            .unwrap_or_default();
        let tx_id = tx.id.clone();
        let ticket = b.submit(&node, tx);
        self.pending.insert(ticket, self.records.len());
        self.records.push(ClientAttack {
            time_ns: now,
            kind,
            node,
            tx_id,
            original,
            adds,
            answer: None,
            answered_ns: None,
        });
    }

    /// The record, in sending order.
    pub(crate) fn into_records(self) -> Vec<ClientAttack> {
        self.records
    }

    /// Chooses what to send: (kind, transaction, original answer, node it adds,
    /// node to avoid). Kinds without material yet fall back to a forged AddNode.
    #[allow(clippy::type_complexity)]
    fn draw(
        &mut self,
        spec: &ClusterSpec,
    ) -> Option<(
        AttackKind,
        Tx,
        Option<Answer>,
        Option<String>,
        Option<String>,
    )> {
        let kind = *AttackKind::ALL.choose(&mut self.rng)?;
        match kind {
            AttackKind::ResubmitSame | AttackKind::ResubmitOther if !self.seen.is_empty() => {
                let i = self.rng.gen_range(0..self.seen.len());
                let s = &self.seen[i];
                let other = kind == AttackKind::ResubmitOther;
                // Other ops only over an id that committed: if its outcome were
                // unknown, the other ops could legitimately be the ones to apply.
                if other && s.first.is_none() {
                    return None;
                }
                let mut tx = s.tx.clone();
                if other {
                    tx.body = TxBody::Kv(vec![Op::Append(format!("adv-{}", tx.id), 1)]);
                }
                Some((kind, tx, s.first.clone(), None, Some(s.node.clone())))
            }
            AttackKind::AddNodeForgedId | AttackKind::AddNodeReplay
                if !self.operator_adds.is_empty() =>
            {
                let mut tx = self.operator_adds.choose(&mut self.rng)?.clone();
                self.seq += 1;
                tx.id = format!("adv-{}-{}", kind.name(), self.seq);
                if let TxBody::AddNode { req, .. } = &mut tx.body {
                    if kind == AttackKind::AddNodeForgedId {
                        req.id = self.stranger().id();
                    }
                    let adds = Some(req.id.to_hex());
                    return Some((kind, tx, None, adds, None));
                }
                None
            }
            _ => Some(self.forged_add_node(spec)),
        }
    }

    /// An AddNode for a node nobody added: unsigned or signed by a stranger.
    fn forged_add_node(
        &mut self,
        spec: &ClusterSpec,
    ) -> (
        AttackKind,
        Tx,
        Option<Answer>,
        Option<String>,
        Option<String>,
    ) {
        let newcomer = self.stranger();
        self.seq += 1;
        let nonce = self.rng.gen();
        let a = addr(&format!("adv{}", self.seq));
        let (kind, tx) = if self.rng.gen_bool(0.5) {
            let kind = AttackKind::AddNodeUnsigned;
            let req = AddNode {
                id: newcomer.id(),
                addr: a,
                nonce,
            };
            let body = TxBody::AddNode { req, sig: None };
            let id = format!("adv-{}-{}", kind.name(), self.seq);
            (kind, Tx { id, body })
        } else {
            let kind = AttackKind::AddNodeWrongKey;
            let id = format!("adv-{}-{}", kind.name(), self.seq);
            let signer = self.stranger();
            let tx = signed_add_node(
                &spec.genesis.chain_id,
                &signer,
                newcomer.id(),
                &a,
                nonce,
                id,
            );
            (kind, tx)
        };
        (kind, tx, None, Some(newcomer.id().to_hex()), None)
    }

    /// A fresh key that is no operator's and no node's.
    fn stranger(&mut self) -> Keypair {
        Keypair::from_secret(self.rng.gen())
    }
}

/// A committed outcome as the record stores it.
fn answer_ok(o: &TxOutcome) -> Answer {
    Answer::Ok {
        height: o.height,
        results: serde_json::to_value(&o.results).unwrap_or_default(),
        error: o.error.clone(),
    }
}
