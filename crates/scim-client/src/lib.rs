//! # scim-client
//!
//! (docs in progress)

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

mod apply;
pub mod auth;
pub mod bulk;
mod client;
pub mod discovery;
pub mod error;
pub mod paging;
pub mod patch;
pub mod plan;
mod resources;
pub mod retry;

pub use apply::{Applied, Created};
pub use auth::{Auth, ClientCredentials, Secret};
pub use client::{ClientBuilder, SCIM_MEDIA_TYPE, ScimClient};
pub use discovery::{Capabilities, Discovery, Paging};
pub use error::{ClientError, HttpError, Result};
pub use paging::{PageRequest, Query};
pub use patch::{PatchBuilder, PatchOp, PatchOperation};
pub use resources::{Endpoint, Versioned};
