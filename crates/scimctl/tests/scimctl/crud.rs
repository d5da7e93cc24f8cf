//! Create, read, change and delete users and groups; discovery; listing.

use serde_json::{Value, json};

use crate::harness::unique;

both!(user_lifecycle, |t| {
    let name = unique("crud");
    let created = t
        .run(&[
            "users",
            "create",
            "--user-name",
            &name,
            "--given-name",
            "Barbara",
            "--family-name",
            "Jensen",
            "--email",
            "bjensen@example.com",
            "--active",
            "--json",
        ])
        .json();
    let id = created["id"].as_str().expect("an id").to_string();
    assert_eq!(created["userName"], name.as_str());
    assert_eq!(created["name"]["givenName"], "Barbara");
    assert_eq!(created["emails"][0]["value"], "bjensen@example.com");
    assert_eq!(created["active"], true);

    // Human output: the attributes one per line.
    let shown = t.run(&["users", "get", &id]);
    let text = shown.ok();
    assert!(
        text.lines()
            .any(|l| l.starts_with("userName") && l.ends_with(&name)),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("name.familyName") && l.ends_with("Jensen"))
    );

    // Options, paired in order.
    let out = t.run(&[
        "users",
        "patch",
        &id,
        "--op",
        "replace",
        "--path",
        "active",
        "--value",
        "false",
        "--op",
        "replace",
        "--path",
        "displayName",
        "--value",
        "Babs Jensen",
    ]);
    assert_eq!(out.ok().trim(), format!("patched user {id} (2 operations)"));
    let got = t.run(&["users", "get", &id, "--json"]).json();
    assert_eq!(got["active"], false);
    assert_eq!(got["displayName"], "Babs Jensen");

    // A PatchOp message on standard input.
    let message = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": "displayName"},
                       {"op": "add", "value": {"nickName": "Babs"}}]
    });
    let patched = t
        .run_with_input(
            &["users", "patch", &id, "--file", "-", "--json"],
            &message.to_string(),
        )
        .json();
    assert_eq!(patched["nickName"], "Babs");
    assert!(patched.get("displayName").is_none(), "{patched}");

    assert_eq!(
        t.run(&["users", "delete", &id]).ok().trim(),
        format!("deleted user {id}")
    );
    let gone = t.run(&["users", "get", &id]);
    let line = gone.fails(1);
    assert!(line.contains("404"), "{line}");
    assert!(line.contains(&format!("/Users/{id}")), "{line}");
    let again = t.run(&["users", "delete", &id]);
    assert_eq!(again.fails(1), format!("error: no user with id \"{id}\""));
});

both!(user_from_a_json_file, |t| {
    let name = unique("file");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("user.json");
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name, "externalId": "ext-1", "title": "Tour Guide"
    });
    std::fs::write(&path, user.to_string()).unwrap();
    let run = t.run(&["users", "create", "--file", path.to_str().unwrap()]);
    let line = run.ok().trim().to_string();
    assert!(
        line.starts_with(&format!("created user {name} (id ")),
        "{line}"
    );
    let id = line.rsplit(' ').next().unwrap().trim_end_matches(')');
    let got = t.run(&["users", "get", id, "--json"]).json();
    assert_eq!(got["title"], "Tour Guide");
    assert_eq!(got["externalId"], "ext-1");
    t.run(&["users", "delete", id]).ok();
});

