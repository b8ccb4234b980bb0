//! What a download reports as it goes, for progress bars and logs.

/// Something that happened to one file's download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The manifest arrived: the file has `size` bytes, of which
    /// `verified` are already on disk (resumed from a partial download).
    Started {
        /// The file's size.
        size: u64,
        /// Bytes already verified on disk.
        verified: u64,
    },
    /// A chunk of `bytes` arrived and verified.
    Chunk {
        /// The chunk's length.
        bytes: u64,
    },
    /// Something worth telling the user: a resume, a restart, a retry.
    Note(String),
    /// The file verified and is in place under its final name.
    Done,
    /// The download failed; the text says why.
    Failed(String),
}

/// Receives download events. Called from the download's tasks: keep it
/// quick.
pub trait Progress: Send + Sync {
    /// `name`'s download reports `event`.
    fn event(&self, name: &str, event: Event);

    /// The connection to the server was lost or came back (`text` says
    /// which, and why). Ignored unless implemented.
    fn connection(&self, text: &str) {
        let _ = text;
    }
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Progress for Quiet {
    fn event(&self, _name: &str, _event: Event) {}
}
