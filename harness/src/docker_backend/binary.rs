//! Locating (or building) the `rollcall-node` binary the node image is made from.

use super::DockerBackendError;
use std::path::{Path, PathBuf};
use tracing::info;

/// Finds the `rollcall-node` binary to put in the image: `ROLLCALL_NODE_BIN`, else
/// next to the running executable, else `target/{release,debug}` of the workspace
/// (or `CARGO_TARGET_DIR`); if none exists it is built with
/// `cargo build --release -p rollcall-node` (issue 7: "build it if needed").
pub fn locate_node_binary() -> Result<PathBuf, DockerBackendError> {
    if let Some(p) = std::env::var_os("ROLLCALL_NODE_BIN") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(DockerBackendError::NodeBinary(format!(
                "ROLLCALL_NODE_BIN={} is not a file",
                p.display()
            )))
        };
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            candidates.push(dir.join("rollcall-node"));
            if let Some(up) = dir.parent() {
                candidates.push(up.join("rollcall-node"));
            }
        }
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| workspace.join("target"));
    candidates.push(target.join("release").join("rollcall-node"));
    candidates.push(target.join("debug").join("rollcall-node"));
    if let Some(p) = candidates.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    info!(target = %target.display(), "rollcall-node not found: building it");
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "-p", "rollcall-node"])
        .current_dir(&workspace)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .map_err(|e| {
            DockerBackendError::NodeBinary(format!(
                "not found at {} and `cargo build --release -p rollcall-node` could not run: {e}; set ROLLCALL_NODE_BIN",
                candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ))
        })?;
    let built = target.join("release").join("rollcall-node");
    if status.success() && built.is_file() {
        Ok(built)
    } else {
        Err(DockerBackendError::NodeBinary(format!(
            "`cargo build --release -p rollcall-node` failed ({status}); set ROLLCALL_NODE_BIN"
        )))
    }
}
