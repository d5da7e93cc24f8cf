//! The provisioning engine under faults: a fault-injecting proxy
//! ([`crate::fault_proxy`]) sits between the engine and a second instance
//! of our server. Each test runs the same three phases (create; change,
//! deactivate, unassign; change back and reassign) with faults armed, and
//! after each phase the downstream must hold exactly the desired state: no
//! missing account, no duplicate, no lost change.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use scim_server::provision::{Engine, EngineOptions};
use scim_server::secrets::SecretKey;
use scim_server::store::Storage;
use scim_server::tokens::Scope;
use serde_json::{Value, json};

use crate::fault_proxy::{Fault, FaultProxy, Seen};
use crate::groups::{PATCH_OP, USER};
use crate::harness::{Ctx, TEST_SECRET_KEY};

const APPS: &str = "/api/v1/applications";
const ASSIGNMENTS: &str = "/api/v1/assignments";

/// Upstream, proxy, downstream and a worker.
pub struct Rig {
    pub proxy: Arc<FaultProxy>,
    pub down: Ctx,
    pub down_token: String,
    pub admin: String,
    pub scim: String,
    pub app: i64,
    pub worker: Engine,
}

/// Engine options for tests: quick backoff and quarantine, patient enough
/// that a target down for a few seconds does not dead-letter a pair.
pub fn test_options() -> EngineOptions {
    EngineOptions {
        owner: "faults".into(),
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(400),
        request_timeout: Duration::from_secs(5),
        max_attempts: 50,
        quarantine_after: 5,
        quarantine_base: Duration::from_millis(200),
        ..crate::harness::engine_options()
    }
}

/// A downstream server of the same backend behind a proxy, and an
/// application pointing at the proxy.
pub async fn rig(ctx: &Ctx, options: EngineOptions) -> Rig {
    let down = Ctx::start(ctx.backend()).await.expect("downstream");
    let proxy = Arc::new(FaultProxy::start(&down.base).await);
    let down_token = down.token("downstream", &[Scope::Write]);
    let admin = ctx.token("acme", &[Scope::Admin]);
    let scim = ctx.token("acme", &[Scope::Write]);
    let app = ctx
        .create(
            APPS,
            &admin,
            json!({
                "name": "downstream",
                "baseUrl": proxy.scim_base(),
                "credentials": {"type": "bearer", "token": down_token},
                "deprovision": {"action": "deactivate"},
            }),
        )
        .await
        .body["id"]
        .as_i64()
        .expect("application id");
    let storage: Arc<dyn Storage> = Arc::new(ctx.store.clone());
    let worker = Engine::new(
        storage,
        Some(SecretKey::from_base64(TEST_SECRET_KEY).expect("key")),
        options,
    );
    Rig {
        proxy,
        down,
        down_token,
        admin,
        scim,
        app,
        worker,
    }
}

/// Whether every pair of the application is settled (provisioned or
/// deprovisioned, none due), and the status document.
pub async fn settled(ctx: &Ctx, app: i64, admin: &str) -> (bool, Value) {
    let st = ctx
        .send(
            Method::GET,
            &format!("{APPS}/{app}/provisioning"),
            admin,
            None,
        )
        .await
        .expect(200)
        .body;
    let done = st["due"] == json!(0)
        && st["pairs"].as_array().is_some_and(|pairs| {
            pairs.iter().all(|p| {
                matches!(p["status"].as_str(), Some("provisioned" | "deprovisioned"))
                    && p["due"] == json!(false)
            })
        });
    (done, st)
}

