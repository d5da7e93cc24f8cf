//! `scimctl apps ...` and `scimctl assignments ...`: the downstream
//! applications of a scim-server and who is assigned to them, through its
//! management API (`/api/v1`, admin token), with the client of
//! [`super::lifecycle`].
//!
//! Credentials are read from a file or standard input, sent once, and
//! never printed: the server answers only whether they are set.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Map, Value, json};

use super::lifecycle::{Api, ExtendArgs};
use super::{read_input, read_json};
use crate::cli::GlobalArgs;
use crate::error::{Error, Result};
use crate::output::{cell, list_table};

/// `scimctl apps ...`.
#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// List applications.
    List,
    /// Show one application.
    Show(AppId),
    /// Create an application.
    Create(AppArgs),
    /// Change an application: only the settings given change.
    Update(UpdateArgs),
    /// Delete an application (its assignments go with it).
    Delete(AppId),
}

/// An application id.
#[derive(Debug, Args)]
pub struct AppId {
    /// The application id.
    pub id: i64,
}

/// The settings of `apps create` and `apps update`.
#[derive(Debug, Args)]
pub struct AppArgs {
    /// A JSON document with any of the API's fields (name, baseUrl,
    /// mapping, managedAttributes, deprovision, rateLimit, ...); the
    /// options below override it. `-`: standard input.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// The application's name.
    #[arg(long)]
    pub name: Option<String>,
    /// The downstream SCIM base URL.
    #[arg(long)]
    pub base_url: Option<String>,
    /// A file holding the downstream bearer token (`-`: standard input);
    /// it is sent once and never printed.
    #[arg(long, conflicts_with = "no_credentials")]
    pub credentials_file: Option<PathBuf>,
    /// Send no credentials downstream.
    #[arg(long)]
    pub no_credentials: bool,
    /// What happens downstream to an account whose access ends.
    #[arg(long, value_enum)]
    pub deprovision: Option<DeprovisionArg>,
    /// Seconds between deactivation and deletion (with
    /// `--deprovision deactivate-then-delete`).
    #[arg(long)]
    pub grace_seconds: Option<u64>,
    /// Requests per second at most.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Requests in flight at most.
    #[arg(long)]
    pub max_concurrency: Option<u32>,
    /// Stop provisioning to it (`--enabled true` resumes).
    #[arg(long)]
    pub enabled: Option<bool>,
}

/// `apps update` options.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The application id.
    pub id: i64,
    /// The settings to change.
    #[command(flatten)]
    pub settings: AppArgs,
}

/// A deprovisioning policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeprovisionArg {
    /// Set `active` to false.
    Deactivate,
    /// Set `active` to false, then delete after --grace-seconds.
    DeactivateThenDelete,
    /// Delete the account.
    Delete,
}

impl AppArgs {
    /// The request body: the file's document with the options on top.
    fn body(&self) -> Result<Value> {
        let mut body = match &self.file {
            Some(path) => match read_json(path)? {
                Value::Object(o) => o,
                _ => return Err(Error::Input("--file must hold a JSON object".into())),
            },
            None => Map::new(),
        };
        if let Some(n) = &self.name {
            body.insert("name".into(), json!(n));
        }
        if let Some(u) = &self.base_url {
            body.insert("baseUrl".into(), json!(u));
        }
        if let Some(path) = &self.credentials_file {
            let token = read_input(path)?.trim().to_owned();
            if token.is_empty() {
                return Err(Error::Input(
                    "the credentials file is empty (it should hold the bearer token)".into(),
                ));
            }
            body.insert(
                "credentials".into(),
                json!({"type": "bearer", "token": token}),
            );
        } else if self.no_credentials {
            body.insert("credentials".into(), json!({"type": "none"}));
        }
        match (self.deprovision, self.grace_seconds) {
            (Some(DeprovisionArg::Deactivate), None) => {
                body.insert("deprovision".into(), json!({"action": "deactivate"}));
            }
            (Some(DeprovisionArg::Delete), None) => {
                body.insert("deprovision".into(), json!({"action": "delete"}));
            }
            (Some(DeprovisionArg::DeactivateThenDelete), Some(grace)) => {
                body.insert(
                    "deprovision".into(),
                    json!({"action": "deactivateThenDelete", "graceSeconds": grace}),
                );
            }
            (None, None) => {}
            _ => {
                return Err(Error::Usage(
                    "--grace-seconds goes with --deprovision deactivate-then-delete, which needs it"
                        .into(),
                ));
            }
        }
        if self.rate.is_some() || self.max_concurrency.is_some() {
            let mut limit = Map::new();
            if let Some(r) = self.rate {
                limit.insert("requestsPerSecond".into(), json!(r));
            }
            if let Some(c) = self.max_concurrency {
                limit.insert("maxConcurrency".into(), json!(c));
            }
            body.insert("rateLimit".into(), Value::Object(limit));
        }
        if let Some(e) = self.enabled {
            body.insert("enabled".into(), json!(e));
        }
        Ok(Value::Object(body))
    }
}

