//! The keyed audit chain against someone who can write the database but
//! does not hold the audit key: the four tamperings (edit one row, delete
//! a middle row, delete the tail and move the head back, edit a row and
//! recompute every later hash), each verified with and without the key
//! and with and without a checkpoint kept from before, as the README's
//! table says. Also: checkpoints and `expectHead` over the API and the
//! server CLI, chains that change from unkeyed to keyed, and actor names.

use reqwest::Method;
use scim_server::store::audit_chain::{LEGACY, UNKEYED, entry_hash};
use scim_server::store::{
    AuditEntry, AuditQuery, AuditStore, HeadRef, Store, TenantId, TenantStore, TokenStore,
};
use scim_server::tokens::{Scope, Scopes};
use serde_json::{Value, json};

use crate::audit::{some_writes, tamper};
use crate::harness::{Ctx, TEST_SECRET_KEY};

/// An audit key of its own (40 bytes, base64).
const OTHER_AUDIT_KEY: &str = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKiw==";

async fn verify(ctx: &Ctx, token: &str, expect: Option<&str>) -> Value {
    let path = match expect {
        Some(head) => format!("/api/v1/audit/verify?expectHead={head}"),
        None => "/api/v1/audit/verify".to_owned(),
    };
    ctx.send(Method::GET, &path, token, None)
        .await
        .expect(200)
        .body
}

fn tenant(ctx: &Ctx) -> TenantId {
    ctx.store.find_tenant("acme").unwrap().unwrap().id
}

/// The same database opened without any key: what someone verifying
/// without the key sees.
fn keyless(ctx: &Ctx) -> Store {
    ctx.db.open_store()
}

/// Every entry of the tenant, as stored.
fn entries(ctx: &Ctx) -> Vec<AuditEntry> {
    ctx.store
        .query_audit(
            tenant(ctx),
            &AuditQuery {
                limit: 1000,
                ..AuditQuery::default()
            },
        )
        .unwrap()
}

fn quote(text: &Option<String>) -> String {
    match text {
        Some(t) => format!("'{}'", t.replace('\'', "''")),
        None => "NULL".into(),
    }
}

/// What an attacker without the key can do: change the entries from `from`
/// on with `edit`, then recompute their hashes (and every later one) with
/// the unkeyed algorithm, labelled `label` (the stored `chain` column) but
/// hashed as `hash_as`, and move the head to the new last hash.
fn rewrite(ctx: &Ctx, from: i64, label: i32, hash_as: i32, edit: impl Fn(&mut AuditEntry)) {
    let tenant = tenant(ctx);
    let mut prev: Option<String> = None;
    for mut e in entries(ctx) {
        if e.seq < from {
            prev = Some(e.hash.clone());
            continue;
        }
        edit(&mut e);
        if let Some(p) = &prev {
            e.prev_hash = p.clone();
        }
        e.chain = hash_as;
        let hash = entry_hash(tenant, &e, None).expect("an unkeyed hash");
        tamper(
            ctx,
            &format!(
                "UPDATE audit_log SET actor = {}, after_json = {}, prev_hash = '{}', hash = '{hash}', \
                 chain = {label} WHERE tenant_id = {} AND seq = {}",
                quote(&Some(e.actor.clone())),
                quote(&e.after),
                e.prev_hash,
                tenant.0,
                e.seq
            ),
        );
        prev = Some(hash);
    }
    if let Some(head) = prev {
        tamper(
            ctx,
            &format!(
                "UPDATE audit_heads SET hash = '{head}' WHERE tenant_id = {}",
                tenant.0
            ),
        );
    }
}

/// The four verifications of a tampered chain: (with key, with checkpoint),
/// (with key, without), (without key, with), (without key, without), as
/// valid / not valid.
async fn four_ways(ctx: &Ctx, admin: &str, kept: &str) -> [bool; 4] {
    let tenant = tenant(ctx);
    let head: HeadRef = kept.parse().unwrap();
    let store = keyless(ctx);
    let with_both = verify(ctx, admin, Some(kept)).await;
    let key_only = verify(ctx, admin, None).await;
    let cp_only = store.verify_audit(tenant, Some(&head)).unwrap();
    let neither = store.verify_audit(tenant, None).unwrap();
    assert_eq!(with_both["keyed"], true);
    assert!(!cp_only.keyed && !neither.keyed);
    [
        with_both["valid"] == true,
        key_only["valid"] == true,
        cp_only.valid(),
        neither.valid(),
    ]
}

