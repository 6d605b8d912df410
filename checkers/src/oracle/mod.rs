//! An independent oracle of the protocol's rules (protocol.md §1, §3, §4, §5),
//! written from the spec and not from the node, so that a bug in one of the node's
//! formulas shows up as a checker finding instead of being copied into the checker.
//!
//! Only the wire contract comes from the node ([`wire`]): the data types, their
//! canonical byte encoding, hashing and ed25519 signature verification. Every rule
//! that decides what a valid chain is lives here: the quorum ([`quorum`]), proposer
//! rotation ([`proposer`]), the roster and its changes ([`roster`]), AddNode
//! validity ([`add_node`]), the eviction rule and its proposal window
//! ([`eviction`]), the membership replay ([`membership`]), the KV application
//! ([`kv`]) and the full chain replay that yields transaction outcomes
//! ([`ledger`]).

pub mod add_node;
pub mod eviction;
pub mod kv;
pub mod ledger;
pub mod membership;
pub mod proposer;
pub mod quorum;
pub mod roster;
pub mod wire;