/// An application for a person.
fn app_text(v: &Value) -> String {
    format!(
        "application {}: {}\n  base URL     {}\n  credentials  {}\n  enabled      {}\n  deprovision  {}\n",
        cell(&v["id"]),
        cell(&v["name"]),
        cell(&v["baseUrl"]),
        match v["credentials"]["set"].as_bool() {
            Some(true) => format!("{} (set)", cell(&v["credentials"]["type"])),
            _ => cell(&v["credentials"]["type"]),
        },
        cell(&v["enabled"]),
        cell(&v["deprovision"]["action"]),
    )
}

/// Runs an `apps` subcommand.
pub async fn apps(global: &GlobalArgs, cmd: AppsCommand) -> Result<()> {
    let api = Api::new(global)?;
    match cmd {
        AppsCommand::List => {
            api.show_get("/applications", |v| {
                list_table(
                    &v["items"],
                    &["ID", "NAME", "BASE URL", "ENABLED", "CREDENTIALS"],
                    |a| {
                        vec![
                            cell(&a["id"]),
                            cell(&a["name"]),
                            cell(&a["baseUrl"]),
                            cell(&a["enabled"]),
                            cell(&a["credentials"]["type"]),
                        ]
                    },
                )
            })
            .await
        }
        AppsCommand::Show(a) => {
            api.show_get(&format!("/applications/{}", a.id), app_text)
                .await
        }
        AppsCommand::Create(args) => {
            let body = args.body()?;
            if body.get("name").is_none() || body.get("baseUrl").is_none() {
                return Err(Error::Usage(
                    "apps create needs --name and --base-url (or both in --file)".into(),
                ));
            }
            api.show_post("/applications", &body, app_text).await
        }
        AppsCommand::Update(a) => {
            let body = a.settings.body()?;
            if body.as_object().is_some_and(Map::is_empty) {
                return Err(Error::Usage("apps update: nothing to change".into()));
            }
            let v = api
                .call(
                    reqwest::Method::PATCH,
                    &format!("/applications/{}", a.id),
                    Some(&body),
                )
                .await?;
            api.show(&v, app_text)
        }
        AppsCommand::Delete(a) => {
            api.delete(&format!("/applications/{}", a.id), "application", a.id)
                .await
        }
    }
}

/// `scimctl assignments ...`.
#[derive(Debug, Subcommand)]
pub enum AssignmentsCommand {
    /// List assignments (of an application, a user or a group).
    List(ListAssignmentsArgs),
    /// Give a user or a group an application; with --until (and
    /// --from), for a limited time.
    Grant(GrantArgs),
    /// Take an assignment away (the account is deprovisioned downstream).
    Revoke(AssignmentId),
    /// Move the end of temporary access (`--until never` removes it).
    Extend(ExtendArgs),
}

/// An assignment id.
#[derive(Debug, Args)]
pub struct AssignmentId {
    /// The assignment id.
    pub id: i64,
}

/// `assignments list` options.
#[derive(Debug, Args)]
pub struct ListAssignmentsArgs {
    /// Only this application's.
    #[arg(long)]
    pub app: Option<i64>,
    /// Only this user's (SCIM id).
    #[arg(long, conflicts_with = "group")]
    pub user: Option<String>,
    /// Only this group's (SCIM id).
    #[arg(long)]
    pub group: Option<String>,
}

