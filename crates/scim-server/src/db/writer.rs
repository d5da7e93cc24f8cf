//! The one writer of a SQLite file in this process, with group commit.
//!
//! SQLite admits one writer at a time. Before this module, each request
//! wrote on its own pooled connection, queued on a mutex, and committed its
//! own transaction. Two costs came with that, measured on the create path:
//! a commit (appending the changed pages to the write-ahead log) was a
//! quarter of a create's time, and each connection found its page cache
//! stale after every other connection's commit, so a write began by reading
//! back, page by page, the B-tree pages the previous write had just changed.
//!
//! Now every write transaction of the file runs on one dedicated
//! connection, whose cache stays warm since nothing else writes, and writes
//! that arrive while another is running share its transaction:
//!
//! - a writer takes the gate's mutex; if no transaction is open it begins
//!   one (`BEGIN IMMEDIATE`) and runs its work in it; a writer joining an
//!   open transaction runs its work inside a savepoint of its own; either
//!   way a failed write is rolled back alone and never reaches the others;
//! - if another writer is queued for the mutex (and the batch is not full)
//!   it leaves the transaction open and waits for the batch to be settled;
//!   otherwise it commits, and tells every writer of the batch the result;
//! - a request is answered only after its batch is committed, so nothing is
//!   acknowledged that a crash could lose (`synchronous = NORMAL` in WAL
//!   mode, as before); a commit that fails fails every write of its batch.
//!
//! Each write is still atomic: its savepoint is released whole or rolled
//! back whole. A later write of the same batch sees the earlier ones, as it
//! would have after their commits.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use diesel::Connection;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::connection::{AnyConnection, ConnectionManager, DatabaseUrl, checkpoint};

type Tm = <AnyConnection as Connection>::TransactionManager;

/// The most writes one transaction collects before it is committed even
/// though more are queued, bounding how long the first of them waits.
const MAX_BATCH: usize = 64;

/// The writer's page cache, in KiB (pool connections keep 8 MiB): it holds
/// the B-tree pages the writes touch, and nothing else invalidates it.
const WRITER_CACHE_PRAGMA: &str = "PRAGMA cache_size = -65536";

/// Serialises and batches this process's writes to one SQLite file: see the
/// module documentation.
#[derive(Debug, Clone)]
pub struct WriteGate(Arc<Gate>);

#[derive(Debug)]
struct Gate {
    /// Opens the writer connection, with automatic checkpoints off like
    /// the pool's.
    manager: ConnectionManager,
    state: Mutex<Writer>,
    settled: Condvar,
    /// Writers between announcing themselves and taking `state`.
    queued: AtomicUsize,
    /// Writes run (each in a transaction that committed or not).
    writes: AtomicU64,
    /// Transactions committed.
    commits: AtomicU64,
    /// Set by [`WriteGate::request_log_restart`].
    restart_wanted: AtomicBool,
}

/// What a [`WriteGate`] has done since it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteStats {
    /// Writes run.
    pub writes: u64,
    /// Transactions committed: fewer than `writes` when writes shared them.
    pub commits: u64,
}

/// What the mutex guards.
struct Writer {
    /// The dedicated connection, opened on first use and reopened after a
    /// failure that left it unusable.
    conn: Option<AnyConnection>,
    /// The open transaction, if any.
    open: Option<Batch>,
    next_epoch: u64,
    /// Batches settled whose waiting writers have not all read the outcome.
    settled: HashMap<u64, Outcome>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("connected", &self.conn.is_some())
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy)]
struct Batch {
    epoch: u64,
    writes: usize,
}

#[derive(Debug)]
struct Outcome {
    /// Writers still to read it.
    readers: usize,
    /// Why the batch did not commit.
    error: Option<String>,
}

impl WriteGate {
    /// A gate for the SQLite file at `url` (the writer connection is opened
    /// on the first write).
    pub fn new(url: DatabaseUrl) -> Self {
        Self(Arc::new(Gate {
            manager: ConnectionManager::with_manual_checkpoints(url),
            state: Mutex::new(Writer {
                conn: None,
                open: None,
                next_epoch: 1,
                settled: HashMap::new(),
            }),
            settled: Condvar::new(),
            queued: AtomicUsize::new(0),
            writes: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            restart_wanted: AtomicBool::new(false),
        }))
    }

    /// How many writes ran and how many transactions committed them.
    pub fn stats(&self) -> WriteStats {
        WriteStats {
            writes: self.0.writes.load(Ordering::Relaxed),
            commits: self.0.commits.load(Ordering::Relaxed),
        }
    }

