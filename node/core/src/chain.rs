//! The committed state: a pure function of the genesis and the committed blocks.
//!
//! Replaying the same chain yields the same roster, epoch, proposal map, KV state and
//! transaction outcomes on every node (protocol.md §4.2, §5, §6).

use crate::crypto::{Hash, NodeId, Verifier};
use crate::eviction::{abnormal_node, ProposalMap};
use crate::kv::KvState;
use crate::roster::{valid_addr, Roster};
use crate::types::{
    Block, Certificate, Genesis, Params, Tx, TxBody, TxOutcome, DOMAIN_ADD_NODE, DOMAIN_VOTE,
};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Why a block or certificate is not acceptable at the next height.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Wrong height.
    #[error("block height {got}, expected {want}")]
    Height {
        /// Found.
        got: u64,
        /// Expected.
        want: u64,
    },
    /// Wrong epoch.
    #[error("block epoch {got}, expected {want}")]
    Epoch {
        /// Found.
        got: u64,
        /// Expected.
        want: u64,
    },
    /// Does not extend our chain.
    #[error("prev_hash does not match the last committed block")]
    PrevHash,
    /// Not the roster in force.
    #[error("roster_hash does not match the roster in force")]
    RosterHash,
    /// Wrong proposer for its round.
    #[error("proposer is not the one of (height, round)")]
    Proposer,
    /// Evict field disagrees with the rule (protocol.md §5).
    #[error("evict field disagrees with the eviction rule")]
    Evict,
    /// Bad `last_commit`.
    #[error("last_commit: {0}")]
    LastCommit(String),
    /// A transaction id appears twice or was already committed.
    #[error("transaction {0:?} is duplicated or already committed")]
    DuplicateTx(String),
    /// Too many transactions.
    #[error("block has {0} transactions, more than the limit")]
    TooManyTxs(usize),
    /// Bad certificate.
    #[error("certificate: {0}")]
    Cert(String),
    /// A transaction fails the one stateless validation (issue 14).
    #[error("transaction {0:?}: {1}")]
    InvalidTx(String, crate::types::TxError),
    /// The transactions' encoded bytes exceed the block budget (issue 14).
    #[error("block holds {0} transaction bytes, more than the limit")]
    TooManyBytes(usize),
}

/// What committing a block changed.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Outcome of each transaction in the block, in order.
    pub outcomes: Vec<(String, TxOutcome)>,
    /// Nodes added by AddNode.
    pub added: Vec<NodeId>,
    /// The node deleted by eviction.
    pub evicted: Option<NodeId>,
}

impl Applied {
    /// Whether the roster changed (a view change follows, protocol.md §4.3).
    pub fn membership_changed(&self) -> bool {
        !self.added.is_empty() || self.evicted.is_some()
    }
}

/// One roster and the heights it governs.
#[derive(Debug, Clone)]
pub struct Era {
    /// First height it governs.
    pub from_height: u64,
    /// Its epoch.
    pub epoch: u64,
    /// The roster.
    pub roster: Roster,
}

/// The state derived from the committed chain.
#[derive(Debug, Clone)]
pub struct ChainState {
    genesis: Genesis,
    /// Last committed height (0 = only the genesis).
    pub height: u64,
    /// Hash of the last committed block (the genesis hash at height 0).
    pub last_hash: Hash,
    /// Certificate of the last committed block.
    pub last_cert: Option<Certificate>,
    eras: Vec<Era>,
    proposals: ProposalMap,
    kv: KvState,
    outcomes: HashMap<String, TxOutcome>,
    evicted_ever: BTreeSet<NodeId>,
    /// (operator, nonce) of every applied AddNode: a replay never applies again, across
    /// evictions, and across restarts since replaying the chain rebuilds it (issue 14).
    used_nonces: BTreeSet<(NodeId, u64)>,
}

