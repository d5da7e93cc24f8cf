//! `scimctl reviews ...` and `scimctl audit ...`: access reviews and the
//! audit log of a scim-server, through its management API (`/api/v1`).
//!
//! The API's URL is `SCIMCTL_API_URL` when set, else `--url` with its
//! `/scim/v2` suffix replaced by `/api/v1`; the token is `--token`.

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::api::ApiUrlError;
use crate::cli::GlobalArgs;
use crate::error::{Error, Result};
use crate::output::{Output, cell, list_table};

/// `scimctl reviews ...`.
#[derive(Debug, Subcommand)]
pub enum ReviewsCommand {
    /// List campaigns with their progress.
    List,
    /// Start a campaign over an application, a group's members, or everyone.
    Create(CreateReviewArgs),
    /// Show a campaign's items.
    Items(ItemsArgs),
    /// Keep or revoke an item (revoke needs --comment).
    Decide(DecideArgs),
    /// Close a campaign now: undecided items take its default.
    Close(CampaignArg),
    /// Write a campaign's results as CSV or JSON to standard output.
    Export(ExportReviewArgs),
}

/// A campaign id.
#[derive(Debug, Args)]
pub struct CampaignArg {
    /// The campaign id.
    pub id: i64,
}

/// Options of `reviews create`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("scope").required(true).args(["application", "group", "all"]))]
pub struct CreateReviewArgs {
    /// A name for the campaign.
    #[arg(long)]
    pub name: String,
    /// Review the users assigned to this application (id).
    #[arg(long)]
    pub application: Option<i64>,
    /// Review the access of this group's members (SCIM id).
    #[arg(long)]
    pub group: Option<String>,
    /// Review every user's access.
    #[arg(long)]
    pub all: bool,
    /// Who decides: token:<id> or user:<SCIM id> (repeatable).
    #[arg(long = "reviewer")]
    pub reviewers: Vec<String>,
    /// The due date (RFC 3339, e.g. 2026-12-31T17:00:00Z).
    #[arg(long)]
    pub due: String,
    /// What undecided items become at the due date.
    #[arg(long, value_enum, default_value_t = DecisionArg::Keep)]
    pub default: DecisionArg,
}

/// Keep or revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DecisionArg {
    /// The access stays.
    Keep,
    /// The access is removed (the account deprovisioned downstream).
    Revoke,
}

impl DecisionArg {
    fn as_str(self) -> &'static str {
        match self {
            DecisionArg::Keep => "keep",
            DecisionArg::Revoke => "revoke",
        }
    }
}

/// Options of `reviews items`.
#[derive(Debug, Args)]
pub struct ItemsArgs {
    /// The campaign id.
    pub id: i64,
    /// Only undecided items.
    #[arg(long)]
    pub pending: bool,
}

/// Options of `reviews decide`.
#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The campaign id.
    pub id: i64,
    /// The item id.
    pub item: i64,
    /// keep or revoke.
    #[arg(value_enum)]
    pub decision: DecisionArg,
    /// Why (required for revoke).
    #[arg(long, short)]
    pub comment: Option<String>,
}

/// Options of `reviews export`.
#[derive(Debug, Args)]
pub struct ExportReviewArgs {
    /// The campaign id.
    pub id: i64,
    /// csv or json.
    #[arg(long, value_enum, default_value_t = ReviewFormat::Csv)]
    pub format: ReviewFormat,
}

/// The format of a review export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReviewFormat {
    /// One row per item.
    Csv,
    /// The campaign with its progress and items.
    Json,
}

/// `scimctl audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List entries (every page, up to --limit).
    Query(AuditFilter),
    /// Write matching entries as JSON lines to standard output.
    Export(AuditFilter),
    /// Verify the hash chain and print a signed checkpoint of its head;
    /// exit code 1 names the first bad entry, or says how the chain
    /// relates to --expect-head.
    Verify(VerifyArgs),
}

/// `scimctl audit verify` options.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A head kept from an earlier checkpoint (`SEQ:HASH`): fail unless the
    /// chain still holds that entry with that hash.
    #[arg(long, value_name = "SEQ:HASH")]
    pub expect_head: Option<String>,
}

