//! Lifecycle automation on scim-server's management API (`/api/v1`):
//! `scimctl playbooks`, `rules`, `runs`, `preview` and `access`.
//!
//! The API lives next to the SCIM endpoints: `--url http://host/scim/v2`
//! means `http://host/api/v1` (set `SCIMCTL_API_URL` to point elsewhere).
//! The token needs the `admin` scope.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::api::{ApiUrlError, api_url};
use crate::cli::GlobalArgs;
use crate::error::{Error, Result};
use crate::output::{Output, cell, details, list_table, table};

/// `scimctl playbooks ...`.
#[derive(Debug, Subcommand)]
pub enum PlaybooksCommand {
    /// List playbooks.
    List,
    /// Show one playbook.
    Get(NumId),
    /// Create a playbook from a JSON file (`-`: standard input), such as
    /// `examples/playbooks/marketing-manager.json`.
    Create(FileArg),
    /// Replace a playbook with a JSON file.
    Update(IdFile),
    /// Delete a playbook.
    Delete(NumId),
    /// Run a playbook now on users.
    Run(RunArgs),
    /// Show what a run would do, without doing it.
    Preview(RunArgs),
    /// List a playbook's runs, newest first.
    Runs(NumId),
}

/// `scimctl rules ...`.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List rules.
    List,
    /// Show one rule.
    Get(NumId),
    /// Create a rule from a JSON file.
    Create(ConfirmFile),
    /// Replace a rule with a JSON file.
    Update(ConfirmIdFile),
    /// Delete a rule (what only it granted is revoked).
    Delete(ConfirmId),
    /// Show what saving the rule in the file would do.
    Preview(FileArg),
}

/// `scimctl runs ...`.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Show one run with its per-user, per-action results.
    Get(NumId),
}

/// `scimctl preview ...`.
#[derive(Debug, Subcommand)]
pub enum PreviewCommand {
    /// What a proposed change of a user would do: the file holds a PatchOp
    /// message, a whole User, or `{"delete": true}`.
    User(UserFile),
    /// What saving the rule in the file would do.
    Rule(FileArg),
    /// What running a playbook on users would do.
    Playbook(RunArgs),
}

/// `scimctl access ...`.
#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Every application of a user: state, expiry and why.
    User(StrId),
    /// Everyone with access to an application, and why.
    App(NumId),
    /// The joiner, mover, leaver and expiry events of a user.
    Events(StrId),
    /// Move the end of a (temporary) assignment.
    Extend(ExtendArgs),
    /// List exclusions (a user kept from an application whatever grants
    /// it), of one user and/or one application.
    Exclusions(ExclusionsArgs),
    /// Exclude a user from an application until lifted (or `--until`).
    Exclude(ExcludeArgs),
    /// Lift an exclusion: the reasons in force grant the access again.
    Lift(NumId),
}

/// Filters of `access exclusions`.
#[derive(Debug, Args)]
pub struct ExclusionsArgs {
    /// Only this user's (SCIM id).
    #[arg(long)]
    pub user: Option<String>,
    /// Only this application's (id).
    #[arg(long)]
    pub app: Option<i64>,
}

/// `access exclude`.
#[derive(Debug, Args)]
pub struct ExcludeArgs {
    /// The user (SCIM id).
    #[arg(long)]
    pub user: String,
    /// The application (id).
    #[arg(long)]
    pub app: i64,
    /// Why.
    #[arg(long)]
    pub reason: Option<String>,
    /// Its end (RFC 3339); absent: until lifted.
    #[arg(long)]
    pub until: Option<String>,
}

/// A numeric id.
#[derive(Debug, Args)]
pub struct NumId {
    /// The id.
    pub id: i64,
}

/// A SCIM id.
#[derive(Debug, Args)]
pub struct StrId {
    /// The user's SCIM id.
    pub id: String,
}

/// A JSON file.
#[derive(Debug, Args)]
pub struct FileArg {
    /// The JSON file (`-`: standard input).
    pub file: PathBuf,
}

