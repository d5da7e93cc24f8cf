//! The provisioning engine: workers that claim due (application, resource)
//! pairs, compute what the application should hold from current state,
//! plan the difference with [`scim_client::plan::Planner`] against what was
//! last sent, send it with [`scim_client::ScimClient`], and record the
//! outcome, the remote id and a log entry per request.
//!
//! Level-triggered (see DESIGN.md): a due mark only says "look again";
//! retries after a crash recompute from the current state, and a create
//! that meets an existing account (409) adopts it instead of duplicating it
//! ([`scim_client::ScimClient::create_or_adopt`]).
//!
//! [`Engine::run_once`] works one batch; [`Engine::run`] loops on an
//! interval (started by `serve` when `--provisioning-workers` > 0).

pub mod mapping;

use std::sync::Arc;
use std::time::{Duration, Instant};

use scim_client::plan::{
    Deprovision, Managed, MatchStrategy, Plan, PlanOptions, Planner, TargetCapabilities,
};
use scim_client::retry::RetryPolicy;
use scim_client::{Applied, Auth, Capabilities, ScimClient};
use serde_json::{Map, Value, json};

use crate::api::applications::{DeprovisionPolicy, credential_context};
use crate::error::{Error, Result};
use crate::secrets::SecretKey;
use crate::store::{Application, ClaimedPair, LogEntry, PairOutcome, PairStatus, Storage};

/// How the engine works.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Names this worker in leases.
    pub owner: String,
    /// How long a claim holds before another worker may take the pair.
    pub lease: Duration,
    /// Pairs claimed per batch.
    pub batch: i64,
    /// Failed attempts before a pair goes to the dead-letter list.
    pub max_attempts: i32,
    /// The first retry delay; it doubles per attempt.
    pub backoff_base: Duration,
    /// The longest retry delay.
    pub backoff_cap: Duration,
    /// Time limit of one request.
    pub request_timeout: Duration,
    /// Failed requests in a row after which an application is quarantined.
    pub quarantine_after: i32,
    /// How long the first quarantine lasts; it doubles with each further
    /// failure, up to an hour.
    pub quarantine_base: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            owner: format!("worker-{}", std::process::id()),
            lease: Duration::from_secs(60),
            batch: 50,
            max_attempts: 8,
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(600),
            request_timeout: Duration::from_secs(15),
            quarantine_after: 5,
            quarantine_base: Duration::from_secs(30),
        }
    }
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Pairs claimed.
    pub claimed: usize,
    /// Pairs that needed no request.
    pub unchanged: usize,
    /// Pairs sent successfully.
    pub sent: usize,
    /// Pairs that failed (retried later or dead).
    pub failed: usize,
}

/// The engine over a storage.
pub struct Engine {
    storage: Arc<dyn Storage>,
    key: Option<SecretKey>,
    options: EngineOptions,
    /// What each application's target announced, by (application, base
    /// URL): read once per engine, so a target without PATCH gets PUT.
    discovered: std::sync::Mutex<std::collections::HashMap<(i64, String), Capabilities>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Runs blocking storage work off the async executor.
async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("blocking task failed: {e}")))?
}

/// The outcome of working one pair, before it is recorded.
enum Worked {
    Nothing(PairOutcome),
    Sent(PairOutcome),
    Failed(PairOutcome),
}

impl Engine {
    /// An engine; `key` opens the applications' credentials.
    pub fn new(storage: Arc<dyn Storage>, key: Option<SecretKey>, options: EngineOptions) -> Self {
        Self {
            storage,
            key,
            options,
            discovered: std::sync::Mutex::default(),
        }
    }