/// Five keyed entries and a kept checkpoint of them, then three more.
async fn keyed_history(ctx: &Ctx) -> (String, String) {
    let scim = ctx.token("acme", &[Scope::Write]);
    let admin = ctx.token("acme", &[Scope::Admin]);
    some_writes(ctx, &scim).await;
    let v = verify(ctx, &admin, None).await;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["keyed"], true);
    assert_eq!(v["keyedFrom"], 1);
    assert_eq!(v["unkeyedEntries"], 0);
    let kept = v["checkpoint"]["head"].as_str().unwrap().to_owned();
    assert!(kept.starts_with("5:"), "{v}");
    assert_eq!(v["checkpoint"]["signature"].as_str().unwrap().len(), 64);
    five_users(ctx, &scim, "later").await;
    (admin, kept)
}

/// Five users created: five entries.
async fn five_users(ctx: &Ctx, scim: &str, prefix: &str) {
    for i in 0..5 {
        ctx.create(
            "/scim/v2/Users",
            scim,
            json!({"schemas": [crate::groups::USER], "userName": format!("{prefix}-{i}")}),
        )
        .await;
    }
}

backend_test!(tampering_a_edit_one_row, |ctx| async move {
    let (admin, kept) = keyed_history(&ctx).await;
    assert_eq!(four_ways(&ctx, &admin, &kept).await, [true; 4]);
    tamper(
        &ctx,
        "UPDATE audit_log SET actor = 'token:99' WHERE seq = 2",
    );
    let v = verify(&ctx, &admin, Some(&kept)).await;
    assert_eq!(v["firstBadSeq"], 2, "{v}");
    assert!(v["reason"].as_str().unwrap().contains("altered"), "{v}");
    // Without the key the MAC of a keyed entry cannot be checked, and the
    // hash column (all a checkpoint pins) is untouched.
    assert_eq!(
        four_ways(&ctx, &admin, &kept).await,
        [false, false, true, true]
    );
    let unchecked = keyless(&ctx).verify_audit(tenant(&ctx), None).unwrap();
    assert_eq!(unchecked.unchecked_macs, 10);
});

backend_test!(tampering_b_delete_a_middle_row, |ctx| async move {
    let (admin, kept) = keyed_history(&ctx).await;
    tamper(&ctx, "DELETE FROM audit_log WHERE seq = 3");
    let v = verify(&ctx, &admin, Some(&kept)).await;
    assert_eq!(v["firstBadSeq"], 3, "{v}");
    assert_eq!(v["expectedHead"]["relation"], "extends", "{v}");
    assert_eq!(
        v["checkpoint"],
        Value::Null,
        "no checkpoint of a broken chain"
    );
    assert_eq!(four_ways(&ctx, &admin, &kept).await, [false; 4]);
    // Deleting the kept entry itself.
    tamper(&ctx, "DELETE FROM audit_log WHERE seq = 5");
    let v = verify(&ctx, &admin, Some(&kept)).await;
    assert_eq!(v["expectedHead"]["relation"], "missing", "{v}");
});

backend_test!(
    tampering_c_delete_the_tail_and_move_the_head,
    |ctx| async move {
        let (admin, kept) = keyed_history(&ctx).await;
        let third = entries(&ctx)[2].hash.clone();
        tamper(&ctx, "DELETE FROM audit_log WHERE seq > 3");
        tamper(
            &ctx,
            &format!("UPDATE audit_heads SET seq = 3, hash = '{third}'"),
        );
        // Only a kept checkpoint shows it: the shortened chain is a valid
        // chain, keyed or not.
        assert_eq!(
            four_ways(&ctx, &admin, &kept).await,
            [false, true, false, true]
        );
        let v = verify(&ctx, &admin, Some(&kept)).await;
        assert_eq!(v["firstBadSeq"], Value::Null, "{v}");
        assert_eq!(v["expectedHead"]["holds"], false, "{v}");
        assert_eq!(v["expectedHead"]["relation"], "truncated", "{v}");
        assert!(
            v["expectedHead"]["detail"]
                .as_str()
                .unwrap()
                .contains("head is at seq 3"),
            "{v}"
        );
        // The head moved back while the rows stay: the same.
        tamper(&ctx, "DELETE FROM audit_log WHERE seq > 2");
        let second = entries(&ctx)[1].hash.clone();
        tamper(
            &ctx,
            &format!("UPDATE audit_heads SET seq = 2, hash = '{second}'"),
        );
        assert_eq!(
            verify(&ctx, &admin, Some(&kept)).await["expectedHead"]["relation"],
            "truncated"
        );
    }
);

