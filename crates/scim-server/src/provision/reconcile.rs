//! Reconciliation: read what the application holds and compare it with
//! what we want.
//!
//! The target's Users, then Groups, are streamed a page at a time (memory
//! stays flat in the number of accounts: one page, its matches and its
//! findings at a time). Each account is matched to our pair by remote id,
//! then `externalId` (our id), then `userName` / `displayName`. A matched
//! account whose managed attributes differ from the desired state is
//! **drift**; an unmatched one is an **orphan**; a pair we believe
//! provisioned that the target lacks is **missing**. With `repair`, drift
//! is fixed the level-triggered way: what the target holds becomes the
//! pair's snapshot and the pair is marked due, so the engine sends a
//! minimal PATCH; a missing account's pair is marked due for a create.
//! Orphans are reported only: nothing here says whose they are.
//!
//! A run is stored with its counts and findings (`reconcile_runs`,
//! `reconcile_findings`); a dry run stores nothing and returns its first
//! findings. Every page read is in the provisioning log.

use futures::StreamExt;
use scim_client::Query;
use serde_json::Value;

use super::{Engine, blocking};
use crate::error::{Error, Result};
use crate::store::reconcile::{Finding, RemoteKey, RunCounts};
use crate::store::{ClaimedPair, TenantId};

/// Accounts read and matched per step.
const PAGE: usize = 100;

/// Findings a dry run returns at most.
const DRY_RUN_FINDINGS: usize = 1000;

/// How to reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileOptions {
    /// Mark drifted and missing pairs due.
    pub repair: bool,
    /// Report only: store nothing, repair nothing.
    pub dry_run: bool,
    /// `manual` or `scheduled`.
    pub trigger: &'static str,
}

/// What a reconciliation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// The stored run (`None`: a dry run).
    pub run_id: Option<i64>,
    /// The counts.
    pub counts: RunCounts,
    /// A dry run's first findings (stored runs: read them by run).
    pub findings: Vec<Finding>,
    /// Why the run stopped early.
    pub error: Option<String>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn key_of(resource_type: &str, v: &Value) -> Option<RemoteKey> {
    Some(RemoteKey {
        resource_type: resource_type.to_owned(),
        remote_id: text(v, "id")?,
        external_id: text(v, "externalId"),
        name: text(
            v,
            if resource_type == "Group" {
                "displayName"
            } else {
                "userName"
            },
        ),
    })
}

/// The pair as if the target's document were what we last sent: planning
/// it then shows what differs.
fn against_remote(pair: &ClaimedPair, remote: &Value, remote_id: &str) -> (ClaimedPair, Value) {
    let mut held = remote.clone();
    let mut seen = pair.clone();
    if pair.state.resource_type == "Group"
        && let Value::Object(o) = &mut held
        && let Some(members) = o.remove("members")
    {
        let ids: Vec<&str> = members
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("value").and_then(Value::as_str))
            .collect();
        seen.extra.ledger = serde_json::to_string(&ids).ok();
    }
    // Roles the application gives an account on its own are not drift
    // while `roles` is not managed (neither listed nor granted).
    let sent: Option<Value> = pair
        .state
        .last_sent
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok());
    let roles_managed = super::managed_attributes(pair, sent.as_ref())
        .iter()
        .any(|a| a.eq_ignore_ascii_case("roles"));
    if pair.state.resource_type == "User"
        && !roles_managed
        && let Value::Object(o) = &mut held
    {
        scim_core::json::remove_ci(o, "roles");
    }
    seen.state.remote_id = Some(remote_id.to_owned());
    seen.state.last_sent = Some(held.to_string());
    (seen, held)
}

