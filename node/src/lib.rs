//! rollcall-node: a Tendermint-style BFT ledger whose consensus network changes while
//! it runs (protocol.md). The consensus core ([`consensus`]) is sans-IO; the runtime
//! ([`runtime`]) drives it with tokio TCP, an fsync'd store and an HTTP API.

pub mod api;
pub mod chain;
pub mod client;
pub mod config;
pub mod consensus;
pub mod crypto;
pub mod eviction;
pub mod kv;
pub mod mempool;
pub mod net;
pub mod roster;
pub mod runtime;
pub mod store;
pub mod testnet;
pub mod types;
pub mod wire;
