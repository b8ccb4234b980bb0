//! Per-service glue: the service trait, method descriptors, the dispatcher
//! (`FooServer`) and the typed client (`FooClient`).

use std::collections::HashMap;
use std::fmt::Write;

use prost_build::{Method, Service};

use crate::ident::{to_screaming_snake, to_snake};
use crate::model::MethodModel;

/// Appends everything generated for `service`.
pub(super) fn generate(
    service: &Service,
    methods: &HashMap<String, MethodModel>,
    runtime: &str,
    buf: &mut String,
) {
    let full_name = full_name(service);
    let info = |method: &Method| {
        methods
            .get(&format!("{full_name}.{}", method.proto_name))
            .cloned()
            .expect("the model reads every method of every service before generation")
    };
    let infos: Vec<(MethodModel, &Method)> = service.methods.iter().map(|m| (info(m), m)).collect();
    descriptors(service, &infos, runtime, buf);
    service_trait(service, runtime, buf);
    server(service, &infos, runtime, buf);
    client(service, runtime, buf);
}

fn full_name(service: &Service) -> String {
    if service.package.is_empty() {
        service.proto_name.clone()
    } else {
        format!("{}.{}", service.package, service.proto_name)
    }
}

fn descriptors_module(service: &Service) -> String {
    format!("{}_methods", to_snake(&service.proto_name))
}

fn result_type(method: &Method, runtime: &str) -> String {
    format!(
        "::core::result::Result<{}, {runtime}::rpc::Status>",
        method.output_type
    )
}

fn descriptors(
    service: &Service,
    infos: &[(MethodModel, &Method)],
    runtime: &str,
    buf: &mut String,
) {
    let module = descriptors_module(service);
    let full_name = full_name(service);
    let mut consts = String::new();
    let mut all = Vec::new();
    for (info, method) in infos {
        let name = to_screaming_snake(&method.proto_name);
        let _ = write!(
            consts,
            r#"
    /// `{path}`{retry}
    pub const {name}: {runtime}::Method = {runtime}::Method {{
        id: {id:#010x},
        path: "{path}",
        idempotent: {idempotent},
    }};
"#,
            path = info.path,
            retry = if info.idempotent {
                " (idempotent: may be retried)"
            } else {
                ""
            },
            id = info.id,
            idempotent = info.idempotent,
        );
        all.push(name);
    }
    let _ = write!(
        buf,
        r#"
/// Wire descriptors of the methods of `{full_name}`.
pub mod {module} {{
{consts}
    /// Every method of the service, in schema order.
    pub const ALL: &[{runtime}::Method] = &[{all}];
}}
"#,
        all = all.join(", "),
    );
}

fn service_trait(service: &Service, runtime: &str, buf: &mut String) {
    let name = &service.name;
    service.comments.append_with_indent(0, buf);
    let _ = write!(
        buf,
        r#"///
/// Implement this trait to serve `{full_name}` (wrap your type in
/// [`{name}Server`]); [`{name}Client`] implements it too, by calling a remote
/// server, so code written against the trait runs with either.
pub trait {name}: ::core::marker::Send + ::core::marker::Sync + 'static {{
"#,
        full_name = full_name(service),
    );
    for method in &service.methods {
        method.comments.append_with_indent(1, buf);
        if method.comments.leading.is_empty() && method.comments.trailing.is_empty() {
            let _ = writeln!(buf, "    /// Handles `{}`.", method.proto_name);
        }
        let _ = writeln!(
            buf,
            "    fn {}(&self, request: {}) -> impl ::core::future::Future<Output = {}> + ::core::marker::Send;",
            method.name,
            method.input_type,
            result_type(method, runtime)
        );
    }
    buf.push_str("}\n");
    shared_impl(service, runtime, buf);
}

/// `impl Foo for Arc<T: Foo>`, so a shared implementation serves (and is
/// called) as it is.
fn shared_impl(service: &Service, runtime: &str, buf: &mut String) {
    let name = &service.name;
    let mut methods = String::new();
    for method in &service.methods {
        let _ = write!(
            methods,
            r#"
    fn {rust}(&self, request: {input}) -> impl ::core::future::Future<Output = {result}> + ::core::marker::Send {{
        (**self).{rust}(request)
    }}
"#,
            rust = method.name,
            input = method.input_type,
            result = result_type(method, runtime),
        );
    }
    let _ = write!(
        buf,
        r#"
impl<T: {name}> {name} for ::std::sync::Arc<T> {{{methods}}}
"#
    );
}

fn server(service: &Service, infos: &[(MethodModel, &Method)], runtime: &str, buf: &mut String) {
    let name = &service.name;
    let module = descriptors_module(service);
    let mut arms = String::new();
    for (info, method) in infos {
        let _ = write!(
            arms,
            r#"
            {id:#010x} => {{
                let request = {runtime}::rpc::decode_request(&{module}::{konst}, request)?;
                let response = self.inner.{rust}(request).await?;
                ::core::result::Result::Ok({runtime}::rpc::encode(&response))
            }}"#,
            id = info.id,
            konst = to_screaming_snake(&method.proto_name),
            rust = method.name,
        );
    }
    let _ = write!(
        buf,
        r#"
/// Serves a [`{name}`] implementation: routes each incoming call to its
/// method by wire id. Pass it wherever a `{runtime}::rpc::Service` is expected.
#[derive(Debug)]
pub struct {name}Server<S> {{
    inner: ::std::sync::Arc<S>,
}}

impl<S> {name}Server<S> {{
    /// Serves `service`.
    pub fn new(service: S) -> Self {{
        Self {{ inner: ::std::sync::Arc::new(service) }}
    }}

    /// Serves a shared `service`.
    pub fn from_arc(service: ::std::sync::Arc<S>) -> Self {{
        Self {{ inner: service }}
    }}

    /// The served implementation.
    pub fn get_ref(&self) -> &S {{
        &self.inner
    }}
}}

impl<S> ::core::clone::Clone for {name}Server<S> {{
    fn clone(&self) -> Self {{
        Self {{ inner: ::std::sync::Arc::clone(&self.inner) }}
    }}
}}

impl<S: {name}> {runtime}::rpc::Service for {name}Server<S> {{
    async fn call(
        &self,
        method: u32,
        request: {runtime}::__private::Bytes,
    ) -> ::core::result::Result<{runtime}::__private::Bytes, {runtime}::rpc::Status> {{
        match method {{{arms}
            _ => ::core::result::Result::Err({runtime}::rpc::Status::unimplemented(::std::format!(
                "{full_name} has no method with id {{method:#010x}}"
            ))),
        }}
    }}
}}
"#,
        full_name = full_name(service),
    );
}