/// Which audit entries.
#[derive(Debug, Args)]
pub struct AuditFilter {
    /// Only this actor (token:3, system:engine).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only this action, or a prefix ending in * (user.*).
    #[arg(long)]
    pub action: Option<String>,
    /// Only this target type (User, Group, Assignment, ReviewItem, ...).
    #[arg(long)]
    pub target_type: Option<String>,
    /// Only this target id.
    #[arg(long)]
    pub target_id: Option<String>,
    /// Only entries concerning this user or group (SCIM id).
    #[arg(long)]
    pub subject: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Only entries before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// Stop after this many entries (query only).
    #[arg(long, default_value_t = 1000)]
    pub limit: u64,
}

impl AuditFilter {
    fn params(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        for (k, v) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("targetType", &self.target_type),
            ("targetId", &self.target_id),
            ("subject", &self.subject),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if let Some(v) = v {
                p.push((k, v.clone()));
            }
        }
        p
    }
}

/// A client of the management API.
#[derive(Debug)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    out: Output,
}

/// The management API's base URL for a SCIM base URL: `SCIMCTL_API_URL`,
/// else the SCIM URL with `/scim/v2` replaced by `/api/v1` (appended when
/// the SCIM URL has another path).
pub fn api_url(scim_url: Option<&str>, explicit: Option<&str>) -> Result<String> {
    match super::api::api_url(scim_url, explicit) {
        Ok(url) => Ok(url),
        Err(ApiUrlError::NotScim(url)) => Ok(format!("{url}/api/v1")),
        Err(ApiUrlError::Missing) => Err(Error::Usage(
            "no server URL: pass --url (the SCIM base) or set SCIMCTL_API_URL".into(),
        )),
    }
}

impl Api {
    /// A client from the global options.
    pub fn new(global: &GlobalArgs) -> Result<Self> {
        let explicit = std::env::var("SCIMCTL_API_URL").ok();
        let base = api_url(global.url.as_deref(), explicit.as_deref())?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(global.timeout.max(1)))
            .user_agent(concat!("scimctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Usage(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            token: global.token.clone().filter(|t| !t.is_empty()),
            out: Output::new(global.json),
        })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<(String, String)> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url).query(query);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req
            .send()
            .await
            .map_err(|e| Error::Failed(format!("{method} {url}: {e}")))?;
        let status = res.status();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = res
            .text()
            .await
            .map_err(|e| Error::Failed(format!("{method} {url}: {e}")))?;
        if !status.is_success() {
            let detail = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["detail"].as_str().map(str::to_owned))
                .unwrap_or(text);
            return Err(Error::Failed(format!(
                "{method} {url}: {} {detail}",
                status.as_u16()
            )));
        }
        Ok((content_type, text))
    }

    async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value> {
        let (_, text) = self.send(method.clone(), path, query, body).await?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Failed(format!("{method} {path}: the answer is not JSON: {e}")))
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value> {
        self.json(reqwest::Method::GET, path, query, None).await
    }

    async fn post(&self, path: &str, body: Option<&Value>) -> Result<Value> {
        self.json(reqwest::Method::POST, path, &[], body).await
    }
}

fn progress(c: &Value) -> String {
    let p = &c["progress"];
    format!(
        "{} items: {} kept, {} revoked, {} pending",
        cell(&p["total"]),
        cell(&p["kept"]),
        cell(&p["revoked"]),
        cell(&p["pending"])
    )
}

fn campaign_line(c: &Value) -> String {
    format!(
        "campaign {} '{}' ({}, due {}, default {}): {}",
        cell(&c["id"]),
        cell(&c["name"]),
        cell(&c["status"]),
        cell(&c["dueAt"]),
        cell(&c["defaultDecision"]),
        progress(c)
    )
}

fn items_table(items: &Value) -> String {
    list_table(
        &items["items"],
        &["ITEM", "USER", "APPLICATION", "DECISION", "BY", "COMMENT"],
        |i| {
            vec![
                cell(&i["id"]),
                cell(&i["userName"]),
                cell(&i["applicationName"]),
                cell(&i["decision"]),
                cell(&i["decidedBy"]),
                cell(&i["comment"]),
            ]
        },
    )
}

