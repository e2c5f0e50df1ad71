//! Workflow definitions: the model, reading it from YAML, and checking it.

pub mod check;
pub mod model;
pub mod parse;
pub mod reader;
