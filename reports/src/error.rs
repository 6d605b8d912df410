//! Errors of the report writer and the server. Only failures that stop the
//! report from being written at all are errors; a missing or corrupt input file
//! becomes a note in the report instead (harness.md §8: the report of a partial
//! run still shows what it can).

use std::path::PathBuf;

/// Why a report could not be written or the store could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The run directory does not exist or is not a directory.
    #[error("{0}: not a run directory")]
    NotARunDir(PathBuf),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A plot could not be drawn.
    #[error("plot {name}: {msg}")]
    Plot {
        /// The plot's file name.
        name: String,
        /// The drawing backend's message.
        msg: String,
    },
}

/// Wrap an IO error with its path, so messages say which file failed.
pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ReportError {
    let path = path.into();
    move |source| ReportError::Io { path, source }
}