    /// The database it writes.
    pub fn url(&self) -> &DatabaseUrl {
        self.0.manager.url()
    }

    /// Asks for a checkpoint on the writer connection right after its next
    /// commit, while it holds the gate (see [`super::connection::spawn_checkpointer`]).
    pub fn request_log_restart(&self) {
        self.0.restart_wanted.store(true, Ordering::SeqCst);
    }

    /// Runs `f` as one write: see the module documentation. Returns once
    /// the transaction holding it has committed (or `f`'s own error at
    /// once, its changes rolled back).
    pub fn write<T, E>(&self, f: impl FnOnce(&mut AnyConnection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<DieselError>,
    {
        let gate = &*self.0;
        gate.queued.fetch_add(1, Ordering::SeqCst);
        let mut w = lock(&gate.state);
        gate.queued.fetch_sub(1, Ordering::SeqCst);

        let batch = w.begin(&gate.manager)?;
        gate.writes.fetch_add(1, Ordering::Relaxed);
        // The first write of a batch needs no savepoint: if it fails, the
        // whole transaction (holding nothing else) is rolled back. A
        // savepoint is not free: SQLite copies every page it changes that
        // existed before it into a statement journal.
        let first = batch.writes == 0;
        if !first && let Err(e) = w.conn().and_then(Tm::begin_transaction) {
            w.abandon(batch.epoch, &e.to_string());
            gate.settled.notify_all();
            return Err(e.into());
        }
        let run = AssertUnwindSafe(|| match w.conn() {
            Ok(conn) => f(conn),
            Err(e) => Err(e.into()),
        });
        let result = match catch_unwind(run) {
            Ok(result) => result,
            Err(panic) => {
                w.abandon(batch.epoch, "another write of the same transaction failed");
                gate.settled.notify_all();
                drop(w);
                resume_unwind(panic);
            }
        };
        let closed = match (&result, first) {
            (Ok(_), true) => Ok(()),
            (Err(_), true) => {
                w.abandon(batch.epoch, "rolled back");
                return result;
            }
            (Ok(_), false) => w.conn().and_then(Tm::commit_transaction),
            (Err(_), false) => w.conn().and_then(Tm::rollback_transaction),
        };
        if let Err(e) = closed {
            // The savepoint could not be closed: the transaction is in an
            // unknown state, so the whole batch goes.
            w.abandon(batch.epoch, &e.to_string());
            gate.settled.notify_all();
            return match result {
                Ok(_) => Err(e.into()),
                Err(own) => Err(own),
            };
        }
        let writes = batch.writes + 1;
        w.open = Some(Batch {
            epoch: batch.epoch,
            writes,
        });
        let queued = gate.queued.load(Ordering::SeqCst) > 0;
        let outcome = if queued && writes < MAX_BATCH {
            // The next writer commits, or one after it; wait for that.
            while !w.settled.contains_key(&batch.epoch) {
                w = gate.settled.wait(w).unwrap_or_else(PoisonError::into_inner);
            }
            w.read_outcome(batch.epoch)
        } else {
            let outcome = w.commit();
            if outcome.is_ok() {
                gate.commits.fetch_add(1, Ordering::Relaxed);
            }
            gate.settled.notify_all();
            // No transaction is open and no frame can be appended until the
            // gate is released: this checkpoint copies every frame, so the
            // next transaction starts the log over.
            if outcome.is_ok()
                && gate.restart_wanted.swap(false, Ordering::SeqCst)
                && let Ok(conn) = w.conn()
            {
                checkpoint(conn);
            }
            outcome
        };
        drop(w);
        match (outcome, result) {
            (Ok(()), result) => result,
            // The write itself failed: its own error says more.
            (Err(_), Err(own)) => Err(own),
            (Err(e), Ok(_)) => Err(commit_error(e).into()),
        }
    }
}

impl Writer {
    /// The open batch, beginning a transaction (and opening the connection)
    /// if there is none.
    fn begin(&mut self, manager: &ConnectionManager) -> Result<Batch, DieselError> {
        if let Some(open) = self.open {
            return Ok(open);
        }
        if self.conn.is_none() {
            let mut conn = r2d2::ManageConnection::connect(manager)
                .map_err(|e| commit_error(format!("cannot open the writer connection: {e}")))?;
            conn.batch_execute(WRITER_CACHE_PRAGMA)?;
            self.conn = Some(conn);
        }
        let Some(AnyConnection::Sqlite(c)) = self.conn.as_mut() else {
            return Err(commit_error("the write gate serves SQLite only".into()));
        };
        if let Err(e) = AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE") {
            self.drop_if_broken();
            return Err(e);
        }
        let batch = Batch {
            epoch: self.next_epoch,
            writes: 0,
        };
        self.next_epoch += 1;
        self.open = Some(batch);
        Ok(batch)
    }

    /// Commits the open batch and records the outcome for its waiters.
    fn commit(&mut self) -> Result<(), String> {
        let Some(batch) = self.open.take() else {
            return Ok(());
        };
        let outcome = self
            .conn()
            .and_then(Tm::commit_transaction)
            .map_err(|e| e.to_string());
        if outcome.is_err() {
            // diesel rolls back after a failed commit; if even that failed
            // the connection is dropped, which rolls back.
            self.drop_if_broken();
        }
        // Every write of the batch but the committing one is waiting.
        self.settle(batch.epoch, batch.writes - 1, outcome.clone().err());
        outcome
    }

    /// Rolls back the open batch (if it is `epoch`) and records `why` for
    /// its waiters. The connection is dropped when the rollback fails.
    fn abandon(&mut self, epoch: u64, why: &str) {
        let Some(batch) = self.open.filter(|b| b.epoch == epoch) else {
            return;
        };
        self.open = None;
        if let Some(AnyConnection::Sqlite(c)) = self.conn.as_mut() {
            // Back to the outermost level: each call closes one.
            while matches!(
                AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth(),
                Ok(Some(_))
            ) {
                if AnsiTransactionManager::rollback_transaction(c).is_err() {
                    self.conn = None;
                    break;
                }
            }
        }
        self.drop_if_broken();
        // The abandoning write was not counted yet: every counted one waits.
        self.settle(batch.epoch, batch.writes, Some(why.to_owned()));
    }

    /// Records a batch's outcome for the `readers` writers waiting on it.
    fn settle(&mut self, epoch: u64, readers: usize, error: Option<String>) {
        if readers > 0 {
            self.settled.insert(epoch, Outcome { readers, error });
        }
    }

    /// The connection of the open batch (it has one: the connection is
    /// only dropped together with the batch).
    fn conn(&mut self) -> Result<&mut AnyConnection, DieselError> {
        self.conn
            .as_mut()
            .ok_or_else(|| commit_error("the writer connection is closed".into()))
    }

    /// A waiting writer's read of its batch's outcome.
    fn read_outcome(&mut self, epoch: u64) -> Result<(), String> {
        let Some(o) = self.settled.get_mut(&epoch) else {
            return Ok(());
        };
        o.readers -= 1;
        let result = o.error.clone().map_or(Ok(()), Err);
        if o.readers == 0 {
            self.settled.remove(&epoch);
        }
        result
    }

    fn drop_if_broken(&mut self) {
        if let Some(conn) = self.conn.as_mut()
            && Tm::is_broken_transaction_manager(conn)
        {
            self.conn = None;
        }
    }
}

fn lock(m: &Mutex<Writer>) -> MutexGuard<'_, Writer> {
    // Poisoned only if a panic escaped while the state was held, which
    // `write` prevents; the state is consistent either way.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn commit_error(why: String) -> DieselError {
    DieselError::DatabaseError(DatabaseErrorKind::Unknown, Box::new(why))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn gate() -> (tempfile::TempDir, WriteGate) {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::parse(dir.path().join("w.db").to_str().unwrap()).unwrap();
        url.establish()
            .unwrap()
            .batch_execute(
                "CREATE TABLE t (v INTEGER NOT NULL UNIQUE); CREATE TABLE b (v BLOB NOT NULL)",
            )
            .unwrap();
        (dir, WriteGate::new(url))
    }

