//! `scimctl import users|groups FILE`: create many resources from JSON
//! lines or CSV, with Bulk when the provider supports it (in batches within
//! its `maxOperations` and `maxPayloadSize`) and concurrent POSTs
//! otherwise.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use scim_client::discovery::BulkLimits;
use scim_client::{ClientError, Query};
use scim_core::messages::{BulkMethod, BulkOperation, BulkOperationResponse, BulkRequest};
use serde_json::{Value, json};

use super::resource;
use crate::Context;
use crate::cli::{Format, ImportArgs, Kind};
use crate::error::{Error, Result};
use crate::records;

/// Operations per BulkRequest when the provider states no limit.
const DEFAULT_BATCH: u64 = 100;
/// Room for the BulkRequest envelope and each operation's method and path.
const ENVELOPE_BYTES: u64 = 256;
const OPERATION_BYTES: u64 = 96;

/// A record that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The 1-based line where the record starts.
    pub line: u64,
    /// Its userName (displayName for groups), when it has one.
    pub name: Option<String>,
    /// Why it failed.
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Resources created.
    pub created: u64,
    /// Records skipped because their name was taken (`--skip-existing`).
    pub skipped: u64,
    /// Records that failed, in line order.
    pub failed: Vec<Failure>,
    /// Records not sent because the import stopped.
    pub not_sent: u64,
    /// Why the import stopped early: an error that every further record
    /// would meet too (401, 403, 404, 405, 501, cannot connect).
    pub stopped: Option<String>,
}

/// A record ready to send.
#[derive(Debug)]
struct Pending {
    line: u64,
    name: Option<String>,
    resource: Value,
}

/// The attribute that names a resource of a kind, and must be unique.
fn name_attribute(kind: Kind) -> &'static str {
    match kind {
        Kind::Users => "userName",
        Kind::Groups => "displayName",
    }
}

/// The format of a file: from its extension, JSON lines unless `.csv`.
fn guess_format(path: &Path) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("csv") => Format::Csv,
        _ => Format::Jsonl,
    }
}

/// Runs `import`.
pub async fn import(ctx: &Context, args: ImportArgs) -> Result<()> {
    let ImportArgs {
        kind,
        file,
        format,
        skip_existing,
        no_bulk,
        concurrency,
        batch_size,
    } = args;
    let format = format.unwrap_or_else(|| guess_format(&file));
    let text = super::read_input(&file)?;
    let parsed = records::parse(&text, format, kind).map_err(Error::Input)?;
    if parsed.is_empty() {
        return Err(Error::Input(format!("no records in {}", file.display())));
    }
    let total = parsed.len() as u64;
    // The configuration first: it says whether Bulk is there, and a bad
    // URL or token fails here, before any record is sent.
    let capabilities = super::adopt_capabilities(ctx).await?;

    let key = name_attribute(kind);
    let mut summary = Summary::default();
    let mut pending = Vec::new();
    for record in parsed {
        match record.resource {
            Ok(resource) => pending.push(Pending {
                line: record.line,
                name: resource
                    .get(key)
                    .and_then(Value::as_str)
                    .map(str::to_string),
                resource,
            }),
            Err(reason) => summary.failed.push(Failure {
                line: record.line,
                name: None,
                reason,
            }),
        }
    }
    if skip_existing {
        let taken = existing_names(ctx, kind).await?;
        pending.retain(|p| {
            let exists = p
                .name
                .as_ref()
                .is_some_and(|n| taken.contains(&n.to_lowercase()));
            if exists {
                summary.skipped += 1;
            }
            !exists
        });
    }

    let progress = progress_bar(total, ctx.out.is_json());
    progress.inc(total - pending.len() as u64);
    match capabilities.bulk {
        Some(limits) if !no_bulk => {
            let batch = batch_size
                .unwrap_or(DEFAULT_BATCH)
                .min(if limits.max_operations > 0 {
                    limits.max_operations
                } else {
                    u64::MAX
                });
            send_bulk(
                ctx,
                kind,
                pending,
                limits,
                batch,
                skip_existing,
                &mut summary,
                &progress,
            )
            .await;
        }
        _ => {
            send_posts(
                ctx,
                kind,
                pending,
                concurrency.into(),
                skip_existing,
                &mut summary,
                &progress,
            )
            .await;
        }
    }
    progress.finish_and_clear();
    summary.failed.sort_by_key(|f| f.line);
    report(ctx, kind, &file, total, &summary)
}

