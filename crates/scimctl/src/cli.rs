//! The command line: every subcommand and option, parsed by clap.
//!
//! Connection options are global, so they may stand before or after the
//! subcommand, and each has an environment variable behind it.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// `scimctl`: a command-line client for any SCIM 2.0 service provider.
#[derive(Debug, Parser)]
#[command(name = "scimctl", version, about, long_about = None)]
pub struct Cli {
    /// Where and how to connect, and how to print.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection and output")]
pub struct GlobalArgs {
    /// The SCIM base URL, such as `https://example.com/scim/v2`.
    #[arg(long, env = "SCIMCTL_URL", global = true)]
    pub url: Option<String>,
    /// A bearer token.
    #[arg(
        long,
        env = "SCIMCTL_TOKEN",
        global = true,
        hide_env_values = true,
        conflicts_with = "basic"
    )]
    pub token: Option<String>,
    /// HTTP Basic credentials as user:password.
    #[arg(
        long,
        env = "SCIMCTL_BASIC",
        global = true,
        hide_env_values = true,
        value_name = "USER:PASSWORD"
    )]
    pub basic: Option<String>,
    /// Print JSON for scripts instead of tables and sentences.
    #[arg(long, global = true)]
    pub json: bool,
    /// Seconds to wait for each HTTP attempt.
    #[arg(
        long,
        env = "SCIMCTL_TIMEOUT",
        global = true,
        default_value_t = 30,
        value_name = "SECS"
    )]
    pub timeout: u64,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what the service provider supports: its configuration,
    /// resource types and schemas.
    Discover,
    /// List, read, create, change and delete users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// List, read, create, change and delete groups, and their members.
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// Create many resources from a JSON lines or CSV file.
    Import(ImportArgs),
    /// Write every resource (or those matching a filter) to standard
    /// output as JSON lines or CSV.
    Export(ExportArgs),
    /// Drive our provisioning engine through its management API
    /// (`/api/v1`, an admin token): plan, provision, reconcile, status, log.
    Engine(crate::commands::engine::EngineArgs),
    /// Access reviews of a scim-server (its /api/v1): list, start, decide,
    /// close, export.
    #[command(subcommand)]
    Reviews(crate::commands::governance::ReviewsCommand),
    /// The audit log of a scim-server (its /api/v1): query, export, verify.
    #[command(subcommand)]
    Audit(crate::commands::governance::AuditCommand),
    /// scim-server: manage downstream applications (admin token).
    #[command(subcommand)]
    Apps(crate::commands::applications::AppsCommand),
    /// scim-server: grant, list, revoke and extend access to applications
    /// (admin token).
    #[command(subcommand)]
    Assignments(crate::commands::applications::AssignmentsCommand),
    /// scim-server lifecycle: manage and run playbooks (admin token).
    #[command(subcommand)]
    Playbooks(crate::commands::lifecycle::PlaybooksCommand),
    /// scim-server lifecycle: manage and preview rules (admin token).
    #[command(subcommand)]
    Rules(crate::commands::lifecycle::RulesCommand),
    /// scim-server lifecycle: playbook runs (admin token).
    #[command(subcommand)]
    Runs(crate::commands::lifecycle::RunsCommand),
    /// scim-server lifecycle: preview a user change, a rule or a playbook
    /// run (admin token).
    #[command(subcommand)]
    Preview(crate::commands::lifecycle::PreviewCommand),
    /// scim-server lifecycle: who has access to what, and why; lifecycle
    /// events; extend temporary access (admin token).
    #[command(subcommand)]
    Access(crate::commands::lifecycle::AccessCommand),
}

/// `scimctl users ...`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List users, reading every page.
    List(ListArgs),
    /// Show one user.
    Get(IdArg),
    /// Create a user from a JSON file or from options.
    Create(CreateUserArgs),
    /// Change a user with PATCH operations.
    Patch(PatchArgs),
    /// Delete a user.
    Delete(IdArg),
}

/// `scimctl groups ...`.
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List groups, reading every page.
    List(ListArgs),
    /// Show one group.
    Get(IdArg),
    /// Create a group from a JSON file or from options.
    Create(CreateGroupArgs),
    /// Change a group with PATCH operations.
    Patch(PatchArgs),
    /// Delete a group.
    Delete(IdArg),
    /// Add users (or groups) to a group, by id.
    AddMember(MembersArgs),
    /// Remove users (or groups) from a group, by id.
    RemoveMember(MembersArgs),
}

/// A resource id.
#[derive(Debug, Args)]
pub struct IdArg {
    /// The resource id.
    pub id: String,
}

/// Options of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// A SCIM filter, e.g. 'userName sw "b"'.
    #[arg(long, short)]
    pub filter: Option<String>,
    /// Ask for these attributes only (comma separated).
    #[arg(long, value_delimiter = ',')]
    pub attributes: Vec<String>,
    /// Sort by this attribute (when the provider supports sorting).
    #[arg(long)]
    pub sort_by: Option<String>,
    /// Sort descending.
    #[arg(long, requires = "sort_by")]
    pub descending: bool,
    /// Stop after this many resources.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Resources per page (lowered to the provider's limits).
    #[arg(long)]
    pub page_size: Option<u64>,
}

/// Options of `users create`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["file", "user_name"]))]
pub struct CreateUserArgs {
    /// A JSON file with the user, or - for standard input.
    #[arg(long, short, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The userName.
    #[arg(long)]
    pub user_name: Option<String>,
    /// name.givenName.
    #[arg(long, conflicts_with = "file")]
    pub given_name: Option<String>,
    /// name.familyName.
    #[arg(long, conflicts_with = "file")]
    pub family_name: Option<String>,
    /// The display name.
    #[arg(long, conflicts_with = "file")]
    pub display_name: Option<String>,
    /// A work email address, the primary one (repeatable; the first is primary).
    #[arg(long, conflicts_with = "file")]
    pub email: Vec<String>,
    /// The externalId.
    #[arg(long, conflicts_with = "file")]
    pub external_id: Option<String>,
    /// Whether the user is active (`--active` alone means true).
    #[arg(long, conflicts_with = "file", num_args = 0..=1, default_missing_value = "true",
          value_name = "BOOL")]
    pub active: Option<bool>,
}

