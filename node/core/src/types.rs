//! The protocol's data: transactions, blocks, votes, certificates, peer messages
//! and the genesis (protocol.md §1–3).
//!
//! Everything that is hashed or signed is encoded with postcard, whose encoding of
//! these plain structs is canonical (no maps, fixed field order).

use crate::crypto::{sha256, Hash, Keypair, NodeId, Sig};
use serde::{Deserialize, Serialize};

/// Signature domain of votes.
pub const DOMAIN_VOTE: &[u8] = b"rollcall/vote/v1";
/// Signature domain of proposals.
pub const DOMAIN_PROPOSAL: &[u8] = b"rollcall/proposal/v1";
/// Signature domain of AddNode transactions.
pub const DOMAIN_ADD_NODE: &[u8] = b"rollcall/add-node/v1";
/// Signature domain of view-change and status announcements.
pub const DOMAIN_ANNOUNCE: &[u8] = b"rollcall/announce/v1";

/// Canonical bytes of a value (postcard). Encoding these plain types cannot fail;
/// an empty vector would only make signatures fail to verify, never pass.
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).unwrap_or_default()
}

/// One micro-op of a KV transaction (protocol.md §3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// `["r", k, null]`
    Read(String),
    /// `["w", k, v]`
    Write(String, i64),
    /// `["cas", k, [old, new]]`
    Cas(String, i64, i64),
    /// `["append", k, v]`
    Append(String, i64),
}

/// An AddNode request (protocol.md §3, §4): the operator signs exactly these fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddNode {
    /// The new node's id.
    pub id: NodeId,
    /// Its peer address `host:port`.
    pub addr: String,
    /// Makes two requests for the same node distinct.
    pub nonce: u64,
}

impl AddNode {
    /// The bytes an operator signs: the chain id binds the request to one network.
    pub fn sign_bytes(&self, chain_id: &str) -> Vec<u8> {
        encode(&(chain_id, self))
    }
}

/// What a transaction asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxBody {
    /// Micro-ops executed atomically.
    Kv(Vec<Op>),
    /// A membership change, signed by an operator key of the genesis.
    AddNode {
        /// The request.
        req: AddNode,
        /// The operator's signature over `req.sign_bytes(chain_id)`; `None` when unsigned.
        sig: Option<Sig>,
    },
}

/// A transaction with its client-chosen unique id (protocol.md §3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tx {
    /// Unique id: resubmitting it never applies it twice.
    pub id: String,
    /// The request.
    pub body: TxBody,
}

/// The value a read observed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    /// A register.
    Int(i64),
    /// A list built by appends.
    List(Vec<i64>),
}

/// The committed result of one micro-op.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResult {
    /// A read and what it saw (`None` for an absent key).
    Read(String, Option<Value>),
    /// A write.
    Write(String, i64),
    /// A compare-and-set and whether it applied.
    Cas {
        /// Key.
        key: String,
        /// Expected value.
        old: i64,
        /// Value written when the compare held.
        new: i64,
        /// Whether it applied.
        applied: bool,
    },
    /// An append.
    Append(String, i64),
}

/// The outcome of a committed transaction, returned to every submission of its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxOutcome {
    /// The height of the block that holds it.
    pub height: u64,
    /// Per-op results when it applied.
    pub results: Vec<OpResult>,
    /// Why it was rejected at execution (e.g. an AddNode by a non-operator); nothing applied.
    pub error: Option<String>,
}

/// A roster entry (protocol.md §1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterEntry {
    /// 1..n in order.
    pub number: u32,
    /// The node's id.
    pub id: NodeId,
    /// Its peer address.
    pub addr: String,
}

/// Consensus parameters fixed in the genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Window of committed blocks the eviction rule looks at (protocol.md §5).
    pub eviction_total: u64,
    /// Numerator of the eviction ratio.
    pub eviction_ratio_num: u64,
    /// Denominator of the eviction ratio.
    pub eviction_ratio_den: u64,
    /// Never evict below this many nodes.
    pub min_roster: u32,
    /// Largest number of transactions in one block.
    pub max_block_txs: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            eviction_total: 1000,
            eviction_ratio_num: 1,
            eviction_ratio_den: 10,
            min_roster: 3,
            max_block_txs: 4000,
        }
    }
}

/// Height 0: chain id, initial roster, operator keys, parameters (protocol.md §2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// Names the network; bound into AddNode signatures.
    pub chain_id: String,
    /// The initial roster.
    pub roster: Vec<RosterEntry>,
    /// Keys allowed to sign AddNode.
    pub operators: Vec<NodeId>,
    /// Parameters.
    pub params: Params,
}