both!(group_members, |t| {
    let mut ids = Vec::new();
    for _ in 0..3 {
        let u = t
            .run(&[
                "users",
                "create",
                "--user-name",
                &unique("member"),
                "--json",
            ])
            .json();
        ids.push(u["id"].as_str().unwrap().to_string());
    }
    let name = unique("group");
    let group = t
        .run(&[
            "groups",
            "create",
            "--display-name",
            &name,
            "--member",
            &ids[0],
            "--json",
        ])
        .json();
    let gid = group["id"].as_str().unwrap().to_string();
    let members = |g: &Value| -> Vec<String> {
        let mut m: Vec<String> = g["members"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|m| m["value"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        m.sort();
        m
    };
    assert_eq!(members(&group), [ids[0].clone()]);

    let out = t.run(&["groups", "add-member", &gid, &ids[1], &ids[2]]);
    assert_eq!(out.ok().trim(), format!("added 2 members to group {gid}"));
    let mut all = ids.clone();
    all.sort();
    assert_eq!(
        members(&t.run(&["groups", "get", &gid, "--json"]).json()),
        all
    );

    let after = t
        .run(&["groups", "remove-member", &gid, &ids[0], &ids[2], "--json"])
        .json();
    let got = t.run(&["groups", "get", &gid, "--json"]).json();
    assert_eq!(members(&got), [ids[1].clone()]);
    assert_eq!(after["id"], gid.as_str());

    let renamed = format!("{name}-renamed");
    t.run(&[
        "groups",
        "patch",
        &gid,
        "--op",
        "replace",
        "--path",
        "displayName",
        "--value",
        &renamed,
    ])
    .ok();
    let got = t.run(&["groups", "get", &gid]);
    assert!(
        got.ok()
            .lines()
            .any(|l| l.starts_with("displayName") && l.ends_with(&renamed))
    );

    if t.lists {
        let table = t.run(&[
            "groups",
            "list",
            "--filter",
            &format!("displayName eq \"{renamed}\""),
        ]);
        let lines: Vec<&str> = table.ok().lines().collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("ID") && lines[0].contains("DISPLAYNAME"));
        assert!(
            lines[1].starts_with(&gid) && lines[1].trim_end().ends_with(" 1"),
            "{lines:?}"
        );
    }
    if t.lists {
        let filter = format!("displayName eq \"{renamed}\"");
        let csv = t.run(&["export", "groups", "--filter", &filter, "--format", "csv"]);
        assert_eq!(
            csv.ok(),
            format!(
                "id,externalId,displayName,members\n{gid},,{renamed},{}\n",
                ids[1]
            )
        );
        assert_eq!(csv.stderr.trim(), "exported 1 group");
    }
    t.run(&["groups", "delete", &gid]).ok();
    for id in &ids {
        t.run(&["users", "delete", id]).ok();
    }
});

both!(discover, |t| {
    let d = t.run(&["discover", "--json"]).json();
    assert_eq!(d["capabilities"]["patch"], true);
    let types: Vec<&str> = d["resourceTypes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rt| rt["endpoint"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"/Users") && types.contains(&"/Groups"),
        "{types:?}"
    );
    assert!(
        d["schemas"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == "urn:ietf:params:scim:schemas:core:2.0:User")
    );

    let human = t.run(&["discover"]);
    let text = human.ok();
    assert!(
        text.starts_with(&format!("Service provider {}", t.base)),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("PATCH") && l.ends_with("yes")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("User ") && l.contains("/Users")),
        "{text}"
    );
});

both!(list_pages_filters_and_limits, |t| {
    if !t.lists {
        return;
    }
    let prefix = unique("list");
    for i in 0..7 {
        let name = format!("{prefix}{i}");
        let active = if i % 2 == 0 { "true" } else { "false" };
        t.run(&["users", "create", "--user-name", &name, "--active", active])
            .ok();
    }
    let filter = format!("userName sw \"{prefix}\"");
    // Pages of 2: every user, once.
    let all = t
        .run(&[
            "users",
            "list",
            "--filter",
            &filter,
            "--page-size",
            "2",
            "--json",
        ])
        .json();
    let mut names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    names.sort();
    let expected: Vec<String> = (0..7).map(|i| format!("{prefix}{i}")).collect();
    assert_eq!(names, expected);

    let sorted = t
        .run(&[
            "users",
            "list",
            "--filter",
            &filter,
            "--sort-by",
            "userName",
            "--descending",
            "--json",
        ])
        .json();
    let order: Vec<&str> = sorted
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    let mut descending = expected.clone();
    descending.reverse();
    assert_eq!(order, descending);

    let limited = t
        .run(&[
            "users", "list", "--filter", &filter, "--limit", "3", "--json",
        ])
        .json();
    assert_eq!(limited.as_array().unwrap().len(), 3);

    let projected = t
        .run(&[
            "users",
            "list",
            "--filter",
            &filter,
            "--attributes",
            "userName",
            "--json",
        ])
        .json();
    assert!(
        projected
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u.get("active").is_none())
    );

    let table = t.run(&[
        "users",
        "list",
        "--filter",
        &format!("{filter} and active eq false"),
    ]);
    let lines: Vec<&str> = table.ok().lines().collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["ID", "USERNAME", "ACTIVE", "EMAILS"]);
    assert!(lines[1..].iter().all(|l| l.contains(" no ")), "{lines:?}");

    let none = t.run(&["users", "list", "--filter", "userName eq \"nobody-at-all\""]);
    assert_eq!(none.ok(), "");
    assert_eq!(none.stderr.trim(), "no users");
    assert_eq!(
        t.run(&[
            "users",
            "list",
            "--filter",
            "userName eq \"nobody-at-all\"",
            "--json"
        ])
        .json(),
        json!([])
    );
});
