//! Beslut's notifications: signed decision links, email rendering and delivery, and outbound
//! webhooks. Knows nothing of HTTP servers; the root package wires it to the web layer.
//!
//! - [`links`]: signed, per-person, per-action tokens for `/d/{token}` links.
//! - [`render`]: emails from Handlebars templates (built-in, overridable per installation).
//! - [`webhooks`]: Standard Webhooks signatures, outbound and inbound.
//! - [`deliver`]: outbound webhooks and external calls, from the outbox.

pub mod deliver;
pub mod links;
pub mod render;
pub mod webhooks;
