//! `import` (Bulk and concurrent POSTs, CSV and JSON lines, skipping
//! existing users) and `export` round trips.

use std::path::Path;

use serde_json::{Value, json};

use crate::harness::{Target, ours_read_only, unique};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn csv_of(prefix: &str, n: usize) -> String {
    let mut text = format!(
        "userName,name.givenName,name.familyName,email,active,externalId,{ENTERPRISE}:employeeNumber\n"
    );
    for i in 0..n {
        text.push_str(&format!(
            "{prefix}{i:03},Given{i},Family{i},{prefix}{i:03}@example.com,{},ext-{prefix}{i},{i}\n",
            i % 3 != 0
        ));
    }
    text
}

fn summary(run: &crate::harness::Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"))
}

fn delete_prefix(t: &Target, prefix: &str) {
    if t.lists {
        for u in t.users_with_prefix(prefix) {
            t.run(&["users", "delete", u["id"].as_str().unwrap()]).ok();
        }
    }
}

both!(import_500_from_csv, |t| {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("csv");
    let file = write(dir.path(), "people.csv", &csv_of(&prefix, 500));
    let run = t.run(&["import", "users", &file, "--json"]);
    assert_eq!(
        run.json(),
        json!({"total": 500, "created": 500, "skipped": 0, "failed": 0, "notSent": 0,
               "stopped": null, "failures": []}),
        "{}",
        t.name
    );
    if t.lists {
        let users = t.users_with_prefix(&prefix);
        assert_eq!(users.len(), 500);
        let u = users
            .iter()
            .find(|u| u["userName"] == format!("{prefix}007"))
            .expect("user 7");
        assert_eq!(u["name"]["givenName"], "Given7");
        assert_eq!(u["emails"][0]["value"], format!("{prefix}007@example.com"));
        assert_eq!(u["active"], true);
        assert_eq!(u["externalId"], format!("ext-{prefix}7"));
        assert_eq!(u[ENTERPRISE]["employeeNumber"], "7");
    }
    delete_prefix(t, &prefix);
});

both!(import_500_from_json_lines_with_posts, |t| {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("jsonl");
    let lines: Vec<String> = (0..500)
        .map(|i| {
            json!({"userName": format!("{prefix}{i:03}"), "displayName": format!("User {i}")})
                .to_string()
        })
        .collect();
    let file = write(dir.path(), "people.jsonl", &(lines.join("\n") + "\n"));
    let run = t.run(&["import", "users", &file, "--no-bulk", "--concurrency", "8"]);
    assert_eq!(
        run.ok().trim(),
        format!("{file}: 500 users created, 0 skipped (already there), 0 failed")
    );
    if t.lists {
        assert_eq!(t.users_with_prefix(&prefix).len(), 500);
    }
    delete_prefix(t, &prefix);
});

both!(import_skips_existing_and_reports_failures, |t| {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("skip");
    let first = write(dir.path(), "first.csv", &csv_of(&prefix, 3));
    t.run(&["import", "users", &first, "--json"]).ok();

    // The same three, two more, and a row that cannot be read.
    let mut text = csv_of(&prefix, 5);
    text.push_str(&format!("{prefix}bad,,,,maybe,,\n"));
    let second = write(dir.path(), "second.csv", &text);
    for bulk in [true, false] {
        let mut args = vec![
            "import",
            "users",
            second.as_str(),
            "--skip-existing",
            "--json",
        ];
        if !bulk {
            args.push("--no-bulk");
        }
        let run = t.run(&args);
        assert_eq!(run.code, 1, "{run:?}");
        let s = summary(&run);
        let created = if bulk { 2 } else { 0 };
        assert_eq!(s["created"], created, "{s}");
        assert_eq!(s["skipped"], 5 - created, "{s}");
        assert_eq!(
            s["failures"],
            json!([{"line": 7, "name": null, "error": "active: \"maybe\" is not true or false"}])
        );
        assert_eq!(run.stderr.trim(), "error: 1 of 6 records failed");
    }

    // Without --skip-existing, taken names are failures with the reason.
    let third = write(dir.path(), "third.csv", &csv_of(&prefix, 2));
    for flag in ["--no-bulk", "--concurrency=2"] {
        let run = t.run(&["import", "users", &third, flag]);
        assert_eq!(run.code, 1, "{run:?}");
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert_eq!(
            lines[0],
            format!("{third}: 0 users created, 0 skipped (already there), 2 failed:")
        );
        assert!(
            lines[1].starts_with(&format!("  line 2 ({prefix}000): ")),
            "{lines:?}"
        );
        assert!(lines[1].contains("409"), "{lines:?}");
        assert!(
            lines[2].starts_with(&format!("  line 3 ({prefix}001): ")),
            "{lines:?}"
        );
    }
    if t.lists {
        assert_eq!(t.users_with_prefix(&prefix).len(), 5);
    }
    delete_prefix(t, &prefix);
});