impl Genesis {
    /// A genesis whose roster is `keys` in order (addresses `hI:1`), for unit tests.
    #[cfg(test)]
    pub(crate) fn for_test(
        keys: &[crate::crypto::Keypair],
        operators: Vec<NodeId>,
        params: Params,
    ) -> Genesis {
        Genesis {
            chain_id: "t".into(),
            roster: keys
                .iter()
                .enumerate()
                .map(|(i, k)| RosterEntry {
                    number: i as u32 + 1,
                    id: k.id(),
                    addr: format!("h{i}:1"),
                })
                .collect(),
            operators,
            params,
        }
    }

    /// The hash that stands as `prev_hash` of block 1.
    pub fn hash(&self) -> Hash {
        sha256(&encode(self))
    }
}

/// Prevote or precommit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum VoteKind {
    /// First voting step.
    Prevote,
    /// Second voting step.
    Precommit,
}

/// A vote (protocol.md §2, §5): it carries the view and the abnormal node's id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// Step.
    pub kind: VoteKind,
    /// Epoch of the roster the voter votes under.
    pub epoch: u64,
    /// Height.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// Block hash, or `None` for nil.
    pub block: Option<Hash>,
    /// The abnormal node the voter's evaluation of the rule found (protocol.md §5).
    pub evict: Option<NodeId>,
    /// The voter.
    pub validator: NodeId,
}

impl Vote {
    /// The signed bytes.
    pub fn sign_bytes(&self) -> Vec<u8> {
        encode(self)
    }
}

/// A vote and its signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedVote {
    /// The vote.
    pub vote: Vote,
    /// The voter's signature.
    pub sig: Sig,
}

/// One precommit inside a certificate: the fields that vary between signers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitSig {
    /// The signer.
    pub validator: NodeId,
    /// Its signature over the precommit.
    pub sig: Sig,
}

/// `q(n)` precommits for one block in one round: the commit certificate (protocol.md §2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// Epoch of the signers' roster.
    pub epoch: u64,
    /// Height.
    pub height: u64,
    /// Round of the precommits.
    pub round: u32,
    /// The block.
    pub block: Hash,
    /// The evict field every precommit carried (equal to the block's).
    pub evict: Option<NodeId>,
    /// The signatures.
    pub sigs: Vec<CommitSig>,
}

impl Certificate {
    /// The precommit that signer `validator` signed for this certificate.
    pub fn vote_of(&self, validator: NodeId) -> Vote {
        Vote {
            kind: VoteKind::Precommit,
            epoch: self.epoch,
            height: self.height,
            round: self.round,
            block: Some(self.block),
            evict: self.evict,
            validator,
        }
    }
}

/// A block (protocol.md §2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Height, from 1.
    pub height: u64,
    /// Round it was proposed in.
    pub round: u32,
    /// Epoch of the roster that decided it.
    pub epoch: u64,
    /// Hash of the previous block (the genesis hash for height 1).
    pub prev_hash: Hash,
    /// The proposer's id.
    pub proposer: NodeId,
    /// Hash of the roster in force.
    pub roster_hash: Hash,
    /// Transactions.
    pub txs: Vec<Tx>,
    /// The node to delete when this block commits (protocol.md §5).
    pub evict: Option<NodeId>,
    /// The certificate of the previous block.
    pub last_commit: Option<Certificate>,
}

impl Block {
    /// SHA-256 over the canonical encoding.
    pub fn hash(&self) -> Hash {
        sha256(&encode(self))
    }
}

/// A block with the certificate that decided it: what the store keeps and sync sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedBlock {
    /// The block.
    pub block: Block,
    /// Its commit certificate.
    pub cert: Certificate,
}

impl CommittedBlock {
    /// An empty block at `height` with an empty certificate: store tests frame and
    /// read it back; it is never valid on a chain.
    #[doc(hidden)]
    pub fn for_test(height: u64) -> Self {
        CommittedBlock {
            block: Block {
                height,
                round: 0,
                epoch: 0,
                prev_hash: Default::default(),
                proposer: Default::default(),
                roster_hash: Default::default(),
                txs: vec![],
                evict: None,
                last_commit: None,
            },
            cert: Certificate {
                epoch: 0,
                height,
                round: 0,
                block: Default::default(),
                evict: None,
                sigs: vec![],
            },
        }
    }
}

/// A proposal (Tendermint's PROPOSAL message).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Epoch.
    pub epoch: u64,
    /// Height.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// Tendermint's valid round (`None` for -1).
    pub valid_round: Option<u32>,
    /// The proposed block.
    pub block: Block,
}

impl Proposal {
    /// The signed bytes: the view and the block hash, not the whole block.
    pub fn sign_bytes(&self, block_hash: &Hash) -> Vec<u8> {
        encode(&(
            self.epoch,
            self.height,
            self.round,
            self.valid_round,
            block_hash,
        ))
    }
}

