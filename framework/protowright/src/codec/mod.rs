//! Framing: how protobuf messages are cut out of a byte stream.
//!
//! Every stream transport speaks the standard length-delimited form that
//! protobuf libraries read and write in every language: a varint byte count,
//! then that many bytes of protobuf encoding. [`Delimited`] is the pure part —
//! it decodes frames out of a buffer and encodes them into one, and never does
//! I/O. It refuses a length above its limit before allocating anything.

mod delimited;
mod error;

pub use delimited::{DEFAULT_MAX_FRAME, Delimited, MAX_VARINT_LEN};
pub use error::FrameError;
