//! Tests of the engine as a whole: two endpoints over a simulated link.

mod budgets;
mod cases;
mod checkers;
mod duplicates;
mod handshake;
mod link;
mod memory;
mod path;
mod properties;
mod scenarios;
mod security;
mod tap;
