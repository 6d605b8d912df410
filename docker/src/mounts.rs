//! Bind mounts of a node container: its home and its clock directory.

use crate::{DockerError, NodeSpec};

/// A node container's bind mounts: its home (read-write, created if missing) and
/// its clock directory (read-only, [`crate::clock::bind`]).
pub(crate) fn node_binds(spec: &NodeSpec) -> Result<Vec<String>, DockerError> {
    let mut binds = Vec::new();
    if let Some(home) = &spec.home {
        std::fs::create_dir_all(home)
            .map_err(|e| DockerError::io(format!("create node home {}", home.display()), e))?;
        let abs = std::fs::canonicalize(home)
            .map_err(|e| DockerError::io(format!("resolve {}", home.display()), e))?;
        binds.push(format!("{}:{}", abs.display(), spec.home_in_container));
    }
    binds.extend(
        spec.clock_dir
            .as_deref()
            .map(crate::clock::bind)
            .transpose()?,
    );
    Ok(binds)
}
