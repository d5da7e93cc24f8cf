//! Command line and settings. Every setting is a flag with an `SCIM_`
//! environment variable behind it, and the defaults serve a first run.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::db::{DatabaseUrl, PoolOptions};
use crate::error::{Error, Result};
use crate::tokens::Scope;

/// The default database: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "scim.db";

/// `scim-server`: a SCIM 2.0 service provider.
#[derive(Debug, Parser)]
#[command(name = "scim-server", version, about, long_about = None)]
pub struct Cli {
    /// Settings (global: they may come before or after the subcommand).
    #[command(flatten)]
    pub settings: Settings,
    /// What to do; `serve` when absent.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the SCIM API (the default).
    Serve,
    /// Create the database if needed and apply pending migrations.
    Migrate,
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Check the audit log in the database.
    #[command(subcommand)]
    Audit(AuditCommand),
}

/// `scim-server audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify a tenant's hash chain; exit code 1 names the first bad seq.
    Verify {
        /// The tenant's name.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// A head kept from an earlier verification (`SEQ:HASH`, the
        /// checkpoint's `head`): fails unless the chain still holds it.
        #[arg(long, value_name = "SEQ:HASH")]
        expect_head: Option<String>,
        /// Print the verification as JSON (as the API answers).
        #[arg(long)]
        json: bool,
    },
}

/// `scim-server token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token (and the database and tenant if needed); prints the
    /// secret once.
    Create(TokenCreate),
    /// List tokens, never their secrets.
    List {
        /// Only the tokens of this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a token by id.
    Revoke {
        /// The token id, as shown by `token list`.
        id: i64,
    },
}

/// `scim-server token create`.
#[derive(Debug, Args)]
pub struct TokenCreate {
    /// The tenant the token acts for (created if it does not exist).
    #[arg(long)]
    pub tenant: String,
    /// A scope: scim:read, scim:write (write includes read) or admin (the
    /// management API under /api/v1). Repeatable.
    #[arg(long = "scope", required = true, value_parser = parse_scope)]
    pub scopes: Vec<Scope>,
    /// A label for the token, shown by `token list`.
    #[arg(long)]
    pub name: Option<String>,
    /// Bind the token to this User (its id or userName, in the tenant):
    /// what /Me means for the token.
    #[arg(long)]
    pub user: Option<String>,
}

fn parse_scope(s: &str) -> std::result::Result<Scope, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