    /// The target's capabilities, discovered on first use and remembered;
    /// the client is set to them. A failed discovery keeps the assumed
    /// capabilities for this attempt and is tried again next time.
    async fn capabilities(&self, app: &Application, client: &ScimClient) -> Capabilities {
        let key = (app.id, app.fields.base_url.clone());
        let known = self
            .discovered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        if let Some(c) = known {
            client.set_capabilities(c.clone());
            return c;
        }
        match client.discover().await {
            Ok(d) => {
                self.discovered
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, d.capabilities.clone());
                d.capabilities
            }
            Err(e) => {
                log::info!("application {}: discovery failed: {e}", app.id);
                client.capabilities()
            }
        }
    }

    /// Claims one batch of due pairs and works them. Pairs of one batch are
    /// worked one after the other.
    pub async fn run_once(&self) -> Result<RunReport> {
        let storage = self.storage.clone();
        let (owner, lease, batch) = (
            self.options.owner.clone(),
            self.options.lease,
            self.options.batch,
        );
        let claimed = blocking(move || storage.claim_due(&owner, lease, batch)).await?;
        let mut report = RunReport {
            claimed: claimed.len(),
            ..RunReport::default()
        };
        for pair in claimed {
            let worked = self.work(&pair).await;
            self.count_for_application(&pair, &worked).await?;
            let outcome = match worked {
                Worked::Nothing(o) => {
                    report.unchanged += 1;
                    o
                }
                Worked::Sent(o) => {
                    report.sent += 1;
                    o
                }
                Worked::Failed(o) => {
                    report.failed += 1;
                    o
                }
            };
            let storage = self.storage.clone();
            let owner = self.options.owner.clone();
            let state = pair.state.clone();
            blocking(move || storage.record_outcome(&owner, &state, &outcome)).await?;
        }
        Ok(report)
    }

    /// Runs batches until no pair is due (at most `max_batches`).
    pub async fn drain(&self, max_batches: usize) -> Result<RunReport> {
        let mut total = RunReport::default();
        for _ in 0..max_batches {
            let r = self.run_once().await?;
            total.claimed += r.claimed;
            total.unchanged += r.unchanged;
            total.sent += r.sent;
            total.failed += r.failed;
            if r.claimed == 0 {
                break;
            }
        }
        Ok(total)
    }

    /// Works batches every `interval` until the process ends.
    pub async fn run(self, interval: Duration) {
        loop {
            match self.run_once().await {
                Ok(r) if r.claimed > 0 => log::info!(
                    "provisioning: {} claimed, {} sent, {} unchanged, {} failed",
                    r.claimed,
                    r.sent,
                    r.unchanged,
                    r.failed
                ),
                Ok(_) => tokio::time::sleep(interval).await,
                Err(e) => {
                    log::error!("provisioning worker: {e}");
                    tokio::time::sleep(interval).await;
                }
            }
        }
    }

    fn client(&self, app: &Application) -> Result<ScimClient> {
        let f = &app.fields;
        let mut builder = ScimClient::builder(&f.base_url)
            .timeout(self.options.request_timeout)
            .retry(RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            });
        if let Some(sealed) = &f.credentials {
            let key = self.key.as_ref().ok_or_else(|| {
                Error::Config("the application has credentials but SCIM_SECRET_KEY is unset".into())
            })?;
            let plain = key.open(sealed, &credential_context(app.tenant_id.0, &f.name))?;
            let token = String::from_utf8(plain)
                .map_err(|_| Error::internal("a stored credential is not UTF-8"))?;
            builder = builder.auth(Auth::bearer(token));
        }
        if let Some(rps) = f.rate_per_second {
            builder = builder.rate_limit(rps);
        }
        builder
            .build()
            .map_err(|e| Error::Config(format!("application {}: {e}", app.id)))
    }

    fn backoff(&self, attempts: i32, retry_after: Option<Duration>) -> Duration {
        let exp = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
        let base = self
            .options
            .backoff_base
            .saturating_mul(2u32.saturating_pow(exp.saturating_sub(1)))
            .min(self.options.backoff_cap);
        // Jitter: up to a quarter more, so pairs failing together spread.
        let mut byte = [0u8; 1];
        let jitter = if getrandom::fill(&mut byte).is_ok() {
            base.mul_f64(f64::from(byte[0]) / 1020.0)
        } else {
            Duration::ZERO
        };
        (base + jitter).max(retry_after.unwrap_or_default())
    }

    async fn work(&self, pair: &ClaimedPair) -> Worked {
        let state = &pair.state;
        let keep = PairOutcome {
            remote_id: state.remote_id.clone(),
            last_sent: state.last_sent.clone(),
            last_sent_hash: state.last_sent_hash.clone(),
            status: state.status,
            attempts: state.attempts,
            next_attempt_at: None,
            last_error: state.last_error.clone(),
        };
        if state.resource_type != "User" {
            return Worked::Nothing(PairOutcome {
                last_error: Some("provisioning groups is not implemented yet".into()),
                ..keep
            });
        }
        match self.send(pair).await {
            Ok(Some(outcome)) => Worked::Sent(outcome),
            Ok(None) => Worked::Nothing(PairOutcome {
                status: match (state.status, pair.assigned) {
                    (PairStatus::Pending | PairStatus::Failed, true)
                        if state.remote_id.is_some() =>
                    {
                        PairStatus::Provisioned
                    }
                    (PairStatus::Pending | PairStatus::Failed, false) => PairStatus::Deprovisioned,
                    (s, _) => s,
                },
                attempts: 0,
                last_error: None,
                ..keep
            }),
            Err((e, retry_after)) => {
                let attempts = state.attempts + 1;
                let dead = attempts >= self.options.max_attempts;
                let next = chrono::Utc::now()
                    + chrono::Duration::from_std(self.backoff(attempts, retry_after))
                        .unwrap_or_default();
                Worked::Failed(PairOutcome {
                    status: if dead {
                        PairStatus::Dead
                    } else {
                        PairStatus::Failed
                    },
                    attempts,
                    next_attempt_at: Some(next),
                    last_error: Some(e),
                    ..keep
                })
            }
        }
    }

    /// Feeds an attempt's result to its application's quarantine.
    async fn count_for_application(&self, pair: &ClaimedPair, worked: &Worked) -> Result<()> {
        let (error, failures) = match worked {
            Worked::Nothing(_) => return Ok(()),
            Worked::Sent(_) => (None, 0),
            Worked::Failed(o) => (
                o.last_error.clone(),
                pair.application.consecutive_failures + 1,
            ),
        };
        let over = u32::try_from(failures - self.options.quarantine_after)
            .unwrap_or(0)
            .min(7);
        let delay = self
            .options
            .quarantine_base
            .saturating_mul(2u32.pow(over))
            .min(Duration::from_secs(3600));
        let storage = self.storage.clone();
        let (id, threshold) = (pair.application.id, self.options.quarantine_after);
        blocking(move || storage.record_application_result(id, error.as_deref(), threshold, delay))
            .await
    }

    /// Works one pair claimed with [`crate::store::ProvisioningQueue::claim_one`]
    /// now, records the outcome and returns it (on-demand provisioning).
    pub async fn work_one(&self, pair: ClaimedPair) -> Result<PairOutcome> {
        let outcome = match self.work(&pair).await {
            Worked::Nothing(o) | Worked::Sent(o) | Worked::Failed(o) => o,
        };
        let storage = self.storage.clone();
        let owner = self.options.owner.clone();
        let state = pair.state.clone();
        let recorded = outcome.clone();
        blocking(move || storage.record_outcome(&owner, &state, &recorded)).await?;
        Ok(outcome)
    }

    /// Plans and sends; `Ok(None)` when nothing had to be sent.
    async fn send(
        &self,
        pair: &ClaimedPair,
    ) -> std::result::Result<Option<PairOutcome>, (String, Option<Duration>)> {
        let app = &pair.application;
        let state = &pair.state;
        let fail = |e: Error| (e.to_string(), None);
        if plan_pair(pair).plan.is_nothing() {
            return Ok(None);
        }
        let client = self.client(app).map_err(fail)?;
        let capabilities = self.capabilities(app, &client).await;
        let Planned {
            plan,
            desired,
            remote,
        } = plan_pair_with(pair, TargetCapabilities::from(&capabilities));
        if plan.is_nothing() {
            return Ok(None);
        }
        let strategy = MatchStrategy::users();
        let started = Instant::now();
        let result = client
            .apply(
                "/Users",
                state.remote_id.as_deref(),
                &plan,
                remote.as_ref(),
                &strategy,
            )
            .await;
        let (method, path, body) = describe(&plan, state.remote_id.as_deref());
        let entry = LogEntry {
            id: 0,
            application_id: app.id,
            resource_id: Some(state.resource_id.clone()),
            method: method.into(),
            url: format!("{}{path}", app.fields.base_url),
            request_body: body.map(|b| b.to_string()),
            status: match &result {
                Ok(_) => Some(match plan {
                    Plan::Create(_) => 201,
                    Plan::Delete => 204,
                    _ => 200,
                }),
                Err(e) => e.status().map(i32::from),
            },
            response_body: match &result {
                Ok(Applied::Created(v) | Applied::Adopted(v) | Applied::Replaced(v))
                | Ok(Applied::Patched(Some(v))) => Some(truncate(v.to_string())),
                _ => None,
            },
            error: result.as_ref().err().map(|e| truncate(e.to_string())),
            at: crate::store::now_utc(),
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        };
        let storage = self.storage.clone();
        let tenant = app.tenant_id;
        if let Err(e) = blocking(move || storage.append_log(tenant, &entry)).await {
            log::warn!("provisioning log: {e}");
        }
        let applied = result.map_err(|e| (e.to_string(), e.retry_after()))?;
        if let (Applied::Deactivated, Some(id)) = (&applied, state.remote_id.as_deref()) {
            // Verified deprovisioning: read the account back. One still
            // active is a failure (retried, then dead-lettered) that shows
            // in the pair's last error.
            let back = client
                .endpoint::<Value>("/Users")
                .try_get(id)
                .await
                .map_err(|e| (format!("deactivation not verified: {e}"), e.retry_after()))?;
            if back
                .as_ref()
                .and_then(|v| v.get("active"))
                .and_then(Value::as_bool)
                == Some(true)
            {
                return Err((
                    format!("deactivated {id}, but the application still reports it active"),
                    None,
                ));
            }
        }
        if let Applied::Adopted(found) = &applied {
            self.update_adopted(pair, &client, &capabilities, desired.as_ref(), found)
                .await?;
        }
        let (remote_id, held) = match applied {
            Applied::Created(v) | Applied::Adopted(v) => {
                let id = v.get("id").and_then(Value::as_str).map(str::to_owned);
                if id.is_none() {
                    return Err(("the application's answer has no id".into(), None));
                }
                // Adopted: what it holds may differ; the next pass plans
                // against the snapshot below, which is what we meant.
                (id, desired.clone())
            }
            Applied::Deleted { .. } => (None, None),
            Applied::Deactivated => {
                let mut held = remote.clone().unwrap_or_else(|| json!({}));
                if let Value::Object(o) = &mut held {
                    o.insert("active".into(), Value::Bool(false));
                }
                (state.remote_id.clone(), Some(held))
            }
            _ => (state.remote_id.clone(), desired.clone()),
        };
        let last_sent = held.map(|v| v.to_string());
        Ok(Some(PairOutcome {
            remote_id,
            last_sent_hash: last_sent.as_deref().map(crate::tokens::hash_secret),
            last_sent,
            status: if desired.is_some() {
                PairStatus::Provisioned
            } else {
                PairStatus::Deprovisioned
            },
            attempts: 0,
            next_attempt_at: None,
            last_error: None,
        }))
    }
}

