//! What users and groups have in common: list, get, create, patch and
//! delete on an endpoint, as `serde_json::Value`s so that every attribute
//! the provider serves is shown.

use futures::StreamExt as _;
use scim_client::{Endpoint, PatchOp, PatchOperation, Query};
use scim_core::messages::{PatchRequest, SortOrder};
use serde_json::{Value, json};

use crate::Context;
use crate::cli::{Kind, ListArgs, OpKind, PatchArgs};
use crate::error::{Error, Result};
use crate::output::{self, noun};

/// The endpoint of a kind.
pub fn endpoint(ctx: &Context, kind: Kind) -> Endpoint<Value> {
    ctx.client.endpoint(match kind {
        Kind::Users => "Users",
        Kind::Groups => "Groups",
    })
}

/// `list`: every page, as a table or a JSON array.
pub async fn list(ctx: &Context, kind: Kind, args: ListArgs) -> Result<()> {
    let ListArgs {
        filter,
        attributes,
        sort_by,
        descending,
        limit,
        page_size,
    } = args;
    // Sorting is sent only to providers that announce it; filters they
    // cannot evaluate are applied here.
    super::adopt_capabilities(ctx).await?;
    let query = Query {
        filter,
        attributes,
        sort_by,
        sort_order: Some(if descending {
            SortOrder::Descending
        } else {
            SortOrder::Ascending
        }),
        page_size,
        limit,
        ..Query::default()
    };
    let mut stream = Box::pin(endpoint(ctx, kind).search(query));
    if ctx.out.is_json() {
        // Streamed: a large listing is never held in memory. Nothing is
        // printed before the first page has arrived, so a command that
        // fails at once leaves standard output empty.
        let Some(first) = stream.next().await.transpose()? else {
            return ctx.out.line("[]");
        };
        ctx.out.text(&format!("[\n{first}"))?;
        while let Some(item) = stream.next().await {
            ctx.out.text(&format!(",\n{}", item?))?;
        }
        return ctx.out.line("\n]");
    }
    let mut rows = Vec::new();
    while let Some(item) = stream.next().await {
        rows.push(output::row(kind, &item?));
    }
    if rows.is_empty() {
        eprintln!("no {}s", noun(kind));
        return Ok(());
    }
    ctx.out.text(&output::table(output::headers(kind), &rows))
}

/// `get ID`.
pub async fn get(ctx: &Context, kind: Kind, id: &str) -> Result<()> {
    let resource = endpoint(ctx, kind).get(id).await?;
    ctx.out.resource(&resource)
}

/// Creates a resource and reports it.
pub async fn create(ctx: &Context, kind: Kind, resource: Value) -> Result<()> {
    let created = endpoint(ctx, kind).create(&resource).await?;
    if ctx.out.is_json() {
        return ctx.out.json_line(&created);
    }
    let name = match kind {
        Kind::Users => &created["userName"],
        Kind::Groups => &created["displayName"],
    };
    ctx.out.line(&format!(
        "created {} {} (id {})",
        noun(kind),
        name.as_str().unwrap_or("?"),
        created["id"].as_str().unwrap_or("?")
    ))
}

/// Sends a PATCH and reports the result.
pub async fn patch(ctx: &Context, kind: Kind, id: &str, request: &PatchRequest) -> Result<()> {
    let patched = endpoint(ctx, kind).patch_and_get(id, request, None).await?;
    if ctx.out.is_json() {
        return ctx.out.json_line(&patched);
    }
    let ops = request.operations.len();
    ctx.out.line(&format!(
        "patched {} {id} ({ops} operation{})",
        noun(kind),
        if ops == 1 { "" } else { "s" }
    ))
}

/// `delete ID`: a resource that is not there is an error.
pub async fn delete(ctx: &Context, kind: Kind, id: &str) -> Result<()> {
    if !endpoint(ctx, kind).delete(id, None).await? {
        return Err(Error::Failed(format!("no {} with id {id:?}", noun(kind))));
    }
    if ctx.out.is_json() {
        return ctx.out.json_line(&json!({"deleted": id}));
    }
    ctx.out.line(&format!("deleted {} {id}", noun(kind)))
}

/// The PatchOp message of `patch`: from `--file`, or from the `--op`,
/// `--path` and `--value` options, each path and value going to the `--op`
/// before it.
pub fn patch_request(args: &PatchArgs) -> Result<PatchRequest> {
    if let Some(file) = &args.file {
        let value = super::read_json(file)?;
        let value = match value {
            Value::Array(ops) => json!({"Operations": ops}),
            other => other,
        };
        let request: PatchRequest = serde_json::from_value(value)
            .map_err(|e| Error::Input(format!("not a PatchOp message: {e}")))?;
        if request.operations.is_empty() {
            return Err(Error::Input("the PatchOp message has no Operations".into()));
        }
        return Ok(PatchRequest::new(request.operations));
    }
    let ops = pair_operations(args)?;
    Ok(scim_client::patch::patch_request(&ops))
}

