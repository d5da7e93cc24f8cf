//! One connection type over SQLite and PostgreSQL, the URL that chooses
//! between them, and the r2d2 manager that opens connections.
//!
//! diesel's derived `MultiConnection::establish` tries every backend and
//! discards their errors, so a refused port and a bad file path both read
//! "Invalid connection url". [`ConnectionManager`] chooses the backend from
//! the URL scheme itself and reports the real error; it is also where the
//! SQLite pragmas are set.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionError};

use super::writer::WriteGate;
use crate::error::{Error, Result};

mod multi {
    // reason: the derive generates public helper types (the multi-backend
    // type, its bind collector...) that carry no documentation.
    #![allow(missing_docs, missing_debug_implementations)]

    use diesel::pg::PgConnection;
    use diesel::sqlite::SqliteConnection;

    /// A connection to either backend. Queries are written once against
    /// this type; code branches on the variant only where the SQL dialect
    /// (or diesel's support for it) differs.
    #[derive(diesel::MultiConnection)]
    pub enum AnyConnection {
        /// An embedded SQLite database file.
        Sqlite(SqliteConnection),
        /// A PostgreSQL server.
        Pg(PgConnection),
    }
}

pub use multi::AnyConnection;

/// Which database engine a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (bundled, WAL).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// The backend a connection talks to.
    pub fn of(conn: &AnyConnection) -> Self {
        match conn {
            AnyConnection::Sqlite(_) => Backend::Sqlite,
            AnyConnection::Pg(_) => Backend::Postgres,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// A parsed `SCIM_DATABASE_URL`: `postgres://` or `postgresql://` selects
/// PostgreSQL; `sqlite://PATH`, `sqlite:PATH`, `file:...` or a plain path
/// selects SQLite.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file path (or `:memory:`, or a `file:` URI).
    Sqlite(String),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl DatabaseUrl {
    /// Parses a database URL, refusing schemes of other databases.
    pub fn parse(url: &str) -> Result<Self> {
        let url = url.trim();
        if url.is_empty() {
            return Err(Error::Config("the database URL is empty".into()));
        }
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if let Some(rest) = lower.strip_prefix("sqlite:") {
            let skip = url.len() - rest.len();
            let path = url[skip..].strip_prefix("//").unwrap_or(&url[skip..]);
            if path.is_empty() {
                return Err(Error::Config("the SQLite URL names no file".into()));
            }
            return Ok(Self::Sqlite(path.to_owned()));
        }
        if let Some((scheme, _)) = lower.split_once("://") {
            return Err(Error::Config(format!(
                "unsupported database URL scheme '{scheme}': use postgres:// or a SQLite file path"
            )));
        }
        Ok(Self::Sqlite(url.to_owned()))
    }

    /// The backend this URL selects.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Whether this is a private in-memory SQLite database, which lives only
    /// as long as its one connection.
    pub fn is_memory(&self) -> bool {
        matches!(self, Self::Sqlite(p) if p == ":memory:" || p.contains("mode=memory"))
    }

    /// Opens one connection, with the SQLite pragmas applied.
    pub fn establish(&self) -> Result<AnyConnection> {
        match self {
            Self::Sqlite(path) => {
                // A new file's directory is created; a URI or memory name has none.
                let parent = Path::new(path)
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty());
                if let Some(dir) =
                    parent.filter(|_| !self.is_memory() && !path.starts_with("file:"))
                {
                    std::fs::create_dir_all(dir)?;
                }
                let mut conn =
                    SqliteConnection::establish(path).map_err(|e| connect_error(self, &e))?;
                conn.batch_execute(SQLITE_PRAGMAS)?;
                conn.batch_execute(&format!("PRAGMA journal_size_limit = {WAL_RESTART_BYTES}"))?;
                Ok(AnyConnection::Sqlite(conn))
            }
            Self::Postgres(url) => {
                let conn = PgConnection::establish(url).map_err(|e| connect_error(self, &e))?;
                Ok(AnyConnection::Pg(conn))
            }
        }
    }
}

/// Applied to every new SQLite connection. busy_timeout comes first so that
/// switching to WAL waits for a concurrent opener instead of failing.
/// Reads go through a memory map of the database file instead of a
/// `pread` per page, and statement journals (kept while a multi-row
/// statement may still fail inside a transaction) stay in memory instead
/// of a temporary file. `establish` also sets `journal_size_limit`: a log
/// that grew is cut back to [`WAL_RESTART_BYTES`] when it restarts.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000;
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA foreign_keys = ON;
PRAGMA temp_store = MEMORY;
PRAGMA mmap_size = 1073741824;
PRAGMA cache_size = -8192;";

fn connect_error(url: &DatabaseUrl, e: &ConnectionError) -> Error {
    Error::Connection(format!("cannot open {url}: {e}"))
}

/// Shows the URL with any password replaced by `***`.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(p) => write!(f, "sqlite:{p}"),
            Self::Postgres(url) => f.write_str(&redact_password(url)),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// `postgres://user:secret@host/db` -> `postgres://user:***@host/db`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// The r2d2 manager for [`AnyConnection`].
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    url: DatabaseUrl,
    /// Its connections leave checkpoints to a [`spawn_checkpointer`] thread.
    manual_checkpoints: bool,
}

