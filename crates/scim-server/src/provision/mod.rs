//! The provisioning engine: workers that claim due (application, resource)
//! pairs, compute what the application should hold from current state,
//! plan the difference with [`scim_client::plan::Planner`] against what was
//! last sent, send it with [`scim_client::ScimClient`], and record the
//! outcome, the remote id and every exchange in the provisioning log.
//!
//! Level-triggered (see DESIGN.md): a due mark only says "look again";
//! retries after a crash recompute from the current state, and a create
//! that meets an existing account (409) adopts it instead of duplicating it
//! ([`scim_client::ScimClient::create_or_adopt`]).
//!
//! [`Engine::run_once`] works one batch (pairs in parallel, within each
//! application's limits, [`limits`]); [`Engine::run`] loops on an interval
//! (started by `serve` when `--provisioning-workers` > 0) and runs the
//! scheduled reconciliations ([`reconcile`]). Users are worked here,
//! groups in [`groups`].

pub mod exchanges;
pub mod groups;
pub mod limits;
pub mod mapping;
pub mod outbound;
pub mod reconcile;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use scim_client::plan::{
    Deprovision, Managed, MatchStrategy, Plan, PlanOptions, Planner, TargetCapabilities,
};
use scim_client::retry::RetryPolicy;
use scim_client::{Applied, Auth, Capabilities, ScimClient};
use serde_json::{Map, Value, json};

use crate::api::applications::{DeprovisionPolicy, credential_context};
use crate::error::{Error, Result};
use crate::secrets::SecretKey;
use crate::store::engine_state::PairExtra;
use crate::store::{Application, ClaimedPair, PairOutcome, PairStatus, Storage};

/// How the engine works.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Names this worker in leases.
    pub owner: String,
    /// How long a claim holds before another worker may take the pair.
    pub lease: Duration,
    /// Pairs claimed per batch.
    pub batch: i64,
    /// Pairs of a batch worked at the same time at most (each application
    /// further limited by its `maxConcurrency`).
    pub parallel: usize,
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
    /// Per-application rate and concurrency limits, shared by the workers
    /// of the process.
    pub limits: limits::Limits,
    /// Which hosts and addresses applications may be sent to; the default
    /// refuses every non-public address ([`outbound`]).
    pub outbound: Arc<outbound::OutboundPolicy>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            owner: format!("worker-{}", std::process::id()),
            lease: Duration::from_secs(60),
            batch: 50,
            parallel: 16,
            max_attempts: 8,
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(600),
            request_timeout: Duration::from_secs(15),
            quarantine_after: 5,
            quarantine_base: Duration::from_secs(30),
            limits: limits::Limits::default(),
            outbound: Arc::default(),
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
pub(crate) async fn blocking<T, F>(f: F) -> Result<T>
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

/// Why sending failed: the message and the provider's `Retry-After`.
pub(crate) type SendError = (String, Option<Duration>);

