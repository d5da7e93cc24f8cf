//! The scimctl integration tests: the built binary against real servers on
//! loopback, in one test binary with a module per area.
//!
//! Two servers: ours (`scim-server`, the binary built next to `scimctl`,
//! on a temporary SQLite database), and the PyPI package `scim2-server`
//! (in a venv under the target directory, created on first use). Tests
//! written with [`both!`] run against each. Our server's list endpoint
//! (`GET /Users`) may not be there yet: tests that list ask
//! [`harness::Target::lists`] and run their listing steps only where it is.

#[path = "scimctl/harness.rs"]
#[macro_use]
mod harness;

#[path = "scimctl/applications.rs"]
mod applications;
#[path = "scimctl/crud.rs"]
mod crud;
#[path = "scimctl/engine.rs"]
mod engine;
#[path = "scimctl/errors.rs"]
mod errors;
#[path = "scimctl/governance.rs"]
mod governance;
#[path = "scimctl/transfer.rs"]
mod transfer;