fn client(service: &Service, runtime: &str, buf: &mut String) {
    let name = &service.name;
    let module = descriptors_module(service);
    let mut methods = String::new();
    for method in &service.methods {
        let _ = write!(
            methods,
            r#"
    async fn {rust}(&self, request: {input}) -> {result} {{
        {runtime}::rpc::unary(&self.channel, &{module}::{konst}, &request, self.options).await
    }}
"#,
            rust = method.name,
            input = method.input_type,
            result = result_type(method, runtime),
            konst = to_screaming_snake(&method.proto_name),
        );
    }
    let _ = write!(
        buf,
        r#"
/// Calls a remote [`{name}`] through any `{runtime}::rpc::Channel`: a TCP or
/// reliable-UDP connection, or an in-memory pipe in tests. Cheap to clone.
#[derive(Debug, Clone)]
pub struct {name}Client<C> {{
    channel: C,
    options: {runtime}::rpc::CallOptions,
}}

impl<C: {runtime}::rpc::Channel> {name}Client<C> {{
    /// A client calling through `channel`, with the channel's default timeout.
    pub fn new(channel: C) -> Self {{
        Self {{ channel, options: ::core::default::Default::default() }}
    }}

    /// Sets the timeout of every call made through this client.
    pub fn with_timeout(mut self, timeout: ::core::time::Duration) -> Self {{
        self.options.timeout = ::core::option::Option::Some(timeout);
        self
    }}

    /// The channel calls go through.
    pub fn channel(&self) -> &C {{
        &self.channel
    }}
}}

impl {name}Client<{runtime}::Connection> {{
    /// A client wired to `service` through an in-memory pipe that speaks the
    /// real protocol: for tests, with no sockets. Must be called inside a
    /// tokio runtime; the service runs until the client is dropped.
    pub fn in_memory<S: {name}>(service: S) -> Self {{
        Self::new({runtime}::memory::connect(
            {name}Server::new(service),
            ::core::default::Default::default(),
        ))
    }}
}}

impl<C: {runtime}::rpc::Channel> {name} for {name}Client<C> {{{methods}}}
"#
    );
}