/// `assignments grant` options.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("who").required(true).args(["user", "group"]))]
pub struct GrantArgs {
    /// The application id.
    #[arg(long)]
    pub app: i64,
    /// The user (SCIM id).
    #[arg(long)]
    pub user: Option<String>,
    /// The group (SCIM id): its members get the application.
    #[arg(long)]
    pub group: Option<String>,
    /// Access starts then (RFC 3339).
    #[arg(long)]
    pub from: Option<String>,
    /// Access ends then (RFC 3339): temporary access.
    #[arg(long)]
    pub until: Option<String>,
    /// Why (kept with the assignment and in the audit log).
    #[arg(long)]
    pub reason: Option<String>,
}

fn assignment_text(v: &Value) -> String {
    format!(
        "assignment {}: application {} -> {} {} (from {}, until {})\n",
        cell(&v["id"]),
        cell(&v["applicationId"]),
        cell(&v["resourceType"]),
        cell(&v["resourceId"]),
        cell(&v["validFrom"]),
        cell(&v["validUntil"]),
    )
}

/// Runs an `assignments` subcommand.
pub async fn assignments(global: &GlobalArgs, cmd: AssignmentsCommand) -> Result<()> {
    let api = Api::new(global)?;
    match cmd {
        AssignmentsCommand::List(a) => {
            let mut query = Vec::new();
            if let Some(app) = a.app {
                query.push(format!("application={app}"));
            }
            if let Some(u) = &a.user {
                query.push(format!("user={}", urlencoding(u)));
            }
            if let Some(g) = &a.group {
                query.push(format!("group={}", urlencoding(g)));
            }
            let path = if query.is_empty() {
                "/assignments".to_owned()
            } else {
                format!("/assignments?{}", query.join("&"))
            };
            api.show_get(&path, |v| {
                list_table(
                    &v["items"],
                    &["ID", "APP", "TYPE", "RESOURCE", "SOURCE", "FROM", "UNTIL"],
                    |a| {
                        vec![
                            cell(&a["id"]),
                            cell(&a["applicationId"]),
                            cell(&a["resourceType"]),
                            cell(&a["resourceId"]),
                            cell(&a["source"]),
                            cell(&a["validFrom"]),
                            cell(&a["validUntil"]),
                        ]
                    },
                )
            })
            .await
        }
        AssignmentsCommand::Grant(a) => {
            let resource = a.user.as_ref().or(a.group.as_ref());
            let mut body = json!({"applicationId": a.app, "resourceId": resource});
            if let Some(f) = &a.from {
                body["validFrom"] = json!(f);
            }
            if let Some(u) = &a.until {
                body["validUntil"] = json!(u);
            }
            if let Some(r) = &a.reason {
                body["reason"] = json!(r);
            }
            api.show_post("/assignments", &body, assignment_text).await
        }
        AssignmentsCommand::Revoke(a) => {
            api.delete(&format!("/assignments/{}", a.id), "assignment", a.id)
                .await
        }
        AssignmentsCommand::Extend(a) => api.extend_assignment(&a).await,
    }
}

/// `text` percent-encoded for a query string value (SCIM ids are usually
/// UUIDs, but any id must survive).
fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> AppArgs {
        AppArgs {
            file: None,
            name: None,
            base_url: None,
            credentials_file: None,
            no_credentials: false,
            deprovision: None,
            grace_seconds: None,
            rate: None,
            max_concurrency: None,
            enabled: None,
        }
    }

    #[test]
    fn options_make_the_body() {
        let a = AppArgs {
            name: Some("wiki".into()),
            base_url: Some("http://127.0.0.1:9/scim/v2".into()),
            no_credentials: true,
            deprovision: Some(DeprovisionArg::DeactivateThenDelete),
            grace_seconds: Some(60),
            rate: Some(5.0),
            enabled: Some(false),
            ..args()
        };
        assert_eq!(
            a.body().unwrap(),
            json!({"name": "wiki", "baseUrl": "http://127.0.0.1:9/scim/v2",
                   "credentials": {"type": "none"},
                   "deprovision": {"action": "deactivateThenDelete", "graceSeconds": 60},
                   "rateLimit": {"requestsPerSecond": 5.0}, "enabled": false})
        );
        assert_eq!(args().body().unwrap(), json!({}));
        let bad = AppArgs {
            grace_seconds: Some(5),
            ..args()
        };
        assert!(bad.body().is_err());
        let bad = AppArgs {
            deprovision: Some(DeprovisionArg::DeactivateThenDelete),
            ..args()
        };
        assert!(bad.body().is_err());
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(urlencoding("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(urlencoding("2819c223-7f76"), "2819c223-7f76");
    }
}
