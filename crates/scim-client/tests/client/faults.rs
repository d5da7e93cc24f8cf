//! Retries, backoff, Retry-After, timeouts and dropped connections, with
//! faults injected by the proxy in front of scim2-server.

use std::time::{Duration, Instant, SystemTime};

use scim_client::retry::RetryPolicy;
use scim_client::{Auth, ClientError, Query};
use scim_core::resource::User;
use serde_json::Value;

use crate::harness::free_port;
use crate::proxy::{Fault, Proxy, Seen};
use crate::{builder, client, server_or_skip};

fn gaps(seen: &[Seen]) -> Vec<Duration> {
    seen.windows(2).map(|w| w[1].at - w[0].at).collect()
}

async fn count_users(base: &str, user_name: &str) -> usize {
    client(base)
        .users()
        .search_all(Query::filter(format!("userName eq \"{user_name}\"")))
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn retry_after_in_seconds_is_honoured() {
    let server = server_or_skip!();
    let proxy = Proxy::start(server.addr).await;
    proxy.push([Fault::retry_after(429, "1")]);
    let c = client(&proxy.base());
    c.endpoint::<Value>("/Users")
        .search_all(Query::all())
        .await
        .unwrap();
    let seen = proxy.seen();
    assert_eq!(seen.len(), 2);
    let gap = gaps(&seen)[0];
    assert!(gap >= Duration::from_millis(950), "waited {gap:?}");
    assert!(gap < Duration::from_secs(4), "waited {gap:?}");
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let server = server_or_skip!();
    let proxy = Proxy::start(server.addr).await;
    let when = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    proxy.push([Fault::retry_after(503, &when)]);
    let c = client(&proxy.base());
    // A POST may be retried on 503: the provider did not process it.
    c.users().create(&User::new("dated")).await.unwrap();
    let seen = proxy.seen();
    assert_eq!(seen.len(), 2);
    // HTTP dates have whole seconds: the wait is between 1 and 2 seconds.
    let gap = gaps(&seen)[0];
    assert!(gap >= Duration::from_millis(900), "waited {gap:?}");
    assert!(gap < Duration::from_secs(4), "waited {gap:?}");
    assert_eq!(count_users(&server.base(), "dated").await, 1);
}

#[tokio::test]
async fn post_is_retried_on_429_and_503_without_retry_after() {
    let server = server_or_skip!();
    let proxy = Proxy::start(server.addr).await;
    proxy.push([Fault::status(429), Fault::status(503)]);
    let c = client(&proxy.base());
    c.users().create(&User::new("persistent")).await.unwrap();
    let seen = proxy.seen_matching("POST", "/v2/Users");
    assert_eq!(seen.len(), 3);
    // Backoff with full jitter: at most 50 ms, then at most 100 ms (plus
    // generous slack for a busy machine; the default policy would wait up
    // to 250 ms and 500 ms, and the unit tests check the bounds exactly).
    let g = gaps(&seen);
    assert!(g[0] < Duration::from_millis(50 + 1000), "{g:?}");
    assert!(g[1] < Duration::from_millis(100 + 1000), "{g:?}");
    assert_eq!(
        count_users(&server.base(), "persistent").await,
        1,
        "exactly one account"
    );
}

#[tokio::test]
async fn post_is_not_retried_on_500() {
    let server = server_or_skip!();
    let proxy = Proxy::start(server.addr).await;
    proxy.push([Fault::Status {
        status: 500,
        retry_after: None,
        body: "<html><body>oops</body></html>".into(),
    }]);
    let c = client(&proxy.base());
    let err = c.users().create(&User::new("once")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "POST {}/Users: 500 Internal Server Error: <html><body>oops</body></html>",
            proxy.base()
        )
    );
    assert_eq!(proxy.seen().len(), 1);
}

#[tokio::test]
async fn get_is_retried_on_server_errors() {
    let server = server_or_skip!();
    let proxy = Proxy::start(server.addr).await;
    let c = client(&proxy.base());
    let id = c
        .users()
        .create(&User::new("sturdy"))
        .await
        .unwrap()
        .id
        .unwrap();
    proxy.clear();
    proxy.push([Fault::status(500), Fault::status(502)]);
    assert_eq!(c.users().get(&id).await.unwrap().user_name, "sturdy");
    assert_eq!(proxy.seen().len(), 3);
    // DELETE and PUT are idempotent too.
    proxy.clear();
    proxy.push([Fault::status(504)]);
    assert!(c.users().delete(&id, None).await.unwrap());
    assert_eq!(proxy.seen().len(), 2);
}

