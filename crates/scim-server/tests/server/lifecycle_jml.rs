//! Lifecycle end to end over real HTTP: the Marketing Manager joins (HR
//! creates the user) and gets five accounts in five applications (five
//! tenants of a downstream instance of our server); is promoted and the
//! access changes by the delta (manual grants stay); leaves and every
//! account is deactivated within one engine cycle (the grants are
//! suspended, not forgotten); is reactivated and gets it all back.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use scim_server::lifecycle::Lifecycle;
use scim_server::provision::{Engine, EngineOptions};
use scim_server::secrets::SecretKey;
use scim_server::store::Storage;
use scim_server::tokens::Scope;
use serde_json::{Value, json};

use crate::groups::{PATCH_OP, USER};
use crate::harness::{Ctx, TEST_SECRET_KEY};

pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const APPS: [&str; 6] = [
    "Slack",
    "Trello",
    "Mailchimp",
    "Google Workspace",
    "Semrush",
    "Tableau",
];

pub fn engine(ctx: &Ctx) -> Engine {
    let storage: Arc<dyn Storage> = Arc::new(ctx.store.clone());
    Engine::new(
        storage,
        Some(SecretKey::from_base64(TEST_SECRET_KEY).unwrap()),
        EngineOptions {
            owner: "lifecycle-test".into(),
            backoff_base: Duration::from_millis(10),
            backoff_cap: Duration::from_millis(50),
            ..crate::harness::engine_options()
        },
    )
}

pub fn lifecycle(ctx: &Ctx) -> Lifecycle {
    let storage: Arc<dyn Storage> = Arc::new(ctx.store.clone());
    Lifecycle::new(
        storage,
        Arc::new(
            scim_server::server::schema_registry(&scim_server::config::Settings::defaults())
                .unwrap(),
        ),
    )
}

/// The upstream server's tokens, the downstream instance and its tokens
/// per application (one tenant each), and application ids by name.
pub struct World {
    pub down: Ctx,
    pub down_tokens: Vec<(String, String)>,
    pub admin: String,
    pub hr: String,
    pub apps: Vec<(String, i64)>,
}

impl World {
    pub async fn new(ctx: &Ctx) -> World {
        let down = Ctx::start(ctx.backend()).await.expect("downstream");
        let admin = ctx.token("acme", &[Scope::Admin]);
        let hr = ctx.token("acme", &[Scope::Write]);
        let mut down_tokens = Vec::new();
        let mut apps = Vec::new();
        for name in APPS {
            let tenant = name.to_lowercase().replace(' ', "-");
            let token = down.token(&tenant, &[Scope::Write]);
            let id = ctx
                .create(
                    "/api/v1/applications",
                    &admin,
                    json!({"name": name, "baseUrl": down.scim_base(),
                           "credentials": {"type": "bearer", "token": token},
                           "deprovision": {"action": "deactivate"}}),
                )
                .await
                .body["id"]
                .as_i64()
                .unwrap();
            down_tokens.push((name.to_owned(), token));
            apps.push((name.to_owned(), id));
        }
        World {
            down,
            down_tokens,
            admin,
            hr,
            apps,
        }
    }

    pub fn app(&self, name: &str) -> i64 {
        self.apps.iter().find(|(n, _)| n == name).unwrap().1
    }

    /// The downstream account of `user_name` in application `app`: its
    /// `active` flag, or None when it has none.
    pub async fn account(&self, app: &str, user_name: &str) -> Option<bool> {
        self.account_doc(app, user_name)
            .await
            .map(|u| u["active"] == json!(true))
    }