/// Every setting.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Settings")]
pub struct Settings {
    /// Database: a SQLite file path (or sqlite:PATH), or a postgres:// URL.
    /// (Its value is never shown in help: it may hold a password.)
    #[arg(long, env = "SCIM_DATABASE_URL", default_value = DEFAULT_DATABASE_URL,
          hide_env_values = true, global = true)]
    pub database_url: String,

    /// Address and port to listen on.
    #[arg(
        long,
        env = "SCIM_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: String,

    /// The public URL of the SCIM API, as used in meta.location
    /// (e.g. https://scim.example.com/scim/v2). Default: http://BIND/scim/v2.
    #[arg(long, env = "SCIM_BASE_URL", global = true)]
    pub base_url: Option<String>,

    /// Maximum number of database connections.
    #[arg(long, env = "SCIM_POOL_SIZE", default_value_t = 8, global = true)]
    pub pool_size: u32,

    /// Seconds a request waits for a database connection before a 503.
    #[arg(
        long,
        env = "SCIM_POOL_TIMEOUT_SECS",
        default_value_t = 5,
        global = true
    )]
    pub pool_timeout_secs: u64,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "SCIM_WORKERS", global = true)]
    pub workers: Option<usize>,

    /// Largest accepted request body in bytes (also the bulk maxPayloadSize).
    #[arg(
        long,
        env = "SCIM_MAX_BODY_BYTES",
        default_value_t = 1_048_576,
        global = true
    )]
    pub max_body_bytes: usize,

    /// Most resources returned by one query (filter maxResults, maxPageSize).
    #[arg(long, env = "SCIM_MAX_RESULTS", default_value_t = 1000, global = true)]
    pub max_results: u32,

    /// Page size when a list request gives no count.
    #[arg(
        long,
        env = "SCIM_DEFAULT_PAGE_SIZE",
        default_value_t = 100,
        global = true
    )]
    pub default_page_size: u32,

    /// Most operations in one bulk request.
    #[arg(
        long,
        env = "SCIM_BULK_MAX_OPERATIONS",
        default_value_t = 1000,
        global = true
    )]
    pub bulk_max_operations: u32,

    /// Seconds a pagination cursor stays valid.
    #[arg(
        long,
        env = "SCIM_CURSOR_TIMEOUT_SECS",
        default_value_t = 3600,
        global = true
    )]
    pub cursor_timeout_secs: u64,

    /// Seconds to let requests in flight finish after SIGTERM.
    #[arg(
        long,
        env = "SCIM_SHUTDOWN_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub shutdown_timeout_secs: u64,

    /// Apply pending migrations when serving (true or false).
    #[arg(long, env = "SCIM_AUTO_MIGRATE", default_value_t = true,
          action = clap::ArgAction::Set, global = true)]
    pub auto_migrate: bool,

    /// The realm named in WWW-Authenticate challenges.
    #[arg(long, env = "SCIM_AUTH_REALM", default_value = "scim", global = true)]
    pub auth_realm: String,

    /// Log filter in env_logger syntax (e.g. info, or info,scim_server=debug).
    /// Default: info for `serve`, warn for the other commands.
    #[arg(long, env = "SCIM_LOG", global = true)]
    pub log: Option<String>,

    /// Make Group displayName unique per tenant, compared case-insensitively
    /// (409 uniqueness). Microsoft Entra ID relies on it. true or false.
    #[arg(long, env = "SCIM_UNIQUE_GROUP_NAMES", default_value_t = true,
          action = clap::ArgAction::Set, global = true)]
    pub unique_group_names: bool,

    /// Most operations in one PATCH request (413 beyond).
    #[arg(
        long,
        env = "SCIM_PATCH_MAX_OPERATIONS",
        default_value_t = 1000,
        global = true
    )]
    pub patch_max_operations: usize,

    /// Longest accepted filter, in bytes.
    #[arg(
        long,
        env = "SCIM_FILTER_MAX_LENGTH",
        default_value_t = 16 * 1024,
        global = true
    )]
    pub filter_max_length: usize,

    /// Deepest accepted filter nesting (parentheses, not, value paths).
    #[arg(
        long,
        env = "SCIM_FILTER_MAX_DEPTH",
        default_value_t = 32,
        global = true
    )]
    pub filter_max_depth: usize,

    /// Most comparison and presence terms in one filter.
    #[arg(
        long,
        env = "SCIM_FILTER_MAX_TERMS",
        default_value_t = 500,
        global = true
    )]
    pub filter_max_terms: usize,

    /// Key that encrypts the credentials of downstream applications at
    /// rest: base64 of 32 random bytes (`head -c 32 /dev/urandom | base64`).
    /// Without it, applications cannot be given credentials.
    #[arg(long, env = "SCIM_SECRET_KEY", hide_env_values = true, global = true)]
    pub secret_key: Option<String>,

    /// Key of the audit chain's MACs and checkpoints: base64 of at least 32
    /// random bytes. Without it, the key is derived from --secret-key; with
    /// neither, the audit chain is unkeyed (see the README's threat model).
    #[arg(long, env = "SCIM_AUDIT_KEY", hide_env_values = true, global = true)]
    pub audit_key: Option<String>,

    /// Provisioning workers started by `serve` (0: none; the pairs stay
    /// due until a server with workers runs).
    #[arg(
        long,
        env = "SCIM_PROVISIONING_WORKERS",
        default_value_t = 1,
        global = true
    )]
    pub provisioning_workers: usize,

    /// Seconds an idle provisioning worker waits before looking for due
    /// pairs again.
    #[arg(
        long,
        env = "SCIM_PROVISIONING_INTERVAL",
        default_value_t = 2.0,
        global = true
    )]
    pub provisioning_interval: f64,

    /// Seconds a provisioning worker holds the pairs it claimed; a worker
    /// that dies leaves them to others after this long.
    #[arg(
        long,
        env = "SCIM_PROVISIONING_LEASE",
        default_value_t = 60,
        global = true
    )]
    pub provisioning_lease: u64,

    /// Seconds between passes of the lifecycle evaluator (rules, temporary
    /// access); 0 disables it in this process.
    #[arg(
        long,
        env = "SCIM_LIFECYCLE_INTERVAL",
        default_value_t = 1.0,
        global = true
    )]
    pub lifecycle_interval: f64,

    /// Blast radius: playbook runs and rule changes that would deactivate
    /// more than this percentage of an application's provisioned accounts
    /// (and more than one) are refused unless confirmed (`"confirm": true`).
    #[arg(
        long,
        env = "SCIM_MAX_DEACTIVATION_PERCENT",
        default_value_t = 20.0,
        global = true
    )]
    pub max_deactivation_percent: f64,
    /// Seconds between looks for access review campaigns past their due
    /// date (their undecided items then take the campaign's default); 0
    /// turns the scheduler off on this replica.
    #[arg(
        long,
        env = "SCIM_REVIEW_INTERVAL",
        default_value_t = 30.0,
        global = true
    )]
    pub review_interval: f64,

    /// Request limits (api/limits.rs). Seconds a client has to send its
    /// request headers (0: no limit).
    #[arg(
        long,
        env = "SCIM_HEADER_TIMEOUT_SECS",
        default_value_t = 5.0,
        global = true
    )]
    pub header_timeout_secs: f64,

    /// Seconds a client has to send a whole request body; a slower body is
    /// answered 408 and its connection closed.
    #[arg(
        long,
        env = "SCIM_BODY_TIMEOUT_SECS",
        default_value_t = 30.0,
        global = true
    )]
    pub body_timeout_secs: f64,

    /// Bytes of request bodies the process reads at once (declared
    /// lengths, reserved before reading); past it 503 with Retry-After.
    #[arg(
        long,
        env = "SCIM_MAX_BYTES_IN_FLIGHT",
        default_value_t = 64 * 1024 * 1024,
        global = true
    )]
    pub max_bytes_in_flight: usize,

    /// Bytes of request bodies one token sends at once; past it 429 with
    /// Retry-After.
    #[arg(
        long,
        env = "SCIM_MAX_BYTES_IN_FLIGHT_PER_TOKEN",
        default_value_t = 8 * 1024 * 1024,
        global = true
    )]
    pub max_bytes_in_flight_per_token: usize,

    /// Requests one token has in progress at once; past it 429 with
    /// Retry-After.
    #[arg(
        long,
        env = "SCIM_MAX_REQUESTS_PER_TOKEN",
        default_value_t = 64,
        global = true
    )]
    pub max_requests_per_token: usize,

    /// Requests one tenant has in progress at once; past it 429 with
    /// Retry-After.
    #[arg(
        long,
        env = "SCIM_MAX_REQUESTS_PER_TENANT",
        default_value_t = 128,
        global = true
    )]
    pub max_requests_per_tenant: usize,

    /// /Bulk requests one tenant has in progress at once; past it 429
    /// with Retry-After.
    #[arg(
        long,
        env = "SCIM_BULK_MAX_CONCURRENT",
        default_value_t = 2,
        global = true
    )]
    pub bulk_max_concurrent: usize,

    /// Hosts and address ranges that applications may be sent to although
    /// they are not public (comma-separated: addresses, CIDR ranges, host
    /// names, *.domain), e.g. 127.0.0.0/8,::1 for downstream servers on
    /// this machine. `--outbound-deny` still wins.
    #[arg(
        long,
        env = "SCIM_OUTBOUND_ALLOW",
        value_delimiter = ',',
        global = true
    )]
    pub outbound_allow: Vec<String>,

    /// Hosts and address ranges that applications are never sent to
    /// (comma-separated, as for --outbound-allow), public ones included.
    #[arg(long, env = "SCIM_OUTBOUND_DENY", value_delimiter = ',', global = true)]
    pub outbound_deny: Vec<String>,

    /// Allow applications on every non-public address (loopback, private,
    /// link-local, CGNAT, ...), which are refused by default.
    #[arg(long, env = "SCIM_OUTBOUND_ALLOW_PRIVATE", global = true)]
    pub outbound_allow_private: bool,
}