#[tokio::test]
async fn retries_stop_after_max_attempts_within_backoff_bounds() {
    let server = server_or_skip!();
    let proxy = Proxy::start(server.addr).await;
    proxy.push(std::iter::repeat_n(Fault::status(503), 10));
    let policy = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(150),
        ..crate::quick_retries()
    };
    let c = builder(&proxy.base()).retry(policy).build().unwrap();
    let started = Instant::now();
    let err = c.users().get("whoever").await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(
        err.to_string(),
        format!(
            "GET {}/Users/whoever: 503 Service Unavailable",
            proxy.base()
        )
    );
    assert_eq!(err.status(), Some(503));
    assert!(err.is_transient());
    let seen = proxy.seen();
    assert_eq!(seen.len(), 3);
    for g in gaps(&seen) {
        assert!(g < Duration::from_millis(150 + 1000), "{g:?}");
    }
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test]
async fn long_retry_after_ends_retries_and_is_reported() {
    let server = server_or_skip!();
    let proxy = Proxy::start(server.addr).await;
    proxy.push([Fault::retry_after(429, "120")]);
    let c = client(&proxy.base());
    let started = Instant::now();
    let err = c.users().get("x").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(
        err.to_string(),
        format!(
            "GET {}/Users/x: 429 Too Many Requests (retry after 120s)",
            proxy.base()
        )
    );
    assert_eq!(proxy.seen().len(), 1);
}

#[tokio::test]
async fn dropped_connections() {
    let server = server_or_skip!();
    let proxy = Proxy::start(server.addr).await;
    let c = client(&proxy.base());
    // A GET is retried.
    proxy.push([Fault::Drop]);
    c.endpoint::<Value>("/Users")
        .search_all(Query::all())
        .await
        .unwrap();
    assert_eq!(proxy.seen().len(), 2);
    // A POST that may have reached the provider is not.
    proxy.clear();
    proxy.push([Fault::Drop]);
    let err = c.users().create(&User::new("maybe")).await.unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("POST {}/Users: connection failed: ", proxy.base())),
        "{err}"
    );
    assert_eq!(proxy.seen().len(), 1);
}

#[tokio::test]
async fn timeouts() {
    let server = server_or_skip!();
    let proxy = Proxy::start(server.addr).await;
    let c = builder(&proxy.base())
        .timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    let id = c
        .users()
        .create(&User::new("slow"))
        .await
        .unwrap()
        .id
        .unwrap();
    proxy.clear();
    // A GET that times out is retried.
    proxy.push([Fault::Hang(Duration::from_secs(3))]);
    assert_eq!(c.users().get(&id).await.unwrap().user_name, "slow");
    assert_eq!(proxy.seen().len(), 2);
    // A PATCH that times out is not: it may have been applied.
    proxy.clear();
    proxy.push([Fault::Hang(Duration::from_secs(3))]);
    let ops = [scim_client::PatchOperation::replace("title", "x".into())];
    let started = Instant::now();
    let err = c.users().patch_ops(&id, &ops, None).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        err.to_string(),
        format!("PATCH {}/Users/{id}: timed out after 400ms", proxy.base())
    );
    assert_eq!(proxy.seen().len(), 1);
}

#[tokio::test]
async fn connection_refused_is_retried_for_any_method() {
    let server = server_or_skip!();
    // Nothing listens on the port until the proxy starts, a moment later.
    let port = free_port();
    let upstream = server.addr;
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        Proxy::start_on(port, upstream).await
    });
    let policy = RetryPolicy {
        max_attempts: 8,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(300),
        ..crate::quick_retries()
    };
    let c = builder(&format!("http://127.0.0.1:{port}/v2"))
        .retry(policy)
        .build()
        .unwrap();
    c.users().create(&User::new("patient")).await.unwrap();
    let proxy = late.await.unwrap();
    assert_eq!(
        proxy.seen().len(),
        1,
        "the POST went out once the port answered"
    );
    assert_eq!(count_users(&server.base(), "patient").await, 1);
}

#[tokio::test]
async fn unreachable_provider_gives_a_connect_error() {
    let port = free_port();
    let c = builder(&format!("http://127.0.0.1:{port}/scim/v2"))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = c.users().get("u1").await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!(
            "GET http://127.0.0.1:{port}/scim/v2/Users/u1: cannot connect: "
        )),
        "{shown}"
    );
    // Four attempts, waits of at most 50 + 100 + 200 ms.
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn secrets_stay_out_of_errors() {
    let server = server_or_skip!();
    let proxy = Proxy::start(server.addr).await;
    proxy.push([Fault::status(500)]);
    let c = builder(&proxy.base())
        .auth(Auth::bearer("sup3r-s3cret-token"))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let err = c.users().create(&User::new("x")).await.unwrap_err();
    assert!(!err.to_string().contains("sup3r"), "{err}");
    assert!(!format!("{err:?}").contains("sup3r"), "{err:?}");
    assert!(!format!("{c:?}").contains("sup3r"));
    // The proxy did receive it.
    assert_eq!(
        proxy.seen()[0].authorization.as_deref(),
        Some("Bearer sup3r-s3cret-token")
    );
}

#[tokio::test]
async fn client_side_rate_limit_paces_requests() {
    let server = server_or_skip!();
    let proxy = Proxy::start(server.addr).await;
    let c = builder(&proxy.base()).rate_limit(20.0).build().unwrap();
    // Six requests at once leave 50 ms apart: 250 ms from first to last.
    let users = c.users();
    let lookups = (0..6).map(|_| users.try_get("nobody-here"));
    for r in futures::future::join_all(lookups).await {
        assert_eq!(r.unwrap(), None);
    }
    let seen = proxy.seen();
    assert_eq!(seen.len(), 6);
    let span = seen.iter().map(|s| s.at).max().unwrap() - seen.iter().map(|s| s.at).min().unwrap();
    assert!(span >= Duration::from_millis(200), "{span:?}");
}