impl Engine {
    /// Brings an account adopted after a 409 (made by hand, or by an
    /// earlier attempt whose answer was lost) to the desired state: it may
    /// hold other values than the ones we meant to create it with.
    async fn update_adopted(
        &self,
        pair: &ClaimedPair,
        client: &ScimClient,
        capabilities: &Capabilities,
        desired: Option<&Value>,
        found: &Value,
    ) -> std::result::Result<(), (String, Option<Duration>)> {
        let app = &pair.application;
        let Some(id) = found.get("id").and_then(Value::as_str) else {
            return Ok(());
        };
        let managed: Vec<String> =
            serde_json::from_str(&app.fields.managed_attributes).unwrap_or_default();
        let planner = Planner::users(
            TargetCapabilities::from(capabilities),
            PlanOptions {
                deprovision: Deprovision::Deactivate,
                managed: Managed::Attributes(managed),
            },
        );
        let plan = planner.plan(desired, Some(found));
        if plan.is_nothing() {
            return Ok(());
        }
        let started = Instant::now();
        let result = client
            .apply("/Users", Some(id), &plan, Some(found), &MatchStrategy::users())
            .await;
        let (method, path, body) = describe(&plan, Some(id));
        let entry = LogEntry {
            id: 0,
            application_id: app.id,
            resource_id: Some(pair.state.resource_id.clone()),
            method: method.into(),
            url: format!("{}{path}", app.fields.base_url),
            request_body: body.map(|b| b.to_string()),
            status: match &result {
                Ok(_) => Some(200),
                Err(e) => e.status().map(i32::from),
            },
            response_body: match &result {
                Ok(Applied::Replaced(v) | Applied::Patched(Some(v))) => {
                    Some(truncate(v.to_string()))
                }
                _ => None,
            },
            error: result.as_ref().err().map(|e| truncate(e.to_string())),
            at: crate::store::now_utc(),
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        };
        let storage = self.storage.clone();
        let tenant = app.tenant_id;
        if let Err(e) = blocking(move || storage.append_log(tenant, &entry)).await {
            log::warn!("provisioning log: {e}");
        }
        result
            .map(drop)
            .map_err(|e| (format!("updating the adopted {id}: {e}"), e.retry_after()))
    }
}

