//! `/api/v1/assignments`: which users and groups go to which application.
//! A group assignment covers the group's direct members. Creating or
//! deleting an assignment marks the affected pairs due for the engine in the
//! same transaction. Needs the `admin` scope.
//!
//! ```json
//! {"id": 7, "applicationId": 1, "resourceType": "User", "resourceId": "2819c223-...",
//!  "source": "manual", "validFrom": null, "validUntil": null, "created": "..."}
//! ```

use actix_web::{HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::admin::{Admin, created, items, no_content};
use super::auth::Auth;
use crate::error::{Error, Result};
use crate::store::{Assignment, AssignmentFilter};

/// A create body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AssignmentInput {
    application_id: i64,
    /// The SCIM id of a User or a Group.
    resource_id: String,
    #[serde(default)]
    valid_from: Option<DateTime<Utc>>,
    #[serde(default)]
    valid_until: Option<DateTime<Utc>>,
    /// Why (temporary access).
    #[serde(default)]
    reason: Option<String>,
    /// Who granted it (default: the token, `token:<id>`).
    #[serde(default)]
    granted_by: Option<String>,
}

/// `GET /api/v1/assignments` query.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Only this application's assignments.
    pub application: Option<i64>,
    /// Only those of this user (SCIM id).
    pub user: Option<String>,
    /// Only those of this group (SCIM id).
    pub group: Option<String>,
}

fn time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(SecondsFormat::Secs, true))
    })
}

/// The assignment as the API shows it.
pub fn render(a: &Assignment) -> Value {
    let Assignment {
        id,
        application_id,
        resource_type,
        resource_id,
        source,
        valid_from,
        valid_until,
        created,
    } = a;
    json!({
        "id": id,
        "applicationId": application_id,
        "resourceType": resource_type,
        "resourceId": resource_id,
        "source": source,
        "validFrom": time(*valid_from),
        "validUntil": time(*valid_until),
        "created": time(Some(*created)),
    })
}

/// `POST /api/v1/assignments`.
pub async fn create_assignment(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let input: AssignmentInput = serde_json::from_value(body.into_inner()).map_err(|e| {
        Error::from(scim_core::Error::invalid_value(format!(
            "invalid assignment: {e}"
        )))
    })?;
    if let (Some(from), Some(until)) = (input.valid_from, input.valid_until)
        && until <= from
    {
        return Err(scim_core::Error::invalid_value("validUntil must be after validFrom").into());
    }
    let granted_by = input
        .granted_by
        .clone()
        .unwrap_or_else(|| format!("token:{}", admin.token));
    let reason = input.reason.clone();
    let (by, why) = (granted_by.clone(), reason.clone());
    let assignment = admin
        .run_audited(&state, move |st, tenant| {
            st.storage.create_assignment_with(
                tenant,
                input.application_id,
                &input.resource_id,
                input.valid_from,
                input.valid_until,
                why.as_deref(),
                Some(&by),
            )
        })
        .await?;
    let mut body = render(&assignment);
    body["reason"] = json!(reason);
    body["grantedBy"] = json!(granted_by);
    Ok(created(&body))
}

/// `GET /api/v1/assignments?application=&user=&group=`.
pub async fn list_assignments(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let ListQuery {
        application,
        user,
        group,
    } = query.into_inner();
    let filter = AssignmentFilter {
        application_id: application,
        resource_id: user.or(group),
    };
    let assignments = admin
        .run(&state, move |st, tenant| {
            st.storage.list_assignments(tenant, &filter)
        })
        .await?;
    Ok(items(&assignments, render))
}

/// `DELETE /api/v1/assignments/{id}`: the user (or the group's members)
/// will be deprovisioned from the application per its policy, unless
/// another assignment still covers them.
pub async fn delete_assignment(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    admin
        .run_audited(&state, move |st, tenant| {
            st.storage.delete_assignment(tenant, id)
        })
        .await?;
    Ok(no_content())
}
