//! `/api/v1/applications`: the downstream SCIM services users and groups are
//! provisioned to (create, list, get, update, delete). Needs the `admin`
//! scope; the tenant comes from the token. Bodies are `application/json`;
//! errors have the SCIM error shape like everywhere else.
//!
//! An application as served:
//!
//! ```json
//! {
//!   "id": 1,
//!   "name": "wiki",
//!   "baseUrl": "https://wiki.example.com/scim/v2",
//!   "credentials": {"type": "bearer", "set": true},
//!   "mapping": {"userName": "userName", "externalId": "id", "title": {"constant": "Staff"}},
//!   "managedAttributes": ["userName", "externalId", "title"],
//!   "deprovision": {"action": "deactivate"},
//!   "rateLimit": {"requestsPerSecond": 10.0, "maxConcurrency": 4},
//!   "enabled": true,
//!   "quarantine": null,
//!   "created": "2026-11-03T10:00:00Z"
//! }
//! ```
//!
//! On input, `credentials` is `{"type": "bearer", "token": "..."}` or
//! `{"type": "none"}`; the token is sealed with `SCIM_SECRET_KEY` (see
//! [`crate::secrets`]) and never returned. `PATCH` replaces the fields it
//! names and keeps the others (credentials included).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::AppState;
use super::admin::{Admin, created, items, no_content, ok};
use super::auth::Auth;
use crate::error::{Error, Result};
use crate::secrets::SecretKey;
use crate::store::engine_state::GroupDeprovision;
use crate::store::{Application, ApplicationFields};

/// The default mapping: target attribute path -> source attribute path.
pub const DEFAULT_MAPPING: &[(&str, &str)] = &[
    ("userName", "userName"),
    ("name", "name"),
    ("displayName", "displayName"),
    ("emails", "emails"),
    ("active", "active"),
    ("externalId", "id"),
];

/// The longest application name.
const MAX_NAME: usize = 200;

/// What to do downstream when a user is no longer assigned (or deleted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase", deny_unknown_fields)]
pub enum DeprovisionPolicy {
    /// Set `active` to false.
    Deactivate,
    /// Set `active` to false, then delete after `graceSeconds`.
    DeactivateThenDelete {
        /// Seconds between the deactivation and the deletion.
        #[serde(rename = "graceSeconds")]
        grace_seconds: u64,
    },
    /// Delete the account.
    Delete,
}

/// Requests sent to one application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    /// Requests per second at most (token bucket); absent: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<f64>,
    /// Requests in flight at most.
    #[serde(default = "default_concurrency")]
    pub max_concurrency: i32,
}

fn default_concurrency() -> i32 {
    4
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            requests_per_second: None,
            max_concurrency: default_concurrency(),
        }
    }
}

/// Credentials as given on input.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
enum CredentialsInput {
    /// No authentication.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer { token: String },
}

/// A create or update body: every field optional (create needs `name` and
/// `baseUrl`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ApplicationInput {
    name: Option<String>,
    base_url: Option<String>,
    credentials: Option<CredentialsInput>,
    mapping: Option<Map<String, Value>>,
    managed_attributes: Option<Vec<String>>,
    deprovision: Option<DeprovisionPolicy>,
    rate_limit: Option<RateLimit>,
    enabled: Option<bool>,
    /// Seconds between scheduled reconciliations; `null` turns them off.
    #[serde(default, deserialize_with = "present")]
    reconcile_interval: Option<Option<i64>>,
    /// `delete` or `leave`: a pushed group no longer assigned.
    group_deprovision: Option<String>,
}

/// Tells a field given as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn invalid(detail: impl Into<String>) -> Error {
    scim_core::Error::invalid_value(detail).into()
}

/// The mapping as stored when none is given.
pub fn default_mapping() -> Map<String, Value> {
    DEFAULT_MAPPING
        .iter()
        .map(|(t, s)| ((*t).to_owned(), Value::String((*s).to_owned())))
        .collect()
}