backend_test!(
    tampering_d_edit_a_row_and_recompute_every_later_hash,
    |ctx| async move {
        let (admin, kept) = keyed_history(&ctx).await;
        let mallory = |e: &mut AuditEntry| {
            if e.seq == 2 {
                e.after = Some(r#"{"displayName":"Mallory"}"#.into());
            }
        };
        // Hashes recomputed with SHA-256, the entries still marked keyed.
        rewrite(&ctx, 2, 3, UNKEYED, mallory);
        let v = verify(&ctx, &admin, Some(&kept)).await;
        assert_eq!(v["firstBadSeq"], 2, "{v}");
        assert_eq!(v["expectedHead"]["relation"], "rewritten", "{v}");
        assert_eq!(
            four_ways(&ctx, &admin, &kept).await,
            [false, false, false, true]
        );

        // Marked unkeyed instead: an unkeyed entry after a keyed one is a
        // break with or without the key.
        rewrite(&ctx, 2, UNKEYED, UNKEYED, mallory);
        let v = verify(&ctx, &admin, None).await;
        assert_eq!(v["firstBadSeq"], 2, "{v}");
        assert!(
            v["reason"]
                .as_str()
                .unwrap()
                .contains("without the audit key"),
            "{v}"
        );
        assert_eq!(
            four_ways(&ctx, &admin, &kept).await,
            [false, false, false, false]
        );

        // The whole chain rewritten as unkeyed from its first entry: it
        // looks like a chain written before the key, and only the kept
        // checkpoint shows the rewrite.
        rewrite(&ctx, 1, UNKEYED, UNKEYED, mallory);
        assert_eq!(
            four_ways(&ctx, &admin, &kept).await,
            [false, true, false, true]
        );
        let v = verify(&ctx, &admin, Some(&kept)).await;
        assert_eq!(v["keyedFrom"], Value::Null, "{v}");
        assert_eq!(v["unkeyedEntries"], 10, "{v}");
        assert_eq!(v["expectedHead"]["relation"], "rewritten", "{v}");
    }
);

backend_test!(
    unkeyed_and_legacy_entries_verify_and_keying_starts_where_the_key_does,
    |ctx| async move {
        let mut ctx = ctx;
        ctx.restart_with(|s| s.secret_key = None);
        let scim = ctx.token("acme", &[Scope::Write]);
        let admin = ctx.token("acme", &[Scope::Admin]);
        some_writes(&ctx, &scim).await;
        let v = verify(&ctx, &admin, None).await;
        assert_eq!(v["valid"], true, "{v}");
        assert_eq!(v["keyed"], false);
        assert_eq!(v["keyId"], Value::Null);
        assert_eq!(v["unkeyedEntries"], 5);
        assert_eq!(v["checkpoint"]["signature"], Value::Null, "{v}");
        // Entries 1-3 as a database from before the keyed chain holds them.
        rewrite(&ctx, 1, LEGACY, LEGACY, |_| {});
        rewrite(&ctx, 4, UNKEYED, UNKEYED, |_| {});
        assert_eq!(verify(&ctx, &admin, None).await["valid"], true);

        // The key arrives: new entries carry MACs; the old ones still verify.
        ctx.restart_with(|_| {});
        five_users(&ctx, &scim, "keyed").await;
        let v = verify(&ctx, &admin, None).await;
        assert_eq!(v["valid"], true, "{v}");
        assert_eq!(v["keyedFrom"], 6);
        assert_eq!(v["unkeyedEntries"], 5);
        let page = ctx
            .send(Method::GET, "/api/v1/audit?after=4&limit=2", &admin, None)
            .await
            .expect(200)
            .body;
        assert_eq!(page["entries"][0]["keyed"], false, "{page}");
        assert_eq!(page["entries"][1]["keyed"], true, "{page}");

        // A server started without the key afterwards writes unkeyed
        // entries after keyed ones: reported, so that the key is not
        // quietly dropped.
        ctx.restart_with(|s| s.secret_key = None);
        ctx.create(
            "/scim/v2/Users",
            &scim,
            json!({"schemas": [crate::groups::USER], "userName": "late"}),
        )
        .await;
        let v = keyless(&ctx).verify_audit(tenant(&ctx), None).unwrap();
        assert_eq!(v.first_break.map(|b| b.seq), Some(11));

        // SCIM_AUDIT_KEY, when given, is the key instead of one derived
        // from SCIM_SECRET_KEY: the entries made with the derived key no
        // longer verify under it.
        ctx.restart_with(|s| s.audit_key = Some(OTHER_AUDIT_KEY.into()));
        let v = verify(&ctx, &admin, None).await;
        assert_eq!(v["firstBadSeq"], 6, "{v}");
        assert!(v["reason"].as_str().unwrap().contains("altered"), "{v}");
    }
);

backend_test!(expect_head_and_checkpoints_over_the_api, |ctx| async move {
    let scim = ctx.token("acme", &[Scope::Write]);
    let admin = ctx.token("acme", &[Scope::Admin]);
    // The empty chain verifies and has a checkpoint at seq 0.
    let v = verify(&ctx, &admin, None).await;
    assert_eq!(v["valid"], true, "{v}");
    let empty = v["checkpoint"]["head"].as_str().unwrap().to_owned();
    assert_eq!(empty, format!("0:{}", "0".repeat(64)));
    some_writes(&ctx, &scim).await;
    let v = verify(&ctx, &admin, Some(&empty)).await;
    assert_eq!(v["expectedHead"]["relation"], "extends", "{v}");
    let kept = v["checkpoint"]["head"].as_str().unwrap().to_owned();
    let v = verify(&ctx, &admin, Some(&kept)).await;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["expectedHead"]["relation"], "head");
    assert_eq!(v["expectedHead"]["holds"], true);
    // The checkpoint's signature is the server key's.
    let checkpoint = scim_server::store::Checkpoint {
        seq: v["checkpoint"]["seq"].as_i64().unwrap(),
        hash: v["checkpoint"]["hash"].as_str().unwrap().to_owned(),
        at: chrono::DateTime::parse_from_rfc3339(v["checkpoint"]["at"].as_str().unwrap())
            .unwrap()
            .to_utc(),
        signature: v["checkpoint"]["signature"].as_str().map(str::to_owned),
    };
    let key = ctx.store.audit_key().unwrap();
    assert!(checkpoint.signature_holds(tenant(&ctx), key));
    // A head that was never there.
    let forged = format!("3:{}", "a".repeat(64));
    let v = verify(&ctx, &admin, Some(&forged)).await;
    assert_eq!(v["valid"], false);
    assert_eq!(v["firstBadSeq"], Value::Null);
    assert_eq!(v["expectedHead"]["relation"], "rewritten", "{v}");
    // Bad parameters: 400 with invalidValue.
    for bad in [
        "?expectHead=5",
        "?expectHead=x:y",
        "?expectHead=-1:aa",
        "?head=1",
    ] {
        let res = ctx
            .send(
                Method::GET,
                &format!("/api/v1/audit/verify{bad}"),
                &admin,
                None,
            )
            .await
            .expect(400);
        assert!(res.body["detail"].is_string(), "{bad}: {}", res.body);
    }
});

