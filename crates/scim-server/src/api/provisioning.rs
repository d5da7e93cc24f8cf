//! `/api/v1/applications/{id}/provisioning`: where the (application,
//! resource) pairs of an application stand. Needs the `admin` scope.

use actix_web::{HttpResponse, web};
use chrono::SecondsFormat;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AppState;
use super::admin::{Admin, items, ok};
use super::applications::not_found;
use super::auth::Auth;
use crate::error::Result;
use crate::store::{PairState, PairStatus};

/// The most pairs one status request lists.
const MAX_PAIRS: i64 = 1000;

/// Query of the status endpoint.
#[derive(Debug, Deserialize)]
pub struct StatusQuery {
    /// Only pairs with this status.
    pub status: Option<String>,
}

/// One pair as the API shows it (never the snapshot sent).
pub fn render_pair(p: &PairState) -> Value {
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
    };
    json!({
        "resourceType": p.resource_type,
        "resourceId": p.resource_id,
        "remoteId": p.remote_id,
        "status": p.status.as_str(),
        "due": p.due,
        "attempts": p.attempts,
        "nextAttemptAt": time(p.next_attempt_at),
        "lastError": p.last_error,
        "updated": time(Some(p.updated)),
    })
}

/// `GET /api/v1/applications/{id}/provisioning[?status=]`: counts by status
/// and the pairs (at most 1000).
pub async fn get_provisioning_status(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    query: web::Query<StatusQuery>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    let status = match query.into_inner().status {
        Some(s) => Some(
            PairStatus::ALL
                .into_iter()
                .find(|p| p.as_str() == s)
                .ok_or_else(|| scim_core::Error::invalid_value(format!("unknown status '{s}'")))?,
        ),
        None => None,
    };
    let (counts, pairs) = admin
        .run(&state, move |st, tenant| {
            if st.storage.get_application(tenant, id)?.is_none() {
                return Err(not_found(id));
            }
            Ok((
                st.storage.pair_counts(tenant, id)?,
                st.storage.pairs(tenant, id, status, MAX_PAIRS)?,
            ))
        })
        .await?;
    let by_status: Map<String, Value> = counts
        .by_status
        .iter()
        .map(|(s, n)| (s.as_str().to_owned(), json!(n)))
        .collect();
    Ok(ok(&json!({
        "applicationId": id,
        "counts": by_status,
        "due": counts.due,
        "pairs": pairs.iter().map(render_pair).collect::<Vec<_>>(),
    })))
}

/// Query of the log endpoint.
#[derive(Debug, Deserialize)]
pub struct LogQuery {
    /// Only requests to this application.
    pub application: Option<i64>,
    /// Only requests about this user (SCIM id here).
    pub user: Option<String>,
    /// At most this many entries (default 100, at most 1000).
    pub limit: Option<i64>,
    /// Only entries older than this entry id: the `next` of the previous
    /// page.
    pub before: Option<i64>,
}

/// `GET /api/v1/provisioning/log?application=&user=&limit=`: the requests
/// sent downstream and their answers, newest first.
pub async fn get_provisioning_log(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let LogQuery {
        application,
        user,
        limit,
        before,
    } = query.into_inner();
    let limit = limit.unwrap_or(100).clamp(1, MAX_PAIRS);
    let entries = admin
        .run(&state, move |st, tenant| {
            // One more than asked: whether another page follows.
            st.storage
                .read_log(tenant, application, user.as_deref(), before, limit + 1)
        })
        .await?;
    let more = entries.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    let items: Vec<Value> = entries
        .iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(render_log_entry)
        .collect();
    let next = if more {
        items.last().and_then(|i| i.get("id")).cloned()
    } else {
        None
    };
    Ok(ok(&json!({
        "totalResults": items.len(),
        "itemsPerPage": items.len(),
        "next": next,
        "items": items,
    })))
}

/// A log entry on the wire (bodies as JSON when they parse).
pub fn render_log_entry(e: &crate::store::LogEntry) -> Value {
    let parse = |s: &Option<String>| {
        s.as_deref()
            .map(|s| serde_json::from_str::<Value>(s).unwrap_or_else(|_| Value::String(s.into())))
    };
    json!({
        "id": e.id,
        "applicationId": e.application_id,
        "resourceType": e.resource_type,
        "resourceId": e.resource_id,
        "method": e.method,
        "url": e.url,
        "request": parse(&e.request_body),
        "status": e.status,
        "response": parse(&e.response_body),
        "error": e.error,
        "at": e.at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "durationMs": e.duration_ms,
    })
}

/// Query of the dead-letter list.
#[derive(Debug, Deserialize)]
pub struct DeadLetterQuery {
    /// The application (required).
    pub application: i64,
}

