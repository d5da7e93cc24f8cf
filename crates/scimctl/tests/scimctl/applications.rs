//! `scimctl apps` and `scimctl assignments` against our scim-server (with
//! a credential key, so applications can hold a token): create, show,
//! update, list and delete applications without the credentials ever
//! being printed; grant, temporary grant, list, extend and revoke access.

use serde_json::Value;

use crate::harness::{Target, start_own, unique};

/// The credential key of this test's server (32 bytes, base64).
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const SECRET: &str = "downstream-secret-token-4711";

#[test]
fn applications_and_assignments_from_the_command_line() {
    let own = start_own(&[("SCIM_SECRET_KEY", KEY)], &[]);
    let base = format!("{}/scim/v2", own.root);
    let admin = Target {
        name: "scim-server",
        base: base.clone(),
        token: Some(own.token("admin")),
        lists: true,
    };
    let scim = Target {
        name: "scim-server",
        base,
        token: Some(own.token("scim:write")),
        lists: true,
    };
    let alice = scim
        .run(&["users", "create", "--user-name", &unique("alice"), "--json"])
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = scim
        .run(&["users", "create", "--user-name", &unique("bob"), "--json"])
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Create, with the token on standard input: never echoed.
    let name = unique("wiki");
    let created = admin.run_with_input(
        &[
            "apps",
            "create",
            "--name",
            &name,
            "--base-url",
            "http://127.0.0.1:9/scim/v2",
            "--credentials-file",
            "-",
            "--deprovision",
            "deactivate-then-delete",
            "--grace-seconds",
            "60",
        ],
        &format!("{SECRET}\n"),
    );
    let text = created.ok();
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains("bearer (set)"), "{text}");
    let apps = admin.run(&["apps", "list", "--json"]).json();
    let app = apps["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name.as_str())
        .unwrap()
        .clone();
    let id = app["id"].as_i64().unwrap().to_string();
    assert_eq!(app["credentials"]["set"], true, "{app}");
    assert_eq!(app["deprovision"]["action"], "deactivateThenDelete");
    let listed = admin.run(&["apps", "list"]);
    assert!(listed.ok().contains(&name), "{}", listed.stdout);
    assert!(!listed.stdout.contains(SECRET));
    let shown = admin.run(&["apps", "show", &id]);
    assert!(shown.ok().contains("http://127.0.0.1:9/scim/v2"));
    assert!(!shown.stdout.contains(SECRET));

    // Update only what is given; the credentials stay.
    let updated = admin
        .run(&["apps", "update", &id, "--enabled", "false", "--json"])
        .json();
    assert_eq!(updated["enabled"], false);
    assert_eq!(updated["name"], name.as_str());
    assert_eq!(updated["credentials"]["set"], true);
    admin.run(&["apps", "update", &id]).fails(2);
    admin
        .run(&["apps", "update", &id, "--grace-seconds", "5"])
        .fails(2);
    // A credentials file that is empty is refused before anything is sent.
    admin
        .run_with_input(&["apps", "update", &id, "--credentials-file", "-"], "\n")
        .fails(2);
    admin.run(&["apps", "create", "--name", "x"]).fails(2);

    // Grant, and a temporary grant with a reason.
    let grant = admin
        .run(&[
            "assignments",
            "grant",
            "--app",
            &id,
            "--user",
            &alice,
            "--json",
        ])
        .json();
    assert_eq!(grant["resourceId"], alice.as_str());
    assert_eq!(grant["validUntil"], Value::Null);
    let temporary = admin
        .run(&[
            "assignments",
            "grant",
            "--app",
            &id,
            "--user",
            &bob,
            "--from",
            "2026-01-01T00:00:00Z",
            "--until",
            "2099-01-01T00:00:00Z",
            "--reason",
            "project X",
            "--json",
        ])
        .json();
    assert_eq!(temporary["validUntil"], "2099-01-01T00:00:00Z");
    assert_eq!(temporary["reason"], "project X");
    let temporary_id = temporary["id"].as_i64().unwrap().to_string();
    // Neither --user nor --group: clap's usage error.
    assert_eq!(admin.run(&["assignments", "grant", "--app", &id]).code, 2);
    let unknown = admin.run(&["assignments", "grant", "--app", "999999", "--user", &alice]);
    assert!(unknown.fails(1).contains("404"), "{}", unknown.stderr);

    // List, by application and by user.
    let of_app = admin
        .run(&["assignments", "list", "--app", &id, "--json"])
        .json();
    assert_eq!(of_app["items"].as_array().unwrap().len(), 2, "{of_app}");
    let of_bob = admin
        .run(&["assignments", "list", "--user", &bob, "--json"])
        .json();
    assert_eq!(of_bob["items"].as_array().unwrap().len(), 1, "{of_bob}");
    let table = admin.run(&["assignments", "list", "--app", &id]);
    assert!(
        table.ok().contains("2099-01-01T00:00:00Z"),
        "{}",
        table.stdout
    );

    // Extend, then revoke.
    let extended = admin.run(&[
        "assignments",
        "extend",
        &temporary_id,
        "--until",
        "2099-06-01T00:00:00Z",
        "--reason",
        "longer project",
    ]);
    assert!(
        extended.ok().contains("now ends 2099-06-01"),
        "{}",
        extended.stdout
    );
    let revoked = admin.run(&["assignments", "revoke", &temporary_id]);
    assert!(
        revoked
            .ok()
            .contains(&format!("deleted assignment {temporary_id}"))
    );
    let of_bob = admin
        .run(&["assignments", "list", "--user", &bob, "--json"])
        .json();
    assert_eq!(of_bob["items"].as_array().unwrap().len(), 0, "{of_bob}");
    admin
        .run(&["assignments", "revoke", &temporary_id])
        .fails(1);

    // Every step is in the audit log, with the actor, and the chain holds.
    let entries = admin
        .run(&["audit", "query", "--action", "assignment.*", "--json"])
        .json();
    let actions: Vec<&str> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"assignment.create"), "{actions:?}");
    assert!(actions.contains(&"assignment.delete"), "{actions:?}");
    let verified = admin.run(&["audit", "verify"]);
    let out = verified.ok();
    assert!(out.contains("keyed: yes"), "{out}");
    let head = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("head "))
        .unwrap()
        .to_owned();
    let kept = admin.run(&["audit", "verify", "--expect-head", &head]);
    assert!(kept.ok().contains("holds"), "{}", kept.stdout);
    let forged = format!("{}:{}", 1, "0".repeat(64));
    let refused = admin.run(&["audit", "verify", "--expect-head", &forged]);
    assert!(refused.fails(1).contains("kept head"), "{}", refused.stderr);

    // Delete the application.
    admin.run(&["apps", "delete", &id]).ok();
    admin.run(&["apps", "show", &id]).fails(1);
}
