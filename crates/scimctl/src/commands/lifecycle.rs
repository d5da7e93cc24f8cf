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

use crate::cli::GlobalArgs;
use crate::error::{Error, Result};
use crate::output::{Output, details, table};

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

/// The management API client of these commands.
struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    basic: Option<(String, String)>,
    out: Output,
}

impl Api {
    fn new(global: &GlobalArgs) -> Result<Self> {
        let given = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        let base = match std::env::var("SCIMCTL_API_URL")
            .ok()
            .filter(|s| !s.is_empty())
        {
            Some(api) => api.trim_end_matches('/').to_owned(),
            None => {
                let url = given(&global.url).ok_or_else(|| {
                    Error::Usage("no server URL: pass --url or set SCIMCTL_URL".into())
                })?;
                let url = url.trim_end_matches('/');
                let root = url.strip_suffix("/scim/v2").ok_or_else(|| {
                    Error::Usage(format!(
                        "cannot tell the management API from --url {url} (it does not end in /scim/v2): set SCIMCTL_API_URL"
                    ))
                })?;
                format!("{root}/api/v1")
            }
        };
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

    async fn call(
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

    async fn get(&self, path: &str) -> Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Prints `value` as JSON, or as `human` renders it.
    fn show(&self, value: &Value, human: impl FnOnce(&Value) -> String) -> Result<()> {
        if self.out.is_json() {
            self.out.json_line(value)
        } else {
            self.out.text(&human(value))
        }
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
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
                s(&a["application"]),
                s(&a["accountsCreated"]),
                s(&a["accountsDeactivated"]),
            ]
        })
        .collect();
    let mut out = format!("users affected: {}\n", s(&impact["usersAffected"]));
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
                .map(|a| format!("{} {}", s(&a["type"]), s(&a["status"])))
                .collect();
            let detail = if actions.is_empty() {
                s(&u["detail"])
            } else {
                actions.join(", ")
            };
            vec![s(&u["userId"]), s(&u["status"]), detail]
        })
        .collect();
    let mut out = String::new();
    if v["id"].is_i64() {
        out.push_str(&format!(
            "run {} of playbook {} ({})\n",
            s(&v["id"]),
            s(&v["playbookId"]),
            s(&v["source"])
        ));
    }
    out.push_str(&table(&["USER", "STATUS", "ACTIONS"], &rows));
    if v["impact"].is_object() {
        out.push_str(&impact_text(v));
    }
    out
}

fn why(grants: &Value) -> String {
    grants
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|g| match g["why"].as_str() {
            Some("rule") => format!("rule {}", s(&g["ruleId"])),
            Some("playbook") => format!("playbook {}", s(&g["playbookId"])),
            Some("group") => format!("group {}", s(&g["groupId"])),
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
            let v = api.get("/playbooks").await?;
            api.show(&v, |v| {
                let rows: Vec<Vec<String>> = items(v)
                    .iter()
                    .map(|p| {
                        vec![
                            s(&p["id"]),
                            s(&p["name"]),
                            p["actions"].as_array().map_or(0, Vec::len).to_string(),
                            s(&p["description"]),
                        ]
                    })
                    .collect();
                table(&["ID", "NAME", "ACTIONS", "DESCRIPTION"], &rows)
            })
        }
        PlaybooksCommand::Get(a) => {
            let v = api.get(&format!("/playbooks/{}", a.id)).await?;
            api.show(&v, details)
        }
        PlaybooksCommand::Create(a) => {
            let v = api.post("/playbooks", &super::read_json(&a.file)?).await?;
            api.show(&v, |v| {
                format!("created playbook {} ({})\n", s(&v["id"]), s(&v["name"]))
            })
        }
        PlaybooksCommand::Update(a) => {
            let v = api
                .call(
                    reqwest::Method::PUT,
                    &format!("/playbooks/{}", a.id),
                    Some(&super::read_json(&a.file)?),
                )
                .await?;
            api.show(&v, |v| format!("updated playbook {}\n", s(&v["id"])))
        }
        PlaybooksCommand::Delete(a) => {
            api.call(
                reqwest::Method::DELETE,
                &format!("/playbooks/{}", a.id),
                None,
            )
            .await?;
            api.show(&json!({"deleted": a.id}), |_| {
                format!("deleted playbook {}\n", a.id)
            })
        }
        PlaybooksCommand::Run(a) => {
            let v = api
                .post(&format!("/playbooks/{}/runs", a.id), &run_body(&a))
                .await?;
            api.show(&v, run_text)
        }
        PlaybooksCommand::Preview(a) => preview_playbook(&api, &a).await,
        PlaybooksCommand::Runs(a) => {
            let v = api.get(&format!("/playbooks/{}/runs", a.id)).await?;
            api.show(&v, |v| {
                let rows: Vec<Vec<String>> = items(v)
                    .iter()
                    .map(|r| {
                        vec![
                            s(&r["id"]),
                            s(&r["at"]),
                            s(&r["source"]),
                            r["results"].as_array().map_or(0, Vec::len).to_string(),
                        ]
                    })
                    .collect();
                table(&["RUN", "AT", "SOURCE", "USERS"], &rows)
            })
        }
    }
}