/// The lowercased names of every resource of `kind` at the provider.
/// A provider that cannot list (404, 405, 501) gives none: its 409s then
/// tell which records to skip.
async fn existing_names(ctx: &Context, kind: Kind) -> Result<HashSet<String>> {
    let key = name_attribute(kind);
    let mut stream = Box::pin(resource::endpoint(ctx, kind).search(Query::all().attributes([key])));
    let mut names = HashSet::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(item) => {
                if let Some(name) = item.get(key).and_then(Value::as_str) {
                    names.insert(name.to_lowercase());
                }
            }
            Err(e) if matches!(e.status(), Some(404 | 405 | 501)) => {
                log::info!("cannot list existing resources ({e}); relying on 409 answers");
                return Ok(HashSet::new());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(names)
}

fn progress_bar(total: u64, json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {pos}/{len} ({eta} left)")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Whether an error is about the provider or the credentials rather than
/// the record, so that every further record would fail the same way.
fn stops_import(e: &ClientError) -> bool {
    match e.status() {
        Some(status) => matches!(status, 401 | 403 | 404 | 405 | 501),
        None => matches!(e, ClientError::Connect { .. } | ClientError::OAuth { .. }),
    }
}

/// Whether a failure means the name is taken and the record is to be
/// skipped.
fn is_taken(status: u16, skip_existing: bool) -> bool {
    skip_existing && status == 409
}

/// Concurrent POSTs, at most `concurrency` in flight.
async fn send_posts(
    ctx: &Context,
    kind: Kind,
    pending: Vec<Pending>,
    concurrency: usize,
    skip_existing: bool,
    summary: &mut Summary,
    progress: &ProgressBar,
) {
    let endpoint = resource::endpoint(ctx, kind);
    // Set on an error every further record would meet: records not yet
    // sent are then left alone, those in flight finish.
    let stop = AtomicBool::new(false);
    let mut results = futures::stream::iter(pending)
        .map(|p| {
            let endpoint = endpoint.clone();
            let stop = &stop;
            async move {
                if stop.load(Ordering::Relaxed) {
                    return (p, None);
                }
                let result = endpoint.create(&p.resource).await;
                (p, Some(result))
            }
        })
        .buffer_unordered(concurrency);
    while let Some((p, result)) = results.next().await {
        match result {
            None => summary.not_sent += 1,
            Some(Ok(_)) => summary.created += 1,
            Some(Err(e)) if e.status().is_some_and(|s| is_taken(s, skip_existing)) => {
                summary.skipped += 1;
            }
            Some(Err(e)) => {
                if stops_import(&e) && summary.stopped.is_none() {
                    stop.store(true, Ordering::Relaxed);
                    summary.stopped = Some(e.to_string());
                }
                summary.failed.push(Failure {
                    line: p.line,
                    name: p.name,
                    reason: e.to_string(),
                });
            }
        }
        progress.inc(1);
    }
}

/// BulkRequests of at most `batch` operations and about the provider's
/// `maxPayloadSize`, one after the other.
#[allow(clippy::too_many_arguments)] // reason: one call site; a struct would only rename them
async fn send_bulk(
    ctx: &Context,
    kind: Kind,
    pending: Vec<Pending>,
    limits: BulkLimits,
    batch: u64,
    skip_existing: bool,
    summary: &mut Summary,
    progress: &ProgressBar,
) {
    let path = match kind {
        Kind::Users => "/Users",
        Kind::Groups => "/Groups",
    };
    for chunk in batches(pending, batch, limits.max_payload_size) {
        let n = chunk.len() as u64;
        if summary.stopped.is_some() {
            summary.not_sent += n;
            progress.inc(n);
            continue;
        }
        let ops: Vec<BulkOperation> = chunk
            .iter()
            .map(|p| BulkOperation {
                method: BulkMethod::Post,
                bulk_id: Some(bulk_id(p.line)),
                version: None,
                path: path.to_string(),
                data: Some(p.resource.clone()),
            })
            .collect();
        match ctx.client.bulk(&BulkRequest::new(ops)).await {
            Ok(response) => tally_bulk(chunk, response.operations, skip_existing, summary),
            Err(e) => {
                if stops_import(&e) {
                    summary.stopped = Some(e.to_string());
                }
                summary.failed.extend(chunk.into_iter().map(|p| Failure {
                    line: p.line,
                    name: p.name,
                    reason: e.to_string(),
                }));
            }
        }
        progress.inc(n);
    }
}

fn bulk_id(line: u64) -> String {
    format!("line-{line}")
}

/// Splits records into batches of at most `batch` records and (by their
/// JSON size, roughly) `max_payload` bytes; 0 means no byte limit. A record
/// larger than the limit goes alone.
fn batches(pending: Vec<Pending>, batch: u64, max_payload: u64) -> Vec<Vec<Pending>> {
    let batch = usize::try_from(batch.max(1)).unwrap_or(usize::MAX);
    let mut out: Vec<Vec<Pending>> = Vec::new();
    let mut current = Vec::new();
    let mut size = ENVELOPE_BYTES;
    for p in pending {
        let op_size = p.resource.to_string().len() as u64 + OPERATION_BYTES;
        let full = current.len() >= batch || (max_payload > 0 && size + op_size > max_payload);
        if !current.is_empty() && full {
            out.push(std::mem::take(&mut current));
            size = ENVELOPE_BYTES;
        }
        size += op_size;
        current.push(p);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Counts the results of one BulkRequest; an operation the provider did
/// not answer for failed.
fn tally_bulk(
    chunk: Vec<Pending>,
    responses: Vec<BulkOperationResponse>,
    skip_existing: bool,
    summary: &mut Summary,
) {
    let mut by_id: HashMap<String, BulkOperationResponse> = responses
        .into_iter()
        .filter_map(|r| r.bulk_id.clone().map(|id| (id, r)))
        .collect();
    for p in chunk {
        let Some(r) = by_id.remove(&bulk_id(p.line)) else {
            summary.failed.push(Failure {
                line: p.line,
                name: p.name,
                reason: "no result for it in the BulkResponse".into(),
            });
            continue;
        };
        if (200..300).contains(&r.status) {
            summary.created += 1;
        } else if is_taken(r.status, skip_existing) {
            summary.skipped += 1;
        } else {
            summary.failed.push(Failure {
                line: p.line,
                name: p.name,
                reason: bulk_reason(&r),
            });
        }
    }
}

/// A failed bulk operation's error as one line: `409 uniqueness: detail`.
fn bulk_reason(r: &BulkOperationResponse) -> String {
    let body = r.response.as_ref();
    let field = |k: &str| body.and_then(|b| b.get(k)).and_then(Value::as_str);
    let mut out = format!("bulk POST: {}", r.status);
    if let Some(t) = field("scimType") {
        out.push(' ');
        out.push_str(t);
    }
    if let Some(d) = field("detail") {
        out.push_str(": ");
        out.push_str(d);
    }
    out
}

fn report(ctx: &Context, kind: Kind, file: &Path, total: u64, s: &Summary) -> Result<()> {
    let failed = s.failed.len() as u64;
    if ctx.out.is_json() {
        ctx.out.json_line(&json!({
            "total": total,
            "created": s.created,
            "skipped": s.skipped,
            "failed": failed,
            "notSent": s.not_sent,
            "stopped": s.stopped,
            "failures": s.failed.iter().map(|f| json!({
                "line": f.line,
                "name": f.name,
                "error": f.reason,
            })).collect::<Vec<_>>(),
        }))?;
    } else {
        let mut line = format!(
            "{}: {} {} created, {} skipped (already there), {failed} failed{}",
            file.display(),
            s.created,
            match kind {
                Kind::Users => "users",
                Kind::Groups => "groups",
            },
            s.skipped,
            if s.not_sent > 0 {
                format!(", {} not sent", s.not_sent)
            } else {
                String::new()
            },
        );
        if !s.failed.is_empty() {
            line.push(':');
        }
        ctx.out.line(&line)?;
        for f in &s.failed {
            let name = f
                .name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            ctx.out
                .line(&format!("  line {}{name}: {}", f.line, f.reason))?;
        }
    }
    if let Some(reason) = &s.stopped {
        return Err(Error::Failed(format!(
            "import stopped after {failed} of {total} records failed: {reason}"
        )));
    }
    if failed > 0 {
        return Err(Error::Failed(format!("{failed} of {total} records failed")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(line: u64, bytes: usize) -> Pending {
        Pending {
            line,
            name: None,
            resource: json!({"userName": "x".repeat(bytes)}),
        }
    }

    #[test]
    fn batches_respect_count_and_size() {
        let sizes = |b: Vec<Vec<Pending>>| b.iter().map(Vec::len).collect::<Vec<_>>();
        let ten = || (0..10).map(|i| pending(i, 100)).collect::<Vec<_>>();
        assert_eq!(sizes(batches(ten(), 4, 0)), [4, 4, 2]);
        let one = pending(0, 100).resource.to_string().len() as u64 + OPERATION_BYTES;
        assert_eq!(
            sizes(batches(ten(), 100, ENVELOPE_BYTES + 3 * one)),
            [3, 3, 3, 1]
        );
        assert_eq!(sizes(batches(ten(), 100, 1)), [1; 10]);
    }

    #[test]
    fn bulk_results_are_matched_by_bulk_id() {
        let response = |id: &str, status: u16, body: Option<Value>| BulkOperationResponse {
            location: None,
            method: BulkMethod::Post,
            bulk_id: Some(id.into()),
            version: None,
            status,
            response: body,
        };
        let mut summary = Summary::default();
        tally_bulk(
            vec![pending(2, 1), pending(3, 1), pending(4, 1), pending(5, 1)],
            vec![
                response(
                    "line-3",
                    409,
                    Some(json!({"scimType": "uniqueness", "detail": "taken"})),
                ),
                response("line-2", 201, None),
                response("line-5", 409, None),
            ],
            false,
            &mut summary,
        );
        assert_eq!(summary.created, 1);
        let reasons: Vec<_> = summary
            .failed
            .iter()
            .map(|f| (f.line, f.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (3, "bulk POST: 409 uniqueness: taken"),
                (4, "no result for it in the BulkResponse"),
                (5, "bulk POST: 409"),
            ]
        );
    }
}