/// Runs the worker until every pair of the application is settled, at
/// most `limit`.
pub async fn converge(ctx: &Ctx, app: i64, admin: &str, worker: &Engine, limit: Duration) {
    let started = Instant::now();
    let mut last = Value::Null;
    while started.elapsed() < limit {
        let r = worker.run_once().await.expect("run");
        if r.claimed == 0 {
            let (done, st) = settled(ctx, app, admin).await;
            if done {
                return;
            }
            last = st;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("not settled after {limit:?}: {last}");
}

/// Waits (at most `limit`) until workers elsewhere settle every pair.
pub async fn converge_by_status(ctx: &Ctx, app: i64, admin: &str, limit: Duration) {
    let started = Instant::now();
    let mut last = Value::Null;
    while started.elapsed() < limit {
        let (done, st) = settled(ctx, app, admin).await;
        if done {
            return;
        }
        last = st;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not settled after {limit:?}: {last}");
}

/// What one downstream account should be.
#[derive(Debug, Clone)]
pub struct Want {
    pub user_name: String,
    pub source_id: String,
    pub display: String,
    pub active: bool,
}

/// Every user the downstream holds (one page; tests hold few).
pub async fn downstream_users(down: &Ctx, token: &str) -> Vec<Value> {
    let list = down
        .send(Method::GET, "/scim/v2/Users?count=1000", token, None)
        .await
        .expect(200)
        .body;
    list["Resources"].as_array().cloned().unwrap_or_default()
}

/// Asserts the downstream holds exactly `want`: one account per userName
/// and per externalId, none other, with the wanted values.
pub async fn assert_downstream(down: &Ctx, token: &str, want: &[Want], phase: &str) {
    let users = downstream_users(down, token).await;
    let names: Vec<&str> = users
        .iter()
        .filter_map(|u| u["userName"].as_str())
        .collect();
    assert_eq!(
        users.len(),
        want.len(),
        "{phase}: downstream holds {names:?}"
    );
    for w in want {
        let by_name: Vec<&Value> = users
            .iter()
            .filter(|u| u["userName"] == json!(w.user_name))
            .collect();
        let by_external = users
            .iter()
            .filter(|u| u["externalId"] == json!(w.source_id))
            .count();
        assert_eq!(
            by_name.len(),
            1,
            "{phase}: {} missing or duplicated",
            w.user_name
        );
        assert_eq!(by_external, 1, "{phase}: externalId of {}", w.user_name);
        let u = by_name[0];
        assert_eq!(u["displayName"], json!(w.display), "{phase}: {u}");
        assert_eq!(u["active"], json!(w.active), "{phase}: {u}");
    }
}

/// The phases of [`scenario`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Three users created and assigned.
    Create,
    /// One renamed, one deactivated upstream, one unassigned.
    Change,
    /// Renamed again, reactivated, reassigned.
    Restore,
}

async fn patch_user(ctx: &Ctx, token: &str, id: &str, ops: Value) {
    ctx.send(
        Method::PATCH,
        &format!("/scim/v2/Users/{id}"),
        token,
        Some(&json!({"schemas": [PATCH_OP], "Operations": ops})),
    )
    .await
    .expect(200);
}

async fn assign(ctx: &Ctx, rig: &Rig, id: &str) -> i64 {
    ctx.create(
        ASSIGNMENTS,
        &rig.admin,
        json!({"applicationId": rig.app, "resourceId": id}),
    )
    .await
    .body["id"]
        .as_i64()
        .expect("assignment id")
}

/// The three phases, calling `arm` before each one's writes, converging
/// within `limit` and checking the downstream after each.
pub async fn scenario(
    ctx: &Ctx,
    rig: &Rig,
    limit: Duration,
    arm: impl AsyncFn(&Rig, Phase),
) -> [String; 3] {
    let converge = || converge(ctx, rig.app, &rig.admin, &rig.worker, limit);
    let want = |name: &str, id: &str, display: &str, active: bool| Want {
        user_name: name.into(),
        source_id: id.into(),
        display: display.into(),
        active,
    };

    arm(rig, Phase::Create).await;
    let mut ids = Vec::new();
    let mut assignments = Vec::new();
    for (name, display) in [("ann", "Ann 0"), ("ben", "Ben 0"), ("cat", "Cat 0")] {
        let id = ctx
            .create(
                "/scim/v2/Users",
                &rig.scim,
                json!({"schemas": [USER], "userName": name, "displayName": display,
                       "active": true}),
            )
            .await
            .id();
        assignments.push(assign(ctx, rig, &id).await);
        ids.push(id);
    }
    converge().await;
    let (a, b, c) = (&ids[0], &ids[1], &ids[2]);
    assert_downstream(
        &rig.down,
        &rig.down_token,
        &[
            want("ann", a, "Ann 0", true),
            want("ben", b, "Ben 0", true),
            want("cat", c, "Cat 0", true),
        ],
        "create",
    )
    .await;

    arm(rig, Phase::Change).await;
    patch_user(
        ctx,
        &rig.scim,
        a,
        json!([{"op": "replace", "path": "displayName", "value": "Ann 1"}]),
    )
    .await;
    patch_user(
        ctx,
        &rig.scim,
        b,
        json!([{"op": "replace", "path": "active", "value": false}]),
    )
    .await;
    ctx.send(
        Method::DELETE,
        &format!("{ASSIGNMENTS}/{}", assignments[2]),
        &rig.admin,
        None,
    )
    .await
    .expect(204);
    converge().await;
    assert_downstream(
        &rig.down,
        &rig.down_token,
        &[
            want("ann", a, "Ann 1", true),
            want("ben", b, "Ben 0", false),
            want("cat", c, "Cat 0", false),
        ],
        "change",
    )
    .await;

    arm(rig, Phase::Restore).await;
    patch_user(
        ctx,
        &rig.scim,
        a,
        json!([{"op": "replace", "path": "displayName", "value": "Ann 2"}]),
    )
    .await;
    patch_user(
        ctx,
        &rig.scim,
        b,
        json!([{"op": "replace", "path": "active", "value": true}]),
    )
    .await;
    assign(ctx, rig, c).await;
    converge().await;
    assert_downstream(
        &rig.down,
        &rig.down_token,
        &[
            want("ann", a, "Ann 2", true),
            want("ben", b, "Ben 0", true),
            want("cat", c, "Cat 0", true),
        ],
        "restore",
    )
    .await;
    assert_eq!(rig.proxy.pending_faults(), 0, "every armed fault was hit");
    [a.clone(), b.clone(), c.clone()]
}

/// The requests to `/Users...` with this method whose body or target
/// names `needle`.
fn user_requests(seen: &[Seen], method: &str, needle: &str) -> Vec<Seen> {
    seen.iter()
        .filter(|s| {
            s.method == method
                && crate::fault_proxy::scim_path(&s.target).starts_with("/Users")
                && (s.target.contains(needle) || s.body.to_string().contains(needle))
        })
        .cloned()
        .collect()
}

/// The gap between the first request answered `status` and the request
/// after it, among `requests`.
fn gap_after(requests: &[Seen], status: u16) -> Duration {
    let i = requests
        .iter()
        .position(|s| s.status == Some(status))
        .unwrap_or_else(|| panic!("no request answered {status}: {requests:?}"));
    let next = requests
        .get(i + 1)
        .unwrap_or_else(|| panic!("no retry after the {status}"));
    next.at.duration_since(requests[i].at)
}

/// The PATCH operations sent for the user whose remote id is `remote`.
fn patch_bodies(seen: &[Seen], remote: &str) -> Vec<Value> {
    user_requests(seen, "PATCH", remote)
        .into_iter()
        .map(|s| s.body["Operations"].clone())
        .collect()
}

async fn remote_id_of(rig: &Rig, user_name: &str) -> String {
    downstream_users(&rig.down, &rig.down_token)
        .await
        .into_iter()
        .find(|u| u["userName"] == json!(user_name))
        .and_then(|u| u["id"].as_str().map(str::to_owned))
        .expect("downstream account")
}

const LIMIT: Duration = Duration::from_secs(30);

backend_test!(retry_after_in_seconds_is_honoured, |ctx| async move {
    let rig = rig(&ctx, test_options()).await;
    scenario(&ctx, &rig, LIMIT, async |rig: &Rig, phase| match phase {
        Phase::Create => rig
            .proxy
            .fail_next(Some("POST"), Fault::retry_after(429, "2")),
        Phase::Change => rig
            .proxy
            .fail_next(Some("PATCH"), Fault::retry_after(429, "1")),
        Phase::Restore => {}
    })
    .await;
    let seen = rig.proxy.seen();
    // The create refused with 429 was sent again only after 2 s (the
    // engine's own backoff alone is at most 0.5 s).
    let posts: Vec<Seen> = seen
        .iter()
        .filter(|s| s.method == "POST")
        .cloned()
        .collect();
    let refused = posts
        .iter()
        .find(|s| s.status == Some(429))
        .expect("a refused create");
    let user_name = refused.body["userName"].as_str().expect("userName");
    let gap = gap_after(&user_requests(&seen, "POST", user_name), 429);
    assert!(gap >= Duration::from_millis(1950), "retried after {gap:?}");
    let patches: Vec<Seen> = seen
        .iter()
        .filter(|s| s.method == "PATCH")
        .cloned()
        .collect();
    let refused = patches
        .iter()
        .find(|s| s.status == Some(429))
        .expect("a refused PATCH");
    let gap = gap_after(&user_requests(&seen, "PATCH", &refused.target), 429);
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
});

backend_test!(retry_after_as_an_http_date_is_honoured, |ctx| async move {
    let rig = rig(&ctx, test_options()).await;
    scenario(&ctx, &rig, LIMIT, async |rig: &Rig, phase| {
        if phase == Phase::Create {
            // Three seconds after the answer, in whole seconds: at least two.
            rig.proxy
                .fail_next(Some("POST"), Fault::RetryAt(Duration::from_secs(3)));
        }
    })
    .await;
    let seen = rig.proxy.seen();
    let refused = seen
        .iter()
        .find(|s| s.status == Some(429))
        .expect("a refused create");
    let user_name = refused.body["userName"].as_str().expect("userName");
    let gap = gap_after(&user_requests(&seen, "POST", user_name), 429);
    assert!(gap >= Duration::from_millis(1950), "retried after {gap:?}");
});

backend_test!(
    server_errors_are_retried_and_changes_stay_minimal,
    |ctx| async move {
        let rig = rig(&ctx, test_options()).await;
        scenario(&ctx, &rig, LIMIT, async |rig: &Rig, phase| match phase {
            Phase::Create => {
                rig.proxy.fail_next(Some("POST"), Fault::status(500));
                rig.proxy.fail_next(Some("POST"), Fault::status(503));
            }
            Phase::Change => {
                rig.proxy.fail_next(Some("PATCH"), Fault::status(500));
                rig.proxy.fail_next(Some("PATCH"), Fault::status(502));
            }
            Phase::Restore => {
                for _ in 0..3 {
                    rig.proxy.fail_next(None, Fault::status(500));
                }
            }
        })
        .await;
        let seen = rig.proxy.seen();
        let ann = remote_id_of(&rig, "ann").await;
        // Every PATCH for ann carried only the changed attribute.
        let sent: Vec<Value> = patch_bodies(&seen, &ann);
        assert!(!sent.is_empty());
        for ops in &sent {
            let ops = ops.as_array().expect("operations");
            assert_eq!(ops.len(), 1, "{ops:?}");
            assert_eq!(ops[0]["path"], "displayName", "{ops:?}");
        }
        assert!(
            seen.iter().all(|s| s.method != "PUT"),
            "PATCH is supported: no PUT"
        );
    }
);

backend_test!(
    timeouts_and_lost_answers_make_no_duplicate,
    |ctx| async move {
        let rig = rig(
            &ctx,
            EngineOptions {
                request_timeout: Duration::from_millis(800),
                ..test_options()
            },
        )
        .await;
        scenario(&ctx, &rig, LIMIT, async |rig: &Rig, phase| match phase {
            // The downstream creates the account, the answer never comes:
            // the retry meets 409 and adopts the account.
            Phase::Create => rig
                .proxy
                .fail_next(Some("POST"), Fault::LoseAnswer(Duration::from_secs(2))),
            // The PATCH hangs past the client's timeout.
            Phase::Change => rig
                .proxy
                .fail_next(Some("PATCH"), Fault::Hang(Duration::from_secs(2))),
            Phase::Restore => rig
                .proxy
                .fail_next(Some("PATCH"), Fault::LoseAnswer(Duration::from_secs(2))),
        })
        .await;
        let seen = rig.proxy.seen();
        assert!(
            seen.iter()
                .any(|s| s.method == "POST" && s.status == Some(409)),
            "the lost create was adopted after a 409"
        );
    }
);

backend_test!(a_target_down_for_a_while_comes_back, |ctx| async move {
    let rig = rig(&ctx, test_options()).await;
    scenario(&ctx, &rig, LIMIT, async |rig: &Rig, phase| {
        if phase != Phase::Restore {
            rig.proxy.down().await;
            let proxy = rig.proxy.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                proxy.up().await;
            });
        }
    })
    .await;
    let st = ctx
        .send(
            Method::GET,
            &format!("{APPS}/{}", rig.app),
            &rig.admin,
            None,
        )
        .await
        .expect(200)
        .body;
    assert!(
        st["quarantine"].is_null() || st["quarantine"]["consecutiveFailures"] == json!(0),
        "back to normal: {st}"
    );
});

