//! The JSON Schema of the workflow format (`beslut schema`), for editors that complete and
//! check workflow files as they are typed.

/// The schema, as published by `beslut schema`.
pub fn workflow_schema() -> String {
    include_str!("workflow.schema.json").to_string()
}