/// An id and a JSON file.
#[derive(Debug, Args)]
pub struct IdFile {
    /// The id.
    pub id: i64,
    /// The JSON file (`-`: standard input).
    pub file: PathBuf,
}

/// A JSON file and the blast-radius confirmation.
#[derive(Debug, Args)]
pub struct ConfirmFile {
    /// The JSON file (`-`: standard input).
    pub file: PathBuf,
    /// Go ahead even over the blast-radius threshold.
    #[arg(long)]
    pub confirm: bool,
}

/// An id, a JSON file and the blast-radius confirmation.
#[derive(Debug, Args)]
pub struct ConfirmIdFile {
    /// The id.
    pub id: i64,
    /// The JSON file (`-`: standard input).
    pub file: PathBuf,
    /// Go ahead even over the blast-radius threshold.
    #[arg(long)]
    pub confirm: bool,
}

/// An id and the blast-radius confirmation.
#[derive(Debug, Args)]
pub struct ConfirmId {
    /// The id.
    pub id: i64,
    /// Go ahead even over the blast-radius threshold.
    #[arg(long)]
    pub confirm: bool,
}

/// A user and a JSON file.
#[derive(Debug, Args)]
pub struct UserFile {
    /// The user's SCIM id.
    pub id: String,
    /// The JSON file (`-`: standard input).
    pub file: PathBuf,
}

/// A playbook run.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The playbook id.
    pub id: i64,
    /// A user's SCIM id (repeat for more).
    #[arg(long = "user", required = true)]
    pub users: Vec<String>,
    /// The access granted ends then (RFC 3339).
    #[arg(long)]
    pub valid_until: Option<String>,
    /// Why (kept on the assignments).
    #[arg(long)]
    pub reason: Option<String>,
    /// Go ahead even over the blast-radius threshold.
    #[arg(long)]
    pub confirm: bool,
}

/// An extension.
#[derive(Debug, Args)]
pub struct ExtendArgs {
    /// The assignment id.
    pub id: i64,
    /// The new end (RFC 3339); `never` removes the end.
    #[arg(long)]
    pub until: String,
    /// Why.
    #[arg(long)]
    pub reason: Option<String>,
}

/// The management API client of these commands (and of
/// [`super::applications`]).
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    basic: Option<(String, String)>,
    out: Output,
}

