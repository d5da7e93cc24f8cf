//! Write statements whose prepared form is kept by the connection.
//!
//! Diesel prepares every UPDATE, every upsert, every multi-row INSERT and,
//! on SQLite, every INSERT with an `Option` value again on each run: its
//! query builder cannot tell that their text is the same each time. For
//! the statements every SCIM write runs (the resource row, its index rows,
//! the change-log row, the audit entry) preparing cost as much as running
//! them. [`Stmt`] is a statement of fixed text with typed, nullable
//! values; it runs on the connection's own backend, which caches it by its
//! text (`?` placeholders on SQLite, `$n` on PostgreSQL, written by diesel).
//! Only statements of a bounded set of texts may be written with it: the
//! cache keeps every text it sees.

use chrono::NaiveDateTime;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool, Double, Nullable, Text, Timestamp, Untyped};
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, QueryableByName, RunQueryDsl};

use crate::db::AnyConnection;

/// A value bound to a [`Stmt`], `None` binding NULL of the column's type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Val<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
    Float(Option<f64>),
    Bool(Option<bool>),
    Time(Option<NaiveDateTime>),
}

#[derive(Debug, Clone, Copy)]
enum Piece<'a> {
    Sql(&'static str),
    Bind(Val<'a>),
}

/// SQL text and values, written in order.
#[derive(Debug, Default)]
pub(crate) struct Stmt<'a> {
    pieces: Vec<Piece<'a>>,
}

impl<'a> Stmt<'a> {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Appends SQL text (a constant: the text is the cache key).
    pub(crate) fn sql(&mut self, s: &'static str) -> &mut Self {
        self.pieces.push(Piece::Sql(s));
        self
    }

    /// Appends a placeholder bound to `v`.
    pub(crate) fn val(&mut self, v: Val<'a>) -> &mut Self {
        self.pieces.push(Piece::Bind(v));
        self
    }

    /// Appends placeholders for `values`, separated by commas.
    pub(crate) fn vals(&mut self, values: &[Val<'a>]) -> &mut Self {
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.sql(", ");
            }
            self.val(*v);
        }
        self
    }

    /// Runs the statement; the number of rows it changed.
    pub(crate) fn run(&self, conn: &mut AnyConnection) -> QueryResult<usize> {
        match conn {
            AnyConnection::Sqlite(c) => RunQueryDsl::execute(Run(self), c),
            AnyConnection::Pg(c) => RunQueryDsl::execute(Run(self), c),
        }
    }

    /// Runs the statement and reads the rows it returns.
    pub(crate) fn rows<T>(&self, conn: &mut AnyConnection) -> QueryResult<Vec<T>>
    where
        T: QueryableByName<Sqlite> + QueryableByName<Pg> + 'static,
    {
        match conn {
            AnyConnection::Sqlite(c) => RunQueryDsl::load(Run(self), c),
            AnyConnection::Pg(c) => RunQueryDsl::load(Run(self), c),
        }
    }
}

/// A [`Stmt`] as diesel runs it (by value, so a borrowed one).
struct Run<'s, 'a>(&'s Stmt<'a>);

impl QueryId for Run<'_, '_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Run<'_, '_> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Run<'_, '_> {}

macro_rules! stmt_fragment {
    ($db:ty) => {
        impl QueryFragment<$db> for Run<'_, '_> {
            fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, $db>) -> QueryResult<()> {
                for piece in &self.0.pieces {
                    match piece {
                        Piece::Sql(sql) => out.push_sql(sql),
                        Piece::Bind(Val::Int(v)) => {
                            out.push_bind_param::<Nullable<BigInt>, Option<i64>>(v)?
                        }
                        Piece::Bind(Val::Text(v)) => {
                            out.push_bind_param::<Nullable<Text>, Option<&str>>(v)?
                        }
                        Piece::Bind(Val::Float(v)) => {
                            out.push_bind_param::<Nullable<Double>, Option<f64>>(v)?
                        }
                        Piece::Bind(Val::Bool(v)) => {
                            out.push_bind_param::<Nullable<Bool>, Option<bool>>(v)?
                        }
                        Piece::Bind(Val::Time(v)) => {
                            out.push_bind_param::<Nullable<Timestamp>, Option<NaiveDateTime>>(v)?
                        }
                    }
                }
                Ok(())
            }
        }
    };
}

stmt_fragment!(Sqlite);
stmt_fragment!(Pg);

/// A row of one BIGINT column named `n` (`RETURNING pk AS n`).
#[derive(Debug, QueryableByName)]
pub(crate) struct IntRow {
    #[diesel(sql_type = BigInt)]
    pub(crate) n: i64,
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, SqliteConnection};

    use super::*;

    fn sqlite() -> AnyConnection {
        let mut c = match SqliteConnection::establish(":memory:") {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        if let Err(e) = c.batch_execute(
            "CREATE TABLE t (pk INTEGER PRIMARY KEY, i BIGINT, s TEXT, f REAL, b BOOLEAN, at TIMESTAMP)",
        ) {
            panic!("{e}");
        }
        AnyConnection::Sqlite(c)
    }

    #[test]
    fn binds_values_and_nulls_and_returns_rows() -> QueryResult<()> {
        let mut conn = sqlite();
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 5_000)
            .map(|t| t.naive_utc())
            .unwrap_or_default();
        let insert = |vals: [Val<'static>; 5]| {
            let mut s = Stmt::new();
            s.sql("INSERT INTO t (i, s, f, b, at) VALUES (")
                .vals(&vals)
                .sql(") RETURNING pk AS n");
            s
        };
        let full = insert([
            Val::Int(Some(7)),
            Val::Text(Some("x'); DROP TABLE t; --")),
            Val::Float(Some(1.5)),
            Val::Bool(Some(true)),
            Val::Time(Some(at)),
        ]);
        let empty = insert([
            Val::Int(None),
            Val::Text(None),
            Val::Float(None),
            Val::Bool(None),
            Val::Time(None),
        ]);
        let a: Vec<IntRow> = full.rows(&mut conn)?;
        let b: Vec<IntRow> = empty.rows(&mut conn)?;
        assert_eq!((a[0].n, b[0].n), (1, 2));
        let mut update = Stmt::new();
        update
            .sql("UPDATE t SET i = i + 1 WHERE s = ")
            .val(Val::Text(Some("x'); DROP TABLE t; --")));
        assert_eq!(update.run(&mut conn)?, 1);
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Nullable<BigInt>)]
            i: Option<i64>,
            #[diesel(sql_type = Nullable<Text>)]
            s: Option<String>,
            #[diesel(sql_type = Nullable<Double>)]
            f: Option<f64>,
            #[diesel(sql_type = Nullable<Bool>)]
            b: Option<bool>,
            #[diesel(sql_type = Nullable<Timestamp>)]
            at: Option<NaiveDateTime>,
        }
        let mut select = Stmt::new();
        select.sql("SELECT i, s, f, b, at FROM t ORDER BY pk");
        let rows: Vec<Row> = select.rows(&mut conn)?;
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].i, Some(8));
        assert_eq!(rows[0].s.as_deref(), Some("x'); DROP TABLE t; --"));
        assert_eq!(
            (rows[0].f, rows[0].b, rows[0].at),
            (Some(1.5), Some(true), Some(at))
        );
        assert_eq!(
            (
                rows[1].i,
                rows[1].s.as_deref(),
                rows[1].f,
                rows[1].b,
                rows[1].at
            ),
            (None, None, None, None, None)
        );
        Ok(())
    }
}
