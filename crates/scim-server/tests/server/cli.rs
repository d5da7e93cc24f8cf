//! The `scim-server` binary: token commands, migrate, a first run, SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use scim_server::tokens::looks_like_secret;

use crate::harness::{Backend, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_scim-server");

/// The binary with a clean `SCIM_` environment.
fn scim_server() -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("SCIM_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn run(db: &str, args: &[&str]) -> Output {
    scim_server()
        .arg("--database-url")
        .arg(db)
        .args(args)
        .output()
        .expect("run scim-server")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

backend_test!(token_commands_round_trip, |ctx| async move {
    let db = ctx.db.url.clone();
    let out = run(
        &db,
        &[
            "token",
            "create",
            "--tenant",
            "acme",
            "--scope",
            "scim:read",
            "--name",
            "ci",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let token = stdout.trim();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(looks_like_secret(token), "{stdout}");
    let hint = text(&out.stderr);
    assert_eq!(hint.lines().count(), 1, "{hint}");
    assert!(hint.contains("shown only this once"), "{hint}");

    // The printed token authenticates against the served instance.
    let res = ctx.get("/scim/v2/ServiceProviderConfig", Some(token)).await;
    assert_eq!(res.status(), StatusCode::OK);

    // A second tenant's token, to check the list filter.
    let out = run(
        &db,
        &["token", "create", "--tenant", "other", "--scope", "write"],
    );
    assert!(out.status.success());
    let other = text(&out.stdout).trim().to_owned();

    let out = run(&db, &["token", "list"]);
    assert!(out.status.success());
    let listing = text(&out.stdout);
    assert!(
        !listing.contains(token) && !listing.contains(&other),
        "{listing}"
    );
    assert!(
        !listing.contains(&scim_server::tokens::hash_secret(token)),
        "{listing}"
    );
    assert!(!listing.contains("scim_"), "{listing}");
    let acme_line = listing.lines().find(|l| l.contains("acme")).unwrap();
    assert!(
        acme_line.contains("ci") && acme_line.contains("scim:read") && acme_line.contains("active")
    );
    assert!(
        listing
            .lines()
            .any(|l| l.contains("other") && l.contains("scim:write"))
    );
    let id = acme_line.split_whitespace().next().unwrap().to_owned();

    let out = run(&db, &["token", "list", "--tenant", "other"]);
    assert!(!text(&out.stdout).contains("acme"));

    let out = run(&db, &["token", "revoke", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Revoked by another process: the server trusts its cached
    // verification for at most VERIFIED_TTL, then refuses the token.
    let revoked_at = std::time::Instant::now();
    let limit = scim_server::tokens::VERIFIED_TTL + std::time::Duration::from_secs(2);
    loop {
        let status = ctx
            .get("/scim/v2/ServiceProviderConfig", Some(token))
            .await
            .status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            revoked_at.elapsed() < limit,
            "the revoked token still works after {limit:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let out = run(&db, &["token", "list", "--tenant", "acme"]);
    assert!(text(&out.stdout).contains("revoked"));
    // The other tenant's token is untouched.
    assert_eq!(
        ctx.get("/scim/v2/ServiceProviderConfig", Some(&other))
            .await
            .status(),
        StatusCode::OK
    );

    let out = run(&db, &["token", "revoke", "999999"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no token with id 999999"));
});

backend_test!(token_create_binds_a_user_for_me, |ctx| async move {
    use scim_server::tokens::Scope;
    let db = ctx.db.url.clone();
    let admin = ctx.token("acme", &[Scope::Write]);
    let alice = ctx
        .create(
            "/scim/v2/Users",
            &admin,
            serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                               "userName": "Alice"}),
        )
        .await
        .id();
    for user in ["alice", alice.as_str()] {
        let out = run(
            &db,
            &[
                "token",
                "create",
                "--tenant",
                "acme",
                "--scope",
                "scim:read",
                "--user",
                user,
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains(&format!("bound to user {alice}")));
        let token = text(&out.stdout).trim().to_owned();
        let me = ctx
            .send(reqwest::Method::GET, "/scim/v2/Me", &token, None)
            .await;
        assert_eq!(me.expect(200).id(), alice);
    }
    let listing = text(&run(&db, &["token", "list", "--tenant", "acme"]).stdout);
    assert_eq!(
        listing.lines().filter(|l| l.contains(&alice)).count(),
        2,
        "{listing}"
    );
    let out = run(
        &db,
        &[
            "token",
            "create",
            "--tenant",
            "acme",
            "--scope",
            "scim:read",
            "--user",
            "nobody",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("tenant 'acme' has no User with id or userName 'nobody'"),
        "{}",
        text(&out.stderr)
    );
});

#[test]
fn token_create_on_a_fresh_database_says_one_line() {
    let db = TestDb::new(Backend::Sqlite).unwrap();
    let out = run(
        &db.url,
        &[
            "token",
            "create",
            "--tenant",
            "default",
            "--scope",
            "scim:write",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(looks_like_secret(text(&out.stdout).trim()));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("tenant 'default'") && stderr.contains("scim:write"),
        "{stderr}"
    );
    assert!(std::path::Path::new(&db.url).exists());
}

#[test]
fn token_create_needs_a_known_scope() {
    let db = TestDb::new(Backend::Sqlite).unwrap();
    let out = run(
        &db.url,
        &["token", "create", "--tenant", "a", "--scope", "superuser"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("unknown scope"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn token_create_with_the_admin_scope() {
    let db = TestDb::new(Backend::Sqlite).unwrap();
    let out = run(
        &db.url,
        &["token", "create", "--tenant", "a", "--scope", "admin"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(looks_like_secret(text(&out.stdout).trim()));
    assert!(text(&out.stderr).contains("admin"), "{}", text(&out.stderr));
}

#[test]
fn migrate_creates_and_is_idempotent() {
    let db = TestDb::new(Backend::Sqlite).unwrap();
    let path = db.dir().join("nested/dir/scim.db");
    let url = path.to_str().unwrap();
    let out = run(url, &["migrate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Every migration of the SQLite folder, whatever their number.
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count();
    assert!(
        text(&out.stderr).contains(&format!("applied {migrations} migration(s)")),
        "{}",
        text(&out.stderr)
    );
    assert!(path.exists());
    let out = run(url, &["migrate"]);
    assert!(
        text(&out.stderr).contains("up to date"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_database_urls_fail_with_the_cause() {
    let out = scim_server()
        .args([
            "migrate",
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("127.0.0.1") && !err.contains("Invalid connection url"),
        "{err}"
    );
    let out = scim_server()
        .args(["migrate", "--database-url", "mysql://db/x"])
        .output()
        .unwrap();
    assert!(text(&out.stderr).contains("unsupported database URL scheme"));
}

/// Reads a child's stderr lines into a channel.
fn stderr_lines(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle`; returns it and everything seen.
fn wait_for(rx: &mpsc::Receiver<String>, seen: &mut Vec<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no line with {needle:?} in:\n{}", seen.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_serves_logs_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = scim_server()
        .current_dir(dir.path())
        .env("SCIM_BIND", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stderr_lines(&mut child);
    let mut seen = Vec::new();
    let hint = wait_for(&rx, &mut seen, "no API token exists yet");
    assert!(
        hint.ends_with("scim-server token create --tenant default --scope scim:write"),
        "{hint}"
    );
    let listening = wait_for(&rx, &mut seen, "listening on http://");
    let base = listening
        .split("listening on ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    // The default database is a SQLite file in the working directory.
    assert!(dir.path().join("scim.db").exists());

    let res = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let access = wait_for(&rx, &mut seen, "GET /healthz 200");
    assert!(access.contains("scim_server::access"), "{access}");

    // The token command of the hint works against this database.
    let out = scim_server()
        .current_dir(dir.path())
        .args([
            "token",
            "create",
            "--tenant",
            "default",
            "--scope",
            "scim:write",
        ])
        .output()
        .unwrap();
    let token = text(&out.stdout).trim().to_owned();
    let res = reqwest::Client::new()
        .get(format!("{base}/scim/v2/Schemas"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    wait_for(&rx, &mut seen, "graceful shutdown");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