    fn insert(conn: &mut AnyConnection, v: i64) -> Result<(), DieselError> {
        conn.batch_execute(&format!("INSERT INTO t (v) VALUES ({v})"))
    }

    fn values(gate: &WriteGate) -> Vec<i64> {
        use diesel::RunQueryDsl;
        let AnyConnection::Sqlite(mut conn) = gate.0.manager.url().establish().unwrap() else {
            panic!("the test database is SQLite");
        };
        diesel::sql_query("SELECT v FROM t ORDER BY v")
            .load::<Row>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|r| r.v)
            .collect()
    }

    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        v: i64,
    }

    /// Waits (bounded) until another writer is queued behind the caller.
    fn until_queued(gate: &WriteGate) {
        for _ in 0..5_000 {
            if gate.0.queued.load(Ordering::SeqCst) > 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("no second writer arrived");
    }

    #[test]
    fn the_log_starts_over_under_steady_writes() {
        // One writer that never pauses for long: the checkpointer's own
        // checkpoint never catches up with it, so only the one it runs on
        // the writer connection lets the log start over.
        let (dir, gate) = gate();
        let alive = Arc::new(());
        super::super::connection::spawn_checkpointer(gate.clone(), Arc::downgrade(&alive)).unwrap();
        let wal = dir.path().join("w.db-wal");
        let wal_len = || std::fs::metadata(&wal).map_or(0, |m| m.len());
        // Rows of 64 KiB, up to about 260 MB of log if it never started
        // over: once it does, its file is cut back to journal_size_limit.
        let (mut last, mut longest, mut cut_back) = (0, 0, false);
        for _ in 0..4_000 {
            gate.write(|c| c.batch_execute("INSERT INTO b (v) VALUES (randomblob(65536))"))
                .unwrap();
            let len = wal_len();
            cut_back |= len < last;
            (last, longest) = (len, longest.max(len));
            if cut_back {
                break;
            }
        }
        drop(alive);
        assert!(
            cut_back,
            "the log grew to {longest} bytes and never started over"
        );
        assert!(longest > 64 << 20, "it grew past the limit first");
    }

    #[test]
    fn a_queued_write_joins_the_open_transaction() {
        let (_dir, gate) = gate();
        let second = gate.clone();
        let first = std::thread::scope(|s| {
            let first = s.spawn(|| {
                gate.write(|c| {
                    insert(c, 1)?;
                    s.spawn(|| second.write(|c| insert(c, 2)));
                    until_queued(&gate);
                    Ok::<_, DieselError>(())
                })
            });
            first.join().unwrap()
        });
        first.unwrap();
        assert_eq!(values(&gate), [1, 2]);
        assert_eq!(
            gate.stats(),
            WriteStats {
                writes: 2,
                commits: 1
            },
            "two writes, one commit"
        );
    }

    #[test]
    fn a_failed_write_is_rolled_back_alone() {
        let (_dir, gate) = gate();
        let second = gate.clone();
        let (first, failed) = std::thread::scope(|s| {
            let mut failed = None;
            let first = gate.write(|c| {
                insert(c, 1)?;
                failed = Some(s.spawn(|| {
                    second.write(|c| {
                        insert(c, 2)?;
                        // Violates the unique constraint: this write fails.
                        insert(c, 1)
                    })
                }));
                until_queued(&gate);
                Ok::<_, DieselError>(())
            });
            (first, failed.unwrap().join().unwrap())
        });
        first.unwrap();
        assert!(failed.is_err(), "the duplicate insert fails");
        assert_eq!(values(&gate), [1], "only the failed write's rows are gone");
        gate.write(|c| insert(c, 3)).unwrap();
        assert_eq!(values(&gate), [1, 3]);
    }

    #[test]
    fn a_panicking_write_fails_its_batch_and_the_gate_goes_on() {
        let (_dir, gate) = gate();
        let second = gate.clone();
        let first = std::thread::scope(|s| {
            let mut panicked = None;
            let first = gate.write(|c| {
                insert(c, 1)?;
                panicked = Some(s.spawn(|| {
                    second.write(|c| -> Result<(), DieselError> {
                        insert(c, 2)?;
                        panic!("a bug in a write");
                    })
                }));
                until_queued(&gate);
                Ok::<_, DieselError>(())
            });
            assert!(
                panicked.unwrap().join().is_err(),
                "the panic reaches its caller"
            );
            first
        });
        assert!(
            first.is_err(),
            "the write sharing the transaction is not acknowledged"
        );
        assert_eq!(values(&gate), Vec::<i64>::new());
        gate.write(|c| insert(c, 3)).unwrap();
        assert_eq!(values(&gate), [3]);
    }

    #[test]
    fn concurrent_writes_all_land() {
        let (_dir, gate) = gate();
        std::thread::scope(|s| {
            for t in 0..8_i64 {
                let gate = &gate;
                s.spawn(move || {
                    for i in 0..25 {
                        gate.write(|c| insert(c, t * 100 + i)).unwrap();
                    }
                });
            }
        });
        let got = values(&gate);
        assert_eq!(got.len(), 200);
        let stats = gate.stats();
        assert_eq!(stats.writes, 200);
        assert!((1..=200).contains(&stats.commits));
    }
}