/// Options of `groups create`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["file", "display_name"]))]
pub struct CreateGroupArgs {
    /// A JSON file with the group, or - for standard input.
    #[arg(long, short, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The displayName.
    #[arg(long)]
    pub display_name: Option<String>,
    /// The externalId.
    #[arg(long, conflicts_with = "file")]
    pub external_id: Option<String>,
    /// A member's id (repeatable).
    #[arg(long = "member", conflicts_with = "file", value_name = "ID")]
    pub members: Vec<String>,
}

/// Options of `patch`: operations from the command line, or a PatchOp
/// message from a file.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("ops").required(true).args(["op", "file"]))]
pub struct PatchArgs {
    /// The resource id.
    pub id: String,
    /// An operation: add, replace or remove. Repeatable; each takes the
    /// --path and --value that follow it.
    #[arg(long, value_enum)]
    pub op: Vec<OpKind>,
    /// The path of the operation before it (absent: the value is an object
    /// of attributes).
    #[arg(long, requires = "op")]
    pub path: Vec<String>,
    /// The value of the operation before it, as JSON; text that is not
    /// JSON is sent as a string.
    #[arg(long, requires = "op", allow_hyphen_values = true)]
    pub value: Vec<String>,
    /// A JSON file with a PatchOp message (or just its Operations array),
    /// or - for standard input.
    #[arg(long, short, value_name = "FILE", conflicts_with = "op")]
    pub file: Option<PathBuf>,
    /// Where each --path and --value stands on the command line, to pair
    /// them with their --op (filled in after parsing).
    #[arg(skip)]
    pub positions: Positions,
}

/// The command-line positions of the repeated patch options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions {
    /// Indices of each `--op`.
    pub op: Vec<usize>,
    /// Indices of each `--path`.
    pub path: Vec<usize>,
    /// Indices of each `--value`.
    pub value: Vec<usize>,
}

/// A PATCH operation kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OpKind {
    /// Add values.
    Add,
    /// Replace values.
    Replace,
    /// Remove values.
    Remove,
}

/// Options of `add-member` and `remove-member`.
#[derive(Debug, Args)]
pub struct MembersArgs {
    /// The group id.
    pub group_id: String,
    /// The member ids.
    #[arg(required = true)]
    pub member_ids: Vec<String>,
}

/// Which resources to import or export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// `/Users`.
    Users,
    /// `/Groups`.
    Groups,
}

/// A file format for import and export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object a line.
    Jsonl,
    /// Comma-separated values with a header row of attribute paths.
    Csv,
}

/// Options of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// What to create.
    #[arg(value_enum)]
    pub kind: Kind,
    /// The file, or - for standard input.
    pub file: PathBuf,
    /// The file's format (default: from its extension, .csv or JSON lines).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Skip records whose userName (displayName for groups) is already
    /// taken, instead of counting them as failed.
    #[arg(long)]
    pub skip_existing: bool,
    /// Send one POST per resource even when the provider supports Bulk.
    #[arg(long)]
    pub no_bulk: bool,
    /// How many POSTs to have in flight at once (without Bulk).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Operations per BulkRequest (lowered to the provider's maxOperations).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: Option<u64>,
}

/// Options of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// What to export.
    #[arg(value_enum)]
    pub kind: Kind,
    /// A SCIM filter.
    #[arg(long, short)]
    pub filter: Option<String>,
    /// The output format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    /// CSV columns as attribute paths (comma separated; default: a set
    /// that `import` reads back).
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
}

impl Cli {
    /// Parses the command line, or returns clap's error (help and version
    /// are errors too, with exit code 0).
    pub fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Cli::command().try_get_matches_from(args)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        if let Some(patch) = cli.patch_args_mut() {
            patch.positions = positions(&matches);
        }
        Ok(cli)
    }

    fn patch_args_mut(&mut self) -> Option<&mut PatchArgs> {
        match &mut self.command {
            Command::Users(UsersCommand::Patch(p)) | Command::Groups(GroupsCommand::Patch(p)) => {
                Some(p)
            }
            _ => None,
        }
    }
}

/// The positions of the patch options in the innermost subcommand's matches.
fn positions(matches: &ArgMatches) -> Positions {
    let mut m = matches;
    while let Some((_, sub)) = m.subcommand() {
        m = sub;
    }
    let of = |id: &str| {
        m.indices_of(id)
            .map(Iterator::collect::<Vec<_>>)
            .unwrap_or_default()
    };
    Positions {
        op: of("op"),
        path: of("path"),
        value: of("value"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn patch_positions_are_recorded() {
        let cli = Cli::try_parse_args([
            "scimctl", "users", "patch", "42", "--op", "replace", "--path", "active", "--value",
            "false", "--op", "remove", "--path", "title",
        ])
        .unwrap();
        let Command::Users(UsersCommand::Patch(p)) = cli.command else {
            panic!("not a patch");
        };
        assert_eq!(p.op, [OpKind::Replace, OpKind::Remove]);
        assert_eq!(p.positions.op.len(), 2);
        assert!(p.positions.op[0] < p.positions.path[0]);
        assert!(p.positions.path[1] > p.positions.op[1]);
        assert!(p.positions.value[0] < p.positions.op[1]);
    }
}