impl Api {
    pub(crate) fn new(global: &GlobalArgs) -> Result<Self> {
        let given = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        let explicit = std::env::var("SCIMCTL_API_URL").ok();
        let base = api_url(global.url.as_deref(), explicit.as_deref()).map_err(|e| {
            Error::Usage(match e {
                ApiUrlError::Missing => "no server URL: pass --url or set SCIMCTL_URL".into(),
                ApiUrlError::NotScim(url) => format!(
                    "cannot tell the management API from --url {url} (it does not end in /scim/v2): set SCIMCTL_API_URL"
                ),
            })
        })?;
        let basic = match given(&global.basic) {
            Some(b) => {
                let (u, p) = b.split_once(':').ok_or_else(|| {
                    Error::Usage("--basic takes USER:PASSWORD (with a colon)".into())
                })?;
                Some((u.to_owned(), p.to_owned()))
            }
            None => None,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(global.timeout.max(1)))
            .user_agent(concat!("scimctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Failed(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            token: given(&global.token),
            basic,
            out: Output::new(global.json),
        })
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        } else if let Some((u, p)) = &self.basic {
            req = req.basic_auth(u, Some(p));
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let res = req
            .send()
            .await
            .map_err(|e| Error::Failed(format!("{method} {url}: {e}")))?;
        let status = res.status();
        let text = res
            .text()
            .await
            .map_err(|e| Error::Failed(format!("{method} {url}: {e}")))?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if !status.is_success() {
            let detail = value["detail"].as_str().unwrap_or_default();
            let kind = value["scimType"]
                .as_str()
                .map(|t| format!("{t}: "))
                .unwrap_or_default();
            return Err(Error::Failed(format!(
                "{method} {url}: {} {kind}{detail}",
                status.as_u16()
            )));
        }
        Ok(value)
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: &Value) -> Result<Value> {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    /// Deletes, then says what was deleted.
    pub(crate) async fn delete(&self, path: &str, what: &str, id: i64) -> Result<()> {
        self.call(reqwest::Method::DELETE, path, None).await?;
        self.show(&json!({"deleted": id}), |_| {
            format!("deleted {what} {id}\n")
        })
    }

    /// Prints `value` as JSON, or as `human` renders it.
    pub(crate) fn show(&self, value: &Value, human: impl FnOnce(&Value) -> String) -> Result<()> {
        self.out.show(value, human)
    }

    /// GETs `path` and shows the answer.
    pub(crate) async fn show_get(
        &self,
        path: &str,
        human: impl FnOnce(&Value) -> String,
    ) -> Result<()> {
        let v = self.get(path).await?;
        self.show(&v, human)
    }

    /// POSTs `body` to `path` and shows the answer.
    /// `POST /assignments/{id}/extend` (`access extend` and `assignments
    /// extend`): `never` removes the end.
    pub(crate) async fn extend_assignment(&self, a: &ExtendArgs) -> Result<()> {
        let until = if a.until == "never" {
            Value::Null
        } else {
            json!(a.until)
        };
        let mut body = json!({"validUntil": until});
        if let Some(r) = &a.reason {
            body["reason"] = json!(r);
        }
        self.show_post(&format!("/assignments/{}/extend", a.id), &body, |v| {
            format!(
                "assignment {} now ends {} (was {})\n",
                cell(&v["assignmentId"]),
                cell(&v["validUntil"]),
                cell(&v["oldValidUntil"])
            )
        })
        .await
    }

    pub(crate) async fn show_post(
        &self,
        path: &str,
        body: &Value,
        human: impl FnOnce(&Value) -> String,
    ) -> Result<()> {
        let v = self.post(path, body).await?;
        self.show(&v, human)
    }
}

fn with_confirm(mut body: Value, confirm: bool) -> Value {
    if confirm && let Some(o) = body.as_object_mut() {
        o.insert("confirm".into(), json!(true));
    }
    body
}

fn run_body(args: &RunArgs) -> Value {
    let mut body = json!({"users": args.users});
    if let Some(u) = &args.valid_until {
        body["validUntil"] = json!(u);
    }
    if let Some(r) = &args.reason {
        body["reason"] = json!(r);
    }
    with_confirm(body, args.confirm)
}

fn impact_text(v: &Value) -> String {
    let impact = &v["impact"];
    let rows: Vec<Vec<String>> = impact["applications"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|a| {
            vec![
                cell(&a["application"]),
                cell(&a["accountsCreated"]),
                cell(&a["accountsDeactivated"]),
            ]
        })
        .collect();
    let mut out = format!("users affected: {}\n", cell(&impact["usersAffected"]));
    if !rows.is_empty() {
        out.push_str(&table(&["APPLICATION", "CREATED", "DEACTIVATED"], &rows));
    }
    if v["blastRadiusExceeded"] == json!(true) {
        out.push_str("blast radius over the threshold: applying it needs --confirm\n");
    }
    out
}

fn run_text(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v["results"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|u| {
            let actions: Vec<String> = u["actions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter(|a| a["type"].is_string())
                .map(|a| format!("{} {}", cell(&a["type"]), cell(&a["status"])))
                .collect();
            let detail = if actions.is_empty() {
                cell(&u["detail"])
            } else {
                actions.join(", ")
            };
            vec![cell(&u["userId"]), cell(&u["status"]), detail]
        })
        .collect();
    let mut out = String::new();
    if v["id"].is_i64() {
        out.push_str(&format!(
            "run {} of playbook {} ({})\n",
            cell(&v["id"]),
            cell(&v["playbookId"]),
            cell(&v["source"])
        ));
    }
    out.push_str(&table(&["USER", "STATUS", "ACTIONS"], &rows));
    if v["impact"].is_object() {
        out.push_str(&impact_text(v));
    }
    out
}

/// When access ends: a leaver's grace says so.
fn expires(e: &Value) -> String {
    if e["entitlement"] == "grace" {
        format!("grace until {}", cell(&e["graceUntil"]))
    } else {
        cell(&e["expiresAt"])
    }
}

fn why(grants: &Value) -> String {
    grants
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|g| match g["why"].as_str() {
            Some("rule") => format!("rule {}", cell(&g["ruleId"])),
            Some("playbook") => format!("playbook {}", cell(&g["playbookId"])),
            Some("group") => match g["groupName"].as_str() {
                Some(name) => format!("group {name}"),
                None => format!("group {}", cell(&g["groupId"])),
            },
            Some(other) => other.to_owned(),
            None => "-".into(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `scimctl playbooks ...`.
pub async fn playbooks(global: &GlobalArgs, cmd: PlaybooksCommand) -> Result<()> {
    let api = Api::new(global)?;
    match cmd {
        PlaybooksCommand::List => {
            api.show_get("/playbooks", |v| {
                list_table(
                    &v["items"],
                    &["ID", "NAME", "ACTIONS", "DESCRIPTION"],
                    |p| {
                        vec![
                            cell(&p["id"]),
                            cell(&p["name"]),
                            p["actions"].as_array().map_or(0, Vec::len).to_string(),
                            cell(&p["description"]),
                        ]
                    },
                )
            })
            .await
        }
        PlaybooksCommand::Get(a) => api.show_get(&format!("/playbooks/{}", a.id), details).await,
        PlaybooksCommand::Create(a) => {
            api.show_post("/playbooks", &super::read_json(&a.file)?, |v| {
                format!(
                    "created playbook {} ({})\n",
                    cell(&v["id"]),
                    cell(&v["name"])
                )
            })
            .await
        }
        PlaybooksCommand::Update(a) => {
            let v = api
                .put(&format!("/playbooks/{}", a.id), &super::read_json(&a.file)?)
                .await?;
            api.show(&v, |v| format!("updated playbook {}\n", cell(&v["id"])))
        }
        PlaybooksCommand::Delete(a) => {
            api.delete(&format!("/playbooks/{}", a.id), "playbook", a.id)
                .await
        }
        PlaybooksCommand::Run(a) => {
            api.show_post(
                &format!("/playbooks/{}/runs", a.id),
                &run_body(&a),
                run_text,
            )
            .await
        }
        PlaybooksCommand::Preview(a) => preview_playbook(&api, &a).await,
        PlaybooksCommand::Runs(a) => {
            api.show_get(&format!("/playbooks/{}/runs", a.id), |v| {
                list_table(&v["items"], &["RUN", "AT", "SOURCE", "USERS"], |r| {
                    vec![
                        cell(&r["id"]),
                        cell(&r["at"]),
                        cell(&r["source"]),
                        r["results"].as_array().map_or(0, Vec::len).to_string(),
                    ]
                })
            })
            .await
        }
    }
}

async fn preview_playbook(api: &Api, a: &RunArgs) -> Result<()> {
    api.show_post(
        &format!("/playbooks/{}/preview", a.id),
        &run_body(a),
        run_text,
    )
    .await
}

fn rule_preview_text(v: &Value) -> String {
    let mut out = format!("users examined: {}\n", cell(&v["usersExamined"]));
    out.push_str(&impact_text(v));
    out
}

/// `scimctl rules ...`.
pub async fn rules(global: &GlobalArgs, cmd: RulesCommand) -> Result<()> {
    let api = Api::new(global)?;
    match cmd {
        RulesCommand::List => {
            api.show_get("/rules", |v| {
                list_table(
                    &v["items"],
                    &["ID", "NAME", "EVENT", "ENABLED", "PLAYBOOKS", "FILTER"],
                    |r| {
                        vec![
                            cell(&r["id"]),
                            cell(&r["name"]),
                            cell(&r["event"]),
                            cell(&r["enabled"]),
                            cell(&r["playbooks"]),
                            cell(&r["filter"]),
                        ]
                    },
                )
            })
            .await
        }
        RulesCommand::Get(a) => api.show_get(&format!("/rules/{}", a.id), details).await,
        RulesCommand::Create(a) => {
            let body = with_confirm(super::read_json(&a.file)?, a.confirm);
            api.show_post("/rules", &body, |v| {
                format!("created rule {} ({})\n", cell(&v["id"]), cell(&v["name"]))
            })
            .await
        }
        RulesCommand::Update(a) => {
            let body = with_confirm(super::read_json(&a.file)?, a.confirm);
            let v = api.put(&format!("/rules/{}", a.id), &body).await?;
            api.show(&v, |v| format!("updated rule {}\n", cell(&v["id"])))
        }
        RulesCommand::Delete(a) => {
            let path = format!("/rules/{}?confirm={}", a.id, a.confirm);
            api.delete(&path, "rule", a.id).await
        }
        RulesCommand::Preview(a) => preview_rule(&api, &a).await,
    }
}

async fn preview_rule(api: &Api, a: &FileArg) -> Result<()> {
    api.show_post(
        "/rules/preview",
        &super::read_json(&a.file)?,
        rule_preview_text,
    )
    .await
}

/// `scimctl runs ...`.
pub async fn runs(global: &GlobalArgs, cmd: RunsCommand) -> Result<()> {
    let api = Api::new(global)?;
    match cmd {
        RunsCommand::Get(a) => api.show_get(&format!("/runs/{}", a.id), run_text).await,
    }
}

/// `scimctl preview ...`.
pub async fn preview(global: &GlobalArgs, cmd: PreviewCommand) -> Result<()> {
    let api = Api::new(global)?;
    match cmd {
        PreviewCommand::User(a) => {
            let body = super::read_json(&a.file)?;
            api.show_post(&format!("/users/{}/preview", a.id), &body, |v| {
                let d = &v["decision"];
                format!(
                    "event: {}\nrules firing: {}\ngranted: {}\nrevoked: {}\n{}",
                    cell(&d["event"]),
                    cell(&d["rulesFired"]),
                    d["granted"].as_array().map_or(0, Vec::len),
                    d["revoked"].as_array().map_or(0, Vec::len),
                    impact_text(v)
                )
            })
            .await
        }
        PreviewCommand::Rule(a) => preview_rule(&api, &a).await,
        PreviewCommand::Playbook(a) => preview_playbook(&api, &a).await,
    }
}

/// `scimctl access ...`.
pub async fn access(global: &GlobalArgs, cmd: AccessCommand) -> Result<()> {
    let api = Api::new(global)?;
    match cmd {
        AccessCommand::User(a) => {
            api.show_get(&format!("/users/{}/access", a.id), |v| {
                let headers = ["APPLICATION", "STATE", "EXPIRES", "WHY"];
                let table = list_table(&v["applications"], &headers, |e| {
                    vec![
                        cell(&e["application"]),
                        cell(&e["state"]),
                        expires(e),
                        why(&e["grants"]),
                    ]
                });
                format!("{} ({})\n{table}", cell(&v["userName"]), cell(&v["userId"]))
            })
            .await
        }
        AccessCommand::App(a) => {
            api.show_get(&format!("/applications/{}/access", a.id), |v| {
                let headers = ["USER", "ID", "STATE", "EXPIRES", "WHY"];
                let table = list_table(&v["users"], &headers, |e| {
                    vec![
                        cell(&e["userName"]),
                        cell(&e["userId"]),
                        cell(&e["state"]),
                        expires(e),
                        why(&e["grants"]),
                    ]
                });
                format!(
                    "{}: {} user(s)\n{table}",
                    cell(&v["application"]),
                    cell(&v["totalResults"])
                )
            })
            .await
        }
        AccessCommand::Events(a) => {
            api.show_get(&format!("/users/{}/lifecycle", a.id), |v| {
                let headers = ["AT", "EVENT", "RULES FIRED", "GRANTED", "REVOKED", "CHANGE"];
                list_table(&v["items"], &headers, |e| {
                    let d = &e["detail"];
                    let n = |k: &str| d[k].as_array().map_or(0, Vec::len);
                    vec![
                        cell(&e["at"]),
                        cell(&e["event"]),
                        cell(&d["rulesFired"]),
                        n("granted").to_string(),
                        n("revoked").to_string(),
                        cell(&e["causeChangeSeq"]),
                    ]
                })
            })
            .await
        }
        AccessCommand::Exclusions(a) => {
            let mut query = Vec::new();
            if let Some(u) = &a.user {
                query.push(format!("user={u}"));
            }
            if let Some(app) = a.app {
                query.push(format!("application={app}"));
            }
            let path = if query.is_empty() {
                "/exclusions".to_owned()
            } else {
                format!("/exclusions?{}", query.join("&"))
            };
            api.show_get(&path, |v| {
                let headers = [
                    "ID",
                    "USER",
                    "APPLICATION",
                    "UNTIL",
                    "SOURCE",
                    "BY",
                    "REASON",
                ];
                list_table(&v["items"], &headers, |x| {
                    vec![
                        cell(&x["id"]),
                        cell(if x["userName"].is_null() {
                            &x["userId"]
                        } else {
                            &x["userName"]
                        }),
                        cell(&x["applicationId"]),
                        cell(&x["validUntil"]),
                        cell(&x["source"]),
                        cell(&x["createdBy"]),
                        cell(&x["reason"]),
                    ]
                })
            })
            .await
        }
        AccessCommand::Exclude(a) => {
            let mut body = json!({"userId": a.user, "applicationId": a.app});
            if let Some(r) = &a.reason {
                body["reason"] = json!(r);
            }
            if let Some(u) = &a.until {
                body["validUntil"] = json!(u);
            }
            api.show_post("/exclusions", &body, |v| {
                format!(
                    "exclusion {}: user {} kept from application {} until {}\n",
                    cell(&v["id"]),
                    cell(&v["userId"]),
                    cell(&v["applicationId"]),
                    if v["validUntil"].is_null() {
                        "lifted".to_owned()
                    } else {
                        cell(&v["validUntil"])
                    }
                )
            })
            .await
        }
        AccessCommand::Lift(a) => {
            api.delete(&format!("/exclusions/{}", a.id), "exclusion", a.id)
                .await
        }
        AccessCommand::Extend(a) => api.extend_assignment(&a).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impact_reads_as_a_table() {
        let v = json!({"impact": {"usersAffected": 1, "applications": [
            {"application": "Trello", "accountsCreated": 0, "accountsDeactivated": 1}]},
            "blastRadiusExceeded": true});
        let text = impact_text(&v);
        assert!(text.starts_with("users affected: 1\n"), "{text}");
        assert!(text.contains("Trello       0        1"), "{text}");
        assert!(text.contains("needs --confirm"), "{text}");
    }

    #[test]
    fn reasons_name_their_source() {
        let grants = json!([{"why": "rule", "ruleId": 2}, {"why": "manual"},
                            {"why": "group", "groupId": "g1"}]);
        assert_eq!(why(&grants), "rule 2, manual, group g1");
        let named = json!([{"why": "group", "groupId": "g1", "groupName": "Sales"}]);
        assert_eq!(why(&named), "group Sales");
    }

    #[test]
    fn a_grace_shows_until_when() {
        let e = json!({"expiresAt": "2026-12-08T10:00:00Z", "entitlement": "grace",
                       "graceUntil": "2026-12-08T10:00:00Z"});
        assert_eq!(expires(&e), "grace until 2026-12-08T10:00:00Z");
        assert_eq!(expires(&json!({"expiresAt": null})), "-");
    }
}
