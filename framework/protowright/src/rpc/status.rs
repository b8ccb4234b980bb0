//! The outcome of a failed call.

use std::fmt;

use crate::v1;

pub use crate::v1::Code;

/// Why a call failed: a [`Code`] a program can act on and a message a person
/// can read. Travels on the wire as `protowright.v1.Status`.
///
/// Two statuses are equal when their codes and messages are; where a status
/// came from ([`is_from_peer`](Self::is_from_peer)) is not compared.
#[derive(Debug, Clone)]
pub struct Status {
    code: Code,
    message: String,
    /// Whether it arrived in the peer's response (its handler, or its
    /// session refusing the call) rather than being made on this side.
    from_peer: bool,
}

impl PartialEq for Status {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code && self.message == other.message
    }
}

impl Eq for Status {}

impl std::error::Error for Status {}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str_name(), self.message)
    }
}

macro_rules! constructors {
    ($($(#[$doc:meta])* $name:ident => $code:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(message: impl Into<String>) -> Self {
                Self::new(Code::$code, message)
            }
        )*
    };
}

impl Status {
    /// A status with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            from_peer: false,
        }
    }

    /// Whether the peer answered the call with this status (its handler
    /// returned it, or its session refused the call), as opposed to a
    /// failure on this side (a deadline, a lost connection). A call the
    /// peer answered is never retried automatically, whatever the code.
    pub fn is_from_peer(&self) -> bool {
        self.from_peer
    }

    /// What kind of failure this is.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The explanation for a person.
    pub fn message(&self) -> &str {
        &self.message
    }

    constructors! {
        /// The caller cancelled the call.
        cancelled => Cancelled;
        /// The request was malformed (for example, undecodable).
        invalid_argument => InvalidArgument;
        /// The call's deadline passed before a response arrived.
        deadline_exceeded => DeadlineExceeded;
        /// A limit was reached (in-flight calls, message size).
        resource_exhausted => ResourceExhausted;
        /// The callee has no such method.
        unimplemented => Unimplemented;
        /// A bug or broken invariant on one side.
        internal => Internal;
        /// The peer cannot be reached now; the call may succeed later.
        unavailable => Unavailable;
        /// A failure that fits no other code.
        unknown => Unknown;
        /// What the request names does not exist.
        not_found => NotFound;
        /// What the request would create exists already.
        already_exists => AlreadyExists;
        /// The caller may not do this.
        permission_denied => PermissionDenied;
        /// The system is not in the state the call needs.
        failed_precondition => FailedPrecondition;
        /// The call was aborted by a conflict (retry at a higher level).
        aborted => Aborted;
        /// A value is past the valid range.
        out_of_range => OutOfRange;
        /// Data was lost or corrupted beyond recovery.
        data_loss => DataLoss;
        /// The caller did not prove who it is.
        unauthenticated => Unauthenticated;
    }

    /// Converts to the wire form.
    pub fn to_wire(&self) -> v1::Status {
        v1::Status {
            code: self.code as i32,
            message: self.message.clone(),
        }
    }

    /// Converts from the wire form. A code this build does not know becomes
    /// [`Code::Unknown`], keeping the peer's message.
    pub fn from_wire(status: v1::Status) -> Self {
        let code = Code::try_from(status.code).unwrap_or(Code::Unknown);
        Self {
            from_peer: true,
            ..Self::new(code, status.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_code_name_and_message() {
        let status = Status::deadline_exceeded("no answer from 10.0.0.1:9000 within 2s");
        assert_eq!(
            status.to_string(),
            "DEADLINE_EXCEEDED: no answer from 10.0.0.1:9000 within 2s"
        );
    }

    #[test]
    fn round_trips_through_the_wire_form_marked_as_the_peers() {
        let status = Status::unavailable("gone");
        assert!(!status.is_from_peer());
        let received = Status::from_wire(status.to_wire());
        assert_eq!(received, status);
        assert!(received.is_from_peer());
    }

    #[test]
    fn an_unknown_wire_code_becomes_unknown() {
        let status = Status::from_wire(v1::Status {
            code: 999,
            message: "from the future".into(),
        });
        assert_eq!(status.code(), Code::Unknown);
        assert_eq!(status.message(), "from the future");
    }
}
