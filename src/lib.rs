//! Beslut: a workflow engine for the proposal, funding and change processes of Swedish
//! municipalities. This crate wires the engine and notifications into the `beslut` command.
//!
//! - [`cli`]: the command line (`check`, `graph`, `schema`, …).
//! - [`commands`]: the case commands (`start`, `decide`, `show`, `audit verify`, …).
//! - [`mail`]: email delivery from the outbox, with personal decision links.
//! - [`serve`], [`web`]: the HTTP server, its pages and its background workers.
//! - [`schema`]: the JSON Schema of the workflow format, for editors.

pub mod cli;
pub mod commands;
pub mod mail;
pub mod schema;
pub mod serve;
pub mod web;
