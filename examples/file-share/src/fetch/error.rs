//! Why one file's download failed.

use std::fmt;
use std::io;
use std::time::Duration;

use protowright::rpc::{Code, Status};

use crate::names::NameError;

/// Why a file did not arrive. The file is then not under its final name;
/// what verified so far stays in its partial file for the next `get`.
#[derive(Debug)]
#[non_exhaustive]
pub enum FetchError {
    /// The name was refused on this side, before asking the server.
    BadName(NameError),
    /// The server has no such file (`NOT_FOUND`).
    NotFound(Status),
    /// The server refused the name (`INVALID_ARGUMENT`, `PERMISSION_DENIED`).
    Refused(Status),
    /// The server's manifest cannot be right (a broken or lying server):
    /// nothing was fetched on its word.
    BadManifest(String),
    /// A chunk failed verification this many times in a row: the server
    /// keeps sending bytes that do not match its own manifest.
    Corrupt {
        /// The chunk's index.
        chunk: u32,
        /// How many times it failed.
        attempts: u32,
    },
    /// Every chunk verified, yet the whole file did not: the manifest
    /// contradicts itself. The partial file was removed.
    Mismatch {
        /// The manifest's SHA-256, in hex.
        expected: String,
        /// What the assembled file hashed to.
        got: String,
    },
    /// The file changed on the server again and again during the download.
    KeptChanging(u32),
    /// No call succeeded for the whole retry period.
    GaveUp {
        /// How long the download went without progress.
        waited: Duration,
        /// The last failure.
        last: Status,
    },
    /// The server answered with another error.
    Server(Status),
    /// Reading or writing under `--out` failed.
    Local {
        /// What was being done.
        what: String,
        /// The operating system's error.
        source: io::Error,
    },
}

impl FetchError {
    /// A local I/O failure while doing `what`.
    pub(crate) fn local(what: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let what = what.into();
        move |source| Self::Local { what, source }
    }

    /// The failure a final (not retryable) status stands for.
    pub(crate) fn from_status(status: Status) -> Self {
        match status.code() {
            Code::NotFound => Self::NotFound(status),
            Code::InvalidArgument | Code::PermissionDenied => Self::Refused(status),
            _ => Self::Server(status),
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadName(error) => write!(f, "{error}"),
            Self::NotFound(status) | Self::Refused(status) | Self::Server(status) => {
                write!(f, "{status}")
            }
            Self::BadManifest(why) => write!(f, "the server's manifest was refused: {why}"),
            Self::Corrupt { chunk, attempts } => write!(
                f,
                "DATA_LOSS: chunk {chunk} failed SHA-256 verification {attempts} times: the server sends bytes that do not match its manifest"
            ),
            Self::Mismatch { expected, got } => write!(
                f,
                "DATA_LOSS: the assembled file hashed to {got}, not the manifest's {expected}; the partial file was removed"
            ),
            Self::KeptChanging(times) => write!(
                f,
                "the file changed on the server {times} times during the download; try again later"
            ),
            Self::GaveUp { waited, last } => write!(
                f,
                "gave up after {:.0?} without progress; last error: {last}",
                waited
            ),
            Self::Local { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for FetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::BadName(error) => Some(error),
            Self::Local { source, .. } => Some(source),
            _ => None,
        }
    }
}