impl Settings {
    /// The settings as if no flag and no environment variable were given.
    pub fn defaults() -> Self {
        // Parsing an empty command line cannot fail: every setting has a
        // default. Environment variables are deliberately not read here.
        let cli = Cli::command_without_env().try_get_matches_from(["scim-server"]);
        match cli.and_then(|m| <Settings as clap::FromArgMatches>::from_arg_matches(&m)) {
            Ok(settings) => settings,
            Err(e) => unreachable_defaults(e),
        }
    }

    /// Checks the settings against each other.
    pub fn validate(&self) -> Result<()> {
        DatabaseUrl::parse(&self.database_url)?;
        let check = |ok: bool, msg: &str| {
            if ok {
                Ok(())
            } else {
                Err(Error::Config(msg.into()))
            }
        };
        check(self.pool_size >= 1, "--pool-size must be at least 1")?;
        check(
            self.max_body_bytes >= 1024,
            "--max-body-bytes must be at least 1024",
        )?;
        check(self.max_results >= 1, "--max-results must be at least 1")?;
        check(
            (1..=self.max_results).contains(&self.default_page_size),
            "--default-page-size must be between 1 and --max-results",
        )?;
        check(self.workers != Some(0), "--workers must be at least 1")?;
        check(
            self.bulk_max_operations >= 1,
            "--bulk-max-operations must be at least 1",
        )?;
        check(
            self.patch_max_operations >= 1,
            "--patch-max-operations must be at least 1",
        )?;
        check(
            !self.auth_realm.contains(['"', '\\'])
                && !self.auth_realm.chars().any(char::is_control),
            "--auth-realm must not contain quotes, backslashes or control characters",
        )?;
        check(
            self.provisioning_interval.is_finite()
                && (0.01..=3600.0).contains(&self.provisioning_interval),
            "--provisioning-interval must be between 0.01 and 3600 seconds",
        )?;
        check(
            (1..=86_400).contains(&self.provisioning_lease),
            "--provisioning-lease must be between 1 and 86400 seconds",
        )?;
        check(
            self.lifecycle_interval.is_finite()
                && (0.0..=3600.0).contains(&self.lifecycle_interval),
            "--lifecycle-interval must be between 0 and 3600 seconds",
        )?;
        check(
            self.max_deactivation_percent.is_finite()
                && (0.0..=100.0).contains(&self.max_deactivation_percent),
            "--max-deactivation-percent must be between 0 and 100",
        )?;
        check(
            self.review_interval == 0.0
                || (self.review_interval.is_finite()
                    && (0.01..=86400.0).contains(&self.review_interval)),
            "--review-interval must be 0 or between 0.01 and 86400 seconds",
        )?;
        check(
            self.header_timeout_secs.is_finite()
                && (0.0..=3600.0).contains(&self.header_timeout_secs),
            "--header-timeout-secs must be between 0 and 3600",
        )?;
        check(
            self.body_timeout_secs.is_finite() && (0.1..=3600.0).contains(&self.body_timeout_secs),
            "--body-timeout-secs must be between 0.1 and 3600",
        )?;
        check(
            self.max_bytes_in_flight_per_token >= self.max_body_bytes
                && self.max_bytes_in_flight >= self.max_bytes_in_flight_per_token,
            "--max-bytes-in-flight must be at least --max-bytes-in-flight-per-token, \
             which must be at least --max-body-bytes",
        )?;
        check(
            self.max_requests_per_token >= 1
                && self.max_requests_per_tenant >= 1
                && self.bulk_max_concurrent >= 1,
            "--max-requests-per-token, --max-requests-per-tenant and \
             --bulk-max-concurrent must be at least 1",
        )?;
        if let Some(key) = &self.secret_key {
            crate::secrets::SecretKey::from_base64(key)?;
        }
        self.audit_chain_key()?;
        self.outbound_policy()?;
        if let Some(base) = &self.base_url {
            check(
                base.starts_with("http://") || base.starts_with("https://"),
                "--base-url must start with http:// or https://",
            )?;
        }
        Ok(())
    }

