//! The commands, one module per group: each takes the [`Context`] and its
//! parsed options.

pub mod api;
pub mod applications;
pub mod discover;
pub mod engine;
pub mod export;
pub mod governance;
pub mod groups;
pub mod import;
pub mod lifecycle;
pub mod resource;
pub mod users;

use std::io::Read as _;
use std::path::Path;

use scim_client::Capabilities;
use serde_json::Value;

use crate::Context;
use crate::cli::{Command, GlobalArgs};
use crate::error::{Error, Result};

/// Runs one command. Each builds what it talks to from the global
/// options: the SCIM commands a [`Context`] with a SCIM client; commands
/// for another API (such as the provisioning engine's `/api/v1`) would
/// build their own client here, from the same `--url` and credentials.
pub async fn run(global: &GlobalArgs, command: Command) -> Result<()> {
    let scim = || crate::context(global);
    match command {
        Command::Discover => discover::discover(&scim()?).await,
        Command::Users(cmd) => users::run(&scim()?, cmd).await,
        Command::Groups(cmd) => groups::run(&scim()?, cmd).await,
        Command::Import(args) => import::import(&scim()?, args).await,
        Command::Export(args) => export::export(&scim()?, args).await,
        Command::Engine(args) => engine::run(global, args).await,
        Command::Reviews(cmd) => governance::reviews(global, cmd).await,
        Command::Audit(cmd) => governance::audit(global, cmd).await,
        Command::Apps(cmd) => applications::apps(global, cmd).await,
        Command::Assignments(cmd) => applications::assignments(global, cmd).await,
        Command::Playbooks(cmd) => lifecycle::playbooks(global, cmd).await,
        Command::Rules(cmd) => lifecycle::rules(global, cmd).await,
        Command::Runs(cmd) => lifecycle::runs(global, cmd).await,
        Command::Preview(cmd) => lifecycle::preview(global, cmd).await,
        Command::Access(cmd) => lifecycle::access(global, cmd).await,
    }
}

/// Reads the provider's ServiceProviderConfig (one request) and adopts
/// what it announces: filters the provider cannot evaluate are then
/// applied by the client, pages follow its limits and paging method, sort
/// and Bulk are used only where announced. A provider without one (404,
/// 405, 501) keeps the assumed capabilities; other errors (401, cannot
/// connect) are returned.
pub async fn adopt_capabilities(ctx: &Context) -> Result<Capabilities> {
    match ctx.client.service_provider_config().await {
        Ok(config) => ctx
            .client
            .set_capabilities(Capabilities::from_config(&config)),
        Err(e) if matches!(e.status(), Some(404 | 405 | 501)) => {
            log::info!("no ServiceProviderConfig ({e}); assuming the usual capabilities");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(ctx.client.capabilities())
}

/// Reads a file, or standard input for `-`, as UTF-8 text.
pub fn read_input(path: &Path) -> Result<String> {
    let bytes = if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        buf
    } else {
        std::fs::read(path)
            .map_err(|e| Error::Input(format!("cannot read {}: {e}", path.display())))?
    };
    String::from_utf8(bytes).map_err(|_| Error::Input(format!("{} is not UTF-8 text", shown(path))))
}

/// Reads a file, or standard input for `-`, as one JSON document.
pub fn read_json(path: &Path) -> Result<Value> {
    let text = read_input(path)?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Input(format!("{} is not JSON: {e}", shown(path))))
}

fn shown(path: &Path) -> String {
    if path == Path::new("-") {
        "standard input".into()
    } else {
        path.display().to_string()
    }
}
