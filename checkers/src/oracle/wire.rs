//! The wire contract shared with the node: data types, canonical encoding, hashing
//! and signature verification. This is the only module of the checkers that
//! imports the node crate; nothing rule-bearing (quorum, proposer, roster changes,
//! eviction, AddNode validity, KV semantics) may be imported here, those are
//! re-implemented from the spec in [`crate::oracle`].

pub use rollcall_node_core::crypto::{
    check_public_key, sha256, Bytes32, Hash, NodeId, Sig, Verifier,
};
pub use rollcall_node_core::types::{
    encode, AddNode, Block, Certificate, CommitSig, CommittedBlock, Genesis, Op, OpResult, Params,
    RosterEntry, Tx, TxBody, Value, DOMAIN_ADD_NODE, DOMAIN_VOTE,
};

/// Test-only: signing keys, to build chains with real signatures.
#[cfg(test)]
pub use rollcall_node_core::crypto::Keypair;
