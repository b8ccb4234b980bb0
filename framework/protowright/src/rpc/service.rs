//! The two sides of a call, as traits the generated code implements.
//!
//! A generated service trait (say `Greeter`) is implemented twice: by the
//! user's server type, and by the generated `GreeterClient<C>`. The generated
//! `GreeterServer<S>` adapts a server implementation to [`Service`], which a
//! session dispatches to by method id; `GreeterClient<C>` sends through any
//! [`Channel`], so the same client runs over TCP, reliable UDP, or in memory.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;

use super::Status;
use crate::schema::Method;

/// The server side: routes an encoded request to a method by its id.
pub trait Service: Send + Sync + 'static {
    /// Handles one call of method `method` with the encoded `request`, and
    /// returns the encoded response.
    ///
    /// An unknown method is answered with [`Code::Unimplemented`], an
    /// undecodable request with [`Code::InvalidArgument`].
    ///
    /// [`Code::Unimplemented`]: super::Code::Unimplemented
    /// [`Code::InvalidArgument`]: super::Code::InvalidArgument
    fn call(
        &self,
        method: u32,
        request: Bytes,
    ) -> impl Future<Output = Result<Bytes, Status>> + Send;
}

impl<S: Service> Service for std::sync::Arc<S> {
    fn call(
        &self,
        method: u32,
        request: Bytes,
    ) -> impl Future<Output = Result<Bytes, Status>> + Send {
        (**self).call(method, request)
    }
}

/// A session that serves no methods: every call is answered `UNIMPLEMENTED`.
/// Use it for the client end of a connection that only makes calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoService;

impl Service for NoService {
    async fn call(&self, method: u32, _request: Bytes) -> Result<Bytes, Status> {
        Err(Status::unimplemented(format!(
            "this endpoint serves no methods (method id {method:#010x})"
        )))
    }
}

/// Per-call settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// How long to wait for the response. `None` uses the channel's default.
    pub timeout: Option<Duration>,
}

/// The client side: sends an encoded request and waits for the encoded
/// response. Cheap to clone; clones share the connection.
pub trait Channel: Clone + Send + Sync + 'static {
    /// Calls `method` with the encoded `request`.
    ///
    /// Fails with `DEADLINE_EXCEEDED` when the timeout passes, `UNAVAILABLE`
    /// when the connection is gone, or the status the callee returned.
    fn call(
        &self,
        method: &'static Method,
        request: Bytes,
        options: CallOptions,
    ) -> impl Future<Output = Result<Bytes, Status>> + Send;
}

/// Decodes a request body; an undecodable body is the caller's fault.
pub fn decode_request<M: Message + Default>(method: &Method, body: Bytes) -> Result<M, Status> {
    M::decode(body).map_err(|error| {
        Status::invalid_argument(format!("undecodable request for {}: {error}", method.path))
    })
}

/// Encodes a message into a fresh buffer.
pub fn encode<M: Message>(message: &M) -> Bytes {
    Bytes::from(message.encode_to_vec())
}

/// Makes one typed call through `channel`: encode, send, wait, decode.
pub async fn unary<C, Req, Resp>(
    channel: &C,
    method: &'static Method,
    request: &Req,
    options: CallOptions,
) -> Result<Resp, Status>
where
    C: Channel,
    Req: Message,
    Resp: Message + Default,
{
    let body = channel.call(method, encode(request), options).await?;
    Resp::decode(body).map_err(|error| {
        Status::internal(format!(
            "undecodable response from {}: {error}",
            method.path
        ))
    })
}
