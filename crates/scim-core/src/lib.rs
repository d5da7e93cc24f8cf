//! # scim-core
//!
//! The SCIM 2.0 protocol as a library, with no I/O: the RFC 7643 schemas as
//! data, resources, the RFC 7644 filter language (parsed with spans, resolved
//! against the schema, evaluated in memory), attribute paths and PATCH
//! (with a tested layer that normalises what real identity providers send),
//! projection, validation, errors and message types (including RFC 9865
//! cursor pagination).
//!
//! ```
//! use scim_core::schema::SchemaRegistry;
//! use scim_core::filter::Filter;
//! use serde_json::json;
//!
//! let registry = SchemaRegistry::core();
//! let users = registry.resource_schema("User").unwrap();
//! let filter = Filter::parse(
//!     r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
//!     &users,
//! )
//! .unwrap();
//! let bjensen = json!({
//!     "userName": "bjensen",
//!     "userType": "Employee",
//!     "emails": [{"type": "work", "value": "bjensen@example.com"}]
//! });
//! assert!(filter.matches(&bjensen));
//! ```
//!
//! ## Input safety
//!
//! Filters and paths come from untrusted clients. The parser bounds the input
//! length, the nesting depth and the number of terms ([`filter::Limits`]),
//! and no function in this crate recurses deeper than those limits, so a
//! hostile filter cannot exhaust the stack in parsing, evaluation, display
//! or drop.
//!
//! Text that no database can store the same way is refused everywhere it
//! enters ([`input`]): U+0000 in bodies, filters and paths, and unique keys
//! (`userName`, `externalId`, a Group's `displayName`) over
//! [`input::MAX_KEY_BYTES`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod error;
pub mod filter;
pub mod input;
pub mod json;
pub mod messages;
pub mod patch;
pub mod path;
pub mod projection;
pub mod resource;
pub mod schema;
pub mod validate;

pub use error::{Error, ErrorKind, Result};

/// The README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
