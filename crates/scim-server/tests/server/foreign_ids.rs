//! Tenant isolation of the management API: every `/api/v1` route that
//! takes an id answers 404 to another tenant's id, and changes nothing.
//!
//! The routes are read from the route table (`src/api/routes.rs`), so a
//! route added later without a case here fails this test.

use std::collections::BTreeSet;

use reqwest::Method;
use scim_server::tokens::Scope;
use serde_json::{Value, json};

use crate::groups::USER;
use crate::harness::{Ctx, Res};

/// Every route registered under `/api/v1`: (method, path relative to the
/// scope, with its parameter names), read from the route table's source:
/// `get_only("..")`, `post_only("..")`, and `web::resource("..")` with the
/// `.route(web::<method>()...)` calls that follow it.
fn api_v1_routes() -> BTreeSet<(String, String)> {
    let source = include_str!("../../src/api/routes.rs");
    let start = source
        .find("web::scope(\"/api/v1\")")
        .expect("routes.rs has the /api/v1 scope");
    let code: String = source[start..]
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let literal = |text: &str| text[..text.find('"').unwrap_or(text.len())].to_owned();
    let mut routes = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let path_arg = |prefix: &str| {
            rest.strip_prefix(prefix)
                .and_then(|r| r.trim_start().strip_prefix('"'))
                .map(literal)
        };
        if let Some(path) = path_arg("get_only(") {
            routes.insert(("GET".to_owned(), path));
            current = None;
        } else if let Some(path) = path_arg("post_only(") {
            routes.insert(("POST".to_owned(), path));
            current = None;
        } else if let Some(path) = path_arg("web::resource(") {
            current = Some(path);
        } else if rest.starts_with("fn ") {
            current = None;
        } else if let Some(r) = rest.strip_prefix(".route(web::") {
            let method = &r[..r.find('(').unwrap_or(0)];
            if let Some(path) = &current {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    routes
}

/// The routes that take no id in their path (lists, creates, the audit
/// log, the OpenAPI document): nothing to check here.
const WITHOUT_ID: &[(&str, &str)] = &[
    ("GET", "/applications"),
    ("POST", "/applications"),
    ("GET", "/provisioning/log"),
    ("GET", "/provisioning/dead-letters"),
    ("POST", "/provisioning/dead-letters/replay"),
    ("GET", "/assignments"),
    ("POST", "/assignments"),
    ("GET", "/playbooks"),
    ("POST", "/playbooks"),
    ("GET", "/rules"),
    ("POST", "/rules"),
    ("POST", "/rules/preview"),
    ("GET", "/audit"),
    ("GET", "/audit/export"),
    ("GET", "/audit/verify"),
    ("GET", "/reviews"),
    ("POST", "/reviews"),
    ("GET", "/openapi.json"),
    ("GET", "/exclusions"),
    ("POST", "/exclusions"),
];

/// The objects of one tenant that ids name.
struct Objects {
    app: i64,
    user: String,
    assignment: i64,
    playbook: i64,
    playbook_run: i64,
    rule: i64,
    reconcile_run: i64,
    review: i64,
    review_item: i64,
    exclusion: i64,
}

impl Objects {
    /// The id a path parameter stands for, from the segment before it.
    fn id_after(&self, path: &str, segment: &str) -> String {
        match segment {
            "applications" => self.app.to_string(),
            "users" | "provision" => self.user.clone(),
            "assignments" => self.assignment.to_string(),
            "playbooks" => self.playbook.to_string(),
            "runs" if path.starts_with("/applications/") => self.reconcile_run.to_string(),
            "runs" => self.playbook_run.to_string(),
            "rules" => self.rule.to_string(),
            "reviews" => self.review.to_string(),
            "items" => self.review_item.to_string(),
            "exclusions" => self.exclusion.to_string(),
            other => panic!(
                "{path}: no id known for a parameter after '{other}'; add one to foreign_ids.rs"
            ),
        }
    }
}

/// `path` with its parameters replaced: the last by `last`'s id, the
/// others by `rest`'s (so that a two-id route is also tried with the first
/// id the caller's own).
fn concrete(path: &str, rest: &Objects, last: &Objects) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let params = segments.iter().filter(|s| s.starts_with('{')).count();
    let mut seen = 0;
    let mut out = Vec::new();
    for (i, s) in segments.iter().enumerate() {
        if s.starts_with('{') {
            seen += 1;
            let from = if seen == params { last } else { rest };
            out.push(from.id_after(path, segments[i - 1]));
        } else {
            out.push((*s).to_owned());
        }
    }
    format!("/api/v1{}", out.join("/"))
}

/// A body that would be accepted with the caller's own ids, so that only
/// the foreign id can make the request fail.
fn body_for(method: &str, path: &str, own: &Objects) -> Value {
    let future = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    match (method, path) {
        ("PATCH", "/applications/{id}") => json!({"name": "renamed"}),
        ("POST", "/applications/{id}/reconcile") => json!({"dryRun": true}),
        ("PUT", "/playbooks/{id}") => json!({"name": "replaced", "actions": []}),
        ("POST", "/playbooks/{id}/runs" | "/playbooks/{id}/preview") => {
            json!({"users": [own.user], "confirm": true})
        }
        ("PUT", "/rules/{id}") => {
            json!({"name": "replaced", "event": "joiner", "filter": "title pr", "playbooks": []})
        }
        ("POST", "/users/{id}/preview") => json!({"delete": true}),
        ("POST", "/assignments/{id}/extend") => json!({"validUntil": future}),
        ("POST", "/reviews/{id}/items/{item}/decision") => json!({"decision": "keep"}),
        ("GET" | "DELETE", _)
        | ("POST", "/applications/{id}/provision/{user_id}" | "/reviews/{id}/close") => Value::Null,
        _ => panic!("{method} {path}: no case in foreign_ids.rs; add one"),
    }
}

/// A downstream SCIM server and, in `tenant`, one of every object.
async fn objects(ctx: &Ctx, down: &Ctx, tenant: &str) -> (String, Objects) {
    let admin = ctx.token(tenant, &[Scope::Admin]);
    let scim = ctx.token(tenant, &[Scope::Write]);
    let down_token = down.token(tenant, &[Scope::Write]);
    let create = |path: &'static str, token: String, body: Value| async move {
        ctx.create(path, &token, body).await.body
    };
    let app = create(
        "/api/v1/applications",
        admin.clone(),
        json!({"name": format!("app-{tenant}"), "baseUrl": down.scim_base(),
               "credentials": {"type": "bearer", "token": down_token},
               "deprovision": {"action": "deactivate"}}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let user = ctx
        .create(
            "/scim/v2/Users",
            &scim,
            json!({"schemas": [USER], "userName": format!("user-{tenant}"), "active": true}),
        )
        .await
        .id();
    let assignment = create(
        "/api/v1/assignments",
        admin.clone(),
        json!({"applicationId": app, "resourceId": user,
               "validUntil": (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339()}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let id_of = |v: Value| v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"));
    // An extension, so that the extensions list is not empty.
    ctx.send(
        Method::POST,
        &format!("/api/v1/assignments/{assignment}/extend"),
        &admin,
        Some(
            &json!({"validUntil": (chrono::Utc::now() + chrono::Duration::days(14)).to_rfc3339(),
                    "reason": "project"}),
        ),
    )
    .await
    .expect(200);
    let playbook = id_of(
        create(
            "/api/v1/playbooks",
            admin.clone(),
            json!({"name": "pb", "actions": [{"type": "setAttributes",
                                              "attributes": {"title": "Engineer"}}]}),
        )
        .await,
    );
    let playbook_run = id_of(
        ctx.send(
            Method::POST,
            &format!("/api/v1/playbooks/{playbook}/runs"),
            &admin,
            Some(&json!({"users": [user], "confirm": true})),
        )
        .await
        .expect(201)
        .body,
    );
    let rule = id_of(
        create(
            "/api/v1/rules",
            admin.clone(),
            json!({"name": "r", "event": "mover", "filter": "title pr", "playbooks": [playbook]}),
        )
        .await,
    );
    let reconciled = ctx
        .send(
            Method::POST,
            &format!("/api/v1/applications/{app}/reconcile"),
            &admin,
            Some(&json!({})),
        )
        .await
        .body;
    let reconcile_run = reconciled["runId"]
        .as_i64()
        .unwrap_or_else(|| panic!("no run: {reconciled}"));
    let review = id_of(
        create(
            "/api/v1/reviews",
            admin.clone(),
            json!({"name": "q4", "scope": {"type": "application", "id": app},
                   "dueAt": (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339(),
                   "defaultDecision": "keep"}),
        )
        .await,
    );
    let items = ctx
        .send(
            Method::GET,
            &format!("/api/v1/reviews/{review}/items"),
            &admin,
            None,
        )
        .await
        .expect(200)
        .body;
    let review_item = items["items"][0]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no review item: {items}"));
    let exclusion = id_of(
        create(
            "/api/v1/exclusions",
            admin.clone(),
            json!({"applicationId": app, "userId": user, "reason": "foreign-id walk"}),
        )
        .await,
    );
    let objects = Objects {
        app,
        user,
        assignment,
        playbook,
        playbook_run,
        rule,
        reconcile_run,
        review,
        review_item,
        exclusion,
    };
    (admin, objects)
}

async fn call(ctx: &Ctx, token: &str, method: &str, url: &str, body: &Value) -> Res {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let body = (!body.is_null()).then_some(body);
    ctx.send(method, url, token, body).await
}

backend_test!(
    every_api_v1_route_answers_404_to_another_tenants_ids,
    |ctx| async move {
        let down = Ctx::start(ctx.backend()).await.expect("downstream");
        let (admin_a, own) = objects(&ctx, &down, "tenant-a").await;
        let (admin_b, foreign) = objects(&ctx, &down, "tenant-b").await;

        let routes = api_v1_routes();
        assert!(routes.len() > 40, "the route scan found only {routes:?}");
        let mut checked = Vec::new();
        let mut wrong = Vec::new();
        for (method, path) in &routes {
            if !path.contains('{') {
                assert!(
                    WITHOUT_ID.contains(&(method.as_str(), path.as_str())),
                    "{method} {path} takes no id and is not in WITHOUT_ID: add it there"
                );
                continue;
            }
            let body = body_for(method, path, &own);
            let mut urls = vec![concrete(path, &foreign, &foreign)];
            if path.matches('{').count() > 1 {
                urls.push(concrete(path, &own, &foreign));
            }
            for url in urls {
                let res = call(&ctx, &admin_a, method, &url, &body).await;
                if res.status.as_u16() != 404 {
                    wrong.push(format!("{method} {url}: {} {}", res.status, res.body));
                }
                checked.push(format!("{method} {path}"));
            }
        }
        assert!(
            wrong.is_empty(),
            "answered other than 404 to another tenant's ids:\n{}",
            wrong.join("\n")
        );
        assert!(checked.len() > 30, "{checked:?}");

        // Tenant B's objects are untouched.
        for path in [
            format!("/api/v1/applications/{}", foreign.app),
            format!("/api/v1/playbooks/{}", foreign.playbook),
            format!("/api/v1/rules/{}", foreign.rule),
            format!("/api/v1/runs/{}", foreign.playbook_run),
            format!("/api/v1/reviews/{}", foreign.review),
        ] {
            let res = ctx
                .send(Method::GET, &path, &admin_b, None)
                .await
                .expect(200);
            assert!(
                res.body
                    .get("name")
                    .is_none_or(|n| n != "renamed" && n != "replaced"),
                "{path}: {}",
                res.body
            );
        }
        let review = ctx
            .send(
                Method::GET,
                &format!("/api/v1/reviews/{}/items", foreign.review),
                &admin_b,
                None,
            )
            .await
            .expect(200)
            .body;
        assert_eq!(review["items"][0]["decision"], Value::Null, "{review}");
        let extensions = ctx
            .send(
                Method::GET,
                &format!("/api/v1/assignments/{}/extensions", foreign.assignment),
                &admin_b,
                None,
            )
            .await
            .expect(200)
            .body;
        assert_eq!(extensions["totalResults"], 1, "{extensions}");
    }
);