    /// The downstream account of `user_name` in application `app`, or
    /// None when it has none.
    pub async fn account_doc(&self, app: &str, user_name: &str) -> Option<Value> {
        let token = &self.down_tokens.iter().find(|(n, _)| n == app).unwrap().1;
        let res = self
            .down
            .send(
                Method::GET,
                &format!("/scim/v2/Users?filter=userName%20eq%20%22{user_name}%22"),
                token,
                None,
            )
            .await
            .expect(200);
        let list = res.body["Resources"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(list.len() <= 1, "no duplicate accounts: {}", res.body);
        list.into_iter().next()
    }

    /// The `roles` values of `user_name`'s account in `app`, as held
    /// downstream (empty when it has none).
    pub async fn roles(&self, app: &str, user_name: &str) -> Vec<String> {
        let account = self.account_doc(app, user_name).await;
        let roles = account.as_ref().and_then(|u| u["roles"].as_array());
        roles
            .into_iter()
            .flatten()
            .map(|r| r["value"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Active accounts of `user_name`, by application name.
    pub async fn active_in(&self, user_name: &str) -> Vec<String> {
        let mut out = Vec::new();
        for name in APPS {
            if self.account(name, user_name).await == Some(true) {
                out.push(name.to_owned());
            }
        }
        out
    }
}

pub async fn api(
    ctx: &Ctx,
    w: &World,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> crate::harness::Res {
    ctx.send(method, path, &w.admin, body.as_ref()).await
}

/// Creates the playbooks and rules of the scenario.
async fn scenario_rules(ctx: &Ctx, w: &World) -> (i64, i64) {
    let manager = ctx
        .create(
            "/api/v1/playbooks",
            &w.admin,
            serde_json::from_str(include_str!(
                "../../../../examples/playbooks/marketing-manager.json"
            ))
            .unwrap(),
        )
        .await
        .body;
    assert_eq!(manager["actions"].as_array().unwrap().len(), 5, "{manager}");
    assert_eq!(
        manager["actions"][0]["applicationId"],
        json!(w.app("Slack"))
    );
    let director = ctx
        .create(
            "/api/v1/playbooks",
            &w.admin,
            json!({"name": "Marketing Director", "actions": [
                {"type": "assignApplication", "application": "Slack"},
                {"type": "assignApplication", "application": "Google Workspace"},
                {"type": "assignApplication", "application": "Mailchimp", "role": "viewer"},
                {"type": "assignApplication", "application": "Tableau", "role": "viewer"},
            ]}),
        )
        .await
        .body;
    let r1 = ctx
        .create(
            "/api/v1/rules",
            &w.admin,
            json!({"name": "marketing managers", "event": "joiner",
                   "filter": format!("{ENTERPRISE}:department eq \"Marketing\" and title eq \"Manager\""),
                   "playbooks": ["Marketing Manager"]}),
        )
        .await
        .body;
    let r2 = ctx
        .create(
            "/api/v1/rules",
            &w.admin,
            json!({"name": "marketing directors", "event": "mover",
                   "filter": format!("{ENTERPRISE}:department eq \"Marketing\" and title eq \"Director\""),
                   "playbooks": [director["id"]]}),
        )
        .await
        .body;
    (r1["id"].as_i64().unwrap(), r2["id"].as_i64().unwrap())
}

backend_test!(marketing_manager_joins_moves_and_leaves, |ctx| async move {
    let w = World::new(&ctx).await;
    let (joiner_rule, mover_rule) = scenario_rules(&ctx, &w).await;
    let lc = lifecycle(&ctx);
    let worker = engine(&ctx);
    lc.drain(5).await.unwrap();

    // Joiner: HR creates the user.
    let jane = ctx
        .create(
            "/scim/v2/Users",
            &w.hr,
            json!({"schemas": [USER, ENTERPRISE], "userName": "jane", "active": true,
                       "displayName": "Jane Doe", "title": "Manager",
                       ENTERPRISE: {"department": "Marketing"}}),
        )
        .await
        .id();
    let report = lc.drain(5).await.unwrap();
    assert!(report.evaluated >= 1, "{report:?}");
    let sent = worker.drain(10).await.unwrap();
    assert_eq!(sent.sent, 5, "{sent:?}");
    assert_eq!(
        w.active_in("jane").await,
        [
            "Slack",
            "Trello",
            "Mailchimp",
            "Google Workspace",
            "Semrush"
        ]
    );
    // The playbook's application-side role is the account's `roles`;
    // applications granted without a role get none.
    let mailchimp = w.account_doc("Mailchimp", "jane").await.unwrap();
    assert_eq!(
        mailchimp["roles"],
        json!([{"value": "manager"}]),
        "{mailchimp}"
    );
    assert_eq!(w.roles("Slack", "jane").await, Vec::<String>::new());
    let access = api(
        &ctx,
        &w,
        Method::GET,
        &format!("/api/v1/users/{jane}/access"),
        None,
    )
    .await
    .expect(200)
    .body;
    let apps = access["applications"].as_array().unwrap();
    assert_eq!(apps.len(), 5, "{access}");
    for a in apps {
        assert_eq!(a["state"], "provisioned", "{a}");
        assert_eq!(a["grants"][0]["why"], "rule", "{a}");
        assert_eq!(a["grants"][0]["ruleId"], json!(joiner_rule), "{a}");
        assert!(a["remoteId"].is_string(), "{a}");
    }
    // The rule's run is recorded with the change that fired it.
    let events = api(
        &ctx,
        &w,
        Method::GET,
        &format!("/api/v1/users/{jane}/lifecycle"),
        None,
    )
    .await
    .expect(200)
    .body;
    let joined = &events["items"][0];
    assert_eq!(joined["event"], "joiner", "{events}");
    assert_eq!(joined["detail"]["rulesFired"], json!([joiner_rule]));
    assert!(joined["causeChangeSeq"].is_i64(), "{joined}");
    let runs = api(&ctx, &w, Method::GET, "/api/v1/playbooks/1/runs", None)
        .await
        .expect(200)
        .body;
    assert_eq!(
        runs["items"][0]["source"],
        json!(format!("rule:{joiner_rule}"))
    );
    assert_eq!(runs["items"][0]["causeChangeSeq"], joined["causeChangeSeq"]);
    // Nothing more to do: level-triggered, no repeated run.
    assert_eq!(lc.drain(5).await.unwrap().evaluated, 0);
    assert_eq!(worker.drain(5).await.unwrap().sent, 0);

    // A manual grant of Semrush, which the promotion must leave alone.
    ctx.create(
        "/api/v1/assignments",
        &w.admin,
        json!({"applicationId": w.app("Semrush"), "resourceId": jane,
                   "reason": "campaign tooling"}),
    )
    .await;

    // Preview of the promotion before it happens.
    let promotion = json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "title", "value": "Director"}]});
    let preview = api(
        &ctx,
        &w,
        Method::POST,
        &format!("/api/v1/users/{jane}/preview"),
        Some(promotion.clone()),
    )
    .await
    .expect(200)
    .body;
    assert_eq!(preview["decision"]["event"], "mover", "{preview}");
    assert_eq!(preview["decision"]["rulesFired"], json!([mover_rule]));
    let mut impact: Vec<(String, i64, i64)> = preview["impact"]["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["application"].as_str().unwrap().to_owned(),
                a["accountsCreated"].as_i64().unwrap(),
                a["accountsDeactivated"].as_i64().unwrap(),
            )
        })
        .collect();
    impact.sort();
    assert_eq!(
        impact,
        [("Tableau".to_owned(), 1, 0), ("Trello".to_owned(), 0, 1)]
    );
    // The preview changed nothing.
    assert_eq!(lc.drain(5).await.unwrap().evaluated, 0);

