//! Integration tests of scim-client against real servers on loopback: the
//! PyPI package `scim2-server` (installed into a venv under the target
//! directory on first use), and a fault-injecting proxy in front of it.

// The crate root is `tests/client.rs`, so the modules in `tests/client/`
// need their paths spelled out.
#[path = "client/auth.rs"]
mod auth;
#[path = "client/faults.rs"]
mod faults;
#[path = "client/harness.rs"]
mod harness;
#[path = "client/proxy.rs"]
mod proxy;
#[path = "client/scim2.rs"]
mod scim2;
#[path = "client/sync.rs"]
mod sync;

use std::time::Duration;

use scim_client::retry::RetryPolicy;
use scim_client::{ClientBuilder, ScimClient};

/// A retry policy with short waits, for tests.
pub fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        max_total_wait: Duration::from_secs(10),
        max_retry_after: Duration::from_secs(5),
    }
}

/// A client builder for `base` with quick retries and a 5 s timeout.
pub fn builder(base: &str) -> ClientBuilder {
    ScimClient::builder(base)
        .retry(quick_retries())
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(2))
}

/// A client for `base` with quick retries.
pub fn client(base: &str) -> ScimClient {
    builder(base).build().expect("client")
}
