//! The Beslut engine: workflow definitions, validation, runtime and storage.
//!
//! - [`yaml`]: YAML as a tree of positioned nodes.
//! - [`diagnostic`]: what is wrong, where and how to fix it, in Swedish and English.
//! - [`duration`]: durations as process owners write them.
//! - [`calendar`]: Swedish working days and public holidays, for deadlines.
//! - [`definition`]: the workflow model, its parser and its checker.
//! - [`directory`], [`portfolios`], [`templates`]: the other files of a workflows folder.
//! - [`expr`]: CEL expressions for guards and data.
//! - [`runtime`]: the pure core that applies commands to cases.
//! - [`store`]: all SQL, on SQLite or PostgreSQL.
//! - [`service`]: load, apply and write in one transaction.
//! - [`project`]: loading and checking a whole workflows folder.
//! - [`graph`]: drawing a workflow as DOT, Mermaid or SVG.

pub mod calendar;
pub mod definition;
pub mod diagnostic;
pub mod directory;
pub mod duration;
pub mod expr;
pub mod graph;
pub mod portfolios;
pub mod project;
pub mod runtime;
pub mod service;
pub mod store;
pub mod templates;
pub mod yaml;
