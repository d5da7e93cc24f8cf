//! `scimctl discover`: what the service provider supports.

use scim_client::{Capabilities, Discovery, Paging};
use serde_json::{Value, json};

use crate::Context;
use crate::error::Result;
use crate::output;

/// Reads the discovery endpoints and prints a summary.
pub async fn discover(ctx: &Context) -> Result<()> {
    let discovery = ctx.client.discover().await?;
    if ctx.out.is_json() {
        return ctx.out.json_line(&as_json(&discovery));
    }
    ctx.out
        .text(&human(ctx.client.base_url().as_str(), &discovery))
}

fn capabilities_json(c: &Capabilities) -> Value {
    json!({
        "patch": c.patch,
        "bulk": c.bulk.map(|b| json!({
            "maxOperations": b.max_operations,
            "maxPayloadSize": b.max_payload_size,
        })),
        "filter": c.filter,
        "maxResults": c.max_results,
        "sort": c.sort,
        "etag": c.etag,
        "changePassword": c.change_password,
        "paging": match c.paging {
            Paging::Index => "index",
            Paging::Cursor => "cursor",
        },
        "maxPageSize": c.max_page_size,
    })
}

/// The summary for scripts: the capabilities the client uses, the
/// ServiceProviderConfig as served, the resource types, the schema ids.
fn as_json(d: &Discovery) -> Value {
    json!({
        "capabilities": capabilities_json(&d.capabilities),
        "serviceProviderConfig": d.config,
        "resourceTypes": d.resource_types.iter().map(|rt| json!({
            "id": rt.id,
            "name": rt.name,
            "endpoint": rt.endpoint,
            "schema": rt.schema,
            "schemaExtensions": rt.schema_extensions.iter().map(|e| e.schema.clone()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "schemas": d.schemas.iter().map(|s| json!({
            "id": s.id,
            "name": s.name,
            "attributes": s.attributes.len(),
        })).collect::<Vec<_>>(),
        "notes": d.notes,
    })
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn human(url: &str, d: &Discovery) -> String {
    let c = &d.capabilities;
    let mut out = format!("Service provider {url}\n\n");
    let bulk = match c.bulk {
        Some(b) => format!(
            "yes (maxOperations {}, maxPayloadSize {})",
            b.max_operations, b.max_payload_size
        ),
        None => "no".into(),
    };
    let filter = match c.max_results {
        Some(n) if c.filter => format!("yes (maxResults {n})"),
        _ => yes_no(c.filter).into(),
    };
    let paging = match (c.paging, c.max_page_size) {
        (Paging::Cursor, Some(n)) => format!("cursor (maxPageSize {n})"),
        (Paging::Cursor, None) => "cursor".into(),
        (Paging::Index, _) => "index".into(),
    };
    let auth = d
        .config
        .as_ref()
        .map(|cfg| {
            cfg.authentication_schemes
                .iter()
                .map(|a| a.kind.clone())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".into());
    let rows = [
        ["PATCH", yes_no(c.patch)],
        ["Bulk", &bulk],
        ["Filter", &filter],
        ["Sort", yes_no(c.sort)],
        ["ETag", yes_no(c.etag)],
        ["Change password", yes_no(c.change_password)],
        ["Paging", &paging],
        ["Authentication", &auth],
    ]
    .map(|[k, v]| vec![k.to_string(), v.to_string()]);
    out.push_str(&output::table(&["FEATURE", "SUPPORTED"], &rows));
    if !d.resource_types.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = d
            .resource_types
            .iter()
            .map(|rt| {
                let mut schemas = rt.schema.clone();
                for e in &rt.schema_extensions {
                    schemas.push_str(" + ");
                    schemas.push_str(&e.schema);
                }
                vec![rt.name.clone(), rt.endpoint.clone(), schemas]
            })
            .collect();
        out.push_str(&output::table(
            &["RESOURCE TYPE", "ENDPOINT", "SCHEMAS"],
            &rows,
        ));
    }
    if !d.schemas.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = d
            .schemas
            .iter()
            .map(|s| {
                vec![
                    s.id.clone(),
                    s.name.clone().unwrap_or_else(|| "-".into()),
                    s.attributes.len().to_string(),
                ]
            })
            .collect();
        out.push_str(&output::table(&["SCHEMA", "NAME", "ATTRIBUTES"], &rows));
    }
    for note in &d.notes {
        out.push_str(&format!("\nnote: {note}"));
    }
    if !d.notes.is_empty() {
        out.push('\n');
    }
    out
}
