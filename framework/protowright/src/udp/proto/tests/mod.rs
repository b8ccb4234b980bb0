//! Tests of the engine as a whole: two endpoints over a simulated link.

mod link;
mod path;
mod properties;
mod scenarios;
