//! `/api/v1/playbooks`: named bundles of actions (assign applications, add
//! to local groups, set attributes, remove access), their runs on chosen
//! users and previews. Needs the `admin` scope.
//!
//! ```json
//! {"name": "Marketing Manager", "description": "...",
//!  "actions": [{"type": "assignApplication", "application": "Slack", "role": "member"},
//!              {"type": "addToGroup", "group": "Marketing"},
//!              {"type": "setAttributes", "attributes": {"userType": "Employee"}},
//!              {"type": "removeAccess", "application": "Contractor Portal"}]}
//! ```

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::admin::{Admin, created, items, no_content, ok};
use super::auth::Auth;
use crate::error::{Error, Result};
use crate::lifecycle::{Impact, Lifecycle, RunOptions, playbook};
use crate::store::lifecycle::{Playbook, PlaybookFields, PlaybookRun};
use crate::store::{Storage, TenantId};

fn invalid(detail: String) -> Error {
    scim_core::Error::invalid_value(detail).into()
}

/// A playbook as written.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PlaybookInput {
    name: String,
    #[serde(default)]
    description: Option<String>,
    actions: Value,
}

/// A run request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RunInput {
    /// SCIM ids of the users.
    users: Vec<String>,
    #[serde(default)]
    valid_until: Option<DateTime<Utc>>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    confirm: bool,
}

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The playbook as the API shows it.
pub fn render(p: &Playbook) -> Value {
    let Playbook {
        id,
        fields,
        created,
        updated,
    } = p;
    let PlaybookFields {
        name,
        description,
        actions,
    } = fields;
    json!({"id": id, "name": name, "description": description, "actions": actions,
           "created": time(created), "updated": time(updated)})
}

/// The run as the API shows it.
pub fn render_run(r: &PlaybookRun) -> Value {
    let PlaybookRun {
        id,
        playbook_id,
        source,
        cause_seq,
        actor,
        results,
        at,
    } = r;
    json!({"id": id, "playbookId": playbook_id, "source": source, "causeChangeSeq": cause_seq,
           "actor": actor, "results": results, "at": time(at)})
}

/// Application names by id (for impact reports).
pub fn app_names(storage: &dyn Storage, tenant: TenantId) -> Result<HashMap<i64, String>> {
    Ok(storage
        .list_applications(tenant)?
        .into_iter()
        .map(|a| (a.id, a.fields.name))
        .collect())
}

/// The blast-radius check: a 409 naming each application over the
/// threshold, unless confirmed.
pub fn check_blast_radius(
    storage: &dyn Storage,
    tenant: TenantId,
    impact: &Impact,
    max_percent: f64,
    confirm: bool,
) -> Result<()> {
    if confirm {
        return Ok(());
    }
    let accounts = storage.assigned_counts(tenant)?;
    let over = impact.over_threshold(&accounts, max_percent);
    if over.is_empty() {
        return Ok(());
    }
    let names = app_names(storage, tenant)?;
    let list: Vec<String> = over
        .iter()
        .map(|(app, deact, total)| {
            format!(
                "'{}' would lose {deact} of {total} accounts",
                names.get(app).cloned().unwrap_or_else(|| app.to_string())
            )
        })
        .collect();
    Err(scim_core::Error::new(
        scim_core::ErrorKind::Conflict,
        format!(
            "blast radius over {max_percent}% (--max-deactivation-percent): {}; preview it, then repeat with \"confirm\": true",
            list.join(", ")
        ),
    )
    .into())
}

fn fields(state: &AppState, tenant: TenantId, body: Value) -> Result<PlaybookFields> {
    let input: PlaybookInput =
        serde_json::from_value(body).map_err(|e| invalid(format!("invalid playbook: {e}")))?;
    if input.name.trim().is_empty() {
        return Err(invalid("a playbook needs a 'name'".into()));
    }
    // Names are unique per tenant (an indexed column): bounded like keys.
    if input.name.len() > scim_core::input::MAX_KEY_BYTES {
        return Err(invalid(format!(
            "'name' is {} bytes long; the limit is {}",
            input.name.len(),
            scim_core::input::MAX_KEY_BYTES
        )));
    }
    let users = super::resources::resource_schema(state, "User")?;
    let actions = playbook::resolve(&state.storage, tenant, &users, &input.actions)?;
    Ok(PlaybookFields {
        name: input.name,
        description: input.description,
        actions: serde_json::to_value(actions)
            .map_err(|e| Error::internal(format!("actions: {e}")))?,
    })
}

/// `GET /api/v1/playbooks`.
pub async fn list_playbooks(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let playbooks = admin
        .run(&state, |st, tenant| st.storage.list_playbooks(tenant))
        .await?;
    Ok(items(&playbooks, render))
}

