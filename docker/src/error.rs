//! The one error type of this crate: every failure says what to do about it.

use std::path::PathBuf;

/// Everything that can go wrong while building the image or driving containers.
///
/// Messages are written for the person running `rollcall`: they name the cause and,
/// where there is one, the fix (a package to install, a daemon to start).
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// No engine answered: the harness cannot use the docker backend at all.
    #[error(
        "Docker engine not reachable at {addr}: start it with `systemctl start docker` or `dockerd &`, or use `--backend sim` ({reason})"
    )]
    EngineUnreachable {
        /// The address that was tried (`unix:///var/run/docker.sock`, `DOCKER_HOST`...).
        addr: String,
        /// What the client reported.
        reason: String,
    },

    /// Host tools that go into the image are missing; the fix is one apt-get line.
    #[error(
        "cannot build the node image: missing host tools: {}; install them with `apt-get install -y busybox-static iptables iproute2 libfaketime`",
        missing.join(", ")
    )]
    MissingHostTools {
        /// The tools that were not found, each with the package that provides it.
        missing: Vec<String>,
    },

    /// A binary needs a shared library that `ldd` cannot resolve on this host.
    #[error("`ldd {binary}` cannot resolve {library}: install the package that provides it")]
    MissingLibrary {
        /// The binary being packed.
        binary: PathBuf,
        /// The unresolved library name.
        library: String,
    },

    /// The node binary given to [`crate::ensure_image`] is not there.
    #[error(
        "node binary {path} not found: build it first (`cargo build --release -p rollcall-node`)"
    )]
    NodeBinaryMissing {
        /// The path that was given.
        path: PathBuf,
    },

    /// Reading host files or writing logs failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The engine refused or failed a request.
    #[error("docker API call {call} failed: {source}")]
    Api {
        /// Which call (and on what object) failed.
        call: String,
        /// The bollard error.
        #[source]
        source: bollard::errors::Error,
    },

    /// No free /24 was found for a run network (all candidates overlap existing networks).
    #[error("no free subnet in 172.28.0.0/16 for run {run_id}: run `rollcall clean` or remove stale docker networks")]
    NoFreeSubnet {
        /// The run that needed a network.
        run_id: String,
    },

    /// A command run inside a container (iptables, tc...) exited non-zero.
    #[error("`{command}` in container {container} exited with {exit_code}: {stderr}")]
    ExecFailed {
        /// The container name.
        container: String,
        /// The command line.
        command: String,
        /// Its exit code.
        exit_code: i64,
        /// What it printed on stderr.
        stderr: String,
    },

    /// The caller passed something that cannot work (bad probability, bad name...).
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl DockerError {
    /// Wraps a bollard error with the name of the call, so logs say which step failed.
    pub(crate) fn api(call: impl Into<String>, source: bollard::errors::Error) -> Self {
        DockerError::Api {
            call: call.into(),
            source,
        }
    }

    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        DockerError::Io {
            context: context.into(),
            source,
        }
    }
}
