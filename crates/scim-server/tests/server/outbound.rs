//! The outbound target policy: where applications may send, and what of a
//! target's answers an admin sees. Every target here is a stub on
//! 127.0.0.1 that counts its connections; the refused addresses
//! (10.0.0.1, 169.254.169.254, ...) are never contacted: the refusal
//! happens before any connection, which the counts show for loopback.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::Method;
use scim_server::config::Settings;
use scim_server::store::{ApplicationStore, TenantStore};
use scim_server::tokens::Scope;
use serde_json::{Value, json};

use crate::harness::Ctx;

const APPS: &str = "/api/v1/applications";
const ASSIGNMENTS: &str = "/api/v1/assignments";

/// Base URLs refused by a server started without outbound settings.
const REFUSED_BY_DEFAULT: [&str; 7] = [
    "http://127.0.0.1:9/scim/v2",
    "http://10.0.0.1/",
    "http://169.254.169.254/latest",
    "http://[::1]/",
    "http://localhost/",
    "http://[::ffff:10.0.0.1]/scim",
    "http://100.64.0.1/",
];

/// The settings of a server without `--outbound-allow` (the harness allows
/// loopback for every other test).
fn no_allowlist(s: &mut Settings) {
    s.outbound_allow.clear();
}

/// A target on 127.0.0.1 answering every request with one fixed answer.
struct Stub {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Stub {
    fn start(status: u16, content_type: &str, body: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let answer = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        // Lives until the test binary ends, as the other stub targets do.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                counted.fetch_add(1, Ordering::SeqCst);
                read_request(&mut stream);
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        Self { port, connections }
    }

    fn base(&self, host: &str) -> String {
        format!("http://{host}:{}/scim/v2", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Reads one request (headers and a `Content-Length` body), bounded by a
/// read timeout.
fn read_request(stream: &mut std::net::TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            return;
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return;
            }
        }
        if got.len() > 1 << 20 {
            return;
        }
    }
}

async fn tenant_id(ctx: &Ctx) -> scim_server::store::TenantId {
    ctx.store.find_tenant("acme").unwrap().unwrap().id
}

async fn user(ctx: &Ctx, scim: &str, name: &str) -> String {
    ctx.create(
        "/scim/v2/Users",
        scim,
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name}),
    )
    .await
    .id()
}

async fn assign(ctx: &Ctx, admin: &str, app: i64, user: &str) {
    ctx.create(
        ASSIGNMENTS,
        admin,
        json!({"applicationId": app, "resourceId": user}),
    )
    .await;
}

async fn provision(ctx: &Ctx, admin: &str, app: i64, user: &str) -> Value {
    ctx.send(
        Method::POST,
        &format!("{APPS}/{app}/provision/{user}"),
        admin,
        None,
    )
    .await
    .expect(200)
    .body
}

backend_test!(
    application_targets_follow_the_outbound_policy,
    settings = no_allowlist,
    |ctx| async move {
        let mut ctx = ctx;
        let admin = ctx.token("acme", &[Scope::Admin]);
        let tenant = tenant_id(&ctx).await;
        for url in REFUSED_BY_DEFAULT {
            let res = ctx
                .send(
                    Method::POST,
                    APPS,
                    &admin,
                    Some(&json!({"name": "internal", "baseUrl": url})),
                )
                .await
                .expect(400);
            assert_eq!(res.body["scimType"], "invalidValue", "{url}");
            let detail = res.body["detail"].as_str().unwrap();
            assert!(
                detail.starts_with("baseUrl ") && detail.contains("--outbound-allow"),
                "{url}: {detail}"
            );
        }
        assert!(ctx.store.list_applications(tenant).unwrap().is_empty());

        // A public name is stored (and never contacted here); it cannot be
        // moved to a refused address afterwards.
        let app = ctx
            .create(
                APPS,
                &admin,
                json!({"name": "public", "baseUrl": "https://scim.example.com/v2"}),
            )
            .await
            .body["id"]
            .as_i64()
            .unwrap();
        let res = ctx
            .send(
                Method::PATCH,
                &format!("{APPS}/{app}"),
                &admin,
                Some(&json!({"baseUrl": "http://169.254.169.254/"})),
            )
            .await
            .expect(400);
        assert_eq!(res.body["scimType"], "invalidValue");
        let stored = ctx.store.get_application(tenant, app).unwrap().unwrap();
        assert_eq!(stored.fields.base_url, "https://scim.example.com/v2");

        // The deny list refuses public names too.
        ctx.restart_with(|s| s.outbound_deny = vec!["*.example.com".into()]);
        let res = ctx
            .send(
                Method::POST,
                APPS,
                &admin,
                Some(&json!({"name": "hr", "baseUrl": "https://hr.example.com/scim"})),
            )
            .await
            .expect(400);
        let detail = res.body["detail"].as_str().unwrap();
        assert!(detail.contains("--outbound-deny"), "{detail}");

        // The test default, --outbound-allow 127.0.0.0/8,::1,localhost:
        // loopback only.
        ctx.restart_with(|_| {});
        for (i, url) in REFUSED_BY_DEFAULT.iter().enumerate() {
            let res = ctx
                .send(
                    Method::POST,
                    APPS,
                    &admin,
                    Some(&json!({"name": format!("loop-{i}"), "baseUrl": url})),
                )
                .await;
            let loopback = ["127.0.0.1", "[::1]", "localhost"]
                .iter()
                .any(|h| url.contains(h));
            assert_eq!(res.status, if loopback { 201 } else { 400 }, "{url}");
        }

        // --outbound-allow-private: every one of them.
        ctx.restart_with(|s| {
            s.outbound_allow.clear();
            s.outbound_allow_private = true;
        });
        for (i, url) in REFUSED_BY_DEFAULT.iter().enumerate() {
            ctx.create(
                APPS,
                &admin,
                json!({"name": format!("private-{i}"), "baseUrl": url}),
            )
            .await;
        }
    }
);