    // Mover: HR promotes her.
    ctx.send(
        Method::PATCH,
        &format!("/scim/v2/Users/{jane}"),
        &w.hr,
        Some(&promotion),
    )
    .await
    .expect(200);
    lc.drain(5).await.unwrap();
    let moved = worker.drain(10).await.unwrap();
    assert_eq!(moved.failed, 0, "{moved:?}");
    assert_eq!(
        w.active_in("jane").await,
        [
            "Slack",
            "Mailchimp",
            "Google Workspace",
            "Semrush",
            "Tableau"
        ]
    );
    // Mailchimp stays, its role changes from the manager rule's to the
    // director rule's: one PATCH of the same account.
    assert_eq!(w.roles("Mailchimp", "jane").await, ["viewer"]);
    assert_eq!(w.roles("Tableau", "jane").await, ["viewer"]);
    let log = api(
        &ctx,
        &w,
        Method::GET,
        &format!(
            "/api/v1/provisioning/log?application={}&user={jane}",
            w.app("Mailchimp")
        ),
        None,
    )
    .await
    .expect(200)
    .body;
    let last = &log["items"][0];
    assert_eq!(last["method"], "PATCH", "{log}");
    let ops = last["request"]["Operations"].to_string();
    assert!(
        ops.contains("viewer") && ops.contains("manager") && !ops.contains("userName"),
        "only the roles change: {ops}"
    );
    assert_eq!(
        w.account("Trello", "jane").await,
        Some(false),
        "deactivated, not deleted"
    );
    let access = api(
        &ctx,
        &w,
        Method::GET,
        &format!("/api/v1/users/{jane}/access"),
        None,
    )
    .await
    .expect(200)
    .body;
    let state = |name: &str| {
        access["applications"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["application"] == json!(name))
            .unwrap()
            .clone()
    };
    assert_eq!(state("Trello")["state"], "revoked", "{access}");
    assert_eq!(state("Tableau")["grants"][0]["role"], "viewer");
    let semrush = state("Semrush");
    assert_eq!(semrush["state"], "provisioned");
    let whys: Vec<&str> = semrush["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["why"].as_str().unwrap())
        .collect();
    assert_eq!(
        whys,
        ["manual"],
        "the manager rule's grant went, the manual one stayed"
    );
    assert_eq!(semrush["grants"][0]["reason"], "campaign tooling");

    // The application view: everyone with access and why.
    let slack = api(
        &ctx,
        &w,
        Method::GET,
        &format!("/api/v1/applications/{}/access", w.app("Slack")),
        None,
    )
    .await
    .expect(200)
    .body;
    assert_eq!(slack["totalResults"], 1, "{slack}");
    assert_eq!(slack["users"][0]["userName"], "jane");
    assert_eq!(slack["users"][0]["grants"][0]["ruleId"], json!(mover_rule));

    // Leaver: HR deactivates her; one lifecycle pass and one engine
    // cycle deactivate every account, the manual grant's included.
    ctx.send(
        Method::PATCH,
        &format!("/scim/v2/Users/{jane}"),
        &w.hr,
        Some(&json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "replace", "path": "active", "value": false}]})),
    )
    .await
    .expect(200);
    let r = lc.drain(1).await.unwrap();
    assert_eq!(r.evaluated, 1);
    worker.drain(10).await.unwrap();
    assert!(w.active_in("jane").await.is_empty());
    // Deactivation changes only `active`: the account keeps the role it
    // had, and gets what is granted then if it is reactivated.
    assert_eq!(w.account("Tableau", "jane").await, Some(false));
    assert_eq!(w.roles("Tableau", "jane").await, ["viewer"]);
    let left = api(
        &ctx,
        &w,
        Method::GET,
        &format!("/api/v1/assignments?user={jane}"),
        None,
    )
    .await
    .expect(200)
    .body;
    // Suspended, not forgotten: the grants stay, the model grants nothing
    // to an inactive user, and the view says so.
    assert_eq!(left["totalResults"], 5, "suspended, not revoked: {left}");
    let access = api(
        &ctx,
        &w,
        Method::GET,
        &format!("/api/v1/users/{jane}/access"),
        None,
    )
    .await
    .expect(200)
    .body;
    for a in access["applications"].as_array().unwrap() {
        if a["application"] == json!("Trello") {
            continue;
        }
        assert_eq!(a["state"], "suspended", "{a}");
        assert_eq!(a["granted"], false, "{a}");
    }
    let events = api(
        &ctx,
        &w,
        Method::GET,
        &format!("/api/v1/users/{jane}/lifecycle"),
        None,
    )
    .await
    .expect(200)
    .body;
    assert_eq!(events["items"][0]["event"], "leaver");
    assert_eq!(
        events["items"][0]["detail"]["revoked"],
        json!([]),
        "{events}"
    );

    // Reactivated: everything she held comes back.
    ctx.send(
        Method::PATCH,
        &format!("/scim/v2/Users/{jane}"),
        &w.hr,
        Some(&json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "replace", "path": "active", "value": true}]})),
    )
    .await
    .expect(200);
    lc.drain(5).await.unwrap();
    worker.drain(10).await.unwrap();
    assert_eq!(
        w.active_in("jane").await,
        [
            "Slack",
            "Mailchimp",
            "Google Workspace",
            "Semrush",
            "Tableau"
        ]
    );
});