impl ChainState {
    /// The state at height 0.
    pub fn new(genesis: Genesis) -> Self {
        let roster = Roster::new(genesis.roster.clone());
        ChainState {
            last_hash: genesis.hash(),
            genesis,
            height: 0,
            last_cert: None,
            eras: vec![Era {
                from_height: 1,
                epoch: 0,
                roster,
            }],
            proposals: ProposalMap::default(),
            kv: KvState::default(),
            outcomes: HashMap::new(),
            evicted_ever: BTreeSet::new(),
            used_nonces: BTreeSet::new(),
        }
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Parameters.
    pub fn params(&self) -> &Params {
        &self.genesis.params
    }

    fn era(&self) -> &Era {
        // `eras` is never empty: `new` pushes the genesis era.
        &self.eras[self.eras.len() - 1]
    }

    /// The roster that governs the next height.
    pub fn roster(&self) -> &Roster {
        &self.era().roster
    }

    /// Epoch of the next height.
    pub fn epoch(&self) -> u64 {
        self.era().epoch
    }

    /// Every roster so far and the heights it governs.
    pub fn eras(&self) -> &[Era] {
        &self.eras
    }

    /// The era in force at `height` (≥ 1).
    pub fn era_at(&self, height: u64) -> &Era {
        self.eras
            .iter()
            .rev()
            .find(|e| e.from_height <= height)
            .unwrap_or(&self.eras[0])
    }

    /// The proposal map of the current window.
    pub fn proposals(&self) -> &ProposalMap {
        &self.proposals
    }

    /// The rule of protocol.md §5 for the next height.
    pub fn expected_evict(&self) -> Option<NodeId> {
        abnormal_node(&self.proposals, self.roster(), self.params())
    }

    /// The outcome of a committed transaction id.
    pub fn outcome(&self, id: &str) -> Option<&TxOutcome> {
        self.outcomes.get(id)
    }

    /// Whether `id` was ever evicted (and not since re-added).
    pub fn was_evicted(&self, id: &NodeId) -> bool {
        self.evicted_ever.contains(id)
    }

    /// The KV state.
    pub fn kv(&self) -> &KvState {
        &self.kv
    }

    /// Checks a proposed block for the next height (Tendermint's `valid(v)`).
    pub fn check_block(&self, b: &Block, verifier: &Verifier) -> Result<(), BlockError> {
        self.check_block_with(b, verifier, true)
    }

    /// Checks a synced block that arrives with its own certificate. Its `last_commit`
    /// is linked and shaped but its signatures are not re-verified: the block's
    /// certificate (checked by [`ChainState::check_cert`]) proves that a quorum, so at
    /// least one honest validator, already validated it, the last commit included
    /// (the same reasoning as CometBFT's block sync). Halves the signature work.
    pub fn check_synced_block(&self, b: &Block, verifier: &Verifier) -> Result<(), BlockError> {
        self.check_block_with(b, verifier, false)
    }

    fn check_block_with(
        &self,
        b: &Block,
        verifier: &Verifier,
        verify_last_commit: bool,
    ) -> Result<(), BlockError> {
        let want = self.height + 1;
        if b.height != want {
            return Err(BlockError::Height {
                got: b.height,
                want,
            });
        }
        if b.epoch != self.epoch() {
            return Err(BlockError::Epoch {
                got: b.epoch,
                want: self.epoch(),
            });
        }
        if b.prev_hash != self.last_hash {
            return Err(BlockError::PrevHash);
        }
        if b.roster_hash != self.roster().hash() {
            return Err(BlockError::RosterHash);
        }
        if b.proposer != self.roster().proposer(b.height, b.round) {
            return Err(BlockError::Proposer);
        }
        if b.evict != self.expected_evict() {
            return Err(BlockError::Evict);
        }
        if b.txs.len() > self.params().max_block_txs as usize {
            return Err(BlockError::TooManyTxs(b.txs.len()));
        }
        let mut bytes = 0usize;
        for tx in &b.txs {
            bytes += crate::types::validate_tx(tx)
                .map_err(|e| BlockError::InvalidTx(tx.id.clone(), e))?;
        }
        if bytes > crate::types::MAX_BLOCK_TX_BYTES {
            return Err(BlockError::TooManyBytes(bytes));
        }
        let mut ids = HashSet::with_capacity(b.txs.len());
        for tx in &b.txs {
            if self.outcomes.contains_key(&tx.id) || !ids.insert(tx.id.as_str()) {
                return Err(BlockError::DuplicateTx(tx.id.clone()));
            }
        }
        match (&b.last_commit, &self.last_cert) {
            (None, None) if self.height == 0 => {}
            (Some(c), _) if self.height > 0 => {
                let era = self.era_at(self.height);
                if verify_last_commit {
                    verify_cert(c, self.height, &self.last_hash, era, verifier)
                        .map_err(BlockError::LastCommit)?;
                } else if c.height != self.height || c.block != self.last_hash {
                    return Err(BlockError::LastCommit("certifies another block".into()));
                }
            }
            _ => return Err(BlockError::LastCommit("missing or unexpected".into())),
        }
        Ok(())
    }

    /// Checks that `cert` decides `block` at the next height under the roster in force.
    pub fn check_cert(
        &self,
        block: &Block,
        cert: &Certificate,
        verifier: &Verifier,
    ) -> Result<(), BlockError> {
        if cert.evict != block.evict {
            return Err(BlockError::Cert("evict differs from the block's".into()));
        }
        verify_cert(cert, self.height + 1, &block.hash(), self.era(), verifier)
            .map_err(BlockError::Cert)
    }

    /// Commits the next block: executes its transactions, records its proposer,
    /// applies membership changes (protocol.md §4.2, §5). The caller has checked it.
    pub fn apply(&mut self, block: &Block, cert: Certificate) -> Applied {
        let mut applied = Applied::default();
        let h = block.height;
        let mut roster = self.roster().clone();
        let mut changed = false;
        for tx in &block.txs {
            let outcome = self.execute(tx, h, &mut roster, &mut applied, &mut changed);
            self.outcomes.insert(tx.id.clone(), outcome.clone());
            applied.outcomes.push((tx.id.clone(), outcome));
        }
        let cap = self.params().eviction_total;
        self.proposals.record(block.proposer, cap);
        if let Some(x) = block.evict {
            if roster.remove(&x) {
                self.evicted_ever.insert(x);
                applied.evicted = Some(x);
                changed = true;
            }
        }
        if changed {
            self.proposals.reset();
            let epoch =
                self.epoch() + applied.added.len() as u64 + applied.evicted.iter().count() as u64;
            self.eras.push(Era {
                from_height: h + 1,
                epoch,
                roster,
            });
        }
        self.height = h;
        self.last_hash = block.hash();
        self.last_cert = Some(cert);
        applied
    }

    /// The AddNode checks of protocol.md §3: signed by an operator of the genesis, not
    /// already in the roster, a well-formed address, a nonce that operator never used
    /// (issue 14; the checkers' oracle, `checkers/src/oracle/add_node.rs`, applies the
    /// same rule). Returns the signing operator, under whom the nonce is recorded.
    pub fn check_add_node(
        &self,
        roster: &Roster,
        req: &crate::types::AddNode,
        sig: Option<&crate::crypto::Sig>,
    ) -> Result<NodeId, String> {
        let Some(sig) = sig else {
            return Err("AddNode is not signed".into());
        };
        let bytes = req.sign_bytes(&self.genesis.chain_id);
        let v = Verifier::new();
        let Some(operator) = self
            .genesis
            .operators
            .iter()
            .find(|op| v.verify(op, DOMAIN_ADD_NODE, &bytes, sig))
            .copied()
        else {
            return Err("AddNode is not signed by an operator key of the genesis".into());
        };
        if crate::crypto::check_public_key(&req.id).is_err() {
            return Err("AddNode id is not an ed25519 public key".into());
        }
        if roster.contains(&req.id) {
            return Err(format!("node {} is already in the roster", req.id));
        }
        if !valid_addr(&req.addr) {
            return Err(format!("malformed address {:?}", req.addr));
        }
        if self.used_nonces.contains(&(operator, req.nonce)) {
            return Err(format!(
                "AddNode replayed: operator {operator} already used nonce {}",
                req.nonce
            ));
        }
        Ok(operator)
    }

    fn execute(
        &mut self,
        tx: &Tx,
        height: u64,
        roster: &mut Roster,
        applied: &mut Applied,
        changed: &mut bool,
    ) -> TxOutcome {
        let result = match &tx.body {
            TxBody::Kv(ops) => self.kv.execute(ops),
            TxBody::AddNode { req, sig } => match self.check_add_node(roster, req, sig.as_ref()) {
                Ok(operator) => {
                    self.used_nonces.insert((operator, req.nonce));
                    roster.add(req.id, req.addr.clone());
                    self.evicted_ever.remove(&req.id);
                    applied.added.push(req.id);
                    *changed = true;
                    Ok(Vec::new())
                }
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(results) => TxOutcome {
                height,
                results,
                error: None,
            },
            Err(e) => TxOutcome {
                height,
                results: Vec::new(),
                error: Some(e),
            },
        }
    }
}

/// Checks a certificate: right view and block, `q(n)` distinct roster members, every
/// signature valid over the precommit it stands for (protocol.md §2).
pub fn verify_cert(
    cert: &Certificate,
    height: u64,
    block: &Hash,
    era: &Era,
    verifier: &Verifier,
) -> Result<(), String> {
    if cert.height != height {
        return Err(format!("height {} instead of {height}", cert.height));
    }
    if &cert.block != block {
        return Err("certifies another block".into());
    }
    if cert.epoch != era.epoch {
        return Err(format!("epoch {} instead of {}", cert.epoch, era.epoch));
    }
    let mut signers = BTreeSet::new();
    for cs in &cert.sigs {
        if !era.roster.contains(&cs.validator) {
            return Err(format!(
                "signer {} is not in the roster",
                cs.validator.short()
            ));
        }
        if !signers.insert(cs.validator) {
            return Err(format!("signer {} appears twice", cs.validator.short()));
        }
        let vote = cert.vote_of(cs.validator);
        if !verifier.verify(&cs.validator, DOMAIN_VOTE, &vote.sign_bytes(), &cs.sig) {
            return Err(format!("bad signature from {}", cs.validator.short()));
        }
    }
    if signers.len() < era.roster.quorum() {
        return Err(format!(
            "{} signatures, quorum is {}",
            signers.len(),
            era.roster.quorum()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::types::{AddNode, CommitSig, TxBody};
    use proptest::prelude::*;

    /// One step of a membership history.
    #[derive(Clone, Debug)]
    enum Step {
        /// A block proposed by roster index `p % n`, holding an AddNode for fresh key `k`.
        Add { p: usize, k: u8, signed: bool },
        /// An empty block proposed by roster index `p % n`.
        Empty { p: usize },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (any::<usize>(), 10u8..60, prop::bool::weighted(0.8))
                .prop_map(|(p, k, signed)| Step::Add { p, k, signed }),
            any::<usize>().prop_map(|p| Step::Empty { p }),
        ]
    }

    /// Builds a valid chain from `steps` (evict fields as the rule demands), replays it
    /// on a second state, and checks both against a plain model of the roster.
    fn run(steps: Vec<Step>) -> u64 {
        let op = Keypair::from_secret([1; 32]);
        let mut keys: std::collections::BTreeMap<NodeId, Keypair> = Default::default();
        let genesis_keys: Vec<Keypair> = (2..6).map(|i| Keypair::from_secret([i; 32])).collect();
        for k in &genesis_keys {
            keys.insert(k.id(), k.clone());
        }
        let genesis = Genesis::for_test(
            &genesis_keys,
            vec![op.id()],
            Params {
                eviction_total: 6,
                ..Params::default()
            },
        );
        let v = Verifier::new();
        let mut a = ChainState::new(genesis.clone());
        let mut blocks = Vec::new();
        // The model: ordered ids and the epoch.
        let mut model: Vec<NodeId> = genesis.roster.iter().map(|e| e.id).collect();
        let mut epoch = 0u64;
        for (h, s) in steps.into_iter().enumerate() {
            let h = h as u64 + 1;
            let n = a.roster().len();
            let (p, txs) = match s {
                Step::Add { p, k, signed } => {
                    let nk = Keypair::from_secret([k; 32]);
                    keys.insert(nk.id(), nk.clone());
                    let req = AddNode {
                        id: nk.id(),
                        addr: format!("n{k}:9"),
                        nonce: h,
                    };
                    let sig = signed
                        .then(|| op.sign(DOMAIN_ADD_NODE, &req.sign_bytes(&genesis.chain_id)));
                    (
                        p,
                        vec![Tx {
                            id: format!("add{h}"),
                            body: TxBody::AddNode { req, sig },
                        }],
                    )
                }
                Step::Empty { p } => (p, vec![]),
            };
            let proposer = a.roster().entries()[p % n].id;
            let round = (0..n as u32)
                .find(|r| a.roster().proposer(h, *r) == proposer)
                .unwrap_or(0);
            let block = Block {
                height: h,
                round,
                epoch: a.epoch(),
                prev_hash: a.last_hash,
                proposer,
                roster_hash: a.roster().hash(),
                txs,
                evict: a.expected_evict(),
                last_commit: a.last_cert.clone(),
            };
            assert_eq!(a.check_block(&block, &v), Ok(()), "height {h}");
            let hash = block.hash();
            let q = a.roster().quorum();
            let mut cert = Certificate {
                epoch: a.epoch(),
                height: h,
                round,
                block: hash,
                evict: block.evict,
                sigs: vec![],
            };
            for e in a.roster().entries().iter().take(q) {
                let k = &keys[&e.id];
                cert.sigs.push(CommitSig {
                    validator: e.id,
                    sig: k.sign(DOMAIN_VOTE, &cert.vote_of(e.id).sign_bytes()),
                });
            }
            assert_eq!(a.check_cert(&block, &cert, &v), Ok(()));
            // Model of protocol.md §4.2 and §5.
            // Each change (add or delete) is +1 epoch, so a block that adds and evicts
            // moves the epoch by 2.
            for tx in &block.txs {
                if let TxBody::AddNode { req, sig: Some(_) } = &tx.body {
                    if !model.contains(&req.id) {
                        model.push(req.id);
                        epoch += 1;
                    }
                }
            }
            if let Some(x) = block.evict {
                model.retain(|id| *id != x);
                epoch += 1;
            }
            a.apply(&block, cert.clone());
            blocks.push((block, cert));
            let ids: Vec<NodeId> = a.roster().entries().iter().map(|e| e.id).collect();
            assert_eq!(ids, model, "height {h}");
            assert_eq!(a.epoch(), epoch);
            let nums: Vec<u32> = a.roster().entries().iter().map(|e| e.number).collect();
            assert_eq!(nums, (1..=model.len() as u32).collect::<Vec<_>>());
        }
        // Another node replaying the same chain holds the same roster at every height.
        let mut b = ChainState::new(genesis);
        for (block, cert) in &blocks {
            assert_eq!(b.check_block(block, &v), Ok(()));
            b.apply(block, cert.clone());
            assert_eq!(b.era_at(block.height).roster, a.era_at(block.height).roster);
        }
        assert_eq!(b.roster(), a.roster());
        assert_eq!(b.epoch(), a.epoch());
        assert_eq!(b.last_hash, a.last_hash);
        a.epoch()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn any_sequence_of_adds_and_evictions_replays_to_the_same_roster(steps in prop::collection::vec(step(), 1..60)) {
            run(steps);
        }
    }

    #[test]
    fn a_skewed_history_evicts_and_re_adds() {
        // Node index 0 proposes everything: the others fall below the cut-off one by one
        // (down to min_roster), then a re-add resets the window.
        let mut steps = vec![Step::Empty { p: 0 }; 30];
        steps.push(Step::Add {
            p: 0,
            k: 3,
            signed: true,
        });
        steps.extend(vec![Step::Empty { p: 0 }; 10]);
        // An eviction (down to min_roster = 3), the add, and, since node 0 still
        // proposes everything, a second eviction once the fresh window fills.
        assert_eq!(run(steps), 3);
    }

    /// Applies `txs` as the next block, unchecked (apply trusts its caller), and
    /// returns their outcomes' errors.
    fn apply_txs(a: &mut ChainState, txs: Vec<Tx>) -> Vec<Option<String>> {
        let h = a.height + 1;
        let block = Block {
            height: h,
            round: 0,
            epoch: a.epoch(),
            prev_hash: a.last_hash,
            proposer: a.roster().proposer(h, 0),
            roster_hash: a.roster().hash(),
            txs,
            evict: a.expected_evict(),
            last_commit: a.last_cert.clone(),
        };
        let cert = Certificate {
            epoch: a.epoch(),
            height: h,
            round: 0,
            block: block.hash(),
            evict: block.evict,
            sigs: vec![],
        };
        let out = a.apply(&block, cert);
        out.outcomes.into_iter().map(|(_, o)| o.error).collect()
    }

    #[test]
    fn a_replayed_or_reused_add_node_nonce_is_rejected_at_execution() {
        let op = Keypair::from_secret([1; 32]);
        let keys: Vec<Keypair> = (2..6).map(|i| Keypair::from_secret([i; 32])).collect();
        let genesis = Genesis::for_test(&keys, vec![op.id()], Params::default());
        let add = |k: u8, nonce: u64, tx: &str| {
            let req = AddNode {
                id: Keypair::from_secret([k; 32]).id(),
                addr: format!("n{k}:9"),
                nonce,
            };
            let sig = Some(op.sign(DOMAIN_ADD_NODE, &req.sign_bytes(&genesis.chain_id)));
            Tx {
                id: tx.into(),
                body: TxBody::AddNode { req, sig },
            }
        };
        let mut a = ChainState::new(genesis.clone());
        // Same nonce twice in one block: the second is a re-use.
        let errs = apply_txs(&mut a, vec![add(10, 5, "a"), add(11, 5, "b")]);
        assert_eq!(errs[0], None);
        assert!(
            errs[1].as_deref().unwrap().contains("already used nonce 5"),
            "{errs:?}"
        );
        // The node leaves the roster (as an eviction would); the old request, under a
        // new transaction id, does not bring it back.
        let ten = Keypair::from_secret([10; 32]).id();
        let mut roster = a.roster().clone();
        assert!(roster.remove(&ten));
        assert!(a
            .check_add_node(
                &roster,
                &match add(10, 5, "c").body {
                    TxBody::AddNode { req, .. } => req,
                    TxBody::Kv(_) => unreachable!(),
                },
                Some(
                    &op.sign(
                        DOMAIN_ADD_NODE,
                        &AddNode {
                            id: ten,
                            addr: "n10:9".into(),
                            nonce: 5,
                        }
                        .sign_bytes(&genesis.chain_id)
                    )
                )
            )
            .unwrap_err()
            .contains("replayed"));
        // A fresh nonce applies; a replay of it in a later block does not.
        assert_eq!(apply_txs(&mut a, vec![add(12, 6, "d")]), vec![None]);
        let errs = apply_txs(&mut a, vec![add(13, 6, "e")]);
        assert!(errs[0].as_deref().unwrap().contains("replayed"), "{errs:?}");
    }
}
