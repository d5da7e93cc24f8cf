//! `scimctl engine`: plan, provision, reconcile, status and log against our
//! server's management API, with a second instance of our server as the
//! downstream application.

use std::process::Output;

use scim_client::{Auth, ScimClient};
use serde_json::{Value, json};

use crate::harness::{OwnServer, bare, start_own};

/// Base64 of 32 bytes: the key sealing application credentials.
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn scimctl(up: &OwnServer, admin: &str, args: &[&str]) -> Output {
    bare()
        .env("SCIMCTL_URL", format!("{}/scim/v2", up.root))
        .env("SCIMCTL_TOKEN", admin)
        .args(args)
        .output()
        .expect("run scimctl")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_str(ok(out).trim()).expect("one JSON document")
}

fn call(base: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let client = ScimClient::builder(base)
        .auth(Auth::bearer(token))
        .build()
        .expect("client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(client.call_json(method, path, &[], body.as_ref()))
        .expect("request")
        .unwrap_or(Value::Null)
}

#[test]
fn engine_commands_against_our_server() {
    let down = start_own(&[], &["--provisioning-workers", "0"]);
    let down_token = down.token("scim:write");
    let up = start_own(
        &[("SCIM_SECRET_KEY", KEY)],
        &["--provisioning-workers", "0"],
    );
    let (scim, admin) = (up.token("scim:write"), up.token("admin"));
    let api = format!("{}/api/v1", up.root);
    let app = call(
        &api,
        &admin,
        "POST",
        "applications",
        Some(
            json!({"name": "down", "baseUrl": format!("{}/scim/v2", down.root),
                    "credentials": {"type": "bearer", "token": down_token}}),
        ),
    )["id"]
        .as_i64()
        .expect("an application id");
    let alice = call(
        &format!("{}/scim/v2", up.root),
        &scim,
        "POST",
        "Users",
        Some(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": "alice"}),
        ),
    )["id"]
        .as_str()
        .expect("a user id")
        .to_owned();
    call(
        &api,
        &admin,
        "POST",
        "assignments",
        Some(json!({"applicationId": app, "resourceId": alice})),
    );
    let app_s = app.to_string();

    // Plan: human and JSON.
    let plan = ok(&scimctl(&up, &admin, &["engine", "plan", &app_s]));
    assert!(plan.contains("create") && plan.contains(&alice), "{plan}");
    assert!(
        plan.contains(&format!("application {app}: 1 to send")),
        "{plan}"
    );
    let plan = json_of(&scimctl(&up, &admin, &["engine", "plan", &app_s, "--json"]));
    assert_eq!(plan["create"][0]["resourceId"], json!(alice));

    // Provision on demand.
    let sent = ok(&scimctl(
        &up,
        &admin,
        &["engine", "provision", &app_s, &alice],
    ));
    assert!(sent.contains("POST ") && sent.contains("-> 201"), "{sent}");
    assert!(sent.contains("provisioned"), "{sent}");

    // Status.
    let status = json_of(&scimctl(
        &up,
        &admin,
        &["engine", "status", &app_s, "--json"],
    ));
    assert_eq!(status["counts"]["provisioned"], 1, "{status}");
    let remote = status["pairs"][0]["remoteId"].as_str().unwrap().to_owned();
    let human = ok(&scimctl(&up, &admin, &["engine", "status", &app_s]));
    assert!(
        human.contains("provisioned 1") && human.contains(&remote),
        "{human}"
    );

    // Reconcile: a dry run, then a stored run.
    let dry = json_of(&scimctl(
        &up,
        &admin,
        &["engine", "reconcile", &app_s, "--dry-run", "--json"],
    ));
    assert_eq!(dry["counts"]["matched"], 1, "{dry}");
    assert_eq!(dry["runId"], Value::Null);
    let run = ok(&scimctl(&up, &admin, &["engine", "reconcile", &app_s]));
    assert!(
        run.contains("run ") && run.contains("1 matched, 0 drifted"),
        "{run}"
    );

    // The log, newest first, with paging.
    let log = json_of(&scimctl(
        &up,
        &admin,
        &["engine", "log", "--app", &app_s, "--user", &alice, "--json"],
    ));
    assert_eq!(log["items"][0]["method"], "POST", "{log}");
    let human = ok(&scimctl(
        &up,
        &admin,
        &["engine", "log", "--app", &app_s, "--limit", "1"],
    ));
    assert!(human.contains("more: --before"), "{human}");

    // Errors: an unknown application (exit 1), no URL (exit 2).
    let missing = scimctl(&up, &admin, &["engine", "status", "999999"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404"));
    let no_url = bare()
        .args(["engine", "status", "1"])
        .output()
        .expect("run scimctl");
    assert_eq!(no_url.status.code(), Some(2));
}
