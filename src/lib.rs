//! Beslut: a workflow engine for the proposal, funding and change processes of Swedish
//! municipalities. This crate wires the engine and notifications into the `beslut` command.
//!
//! - [`cli`]: the command line (`check`, `graph`, `schema`, …).
//! - [`schema`]: the JSON Schema of the workflow format, for editors.

pub mod cli;
pub mod schema;
