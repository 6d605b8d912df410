//! rollcall-node-core: everything the rollcall node decides, with no I/O (protocol.md).
//!
//! The types, crypto, roster, eviction rule, key-value state, mempool, chain state and
//! the Tendermint consensus core ([`consensus`]) take inputs and return outputs; no
//! sockets, clocks, threads or files live here. The real runtime (`rollcall-node`) and
//! the simulator (`rollcall` sim backend) drive the very same code.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]

pub mod chain;
pub mod consensus;
pub mod crypto;
pub mod eviction;
pub mod kv;
pub mod mempool;
pub mod roster;
pub mod store;
pub mod types;