backend_test!(
    leaver_rule_grants_a_grace_period_instead_of_revoking_now,
    |ctx| async move {
        let w = World::new(&ctx).await;
        let lc = lifecycle(&ctx);
        let worker = engine(&ctx);
        ctx.create(
            "/api/v1/rules",
            &w.admin,
            json!({"name": "sales leavers keep access a while", "event": "leaver",
                   "filter": format!("{ENTERPRISE}:department eq \"Sales\""),
                   "revokeAfterSeconds": 3600}),
        )
        .await;
        let sam = ctx
            .create(
                "/scim/v2/Users",
                &w.hr,
                json!({"schemas": [USER, ENTERPRISE], "userName": "sam", "active": true,
                       ENTERPRISE: {"department": "Sales"}}),
            )
            .await
            .id();
        let a = ctx
            .create(
                "/api/v1/assignments",
                &w.admin,
                json!({"applicationId": w.app("Slack"), "resourceId": sam}),
            )
            .await
            .body;
        lc.drain(5).await.unwrap();
        worker.drain(5).await.unwrap();
        ctx.send(
            Method::PATCH,
            &format!("/scim/v2/Users/{sam}"),
            &w.hr,
            Some(&json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "replace", "path": "active", "value": false}]})),
        )
        .await
        .expect(200);
        lc.drain(5).await.unwrap();
        worker.drain(10).await.unwrap();
        // A grace period: the assignment stays as it was and the account
        // keeps working until the grace ends; the view says until when.
        let list = api(
            &ctx,
            &w,
            Method::GET,
            &format!("/api/v1/assignments?user={sam}"),
            None,
        )
        .await
        .expect(200)
        .body;
        assert_eq!(list["totalResults"], 1, "kept: {list}");
        assert_eq!(list["items"][0]["id"], a["id"]);
        assert_eq!(list["items"][0]["validUntil"], Value::Null, "{list}");
        assert_eq!(w.account("Slack", "sam").await, Some(true));
        let access = api(
            &ctx,
            &w,
            Method::GET,
            &format!("/api/v1/users/{sam}/access"),
            None,
        )
        .await
        .expect(200)
        .body;
        let slack = &access["applications"][0];
        assert_eq!(slack["state"], "provisioned", "{access}");
        assert_eq!(slack["entitlement"], "grace", "{access}");
        let until =
            chrono::DateTime::parse_from_rfc3339(slack["graceUntil"].as_str().unwrap()).unwrap();
        let delta = until
            .signed_duration_since(chrono::Utc::now())
            .num_seconds();
        assert!((3500..=3600).contains(&delta), "{delta}");
    }
);