/// Runs a `reviews` subcommand.
pub async fn reviews(global: &GlobalArgs, cmd: ReviewsCommand) -> Result<()> {
    let api = Api::new(global)?;
    let out = api.out;
    match cmd {
        ReviewsCommand::List => {
            let list = api.get("/reviews", &[]).await?;
            out.show(&list, |list| {
                list_table(
                    &list["items"],
                    &["ID", "NAME", "STATUS", "DUE", "ITEMS", "PENDING"],
                    |c| {
                        vec![
                            cell(&c["id"]),
                            cell(&c["name"]),
                            cell(&c["status"]),
                            cell(&c["dueAt"]),
                            cell(&c["progress"]["total"]),
                            cell(&c["progress"]["pending"]),
                        ]
                    },
                )
            })
        }
        ReviewsCommand::Create(args) => {
            let scope = match (args.application, &args.group, args.all) {
                (Some(app), _, _) => json!({"type": "application", "id": app}),
                (_, Some(group), _) => json!({"type": "group", "id": group}),
                _ => json!({"type": "all"}),
            };
            let body = json!({
                "name": args.name,
                "scope": scope,
                "reviewers": args.reviewers,
                "dueAt": args.due,
                "defaultDecision": args.default.as_str(),
            });
            let c = api.post("/reviews", Some(&body)).await?;
            out.show(&c, |c| format!("started {}\n", campaign_line(c)))
        }
        ReviewsCommand::Items(args) => {
            let query = if args.pending {
                vec![("pending", "true".to_owned())]
            } else {
                Vec::new()
            };
            let items = api
                .get(&format!("/reviews/{}/items", args.id), &query)
                .await?;
            out.show(&items, items_table)
        }
        ReviewsCommand::Decide(args) => {
            if args.decision == DecisionArg::Revoke
                && args.comment.as_deref().is_none_or(|c| c.trim().is_empty())
            {
                return Err(Error::Usage("a revoke needs --comment saying why".into()));
            }
            let mut body = json!({"decision": args.decision.as_str()});
            if let Some(c) = &args.comment {
                body["comment"] = json!(c);
            }
            let item = api
                .post(
                    &format!("/reviews/{}/items/{}/decision", args.id, args.item),
                    Some(&body),
                )
                .await?;
            out.show(&item, |item| {
                format!(
                    "item {}: {} for {} on {} ({})\n",
                    cell(&item["id"]),
                    cell(&item["decision"]),
                    cell(&item["userName"]),
                    cell(&item["applicationName"]),
                    cell(&item["outcome"])
                )
            })
        }
        ReviewsCommand::Close(arg) => {
            let c = api
                .post(&format!("/reviews/{}/close", arg.id), None)
                .await?;
            out.show(&c, |c| format!("closed {}\n", campaign_line(c)))
        }
        ReviewsCommand::Export(args) => {
            let format = match args.format {
                ReviewFormat::Csv => "csv",
                ReviewFormat::Json => "json",
            };
            let (_, body) = api
                .send(
                    reqwest::Method::GET,
                    &format!("/reviews/{}/export", args.id),
                    &[("format", format.to_owned())],
                    None,
                )
                .await?;
            out.text(&body)?;
            if !body.ends_with('\n') {
                out.line("")?;
            }
            Ok(())
        }
    }
}

/// The most entries `audit query` reads per request.
const AUDIT_PAGE: u64 = 1000;