/// A proposal and its proposer's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedProposal {
    /// The proposal.
    pub proposal: Proposal,
    /// The proposer.
    pub proposer: NodeId,
    /// Signature over `sign_bytes`.
    pub sig: Sig,
}

/// A signed announcement of where a node stands: view change and heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announce {
    /// Sender.
    pub from: NodeId,
    /// Its epoch.
    pub epoch: u64,
    /// Its last committed height.
    pub height: u64,
    /// Hash of its roster.
    pub roster_hash: Hash,
    /// `true` for a NewView after a membership change (protocol.md §4.3), `false` for
    /// a periodic status heartbeat.
    pub new_view: bool,
}

/// An announcement and its signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedAnnounce {
    /// The announcement.
    pub announce: Announce,
    /// Signature.
    pub sig: Sig,
}

/// Everything that crosses the peer port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A proposal.
    Proposal(Box<SignedProposal>),
    /// A prevote or precommit.
    Vote(SignedVote),
    /// Mempool gossip.
    Txs(Vec<Tx>),
    /// NewView or status heartbeat.
    Announce(SignedAnnounce),
    /// Ask for committed blocks `from..=to`.
    SyncRequest {
        /// First height.
        from: u64,
        /// Last height.
        to: u64,
    },
    /// Committed blocks with certificates, in height order.
    SyncResponse(Vec<CommittedBlock>),
}

// ---- Limits on what a transaction and a block may hold (issue 14) -------------------

/// Longest transaction id, key or AddNode address, in bytes (protocol.md §3).
pub const MAX_STR: usize = 256;
/// Most micro-ops in one KV transaction (protocol.md §3).
pub const MAX_OPS: usize = 64;
/// Largest encoded transaction. The field limits above already keep a transaction
/// under ~18 KiB; this bound is what the block budget below is counted in.
pub const MAX_TX_BYTES: usize = 32 << 10;
/// Most encoded transaction bytes in one block: the proposer stops reaping there and
/// validators refuse a proposal over it, so a block always fits a peer frame.
pub const MAX_BLOCK_TX_BYTES: usize = 1 << 20;

/// Why a transaction can never apply, whichever way it arrived (API, gossip, block).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// Id empty or too long.
    #[error("transaction id must be 1 to {MAX_STR} bytes")]
    Id,
    /// No ops or too many.
    #[error("a transaction holds 1 to {MAX_OPS} micro-ops")]
    OpCount,
    /// A key empty or too long.
    #[error("ops[{0}]: keys are 1 to {MAX_STR} bytes")]
    Key(usize),
    /// An AddNode address too long.
    #[error("AddNode address is longer than {MAX_STR} bytes")]
    Addr,
    /// The encoded transaction is too large.
    #[error("transaction of {0} bytes is over the {MAX_TX_BYTES}-byte limit")]
    Size(usize),
}

/// The one stateless validation of a transaction (issue 14): the API, mempool gossip
/// and block validation all call it, so a transaction accepted on one path is accepted
/// on every path. Values are any `i64` (the JSON form refuses anything else).
/// Returns the encoded size, which block budgets are counted in.
pub fn validate_tx(tx: &Tx) -> Result<usize, TxError> {
    if tx.id.is_empty() || tx.id.len() > MAX_STR {
        return Err(TxError::Id);
    }
    match &tx.body {
        TxBody::Kv(ops) => {
            if ops.is_empty() || ops.len() > MAX_OPS {
                return Err(TxError::OpCount);
            }
            for (i, op) in ops.iter().enumerate() {
                let k = match op {
                    Op::Read(k) | Op::Write(k, _) | Op::Cas(k, _, _) | Op::Append(k, _) => k,
                };
                if k.is_empty() || k.len() > MAX_STR {
                    return Err(TxError::Key(i));
                }
            }
        }
        TxBody::AddNode { req, .. } if req.addr.len() > MAX_STR => return Err(TxError::Addr),
        TxBody::AddNode { .. } => {}
    }
    let size = postcard::experimental::serialized_size(tx).unwrap_or(usize::MAX);
    if size > MAX_TX_BYTES {
        return Err(TxError::Size(size));
    }
    Ok(size)
}

/// The transaction of an operator-signed AddNode (protocol.md §4): `id` joins at
/// peer address `addr`; `nonce` makes each request unique.
pub fn signed_add_node(
    chain_id: &str,
    operator: &Keypair,
    id: NodeId,
    addr: &str,
    nonce: u64,
    tx_id: String,
) -> Tx {
    let req = AddNode {
        id,
        addr: addr.to_string(),
        nonce,
    };
    let sig = operator.sign(DOMAIN_ADD_NODE, &req.sign_bytes(chain_id));
    Tx {
        id: tx_id,
        body: TxBody::AddNode {
            req,
            sig: Some(sig),
        },
    }
}