backend_test!(
    names_resolving_to_refused_addresses_are_refused_before_connecting,
    settings = no_allowlist,
    |ctx| async move {
        let target = Stub::start(
            201,
            "application/scim+json",
            r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"r1","userName":"x"}"#,
        );
        let admin = ctx.token("acme", &[Scope::Admin]);
        let scim = ctx.token("acme", &[Scope::Write]);
        let tenant = tenant_id(&ctx).await;
        // `localhost` resolves to loopback only when connecting; the
        // literal stands for an application stored before the policy (or
        // by another server's settings). Both are stored behind the API's
        // back: the API itself refuses them.
        for (i, host) in ["localhost", "127.0.0.1"].into_iter().enumerate() {
            let app = ctx
                .create(
                    APPS,
                    &admin,
                    json!({"name": format!("app-{i}"), "baseUrl": "https://scim.example.com/v2"}),
                )
                .await
                .body["id"]
                .as_i64()
                .unwrap();
            let mut fields = ctx
                .store
                .get_application(tenant, app)
                .unwrap()
                .unwrap()
                .fields;
            fields.base_url = target.base(host);
            ctx.store.update_application(tenant, app, &fields).unwrap();
            let alice = user(&ctx, &scim, &format!("alice{i}")).await;
            assign(&ctx, &admin, app, &alice).await;

            let res = provision(&ctx, &admin, app, &alice).await;
            let error = res["lastError"].as_str().unwrap_or_default();
            assert!(
                error.contains("refused by the address policy"),
                "{host}: {res}"
            );
            assert!(error.contains("loopback"), "{host}: {res}");
            let sent = res["sent"].as_array().unwrap();
            assert!(!sent.is_empty(), "{res}");
            assert!(sent.iter().all(|x| x["status"].is_null()), "{res}");
            assert!(
                sent[0]["error"]
                    .as_str()
                    .unwrap()
                    .contains("refused by the address policy"),
                "{res}"
            );

            // Reconciliation (discovery, then reading the target) too.
            let run = ctx
                .send(
                    Method::POST,
                    &format!("{APPS}/{app}/reconcile"),
                    &admin,
                    None,
                )
                .await
                .body;
            assert!(
                run.to_string().contains("refused by the address policy"),
                "{host}: {run}"
            );
        }
        assert_eq!(target.connections(), 0, "the target was contacted");
    }
);

backend_test!(
    only_scim_shaped_answers_of_a_target_are_shown,
    |ctx| async move {
        let secret = "internal-service-secret";
        let html = Stub::start(500, "text/html", &format!("<html><p>{secret}</p></html>"));
        let text = Stub::start(200, "text/plain", &format!("{secret}\n"));
        let json_not_scim = Stub::start(
            200,
            "application/json",
            &format!(r#"{{"secret":"{secret}"}}"#),
        );
        let scim_error = Stub::start(
            409,
            "application/scim+json",
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"409","scimType":"uniqueness","detail":"userName taken downstream"}"#,
        );
        let padding = "p".repeat(10_000);
        let large = Stub::start(
            201,
            "application/scim+json",
            &format!(
                r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"r1","userName":"u","title":"{padding}"}}"#
            ),
        );
        let admin = ctx.token("acme", &[Scope::Admin]);
        let scim = ctx.token("acme", &[Scope::Write]);
        for (i, (stub, shown)) in [
            (&html, None),
            (&text, None),
            (&json_not_scim, None),
            (&scim_error, Some("userName taken downstream")),
            (&large, Some("\"remoteId\":\"r1\"")),
        ]
        .into_iter()
        .enumerate()
        {
            let app = ctx
                .create(
                    APPS,
                    &admin,
                    json!({"name": format!("app-{i}"), "baseUrl": stub.base("127.0.0.1")}),
                )
                .await
                .body["id"]
                .as_i64()
                .unwrap();
            let alice = user(&ctx, &scim, &format!("alice{i}")).await;
            assign(&ctx, &admin, app, &alice).await;
            let res = provision(&ctx, &admin, app, &alice).await;
            assert!(stub.connections() > 0, "{i}: {res}");
            let log = ctx
                .send(
                    Method::GET,
                    &format!("/api/v1/provisioning/log?application={app}"),
                    &admin,
                    None,
                )
                .await
                .expect(200)
                .body;
            assert!(
                log["items"].as_array().is_some_and(|e| !e.is_empty()),
                "{log}"
            );
            for shown_doc in [&res, &log] {
                let all = shown_doc.to_string();
                assert!(
                    !all.contains(secret),
                    "{i}: a target's body is shown: {all}"
                );
                assert!(!all.contains(&padding), "{i}: not truncated");
            }
            if stub.port == large.port {
                // The large SCIM answer is kept, cut at 4,000 bytes.
                let kept = log.to_string();
                assert!(kept.contains("pppp") && kept.contains('…'), "{kept}");
            }
            match shown {
                None => {
                    let note = res["sent"][0]["response"].as_str().unwrap_or_default();
                    assert!(
                        note.starts_with("[not a SCIM body, not shown: ")
                            && note.contains(" bytes]"),
                        "{i}: {res}"
                    );
                }
                Some(part) => {
                    assert!(res.to_string().contains(part), "{i}: {res}");
                }
            }
        }
    }
);
