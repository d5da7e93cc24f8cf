//! Request limits set by the operator (api/limits.rs): body read timeout,
//! concurrency and bytes-in-flight caps; and password hashing kept out of
//! store writes.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use scim_server::tokens::Scope;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::Ctx;

/// A connection that sent the head of a POST to /Users declaring
/// `length` bytes and `sent` bytes of it, then stalls.
async fn stall(ctx: &Ctx, token: &str, length: usize, sent: usize) -> TcpStream {
    let address = ctx.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&vec![b' '; sent]).await.unwrap();
    stream
}

/// What the server sends on `stream` until it closes it (bounded by
/// `wait`); `None` if it is still open then.
async fn until_closed(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

backend_test!(
    a_stalled_body_is_answered_408_and_closed,
    |_ctx| async move {
        let ctx = Ctx::start_with(_ctx.backend(), |s| s.body_timeout_secs = 1.0)
            .await
            .unwrap();
        drop(_ctx);
        let token = ctx.token("acme", &[Scope::Write]);
        let mut stream = stall(&ctx, &token, 10_000, 100).await;
        let answer = until_closed(&mut stream, Duration::from_secs(10))
            .await
            .expect("the connection is closed");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains(r#""status":"408""#), "{answer}");
        assert!(answer.contains("urn:ietf:params:scim:api:messages:2.0:Error"));
        // Nothing was written.
        let res = ctx
            .send(Method::GET, "/scim/v2/Users", &token, None)
            .await
            .expect(200);
        assert_eq!(res.body["totalResults"], 0);
    }
);

backend_test!(
    requests_past_a_token_or_tenant_cap_are_429,
    |_ctx| async move {
        let ctx = Ctx::start_with(_ctx.backend(), |s| {
            s.max_requests_per_token = 2;
            s.max_requests_per_tenant = 3;
        })
        .await
        .unwrap();
        drop(_ctx);
        let first = ctx.token("acme", &[Scope::Write]);
        let second = ctx.token("acme", &[Scope::Write]);
        let other = ctx.token("other", &[Scope::Write]);
        let _held = [
            stall(&ctx, &first, 1000, 10).await,
            stall(&ctx, &first, 1000, 10).await,
        ];
        // Wait until the server holds both.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let res = ctx.send(Method::GET, "/scim/v2/Users", &first, None).await;
        assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.body);
        assert_eq!(res.header("retry-after"), "1");
        assert_eq!(res.body["status"], "429");
        assert!(res.body["detail"].as_str().unwrap().contains("token"));
        // Another token of the tenant may take the tenant's last place.
        let _third = stall(&ctx, &second, 1000, 10).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let res = ctx.send(Method::GET, "/scim/v2/Users", &second, None).await;
        assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.body);
        assert!(res.body["detail"].as_str().unwrap().contains("tenant"));
        // Other tenants are not affected.
        ctx.send(Method::GET, "/scim/v2/Users", &other, None)
            .await
            .expect(200);
    }
);

backend_test!(body_bytes_in_flight_are_capped, |_ctx| async move {
    let ctx = Ctx::start_with(_ctx.backend(), |s| {
        s.max_body_bytes = 10_000;
        s.max_bytes_in_flight_per_token = 20_000;
        s.max_bytes_in_flight = 30_000;
    })
    .await
    .unwrap();
    drop(_ctx);
    let acme = ctx.token("acme", &[Scope::Write]);
    let other = ctx.token("other", &[Scope::Write]);
    let _held = [
        stall(&ctx, &acme, 10_000, 10).await,
        stall(&ctx, &acme, 10_000, 10).await,
    ];
    tokio::time::sleep(Duration::from_millis(300)).await;
    let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a"});
    // The token's bodies are at their cap; GETs carry none and pass.
    let res = ctx
        .send(Method::POST, "/scim/v2/Users", &acme, Some(&user))
        .await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.body);
    assert_eq!(res.header("retry-after"), "1");
    ctx.send(Method::GET, "/scim/v2/Users", &acme, None)
        .await
        .expect(200);
    // The process has room for one more 10,000-byte body, not two.
    let mut third = stall(&ctx, &other, 10_000, 10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut fourth = stall(&ctx, &other, 5_000, 10).await;
    let answer = until_closed(&mut fourth, Duration::from_secs(5))
        .await
        .expect("refused at once");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    // The held bodies are given back when their requests end.
    third.write_all(&vec![b' '; 9_990]).await.unwrap();
    let mut head = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(5), third.read_exact(&mut head))
        .await
        .expect("an answer")
        .unwrap();
    // Blanks are no JSON document.
    assert_eq!(&head, b"HTTP/1.1 400");
    ctx.send(Method::POST, "/scim/v2/Users", &other, Some(&user))
        .await
        .expect(201);
});

backend_test!(
    passwords_are_hashed_outside_store_writes,
    |ctx| async move {
        use scim_server::password::{verify, work_in_writes};
        use scim_server::store::{ResourceStore, TokenStore};
        let token = ctx.token("acme", &[Scope::Write]);
        let before = work_in_writes();
        let id = ctx
        .create("/scim/v2/Users", &token, json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "p", "password": "one"}))
        .await
        .id();
        let path = format!("/scim/v2/Users/{id}");
        let stored = |ctx: &Ctx| {
            let rs =
                scim_server::server::schema_registry(&scim_server::config::Settings::defaults())
                    .unwrap()
                    .resource_schema("User")
                    .unwrap();
            let tenant = ctx.store.authenticate(&token).unwrap().unwrap().tenant_id;
            let doc = ctx
                .store
                .get_resource(tenant, &rs, &id)
                .unwrap()
                .unwrap()
                .document;
            doc["password"].as_str().unwrap().to_owned()
        };
        ctx.send(
        Method::PUT,
        &path,
        &token,
        Some(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "p", "password": "two"})),
    )
    .await
    .expect(200);
        assert!(verify("two", &stored(&ctx)));
        let patch = |op: serde_json::Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [op]});
        ctx.send(
            Method::PATCH,
            &path,
            &token,
            Some(&patch(
                json!({"op": "replace", "path": "password", "value": "three"}),
            )),
        )
        .await
        .expect(200);
        assert!(verify("three", &stored(&ctx)));
        // The same password again is no change: the version stays.
        let version = ctx.get(&path, Some(&token)).await.headers()["etag"].clone();
        let res = ctx
            .send(
                Method::PATCH,
                &path,
                &token,
                Some(&patch(
                    json!({"op": "replace", "value": {"password": "three"}}),
                )),
            )
            .await
            .expect(200);
        assert_eq!(res.header("etag"), version.to_str().unwrap());
        // Through /Bulk, the same code.
        let bulk = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [
                {"method": "PATCH", "path": format!("/Users/{id}"),
                 "data": patch(json!({"op": "replace", "path": "password", "value": "four"}))},
                {"method": "PUT", "path": format!("/Users/{id}"),
                 "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "p", "password": "five"}}
            ]
        });
        let res = ctx
            .send(Method::POST, "/scim/v2/Bulk", &token, Some(&bulk))
            .await
            .expect(200);
        for op in res.body["Operations"].as_array().unwrap() {
            assert_eq!(op["status"], "200", "{op}");
        }
        assert!(verify("five", &stored(&ctx)));
        assert_eq!(work_in_writes(), before, "Argon2 ran inside a store write");
    }
);