/// Checks the shape of an attribute path (`name.givenName`, `emails`,
/// `urn:...:User:department`): the target's schema is not known here.
fn check_path(path: &str) -> std::result::Result<(), String> {
    let ok = !path.is_empty()
        && path.len() <= 300
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '_' | '-' | '$'));
    if ok {
        Ok(())
    } else {
        Err(format!("'{path}' is not an attribute path"))
    }
}

/// Checks a mapping: every value a source path or `{"constant": value}`.
fn check_mapping(mapping: &Map<String, Value>) -> Result<()> {
    if mapping.is_empty() {
        return Err(invalid("mapping: map at least one attribute"));
    }
    for (target, source) in mapping {
        check_path(target).map_err(|e| invalid(format!("mapping: target {e}")))?;
        match source {
            Value::String(path) => {
                check_path(path).map_err(|e| invalid(format!("mapping: source {e}")))?;
            }
            Value::Object(o) if o.len() == 1 && o.contains_key("constant") => {}
            _ => {
                return Err(invalid(format!(
                    "mapping: '{target}' must map to a source path or {{\"constant\": value}}"
                )));
            }
        }
    }
    Ok(())
}

fn check_base_url(state: &AppState, url: &str) -> Result<()> {
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2000 {
        return Err(invalid(
            "baseUrl must be an http:// or https:// URL of at most 2000 bytes",
        ));
    }
    // The outbound policy again at every connection (DNS names are judged
    // by what they resolve to then); here the literal addresses and the
    // listed names, so a refused target is never stored.
    state
        .settings
        .outbound_policy()?
        .check_url(url)
        .map_err(|why| invalid(format!("baseUrl {why}")))
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(invalid(format!(
            "name: 1 to {MAX_NAME} bytes, no control characters"
        )));
    }
    Ok(())
}

/// The key from the settings, or a 400 saying how to set one.
fn secret_key(state: &AppState) -> Result<SecretKey> {
    match &state.settings.secret_key {
        Some(k) => SecretKey::from_base64(k),
        None => Err(invalid(
            "credentials cannot be stored: the server has no SCIM_SECRET_KEY \
             (base64 of 32 random bytes)",
        )),
    }
}

/// What the sealed credential is bound to: moving it to another row makes
/// it unreadable.
pub fn credential_context(tenant: i64, name: &str) -> Vec<u8> {
    format!("{tenant}/{name}").into_bytes()
}

