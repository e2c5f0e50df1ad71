//! Beslut: a workflow engine for the proposal, funding and change processes of Swedish
//! municipalities. This crate wires the engine and notifications into the `beslut` command.
//!
//! - [`api`]: the JSON API (`/api/v1`) and its tokens.
//! - [`config`]: `beslut.toml`, environment variables and flags.
//! - [`telemetry`]: logs and Prometheus metrics.
//! - [`cli`]: the command line (`check`, `graph`, `schema`, …).
//! - [`commands`]: the case commands (`start`, `decide`, `show`, `audit verify`, …).
//! - [`mail`]: email delivery from the outbox, with personal decision links.
//! - [`serve`], [`web`]: the HTTP server, its pages and its background workers.
//! - [`bench`]: `beslut bench`, throughput as ratios to this machine's own limits.
//! - [`schema`]: the JSON Schema of the workflow format, for editors.

pub mod api;
pub mod bench;
pub mod cli;
pub mod commands;
pub mod config;
pub mod mail;
pub mod scenario;
pub mod schema;
pub mod serve;
pub mod telemetry;
pub mod web;
