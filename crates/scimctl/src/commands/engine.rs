//! `scimctl engine ...`: our provisioning engine through its management
//! API (`/api/v1` of a scim-server, with an `admin`-scope token).
//!
//! The API URL is `--api-url` (`SCIMCTL_API_URL`), or `--url` with its
//! trailing `/scim/v2` replaced by `/api/v1`. Output is human-readable by
//! default; `--json` prints the API's answer as one JSON line.

use std::time::Duration;

use clap::{Args, Subcommand};
use scim_client::{Auth, ScimClient};
use serde_json::Value;

use super::api::{ApiUrlError, api_url};
use crate::cli::GlobalArgs;
use crate::error::{Error, Result};
use crate::output::{Output, cell};

/// `scimctl engine`.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// The management API base URL, such as `http://127.0.0.1:8080/api/v1`
    /// (default: `--url` with `/scim/v2` replaced by `/api/v1`).
    #[arg(long, env = "SCIMCTL_API_URL")]
    pub api_url: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: EngineCommand,
}

/// The engine subcommands.
#[derive(Debug, Subcommand)]
pub enum EngineCommand {
    /// Show what the engine would send to an application now (dry run).
    Plan {
        /// The application id.
        app: i64,
    },
    /// Provision one user to an application now and show what was sent.
    Provision {
        /// The application id.
        app: i64,
        /// The user's SCIM id.
        user: String,
    },
    /// Read the application's accounts and report drift and orphans.
    Reconcile {
        /// The application id.
        app: i64,
        /// Report only: store nothing, repair nothing.
        #[arg(long)]
        dry_run: bool,
        /// Mark drifted and missing accounts for the engine to fix.
        #[arg(long, conflicts_with = "dry_run")]
        repair: bool,
    },
    /// Show where an application's accounts stand.
    Status {
        /// The application id.
        app: i64,
    },
    /// Show the requests sent and their answers, newest first.
    Log {
        /// Only requests to this application.
        #[arg(long)]
        app: Option<i64>,
        /// Only requests about this user or group (SCIM id).
        #[arg(long)]
        user: Option<String>,
        /// At most this many entries.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// Only entries older than this entry id (the `next` of a page).
        #[arg(long)]
        before: Option<i64>,
    },
}

fn api_client(global: &GlobalArgs, args: &EngineArgs) -> Result<ScimClient> {
    let url = api_url(global.url.as_deref(), args.api_url.as_deref()).map_err(|e| {
        Error::Usage(match e {
            ApiUrlError::NotScim(_) => {
                "cannot derive the API URL from --url (no /scim/v2 at its end): pass --api-url"
                    .into()
            }
            ApiUrlError::Missing => {
                "no API URL: pass --api-url (or --url ending in /scim/v2)".into()
            }
        })
    })?;
    let mut builder = ScimClient::builder(&url)
        .timeout(Duration::from_secs(global.timeout.max(1)))
        .user_agent(concat!("scimctl/", env!("CARGO_PKG_VERSION")));
    if let Some(token) = global.token.clone().filter(|s| !s.trim().is_empty()) {
        builder = builder.auth(Auth::bearer(token));
    }
    builder.build().map_err(|e| match e {
        scim_client::ClientError::InvalidRequest(m) => Error::Usage(m),
        other => Error::Client(other),
    })
}

/// Runs an engine subcommand.
pub async fn run(global: &GlobalArgs, args: EngineArgs) -> Result<()> {
    let client = api_client(global, &args)?;
    let out = Output::new(global.json);
    let answer = match &args.command {
        EngineCommand::Plan { app } => {
            client
                .call_json("GET", &format!("applications/{app}/plan"), &[], None)
                .await?
        }
        EngineCommand::Provision { app, user } => {
            client
                .call_json(
                    "POST",
                    &format!("applications/{app}/provision/{user}"),
                    &[],
                    None,
                )
                .await?
        }
        EngineCommand::Reconcile {
            app,
            dry_run,
            repair,
        } => {
            let body = serde_json::json!({"dryRun": dry_run, "repair": repair});
            client
                .call_json(
                    "POST",
                    &format!("applications/{app}/reconcile"),
                    &[],
                    Some(&body),
                )
                .await?
        }
        EngineCommand::Status { app } => {
            client
                .call_json(
                    "GET",
                    &format!("applications/{app}/provisioning"),
                    &[],
                    None,
                )
                .await?
        }
        EngineCommand::Log {
            app,
            user,
            limit,
            before,
        } => {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(a) = app {
                query.push(("application", a.to_string()));
            }
            if let Some(u) = user {
                query.push(("user", u.clone()));
            }
            if let Some(b) = before {
                query.push(("before", b.to_string()));
            }
            client
                .call_json("GET", "provisioning/log", &query, None)
                .await?
        }
    };
    let answer = answer.unwrap_or(Value::Null);
    if out.is_json() {
        return out.json_line(&answer);
    }
    out.text(&human(&args.command, &answer))
}