async fn preview_playbook(api: &Api, a: &RunArgs) -> Result<()> {
    let v = api
        .post(&format!("/playbooks/{}/preview", a.id), &run_body(a))
        .await?;
    api.show(&v, run_text)
}

fn rule_preview_text(v: &Value) -> String {
    let mut out = format!("users examined: {}\n", s(&v["usersExamined"]));
    out.push_str(&impact_text(v));
    out
}

/// `scimctl rules ...`.
pub async fn rules(global: &GlobalArgs, cmd: RulesCommand) -> Result<()> {
    let api = Api::new(global)?;
    match cmd {
        RulesCommand::List => {
            let v = api.get("/rules").await?;
            api.show(&v, |v| {
                let rows: Vec<Vec<String>> = items(v)
                    .iter()
                    .map(|r| {
                        vec![
                            s(&r["id"]),
                            s(&r["name"]),
                            s(&r["event"]),
                            s(&r["enabled"]),
                            s(&r["playbooks"]),
                            s(&r["filter"]),
                        ]
                    })
                    .collect();
                table(
                    &["ID", "NAME", "EVENT", "ENABLED", "PLAYBOOKS", "FILTER"],
                    &rows,
                )
            })
        }
        RulesCommand::Get(a) => {
            let v = api.get(&format!("/rules/{}", a.id)).await?;
            api.show(&v, details)
        }
        RulesCommand::Create(a) => {
            let body = with_confirm(super::read_json(&a.file)?, a.confirm);
            let v = api.post("/rules", &body).await?;
            api.show(&v, |v| {
                format!("created rule {} ({})\n", s(&v["id"]), s(&v["name"]))
            })
        }
        RulesCommand::Update(a) => {
            let body = with_confirm(super::read_json(&a.file)?, a.confirm);
            let v = api
                .call(
                    reqwest::Method::PUT,
                    &format!("/rules/{}", a.id),
                    Some(&body),
                )
                .await?;
            api.show(&v, |v| format!("updated rule {}\n", s(&v["id"])))
        }
        RulesCommand::Delete(a) => {
            api.call(
                reqwest::Method::DELETE,
                &format!("/rules/{}?confirm={}", a.id, a.confirm),
                None,
            )
            .await?;
            api.show(&json!({"deleted": a.id}), |_| {
                format!("deleted rule {}\n", a.id)
            })
        }
        RulesCommand::Preview(a) => preview_rule(&api, &a).await,
    }
}

async fn preview_rule(api: &Api, a: &FileArg) -> Result<()> {
    let v = api
        .post("/rules/preview", &super::read_json(&a.file)?)
        .await?;
    api.show(&v, rule_preview_text)
}

