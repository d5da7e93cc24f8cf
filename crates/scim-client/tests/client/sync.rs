//! The planner and `apply` end to end against scim2-server: plan, send,
//! read back, and plan again to nothing.

use scim_client::plan::{
    Deprovision, MatchStrategy, MembershipLedger, Plan, PlanOptions, Planner, TargetCapabilities,
};
use scim_client::{Applied, ScimClient};
use serde_json::{Value, json};

use crate::proxy::Proxy;
use crate::{client, server_or_skip};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn desired_user(user_name: &str, external_id: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": external_id,
        "userName": user_name,
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs Jensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        ENTERPRISE: {"department": "Tour Operations"}
    })
}

async fn remote(c: &ScimClient, endpoint: &str, id: &str) -> Value {
    c.endpoint::<Value>(endpoint).get(id).await.unwrap()
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn user_lifecycle_converges() {
    let server = server_or_skip!();
    let proxy = Proxy::start(server.addr).await;
    let c = client(&proxy.base());
    c.discover().await.unwrap();
    let planner = Planner::users(
        TargetCapabilities::from(&c.capabilities()),
        PlanOptions::default(),
    );
    let strategy = MatchStrategy::users();

    // Create.
    let mut desired = desired_user("life-bjensen@example.com", "life-1");
    let plan = planner.plan(Some(&desired), None);
    let Applied::Created(created) = c
        .apply("/Users", None, &plan, None, &strategy)
        .await
        .unwrap()
    else {
        panic!("expected a create")
    };
    let id = id_of(&created);
    assert_eq!(
        planner.plan(Some(&desired), Some(&remote(&c, "/Users", &id).await)),
        Plan::Nothing
    );

    // Change: a minimal PATCH, answered 204 by scim2-server.
    desired["emails"][0]["value"] = json!("barbara@example.com");
    desired["name"]["givenName"] = json!("Barb");
    desired[ENTERPRISE]["department"] = json!("Tours");
    desired["userName"] = json!("LIFE-BJENSEN@example.com");
    let plan = planner.plan(Some(&desired), Some(&remote(&c, "/Users", &id).await));
    let Plan::Patch(ops) = &plan else {
        panic!("{plan:?}")
    };
    let shown: Vec<String> = ops.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            r#"replace name.givenName = "Barb""#,
            r#"replace emails[type eq "work"].value = "barbara@example.com""#,
            format!(r#"replace {ENTERPRISE}:department = "Tours""#).as_str(),
        ]
    );
    proxy.clear();
    let applied = c
        .apply("/Users", Some(&id), &plan, None, &strategy)
        .await
        .unwrap();
    assert_eq!(applied, Applied::Patched(None));
    assert_eq!(proxy.seen_matching("PATCH", "/v2/Users/").len(), 1);
    let now = remote(&c, "/Users", &id).await;
    assert_eq!(now["emails"][0]["value"], "barbara@example.com");
    assert_eq!(planner.plan(Some(&desired), Some(&now)), Plan::Nothing);

    // Leaver: deactivated, then nothing more to do.
    let plan = planner.plan(None, Some(&now));
    assert_eq!(plan, Plan::Deactivate);
    c.apply("/Users", Some(&id), &plan, Some(&now), &strategy)
        .await
        .unwrap();
    let now = remote(&c, "/Users", &id).await;
    assert_eq!(now["active"], false);
    assert_eq!(planner.plan(None, Some(&now)), Plan::Nothing);

    // Rejoiner: reactivated.
    let plan = planner.plan(Some(&desired), Some(&now));
    assert_eq!(
        plan,
        Plan::Patch(vec![scim_client::PatchOperation::replace(
            "active",
            json!(true)
        )])
    );
    c.apply("/Users", Some(&id), &plan, None, &strategy)
        .await
        .unwrap();
    assert_eq!(remote(&c, "/Users", &id).await["active"], true);

    // Deleted under the Delete policy.
    let deleting = Planner::users(
        TargetCapabilities::default(),
        PlanOptions {
            deprovision: Deprovision::Delete,
            ..PlanOptions::default()
        },
    );
    let plan = deleting.plan(None, Some(&now));
    let applied = c
        .apply("/Users", Some(&id), &plan, None, &strategy)
        .await
        .unwrap();
    assert_eq!(applied, Applied::Deleted { existed: true });
    assert!(c.users().try_get(&id).await.unwrap().is_none());
}

#[tokio::test]
async fn put_fallback_when_patch_is_unsupported() {
    let server = server_or_skip!();
    let proxy = Proxy::start(server.addr).await;
    let c = client(&proxy.base());
    let mut caps = c.capabilities();
    caps.patch = false;
    c.set_capabilities(caps.clone());
    let planner = Planner::users(TargetCapabilities::from(&caps), PlanOptions::default());
    let strategy = MatchStrategy::users();
    let desired = desired_user("put-bjensen@example.com", "put-1");
    let created = c
        .endpoint::<Value>("/Users")
        .create(&desired)
        .await
        .unwrap();
    let id = id_of(&created);
    // Something the provider holds that we do not manage survives the PUT.
    c.endpoint::<Value>("/Users")
        .replace(
            &id,
            &{
                let mut v = desired.clone();
                v["nickName"] = json!("Babs");
                v
            },
            None,
        )
        .await
        .unwrap();
    let mut desired = desired;
    desired["displayName"] = json!("Barbara J.");
    let before = remote(&c, "/Users", &id).await;
    let plan = planner.plan(Some(&desired), Some(&before));
    assert!(matches!(plan, Plan::Replace(_)), "{plan:?}");
    proxy.clear();
    c.apply("/Users", Some(&id), &plan, Some(&before), &strategy)
        .await
        .unwrap();
    assert_eq!(proxy.seen_matching("PUT", "/v2/Users/").len(), 1);
    assert!(proxy.seen_matching("PATCH", "/").is_empty());
    let after = remote(&c, "/Users", &id).await;
    assert_eq!(after["displayName"], "Barbara J.");
    assert_eq!(after["nickName"], "Babs");
    assert_eq!(planner.plan(Some(&desired), Some(&after)), Plan::Nothing);
    // Deactivation goes by PUT too.
    c.apply(
        "/Users",
        Some(&id),
        &Plan::Deactivate,
        Some(&after),
        &strategy,
    )
    .await
    .unwrap();
    assert_eq!(remote(&c, "/Users", &id).await["active"], false);
    assert!(proxy.seen_matching("PATCH", "/").is_empty());
}

