//! The centralized view and user-level lifecycle endpoints (admin scope):
//!
//! - `GET /api/v1/users/{id}/access`: every application of the user, its
//!   state there (`pending`, `provisioned`, `failed`, `revoked`,
//!   `scheduled`, `revoking`), when it expires and why (rule, playbook,
//!   manual, group);
//! - `GET /api/v1/applications/{id}/access`: everyone with access and why;
//! - `GET /api/v1/users/{id}/lifecycle`: the joiner / mover / leaver
//!   events of the user, with the change-log entry that caused each;
//! - `POST /api/v1/users/{id}/preview`: what a proposed change (a PatchOp
//!   message, or a whole new document, or `{"delete": true}`) would do;
//! - `POST /api/v1/assignments/{id}/extend` and `GET .../extensions`:
//!   temporary access extensions, recorded.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::admin::{Admin, items, ok};
use super::auth::Auth;
use super::playbooks::app_names;
use crate::error::{Error, Result};
use crate::lifecycle::Lifecycle;
use crate::store::lifecycle::{AccessRow, UserAssignment};

fn time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(SecondsFormat::Secs, true))
    })
}

/// Why an assignment exists, as the view shows it.
fn grant_json(a: &UserAssignment) -> Value {
    let UserAssignment {
        id,
        application_id: _,
        source,
        role,
        valid_from,
        valid_until,
        reason,
        granted_by,
        via_group,
    } = a;
    let (why, extra) = if let Some(g) = via_group {
        ("group", json!({"groupId": g}))
    } else if let Some(r) = source.strip_prefix("rule:") {
        ("rule", json!({"ruleId": r.parse::<i64>().ok()}))
    } else if let Some(p) = source.strip_prefix("playbook:") {
        ("playbook", json!({"playbookId": p.parse::<i64>().ok()}))
    } else {
        ("manual", json!({}))
    };
    let mut v = json!({"assignmentId": id, "why": why, "source": source, "role": role,
                       "validFrom": time(*valid_from), "validUntil": time(*valid_until),
                       "reason": reason, "grantedBy": granted_by});
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

/// One application's entry for one user, from its rows.
fn entry(rows: &[&AccessRow], now: DateTime<Utc>) -> Value {
    let first = rows[0];
    let grants: Vec<&UserAssignment> = rows.iter().filter_map(|r| r.assignment.as_ref()).collect();
    let in_force: Vec<&&UserAssignment> = grants
        .iter()
        .filter(|a| a.valid_from.is_none_or(|f| f <= now) && a.valid_until.is_none_or(|u| u > now))
        .collect();
    let status = first.status.as_deref();
    let state = match (in_force.is_empty(), status) {
        (true, _) if !grants.is_empty() => "scheduled",
        // The engine has yet to deprovision it.
        (true, Some("provisioned" | "pending")) if rows.iter().any(|r| r.due) => "revoking",
        (true, _) => "revoked",
        (false, Some("provisioned")) => "provisioned",
        (false, Some("failed" | "dead")) => "failed",
        (false, _) => "pending",
    };
    let expires = if in_force.is_empty() || in_force.iter().any(|a| a.valid_until.is_none()) {
        None
    } else {
        in_force.iter().filter_map(|a| a.valid_until).max()
    };
    json!({
        "applicationId": first.application_id,
        "application": first.application_name,
        "state": state,
        "provisioningStatus": status,
        "remoteId": first.remote_id,
        "lastError": first.last_error,
        "expiresAt": time(expires),
        "grants": grants.iter().map(|a| grant_json(a)).collect::<Vec<_>>(),
    })
}

/// `GET /api/v1/users/{id}/access`.
pub async fn get_user_access(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    let uid = id.clone();
    let rows = admin
        .run(&state, move |st, tenant| {
            st.storage.access_rows(tenant, Some(&uid), None)
        })
        .await?;
    let now = Utc::now();
    let mut by_app: BTreeMap<i64, Vec<&AccessRow>> = BTreeMap::new();
    for r in &rows {
        by_app.entry(r.application_id).or_default().push(r);
    }
    let apps: Vec<Value> = by_app.values().map(|rows| entry(rows, now)).collect();
    let user_name = rows.first().and_then(|r| r.user_name.clone());
    Ok(ok(
        &json!({"userId": id, "userName": user_name, "applications": apps}),
    ))
}

/// `GET /api/v1/applications/{id}/access`.
pub async fn get_application_access(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    let (app, rows) = admin
        .run(&state, move |st, tenant| {
            let app = st
                .storage
                .get_application(tenant, id)?
                .ok_or_else(|| super::applications::not_found(id))?;
            Ok((app, st.storage.access_rows(tenant, None, Some(id))?))
        })
        .await?;
    let now = Utc::now();
    let mut by_user: BTreeMap<String, Vec<&AccessRow>> = BTreeMap::new();
    for r in &rows {
        by_user.entry(r.user_id.clone()).or_default().push(r);
    }
    let users: Vec<Value> = by_user
        .iter()
        .map(|(uid, rows)| {
            let mut e = entry(rows, now);
            if let Some(o) = e.as_object_mut() {
                o.remove("applicationId");
                o.remove("application");
                o.insert("userId".into(), json!(uid));
                o.insert("userName".into(), json!(rows[0].user_name));
            }
            e
        })
        .collect();
    Ok(ok(
        &json!({"applicationId": id, "application": app.fields.name,
                  "totalResults": users.len(), "users": users}),
    ))
}

/// `GET /api/v1/users/{id}/lifecycle`: newest first.
pub async fn get_user_lifecycle(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    let events = admin
        .run(&state, move |st, tenant| {
            let events = st.storage.user_events(tenant, &id, 200)?;
            // No history and no such user (another tenant's id): 404, not
            // an empty list. A deleted user's history is still answered.
            if events.is_empty() {
                let users = super::resources::resource_schema(st, "User")?;
                if st.storage.get_resource(tenant, &users, &id)?.is_none() {
                    return Err(super::resources::not_found(&users, &id));
                }
            }
            Ok(events)
        })
        .await?;
    Ok(items(&events, |e| {
        json!({"id": e.id, "userId": e.resource_id, "event": e.event,
               "causeChangeSeq": e.cause_seq, "detail": e.detail, "at": time(Some(e.at))})
    }))
}

/// `POST /api/v1/users/{id}/preview`.
pub async fn preview_user(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    let out = admin
        .run(&state, move |st, tenant| {
            let body = body.into_inner();
            if !body.is_object() {
                return Err(scim_core::Error::invalid_value(
                    "the body must be a PatchOp message, a User document or {\"delete\": true}",
                )
                .into());
            }
            let lc = Lifecycle::new(st.storage.clone(), st.registry.clone());
            let (impact, decision) = lc.preview_user(tenant, &id, &body)?;
            let names = app_names(&*st.storage, tenant)?;
            Ok(json!({"decision": decision, "impact": impact.to_json(&names)}))
        })
        .await?;
    Ok(ok(&out))
}

/// An extension.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExtendInput {
    /// The new end (null: no end).
    valid_until: Option<DateTime<Utc>>,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/assignments/{id}/extend`.
pub async fn extend_assignment(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let by = format!("token:{}", admin.token);
    let id = id.into_inner();
    let input: ExtendInput = serde_json::from_value(body.into_inner()).map_err(|e| {
        Error::from(scim_core::Error::invalid_value(format!(
            "invalid extension: {e}"
        )))
    })?;
    let out = admin
        .run_audited(&state, move |st, tenant| {
            st.storage.extend_assignment(
                tenant,
                id,
                input.valid_until,
                input.reason.as_deref(),
                Some(&by),
            )
        })
        .await?;
    Ok(ok(&out))
}

/// `GET /api/v1/assignments/{id}/extensions`.
pub async fn list_extensions(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    let extensions = admin
        .run(&state, move |st, tenant| {
            st.storage.assignment_extensions(tenant, id)
        })
        .await?;
    Ok(items(&extensions, Value::clone))
}