/// A client for one piece of work, with what it needs to log.
pub(crate) struct Session {
    pub(crate) client: ScimClient,
    pub(crate) collector: Arc<exchanges::Collector>,
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
        // A client of its own: the discovery requests are not the pair's
        // exchanges, and are not kept in the request log.
        let probe = match self.session(app, self.options.request_timeout) {
            Ok(p) => p,
            Err(_) => return client.capabilities(),
        };
        let found = probe.client.discover().await;
        match found {
            Ok(d) => {
                self.discovered
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, d.capabilities.clone());
                client.set_capabilities(d.capabilities.clone());
                d.capabilities
            }
            Err(e) => {
                log::info!("application {}: discovery failed: {e}", app.id);
                client.capabilities()
            }
        }
    }

    /// A pair no longer wanted that never got a remote id may still have
    /// an account downstream: a create whose answer was lost (the process
    /// killed, a timeout) before the user was unassigned. It is looked up
    /// with the match strategy and deprovisioned per the policy.
    async fn deprovision_unconfirmed(
        &self,
        pair: &ClaimedPair,
        client: &ScimClient,
        extra: PairExtra,
    ) -> std::result::Result<Sent, SendError> {
        let state = &pair.state;
        let app = &pair.application;
        let err = |e: scim_client::ClientError| (e.to_string(), e.retry_after());
        let probe = match &pair.document {
            Some(doc) => {
                let mapping: Map<String, Value> =
                    serde_json::from_str(&app.fields.mapping).unwrap_or_default();
                mapping::map_user(doc, &mapping)
            }
            None => json!({"externalId": state.resource_id}),
        };
        let strategy = MatchStrategy::users();
        let Some(mut found) = client
            .find_match("/Users", &probe, &strategy)
            .await
            .map_err(err)?
        else {
            return Ok(Sent::Nothing(extra));
        };
        let Some(id) = found.get("id").and_then(Value::as_str).map(str::to_owned) else {
            return Ok(Sent::Nothing(extra));
        };
        let capabilities = self.capabilities(app, client).await;
        let policy: DeprovisionPolicy =
            serde_json::from_str(&app.fields.deprovision).unwrap_or(DeprovisionPolicy::Deactivate);
        let plan = match policy {
            DeprovisionPolicy::Delete => Plan::Delete,
            DeprovisionPolicy::Deactivate | DeprovisionPolicy::DeactivateThenDelete { .. } => {
                Planner::users(
                    TargetCapabilities::from(&capabilities),
                    PlanOptions {
                        deprovision: Deprovision::Deactivate,
                        managed: Managed::Attributes(Vec::new()),
                    },
                )
                .plan(None, Some(&found))
            }
        };
        let applied = client
            .apply("/Users", Some(&id), &plan, Some(&found), &strategy)
            .await
            .map_err(err)?;
        let (remote_id, held) = match applied {
            Applied::Deleted { .. } => (None, None),
            _ => {
                if let Value::Object(o) = &mut found {
                    o.remove("meta");
                    o.insert("active".into(), Value::Bool(false));
                }
                (Some(id), Some(found))
            }
        };
        let last_sent = held.map(|v| v.to_string());
        Ok(Sent::Changed(PairOutcome {
            remote_id,
            last_sent_hash: last_sent.as_deref().map(crate::tokens::hash_secret),
            last_sent,
            status: PairStatus::Deprovisioned,
            attempts: 0,
            next_attempt_at: None,
            last_error: None,
            extra,
        }))
    }

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
    ) -> std::result::Result<(), SendError> {
        let Some(id) = found.get("id").and_then(Value::as_str) else {
            return Ok(());
        };
        let managed = managed_attributes(pair, None);
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
        client
            .apply(
                "/Users",
                Some(id),
                &plan,
                Some(found),
                &MatchStrategy::users(),
            )
            .await
            .map(drop)
            .map_err(|e| (format!("updating the adopted {id}: {e}"), e.retry_after()))
    }

    /// Claims one batch of due pairs and works them, several at a time
    /// within each application's limits.
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
        let results: Vec<Result<Worked>> = futures::stream::iter(claimed)
            .map(|pair| self.process(pair))
            .buffer_unordered(self.options.parallel.max(1))
            .collect()
            .await;
        for r in results {
            match r? {
                Worked::Nothing(_) => report.unchanged += 1,
                Worked::Sent(_) => report.sent += 1,
                Worked::Failed(_) => report.failed += 1,
            }
        }
        Ok(report)
    }

    /// Works one claimed pair within its application's concurrency limit
    /// and records the outcome.
    async fn process(&self, pair: ClaimedPair) -> Result<Worked> {
        let limits = self.options.limits.of(&pair.application);
        let _slot = limits
            .slots
            .acquire()
            .await
            .map_err(|e| Error::internal(format!("application limit: {e}")))?;
        let worked = self.work(&pair).await;
        self.count_for_application(&pair, &worked).await?;
        let outcome = match &worked {
            Worked::Nothing(o) | Worked::Sent(o) | Worked::Failed(o) => o.clone(),
        };
        let storage = self.storage.clone();
        let owner = self.options.owner.clone();
        let state = pair.state.clone();
        blocking(move || storage.record_outcome(&owner, &state, &outcome)).await?;
        Ok(worked)
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

    /// Works batches every `interval` until the process ends; when idle,
    /// runs the reconciliations whose schedule is due.
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
                Ok(_) => {
                    if let Err(e) = self.reconcile_scheduled().await {
                        log::error!("scheduled reconciliation: {e}");
                    }
                    tokio::time::sleep(interval).await;
                }
                Err(e) => {
                    log::error!("provisioning worker: {e}");
                    tokio::time::sleep(interval).await;
                }
            }
        }
    }

    /// A client for `app` that logs every exchange, shares the
    /// application's rate limit and keeps to the outbound policy. Every
    /// request to an application is sent by a client made here.
    pub(crate) fn session(&self, app: &Application, timeout: Duration) -> Result<Session> {
        let f = &app.fields;
        let collector = exchanges::Collector::new();
        let mut builder = ScimClient::builder(&f.base_url)
            .timeout(timeout)
            .retry(RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            })
            .observer(collector.clone())
            // Only addresses the operator's policy allows, and only SCIM
            // answers in the log and in errors: a tenant admin chooses the
            // URL, and must not read whatever an internal service answers.
            .address_filter(self.options.outbound.clone())
            .scim_bodies_only(true)
            // Reconciliation reads whole directories: large pages (the
            // target's own maximum still applies).
            .page_size(500);
        if let Some(sealed) = &f.credentials {
            let key = self.key.as_ref().ok_or_else(|| {
                Error::Config("the application has credentials but SCIM_SECRET_KEY is unset".into())
            })?;
            let plain = key.open(sealed, &credential_context(app.tenant_id.0, &f.name))?;
            let token = String::from_utf8(plain)
                .map_err(|_| Error::internal("a stored credential is not UTF-8"))?;
            builder = builder.auth(Auth::bearer(token));
        }
        if let Some(limiter) = self.options.limits.of(app).limiter {
            builder = builder.limiter(limiter);
        }
        let client = builder
            .build()
            .map_err(|e| Error::Config(format!("application {}: {e}", app.id)))?;
        Ok(Session { client, collector })
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
            extra: pair.extra.clone(),
        };
        let session = match self.session(&pair.application, self.options.request_timeout) {
            Ok(s) => s,
            Err(e) => return self.failed(state, keep, (e.to_string(), None)),
        };
        let result = if state.resource_type == "Group" {
            let caps = self.capabilities(&pair.application, &session.client).await;
            groups::send(pair, &session, TargetCapabilities::from(&caps)).await
        } else {
            self.send(pair, &session).await
        };
        let entries = session.collector.take(
            pair.application.id,
            Some((&state.resource_type, &state.resource_id)),
        );
        exchanges::write(self.storage.clone(), pair.application.tenant_id, entries).await;
        match result {
            Ok(Sent::Changed(outcome)) => Worked::Sent(outcome),
            Ok(Sent::Nothing(extra)) => Worked::Nothing(PairOutcome {
                status: match (state.status, pair.assigned) {
                    (PairStatus::Pending | PairStatus::Failed, true)
                        if state.remote_id.is_some() =>
                    {
                        PairStatus::Provisioned
                    }
                    (PairStatus::Pending | PairStatus::Failed | PairStatus::Provisioned, false) => {
                        PairStatus::Deprovisioned
                    }
                    (s, _) => s,
                },
                attempts: 0,
                last_error: None,
                extra,
                ..keep
            }),
            Err(e) => self.failed(state, keep, e),
        }
    }

    fn failed(
        &self,
        state: &crate::store::PairState,
        keep: PairOutcome,
        (e, retry_after): SendError,
    ) -> Worked {
        let attempts = state.attempts + 1;
        let dead = attempts >= self.options.max_attempts;
        let next = chrono::Utc::now()
            + chrono::Duration::from_std(self.backoff(attempts, retry_after)).unwrap_or_default();
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

    /// Plans and sends a user pair.
    async fn send(
        &self,
        pair: &ClaimedPair,
        session: &Session,
    ) -> std::result::Result<Sent, SendError> {
        let state = &pair.state;
        let client = &session.client;
        let mut planned = plan_pair(pair);
        let mut capabilities = None;
        if !planned.plan.is_nothing() {
            // Something to send: plan again for what the target supports.
            let c = self.capabilities(&pair.application, client).await;
            planned = plan_pair_with(pair, TargetCapabilities::from(&c));
            capabilities = Some(c);
        }
        let Planned {
            plan,
            desired,
            remote,
            delete_after,
        } = planned;
        let extra = PairExtra {
            delete_after,
            ledger: None,
        };
        if plan.is_nothing() {
            if desired.is_none()
                && state.remote_id.is_none()
                && matches!(state.status, PairStatus::Pending | PairStatus::Failed)
            {
                return self.deprovision_unconfirmed(pair, client, extra).await;
            }
            return Ok(Sent::Nothing(extra));
        }
        let strategy = MatchStrategy::users();
        let applied = client
            .apply(
                "/Users",
                state.remote_id.as_deref(),
                &plan,
                remote.as_ref(),
                &strategy,
            )
            .await
            .map_err(|e| (e.to_string(), e.retry_after()))?;
        if let (Applied::Deactivated, Some(id)) = (&applied, state.remote_id.as_deref()) {
            // Verified deprovisioning: read the account back (logged like
            // every exchange). One still active is a failure (retried,
            // then dead-lettered) that shows in the pair's last error.
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
        if let (Applied::Adopted(found), Some(c)) = (&applied, &capabilities) {
            self.update_adopted(pair, client, c, desired.as_ref(), found)
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
        Ok(Sent::Changed(PairOutcome {
            remote_id: remote_id.clone(),
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
            extra: PairExtra {
                // Gone: nothing left to delete later.
                delete_after: remote_id.and(extra.delete_after),
                ledger: None,
            },
        }))
    }
}

/// What sending a pair did.
pub(crate) enum Sent {
    /// Nothing had to be sent; the side state to keep.
    Nothing(PairExtra),
    /// Requests were sent; the outcome to record.
    Changed(PairOutcome),
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
    /// When the deactivated account is to be deleted
    /// (`deactivateThenDelete`; `None`: no delete pending).
    pub delete_after: Option<chrono::DateTime<chrono::Utc>>,
}

/// Plans one user pair from its inputs without sending: desired (the
/// mapped user when an assignment covers it) against the last-sent
/// snapshot. Under `deactivateThenDelete` an account no longer wanted is
/// deactivated first and deleted once its grace period has passed.
pub fn plan_pair(pair: &ClaimedPair) -> Planned {
    if pair.state.resource_type == "Group" {
        return groups::plan_group(pair);
    }
    plan_pair_with(pair, TargetCapabilities::default())
}

/// [`plan_pair`] of a user pair for a target with these capabilities (PUT
/// where it has no PATCH).
pub fn plan_pair_with(pair: &ClaimedPair, capabilities: TargetCapabilities) -> Planned {
    let app = &pair.application;
    let state = &pair.state;
    let mapping: Map<String, Value> = serde_json::from_str(&app.fields.mapping).unwrap_or_default();
    let policy: DeprovisionPolicy =
        serde_json::from_str(&app.fields.deprovision).unwrap_or(DeprovisionPolicy::Deactivate);
    let desired = match (&pair.document, pair.assigned) {
        (Some(doc), true) => Some(mapping::with_roles(
            mapping::map_user(doc, &mapping),
            &pair.roles,
        )),
        _ => None,
    };
    let remote: Option<Value> = state
        .remote_id
        .as_ref()
        .and(state.last_sent.as_deref())
        .and_then(|s| serde_json::from_str(s).ok());
    let managed = managed_attributes(pair, remote.as_ref());
    let now = crate::store::now_utc();
    // deactivateThenDelete: the delete time, set at the first pass that
    // finds the account unwanted, kept until it is deleted or wanted again.
    let delete_after = match (&policy, &desired, &remote) {
        (DeprovisionPolicy::DeactivateThenDelete { grace_seconds }, None, Some(_)) => Some(
            pair.extra
                .delete_after
                .unwrap_or_else(|| after_grace(now, *grace_seconds)),
        ),
        _ => None,
    };
    let deprovision = match policy {
        DeprovisionPolicy::Delete => Deprovision::Delete,
        DeprovisionPolicy::DeactivateThenDelete { .. }
            if delete_after.is_some_and(|t| t <= now) =>
        {
            Deprovision::Delete
        }
        DeprovisionPolicy::Deactivate | DeprovisionPolicy::DeactivateThenDelete { .. } => {
            Deprovision::Deactivate
        }
    };
    let planner = Planner::users(
        capabilities,
        PlanOptions {
            deprovision,
            managed: Managed::Attributes(managed),
        },
    );
    let plan = planner.plan(desired.as_ref(), remote.as_ref());
    Planned {
        plan,
        desired,
        remote,
        delete_after,
    }
}

/// The attributes compared for a user pair: the application's managed
/// attributes, and `roles` while assignments grant roles or the last-sent
/// snapshot (`sent`) carries some, so that a role no longer granted is
/// removed downstream. An account that never got roles from us keeps the
/// roles the application gives it itself.
pub(crate) fn managed_attributes(pair: &ClaimedPair, sent: Option<&Value>) -> Vec<String> {
    let mut managed: Vec<String> =
        serde_json::from_str(&pair.application.fields.managed_attributes).unwrap_or_default();
    if manages_roles(pair, sent) && !managed.iter().any(|a| a.eq_ignore_ascii_case("roles")) {
        managed.push("roles".into());
    }
    managed
}

/// Whether the engine manages the `roles` of a user pair's account:
/// assignments grant roles, or the last-sent snapshot (`sent`) carries
/// some.
fn manages_roles(pair: &ClaimedPair, sent: Option<&Value>) -> bool {
    let sent_roles = sent
        .and_then(Value::as_object)
        .and_then(|o| scim_core::json::get_ci(o, "roles"))
        .is_some_and(|(_, v)| !v.is_null());
    !pair.roles.is_empty() || sent_roles
}

/// `now` plus a grace period (capped at a century).
fn after_grace(
    now: chrono::DateTime<chrono::Utc>,
    grace_seconds: u64,
) -> chrono::DateTime<chrono::Utc> {
    const CENTURY: u64 = 100 * 365 * 24 * 3600;
    let secs = i64::try_from(grace_seconds.min(CENTURY)).unwrap_or(0);
    now.checked_add_signed(chrono::TimeDelta::seconds(secs))
        .unwrap_or(now)
}

/// Method, path and body of the request a plan sends (for the dry run;
/// the bodies hold no credentials, which travel in headers only).
pub fn describe(plan: &Plan, remote_id: Option<&str>) -> (&'static str, String, Option<Value>) {
    describe_at("/Users", plan, remote_id)
}

/// [`describe`] for an endpoint (`/Users`, `/Groups`).
pub fn describe_at(
    endpoint: &str,
    plan: &Plan,
    remote_id: Option<&str>,
) -> (&'static str, String, Option<Value>) {
    let by_id = format!("{endpoint}/{}", remote_id.unwrap_or("?"));
    match plan {
        Plan::Nothing => ("NONE", by_id, None),
        Plan::Create(doc) => ("POST", endpoint.into(), Some(doc.clone())),
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
