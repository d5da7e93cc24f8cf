//! `/api/v1/rules`: a condition in SCIM filter syntax over the user
//! (extension attributes included), an event (`joiner`, `mover`,
//! `leaver`) and the playbooks to apply; previews of their effect. Saving
//! or deleting a rule marks every user due, so the rules are applied to
//! everyone; a change whose blast radius is over the threshold is refused
//! (409) unless `"confirm": true` (`?confirm=true` on DELETE). Needs the
//! `admin` scope.
//!
//! ```json
//! {"name": "marketing managers", "event": "joiner",
//!  "filter": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq \"Marketing\" and title eq \"Manager\"",
//!  "playbooks": ["Marketing Manager"], "enabled": true}
//! ```

use actix_web::{HttpResponse, web};
use chrono::{SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::admin::{Admin, created, items, no_content, ok};
use super::auth::Auth;
use super::playbooks::{app_names, check_blast_radius};
use crate::error::{Error, Result};
use crate::lifecycle::Lifecycle;
use crate::store::TenantId;
use crate::store::lifecycle::{Rule, RuleFields};

/// Users a preview looks at, at most.
const PREVIEW_MAX_USERS: usize = 100_000;

fn invalid(detail: String) -> Error {
    scim_core::Error::invalid_value(detail).into()
}

/// A rule as written.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RuleInput {
    /// Previews only: the saved rule this one would replace.
    #[serde(default)]
    id: Option<i64>,
    name: String,
    event: String,
    filter: String,
    /// Playbook ids or names.
    #[serde(default)]
    playbooks: Vec<Value>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    revoke_after_seconds: Option<i64>,
    #[serde(default)]
    confirm: bool,
}

fn yes() -> bool {
    true
}

/// `DELETE` query.
#[derive(Debug, Deserialize)]
pub struct DeleteQuery {
    /// Accept a blast radius over the threshold.
    #[serde(default)]
    pub confirm: bool,
}

/// The rule as the API shows it.
pub fn render(r: &Rule) -> Value {
    let Rule {
        id,
        fields,
        created,
        updated,
    } = r;
    let RuleFields {
        name,
        event,
        filter,
        playbooks,
        enabled,
        revoke_after_seconds,
    } = fields;
    json!({"id": id, "name": name, "event": event, "filter": filter, "playbooks": playbooks,
           "enabled": enabled, "revokeAfterSeconds": revoke_after_seconds,
           "created": created.to_rfc3339_opts(SecondsFormat::Secs, true),
           "updated": updated.to_rfc3339_opts(SecondsFormat::Secs, true)})
}

/// Reads and checks a rule: the event, the filter (a bad one is 400
/// `invalidFilter`), the playbooks (by id or name).
fn read(state: &AppState, tenant: TenantId, body: Value) -> Result<(RuleInput, RuleFields)> {
    let input: RuleInput =
        serde_json::from_value(body).map_err(|e| invalid(format!("invalid rule: {e}")))?;
    if input.name.trim().is_empty() {
        return Err(invalid("a rule needs a 'name'".into()));
    }
    // Names are unique per tenant (an indexed column): bounded like keys.
    if input.name.len() > scim_core::input::MAX_KEY_BYTES {
        return Err(invalid(format!(
            "'name' is {} bytes long; the limit is {}",
            input.name.len(),
            scim_core::input::MAX_KEY_BYTES
        )));
    }
    if !["joiner", "mover", "leaver"].contains(&input.event.as_str()) {
        return Err(invalid(format!(
            "'event' must be joiner, mover or leaver, not '{}'",
            input.event
        )));
    }
    if input.revoke_after_seconds.is_some() && input.event != "leaver" {
        return Err(invalid(
            "'revokeAfterSeconds' applies to leaver rules only".into(),
        ));
    }
    if input.revoke_after_seconds.is_some_and(|s| s <= 0) {
        return Err(invalid("'revokeAfterSeconds' must be positive".into()));
    }
    Lifecycle::new(state.storage.clone(), state.registry.clone()).parse_filter(&input.filter)?;
    let all = state.storage.list_playbooks(tenant)?;
    let mut ids = Vec::new();
    for p in &input.playbooks {
        let found = match p {
            Value::Number(n) => all.iter().find(|pb| Some(pb.id) == n.as_i64()),
            Value::String(s) => all.iter().find(|pb| pb.fields.name == *s),
            _ => None,
        };
        let pb = found.ok_or_else(|| invalid(format!("no playbook {p}")))?;
        ids.push(pb.id);
    }
    let fields = RuleFields {
        name: input.name.clone(),
        event: input.event.clone(),
        filter: input.filter.clone(),
        playbooks: ids,
        enabled: input.enabled,
        revoke_after_seconds: input.revoke_after_seconds,
    };
    Ok((input, fields))
}

