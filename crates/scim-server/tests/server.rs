//! The scim-server integration tests: one binary, one module per area.
//! Every `backend_test!` / `store_test!` runs against SQLite and, when
//! `SCIM_TEST_POSTGRES_URL` is set, against PostgreSQL too.

#[path = "server/harness.rs"]
#[macro_use]
mod harness;

#[path = "server/auth.rs"]
mod auth;
#[path = "server/cli.rs"]
mod cli;
#[path = "server/discovery.rs"]
mod discovery;
#[path = "server/filter_corpus.rs"]
mod filter_corpus;
#[path = "server/ops.rs"]
mod ops;
#[path = "server/queries.rs"]
mod queries;
#[path = "server/store.rs"]
mod store;
