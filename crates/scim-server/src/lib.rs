//! # scim-server
//!
//! The SCIM 2.0 service provider: the `/scim/v2` endpoints, storage on
//! SQLite or PostgreSQL, API tokens, and operations (`/healthz`, `/metrics`,
//! request logs, graceful shutdown). The `scim-server` binary is a thin
//! wrapper around [`run`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod db;
pub mod error;
pub mod store;
pub mod tokens;

pub use error::{Error, Result};
