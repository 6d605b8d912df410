//! Locating (or building) the `rollcall-node` and `rollcall-adversary` binaries the
//! node image is made from.

use super::DockerBackendError;
use std::path::{Path, PathBuf};
use tracing::info;

/// Finds the `rollcall-node` binary to put in the image: `ROLLCALL_NODE_BIN`, else
/// next to the running executable, else `target/{release,debug}` of the workspace
/// (or `CARGO_TARGET_DIR`); if none exists it is built with
/// `cargo build --release -p rollcall-node` (issue 7: "build it if needed").
pub fn locate_node_binary() -> Result<PathBuf, DockerBackendError> {
    locate("rollcall-node", "ROLLCALL_NODE_BIN", "rollcall-node")
}

/// Finds the `rollcall-adversary` binary (the `byzantine` nemesis on docker, issue
/// 12) the same way: `ROLLCALL_ADVERSARY_BIN`, next to the executable, the target
/// directory, else `cargo build --release -p rollcall-adversary-node`.
pub fn locate_adversary_binary() -> Result<PathBuf, DockerBackendError> {
    locate(
        "rollcall-adversary",
        "ROLLCALL_ADVERSARY_BIN",
        "rollcall-adversary-node",
    )
}

fn locate(name: &str, env: &str, package: &str) -> Result<PathBuf, DockerBackendError> {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(DockerBackendError::NodeBinary(format!(
                "{env}={} is not a file",
                p.display()
            )))
        };
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            candidates.push(dir.join(name));
            if let Some(up) = dir.parent() {
                candidates.push(up.join(name));
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
    candidates.push(target.join("release").join(name));
    candidates.push(target.join("debug").join(name));
    if let Some(p) = candidates.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    info!(target = %target.display(), "{name} not found: building it");
    let build = format!("cargo build --release -p {package}");
    let status =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "-p", package])
            .current_dir(&workspace)
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .map_err(|e| {
                DockerBackendError::NodeBinary(format!(
                    "not found at {} and `{build}` could not run: {e}; set {env}",
                    candidates
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
    let built = target.join("release").join(name);
    if status.success() && built.is_file() {
        Ok(built)
    } else {
        Err(DockerBackendError::NodeBinary(format!(
            "`{build}` failed ({status}); set {env}"
        )))
    }
}

/// The binaries of the run's image: the node, and the adversary the `byzantine`
/// nemesis runs in a validator's place (issue 12), each given or located.
pub(super) fn image_binaries(
    opts: &super::DockerOptions,
) -> Result<rollcall_docker::ImageBinaries, DockerBackendError> {
    let node = match &opts.node_binary {
        Some(p) => p.clone(),
        None => locate_node_binary()?,
    };
    let adversary = match &opts.adversary_binary {
        Some(p) => p.clone(),
        None => locate_adversary_binary()?,
    };
    Ok(rollcall_docker::ImageBinaries {
        node,
        adversary: Some(adversary),
    })
}