/// `scim-server audit verify --tenant acme [--expect-head H]` on the test
/// database, with the test key unless `key` is false.
fn cli_verify(ctx: &Ctx, key: bool, expect: Option<&str>) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_scim-server"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SCIM_") {
            cmd.env_remove(k);
        }
    }
    if key {
        cmd.env("SCIM_SECRET_KEY", TEST_SECRET_KEY);
    }
    cmd.args([
        "--database-url",
        &ctx.db.url,
        "audit",
        "verify",
        "--tenant",
        "acme",
    ]);
    if let Some(head) = expect {
        cmd.args(["--expect-head", head]);
    }
    let out = cmd.output().expect("run scim-server audit verify");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

backend_test!(
    the_server_cli_prints_a_checkpoint_and_checks_a_kept_head,
    |ctx| async move {
        let (_, kept) = keyed_history(&ctx).await;
        let (ok, out) = cli_verify(&ctx, true, Some(&kept));
        assert!(ok, "{out}");
        assert!(out.contains("verifies: 10 entries"), "{out}");
        assert!(out.contains("keyed: yes"), "{out}");
        assert!(out.contains(&format!("kept head {kept}: holds")), "{out}");
        assert!(out.contains("head 10:"), "{out}");
        let (ok, out) = cli_verify(&ctx, false, None);
        assert!(ok, "{out}");
        assert!(out.contains("keyed: no"), "{out}");
        assert!(out.contains("signature none"), "{out}");

        tamper(&ctx, "DELETE FROM audit_log WHERE seq > 3");
        let third = entries(&ctx)[2].hash.clone();
        tamper(
            &ctx,
            &format!("UPDATE audit_heads SET seq = 3, hash = '{third}'"),
        );
        let (ok, out) = cli_verify(&ctx, true, None);
        assert!(
            ok,
            "without a kept head the shortened chain verifies: {out}"
        );
        let (ok, out) = cli_verify(&ctx, true, Some(&kept));
        assert!(!ok, "{out}");
        assert!(out.contains("removed from the end"), "{out}");
        let (ok, out) = cli_verify(&ctx, true, Some("five"));
        assert!(!ok && out.contains("SEQ:HASH"), "{out}");
    }
);

