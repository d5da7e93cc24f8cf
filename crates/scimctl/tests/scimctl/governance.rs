//! `scimctl reviews` and `scimctl audit` against our scim-server: start a
//! review, decide, export; query, export and verify the audit log.

use serde_json::{Value, json};

use crate::harness::{ours, ours_admin, unique};

/// POSTs to our server's management API (scimctl has no application
/// commands).
fn api_post(path: &str, body: Value) -> Value {
    let admin = ours_admin();
    let url = format!("{}/api/v1{path}", admin.base.trim_end_matches("/scim/v2"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let res = reqwest::Client::new()
            .post(&url)
            .bearer_auth(admin.token.unwrap())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{url}");
        res.json().await.unwrap()
    })
}

#[test]
fn reviews_and_audit_from_the_command_line() {
    let scim = ours();
    let admin = ours_admin();
    let name = unique("rev");
    let user = scim
        .run(&["users", "create", "--user-name", &name, "--json"])
        .json();
    let user_id = user["id"].as_str().unwrap();
    let app = api_post(
        "/applications",
        json!({"name": unique("app"), "baseUrl": "http://127.0.0.1:9/scim/v2"}),
    )["id"]
        .as_i64()
        .unwrap();
    api_post(
        "/assignments",
        json!({"applicationId": app, "resourceId": user_id}),
    );

    let due = "2099-01-01T00:00:00Z";
    let campaign = admin
        .run(&[
            "reviews",
            "create",
            "--name",
            "quarterly",
            "--application",
            &app.to_string(),
            "--due",
            due,
            "--default",
            "revoke",
            "--json",
        ])
        .json();
    let id = campaign["id"].as_i64().unwrap().to_string();
    assert_eq!(campaign["progress"]["total"], 1);
    assert_eq!(campaign["defaultDecision"], "revoke");

    let listed = admin.run(&["reviews", "list"]);
    assert!(
        listed
            .ok()
            .lines()
            .any(|l| l.starts_with(&format!("{id} "))),
        "{}",
        listed.stdout
    );
    let items = admin.run(&["reviews", "items", &id, "--pending"]);
    assert!(items.ok().contains(&name), "{}", items.stdout);
    let items = admin.run(&["reviews", "items", &id, "--json"]).json();
    let item = items["items"][0]["id"].as_i64().unwrap().to_string();

    // A revoke needs a reason: a usage error, nothing sent.
    let refused = admin.run(&["reviews", "decide", &id, &item, "revoke"]);
    assert!(refused.fails(2).contains("--comment"));
    let decided = admin.run(&[
        "reviews",
        "decide",
        &id,
        &item,
        "revoke",
        "--comment",
        "moved teams",
    ]);
    let line = decided.ok();
    assert!(
        line.contains("revoke") && line.contains("revoked"),
        "{line}"
    );
    // Deciding again is refused by the server: exit code 1.
    let again = admin.run(&["reviews", "decide", &id, &item, "keep"]);
    assert!(again.fails(1).contains("409"), "{}", again.stderr);

    let csv = admin.run(&["reviews", "export", &id]);
    let lines: Vec<&str> = csv.ok().lines().collect();
    assert!(lines[0].starts_with("itemId,userId,userName"), "{lines:?}");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[1].contains(",revoke,moved teams,"), "{lines:?}");
    let exported = admin
        .run(&["reviews", "export", &id, "--format", "json"])
        .json();
    assert_eq!(exported["campaign"]["progress"]["revoked"], 1);

    // The audit log, filtered to this item.
    let entries = admin
        .run(&[
            "audit",
            "query",
            "--target-type",
            "ReviewItem",
            "--target-id",
            &item,
            "--json",
        ])
        .json();
    let entries = entries["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["action"], "review.decide");
    assert_eq!(entries[0]["after"]["comment"], "moved teams");
    let table = admin.run(&["audit", "query", "--action", "review.*", "--limit", "5"]);
    assert!(table.ok().contains("review.decide"), "{}", table.stdout);
    let lines = admin.run(&["audit", "export", "--action", "review.*"]);
    for l in lines.ok().lines() {
        let e: Value = serde_json::from_str(l).unwrap();
        assert!(e["action"].as_str().unwrap().starts_with("review."));
    }
    let verified = admin.run(&["audit", "verify"]);
    assert!(verified.ok().contains("verifies"), "{}", verified.stdout);
    assert_eq!(
        admin.run(&["audit", "verify", "--json"]).json()["valid"],
        true
    );
    // A SCIM token may not read the audit log.
    assert!(scim.run(&["audit", "verify"]).fails(1).contains("403"));
}