#[tokio::test]
async fn create_adopts_an_existing_account_on_409() {
    let server = server_or_skip!();
    let c = client(&server.base());
    // Made by hand at the provider, without our externalId.
    let existing = c
        .endpoint::<Value>("/Users")
        .create(&json!({"userName": "Adopt-BJensen@Example.com", "nickName": "hand-made"}))
        .await
        .unwrap();
    let planner = Planner::users(TargetCapabilities::default(), PlanOptions::default());
    let desired = desired_user("adopt-bjensen@example.com", "adopt-1");
    let plan = planner.plan(Some(&desired), None);
    let applied = c
        .apply("/Users", None, &plan, None, &MatchStrategy::users())
        .await
        .unwrap();
    let Applied::Adopted(adopted) = applied else {
        panic!("{applied:?}")
    };
    assert_eq!(adopted["id"], existing["id"]);
    // Planning against the adopted account brings it in line.
    let id = id_of(&adopted);
    let plan = planner.plan(Some(&desired), Some(&adopted));
    c.apply("/Users", Some(&id), &plan, None, &MatchStrategy::users())
        .await
        .unwrap();
    let now = remote(&c, "/Users", &id).await;
    assert_eq!(now["externalId"], "adopt-1");
    assert_eq!(now["nickName"], "hand-made");
    assert_eq!(planner.plan(Some(&desired), Some(&now)), Plan::Nothing);
    // A match found before creating means no create at all.
    let found = c
        .find_match("/Users", &desired, &MatchStrategy::users())
        .await
        .unwrap();
    assert_eq!(found.map(|f| f["id"].clone()), Some(existing["id"].clone()));
}

#[tokio::test]
async fn group_membership_converges_with_and_without_echo() {
    let server = server_or_skip!();
    let proxy = Proxy::start(server.addr).await;
    let c = client(&proxy.base());
    let mut ids = Vec::new();
    for name in ["m-a", "m-b", "m-c"] {
        let u = c
            .endpoint::<Value>("/Users")
            .create(&json!({"userName": name}))
            .await
            .unwrap();
        ids.push(id_of(&u));
    }
    let group = |members: &[&String]| {
        json!({
            "displayName": "Sync Guides",
            "members": members.iter().map(|m| json!({"value": m})).collect::<Vec<_>>()
        })
    };
    let strategy = MatchStrategy::groups();
    let planner = Planner::groups(TargetCapabilities::default(), PlanOptions::default());
    let desired = group(&[&ids[0], &ids[1]]);
    let Applied::Created(created) = c
        .apply(
            "/Groups",
            None,
            &planner.plan(Some(&desired), None),
            None,
            &strategy,
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    let gid = id_of(&created);

    // b and c: one removal, one addition.
    let desired = group(&[&ids[1], &ids[2]]);
    let plan = planner.plan(Some(&desired), Some(&remote(&c, "/Groups", &gid).await));
    let Plan::Patch(ops) = &plan else {
        panic!("{plan:?}")
    };
    assert_eq!(ops.len(), 2);
    c.apply("/Groups", Some(&gid), &plan, None, &strategy)
        .await
        .unwrap();
    let now = remote(&c, "/Groups", &gid).await;
    assert_eq!(planner.plan(Some(&desired), Some(&now)), Plan::Nothing);

    // The same group as seen through a provider that does not return
    // members: the ledger stands in for them.
    let blind = Planner::groups(
        TargetCapabilities {
            echoes_members: false,
            ..TargetCapabilities::default()
        },
        PlanOptions::default(),
    );
    let mut without_members = now.clone();
    without_members.as_object_mut().unwrap().remove("members");
    let mut ledger = MembershipLedger::from_ids([ids[1].clone(), ids[2].clone()]);
    let desired = group(&[&ids[0], &ids[2]]);
    let plan = blind.plan_with_ledger(Some(&desired), Some(&without_members), Some(&ledger));
    c.apply("/Groups", Some(&gid), &plan, None, &strategy)
        .await
        .unwrap();
    ledger.record(&plan);
    let mut members: Vec<String> = remote(&c, "/Groups", &gid).await["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect();
    members.sort();
    let mut expected = vec![ids[0].clone(), ids[2].clone()];
    expected.sort();
    assert_eq!(members, expected);
    assert_eq!(
        ledger.ids().map(str::to_string).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(
        blind.plan_with_ledger(Some(&desired), Some(&without_members), Some(&ledger)),
        Plan::Nothing
    );
}
