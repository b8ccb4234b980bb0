//! What can go wrong while turning schemas into code.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

/// A place in a schema file, for error messages. Line and column count from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file as a person would open it: its path on disk when known,
    /// otherwise its import name.
    pub file: String,
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Why a build could not generate code. Its `Display` (and `Debug`, which a
/// build script's `main` prints) reads like a compiler error: where, then why.
#[derive(Error)]
pub enum Error {
    /// A schema is malformed or does not resolve: a syntax error, an unknown
    /// type, a missing import, a duplicate name, a `channel` option not below
    /// [`MAX_CHANNELS`](crate::MAX_CHANNELS). Fix the schema at `location`.
    /// Without a location, a file given to the builder could not be opened:
    /// the message says whether it exists and which include paths were
    /// searched.
    #[error("{}{message}{}", prefix(location), snippet(excerpt))]
    Schema {
        /// Where the problem is, when the compiler could tell.
        location: Option<Location>,
        /// What is wrong.
        message: String,
        /// The offending source line with a caret under the column.
        excerpt: Option<String>,
    },
    /// Two methods would share a wire id. Rename one, or pin a distinct id
    /// with `option (protowright.v1.method_id) = N;`.
    #[error("{0}")]
    DuplicateMethodId(Box<MethodIdClash>),
    /// The schema uses something protowright cannot generate code for (for
    /// example a streaming method, or a protocol root without a `oneof`).
    #[error("{location}: {message}")]
    Unsupported {
        /// Where the construct is.
        location: Location,
        /// What is unsupported and what to do instead.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// prost-build refused the descriptors or could not write its output.
    #[error("code generation failed: {0}")]
    Generate(#[source] std::io::Error),
}

/// Two methods that would share a wire id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodIdClash {
    /// The method declared second.
    pub method: String,
    /// Where it is declared.
    pub location: Location,
    /// The shared id.
    pub id: u32,
    /// The method declared first.
    pub other: String,
    /// Where that one is declared.
    pub other_location: Location,
}

impl fmt::Display for MethodIdClash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            method,
            location,
            id,
            other,
            other_location,
        } = self;
        write!(
            f,
            "{location}: method `{method}` has wire id {id:#010x}, which `{other}` ({other_location}) \
             already has; pin a distinct id with `option (protowright.v1.method_id) = N;`"
        )
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A build script that returns this error prints it with `Debug`:
        // show the readable message rather than the struct.
        fmt::Display::fmt(self, f)
    }
}

fn prefix(location: &Option<Location>) -> String {
    location
        .as_ref()
        .map(|l| format!("{l}: "))
        .unwrap_or_default()
}

fn snippet(excerpt: &Option<String>) -> String {
    excerpt
        .as_ref()
        .map(|e| format!("\n{e}"))
        .unwrap_or_default()
}
