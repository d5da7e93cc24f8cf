//! Reconciliation over the management API (admin scope):
//!
//! - `POST /api/v1/applications/{id}/reconcile` with an optional body
//!   `{"dryRun": bool, "repair": bool}` runs one now and answers its
//!   counts (a dry run also answers its first findings and stores nothing);
//! - `GET /api/v1/applications/{id}/reconcile/runs` lists the runs;
//! - `GET /api/v1/applications/{id}/reconcile/runs/{runId}?kind=&after=&limit=`
//!   shows one run and a page of its findings;
//! - `GET /api/v1/applications/{id}/orphans?after=&limit=` pages through
//!   the orphans of the latest successful run.

use actix_web::{HttpResponse, web};
use chrono::SecondsFormat;
use serde::Deserialize;
use serde_json::{Value, json};

use super::admin::{Admin, items, ok};
use super::applications::not_found;
use super::auth::Auth;
use super::{AppState, blocking};
use crate::error::Result;
use crate::provision::reconcile::{ReconcileOptions, ReconcileReport};
use crate::store::reconcile::{Finding, ReconcileRun, RunCounts};

/// The most findings or runs one page holds.
const MAX_PAGE: i64 = 1000;

/// The body of a reconcile request.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReconcileInput {
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    repair: bool,
}

fn invalid(detail: impl Into<String>) -> crate::error::Error {
    scim_core::Error::new(scim_core::ErrorKind::InvalidValue, detail.into()).into()
}

fn render_counts(c: &RunCounts) -> Value {
    let RunCounts {
        remote_users,
        remote_groups,
        matched,
        drifted,
        orphans,
        missing,
        repaired,
    } = c;
    json!({
        "remoteUsers": remote_users,
        "remoteGroups": remote_groups,
        "matched": matched,
        "drifted": drifted,
        "orphans": orphans,
        "missing": missing,
        "repaired": repaired,
    })
}

/// A finding on the wire.
pub fn render_finding(f: &Finding) -> Value {
    json!({
        "id": f.id,
        "kind": f.kind,
        "resourceType": f.resource_type,
        "resourceId": f.resource_id,
        "remoteId": f.remote_id,
        "name": f.name,
        "detail": f.detail,
    })
}

/// A run on the wire.
pub fn render_run(r: &ReconcileRun) -> Value {
    json!({
        "id": r.id,
        "applicationId": r.application_id,
        "trigger": r.trigger,
        "repair": r.repair,
        "status": r.status,
        "started": r.started.to_rfc3339_opts(SecondsFormat::Millis, true),
        "finished": r.finished.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
        "counts": render_counts(&r.counts),
        "error": r.error,
    })
}

/// `POST /api/v1/applications/{id}/reconcile`.
pub async fn reconcile_application(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let tenant = Admin::of(&auth)?.tenant;
    let id = id.into_inner();
    let input: ReconcileInput = if body.iter().all(u8::is_ascii_whitespace) {
        ReconcileInput::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| invalid(format!("invalid reconcile request: {e}")))?
    };
    let key = state
        .settings
        .secret_key
        .as_deref()
        .map(crate::secrets::SecretKey::from_base64)
        .transpose()?;
    let engine = crate::provision::Engine::new(
        state.storage.clone(),
        key,
        crate::provision::EngineOptions {
            owner: format!("reconcile-{}", std::process::id()),
            outbound: std::sync::Arc::new(state.settings.outbound_policy()?),
            ..crate::provision::EngineOptions::default()
        },
    );
    let ReconcileReport {
        run_id,
        counts,
        findings,
        error,
    } = engine
        .reconcile(
            tenant,
            id,
            ReconcileOptions {
                repair: input.repair,
                dry_run: input.dry_run,
                trigger: "manual",
            },
        )
        .await?;
    let mut out = json!({
        "applicationId": id,
        "runId": run_id,
        "dryRun": input.dry_run,
        "repair": input.repair && !input.dry_run,
        "status": if error.is_some() { "failed" } else { "succeeded" },
        "counts": render_counts(&counts),
        "error": error,
    });
    if input.dry_run {
        out["findings"] = findings.iter().map(render_finding).collect();
    }
    Ok(ok(&out))
}

/// Query of the run list.
#[derive(Debug, Deserialize)]
pub struct RunsQuery {
    /// At most this many runs (default 50).
    pub limit: Option<i64>,
}

/// `GET /api/v1/applications/{id}/reconcile/runs`: newest first.
pub async fn list_runs(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    query: web::Query<RunsQuery>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let runs = admin
        .run(&state, move |st, tenant| {
            if st.storage.get_application(tenant, id)?.is_none() {
                return Err(not_found(id));
            }
            st.storage.list_runs(tenant, id, limit)
        })
        .await?;
    Ok(items(&runs, render_run))
}

/// Query of a findings page.
#[derive(Debug, Deserialize)]
pub struct FindingsQuery {
    /// `drift`, `orphan` or `missing` (default: all).
    pub kind: Option<String>,
    /// Only findings after this id: the `next` of the previous page.
    pub after: Option<i64>,
    /// At most this many (default 100).
    pub limit: Option<i64>,
}

async fn findings_page(
    state: &web::Data<AppState>,
    run: ReconcileRun,
    kind: Option<String>,
    after: Option<i64>,
    limit: Option<i64>,
) -> Result<HttpResponse> {
    if let Some(k) = kind.as_deref()
        && !matches!(k, "drift" | "orphan" | "missing")
    {
        return Err(invalid("kind must be drift, orphan or missing"));
    }
    let limit = limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let storage = state.storage.clone();
    let run_id = run.id;
    let items =
        blocking(move || storage.findings(run_id, kind.as_deref(), after, limit + 1)).await?;
    let more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    let items: Vec<Value> = items
        .iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(render_finding)
        .collect();
    let next = if more {
        items.last().and_then(|f| f.get("id")).cloned()
    } else {
        None
    };
    Ok(ok(
        &json!({"run": render_run(&run), "itemsPerPage": items.len(), "next": next, "items": items}),
    ))
}

/// `GET /api/v1/applications/{id}/reconcile/runs/{runId}`.
pub async fn get_run(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<(i64, i64)>,
    query: web::Query<FindingsQuery>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let (id, run_id) = path.into_inner();
    let run = admin
        .run(&state, move |st, tenant| {
            st.storage.get_run(tenant, id, run_id)
        })
        .await?
        .ok_or_else(|| {
            crate::error::Error::from(scim_core::Error::not_found(format!(
                "no reconcile run {run_id} of application {id}"
            )))
        })?;
    let FindingsQuery { kind, after, limit } = query.into_inner();
    findings_page(&state, run, kind, after, limit).await
}

/// Query of the orphan list.
#[derive(Debug, Deserialize)]
pub struct OrphansQuery {
    /// Only orphans after this id: the `next` of the previous page.
    pub after: Option<i64>,
    /// At most this many (default 100).
    pub limit: Option<i64>,
}

/// `GET /api/v1/applications/{id}/orphans`: the accounts downstream that
/// the latest successful run could not match.
pub async fn list_orphans(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    query: web::Query<OrphansQuery>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    let run = admin
        .run(&state, move |st, tenant| {
            if st.storage.get_application(tenant, id)?.is_none() {
                return Err(not_found(id));
            }
            st.storage.latest_run(tenant, id)
        })
        .await?;
    let Some(run) = run else {
        return Ok(ok(
            &json!({"run": null, "itemsPerPage": 0, "next": null, "items": []}),
        ));
    };
    let OrphansQuery { after, limit } = query.into_inner();
    findings_page(&state, run, Some("orphan".into()), after, limit).await
}