impl ConnectionManager {
    /// A manager opening connections to `url`.
    pub fn new(url: DatabaseUrl) -> Self {
        Self {
            url,
            manual_checkpoints: false,
        }
    }

    /// A manager whose SQLite connections never checkpoint on their own,
    /// leaving it to a [`spawn_checkpointer`] thread.
    pub fn with_manual_checkpoints(url: DatabaseUrl) -> Self {
        Self {
            url,
            manual_checkpoints: true,
        }
    }

    /// The database its connections open.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }
}

/// How often [`spawn_checkpointer`] checkpoints.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Checkpoints the write-ahead log of `gate`'s SQLite file every
/// [`CHECKPOINT_EVERY`] from a thread with its own connection, until
/// `alive` has no strong reference left.
///
/// By default the connection whose commit takes the log past 1,000 pages
/// runs the checkpoint (copying pages into the database file and syncing
/// it) before its commit returns: on the [`WriteGate`]'s one writer, every
/// write of the process would wait for it. A passive checkpoint here runs
/// beside the writer instead and never waits for it. The writer and the
/// pool's connections are opened with automatic checkpoints off (see
/// [`ConnectionManager::with_manual_checkpoints`]).
///
/// SQLite starts the log over from its beginning only when a write
/// transaction begins after a checkpoint copied every frame in it. Under
/// steady writes the writer always appends frames while this thread's
/// checkpoint runs, so the log would grow without end (and the file
/// system zero every new block of it). Once the log file is longer than
/// [`WAL_RESTART_BYTES`], this thread therefore asks the gate for a second
/// checkpoint on its writer connection right after its next commit
/// ([`WriteGate::request_log_restart`]): it copies only the frames written
/// since, and then the writer's next transaction restarts the log. Writes
/// wait for it (and its two `fsync`s), so it is not asked for while the
/// log is short.
pub fn spawn_checkpointer(gate: WriteGate, alive: std::sync::Weak<()>) -> Result<()> {
    let mut conn = gate.url().establish()?;
    let wal = match gate.url() {
        DatabaseUrl::Sqlite(path) => std::path::PathBuf::from(format!("{path}-wal")),
        DatabaseUrl::Postgres(_) => {
            return Err(Error::Config("checkpoints are for SQLite files".into()));
        }
    };
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while alive.strong_count() > 0 {
                std::thread::sleep(CHECKPOINT_EVERY);
                checkpoint(&mut conn);
                if log_too_long(&wal) {
                    gate.request_log_restart();
                }
            }
        })?;
    Ok(())
}

/// The log length past which [`spawn_checkpointer`] restarts the log; also
/// SQLite's `journal_size_limit` (set by `establish`), the length a
/// restarted log file is cut back to.
const WAL_RESTART_BYTES: u64 = 64 << 20;

/// Whether the log file at `wal` is longer than [`WAL_RESTART_BYTES`]; true
/// when its length cannot be read (a `file:` URI names no plain path).
fn log_too_long(wal: &std::path::Path) -> bool {
    std::fs::metadata(wal).map_or(true, |m| m.len() > WAL_RESTART_BYTES)
}

/// Runs a passive checkpoint on `conn`, logging a failure.
pub(super) fn checkpoint(conn: &mut AnyConnection) {
    if let Err(e) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE)") {
        log::warn!("WAL checkpoint failed: {e}");
    }
}

/// Why r2d2 could not open or check a connection.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ManagerError(String);

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = AnyConnection;
    type Error = ManagerError;

    fn connect(&self) -> Result<AnyConnection, ManagerError> {
        let mut conn = self
            .url
            .establish()
            .map_err(|e| ManagerError(e.to_string()))?;
        if self.manual_checkpoints {
            conn.batch_execute("PRAGMA wal_autocheckpoint = 0")
                .map_err(|e| ManagerError(e.to_string()))?;
        }
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), ManagerError> {
        conn.batch_execute("SELECT 1")
            .map_err(|e| ManagerError(e.to_string()))
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        <AnyConnection as Connection>::TransactionManager::is_broken_transaction_manager(conn)
    }
}

/// The connection pool.
pub type Pool = r2d2::Pool<ConnectionManager>;
/// A connection checked out of the [`Pool`].
pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

/// How the pool is sized.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    /// Maximum number of open connections.
    pub size: u32,
    /// How long a request waits for a free connection before failing.
    pub timeout: Duration,
}

