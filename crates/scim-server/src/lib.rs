//! # scim-server
//!
//! The SCIM 2.0 service provider: the `/scim/v2` endpoints, storage on
//! SQLite or PostgreSQL, API tokens, and operations (`/healthz`, `/metrics`,
//! request logs, graceful shutdown on SIGTERM). The `scim-server` binary is
//! a thin wrapper around [`run`]:
//!
//! ```no_run
//! use clap::Parser;
//! let cli = scim_server::config::Cli::parse();
//! if let Err(e) = scim_server::run(cli) {
//!     eprintln!("error: {e}");
//! }
//! ```
//!
//! Map of the crate: [`config`] (flags and `SCIM_` variables), [`server`]
//! (HTTP server), [`api`] (route table, handlers, auth, errors), [`store`]
//! (storage traits and their diesel implementation), [`db`] (connections,
//! migrations, tables), [`tokens`] (secrets and scopes), [`cli`] (the
//! `migrate` and `token` subcommands).

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod access;
pub mod api;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod lifecycle;
pub mod password;
pub mod provision;
pub mod secrets;
pub mod server;
pub mod store;
pub mod tokens;

pub use error::{Error, Result};

use config::{Cli, Command};

/// Runs the command line: `serve` (the default), `migrate` or `token ...`.
pub fn run(cli: Cli) -> Result<()> {
    let Cli { settings, command } = cli;
    let command = command.unwrap_or(Command::Serve);
    // The commands other than `serve` talk to a person on stderr: keep
    // their output to what they say themselves unless asked for more.
    let default_log = if matches!(command, Command::Serve) {
        "info"
    } else {
        "warn"
    };
    init_logging(settings.log.as_deref().unwrap_or(default_log));
    settings.validate()?;
    match command {
        Command::Serve => actix_web::rt::System::new().block_on(server::serve(settings)),
        Command::Migrate => cli::migrate::run(&settings),
        Command::Token(command) => cli::token::run(&settings, command),
        Command::Audit(command) => cli::audit::run(&settings, command),
    }
}

/// Sends log records to stderr with the given env_logger filter. Calling it
/// twice is harmless.
pub fn init_logging(filter: &str) {
    let _ = env_logger::Builder::new()
        .parse_filters(filter)
        .format_timestamp_millis()
        .try_init();
}