/// What differs between the target's account and the desired state, as
/// text (`None`: nothing managed differs).
fn drift(seen: &ClaimedPair) -> Option<String> {
    use scim_client::plan::Plan;
    match super::plan_pair(seen).plan {
        Plan::Nothing => None,
        Plan::Patch(ops) => Some(
            ops.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Plan::Replace(_) => Some("managed attributes differ".into()),
        Plan::Deactivate => Some("active downstream; should be deactivated".into()),
        Plan::Delete => Some("present downstream; should be deleted".into()),
        Plan::Create(_) => Some("absent downstream".into()),
    }
}

impl Engine {
    /// Reconciles one application of `tenant` now.
    pub async fn reconcile(
        &self,
        tenant: TenantId,
        application_id: i64,
        options: ReconcileOptions,
    ) -> Result<ReconcileReport> {
        let storage = self.storage.clone();
        let app = blocking(move || storage.get_application(tenant, application_id))
            .await?
            .ok_or_else(|| crate::api::applications::not_found(application_id))?;
        let repair = options.repair && !options.dry_run;
        let run_id = if options.dry_run {
            // Seen-marks of a dry run use a run id no stored run has.
            -crate::store::now_utc().timestamp_micros()
        } else {
            let storage = self.storage.clone();
            let trigger = options.trigger;
            blocking(move || storage.start_run(tenant, application_id, trigger, repair)).await?
        };
        // Pages of a large directory can take a while to serve.
        let session = self.session(
            &app,
            self.options
                .request_timeout
                .max(std::time::Duration::from_secs(120)),
        )?;
        // What the target announces decides the paging (cursors where it
        // offers them: no offset scans over a large directory) and the
        // page size. A target without a ServiceProviderConfig keeps the
        // usual assumptions.
        match session.client.service_provider_config().await {
            Ok(config) => session
                .client
                .set_capabilities(scim_client::Capabilities::from_config(&config)),
            Err(e) => log::info!("application {application_id}: no ServiceProviderConfig ({e})"),
        }
        let mut counts = RunCounts::default();
        let mut kept = Vec::new();
        let mut error = None;
        for (endpoint, resource_type) in [("/Users", "User"), ("/Groups", "Group")] {
            let pass = self
                .reconcile_endpoint(
                    tenant,
                    application_id,
                    run_id,
                    &session,
                    (endpoint, resource_type),
                    (repair, options.dry_run),
                    &mut counts,
                    &mut kept,
                )
                .await;
            let entries = session.collector.take(application_id, None);
            super::exchanges::write(self.storage.clone(), tenant, entries).await;
            if let Err(e) = pass {
                error = Some(e.to_string());
                break;
            }
        }
        if error.is_none() {
            let storage = self.storage.clone();
            let (missing, findings) =
                blocking(move || storage.missing_pairs(application_id, run_id, repair, 1000))
                    .await?;
            counts.missing = missing;
            if repair {
                counts.repaired += missing;
            }
            self.keep_findings(application_id, run_id, options.dry_run, findings, &mut kept)
                .await?;
        }
        if !options.dry_run {
            let storage = self.storage.clone();
            let (c, e) = (counts.clone(), error.clone());
            blocking(move || storage.finish_run(run_id, &c, e.as_deref())).await?;
        }
        Ok(ReconcileReport {
            run_id: (!options.dry_run).then_some(run_id),
            counts,
            findings: kept,
            error,
        })
    }

    async fn keep_findings(
        &self,
        application_id: i64,
        run_id: i64,
        dry_run: bool,
        findings: Vec<Finding>,
        kept: &mut Vec<Finding>,
    ) -> Result<()> {
        if dry_run {
            let room = DRY_RUN_FINDINGS.saturating_sub(kept.len());
            kept.extend(findings.into_iter().take(room));
            return Ok(());
        }
        let storage = self.storage.clone();
        blocking(move || storage.add_findings(run_id, application_id, &findings)).await
    }

    #[allow(clippy::too_many_arguments)] // reason: one pass of one run; grouping them adds nothing
    async fn reconcile_endpoint(
        &self,
        tenant: TenantId,
        application_id: i64,
        run_id: i64,
        session: &super::Session,
        (endpoint, resource_type): (&str, &'static str),
        (repair, dry_run): (bool, bool),
        counts: &mut RunCounts,
        kept: &mut Vec<Finding>,
    ) -> Result<()> {
        let mut pages = Box::pin(
            session
                .client
                .endpoint::<Value>(endpoint)
                .search(Query::all())
                .chunks(PAGE),
        );
        while let Some(page) = pages.next().await {
            let mut items = Vec::with_capacity(page.len());
            for item in page {
                match item {
                    Ok(v) => items.push(v),
                    // A target without groups: nothing to reconcile there.
                    Err(e) if resource_type == "Group" && e.status() == Some(404) => {
                        return Ok(());
                    }
                    Err(e) => {
                        return Err(Error::Config(format!("reading {endpoint}: {e}")));
                    }
                }
            }
            let keyed: Vec<(Value, RemoteKey)> = items
                .into_iter()
                .filter_map(|v| key_of(resource_type, &v).map(|k| (v, k)))
                .collect();
            if resource_type == "Group" {
                counts.remote_groups += i64::try_from(keyed.len()).unwrap_or(0);
            } else {
                counts.remote_users += i64::try_from(keyed.len()).unwrap_or(0);
            }
            let keys: Vec<RemoteKey> = keyed.iter().map(|(_, k)| k.clone()).collect();
            let storage = self.storage.clone();
            let matched =
                blocking(move || storage.match_page(tenant, application_id, run_id, &keys)).await?;
            let mut findings = Vec::new();
            for ((doc, key), pair) in keyed.iter().zip(matched) {
                let Some(pair) = pair else {
                    counts.orphans += 1;
                    findings.push(Finding {
                        id: 0,
                        kind: "orphan".into(),
                        resource_type: resource_type.into(),
                        resource_id: None,
                        remote_id: Some(key.remote_id.clone()),
                        name: key.name.clone(),
                        detail: key.external_id.as_ref().map(|e| format!("externalId {e}")),
                    });
                    continue;
                };
                counts.matched += 1;
                let (seen, held) = against_remote(&pair, doc, &key.remote_id);
                let Some(detail) = drift(&seen) else {
                    continue;
                };
                counts.drifted += 1;
                findings.push(Finding {
                    id: 0,
                    kind: "drift".into(),
                    resource_type: resource_type.into(),
                    resource_id: Some(pair.state.resource_id.clone()),
                    remote_id: Some(key.remote_id.clone()),
                    name: key.name.clone(),
                    detail: Some(scim_client::observe::bound(detail)),
                });
                if repair {
                    let storage = self.storage.clone();
                    let (state, rid) = (pair.state.clone(), key.remote_id.clone());
                    let held = held.to_string();
                    let ledger = seen
                        .extra
                        .ledger
                        .clone()
                        .filter(|_| resource_type == "Group");
                    blocking(move || {
                        storage.repair_pair(&state, &rid, Some(&held), ledger.as_deref())
                    })
                    .await?;
                    counts.repaired += 1;
                }
            }
            self.keep_findings(application_id, run_id, dry_run, findings, kept)
                .await?;
            let entries = session.collector.take(application_id, None);
            super::exchanges::write(self.storage.clone(), tenant, entries).await;
        }
        Ok(())
    }

    /// Runs the reconciliations whose schedule is due (repairing drift).
    pub async fn reconcile_scheduled(&self) -> Result<()> {
        let storage = self.storage.clone();
        let due = blocking(move || storage.claim_scheduled()).await?;
        for (tenant, app) in due {
            let report = self
                .reconcile(
                    tenant,
                    app,
                    ReconcileOptions {
                        repair: true,
                        dry_run: false,
                        trigger: "scheduled",
                    },
                )
                .await?;
            log::info!(
                "reconciled application {app}: {} matched, {} drifted, {} orphans, {} missing",
                report.counts.matched,
                report.counts.drifted,
                report.counts.orphans,
                report.counts.missing
            );
        }
        Ok(())
    }
}