/// `scimctl runs ...`.
pub async fn runs(global: &GlobalArgs, cmd: RunsCommand) -> Result<()> {
    let api = Api::new(global)?;
    match cmd {
        RunsCommand::Get(a) => {
            let v = api.get(&format!("/runs/{}", a.id)).await?;
            api.show(&v, run_text)
        }
    }
}

/// `scimctl preview ...`.
pub async fn preview(global: &GlobalArgs, cmd: PreviewCommand) -> Result<()> {
    let api = Api::new(global)?;
    match cmd {
        PreviewCommand::User(a) => {
            let v = api
                .post(
                    &format!("/users/{}/preview", a.id),
                    &super::read_json(&a.file)?,
                )
                .await?;
            api.show(&v, |v| {
                let d = &v["decision"];
                format!(
                    "event: {}\nrules firing: {}\ngranted: {}\nrevoked: {}\n{}",
                    s(&d["event"]),
                    s(&d["rulesFired"]),
                    d["granted"].as_array().map_or(0, Vec::len),
                    d["revoked"].as_array().map_or(0, Vec::len),
                    impact_text(v)
                )
            })
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
            let v = api.get(&format!("/users/{}/access", a.id)).await?;
            api.show(&v, |v| {
                let rows: Vec<Vec<String>> = v["applications"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|e| {
                        vec![
                            s(&e["application"]),
                            s(&e["state"]),
                            s(&e["expiresAt"]),
                            why(&e["grants"]),
                        ]
                    })
                    .collect();
                format!(
                    "{} ({})\n{}",
                    s(&v["userName"]),
                    s(&v["userId"]),
                    table(&["APPLICATION", "STATE", "EXPIRES", "WHY"], &rows)
                )
            })
        }
        AccessCommand::App(a) => {
            let v = api.get(&format!("/applications/{}/access", a.id)).await?;
            api.show(&v, |v| {
                let rows: Vec<Vec<String>> = v["users"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|e| {
                        vec![
                            s(&e["userName"]),
                            s(&e["userId"]),
                            s(&e["state"]),
                            s(&e["expiresAt"]),
                            why(&e["grants"]),
                        ]
                    })
                    .collect();
                format!(
                    "{}: {} user(s)\n{}",
                    s(&v["application"]),
                    s(&v["totalResults"]),
                    table(&["USER", "ID", "STATE", "EXPIRES", "WHY"], &rows)
                )
            })
        }
        AccessCommand::Events(a) => {
            let v = api.get(&format!("/users/{}/lifecycle", a.id)).await?;
            api.show(&v, |v| {
                let rows: Vec<Vec<String>> = items(v)
                    .iter()
                    .map(|e| {
                        let d = &e["detail"];
                        let n = |k: &str| d[k].as_array().map_or(0, Vec::len);
                        vec![
                            s(&e["at"]),
                            s(&e["event"]),
                            s(&d["rulesFired"]),
                            n("granted").to_string(),
                            n("revoked").to_string(),
                            s(&e["causeChangeSeq"]),
                        ]
                    })
                    .collect();
                table(
                    &["AT", "EVENT", "RULES FIRED", "GRANTED", "REVOKED", "CHANGE"],
                    &rows,
                )
            })
        }
        AccessCommand::Extend(a) => {
            let until = if a.until == "never" {
                Value::Null
            } else {
                json!(a.until)
            };
            let mut body = json!({"validUntil": until});
            if let Some(r) = &a.reason {
                body["reason"] = json!(r);
            }
            let v = api
                .post(&format!("/assignments/{}/extend", a.id), &body)
                .await?;
            api.show(&v, |v| {
                format!(
                    "assignment {} now ends {} (was {})\n",
                    s(&v["assignmentId"]),
                    s(&v["validUntil"]),
                    s(&v["oldValidUntil"])
                )
            })
        }
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
    }
}