/// `POST /api/v1/playbooks`.
pub async fn create_playbook(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let pb = admin
        .run_audited(&state, move |st, tenant| {
            let f = fields(st, tenant, body.into_inner())?;
            st.storage.create_playbook(tenant, &f)
        })
        .await?;
    Ok(created(&render(&pb)))
}

/// `GET /api/v1/playbooks/{id}`.
pub async fn get_playbook(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    let pb = admin
        .run(&state, move |st, tenant| {
            st.storage.get_playbook(tenant, id)
        })
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(ok(&render(&pb)))
}

fn not_found(id: i64) -> Error {
    scim_core::Error::not_found(format!("no playbook with id {id}")).into()
}

/// `PUT /api/v1/playbooks/{id}`: replaces the playbook.
pub async fn replace_playbook(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    let pb = admin
        .run_audited(&state, move |st, tenant| {
            let f = fields(st, tenant, body.into_inner())?;
            st.storage.update_playbook(tenant, id, &f)
        })
        .await?;
    Ok(ok(&render(&pb)))
}

/// `DELETE /api/v1/playbooks/{id}` (409 while a rule uses it).
pub async fn delete_playbook(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    admin
        .run_audited(&state, move |st, tenant| {
            st.storage.delete_playbook(tenant, id)
        })
        .await?;
    Ok(no_content())
}

fn run_input(body: Value) -> Result<RunInput> {
    let input: RunInput =
        serde_json::from_value(body).map_err(|e| invalid(format!("invalid run: {e}")))?;
    if input.users.is_empty() {
        return Err(invalid("'users' must name at least one user".into()));
    }
    if input.users.len() > 1000 {
        return Err(invalid("a run takes at most 1000 users".into()));
    }
    if let Some(until) = input.valid_until
        && until <= Utc::now()
    {
        return Err(invalid("validUntil must be in the future".into()));
    }
    Ok(input)
}

/// `POST /api/v1/playbooks/{id}/runs`: runs the playbook now on the users;
/// answers the run with per-user, per-action results. Refused (409) when
/// its blast radius is over the threshold, unless `"confirm": true`.
pub async fn run_playbook(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let token = admin.token;
    let id = id.into_inner();
    let run = admin
        .run_audited(&state, move |st, tenant| {
            let input = run_input(body.into_inner())?;
            let lc = Lifecycle::new(st.storage.clone(), st.registry.clone());
            let mut options = RunOptions {
                valid_until: input.valid_until,
                reason: input.reason.clone(),
                dry_run: true,
            };
            let (_, impact) = lc.run_playbook(tenant, id, &input.users, &options, Some(token))?;
            check_blast_radius(
                &*st.storage,
                tenant,
                &impact,
                st.settings.max_deactivation_percent,
                input.confirm,
            )?;
            options.dry_run = false;
            let (results, impact) =
                lc.run_playbook(tenant, id, &input.users, &options, Some(token))?;
            let names = app_names(&*st.storage, tenant)?;
            let run = st
                .storage
                .insert_run(tenant, id, "manual", Some(token), &json!(results))?;
            let mut body = render_run(&run);
            body["impact"] = impact.to_json(&names);
            Ok(body)
        })
        .await?;
    Ok(created(&run))
}

/// `POST /api/v1/playbooks/{id}/preview`: what a run on the users would do.
pub async fn preview_playbook(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    let out = admin
        .run(&state, move |st, tenant| {
            let input = run_input(body.into_inner())?;
            let lc = Lifecycle::new(st.storage.clone(), st.registry.clone());
            let options = RunOptions {
                valid_until: input.valid_until,
                reason: input.reason,
                dry_run: true,
            };
            let (results, impact) = lc.run_playbook(tenant, id, &input.users, &options, None)?;
            let names = app_names(&*st.storage, tenant)?;
            let accounts = st.storage.assigned_counts(tenant)?;
            let over = impact.over_threshold(&accounts, st.settings.max_deactivation_percent);
            Ok(json!({"results": results, "impact": impact.to_json(&names),
                      "blastRadiusExceeded": !over.is_empty()}))
        })
        .await?;
    Ok(ok(&out))
}

/// `GET /api/v1/playbooks/{id}/runs`: newest first.
pub async fn list_runs(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    let runs = admin
        .run(&state, move |st, tenant| {
            st.storage
                .get_playbook(tenant, id)?
                .ok_or_else(|| not_found(id))?;
            st.storage.list_playbook_runs(tenant, id, 100)
        })
        .await?;
    Ok(items(&runs, render_run))
}

/// `GET /api/v1/runs/{id}`.
pub async fn get_run(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    let run = admin
        .run(&state, move |st, tenant| {
            st.storage.get_playbook_run(tenant, id)
        })
        .await?
        .ok_or_else(|| Error::from(scim_core::Error::not_found(format!("no run with id {id}"))))?;
    Ok(ok(&render_run(&run)))
}