/// Merges `input` over `base` (the stored fields, or the defaults for a
/// create) and checks the result.
fn merge(
    state: &AppState,
    tenant: i64,
    mut base: ApplicationFields,
    old_name: Option<&str>,
    input: ApplicationInput,
) -> Result<ApplicationFields> {
    let ApplicationInput {
        name,
        base_url,
        credentials,
        mapping,
        managed_attributes,
        deprovision,
        rate_limit,
        enabled,
        reconcile_interval,
        group_deprovision,
    } = input;
    if let Some(name) = name {
        check_name(&name)?;
        base.name = name;
    }
    if let Some(url) = base_url {
        check_base_url(state, &url)?;
        base.base_url = url.trim_end_matches('/').to_owned();
    }
    let renamed = old_name.is_some_and(|old| old != base.name);
    match credentials {
        Some(CredentialsInput::None) => {
            base.auth_type = "none".into();
            base.credentials = None;
        }
        Some(CredentialsInput::Bearer { token }) => {
            if token.is_empty() {
                return Err(invalid("credentials.token must not be empty"));
            }
            let key = secret_key(state)?;
            base.auth_type = "bearer".into();
            base.credentials =
                Some(key.seal(token.as_bytes(), &credential_context(tenant, &base.name))?);
        }
        None if renamed && base.credentials.is_some() => {
            // The sealed value is bound to the name: reseal it.
            let key = secret_key(state)?;
            let old = old_name.unwrap_or_default();
            let sealed = base.credentials.take().unwrap_or_default();
            let plain = key.open(&sealed, &credential_context(tenant, old))?;
            base.credentials = Some(key.seal(&plain, &credential_context(tenant, &base.name))?);
        }
        None => {}
    }
    let mapping_given = mapping.is_some();
    if let Some(mapping) = mapping {
        check_mapping(&mapping)?;
        base.mapping = Value::Object(mapping).to_string();
    }
    match managed_attributes {
        Some(attrs) => {
            for a in &attrs {
                check_path(a).map_err(|e| invalid(format!("managedAttributes: {e}")))?;
            }
            base.managed_attributes = json!(attrs).to_string();
        }
        None if mapping_given => {
            // Follow the mapping: manage what is mapped.
            let mapping: Map<String, Value> =
                serde_json::from_str(&base.mapping).unwrap_or_default();
            base.managed_attributes = json!(mapping.keys().collect::<Vec<_>>()).to_string();
        }
        None => {}
    }
    if let Some(policy) = deprovision {
        base.deprovision = json!(policy).to_string();
    }
    if let Some(limit) = rate_limit {
        if limit
            .requests_per_second
            .is_some_and(|r| !r.is_finite() || r <= 0.0)
        {
            return Err(invalid("rateLimit.requestsPerSecond must be positive"));
        }
        if !(1..=1000).contains(&limit.max_concurrency) {
            return Err(invalid("rateLimit.maxConcurrency must be 1 to 1000"));
        }
        base.rate_per_second = limit.requests_per_second;
        base.max_concurrency = limit.max_concurrency;
    }
    if let Some(enabled) = enabled {
        base.enabled = enabled;
    }
    if let Some(interval) = reconcile_interval {
        if interval.is_some_and(|s| !(60..=31_536_000).contains(&s)) {
            return Err(invalid(
                "reconcileInterval must be 60 to 31536000 seconds, or null",
            ));
        }
        base.reconcile_interval_seconds = interval;
    }
    if let Some(policy) = group_deprovision {
        base.group_deprovision = GroupDeprovision::parse(&policy)
            .ok_or_else(|| invalid("groupDeprovision must be \"delete\" or \"leave\""))?;
    }
    Ok(base)
}

fn defaults() -> ApplicationFields {
    let mapping = default_mapping();
    ApplicationFields {
        name: String::new(),
        base_url: String::new(),
        auth_type: "none".into(),
        credentials: None,
        managed_attributes: json!(mapping.keys().collect::<Vec<_>>()).to_string(),
        mapping: Value::Object(mapping).to_string(),
        deprovision: json!(DeprovisionPolicy::Deactivate).to_string(),
        rate_per_second: None,
        max_concurrency: default_concurrency(),
        enabled: true,
        reconcile_interval_seconds: None,
        group_deprovision: GroupDeprovision::Delete,
    }
}

fn parse_input(body: Value) -> Result<ApplicationInput> {
    serde_json::from_value(body).map_err(|e| invalid(format!("invalid application: {e}")))
}