fn pair_operations(args: &PatchArgs) -> Result<Vec<PatchOperation>> {
    let pos = &args.positions;
    if pos.op.len() != args.op.len()
        || pos.path.len() != args.path.len()
        || pos.value.len() != args.value.len()
    {
        return Err(Error::Usage(
            "cannot pair --path and --value with --op".into(),
        ));
    }
    let owner = |index: usize, what: &str| -> Result<usize> {
        pos.op
            .iter()
            .rposition(|&o| o < index)
            .ok_or_else(|| Error::Usage(format!("--{what} before any --op")))
    };
    let mut paths: Vec<Option<String>> = vec![None; args.op.len()];
    let mut values: Vec<Option<Value>> = vec![None; args.op.len()];
    for (i, path) in args.path.iter().enumerate() {
        let op = owner(pos.path[i], "path")?;
        if paths[op].replace(path.clone()).is_some() {
            return Err(Error::Usage(format!(
                "--op number {} has two --path",
                op + 1
            )));
        }
    }
    for (i, raw) in args.value.iter().enumerate() {
        let op = owner(pos.value[i], "value")?;
        // JSON when it parses; otherwise the text itself.
        let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.clone()));
        if values[op].replace(value).is_some() {
            return Err(Error::Usage(format!(
                "--op number {} has two --value",
                op + 1
            )));
        }
    }
    let mut out = Vec::new();
    for (i, kind) in args.op.iter().enumerate() {
        let (path, value) = (paths[i].take(), values[i].take());
        let n = i + 1;
        let op = match kind {
            OpKind::Add => PatchOp::Add,
            OpKind::Replace => PatchOp::Replace,
            OpKind::Remove => PatchOp::Remove,
        };
        match (op, &path, &value) {
            (PatchOp::Remove, None, _) => {
                return Err(Error::Usage(format!(
                    "--op number {n} (remove) needs a --path"
                )));
            }
            (PatchOp::Remove, Some(_), Some(_)) => {
                return Err(Error::Usage(format!(
                    "--op number {n} (remove) takes no --value"
                )));
            }
            (PatchOp::Add | PatchOp::Replace, _, None) => {
                return Err(Error::Usage(format!(
                    "--op number {n} ({op}) needs a --value"
                )));
            }
            (PatchOp::Add | PatchOp::Replace, None, Some(v)) if !v.is_object() => {
                return Err(Error::Usage(format!(
                    "--op number {n} ({op}) without --path needs an object --value"
                )));
            }
            _ => {}
        }
        out.push(PatchOperation { op, path, value });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command, GroupsCommand, UsersCommand};

    fn ops(args: &[&str]) -> Result<Vec<Value>> {
        let mut argv = vec!["scimctl", "users", "patch", "1"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_args(argv).unwrap();
        let (Command::Users(UsersCommand::Patch(p)) | Command::Groups(GroupsCommand::Patch(p))) =
            cli.command
        else {
            panic!("not a patch")
        };
        Ok(patch_request(&p)?.operations)
    }

    #[test]
    fn options_pair_in_order() {
        let got = ops(&[
            "--op",
            "replace",
            "--value",
            "false",
            "--path",
            "active",
            "--op",
            "remove",
            "--path",
            "title",
            "--op",
            "add",
            "--value",
            r#"{"nickName":"B"}"#,
            "--op",
            "replace",
            "--path",
            "displayName",
            "--value",
            "Babs J",
        ])
        .unwrap();
        assert_eq!(
            got,
            [
                json!({"op": "replace", "path": "active", "value": false}),
                json!({"op": "remove", "path": "title"}),
                json!({"op": "add", "value": {"nickName": "B"}}),
                json!({"op": "replace", "path": "displayName", "value": "Babs J"}),
            ]
        );
    }

    #[test]
    fn incomplete_operations_are_usage_errors() {
        let msg = |args: &[&str]| ops(args).unwrap_err().to_string();
        assert_eq!(
            msg(&["--op", "remove"]),
            "--op number 1 (remove) needs a --path"
        );
        assert_eq!(
            msg(&["--op", "add", "--path", "x"]),
            "--op number 1 (add) needs a --value"
        );
        assert_eq!(
            msg(&["--op", "add", "--path", "x", "--value", "1", "--value", "2"]),
            "--op number 1 has two --value"
        );
        assert_eq!(
            msg(&["--op", "replace", "--value", "1"]),
            "--op number 1 (replace) without --path needs an object --value"
        );
    }
}
