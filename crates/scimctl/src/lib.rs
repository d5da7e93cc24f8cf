//! # scimctl
//!
//! A command-line client for any SCIM 2.0 service provider (RFC 7643,
//! RFC 7644): list, read, create, change and delete users and groups,
//! discover what a provider supports, import many users from JSON lines or
//! CSV, and export them again. Output is for people by default (tables,
//! one line per change); `--json` prints JSON for scripts.
//!
//! ```text
//! export SCIMCTL_URL=https://example.com/scim/v2 SCIMCTL_TOKEN=...
//! scimctl discover
//! scimctl users list --filter 'userName sw "b"'
//! scimctl users create --user-name bjensen --given-name Barbara --family-name Jensen \
//!     --email bjensen@example.com --active
//! scimctl users patch 2819c223 --op replace --path active --value false
//! scimctl import users people.csv --skip-existing
//! scimctl export users --format csv > users.csv
//! ```
//!
//! The pieces are usable on their own: the command line parses without a
//! provider, and import files read into resources without one.
//!
//! ```
//! use scimctl::cli::{Cli, Command, Format, Kind};
//! use scimctl::records;
//!
//! let cli = Cli::try_parse_args(["scimctl", "--json", "import", "users", "people.csv"]).unwrap();
//! assert!(cli.global.json);
//! assert!(matches!(cli.command, Command::Import(ref a) if a.kind == Kind::Users));
//!
//! let csv = "userName,name.givenName,email,active\nbjensen,Barbara,b@example.com,yes\n";
//! let records = records::parse(csv, Format::Csv, Kind::Users).unwrap();
//! let user = records[0].resource.as_ref().unwrap();
//! assert_eq!(user["name"]["givenName"], "Barbara");
//! assert_eq!(user["emails"][0]["value"], "b@example.com");
//! assert_eq!(user["active"], true);
//! ```
//!
//! The binary is thin: [`main_with_args`] parses the command line
//! ([`cli`]), builds a [`scim_client::ScimClient`] and runs one of the
//! [`commands`], which print through [`output`].
//!
//! ## Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | a request failed (the provider refused it, or could not be reached), or some records of an import failed |
//! | 2 | a usage error: bad options, or an input file that cannot be read as what it claims to be |
//!
//! Errors are printed to standard error as one line, e.g.
//! `error: POST https://example.com/scim/v2/Users: 409 uniqueness: userName taken`.
//!
//! ## Where new commands go
//!
//! One module per group of commands under [`commands`], each taking a
//! [`Context`] (client and output) and its parsed options from [`cli`].
//! Commands that talk to another API than SCIM (such as the provisioning
//! engine's `plan`, `reconcile` and `status` on `/api/v1`) belong in a
//! module of their own (`commands/engine.rs`, or a folder) with their own
//! client built from the same [`cli::GlobalArgs`], added as one more
//! [`cli::Command`] variant and one more arm in [`commands::run`]; printing
//! goes through [`output::Output`] so `--json` means the same everywhere.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cli;
pub mod commands;
pub mod error;
pub mod output;
pub mod records;

use std::ffi::OsString;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use scim_client::{Auth, ScimClient};

pub use error::{Error, Result};
use output::Output;

/// The client and the output a command works with.
#[derive(Debug)]
pub struct Context {
    /// The SCIM client.
    pub client: ScimClient,
    /// Where and how results are printed.
    pub out: Output,
}

/// Parses `args` (the first being the program name), runs the command and
/// returns the exit code; errors are printed to standard error.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match cli::Cli::try_parse_args(args) {
        Ok(cli) => cli,
        // Help and version print to stdout and exit 0; usage errors exit 2.
        Err(e) => e.exit(),
    };
    env_logger::Builder::from_env(env_logger::Env::new().filter_or("SCIMCTL_LOG", "error"))
        .format_target(false)
        .format_timestamp(None)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: cli::Cli) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(commands::run(&cli.global, cli.command))
}

/// Builds the client and output from the global options.
pub fn context(global: &cli::GlobalArgs) -> Result<Context> {
    let url = global
        .url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| {
            Error::Usage("no service provider URL: pass --url or set SCIMCTL_URL".into())
        })?;
    let mut builder = ScimClient::builder(url)
        .timeout(Duration::from_secs(global.timeout.max(1)))
        .user_agent(concat!("scimctl/", env!("CARGO_PKG_VERSION")));
    // An empty variable in the environment counts as unset.
    let given = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    if let Some(token) = given(&global.token) {
        builder = builder.auth(Auth::bearer(token));
    } else if let Some(basic) = given(&global.basic) {
        let (user, password) = basic
            .split_once(':')
            .ok_or_else(|| Error::Usage("--basic takes USER:PASSWORD (with a colon)".into()))?;
        builder = builder.auth(Auth::basic(user, password));
    }
    let client = builder.build().map_err(|e| match e {
        scim_client::ClientError::InvalidRequest(m) => Error::Usage(m),
        other => Error::Client(other),
    })?;
    Ok(Context {
        client,
        out: Output::new(global.json),
    })
}
