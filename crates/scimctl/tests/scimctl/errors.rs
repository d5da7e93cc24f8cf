//! Exit codes and one-line messages: 1 for requests that fail, 2 for
//! usage errors.

use crate::harness::{Target, bare, ours, unique};

both!(duplicate_user_is_a_409, |t| {
    let name = unique("dup");
    let first = t
        .run(&["users", "create", "--user-name", &name, "--json"])
        .json();
    let second = t.run(&["users", "create", "--user-name", &name]);
    let line = second.fails(1);
    assert!(line.starts_with("error: POST http://127.0.0.1:"), "{line}");
    assert!(line.contains("/Users: 409"), "{line}");
    assert_eq!(second.stdout, "");
    t.run(&["users", "delete", first["id"].as_str().unwrap()])
        .ok();
});

both!(missing_user_is_a_404, |t| {
    let run = t.run(&[
        "users",
        "patch",
        "no-such-id",
        "--op",
        "replace",
        "--path",
        "active",
        "--value",
        "true",
    ]);
    let line = run.fails(1);
    assert!(line.contains("/Users/no-such-id: 404"), "{line}");
});

#[test]
fn bad_token_is_a_401() {
    let good = ours();
    let bad = Target {
        token: Some("not-the-token".into()),
        ..good.clone()
    };
    let run = bad.run(&["users", "get", "anything"]);
    let line = run.fails(1);
    assert!(line.contains("401"), "{line}");
    assert!(!line.contains("not-the-token"), "the token leaks: {line}");
    // Import fails at discovery, before reading on.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("u.jsonl");
    std::fs::write(&file, "{\"userName\":\"x\"}\n").unwrap();
    let run = bad.run(&["import", "users", file.to_str().unwrap()]);
    assert!(run.fails(1).contains("401"));
    let run = bad.run(&["users", "list", "--json"]);
    assert!(run.fails(1).contains("401"));
    assert_eq!(run.stdout, "", "a failed listing prints nothing");
    // No token at all.
    let none = Target {
        token: None,
        ..good
    };
    assert!(none.run(&["discover"]).fails(1).contains("401"));
}

#[test]
fn unreachable_server_fails_with_one_line() {
    let t = Target {
        name: "nothing",
        // Port 9 (discard) on loopback: nothing listens there.
        base: "http://127.0.0.1:9/scim/v2".into(),
        token: None,
        lists: false,
    };
    let run = t.run(&["users", "get", "1"]);
    let line = run.fails(1);
    assert!(
        line.contains("GET http://127.0.0.1:9/scim/v2/Users/1"),
        "{line}"
    );
}

#[test]
fn usage_errors_exit_with_2() {
    let run = |args: &[&str]| {
        let out = bare().args(args).output().unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stderr).trim_end().to_string(),
        )
    };
    assert_eq!(
        run(&["users", "get", "1"]),
        (
            2,
            "error: no service provider URL: pass --url or set SCIMCTL_URL".into()
        )
    );
    assert_eq!(
        run(&["--url", "not a url", "discover"]),
        (2, "error: base URL: relative URL without a base".into())
    );
    let url = ["--url", "http://127.0.0.1:9/v2"];
    let with_url = |args: &[&str]| {
        let mut all = url.to_vec();
        all.extend_from_slice(args);
        run(&all)
    };
    assert_eq!(with_url(&["users", "frobnicate"]).0, 2);
    assert_eq!(with_url(&["users", "create"]).0, 2);
    assert_eq!(
        with_url(&["--token", "a", "--basic", "b:c", "discover"]).0,
        2
    );
    assert_eq!(
        with_url(&["--basic", "nocolon", "discover"]),
        (
            2,
            "error: --basic takes USER:PASSWORD (with a colon)".into()
        )
    );
    assert_eq!(
        with_url(&["users", "patch", "1", "--op", "remove"]),
        (2, "error: --op number 1 (remove) needs a --path".into())
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    let (code, msg) = with_url(&["users", "create", "--file", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        msg.starts_with(&format!("error: {} is not JSON", bad.display())),
        "{msg}"
    );
    let (code, msg) = with_url(&["import", "users", "/no/such/file.csv"]);
    assert_eq!(code, 2);
    assert!(
        msg.starts_with("error: cannot read /no/such/file.csv"),
        "{msg}"
    );
    let header = dir.path().join("bad.csv");
    std::fs::write(&header, "userName,emails[value co \"x\"].value\na,b\n").unwrap();
    let (code, msg) = with_url(&["import", "users", header.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(msg.contains("only [type eq \"T\"] is supported"), "{msg}");
    // Help is not an error.
    assert_eq!(run(&["--help"]).0, 0);
}