backend_test!(actors_carry_the_token_name, |ctx| async move {
    let acme = ctx.store.ensure_tenant("acme").unwrap().id;
    let feed = ctx
        .store
        .create_token(acme, "hr-feed", Scopes::of(&[Scope::Write]))
        .unwrap();
    let alice = ctx
        .store
        .create_token(acme, "alice@example.com", Scopes::of(&[Scope::Admin]))
        .unwrap();
    some_writes(&ctx, &feed.secret).await;
    ctx.send(
        Method::POST,
        "/api/v1/applications",
        &alice.secret,
        Some(&json!({"name": "wiki", "baseUrl": "http://127.0.0.1:9/scim/v2"})),
    )
    .await
    .expect(201);
    let feed_actor = format!("token:{}", feed.info.id);
    let page = ctx
        .send(
            Method::GET,
            &format!("/api/v1/audit?actor={feed_actor}"),
            &alice.secret,
            None,
        )
        .await
        .expect(200)
        .body;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 5, "{page}");
    for e in entries {
        assert_eq!(e["actor"], feed_actor.as_str());
        assert_eq!(e["actorName"], "hr-feed");
    }
    let page = ctx
        .send(
            Method::GET,
            "/api/v1/audit?action=application.*",
            &alice.secret,
            None,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(
        page["entries"][0]["actor"],
        format!("token:{}", alice.info.id)
    );
    assert_eq!(
        page["entries"][0]["actorName"], "alice@example.com",
        "{page}"
    );
    // A playbook alice runs records her as who granted the access (the
    // playbook stays its source).
    let carol = ctx
        .create(
            "/scim/v2/Users",
            &feed.secret,
            json!({"schemas": [crate::groups::USER], "userName": "carol"}),
        )
        .await
        .id();
    let pb = ctx
        .create(
            "/api/v1/playbooks",
            &alice.secret,
            json!({"name": "wiki users", "actions": [
                {"type": "assignApplication", "application": "wiki"}]}),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    ctx.send(
        Method::POST,
        &format!("/api/v1/playbooks/{pb}/runs"),
        &alice.secret,
        Some(&json!({"users": [carol]})),
    )
    .await
    .expect(201);
    let view = ctx
        .send(
            Method::GET,
            &format!("/api/v1/users/{carol}/access"),
            &alice.secret,
            None,
        )
        .await
        .expect(200)
        .body;
    let grant = &view["applications"][0]["grants"][0];
    assert_eq!(grant["source"], format!("playbook:{pb}"), "{view}");
    assert_eq!(
        grant["grantedBy"],
        format!("token:{} (alice@example.com)", alice.info.id),
        "{view}"
    );

    // The name is covered by the hash.
    let v = verify(&ctx, &alice.secret, None).await;
    assert_eq!(v["valid"], true, "{v}");
    tamper(
        &ctx,
        "UPDATE audit_log SET actor_name = 'someone-else' WHERE seq = 1",
    );
    assert_eq!(verify(&ctx, &alice.secret, None).await["firstBadSeq"], 1);
});