backend_test!(a_target_without_patch_gets_put, |ctx| async move {
    let rig = rig(&ctx, test_options()).await;
    rig.proxy.set_no_patch(true);
    scenario(&ctx, &rig, LIMIT, async |_: &Rig, _| {}).await;
    let seen = rig.proxy.seen();
    assert_eq!(
        seen.iter()
            .filter(|s| s.method == "PATCH")
            .map(|s| s.target.clone())
            .collect::<Vec<_>>(),
        Vec::<String>::new(),
        "no PATCH to a target that announces none"
    );
    let puts: Vec<&Seen> = seen.iter().filter(|s| s.method == "PUT").collect();
    // Rename, deactivate upstream, unassign; then rename, reactivate, reassign.
    assert!(puts.len() >= 6, "{puts:?}");
    for p in puts {
        assert!(
            p.body["userName"].is_string(),
            "a full document: {}",
            p.body
        );
    }
});

backend_test!(a_target_answering_204_to_patch, |ctx| async move {
    let rig = rig(&ctx, test_options()).await;
    rig.proxy.set_terse_groups(true);
    scenario(&ctx, &rig, LIMIT, async |_: &Rig, _| {}).await;
    let seen = rig.proxy.seen();
    assert!(
        seen.iter()
            .any(|s| s.method == "PATCH" && s.status == Some(204)),
        "PATCHes were answered 204"
    );
    let ann = remote_id_of(&rig, "ann").await;
    assert_eq!(
        patch_bodies(&seen, &ann),
        vec![
            json!([{"op": "replace", "path": "displayName", "value": "Ann 1"}]),
            json!([{"op": "replace", "path": "displayName", "value": "Ann 2"}]),
        ]
    );
});