/// The application as the API shows it: never the credentials.
pub fn render(app: &Application) -> Value {
    let Application {
        id,
        tenant_id: _,
        fields,
        quarantined_until,
        quarantine_reason,
        consecutive_failures,
        created,
        last_reconciled,
    } = app;
    let ApplicationFields {
        name,
        base_url,
        auth_type,
        credentials,
        mapping,
        managed_attributes,
        deprovision,
        rate_per_second,
        max_concurrency,
        enabled,
        reconcile_interval_seconds,
        group_deprovision,
    } = fields;
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
    let quarantine = match quarantined_until {
        Some(until) => json!({
            "until": until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "reason": quarantine_reason,
            "consecutiveFailures": consecutive_failures,
        }),
        None => Value::Null,
    };
    json!({
        "id": id,
        "name": name,
        "baseUrl": base_url,
        "credentials": {"type": auth_type, "set": credentials.is_some()},
        "mapping": parse(mapping),
        "managedAttributes": parse(managed_attributes),
        "deprovision": parse(deprovision),
        "rateLimit": RateLimit {
            requests_per_second: *rate_per_second,
            max_concurrency: *max_concurrency,
        },
        "enabled": enabled,
        "reconcileInterval": reconcile_interval_seconds,
        "lastReconciled": last_reconciled
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        "groupDeprovision": group_deprovision.as_str(),
        "quarantine": quarantine,
        "created": created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

/// The 404 for an unknown application id.
pub fn not_found(id: i64) -> Error {
    scim_core::Error::not_found(format!("no application with id {id}")).into()
}

/// `GET /api/v1/applications`.
pub async fn list_applications(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let apps = admin
        .run(&state, |st, tenant| st.storage.list_applications(tenant))
        .await?;
    Ok(items(&apps, render))
}

/// `POST /api/v1/applications`.
pub async fn create_application(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let input = parse_input(body.into_inner())?;
    if input.name.is_none() || input.base_url.is_none() {
        return Err(invalid("an application needs a name and a baseUrl"));
    }
    let fields = merge(&state, admin.tenant.0, defaults(), None, input)?;
    let app = admin
        .run_audited(&state, move |st, tenant| {
            st.storage.create_application(tenant, &fields)
        })
        .await?;
    Ok(created(&render(&app)))
}

/// `GET /api/v1/applications/{id}`.
pub async fn get_application(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    let app = admin
        .run(&state, move |st, tenant| {
            st.storage.get_application(tenant, id)
        })
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(ok(&render(&app)))
}

/// `PATCH /api/v1/applications/{id}`: the fields given replace the stored
/// ones. Every pair of the application becomes due (the mapping or the
/// target may have changed).
pub async fn update_application(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    let input = parse_input(body.into_inner())?;
    let current = admin
        .run(&state, move |st, tenant| {
            st.storage.get_application(tenant, id)
        })
        .await?
        .ok_or_else(|| not_found(id))?;
    let old_name = current.fields.name.clone();
    let fields = merge(
        &state,
        admin.tenant.0,
        current.fields,
        Some(&old_name),
        input,
    )?;
    let app = admin
        .run_audited(&state, move |st, tenant| {
            st.storage.update_application(tenant, id, &fields)
        })
        .await?;
    Ok(ok(&render(&app)))
}

/// `DELETE /api/v1/applications/{id}`: the application, its assignments,
/// provisioning state and log. Nothing is sent downstream.
pub async fn delete_application(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse> {
    let admin = Admin::of(&auth)?;
    let id = id.into_inner();
    admin
        .run_audited(&state, move |st, tenant| {
            st.storage.delete_application(tenant, id)
        })
        .await?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_take_paths_or_constants() {
        assert!(check_mapping(&default_mapping()).is_ok());
        let m = json!({"title": {"constant": "Staff"}, "name.givenName": "name.givenName"});
        assert!(check_mapping(m.as_object().unwrap()).is_ok());
        for bad in [json!({}), json!({"title": 3}), json!({"title": {"x": 1}})] {
            assert!(check_mapping(bad.as_object().unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn deprovision_policies_round_trip() {
        for (policy, text) in [
            (DeprovisionPolicy::Deactivate, r#"{"action":"deactivate"}"#),
            (DeprovisionPolicy::Delete, r#"{"action":"delete"}"#),
            (
                DeprovisionPolicy::DeactivateThenDelete { grace_seconds: 60 },
                r#"{"action":"deactivateThenDelete","graceSeconds":60}"#,
            ),
        ] {
            assert_eq!(serde_json::to_string(&policy).unwrap(), text);
            assert_eq!(
                serde_json::from_str::<DeprovisionPolicy>(text).unwrap(),
                policy
            );
        }
        assert!(serde_json::from_str::<DeprovisionPolicy>(r#"{"action":"wipe"}"#).is_err());
    }
}
