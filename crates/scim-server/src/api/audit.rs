//! `/api/v1/audit`: query, export (JSON lines) and verify the tenant's
//! hash-chained audit log (see [`crate::store::audit`]). Needs the `admin`
//! scope.

use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::admin::{Admin, ok};
use super::auth::Auth;
use super::{AppState, blocking};
use crate::error::{Error, Result};
use crate::store::audit::MAX_PAGE;
use crate::store::{AuditQuery, HeadRef, TenantId};

/// The query string of `GET /api/v1/audit` and `/api/v1/audit/export`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditParams {
    /// Only this actor (`token:3`, `system:engine`).
    pub actor: Option<String>,
    /// Only this action, or a prefix ending in `*` (`user.*`).
    pub action: Option<String>,
    /// Only this target type (`User`, `Assignment`, ...).
    pub target_type: Option<String>,
    /// Only this target id.
    pub target_id: Option<String>,
    /// Only entries concerning this user or group (SCIM id).
    pub subject: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only entries before this time (RFC 3339).
    pub until: Option<String>,
    /// Only entries after this seq (the `next` of the previous page).
    pub after: Option<i64>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<i64>,
}

fn time(name: &str, value: Option<String>) -> Result<Option<DateTime<Utc>>> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(&v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    Error::from(scim_core::Error::invalid_value(format!(
                        "{name} must be an RFC 3339 time such as 2026-11-26T09:00:00Z: {e}"
                    )))
                })
        })
        .transpose()
}

impl AuditParams {
    /// The store query, or 400 for a bad time or limit.
    pub fn into_query(self) -> Result<AuditQuery> {
        let AuditParams {
            actor,
            action,
            target_type,
            target_id,
            subject,
            since,
            until,
            after,
            limit,
        } = self;
        let limit = limit.unwrap_or(100);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(scim_core::Error::invalid_value(format!(
                "limit must be between 1 and {MAX_PAGE}"
            ))
            .into());
        }
        Ok(AuditQuery {
            actor,
            action,
            target_type,
            target_id,
            subject,
            since: time("since", since)?,
            until: time("until", until)?,
            after_seq: after,
            limit,
        })
    }
}

/// `GET /api/v1/audit`: a page of entries by seq, and `next` (the `after`
/// of the next page, null on the last).
pub async fn list_audit(
    state: web::Data<AppState>,
    auth: Auth,
    params: web::Query<AuditParams>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let query = params.into_inner().into_query()?;
    let limit = query.limit;
    let entries = admin
        .run(&state, move |st, tenant| {
            st.storage.query_audit(tenant, &query)
        })
        .await?;
    let next = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    let items: Vec<Value> = entries.iter().map(|e| e.to_json()).collect();
    Ok(ok(&json!({"entries": items, "next": next})))
}

/// `GET /api/v1/audit/export`: every matching entry as JSON lines
/// (`application/x-ndjson`), streamed a page at a time.
pub async fn export_audit(
    state: web::Data<AppState>,
    auth: Auth,
    params: web::Query<AuditParams>,
) -> Result<HttpResponse> {
    let tenant = Admin::of(&auth)?.tenant;
    let mut query = params.into_inner().into_query()?;
    query.limit = MAX_PAGE;
    let state = state.into_inner();
    // State: the query to run next, or None when done.
    let stream = futures::stream::unfold(Some(query), move |next| {
        let state = state.clone();
        async move {
            let query = next?;
            let page = export_page(&state, tenant, query.clone()).await;
            match page {
                Ok((bytes, last)) => {
                    let following = last.map(|seq| AuditQuery {
                        after_seq: Some(seq),
                        ..query
                    });
                    Some((Ok::<Bytes, Error>(bytes), following))
                }
                Err(e) => {
                    log::error!("audit export failed: {e}");
                    Some((Err(e), None))
                }
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(stream))
}

/// One page of the export as bytes, and the last seq when more may follow.
async fn export_page(
    state: &AppState,
    tenant: TenantId,
    query: AuditQuery,
) -> Result<(Bytes, Option<i64>)> {
    let storage = state.storage.clone();
    let limit = query.limit;
    let entries = blocking(move || storage.query_audit(tenant, &query)).await?;
    let mut out = String::new();
    for e in &entries {
        out.push_str(&e.to_json().to_string());
        out.push('\n');
    }
    let last = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok((Bytes::from(out), last))
}

/// The query string of `GET /api/v1/audit/verify`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyParams {
    /// A head kept from an earlier verification (`SEQ:HASH`): the answer
    /// is invalid unless the chain still holds it.
    pub expect_head: Option<String>,
}

/// `GET /api/v1/audit/verify`: walks the chain; `valid`, whether it is
/// keyed, the entries checked, the head, the first bad seq with the
/// reason, the check against `expectHead`, and a signed checkpoint of the
/// head (see [`crate::store::audit_chain`]).
pub async fn verify_audit(
    state: web::Data<AppState>,
    auth: Auth,
    params: web::Query<VerifyParams>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let expect = params
        .into_inner()
        .expect_head
        .as_deref()
        .map(str::parse::<HeadRef>)
        .transpose()?;
    let v = admin
        .run(&state, move |st, tenant| {
            st.storage.verify_audit(tenant, expect.as_ref())
        })
        .await?;
    Ok(ok(&v.to_json()))
}
