//! Long-term keys: a server's static key pair, which is its identity, and
//! the public half that clients pin.
//!
//! A server that loads the same key file after a restart keeps its
//! identity, so pinned clients still connect, and keeps its reset secret
//! (derived from the key), so clients of the previous run learn at once
//! that their connections are gone.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;

use snow::params::DHChoice;
use snow::resolvers::{CryptoResolver, DefaultResolver};

/// Bytes of a Curve25519 key, public or secret.
pub const KEY_LEN: usize = 32;

/// Why a key could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The operating system's random generator could not be read.
    #[error("could not read the operating system's random generator: {0}")]
    Random(#[source] io::Error),
    /// The key file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The text is not a key.
    #[error("not a protowright key: {0}")]
    Malformed(String),
}

/// A Curve25519 public key: what a client pins to be sure it talks to the
/// right server. Prints and parses as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    /// The key from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, KeyError> {
        parse_hex(text.trim()).map(Self)
    }
}

/// A static key pair: a server's long-term identity (or a client's, when
/// a server should know which client is which).
///
/// Its `Debug` hides the secret half.
#[derive(Clone)]
pub struct StaticKey {
    secret: [u8; KEY_LEN],
    /// Worked out on first use: a client that does not pin its server
    /// never needs its own public key, and the X25519 operation it costs
    /// was a quarter of such a client's handshake work.
    public: OnceLock<PublicKey>,
}

impl StaticKey {
    /// A fresh key pair from the operating system's secure generator.
    pub fn generate() -> Result<Self, KeyError> {
        let mut secret = [0u8; KEY_LEN];
        getrandom::fill(&mut secret).map_err(|e| KeyError::Random(io::Error::other(e)))?;
        Ok(Self::from_secret(secret))
    }

    /// The key pair whose secret half is `secret` (any 32 bytes are a valid
    /// Curve25519 secret).
    pub fn from_secret(secret: [u8; KEY_LEN]) -> Self {
        Self {
            secret,
            public: OnceLock::new(),
        }
    }

    /// The public half, to give to clients.
    pub fn public_key(&self) -> PublicKey {
        *self.public.get_or_init(|| {
            let mut dh = DefaultResolver
                .resolve_dh(&DHChoice::Curve25519)
                .expect("snow's default resolver always has Curve25519");
            dh.set(&self.secret);
            let mut public = [0u8; KEY_LEN];
            public.copy_from_slice(dh.pubkey());
            PublicKey(public)
        })
    }

    pub(crate) fn secret(&self) -> &[u8; KEY_LEN] {
        &self.secret
    }

    /// Writes the secret half to `path` as hex, readable by its owner only
    /// (on Unix), replacing any file there.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), KeyError> {
        let path = path.as_ref();
        let io_error = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let mut text =
            String::from("# protowright reliable-UDP static secret key. Keep it private.\n");
        for byte in self.secret {
            text.push_str(&format!("{byte:02x}"));
        }
        text.push('\n');
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(io_error)?;
        // The mode applies only to a new file: an existing one is made
        // private too before the secret goes in.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(io_error)?;
        }
        io::Write::write_all(&mut file, text.as_bytes()).map_err(io_error)
    }

    /// Reads a key written by [`save`](Self::save).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.to_owned(),
            source,
        })?;
        let line = text
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty() && !line.starts_with('#'))
            .ok_or_else(|| KeyError::Malformed(format!("{} holds no key", path.display())))?;
        parse_hex(line).map(Self::from_secret)
    }

    /// The key at `path`, or a fresh one saved there when the file does not
    /// exist: what a server wants on its first start and every one after.
    pub fn load_or_generate(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        if path.exists() {
            return Self::load(path);
        }
        let key = Self::generate()?;
        key.save(path)?;
        Ok(key)
    }
}

impl fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKey")
            .field("public", &self.public_key())
            .field("secret", &"<hidden>")
            .finish()
    }
}

fn parse_hex(text: &str) -> Result<[u8; KEY_LEN], KeyError> {
    if text.len() != KEY_LEN * 2 || !text.is_ascii() {
        return Err(KeyError::Malformed(format!(
            "a key is {} hex digits; got {} characters",
            KEY_LEN * 2,
            text.chars().count()
        )));
    }
    let mut bytes = [0u8; KEY_LEN];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16)
            .map_err(|_| KeyError::Malformed(format!("{text:?} is not hexadecimal")))?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_key_prints_and_parses_as_hex() {
        let key = StaticKey::from_secret([7; KEY_LEN]).public_key();
        let text = key.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<PublicKey>().ok(), Some(key));
        assert!("zz".parse::<PublicKey>().is_err());
        assert!("g".repeat(64).parse::<PublicKey>().is_err());
    }

    #[test]
    fn the_public_half_follows_from_the_secret_and_debug_hides_it() {
        let a = StaticKey::from_secret([1; KEY_LEN]);
        let b = StaticKey::from_secret([1; KEY_LEN]);
        let c = StaticKey::from_secret([2; KEY_LEN]);
        assert_eq!(a.public_key(), b.public_key());
        assert_ne!(a.public_key(), c.public_key());
        assert!(!format!("{a:?}").contains("0101"));
    }

    #[test]
    fn a_saved_key_loads_back_and_a_missing_one_is_generated_once() {
        let dir = std::env::temp_dir().join(format!("pw-key-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("server.key");
        let _ = std::fs::remove_file(&path);
        let first = StaticKey::load_or_generate(&path).expect("generated");
        let second = StaticKey::load_or_generate(&path).expect("loaded");
        assert_eq!(first.public_key(), second.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o077, 0, "the key file is private");
        }
        std::fs::write(&path, "# nothing\n").expect("write");
        assert!(matches!(
            StaticKey::load(&path),
            Err(KeyError::Malformed(_))
        ));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
