//! rollcall, the harness (harness.md): runs a workload against a cluster while a
//! nemesis injects faults, records the history, checks it and stores the run.
//!
//! The run loop ([`run`]) is backend-independent: it talks to a [`backend::Backend`]
//! (node, link and client primitives), which the deterministic simulator ([`sim`]:
//! every node's real core and real store from `rollcall-node-core`, on a simulated
//! disk) and the docker backend ([`docker_backend`]) implement; [`nemesis`] gives
//! every fault its meaning over those primitives, once.

#![warn(missing_docs)]

mod attacks;
pub mod backend;
pub mod checks;
pub mod cluster;
pub mod commands;
pub mod crash;
pub mod docker_backend;
pub mod explore;
pub mod history;
pub mod junit;
pub mod nemesis;
pub mod options;
pub mod progress;
pub mod reshape;
pub mod run;
pub mod sim;
pub mod split;
pub mod store;
pub mod twins;