    /// The audit chain's key: from --audit-key, else derived from
    /// --secret-key, else none (an unkeyed chain).
    pub fn audit_chain_key(&self) -> Result<Option<crate::store::AuditKey>> {
        use crate::store::AuditKey;
        match (&self.audit_key, &self.secret_key) {
            (Some(key), _) => AuditKey::from_audit_key(key).map(Some),
            (None, Some(secret)) => AuditKey::from_secret_key(secret).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// The parsed database URL.
    pub fn database(&self) -> Result<DatabaseUrl> {
        DatabaseUrl::parse(&self.database_url)
    }

    /// Pool sizing.
    pub fn pool(&self) -> PoolOptions {
        PoolOptions {
            size: self.pool_size,
            timeout: Duration::from_secs(self.pool_timeout_secs.max(1)),
        }
    }

    /// The outbound target policy of `--outbound-allow`, `--outbound-deny`
    /// and `--outbound-allow-private`.
    pub fn outbound_policy(&self) -> Result<crate::provision::outbound::OutboundPolicy> {
        crate::provision::outbound::OutboundPolicy::new(
            &self.outbound_allow,
            &self.outbound_deny,
            self.outbound_allow_private,
        )
    }

    /// The number of HTTP workers.
    pub fn worker_count(&self) -> usize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
            .max(1)
    }
}

impl Cli {
    /// The clap command with the environment variables detached, for
    /// [`Settings::defaults`].
    fn command_without_env() -> clap::Command {
        let cmd = <Cli as clap::CommandFactory>::command();
        let ids: Vec<String> = cmd
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .collect();
        ids.iter().fold(cmd, |cmd, id| {
            cmd.mut_arg(id.as_str(), |a| a.env(None::<&str>))
        })
    }
}

#[cold]
fn unreachable_defaults(e: clap::Error) -> Settings {
    // Only reachable if a default value above fails to parse: a build defect
    // that the tests in this module catch.
    panic!("built-in defaults do not parse: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_serve_a_first_run() {
        let s = Settings::defaults();
        assert_eq!(s.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert!(s.base_url.is_none());
        assert!(s.auto_migrate);
        s.validate().unwrap();
    }

    #[test]
    fn settings_go_before_or_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "scim-server",
            "--database-url",
            "x.db",
            "token",
            "create",
            "--tenant",
            "acme",
            "--scope",
            "scim:read",
            "--scope",
            "write",
            "--pool-size",
            "3",
        ])
        .unwrap();
        assert_eq!(cli.settings.database_url, "x.db");
        assert_eq!(cli.settings.pool_size, 3);
        let Some(Command::Token(TokenCommand::Create(c))) = cli.command else {
            panic!("not token create");
        };
        assert_eq!(c.scopes, [Scope::Read, Scope::Write]);
        let cli = Cli::try_parse_from(["scim-server", "--auto-migrate", "false"]).unwrap();
        assert!(cli.command.is_none());
        assert!(!cli.settings.auto_migrate);
        assert!(Cli::try_parse_from(["scim-server", "token", "create", "--tenant", "a"]).is_err());
        assert!(
            Cli::try_parse_from([
                "scim-server",
                "token",
                "create",
                "--tenant",
                "a",
                "--scope",
                "x"
            ])
            .is_err()
        );
    }

    #[test]
    fn validation_catches_contradictions() {
        let mut s = Settings::defaults();
        s.default_page_size = 5000;
        assert!(s.validate().is_err());
        let mut s = Settings::defaults();
        s.base_url = Some("scim.example.com".into());
        assert!(s.validate().is_err());
        let mut s = Settings::defaults();
        s.database_url = "mysql://x".into();
        assert!(s.validate().is_err());
        let mut s = Settings::defaults();
        s.outbound_deny = vec!["10.0.0.0/40".into()];
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("--outbound-deny"), "{err}");
    }

    #[test]
    fn outbound_settings_parse() {
        let s = Settings::defaults();
        assert!(s.outbound_allow.is_empty() && !s.outbound_allow_private);
        let cli = Cli::try_parse_from([
            "scim-server",
            "--outbound-allow",
            "127.0.0.0/8,::1",
            "--outbound-allow-private",
        ])
        .unwrap();
        assert_eq!(cli.settings.outbound_allow, ["127.0.0.0/8", "::1"]);
        assert!(cli.settings.outbound_allow_private);
        cli.settings.validate().unwrap();
    }
}