/// `GET /api/v1/provisioning/dead-letters?application=`: the pairs that
/// failed too often and wait for a replay.
pub async fn list_dead_letters(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<DeadLetterQuery>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = query.into_inner().application;
    let pairs = admin
        .run(&state, move |st, tenant| {
            if st.storage.get_application(tenant, id)?.is_none() {
                return Err(not_found(id));
            }
            st.storage
                .pairs(tenant, id, Some(PairStatus::Dead), MAX_PAIRS)
        })
        .await?;
    Ok(items(&pairs, render_pair))
}

/// Body of a replay.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReplayInput {
    application_id: i64,
    #[serde(default)]
    resource_id: Option<String>,
}

/// `POST /api/v1/provisioning/dead-letters/replay` with `{"applicationId":
/// 1}` (every dead pair of the application) or also `"resourceId"`: puts
/// them back in the queue. Answers `{"replayed": n}`.
pub async fn replay_dead_letters(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let input: ReplayInput = serde_json::from_value(body.into_inner()).map_err(|e| {
        crate::error::Error::from(scim_core::Error::invalid_value(format!(
            "invalid replay: {e}"
        )))
    })?;
    let replayed = admin
        .run(&state, move |st, tenant| {
            let id = input.application_id;
            if st.storage.get_application(tenant, id)?.is_none() {
                return Err(not_found(id));
            }
            st.storage
                .replay_dead(tenant, id, input.resource_id.as_deref())
        })
        .await?;
    Ok(ok(&json!({"replayed": replayed})))
}

/// `GET /api/v1/applications/{id}/plan`: the dry run. What the engine would
/// send for every pair of the application now (create, change, deactivate,
/// delete), computed like the engine does, without sending anything.
pub async fn get_plan(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    use scim_client::plan::Plan;
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    let pairs = admin
        .run(&state, move |st, tenant| {
            if st.storage.get_application(tenant, id)?.is_none() {
                return Err(not_found(id));
            }
            st.storage.pair_inputs(tenant, id)
        })
        .await?;
    let mut out: Map<String, Value> = ["create", "change", "deactivate", "delete"]
        .into_iter()
        .map(|k| (k.to_owned(), json!([])))
        .collect();
    let mut unchanged = 0;
    for pair in &pairs {
        let endpoint = if pair.state.resource_type == "Group" {
            "/Groups"
        } else {
            "/Users"
        };
        let planned = crate::provision::plan_pair(pair);
        let bucket = match &planned.plan {
            Plan::Nothing => {
                unchanged += 1;
                continue;
            }
            Plan::Create(_) => "create",
            Plan::Patch(_) | Plan::Replace(_) => "change",
            Plan::Deactivate => "deactivate",
            Plan::Delete => "delete",
        };
        let (method, path, body) =
            crate::provision::describe_at(endpoint, &planned.plan, pair.state.remote_id.as_deref());
        if let Some(Value::Array(items)) = out.get_mut(bucket) {
            items.push(json!({
                "resourceType": pair.state.resource_type,
                "resourceId": pair.state.resource_id,
                "remoteId": pair.state.remote_id,
                "method": method,
                "path": path,
                "body": body,
            }));
        }
    }
    out.insert("unchanged".into(), json!(unchanged));
    out.insert("applicationId".into(), json!(id));
    Ok(ok(&Value::Object(out)))
}

/// `POST /api/v1/applications/{id}/provision/{userId}`: provisions one
/// user now, synchronously, whatever the queue holds; answers the outcome
/// and the request sent with its answer (from the provisioning log).
pub async fn provision_user(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<(i64, String)>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let (id, user_id) = path.into_inner();
    let key = state
        .settings
        .secret_key
        .as_deref()
        .map(crate::secrets::SecretKey::from_base64)
        .transpose()?;
    let options = crate::provision::EngineOptions {
        owner: format!("on-demand-{}", std::process::id()),
        outbound: std::sync::Arc::new(state.settings.outbound_policy()?),
        ..crate::provision::EngineOptions::default()
    };
    let lease = options.lease;
    let owner = options.owner.clone();
    let engine = crate::provision::Engine::new(state.storage.clone(), key, options);
    let uid = user_id.clone();
    let claimed = admin
        .run(&state, move |st, tenant| {
            st.storage.claim_one(tenant, id, &uid, &owner, lease)
        })
        .await?;
    let before = claimed.state.updated;
    let outcome = engine.work_one(claimed).await?;
    let uid = user_id.clone();
    // Every exchange of this attempt (create, retries, verification read).
    let sent = admin
        .run(&state, move |st, tenant| {
            st.storage.read_log(tenant, Some(id), Some(&uid), None, 20)
        })
        .await?;
    let mut sent: Vec<Value> = sent
        .iter()
        .filter(|e| e.at >= before)
        .map(render_log_entry)
        .collect();
    sent.reverse();
    Ok(ok(&json!({
        "applicationId": id,
        "resourceId": user_id,
        "status": outcome.status.as_str(),
        "remoteId": outcome.remote_id,
        "lastError": outcome.last_error,
        "sent": sent,
    })))
}
