//! Group membership under faults: a group assigned to an application
//! (which covers its members) goes through the fault-injecting proxy;
//! members join and leave in three phases, with faults armed, and after
//! each phase the downstream group holds exactly the remote ids of the
//! current members, exactly one such group exists, and users who left are
//! deactivated.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::engine_faults::{Phase, Rig, converge, downstream_users, rig, test_options};
use crate::fault_proxy::{Fault, Seen};
use crate::groups::{GROUP, PATCH_OP, USER};
use crate::harness::Ctx;

const LIMIT: Duration = Duration::from_secs(40);

/// The downstream groups named `name`, read directly (not through the
/// proxy, so `members` are always there).
async fn downstream_groups(rig: &Rig, name: &str) -> Vec<Value> {
    let all = rig
        .down
        .send(
            Method::GET,
            "/scim/v2/Groups?count=1000",
            &rig.down_token,
            None,
        )
        .await
        .expect(200)
        .body;
    all["Resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["displayName"] == json!(name))
        .cloned()
        .collect()
}

/// Asserts one downstream group `team` whose members are the downstream
/// accounts of `members` (userNames), and that each of `gone` is inactive.
async fn assert_team(rig: &Rig, members: &[&str], gone: &[&str], phase: &str) {
    let users = downstream_users(&rig.down, &rig.down_token).await;
    let remote = |name: &str| -> String {
        let found: Vec<&Value> = users
            .iter()
            .filter(|u| u["userName"] == json!(name))
            .collect();
        assert_eq!(found.len(), 1, "{phase}: account of {name}");
        found[0]["id"].as_str().expect("id").to_owned()
    };
    let groups = downstream_groups(rig, "team").await;
    assert_eq!(groups.len(), 1, "{phase}: exactly one group: {groups:?}");
    let mut held: Vec<String> = groups[0]["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["value"].as_str().map(str::to_owned))
        .collect();
    held.sort();
    let mut want: Vec<String> = members.iter().map(|m| remote(m)).collect();
    want.sort();
    assert_eq!(held, want, "{phase}: members of {members:?}");
    for name in gone {
        let u = users
            .iter()
            .find(|u| u["userName"] == json!(name))
            .expect("account kept");
        assert_eq!(u["active"], false, "{phase}: {name} left: {u}");
    }
}

async fn members_op(ctx: &Ctx, token: &str, group: &str, ops: Value) {
    ctx.send(
        Method::PATCH,
        &format!("/scim/v2/Groups/{group}"),
        token,
        Some(&json!({"schemas": [PATCH_OP], "Operations": ops})),
    )
    .await
    .expect(200);
}

/// Four users, a group of the first three assigned; then one leaves and
/// the fourth joins; then the one who left comes back and another leaves.
async fn membership_scenario(ctx: &Ctx, rig: &Rig, arm: impl AsyncFn(&Rig, Phase)) {
    let settle = || converge(ctx, rig.app, &rig.admin, &rig.worker, LIMIT);
    let mut ids = Vec::new();
    for name in ["gu1", "gu2", "gu3", "gu4"] {
        ids.push(
            ctx.create(
                "/scim/v2/Users",
                &rig.scim,
                json!({"schemas": [USER], "userName": name, "displayName": name}),
            )
            .await
            .id(),
        );
    }
    arm(rig, Phase::Create).await;
    let team = ctx
        .create(
            "/scim/v2/Groups",
            &rig.scim,
            json!({"schemas": [GROUP], "displayName": "team",
                   "members": [{"value": ids[0]}, {"value": ids[1]}, {"value": ids[2]}]}),
        )
        .await
        .id();
    ctx.create(
        "/api/v1/assignments",
        &rig.admin,
        json!({"applicationId": rig.app, "resourceId": team}),
    )
    .await;
    settle().await;
    assert_team(rig, &["gu1", "gu2", "gu3"], &[], "create").await;

    arm(rig, Phase::Change).await;
    members_op(
        ctx,
        &rig.scim,
        &team,
        json!([
            {"op": "remove", "path": format!("members[value eq \"{}\"]", ids[1])},
            {"op": "add", "path": "members", "value": [{"value": ids[3]}]}
        ]),
    )
    .await;
    settle().await;
    assert_team(rig, &["gu1", "gu3", "gu4"], &["gu2"], "change").await;

    arm(rig, Phase::Restore).await;
    members_op(
        ctx,
        &rig.scim,
        &team,
        json!([
            {"op": "add", "path": "members", "value": [{"value": ids[1]}]},
            {"op": "remove", "path": format!("members[value eq \"{}\"]", ids[0])}
        ]),
    )
    .await;
    settle().await;
    assert_team(rig, &["gu2", "gu3", "gu4"], &["gu1"], "restore").await;
    assert_eq!(rig.proxy.pending_faults(), 0, "every armed fault was hit");
}

/// The PATCHes sent to groups.
fn group_patches(seen: &[Seen]) -> Vec<Seen> {
    seen.iter()
        .filter(|s| {
            s.method == "PATCH" && crate::fault_proxy::scim_path(&s.target).starts_with("/Groups")
        })
        .cloned()
        .collect()
}

/// No PATCH removed `members` without a filter (which would empty the
/// whole group).
fn assert_no_wipe(seen: &[Seen]) {
    for p in group_patches(seen) {
        for op in p.body["Operations"].as_array().into_iter().flatten() {
            let is_remove = op["op"]
                .as_str()
                .is_some_and(|o| o.eq_ignore_ascii_case("remove"));
            let path = op["path"].as_str().unwrap_or("");
            assert!(
                !(is_remove && (path.is_empty() || path.eq_ignore_ascii_case("members"))),
                "a PATCH that wipes the group: {}",
                p.body
            );
        }
    }
}

backend_test!(group_membership_survives_server_errors, |ctx| async move {
    let rig = rig(&ctx, test_options()).await;
    membership_scenario(&ctx, &rig, async |rig: &Rig, phase| match phase {
        Phase::Create => {
            rig.proxy.fail_next(Some("POST"), Fault::status(500));
            rig.proxy
                .fail_next(Some("POST"), Fault::retry_after(429, "1"));
        }
        Phase::Change | Phase::Restore => {
            rig.proxy.fail_next(Some("PATCH"), Fault::status(503));
            rig.proxy.fail_next(Some("PATCH"), Fault::status(500));
        }
    })
    .await;
    assert_no_wipe(&rig.proxy.seen());
});

backend_test!(
    group_membership_survives_lost_answers_and_timeouts,
    |ctx| async move {
        let rig = rig(
            &ctx,
            scim_server::provision::EngineOptions {
                request_timeout: Duration::from_millis(800),
                ..test_options()
            },
        )
        .await;
        membership_scenario(&ctx, &rig, async |rig: &Rig, phase| match phase {
            Phase::Create => rig
                .proxy
                .fail_next(Some("POST"), Fault::LoseAnswer(Duration::from_secs(2))),
            Phase::Change => rig
                .proxy
                .fail_next(Some("PATCH"), Fault::LoseAnswer(Duration::from_secs(2))),
            Phase::Restore => rig
                .proxy
                .fail_next(Some("PATCH"), Fault::Hang(Duration::from_secs(2))),
        })
        .await;
        assert_no_wipe(&rig.proxy.seen());
    }
);

backend_test!(
    group_membership_at_a_target_that_answers_204_and_omits_members,
    |ctx| async move {
        let rig = rig(&ctx, test_options()).await;
        rig.proxy.set_terse_groups(true);
        membership_scenario(&ctx, &rig, async |_: &Rig, _| {}).await;
        let seen = rig.proxy.seen();
        assert_no_wipe(&seen);
        let patches = group_patches(&seen);
        assert!(!patches.is_empty());
        assert!(patches.iter().all(|p| p.status == Some(204)), "{patches:?}");
        // Membership travels as deltas in the RFC form.
        let ops: Vec<Value> = patches
            .iter()
            .flat_map(|p| p.body["Operations"].as_array().cloned().unwrap_or_default())
            .filter(|op| {
                op["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("members"))
            })
            .collect();
        assert!(
            ops.iter().any(|op| op["op"] == "remove"
                && op["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("members[value eq \""))),
            "{ops:?}"
        );
    }
);

backend_test!(
    group_membership_at_a_target_without_patch,
    |ctx| async move {
        let rig = rig(&ctx, test_options()).await;
        rig.proxy.set_no_patch(true);
        membership_scenario(&ctx, &rig, async |_: &Rig, _| {}).await;
        let seen = rig.proxy.seen();
        // Nothing was PATCHed: the membership went out as PUTs of the
        // whole group, and each one listed exactly the members wanted then
        // (checked by the phases above).
        assert!(group_patches(&seen).is_empty(), "{seen:?}");
        let puts: Vec<&Seen> = seen
            .iter()
            .filter(|s| {
                s.method == "PUT" && crate::fault_proxy::scim_path(&s.target).starts_with("/Groups")
            })
            .collect();
        assert!(puts.len() >= 2, "a PUT per membership change: {puts:?}");
        assert!(
            puts.iter().all(|p| p.body["members"].is_array()),
            "{puts:?}"
        );
    }
);
