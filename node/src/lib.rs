//! rollcall-node: the runtime of the rollcall BFT ledger node (protocol.md).
//!
//! Every decision lives in the I/O-free `rollcall-node-core` crate (re-exported
//! here under its module names); this crate drives it with tokio TCP ([`net`]),
//! real timers and the core's store on files with fsync ([`store`]'s `FsDevice`)
//! in [`runtime`], and serves the HTTP API ([`api`]).

pub use rollcall_node_core::{chain, consensus, crypto, eviction, kv, mempool, roster, types};

pub mod api;
pub mod client;
pub mod config;
pub mod net;
pub mod noise;
pub mod runtime;
pub mod store;
pub mod testnet;
pub mod wire;
