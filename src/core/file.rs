//! Files a configuration names (`local_jwks.filename`): the core never reads them, a host
//! that has files passes a `FileReader`, and says with a `FileError` why one failed.

use std::fmt;
use std::path::PathBuf;

/// Reads `local_jwks.filename` for hosts that have files (the CLI). The core never does I/O.
pub type FileReader<'a> = &'a dyn Fn(&str) -> Result<String, FileError>;

/// Why a file could not be read. The text names the file, as users typed or resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileError {
    /// This host reads no files (the playground, Envoy, `Policy::from_json`).
    NoFiles,
    /// Reading `path` failed; `message` is the operating system's words for `kind`.
    Unreadable {
        path: PathBuf,
        kind: std::io::ErrorKind,
        message: String,
    },
    /// Reading standard input (`-`) failed.
    StdinUnreadable {
        kind: std::io::ErrorKind,
        message: String,
    },
}

impl FileError {
    /// The error of reading `path`, keeping what the operating system said.
    pub fn io(path: impl Into<PathBuf>, error: &std::io::Error) -> FileError {
        FileError::Unreadable {
            path: path.into(),
            kind: error.kind(),
            message: error.to_string(),
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::NoFiles => f.write_str("this host has no files; use `inline_string`"),
            FileError::Unreadable { path, message, .. } => {
                write!(f, "`{}`: {message}", path.display())
            }
            FileError::StdinUnreadable { message, .. } => write!(f, "stdin: {message}"),
        }
    }
}

impl std::error::Error for FileError {}
