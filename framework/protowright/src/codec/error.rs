use thiserror::Error;

/// Why a frame could not be read or written.
///
/// Every variant means the byte stream can no longer be trusted: the
/// connection that produced it is closed, and other connections are untouched.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The length prefix announced more bytes than the configured maximum.
    /// Nothing was allocated for it. Raise the limit on both peers if such
    /// messages are expected.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// The length the peer announced.
        len: u64,
        /// The configured maximum.
        max: usize,
    },
    /// The length prefix is not a valid varint (more than ten bytes, or it
    /// overflows 64 bits). The peer is not speaking the delimited form.
    #[error("malformed length prefix: not a varint of at most {max_len} bytes")]
    BadLength {
        /// The longest varint accepted.
        max_len: usize,
    },
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame: {missing} more bytes were expected")]
    Truncated {
        /// How many bytes of the frame (prefix included, when known) never came.
        missing: usize,
    },
    /// A message given to the encoder is larger than the configured maximum;
    /// it was not sent.
    #[error("message of {len} bytes exceeds the maximum frame of {max} bytes and was not sent")]
    MessageTooLarge {
        /// The encoded length of the message.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
}
