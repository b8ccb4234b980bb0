//! What a `get` achieved, file by file.

use std::fmt;
use std::time::Duration;

use super::FetchError;
use crate::digest::Hash;

/// A file that arrived and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, as verified.
    pub sha256: Hash,
    /// Chunks fetched from the server.
    pub chunks_fetched: u64,
    /// Chunks a partial download already had on disk, verified again.
    pub chunks_reused: u64,
    /// Times the download started over because the file changed.
    pub restarts: u32,
}

/// One requested file and how its download ended.
#[derive(Debug)]
pub struct Outcome {
    /// The name asked for.
    pub name: String,
    /// The file, or why it did not arrive.
    pub result: Result<Fetched, FetchError>,
}

/// Every requested file's outcome, in the order asked for.
#[derive(Debug)]
pub struct Summary {
    /// The outcomes.
    pub files: Vec<Outcome>,
    /// How long the whole `get` took.
    pub elapsed: Duration,
}

impl Summary {
    /// Whether every requested file arrived and verified.
    pub fn all_verified(&self) -> bool {
        self.files.iter().all(|file| file.result.is_ok())
    }

    /// The files that did not arrive, with why.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &FetchError)> {
        self.files
            .iter()
            .filter_map(|file| file.result.as_ref().err().map(|e| (file.name.as_str(), e)))
    }

    fn fetched(&self) -> impl Iterator<Item = &Fetched> {
        self.files
            .iter()
            .filter_map(|file| file.result.as_ref().ok())
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verified = self.fetched().count();
        let bytes: u64 = self.fetched().map(|file| file.size).sum();
        let fetched: u64 = self.fetched().map(|file| file.chunks_fetched).sum();
        let reused: u64 = self.fetched().map(|file| file.chunks_reused).sum();
        write!(
            f,
            "{verified} of {} verified ({}; {} fetched, {reused} reused from partial downloads) in {:.2}s",
            count(self.files.len() as u64, "file"),
            human_bytes(bytes),
            count(fetched, "chunk"),
            self.elapsed.as_secs_f64()
        )
    }
}

/// `n` `thing`s, in the singular for one.
fn count(n: u64, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// `bytes` for a person: B, KiB, MiB or GiB.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
