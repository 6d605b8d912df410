//! Builds the rollcall-node image without a registry and drives node containers (harness.md §2).
//!
//! - [`image`]: the node image, assembled from host files and imported through the API.
//! - [`clock`]: a node's own fake clock through libfaketime, never the host's (issue 16).
//! - [`cluster`]: engine connection, the run network, node containers, exec, logs, cleanup.
//! - [`faults`]: iptables partitions and loss, tc rate limits, inside the containers.
//! - [`disk`]: damage to a stopped node's store files and a size-limited data mount
//!   that can be made full (issue 13), from the host.

pub mod clock;
pub mod cluster;
pub mod disk;
mod error;
pub mod faults;
pub mod image;
mod mounts;
pub mod owner;

pub use cluster::{
    cleanup, cleanup_on_ctrl_c, connect, connect_to, tcp_echo_from_host, tcp_reachable_from_host,
    CleanupReport, CleanupScope, Container, ExecOutput, Network, NodeSpec,
};
pub use disk::{
    damage_file, unmount_data_mounts, unmount_orphan_data_mounts, Damage, Damaged, DataMount,
};
pub use error::DockerError;
pub use faults::{SlowApplied, SlowLink};
pub use image::{ensure_image, ensure_image_with, ImageBinaries, ImageRef};

/// The engine client type, re-exported so callers need not depend on bollard.
pub use bollard::Docker;