/// Builds a pool; `events` receives checkout and timeout events (metrics).
/// A private in-memory SQLite database gets one connection that is never
/// closed, since every connection would otherwise see its own empty database.
/// With `manual_checkpoints`, SQLite connections never checkpoint on their
/// own: the caller runs a [`spawn_checkpointer`] thread for as long as the
/// pool lives.
pub fn build_pool(
    url: &DatabaseUrl,
    opts: PoolOptions,
    events: Option<Box<dyn r2d2::HandleEvent>>,
    manual_checkpoints: bool,
) -> Result<Pool> {
    let mut builder = r2d2::Pool::builder()
        .max_size(opts.size.max(1))
        .min_idle(Some(1))
        .connection_timeout(opts.timeout)
        .test_on_check_out(false);
    if url.is_memory() {
        builder = builder.max_size(1).idle_timeout(None).max_lifetime(None);
    }
    if let Some(events) = events {
        builder = builder.event_handler(events);
    }
    let manager = if manual_checkpoints {
        ConnectionManager::with_manual_checkpoints(url.clone())
    } else {
        ConnectionManager::new(url.clone())
    };
    Ok(builder.build(manager)?)
}

/// Attaches `gate` to `conn`, once; [`write_transaction`] on that
/// connection then writes through it.
pub fn attach_gate(gate: &WriteGate, conn: &mut PooledConnection) {
    if PooledConnection::extensions(conn)
        .get::<WriteGate>()
        .is_none()
    {
        PooledConnection::extensions_mut(conn).insert(gate.clone());
    }
}

/// Runs `f` in a write transaction. On SQLite the transaction is
/// `BEGIN IMMEDIATE`, so it holds the write lock from the start and never
/// fails half-way with "database is locked" when another writer got there
/// between its read and its write; on PostgreSQL it is a plain transaction.
/// With a [`WriteGate`] attached to `conn`, `f` runs on the gate's writer
/// connection instead, in a savepoint of a transaction it may share with
/// other writes (see [`super::writer`]). Commits when `f` returns `Ok`,
/// rolls back otherwise.
pub fn write_transaction<T, E>(
    conn: &mut PooledConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    if let Some(gate) = PooledConnection::extensions(conn)
        .get::<WriteGate>()
        .cloned()
    {
        return gate.write(f);
    }
    transaction_on(conn, f)
}

fn transaction_on<T, E>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    match conn {
        AnyConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
        }
        AnyConnection::Pg(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    type Tm = <AnyConnection as Connection>::TransactionManager;
    match f(conn) {
        Ok(value) => {
            Tm::commit_transaction(conn)?;
            Ok(value)
        }
        Err(e) => {
            // The caller's error is the one worth reporting; a failed
            // rollback leaves the connection marked broken and r2d2 drops it.
            if let Err(rollback) = Tm::rollback_transaction(conn) {
                log::warn!("rollback failed: {rollback}");
            }
            Err(e)
        }
    }
}

/// Runs `f` in a read transaction (one consistent snapshot).
pub fn read_transaction<T, E>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    conn.transaction(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_backend() {
        let pg = DatabaseUrl::parse("postgres://u:pw@db:5432/scim").unwrap();
        assert_eq!(pg.backend(), Backend::Postgres);
        assert_eq!(pg.to_string(), "postgres://u:***@db:5432/scim");
        assert_eq!(
            DatabaseUrl::parse("postgresql://db/scim")
                .unwrap()
                .backend(),
            Backend::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/scim.db").unwrap(),
            DatabaseUrl::Sqlite("/var/lib/scim.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:data/scim.db").unwrap(),
            DatabaseUrl::Sqlite("data/scim.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("scim.db").unwrap(),
            DatabaseUrl::Sqlite("scim.db".into())
        );
        assert!(DatabaseUrl::parse(":memory:").unwrap().is_memory());
        assert!(DatabaseUrl::parse("mysql://db/scim").is_err());
        assert!(DatabaseUrl::parse("").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn connection_errors_say_what_failed() {
        let url = DatabaseUrl::parse("postgres://nobody@127.0.0.1:1/none").unwrap();
        let err = url.establish().err().unwrap().to_string();
        assert!(
            err.contains("127.0.0.1:1") || err.contains("port 1"),
            "{err}"
        );
        assert!(!err.contains("Invalid connection url"), "{err}");
    }

    #[test]
    fn sqlite_pragmas_are_applied() {
        use diesel::RunQueryDsl;
        use diesel::sql_types::Text;
        #[derive(diesel::QueryableByName)]
        struct Mode {
            #[diesel(sql_type = Text)]
            journal_mode: String,
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/x.db");
        let url = DatabaseUrl::parse(path.to_str().unwrap()).unwrap();
        let mut conn = url.establish().unwrap();
        let mode: Mode = diesel::sql_query("PRAGMA journal_mode")
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(mode.journal_mode, "wal");
    }
}
