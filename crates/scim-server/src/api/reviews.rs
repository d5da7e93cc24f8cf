//! `/api/v1/reviews`: access review campaigns (see
//! [`crate::store::reviews`]).
//!
//! Admin tokens start, list and close campaigns. A campaign's reviewers
//! (`token:<id>`, or `user:<SCIM id>` for tokens bound to that user) see it
//! and decide its items whatever their scopes; when a campaign names no
//! reviewers, admin tokens decide.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use scim_core::ErrorKind;
use serde::Deserialize;
use serde_json::{Value, json};

use super::admin::{Admin, created, items, ok};
use super::auth::Auth;
use super::{AppState, blocking};
use crate::error::{Error, Result};
use crate::store::{Campaign, Decision, NewCampaign, ReviewItem, ReviewScope};
use crate::tokens::Scope;

/// The longest campaign name and comment accepted.
const MAX_TEXT: usize = 4096;

fn invalid(detail: impl Into<String>) -> Error {
    scim_core::Error::invalid_value(detail).into()
}

fn not_found(id: i64) -> Error {
    scim_core::Error::not_found(format!("no review campaign with id {id}")).into()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScopeInput {
    #[serde(rename = "type")]
    kind: String,
    id: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CampaignInput {
    name: String,
    scope: ScopeInput,
    #[serde(default)]
    reviewers: Vec<String>,
    due_at: DateTime<Utc>,
    #[serde(default)]
    default_decision: Option<String>,
}

fn parse_campaign(body: Value) -> Result<NewCampaign> {
    let input: CampaignInput = serde_json::from_value(body)
        .map_err(|e| invalid(format!("invalid review campaign: {e}")))?;
    let CampaignInput {
        name,
        scope,
        reviewers,
        due_at,
        default_decision,
    } = input;
    if name.trim().is_empty() || name.len() > MAX_TEXT {
        return Err(invalid("name must be a non-empty string"));
    }
    let scope = match (scope.kind.as_str(), scope.id) {
        ("application", Some(Value::Number(n))) => ReviewScope::Application(
            n.as_i64()
                .ok_or_else(|| invalid("scope.id must be an application id"))?,
        ),
        ("group", Some(Value::String(id))) if !id.is_empty() => ReviewScope::Group(id),
        ("all", None) => ReviewScope::All,
        ("application", _) => return Err(invalid("scope.id must be an application id")),
        ("group", _) => return Err(invalid("scope.id must be a group's SCIM id")),
        ("all", Some(_)) => return Err(invalid("a scope of type all takes no id")),
        (other, _) => {
            return Err(invalid(format!(
                "scope.type must be application, group or all, not '{other}'"
            )));
        }
    };
    for r in &reviewers {
        let ok = match r.split_once(':') {
            Some(("token", id)) => id.parse::<i64>().is_ok(),
            Some(("user", id)) => !id.is_empty(),
            _ => false,
        };
        if !ok {
            return Err(invalid(format!(
                "reviewer '{r}' must be token:<id> or user:<SCIM id>"
            )));
        }
    }
    if due_at <= Utc::now() {
        return Err(invalid("dueAt must be in the future"));
    }
    let default_decision = match default_decision.as_deref() {
        None => Decision::Keep,
        Some(d) => Decision::parse(d)
            .ok_or_else(|| invalid(format!("defaultDecision must be keep or revoke, not '{d}'")))?,
    };
    Ok(NewCampaign {
        name,
        scope,
        reviewers,
        due_at,
        default_decision,
    })
}

/// Whether the caller may see and decide `campaign`: a listed reviewer
/// (by token, or by the user the token is bound to), or an admin token
/// when no reviewer is listed. Admin tokens may always see it.
async fn reviewer_check(
    state: &web::Data<AppState>,
    auth: &Auth,
    campaign: &Campaign,
    deciding: bool,
) -> Result<()> {
    let admin = auth.principal.scopes.allows(Scope::Admin);
    let reviewers = &campaign.spec.reviewers;
    if admin && (!deciding || reviewers.is_empty()) {
        return Ok(());
    }
    if reviewers.contains(&format!("token:{}", auth.principal.token_id)) {
        return Ok(());
    }
    let storage = state.storage.clone();
    let token = auth.principal.token_id;
    if let Some(user) = blocking(move || storage.token_user(token)).await?
        && reviewers.contains(&format!("user:{user}"))
    {
        return Ok(());
    }
    Err(scim_core::Error::new(
        ErrorKind::Forbidden,
        format!("this token is not a reviewer of campaign {}", campaign.id),
    )
    .into())
}

async fn campaign(state: &web::Data<AppState>, caller: Admin, id: i64) -> Result<Campaign> {
    caller
        .run(state, move |st, tenant| st.storage.get_campaign(tenant, id))
        .await?
        .ok_or_else(|| not_found(id))
}

/// `POST /api/v1/reviews`: starts a campaign; its items are generated now.
pub async fn create_review(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let spec = parse_campaign(body.into_inner())?;
    let actor = admin.actor();
    let campaign = admin
        .run(&state, move |st, tenant| {
            st.storage.create_campaign(tenant, &actor, &spec)
        })
        .await?;
    Ok(created(&campaign.to_json()))
}

/// `GET /api/v1/reviews`: the tenant's campaigns with their progress.
pub async fn list_reviews(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let campaigns = admin
        .run(&state, |st, tenant| st.storage.list_campaigns(tenant))
        .await?;
    Ok(items(&campaigns, Campaign::to_json))
}

/// `GET /api/v1/reviews/{id}`.
pub async fn get_review(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let c = campaign(&state, Admin::unchecked(&auth), id.into_inner()).await?;
    reviewer_check(&state, &auth, &c, false).await?;
    Ok(ok(&c.to_json()))
}

/// The query of the items listing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemsQuery {
    /// Only undecided items.
    #[serde(default)]
    pub pending: bool,
}

/// `GET /api/v1/reviews/{id}/items[?pending=true]`.
pub async fn list_review_items(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    query: web::Query<ItemsQuery>,
) -> Result<HttpResponse> {
    let caller = Admin::unchecked(&auth);
    let c = campaign(&state, caller, id.into_inner()).await?;
    reviewer_check(&state, &auth, &c, false).await?;
    let pending = query.pending;
    let cid = c.id;
    let review_items = caller
        .run(&state, move |st, tenant| {
            st.storage.campaign_items(tenant, cid, pending)
        })
        .await?;
    Ok(items(&review_items, ReviewItem::to_json))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionInput {
    decision: String,
    comment: Option<String>,
}

/// `POST /api/v1/reviews/{id}/items/{item}/decision` with
/// `{"decision": "keep" | "revoke", "comment": "..."}`; a revoke needs a
/// comment and removes the assignment (the engine deprovisions).
pub async fn decide_review_item(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<(i64, i64)>,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let caller = Admin::unchecked(&auth);
    let (id, item) = path.into_inner();
    let input: DecisionInput = serde_json::from_value(body.into_inner())
        .map_err(|e| invalid(format!("invalid decision: {e}")))?;
    let decision = Decision::parse(&input.decision).ok_or_else(|| {
        invalid(format!(
            "decision must be keep or revoke, not '{}'",
            input.decision
        ))
    })?;
    let comment = input
        .comment
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    if comment.as_ref().is_some_and(|c| c.len() > MAX_TEXT) {
        return Err(invalid(format!("comment is longer than {MAX_TEXT} bytes")));
    }
    if decision == Decision::Revoke && comment.is_none() {
        return Err(invalid("a revoke needs a comment saying why"));
    }
    let c = campaign(&state, caller, id).await?;
    reviewer_check(&state, &auth, &c, true).await?;
    let actor = caller.actor();
    let decided = caller
        .run(&state, move |st, tenant| {
            st.storage
                .decide(tenant, &actor, id, item, decision, comment.as_deref())
        })
        .await?;
    Ok(ok(&decided.to_json()))
}

/// `POST /api/v1/reviews/{id}/close`: closes the campaign now; undecided
/// items take its default.
pub async fn close_review(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    let actor = admin.actor();
    let closed = admin
        .run(&state, move |st, tenant| {
            st.storage.close_campaign(tenant, &actor, id)
        })
        .await?;
    Ok(ok(&closed.to_json()))
}

/// The query of the export.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// The CSV columns of an export, in order.
pub const CSV_COLUMNS: [&str; 11] = [
    "itemId",
    "userId",
    "userName",
    "applicationId",
    "applicationName",
    "assignmentId",
    "decision",
    "comment",
    "decidedBy",
    "decidedAt",
    "outcome",
];

fn csv_export(items: &[ReviewItem]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::internal(format!("csv export: {e}"));
    w.write_record(CSV_COLUMNS).map_err(csv_err)?;
    for item in items {
        let j = item.to_json();
        let cell = |k: &str| match &j[k] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let row: Vec<String> = [
            "id",
            "userId",
            "userName",
            "applicationId",
            "applicationName",
            "assignmentId",
            "decision",
            "comment",
            "decidedBy",
            "decidedAt",
            "outcome",
        ]
        .iter()
        .map(|k| cell(k))
        .collect();
        w.write_record(&row).map_err(csv_err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::internal(format!("csv export: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Error::internal(format!("csv export: {e}")))
}

/// `GET /api/v1/reviews/{id}/export?format=json|csv`: progress and every
/// item with its decision.
pub async fn export_review(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse> {
    let caller = Admin::unchecked(&auth);
    let csv = match query.into_inner().format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(invalid(format!(
                "format must be json or csv, not '{other}'"
            )));
        }
    };
    let c = campaign(&state, caller, id.into_inner()).await?;
    reviewer_check(&state, &auth, &c, false).await?;
    let cid = c.id;
    let items = caller
        .run(&state, move |st, tenant| {
            st.storage.campaign_items(tenant, cid, false)
        })
        .await?;
    if csv {
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "content-disposition",
                format!("attachment; filename=\"review-{cid}.csv\""),
            ))
            .body(csv_export(&items)?));
    }
    let items: Vec<Value> = items.iter().map(ReviewItem::to_json).collect();
    Ok(ok(&json!({"campaign": c.to_json(), "items": items})))
}

/// The review scheduler: every `interval`, closes the campaigns past their
/// due date (undecided items take the default). The state is in the
/// database, so a campaign that fell due while no server ran is closed at
/// the first look after a start; replicas may all run it (each campaign
/// is closed under a row lock, once). Runs until the actix system stops.
pub async fn run_scheduler(
    storage: std::sync::Arc<dyn crate::store::Storage>,
    interval: std::time::Duration,
) {
    log::info!("access review scheduler: looking every {interval:?}");
    loop {
        let s = storage.clone();
        match blocking(move || s.close_due(crate::store::now_utc())).await {
            Ok(0) => {}
            Ok(n) => log::info!("closed {n} access review campaign(s) at their due date"),
            Err(e) => log::warn!("access review scheduler: {e}"),
        }
        actix_web::rt::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaigns_are_checked() {
        let due = (Utc::now() + chrono::Duration::days(7)).to_rfc3339();
        let ok = json!({"name": "Q4", "scope": {"type": "application", "id": 1},
                        "reviewers": ["token:3", "user:abc"], "dueAt": due,
                        "defaultDecision": "revoke"});
        let spec = parse_campaign(ok.clone()).unwrap();
        assert_eq!(spec.scope, ReviewScope::Application(1));
        assert_eq!(spec.default_decision, Decision::Revoke);
        for (change, bad) in [
            ("name", json!("")),
            ("scope", json!({"type": "application"})),
            ("scope", json!({"type": "group", "id": 3})),
            ("scope", json!({"type": "all", "id": 3})),
            ("scope", json!({"type": "team"})),
            ("reviewers", json!(["alice"])),
            ("reviewers", json!(["token:x"])),
            ("dueAt", json!("2001-01-01T00:00:00Z")),
            ("dueAt", json!("tomorrow")),
            ("defaultDecision", json!("maybe")),
            ("colour", json!("blue")),
        ] {
            let mut body = ok.clone();
            body[change] = bad.clone();
            assert!(parse_campaign(body).is_err(), "{change}: {bad}");
        }
    }
}
