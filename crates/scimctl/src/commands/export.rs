//! `scimctl export users|groups`: every resource (or those matching a
//! filter) to standard output, as JSON lines or CSV that `import` reads
//! back.

use std::io::{BufWriter, Write as _};

use futures::StreamExt as _;
use scim_client::Query;

use super::resource;
use crate::Context;
use crate::cli::{ExportArgs, Format};
use crate::error::{Error, Result};
use crate::records::{self, Column};

/// Runs `export`.
pub async fn export(ctx: &Context, args: ExportArgs) -> Result<()> {
    let ExportArgs {
        kind,
        filter,
        format,
        columns,
    } = args;
    super::adopt_capabilities(ctx).await?;
    let query = Query {
        filter,
        ..Query::default()
    };
    let mut stream = Box::pin(resource::endpoint(ctx, kind).search(query));
    let mut out = BufWriter::new(std::io::stdout());
    let mut count = 0u64;
    match format {
        Format::Jsonl => {
            while let Some(item) = stream.next().await {
                serde_json::to_writer(&mut out, &item?).map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
                count += 1;
            }
        }
        Format::Csv => {
            let names = if columns.is_empty() {
                records::default_columns(kind)
            } else {
                columns
            };
            let parsed = names
                .iter()
                .map(|n| export_column(n))
                .collect::<Result<Vec<_>>>()?;
            let mut writer = csv::Writer::from_writer(&mut out);
            writer.write_record(&names).map_err(csv_error)?;
            while let Some(item) = stream.next().await {
                let item = item?;
                writer
                    .write_record(parsed.iter().map(|c| c.get(&item)))
                    .map_err(csv_error)?;
                count += 1;
            }
            writer.flush()?;
        }
    }
    out.flush()?;
    if !ctx.out.is_json() {
        eprintln!("exported {count} {}", kind_plural(kind, count));
    }
    Ok(())
}

fn kind_plural(kind: crate::cli::Kind, n: u64) -> String {
    let noun = crate::output::noun(kind);
    if n == 1 {
        noun.to_string()
    } else {
        format!("{noun}s")
    }
}

/// A CSV column to export: as import reads it, except that `id` and
/// `meta.*`, which import ignores, are written.
fn export_column(name: &str) -> Result<Column> {
    let lower = name.trim().to_ascii_lowercase();
    if lower == "id" || lower.starts_with("meta.") {
        return Ok(Column::Path(
            name.trim().split('.').map(str::to_string).collect(),
        ));
    }
    Column::parse(name).map_err(Error::Usage)
}

fn csv_error(e: csv::Error) -> Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::Io(io),
        other => Error::Io(std::io::Error::other(format!("{other:?}"))),
    }
}
