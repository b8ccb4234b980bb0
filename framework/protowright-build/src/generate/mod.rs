//! The Rust code protowright adds to what prost generates.
//!
//! prost-build calls [`Glue`] (a `ServiceGenerator`) once per service, then
//! once at the end of every file, in descriptor-set order. Service code is
//! written per service; message code (delivery settings, protocol roots) is
//! written at the end of its file, from the [`Model`] read before generation.

mod message;
mod service;

use std::collections::{HashMap, VecDeque};

use prost_build::{Service, ServiceGenerator};

use crate::model::{FileModel, MethodModel, Model};

/// Emits protowright's glue into prost's output.
pub(crate) struct Glue {
    files: VecDeque<FileModel>,
    methods: HashMap<String, MethodModel>,
    /// The path of the protowright runtime crate in generated code.
    runtime: String,
}

impl Glue {
    pub(crate) fn new(model: Model, runtime: String) -> Self {
        Self {
            files: model.files.into(),
            methods: model.methods,
            runtime,
        }
    }
}

impl ServiceGenerator for Glue {
    fn generate(&mut self, service: Service, buf: &mut String) {
        service::generate(&service, &self.methods, &self.runtime, buf);
    }

    fn finalize(&mut self, buf: &mut String) {
        if let Some(file) = self.files.pop_front() {
            message::generate(&file, &self.runtime, buf);
        }
    }
}
