//! # scim-client
//!
//! An async, typed client for any SCIM 2.0 service provider (RFC 7643,
//! RFC 7644, RFC 9865 cursors), and a storage-free planner that turns the
//! desired state of a user or group into the fewest operations.
//!
//! The planner is pure: given what a resource should be and what the
//! provider holds, it says what to send.
//!
//! ```
//! use scim_client::plan::{MatchStrategy, Plan, PlanOptions, Planner, TargetCapabilities, match_query};
//! use serde_json::json;
//!
//! let planner = Planner::users(TargetCapabilities::default(), PlanOptions::default());
//! let desired = json!({
//!     "externalId": "701984",
//!     "userName": "bjensen@example.com",
//!     "name": {"givenName": "Barbara", "familyName": "Jensen"},
//!     "emails": [{"type": "work", "value": "bjensen@example.com"}]
//! });
//!
//! // Not at the provider yet: look for an account to adopt, else create.
//! assert_eq!(
//!     match_query(&desired, &MatchStrategy::users()).as_deref(),
//!     Some(r#"externalId eq "701984""#)
//! );
//! assert!(matches!(planner.plan(Some(&desired), None), Plan::Create(_)));
//!
//! // At the provider with its own additions and a different case: nothing to do.
//! let remote = json!({
//!     "id": "2819c223", "meta": {"version": "W/\"1\""}, "active": true,
//!     "externalId": "701984", "userName": "BJensen@example.com",
//!     "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Barbara Jensen"},
//!     "emails": [{"type": "work", "value": "bjensen@example.com", "display": "Work"}]
//! });
//! assert_eq!(planner.plan(Some(&desired), Some(&remote)), Plan::Nothing);
//!
//! // Gone from the source: deactivated (or deleted, by policy).
//! assert_eq!(planner.plan(None, Some(&remote)), Plan::Deactivate);
//! ```
//!
//! The client carries the plan out, or is used on its own:
//!
//! ```no_run
//! use futures::TryStreamExt as _;
//! use scim_client::plan::{MatchStrategy, PlanOptions, Planner, TargetCapabilities};
//! use scim_client::{Auth, ClientCredentials, Query, ScimClient};
//! use serde_json::json;
//!
//! # async fn example() -> Result<(), scim_client::ClientError> {
//! let client = ScimClient::builder("https://example.com/scim/v2")
//!     .auth(Auth::oauth2(ClientCredentials::new(
//!         "https://idp.example.com/oauth2/token",
//!         "my-client",
//!         "my-secret",
//!     )))
//!     .build()?;
//!
//! // Discovery decides PATCH or PUT, bulk, filters, page size, ETags and
//! // cursor or index paging.
//! let discovery = client.discover().await?;
//! println!("{:?}", discovery.capabilities);
//!
//! // Typed CRUD and a paging stream.
//! let users: Vec<_> = client
//!     .users()
//!     .search(Query::filter(r#"userName sw "b""#))
//!     .try_collect()
//!     .await?;
//! println!("{} users", users.len());
//!
//! // Plan and apply.
//! let planner = Planner::users(
//!     TargetCapabilities::from(&client.capabilities()),
//!     PlanOptions::default(),
//! );
//! let desired = json!({"userName": "bjensen", "externalId": "701984"});
//! let strategy = MatchStrategy::users();
//! let remote = client.find_match("/Users", &desired, &strategy).await?;
//! let plan = planner.plan(Some(&desired), remote.as_ref());
//! let id = remote.as_ref().and_then(|r| r["id"].as_str());
//! client.apply("/Users", id, &plan, remote.as_ref(), &strategy).await?;
//! # Ok(())
//! # }
//! ```
//!
//! ## What is where
//!
//! | module | what |
//! |---|---|
//! | [`ScimClient`], [`ClientBuilder`] | configuration, the request loop, discovery |
//! | [`Endpoint`] | typed CRUD on `/Users`, `/Groups` or any endpoint; search as a stream |
//! | [`discovery`] | [`Capabilities`] from `/ServiceProviderConfig` (or `/ServiceProviderConfigs`), `/ResourceTypes`, `/Schemas` |
//! | [`paging`] | [`Query`] and the pagination rules (cursor or index, loop guards) |
//! | [`patch`] | typed PATCH operations and [`PatchBuilder`] |
//! | [`bulk`] | bulk requests split to the provider's limits |
//! | [`auth`] | bearer, basic, OAuth2 client credentials |
//! | [`observe`] | every exchange seen by an [`Observer`] (secrets redacted); a shared [`RateLimiter`] |
//! | [`retry`] | what is retried, backoff with full jitter, `Retry-After` |
//! | [`target`] | an [`AddressFilter`] on the addresses connected to; withholding non-SCIM bodies |
//! | [`error`] | [`ClientError`]: method, URL, status, `scimType`, detail |
//! | [`plan`] | the planner, membership deltas and ledger, account matching |
//!
//! ## Behaviour worth knowing
//!
//! - **Retries**: GET, PUT and DELETE are retried on timeouts, lost
//!   connections, 408, 500, 502 and 504; every method on connection
//!   failures before sending and on 429 and 503 (whose `Retry-After`, in
//!   seconds or as an HTTP date, is honoured up to a cap). POST and PATCH
//!   are never repeated once they may have reached the provider.
//! - **Pacing**: [`ClientBuilder::rate_limit`] spaces requests under a
//!   provider's published limit; timeouts are per attempt
//!   ([`ClientBuilder::timeout`], [`ClientBuilder::connect_timeout`]).
//! - **Providers that answer 204** to PATCH (or PUT, or POST with only a
//!   `Location`) are handled: [`Endpoint::patch`] returns `None`,
//!   [`Endpoint::replace`] and [`Endpoint::create`] read the resource back.
//! - **Errors** read on their own:
//!   `POST https://host/scim/v2/Users: 409 uniqueness: userName taken`.
//!   URLs in errors and logs carry no credentials and no query; headers are
//!   never logged.
//! - **Redirects** are never followed. An [`AddressFilter`]
//!   ([`ClientBuilder::address_filter`]) refuses addresses before any
//!   connection, DNS answers included.
//! - **Filters** a provider does not support are evaluated by the client
//!   over unfiltered pages (for `/Users` and `/Groups`).

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

mod apply;
pub mod auth;
pub mod bulk;
mod client;
pub mod discovery;
pub mod error;
pub mod observe;
pub mod paging;
pub mod patch;
pub mod plan;
mod resources;
pub mod retry;
pub mod target;

pub use apply::{Applied, Created};
pub use auth::{Auth, ClientCredentials, Secret};
pub use client::{ClientBuilder, SCIM_MEDIA_TYPE, ScimClient};
pub use discovery::{Capabilities, Discovery, Paging};
pub use error::{ClientError, HttpError, Result};
pub use observe::{Exchange, Observer, RateLimiter};
pub use paging::{PageRequest, Query};
pub use patch::{PatchBuilder, PatchOp, PatchOperation};
pub use resources::{Endpoint, Versioned};
pub use target::AddressFilter;