/// Previews replacing rule `id` (None: adding) with `fields` (None:
/// removing); answers the preview document.
fn preview(
    state: &AppState,
    tenant: TenantId,
    id: Option<i64>,
    fields: Option<RuleFields>,
) -> Result<(crate::lifecycle::Impact, Value)> {
    let lc = Lifecycle::new(state.storage.clone(), state.registry.clone());
    let now = Utc::now();
    let rule = fields.map(|fields| Rule {
        // A rule not saved yet gets an id no saved rule has.
        id: id.unwrap_or(i64::MAX),
        fields,
        created: now,
        updated: now,
    });
    let (impact, changes, seen) = lc.preview_rules(tenant, Some((id, rule)), PREVIEW_MAX_USERS)?;
    let names = app_names(&*state.storage, tenant)?;
    let accounts = state.storage.assigned_counts(tenant)?;
    let over = impact.over_threshold(&accounts, state.settings.max_deactivation_percent);
    let body = json!({"usersExamined": seen, "impact": impact.to_json(&names),
                      "changes": changes, "blastRadiusExceeded": !over.is_empty()});
    Ok((impact, body))
}

/// `GET /api/v1/rules`.
pub async fn list_rules(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let rules = admin
        .run(&state, |st, tenant| st.storage.list_rules(tenant))
        .await?;
    Ok(items(&rules, render))
}

/// `POST /api/v1/rules`.
pub async fn create_rule(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let rule = admin
        .run_audited(&state, move |st, tenant| {
            let (input, fields) = read(st, tenant, body.into_inner())?;
            let (impact, _) = preview(st, tenant, None, Some(fields.clone()))?;
            check_blast_radius(
                &*st.storage,
                tenant,
                &impact,
                st.settings.max_deactivation_percent,
                input.confirm,
            )?;
            st.storage.create_rule(tenant, &fields)
        })
        .await?;
    Ok(created(&render(&rule)))
}

/// `GET /api/v1/rules/{id}`.
pub async fn get_rule(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    let rule = admin
        .run(&state, move |st, tenant| st.storage.get_rule(tenant, id))
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(ok(&render(&rule)))
}

fn not_found(id: i64) -> Error {
    scim_core::Error::not_found(format!("no rule with id {id}")).into()
}

/// `PUT /api/v1/rules/{id}`.
pub async fn replace_rule(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    let rule = admin
        .run_audited(&state, move |st, tenant| {
            st.storage
                .get_rule(tenant, id)?
                .ok_or_else(|| not_found(id))?;
            let (input, fields) = read(st, tenant, body.into_inner())?;
            let (impact, _) = preview(st, tenant, Some(id), Some(fields.clone()))?;
            check_blast_radius(
                &*st.storage,
                tenant,
                &impact,
                st.settings.max_deactivation_percent,
                input.confirm,
            )?;
            st.storage.update_rule(tenant, id, &fields)
        })
        .await?;
    Ok(ok(&render(&rule)))
}

/// `DELETE /api/v1/rules/{id}?confirm=`: what only this rule granted is
/// revoked.
pub async fn delete_rule(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    let confirm = query.confirm;
    admin
        .run_audited(&state, move |st, tenant| {
            st.storage
                .get_rule(tenant, id)?
                .ok_or_else(|| not_found(id))?;
            let (impact, _) = preview(st, tenant, Some(id), None)?;
            check_blast_radius(
                &*st.storage,
                tenant,
                &impact,
                st.settings.max_deactivation_percent,
                confirm,
            )?;
            st.storage.delete_rule(tenant, id)
        })
        .await?;
    Ok(no_content())
}

/// `POST /api/v1/rules/preview`: what saving this rule would do (with
/// `"id"`: replacing that rule): users affected, assignments granted and
/// revoked, accounts created and deactivated per application.
pub async fn preview_rule(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let out = admin
        .run(&state, move |st, tenant| {
            let (input, fields) = read(st, tenant, body.into_inner())?;
            if let Some(id) = input.id {
                st.storage
                    .get_rule(tenant, id)?
                    .ok_or_else(|| not_found(id))?;
            }
            Ok(preview(st, tenant, input.id, Some(fields))?.1)
        })
        .await?;
    Ok(ok(&out))
}
