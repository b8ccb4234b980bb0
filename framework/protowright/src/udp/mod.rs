//! Reliable messaging over UDP.
//!
//! [`proto`] is the protocol engine without I/O.
pub mod proto;