both!(export_round_trip, |t| {
    if !t.lists {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = unique("expa");
    let b = unique("expb");
    let file = write(dir.path(), "a.csv", &csv_of(&a, 20));
    t.run(&["import", "users", &file]).ok();

    let export = |prefix: &str, format: &str| {
        let filter = format!("userName sw \"{prefix}\"");
        let run = t.run(&["export", "users", "--filter", &filter, "--format", format]);
        run.ok().to_string()
    };
    // CSV: renamed and imported again, it exports the same but for ids.
    let csv_a = export(&a, "csv");
    assert_eq!(csv_a.lines().count(), 21, "{csv_a}");
    assert_eq!(
        csv_a.lines().next().unwrap(),
        "id,externalId,userName,name.givenName,name.familyName,displayName,email,active"
    );
    let file_b = write(dir.path(), "b.csv", &csv_a.replace(&a, &b));
    let imported = t.run(&["import", "users", &file_b, "--json"]).json();
    assert_eq!(imported["created"], 20);
    let without_ids = |text: &str| {
        let mut rows: Vec<String> = text
            .lines()
            .map(|l| l.split_once(',').unwrap().1.to_string())
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(
        without_ids(&export(&b, "csv").replace(&b, &a)),
        without_ids(&csv_a)
    );

    // JSON lines: every line a user; imported under a third name.
    let jsonl = export(&a, "jsonl");
    let users: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(users.len(), 20);
    assert!(
        users
            .iter()
            .all(|u| u["id"].is_string() && u[ENTERPRISE]["employeeNumber"].is_string())
    );
    let c = unique("expc");
    let run = t.run_with_input(
        &["import", "users", "-", "--format", "jsonl", "--json"],
        &jsonl.replace(&a, &c),
    );
    assert_eq!(run.json()["created"], 20);
    let again: Vec<Value> = t.users_with_prefix(&c);
    assert_eq!(again.len(), 20);
    assert!(
        again
            .iter()
            .all(|u| u[ENTERPRISE]["employeeNumber"].is_string())
    );
    for p in [&a, &b, &c] {
        delete_prefix(t, p);
    }
});

#[test]
fn import_stops_when_every_record_would_fail() {
    let t = ours_read_only();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "people.csv", &csv_of(&unique("ro"), 50));
    for (flags, max_failed) in [(&["--no-bulk", "--concurrency", "4"][..], 4), (&[][..], 50)] {
        let mut args = vec!["import", "users", file.as_str(), "--json"];
        args.extend_from_slice(flags);
        let run = t.run(&args);
        assert_eq!(run.code, 1, "{run:?}");
        let s = summary(&run);
        let failed = s["failed"].as_u64().unwrap();
        assert!((1..=max_failed).contains(&failed), "{s}");
        assert_eq!(s["created"], 0);
        assert_eq!(failed + s["notSent"].as_u64().unwrap(), 50, "{s}");
        let stopped = s["stopped"].as_str().unwrap();
        assert!(stopped.contains("403"), "{stopped}");
        let line = run.stderr.trim();
        assert!(
            line.starts_with(&format!(
                "error: import stopped after {failed} of 50 records failed: POST "
            )),
            "{line}"
        );
    }
}

both!(import_groups_with_members, |t| {
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let u = t
                .run(&["users", "create", "--user-name", &unique("gm"), "--json"])
                .json();
            u["id"].as_str().unwrap().to_string()
        })
        .collect();
    let prefix = unique("igroup");
    let text = format!(
        "displayName,externalId,members\n{prefix}a,ext-a,{} {}\n{prefix}b,,\n",
        ids[0], ids[1]
    );
    let file = write(dir.path(), "groups.csv", &text);
    let run = t.run(&["import", "groups", &file, "--json"]);
    assert_eq!(run.json()["created"], 2);
    if t.lists {
        let filter = format!("displayName sw \"{prefix}\"");
        let groups = t
            .run(&["groups", "list", "--filter", &filter, "--json"])
            .json();
        let groups = groups.as_array().unwrap();
        assert_eq!(groups.len(), 2);
        let a = groups
            .iter()
            .find(|g| g["displayName"] == format!("{prefix}a"))
            .unwrap();
        let mut members: Vec<&str> = a["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["value"].as_str().unwrap())
            .collect();
        members.sort();
        let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
        expected.sort();
        assert_eq!(members, expected);
        assert_eq!(a["externalId"], "ext-a");
        for g in groups {
            t.run(&["groups", "delete", g["id"].as_str().unwrap()]).ok();
        }
    }
    for id in &ids {
        t.run(&["users", "delete", id]).ok();
    }
});