/// What a pair needs, by [`plan_pair`].
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// What to send.
    pub plan: Plan,
    /// What the application should hold (`None`: nothing).
    pub desired: Option<Value>,
    /// What it is believed to hold (the last-sent snapshot).
    pub remote: Option<Value>,
}

/// Plans one pair from its inputs without sending: desired (the mapped
/// user when an assignment covers it) against the last-sent snapshot.
pub fn plan_pair(pair: &ClaimedPair) -> Planned {
    plan_pair_with(pair, TargetCapabilities::default())
}

/// [`plan_pair`] for a target with these capabilities (PUT where it has
/// no PATCH).
pub fn plan_pair_with(pair: &ClaimedPair, capabilities: TargetCapabilities) -> Planned {
    let app = &pair.application;
    let state = &pair.state;
    let mapping: Map<String, Value> = serde_json::from_str(&app.fields.mapping).unwrap_or_default();
    let managed: Vec<String> =
        serde_json::from_str(&app.fields.managed_attributes).unwrap_or_default();
    let policy: DeprovisionPolicy =
        serde_json::from_str(&app.fields.deprovision).unwrap_or(DeprovisionPolicy::Deactivate);
    let desired = match (&pair.document, pair.assigned) {
        (Some(doc), true) => Some(mapping::map_user(doc, &mapping)),
        _ => None,
    };
    let remote: Option<Value> = state
        .remote_id
        .as_ref()
        .and(state.last_sent.as_deref())
        .and_then(|s| serde_json::from_str(s).ok());
    let planner = Planner::users(
        capabilities,
        PlanOptions {
            deprovision: match policy {
                DeprovisionPolicy::Delete => Deprovision::Delete,
                // The delete after the grace period is not scheduled
                // yet: deactivation is what happens now.
                DeprovisionPolicy::Deactivate | DeprovisionPolicy::DeactivateThenDelete { .. } => {
                    Deprovision::Deactivate
                }
            },
            managed: Managed::Attributes(managed),
        },
    );
    let plan = planner.plan(desired.as_ref(), remote.as_ref());
    Planned {
        plan,
        desired,
        remote,
    }
}

/// The longest response body or error kept in the log.
const MAX_LOGGED: usize = 4000;

fn truncate(mut s: String) -> String {
    if s.len() > MAX_LOGGED {
        let mut cut = MAX_LOGGED;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Method, path and body of the request a plan sends (for the log and the
/// dry run; the
/// bodies hold no credentials, which travel in headers only).
pub fn describe(plan: &Plan, remote_id: Option<&str>) -> (&'static str, String, Option<Value>) {
    let by_id = format!("/Users/{}", remote_id.unwrap_or("?"));
    match plan {
        Plan::Nothing => ("NONE", by_id, None),
        Plan::Create(doc) => ("POST", "/Users".into(), Some(doc.clone())),
        Plan::Patch(ops) => (
            "PATCH",
            by_id,
            Some(json!(scim_client::patch::patch_request(ops))),
        ),
        Plan::Replace(doc) => ("PUT", by_id, Some(doc.clone())),
        Plan::Deactivate => (
            "PATCH",
            by_id,
            Some(json!(scim_client::patch::patch_request(&[
                scim_client::PatchOperation::replace("active", Value::Bool(false))
            ]))),
        ),
        Plan::Delete => ("DELETE", by_id, None),
    }
}