backend_test!(
    a_create_whose_answer_was_lost_then_unassigned_is_deactivated,
    |ctx| async move {
        let rig = rig(
            &ctx,
            EngineOptions {
                request_timeout: Duration::from_millis(800),
                ..test_options()
            },
        )
        .await;
        let id = ctx
            .create(
                "/scim/v2/Users",
                &rig.scim,
                json!({"schemas": [USER], "userName": "lost", "displayName": "Lost"}),
            )
            .await
            .id();
        let assignment = assign(&ctx, &rig, &id).await;
        // The account is created downstream; the engine never hears of it.
        rig.proxy
            .fail_next(Some("POST"), Fault::LoseAnswer(Duration::from_secs(2)));
        assert_eq!(rig.worker.run_once().await.unwrap().failed, 1);
        ctx.send(
            Method::DELETE,
            &format!("{ASSIGNMENTS}/{assignment}"),
            &rig.admin,
            None,
        )
        .await
        .expect(204);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        converge(&ctx, rig.app, &rig.admin, &rig.worker, LIMIT).await;
        assert_downstream(
            &rig.down,
            &rig.down_token,
            &[Want {
                user_name: "lost".into(),
                source_id: id,
                display: "Lost".into(),
                active: false,
            }],
            "unassigned",
        )
        .await;
    }
);