/// Runs an `audit` subcommand.
pub async fn audit(global: &GlobalArgs, cmd: AuditCommand) -> Result<()> {
    let api = Api::new(global)?;
    let out = api.out;
    match cmd {
        AuditCommand::Query(filter) => {
            let mut entries: Vec<Value> = Vec::new();
            let mut after: Option<i64> = None;
            // Bounded: each page moves `after` forward, and the total is
            // capped by --limit.
            while (entries.len() as u64) < filter.limit {
                let want = (filter.limit - entries.len() as u64).min(AUDIT_PAGE);
                let mut query = filter.params();
                query.push(("limit", want.to_string()));
                if let Some(a) = after {
                    query.push(("after", a.to_string()));
                }
                let page = api.get("/audit", &query).await?;
                let got = page["entries"].as_array().cloned().unwrap_or_default();
                entries.extend(got);
                match page["next"].as_i64() {
                    Some(next) if Some(next) != after => after = Some(next),
                    _ => break,
                }
            }
            out.show(&json!({"entries": entries}), |v| {
                list_table(
                    &v["entries"],
                    &["SEQ", "AT", "ACTOR", "ACTION", "TARGET", "CAUSE"],
                    |e| {
                        vec![
                            cell(&e["seq"]),
                            cell(&e["at"]),
                            match e["actorName"].as_str() {
                                Some(name) => format!("{} ({name})", cell(&e["actor"])),
                                None => cell(&e["actor"]),
                            },
                            cell(&e["action"]),
                            format!("{} {}", cell(&e["targetType"]), cell(&e["targetId"])),
                            cell(&e["cause"]),
                        ]
                    },
                )
            })
        }
        AuditCommand::Export(filter) => {
            let (_, body) = api
                .send(
                    reqwest::Method::GET,
                    "/audit/export",
                    &filter.params(),
                    None,
                )
                .await?;
            out.text(&body)
        }
        AuditCommand::Verify(args) => {
            let mut query = Vec::new();
            if let Some(head) = &args.expect_head {
                query.push(("expectHead", head.clone()));
            }
            let v = api.get("/audit/verify", &query).await?;
            if out.is_json() {
                out.json_line(&v)?;
            } else {
                out.text(&verify_report(&v))?;
            }
            if v["valid"] == true {
                Ok(())
            } else if !v["firstBadSeq"].is_null() {
                Err(Error::Failed(format!(
                    "the audit chain is broken at seq {}: {}",
                    cell(&v["firstBadSeq"]),
                    cell(&v["reason"])
                )))
            } else {
                Err(Error::Failed(format!(
                    "the audit chain does not hold the kept head: {}",
                    cell(&v["expectedHead"]["detail"])
                )))
            }
        }
    }
}

/// `audit verify` for a person: the result, whether the chain is keyed,
/// the kept head's check and the checkpoint to keep.
fn verify_report(v: &Value) -> String {
    let mut out = String::new();
    if v["firstBadSeq"].is_null() {
        out.push_str(&format!(
            "the audit chain verifies: {} entries, head at seq {}\n",
            cell(&v["checked"]),
            cell(&v["headSeq"])
        ));
    }
    if v["keyed"] == true {
        out.push_str(&format!(
            "keyed: yes (key id {}); entries from seq {} carry MACs, {} earlier entries are unkeyed\n",
            cell(&v["keyId"]),
            cell(&v["keyedFrom"]),
            cell(&v["unkeyedEntries"])
        ));
    } else {
        out.push_str("keyed: no (the server has no audit key): any database writer could recompute the hashes\n");
    }
    if let Some(e) = v["expectedHead"].as_object() {
        let mark = if e.get("holds") == Some(&Value::Bool(true)) {
            "holds"
        } else {
            "FAILS"
        };
        out.push_str(&format!(
            "kept head {}: {mark}: {}\n",
            cell(&v["expectedHead"]["head"]),
            cell(&v["expectedHead"]["detail"])
        ));
    }
    if let Some(c) = v["checkpoint"].as_object() {
        let field = |k: &str| c.get(k).map(cell).unwrap_or_default();
        out.push_str(&format!(
            "checkpoint (keep it elsewhere; pass it back with --expect-head):\n  head {}\n  at {}\n  signature {}\n",
            field("head"),
            field("at"),
            field("signature")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_url_follows_the_scim_url() {
        assert_eq!(
            api_url(Some("http://127.0.0.1:8080/scim/v2/"), None).unwrap(),
            "http://127.0.0.1:8080/api/v1"
        );
        assert_eq!(
            api_url(Some("http://h/scim/v2"), Some("http://other/api/v1/")).unwrap(),
            "http://other/api/v1"
        );
        assert!(api_url(None, None).is_err());
    }
}
