//! Group push end to end: a group assigned to an application appears
//! downstream with the remote ids of its provisioned members; membership
//! changes travel as RFC deltas; an existing group is adopted, never
//! duplicated; unassigning deletes it (or leaves it, per policy).

use reqwest::Method;
use serde_json::{Value, json};

use crate::groups::{GROUP, PATCH_OP, group, user};
use crate::provisioning::{APPS, ASSIGNMENTS, Setup, assign, engine, remote_id, setup};

async fn downstream_group(s: &Setup, remote: &str) -> Option<Value> {
    let res = s
        .down
        .send(
            Method::GET,
            &format!("/scim/v2/Groups/{remote}"),
            &s.down_token,
            None,
        )
        .await;
    (res.status.as_u16() == 200).then_some(res.body)
}

fn member_values(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["value"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

async fn downstream_groups_named(s: &Setup, name: &str) -> usize {
    let all = s
        .down
        .send(
            Method::GET,
            "/scim/v2/Groups?count=1000",
            &s.down_token,
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
        .count()
}

async fn group_log(ctx: &crate::harness::Ctx, s: &Setup, group: &str) -> Value {
    ctx.send(
        Method::GET,
        &format!(
            "/api/v1/provisioning/log?application={}&user={group}",
            s.app
        ),
        &s.admin,
        None,
    )
    .await
    .expect(200)
    .body
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

backend_test!(
    assigned_group_is_pushed_with_member_deltas,
    |ctx| async move {
        let s = setup(&ctx, json!({"action": "deactivate"})).await;
        let worker = engine(&ctx, "w1");
        let alice = user(&ctx, &s.scim, "alice", Some("Alice")).await;
        let bob = user(&ctx, &s.scim, "bob", Some("Bob")).await;
        let carol = user(&ctx, &s.scim, "carol", Some("Carol")).await;
        let eng = group(&ctx, &s.scim, "Engineering", &[&alice, &bob]).await;
        let assignment = assign(&ctx, &s, &eng).await;
        // Users first, then the group once their remote ids are known
        // (their provisioning marks the group due again).
        let report = worker.drain(10).await.unwrap();
        assert_eq!(report.failed, 0, "{report:?}");
        let (ra, rb) = (
            remote_id(&ctx, &s, &alice).await.expect("alice pushed"),
            remote_id(&ctx, &s, &bob).await.expect("bob pushed"),
        );
        let rg = remote_id(&ctx, &s, &eng).await.expect("group pushed");
        let down = downstream_group(&s, &rg).await.expect("downstream group");
        assert_eq!(down["displayName"], "Engineering");
        assert_eq!(down["externalId"], json!(eng));
        assert_eq!(member_values(&down), sorted(vec![ra.clone(), rb.clone()]));
        // Settled: nothing more to send.
        assert_eq!(worker.drain(5).await.unwrap().sent, 0);

        // Bob leaves, Carol joins: one removal by filter, one add.
        ctx.send(
            Method::PATCH,
            &format!("/scim/v2/Groups/{eng}"),
            &s.scim,
            Some(&json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "remove", "path": format!("members[value eq \"{bob}\"]")},
                {"op": "add", "path": "members", "value": [{"value": carol}]}
            ]})),
        )
        .await
        .expect(200);
        let report = worker.drain(10).await.unwrap();
        assert_eq!(report.failed, 0, "{report:?}");
        let rc = remote_id(&ctx, &s, &carol).await.expect("carol pushed");
        let down = downstream_group(&s, &rg).await.unwrap();
        assert_eq!(member_values(&down), sorted(vec![ra.clone(), rc.clone()]));
        // Bob is no longer covered: deactivated downstream.
        let bob_down = s
            .down
            .send(
                Method::GET,
                &format!("/scim/v2/Users/{rb}"),
                &s.down_token,
                None,
            )
            .await
            .expect(200)
            .body;
        assert_eq!(bob_down["active"], false);
        // The group's exchanges: RFC deltas only, never a whole-group removal.
        let log = group_log(&ctx, &s, &eng).await;
        let ops: Vec<Value> = log["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["method"] == "PATCH")
            .flat_map(|e| {
                e["request"]["Operations"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        assert!(
            ops.contains(&json!({"op": "remove", "path": format!("members[value eq \"{rb}\"]")})),
            "{log}"
        );
        assert!(
            ops.iter().any(|op| op["op"] == "add"
                && op["path"] == "members"
                && op["value"] == json!([{"value": rc}])),
            "{log}"
        );
        assert!(
            !ops.iter()
                .any(|op| op["op"] == "remove" && op["path"] == "members"),
            "{log}"
        );
        assert!(
            log["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["resourceType"] == "Group")
        );

        // A rename is one replace of displayName.
        ctx.send(
            Method::PATCH,
            &format!("/scim/v2/Groups/{eng}"),
            &s.scim,
            Some(&json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "replace", "path": "displayName", "value": "Engineering EU"}
            ]})),
        )
        .await
        .expect(200);
        worker.drain(10).await.unwrap();
        let latest = &group_log(&ctx, &s, &eng).await["items"][0];
        assert_eq!(latest["method"], "PATCH");
        assert_eq!(
            latest["request"]["Operations"],
            json!([{"op": "replace", "path": "displayName", "value": "Engineering EU"}])
        );
        assert_eq!(
            downstream_group(&s, &rg).await.unwrap()["displayName"],
            "Engineering EU"
        );

        // Reconciliation sees the group: in line, then drifted when renamed
        // at the target, and repaired.
        let reconcile = |body: Value| {
            let (ctx, s) = (&ctx, &s);
            async move {
                ctx.send(
                    Method::POST,
                    &format!("{APPS}/{}/reconcile", s.app),
                    &s.admin,
                    Some(&body),
                )
                .await
                .expect(200)
                .body
            }
        };
        let clean = reconcile(json!({})).await;
        assert_eq!(clean["counts"]["remoteGroups"], 1, "{clean}");
        assert_eq!(clean["counts"]["drifted"], 0, "{clean}");
        s.down
            .send(
                Method::PATCH,
                &format!("/scim/v2/Groups/{rg}"),
                &s.down_token,
                Some(&json!({"schemas": [PATCH_OP], "Operations": [
                    {"op": "replace", "path": "displayName", "value": "Renamed there"}
                ]})),
            )
            .await
            .expect(200);
        let drifted = reconcile(json!({"repair": true})).await;
        assert_eq!(drifted["counts"]["drifted"], 1, "{drifted}");
        assert_eq!(drifted["counts"]["repaired"], 1, "{drifted}");
        worker.drain(10).await.unwrap();
        let down = downstream_group(&s, &rg).await.unwrap();
        assert_eq!(down["displayName"], "Engineering EU");
        assert_eq!(member_values(&down), sorted(vec![ra.clone(), rc.clone()]));

        // Unassigned: deleted downstream (the default group policy).
        ctx.send(
            Method::DELETE,
            &format!("{ASSIGNMENTS}/{assignment}"),
            &s.admin,
            None,
        )
        .await
        .expect(204);
        worker.drain(10).await.unwrap();
        assert!(downstream_group(&s, &rg).await.is_none());
    }
);

backend_test!(
    existing_group_is_adopted_and_leave_policy_keeps_it,
    |ctx| async move {
        let s = setup(&ctx, json!({"action": "deactivate"})).await;
        ctx.send(
            Method::PATCH,
            &format!("{APPS}/{}", s.app),
            &s.admin,
            Some(&json!({"groupDeprovision": "leave"})),
        )
        .await
        .expect(200);
        let worker = engine(&ctx, "w1");
        // The target already has a "Sales" group, made by hand.
        let existing = s
            .down
            .create(
                "/scim/v2/Groups",
                &s.down_token,
                json!({"schemas": [GROUP], "displayName": "Sales"}),
            )
            .await
            .id();
        let dave = user(&ctx, &s.scim, "dave", None).await;
        let sales = group(&ctx, &s.scim, "Sales", &[&dave]).await;
        let assignment = assign(&ctx, &s, &sales).await;
        let report = worker.drain(10).await.unwrap();
        assert_eq!(report.failed, 0, "{report:?}");
        assert_eq!(
            remote_id(&ctx, &s, &sales).await.as_deref(),
            Some(existing.as_str())
        );
        assert_eq!(
            downstream_groups_named(&s, "Sales").await,
            1,
            "no duplicate"
        );
        let rd = remote_id(&ctx, &s, &dave).await.unwrap();
        let down = downstream_group(&s, &existing).await.unwrap();
        assert_eq!(member_values(&down), vec![rd]);
        assert_eq!(down["externalId"], json!(sales));

        // "leave": unassigning keeps the group downstream.
        ctx.send(
            Method::DELETE,
            &format!("{ASSIGNMENTS}/{assignment}"),
            &s.admin,
            None,
        )
        .await
        .expect(204);
        worker.drain(10).await.unwrap();
        assert!(downstream_group(&s, &existing).await.is_some());
        let app = ctx
            .send(Method::GET, &format!("{APPS}/{}", s.app), &s.admin, None)
            .await
            .expect(200)
            .body;
        assert_eq!(app["groupDeprovision"], "leave");
        // Bad policy: a clear 400.
        let bad = ctx
            .send(
                Method::PATCH,
                &format!("{APPS}/{}", s.app),
                &s.admin,
                Some(&json!({"groupDeprovision": "shred"})),
            )
            .await
            .expect(400);
        assert!(
            bad.body["detail"]
                .as_str()
                .unwrap()
                .contains("groupDeprovision")
        );
    }
);
