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
//!   temporary access extensions, recorded;
//! - `GET|POST /api/v1/exclusions`, `DELETE /api/v1/exclusions/{id}`:
//!   exclusions of the effective-access model (a user must not have an
//!   application, whatever grants it, until lifted).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::admin::{Admin, created, items, no_content, ok};
use super::auth::Auth;
use super::playbooks::app_names;
use crate::access::{Reason, State};
use crate::error::{Error, Result};
use crate::lifecycle::Lifecycle;
use crate::store::lifecycle::AccessRow;

fn time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(SecondsFormat::Secs, true))
    })
}

/// One reason of an entitlement, as the view shows it.
fn grant_json(r: &Reason) -> Value {
    let mut v = json!({"assignmentId": r.assignment_id, "why": r.kind, "source": r.source,
                       "role": r.role, "validFrom": time(r.valid_from),
                       "validUntil": time(r.valid_until), "inForce": r.in_force,
                       "ends": r.ends, "reason": r.note, "grantedBy": r.granted_by});
    let Some(o) = v.as_object_mut() else {
        return v;
    };
    if let Some(g) = &r.group {
        o.insert("groupId".into(), json!(g.id));
        o.insert("groupName".into(), json!(g.name));
        o.insert("groupPath".into(), json!(g.path));
        o.insert("addedBy".into(), json!(g.added_by));
    } else if let Some(id) = r.source.strip_prefix("rule:") {
        o.insert("ruleId".into(), json!(id.parse::<i64>().ok()));
    } else if let Some(id) = r.source.strip_prefix("playbook:") {
        o.insert("playbookId".into(), json!(id.parse::<i64>().ok()));
    }
    v
}

/// The state a view shows: the model's entitlement read together with
/// the downstream pair, so that it never says `provisioned` for an
/// account the engine has deprovisioned.
fn view_state(row: &AccessRow) -> &'static str {
    let status = row.status.as_deref();
    let ent = row.entitlement.as_ref();
    if ent.is_some_and(|e| e.granted) {
        return match status {
            Some("provisioned") => "provisioned",
            Some("failed" | "dead") => "failed",
            _ => "pending",
        };
    }
    let live_account = matches!(status, Some("provisioned" | "pending" | "failed" | "dead"));
    match ent.map(|e| e.state) {
        // The engine has yet to deprovision it.
        _ if live_account => "revoking",
        Some(State::Excluded) => "excluded",
        Some(State::Scheduled) => "scheduled",
        Some(State::Suspended) => "suspended",
        _ => "revoked",
    }
}

/// One application's entry for one user.
fn entry(row: &AccessRow) -> Value {
    let ent = row.entitlement.as_ref();
    json!({
        "applicationId": row.application_id,
        "application": row.application_name,
        "state": view_state(row),
        "entitlement": ent.map_or("none", |e| e.state.as_str()),
        "granted": ent.is_some_and(|e| e.granted),
        "roles": ent.map(|e| e.roles.clone()).unwrap_or_default(),
        "graceUntil": if ent.is_some_and(|e| e.state == State::Grace) {
            time(row.grace_until)
        } else {
            Value::Null
        },
        "provisioningStatus": row.status,
        "remoteId": row.remote_id,
        "lastError": row.last_error,
        "since": time(ent.and_then(|e| e.since)),
        "expiresAt": time(ent.filter(|e| e.granted).and_then(|e| e.until)),
        "grants": ent.map(|e| e.reasons.iter().map(grant_json).collect::<Vec<_>>()).unwrap_or_default(),
        "exclusion": ent.and_then(|e| e.exclusion.as_ref()).map(crate::access::exclusion_json),
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
    let apps: Vec<Value> = rows.iter().map(entry).collect();
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
    let users: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut e = entry(row);
            if let Some(o) = e.as_object_mut() {
                o.remove("applicationId");
                o.remove("application");
                o.insert("userId".into(), json!(row.user_id));
                o.insert("userName".into(), json!(row.user_name));
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

/// An exclusion to create.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExclusionInput {
    /// The application.
    application_id: i64,
    /// The user's SCIM id.
    user_id: String,
    #[serde(default)]
    reason: Option<String>,
    /// Its end (absent or null: until lifted).
    #[serde(default)]
    valid_until: Option<DateTime<Utc>>,
}

/// Filters of the exclusions list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExclusionQuery {
    /// One user's.
    #[serde(default)]
    user: Option<String>,
    /// One application's.
    #[serde(default)]
    application: Option<i64>,
}

fn exclusion_entry(user_id: &str, user_name: Option<&str>, x: &crate::access::Exclusion) -> Value {
    let mut v = crate::access::exclusion_json(x);
    if let Some(o) = v.as_object_mut() {
        o.insert("userId".into(), json!(user_id));
        o.insert("userName".into(), json!(user_name));
    }
    v
}

/// `GET /api/v1/exclusions[?user=&application=]`.
pub async fn list_exclusions(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<ExclusionQuery>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let query = query.into_inner();
    let rows = admin
        .run(&state, move |st, tenant| {
            st.storage
                .list_exclusions(tenant, query.user.as_deref(), query.application)
        })
        .await?;
    Ok(items(&rows, |(id, name, x)| {
        exclusion_entry(id, name.as_deref(), x)
    }))
}

/// `POST /api/v1/exclusions`: the user must not have the application,
/// whatever grants it, until the exclusion is lifted or ends.
pub async fn create_exclusion(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let input: ExclusionInput = serde_json::from_value(body.into_inner()).map_err(|e| {
        Error::from(scim_core::Error::invalid_value(format!(
            "invalid exclusion: {e}"
        )))
    })?;
    let user_id = input.user_id.clone();
    let x = admin
        .run_audited(&state, move |st, tenant| {
            st.storage.create_exclusion(
                tenant,
                &input.user_id,
                input.application_id,
                input.reason.as_deref(),
                input.valid_until,
            )
        })
        .await?;
    Ok(created(&exclusion_entry(&user_id, None, &x)))
}

/// `DELETE /api/v1/exclusions/{id}`: lifts it; the reasons in force grant
/// the access again.
pub async fn delete_exclusion(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    admin
        .run_audited(&state, move |st, tenant| {
            st.storage.delete_exclusion(tenant, id)
        })
        .await?;
    Ok(no_content())
}
