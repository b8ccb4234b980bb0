//! Names of shared files: `/`-separated paths relative to the shared
//! directory, checked by the same rules on both sides.
//!
//! The server checks every name a client sends before it touches the disk
//! (and then checks where symlinks lead: see `share::catalog`); the client
//! checks every name before it writes under `--out`, whatever the server
//! says. A name is refused when it is empty, absolute, longer than
//! [`MAX_LEN`], or has a part that is empty, `.`, `..` or holds a NUL or a
//! backslash.

use std::fmt;

/// The longest name accepted, in bytes.
pub const MAX_LEN: usize = 1024;

/// Why a name is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_LEN`] bytes.
    TooLong(usize),
    /// The name starts with `/`: names are relative to the shared directory.
    Absolute(String),
    /// A part is `..`, which would lead out of the directory.
    Parent(String),
    /// A part is empty (`a//b`, a trailing `/`) or `.`.
    EmptyPart(String),
    /// The name holds a NUL or a backslash.
    BadCharacter(String),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "an empty name is refused"),
            Self::TooLong(len) => {
                write!(f, "a {len}-byte name is refused: at most {MAX_LEN} bytes")
            }
            Self::Absolute(name) => write!(
                f,
                "`{name}` is refused: absolute paths are not allowed, name a file inside the shared directory"
            ),
            Self::Parent(name) => write!(
                f,
                "`{name}` is refused: `..` would lead out of the shared directory"
            ),
            Self::EmptyPart(name) => write!(
                f,
                "`{name}` is refused: a name's parts may not be empty or `.`"
            ),
            Self::BadCharacter(name) => write!(
                f,
                "`{}` is refused: names may not hold NUL or `\\`",
                name.escape_debug()
            ),
        }
    }
}

impl std::error::Error for NameError {}

/// The parts of `name`, when it is acceptable.
pub fn parts(name: &str) -> Result<Vec<&str>, NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_LEN {
        return Err(NameError::TooLong(name.len()));
    }
    if name.starts_with('/') {
        return Err(NameError::Absolute(name.to_owned()));
    }
    if name.contains(['\0', '\\']) {
        return Err(NameError::BadCharacter(name.to_owned()));
    }
    let parts: Vec<&str> = name.split('/').collect();
    if parts.contains(&"..") {
        return Err(NameError::Parent(name.to_owned()));
    }
    if parts.iter().any(|part| part.is_empty() || *part == ".") {
        return Err(NameError::EmptyPart(name.to_owned()));
    }
    Ok(parts)
}

/// Whether `name` is acceptable.
pub fn check(name: &str) -> Result<(), NameError> {
    parts(name).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_names_pass_with_their_parts() {
        assert_eq!(parts("a.txt"), Ok(vec!["a.txt"]));
        assert_eq!(parts("docs/notes.txt"), Ok(vec!["docs", "notes.txt"]));
        assert_eq!(parts("..hidden"), Ok(vec!["..hidden"]));
    }

    #[test]
    fn escaping_and_malformed_names_are_refused() {
        assert_eq!(parts(""), Err(NameError::Empty));
        assert!(matches!(parts("/etc/passwd"), Err(NameError::Absolute(_))));
        assert!(matches!(parts(".."), Err(NameError::Parent(_))));
        assert!(matches!(parts("a/../../b"), Err(NameError::Parent(_))));
        assert!(matches!(parts("a//b"), Err(NameError::EmptyPart(_))));
        assert!(matches!(parts("./a"), Err(NameError::EmptyPart(_))));
        assert!(matches!(parts("a/"), Err(NameError::EmptyPart(_))));
        assert!(matches!(parts("a\\..\\b"), Err(NameError::BadCharacter(_))));
        assert!(matches!(
            parts(&"x".repeat(MAX_LEN + 1)),
            Err(NameError::TooLong(_))
        ));
    }
}