fn items(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// The answer for people.
fn human(command: &EngineCommand, a: &Value) -> String {
    let mut t = String::new();
    match command {
        EngineCommand::Plan { app } => {
            let mut n = 0;
            for bucket in ["create", "change", "deactivate", "delete"] {
                for p in items(&a[bucket]) {
                    n += 1;
                    t.push_str(&format!(
                        "{bucket:<10} {} {:<36} {} {}\n",
                        cell(&p["resourceType"]),
                        cell(&p["resourceId"]),
                        cell(&p["method"]),
                        cell(&p["path"])
                    ));
                }
            }
            t.push_str(&format!(
                "application {app}: {n} to send, {} unchanged\n",
                cell(&a["unchanged"])
            ));
        }
        EngineCommand::Provision { app, user } => {
            for e in items(&a["sent"]) {
                t.push_str(&exchange(e));
            }
            t.push_str(&format!(
                "user {user} in application {app}: {} (remote id {})",
                cell(&a["status"]),
                cell(&a["remoteId"])
            ));
            if let Some(err) = a["lastError"].as_str() {
                t.push_str(&format!("; last error: {err}"));
            }
            t.push('\n');
        }
        EngineCommand::Reconcile { app, .. } => {
            let c = &a["counts"];
            let run = match a["runId"].as_i64() {
                Some(id) => format!("run {id}"),
                None => "dry run".into(),
            };
            t.push_str(&format!(
                "application {app}, {run}: {}; read {} users and {} groups; {} matched, {} drifted, {} orphans, {} missing, {} repaired\n",
                cell(&a["status"]),
                cell(&c["remoteUsers"]),
                cell(&c["remoteGroups"]),
                cell(&c["matched"]),
                cell(&c["drifted"]),
                cell(&c["orphans"]),
                cell(&c["missing"]),
                cell(&c["repaired"]),
            ));
            for f in items(&a["findings"]) {
                t.push_str(&format!(
                    "  {:<7} {} {} {} {}\n",
                    cell(&f["kind"]),
                    cell(&f["resourceType"]),
                    cell(&f["name"]),
                    cell(&f["remoteId"]),
                    cell(&f["detail"])
                ));
            }
            if let Some(err) = a["error"].as_str() {
                t.push_str(&format!("error: {err}\n"));
            }
        }
        EngineCommand::Status { app } => {
            let counts = a["counts"].as_object().cloned().unwrap_or_default();
            let shown: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            t.push_str(&format!(
                "application {app}: {}; {} due\n",
                shown.join(", "),
                cell(&a["due"])
            ));
            for p in items(&a["pairs"]) {
                t.push_str(&format!(
                    "  {:<13} {} {:<36} -> {}",
                    cell(&p["status"]),
                    cell(&p["resourceType"]),
                    cell(&p["resourceId"]),
                    cell(&p["remoteId"])
                ));
                if let Some(err) = p["lastError"].as_str() {
                    t.push_str(&format!("  ({err})"));
                }
                t.push('\n');
            }
        }
        EngineCommand::Log { .. } => {
            for e in items(&a["items"]) {
                t.push_str(&format!("{:>6} {} ", cell(&e["id"]), cell(&e["at"])));
                t.push_str(&exchange(e));
            }
            if let Some(next) = a["next"].as_i64() {
                t.push_str(&format!("more: --before {next}\n"));
            }
        }
    }
    t
}

fn exchange(e: &Value) -> String {
    let mut line = format!(
        "{} {} -> {} ({} ms)",
        cell(&e["method"]),
        cell(&e["url"]),
        cell(&e["status"]),
        cell(&e["durationMs"])
    );
    if let Some(err) = e["error"].as_str() {
        line.push_str(&format!(" {err}"));
    }
    line.push('\n');
    line
}
