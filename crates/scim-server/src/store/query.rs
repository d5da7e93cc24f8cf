//! [`QueryStore`] for [`Store`]: filtered, sorted, paged reads of
//! resources, answered in SQL through the attribute index.
//!
//! A query is one condition on `resources r` (see [`super::filter_sql`])
//! plus an order. The order is a total order on *sort keys*: with `sortBy`,
//! resources that have a value for the attribute come first, by that value
//! then by `pk`, and resources without one follow, by `pk` (RFC 7644 section
//! 3.4.2.3: missing values are last ascending, first descending);
//! descending is the exact reverse. Without `sortBy` the order is `pk`
//! (creation order). Each of the two parts is read with its own query, in
//! index order:
//!
//! - single-valued attributes (`userName`, `meta.lastModified`,
//!   `name.familyName`, ...): the part with values walks the value index
//!   (`attr_index_text`, `_exact`, `_num`, `_time`, `_boolean`, all ending
//!   in `resource_pk`) joined to `resources`, so `ORDER BY value, pk LIMIT
//!   n` reads n rows whatever the table size;
//! - multi-valued attributes sort by the primary value, else the first
//!   (lowest ordinal), computed per matching resource and sorted: exact,
//!   but its cost grows with the number of matches.
//!
//! Index pages (`startIndex`) use `OFFSET` on those queries; cursor pages
//! (RFC 9865) are keyset pages: "the rows after this key", so a row deleted
//! or added elsewhere never makes another one be skipped or repeated.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool, Double, Nullable, Text, Untyped};
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, QueryableByName, RunQueryDsl};
use scim_core::ErrorKind;
use scim_core::filter::Filter;
use scim_core::messages::SortOrder;
use scim_core::schema::{AttrRef, ResourceSchema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::filter_sql::{
    Bind, Bound, Column, Compiler, Frag, Node, Piece, Renderer, Statement, attr_key,
    maybe_cut_predicate, paths_sensitive_to_cuts,
};
use super::{Store, TenantId};
use crate::db::AnyConnection;
use crate::error::{Error, Result};

/// Most rows whose answer the index cannot decide (values cut at the
/// index's text limit, huge whole numbers, sub-microsecond instants) that
/// one query re-checks against their documents; more is `tooMany`.
pub const RECHECK_LIMIT: usize = 10_000;

/// A condition on the resources of one type: a typed filter, or constants
/// and connectives around typed filters (a query over several resource
/// types treats an attribute a type does not have as having no value).
#[derive(Debug, Clone)]
pub enum Cond {
    /// Every resource, or none.
    Const(bool),
    /// Every term.
    And(Vec<Cond>),
    /// Some term.
    Or(Vec<Cond>),
    /// Not the term.
    Not(Box<Cond>),
    /// A filter resolved against the resource type.
    Filter(Filter),
}

impl Cond {
    /// Whether a (served) document satisfies the condition, in memory.
    pub fn matches(&self, doc: &Value) -> bool {
        match self {
            Cond::Const(b) => *b,
            Cond::And(c) => c.iter().all(|c| c.matches(doc)),
            Cond::Or(c) => c.iter().any(|c| c.matches(doc)),
            Cond::Not(c) => !c.matches(doc),
            Cond::Filter(f) => f.matches(doc),
        }
    }

    /// The number of comparison and presence terms.
    fn leaves(&self) -> usize {
        match self {
            Cond::Const(_) => 0,
            Cond::And(c) | Cond::Or(c) => c.iter().map(Cond::leaves).sum(),
            Cond::Not(c) => c.leaves(),
            Cond::Filter(f) => {
                let mut n = 0;
                let mut stack = vec![f];
                while let Some(f) = stack.pop() {
                    match f {
                        Filter::And(c) | Filter::Or(c) => stack.extend(c.iter()),
                        Filter::Not(c) | Filter::ValuePath { filter: c, .. } => stack.push(c),
                        Filter::Present(_) | Filter::Compare { .. } => n += 1,
                    }
                }
                n
            }
        }
    }

    /// Whether the condition reads the core attribute `name` (or one of its
    /// sub-attributes).
    fn reads(&self, name: &str) -> bool {
        match self {
            Cond::Const(_) => false,
            Cond::And(c) | Cond::Or(c) => c.iter().any(|c| c.reads(name)),
            Cond::Not(c) => c.reads(name),
            Cond::Filter(f) => f
                .attributes()
                .iter()
                .any(|a| !a.is_extension() && a.attribute().name.eq_ignore_ascii_case(name)),
        }
    }

    fn sensitive_paths(&self, out: &mut BTreeSet<String>) {
        match self {
            Cond::Const(_) => {}
            Cond::And(c) | Cond::Or(c) => c.iter().for_each(|c| c.sensitive_paths(out)),
            Cond::Not(c) => c.sensitive_paths(out),
            Cond::Filter(f) => out.extend(paths_sensitive_to_cuts(f)),
        }
    }

    fn build(&self, c: &mut Compiler<'_>, bound: Bound) -> Result<Node> {
        Ok(match self {
            Cond::Const(b) => Node::Const(*b),
            Cond::And(v) => Node::And(v.iter().map(|x| x.build(c, bound)).collect::<Result<_>>()?),
            Cond::Or(v) => Node::Or(v.iter().map(|x| x.build(c, bound)).collect::<Result<_>>()?),
            Cond::Not(x) => Node::Not(Box::new(x.build(
                c,
                match bound {
                    Bound::Sure => Bound::Maybe,
                    Bound::Maybe => Bound::Sure,
                },
            )?)),
            Cond::Filter(f) => c.build(f, bound)?,
        })
    }
}

/// One resource type a query reads.
#[derive(Debug, Clone)]
pub struct Target {
    /// The resource type and its schemas.
    pub rs: Arc<ResourceSchema>,
    /// Which of its resources.
    pub cond: Cond,
    /// The `sortBy` attribute as this type knows it (`None`: the type has
    /// no such attribute, so its resources have no value for it).
    pub sort: Option<AttrRef>,
    /// `meta.location` of a resource is this prefix followed by its id.
    pub location_prefix: String,
}

/// A query over one or more resource types of a tenant.
#[derive(Debug, Clone)]
pub struct ResourceQuery {
    /// The tenant whose resources are read.
    pub tenant: TenantId,
    /// The resource types, with a condition each.
    pub targets: Vec<Target>,
    /// Whether `sortBy` was given (the targets say what it names).
    pub sorted: bool,
    /// The order.
    pub order: SortOrder,
}

/// Which page.
#[derive(Debug, Clone, PartialEq)]
pub enum PageRequest {
    /// `startIndex` paging: skip `offset` resources, return at most `count`.
    Index {
        /// Resources to skip (`startIndex - 1`).
        offset: u64,
        /// Most resources to return.
        count: u64,
    },
    /// The `count` resources after `key` (from the start when `None`).
    After {
        /// The last key of the previous page.
        key: Option<SortKey>,
        /// Most resources to return.
        count: u64,
    },
    /// The `count` resources before `key`; the first page if fewer exist.
    Before {
        /// The first key of the following page.
        key: SortKey,
        /// Most resources to return.
        count: u64,
    },
}

/// A typed sort value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KeyValue {
    /// Text (folded or exact).
    #[serde(rename = "s")]
    Text(String),
    /// A number.
    #[serde(rename = "n")]
    Num(f64),
    /// An instant (microseconds).
    #[serde(rename = "t")]
    Time(i64),
    /// A boolean.
    #[serde(rename = "b")]
    Bool(bool),
}

impl KeyValue {
    fn bind(&self) -> Bind {
        match self {
            KeyValue::Text(s) => Bind::Text(s.clone()),
            KeyValue::Num(n) => Bind::Float(*n),
            KeyValue::Time(t) => Bind::Int(*t),
            KeyValue::Bool(b) => Bind::Bool(*b),
        }
    }
}

/// Where a resource sits in a query's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SortKey {
    /// In the part without a value for `sortBy`.
    #[serde(rename = "m", default, skip_serializing_if = "std::ops::Not::not")]
    pub missing: bool,
    /// The sort value (none without `sortBy`, or when missing).
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub value: Option<KeyValue>,
    /// The internal row key: the tie-break.
    #[serde(rename = "k")]
    pub pk: i64,
}

/// A resource found by a query.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundResource {
    /// The resource type id.
    pub resource_type: String,
    /// The SCIM id.
    pub id: String,
    /// The stored document.
    pub document: Value,
    /// Its place in the order.
    pub key: SortKey,
}

/// One page of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPage {
    /// How many resources match in all.
    pub total: u64,
    /// The page, in order.
    pub resources: Vec<FoundResource>,
    /// Whether resources follow the last one of the page (cursor pages).
    pub more_after: bool,
    /// Whether resources precede the first one of the page (cursor pages).
    pub more_before: bool,
}

/// Filtered, sorted, paged reads.
pub trait QueryStore {
    /// One page of the resources matching `query`.
    fn query_resources(&self, query: &ResourceQuery, page: &PageRequest) -> Result<QueryPage>;

    /// The secret called `name`, shared by every server on this database,
    /// created (32 random bytes) on first use.
    fn server_secret(&self, name: &str) -> Result<Vec<u8>>;
}

#[derive(QueryableByName)]
struct PageRow {
    #[diesel(sql_type = BigInt)]
    pk: i64,
    #[diesel(sql_type = Text)]
    resource_type: String,
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Nullable<Text>)]
    document: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    k_text: Option<String>,
    #[diesel(sql_type = Nullable<Double>)]
    k_num: Option<f64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    k_time: Option<i64>,
    #[diesel(sql_type = Nullable<Bool>)]
    k_bool: Option<bool>,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct PathRow {
    #[diesel(sql_type = Text)]
    attr: String,
}

#[derive(QueryableByName)]
struct DocRow {
    #[diesel(sql_type = BigInt)]
    pk: i64,
    #[diesel(sql_type = Text)]
    document: String,
}

#[derive(QueryableByName)]
struct SecretRow {
    #[diesel(sql_type = Text)]
    value: String,
}

/// A fragment run as a query. Diesel caches the prepared statement by its
/// text when `cache` is set (planning a statement costs more than running
/// it); only statements of a bounded set of shapes may be cached, since the
/// cache has no size limit.
struct RawQuery<'a> {
    frag: &'a Frag,
    cache: bool,
}

impl QueryId for RawQuery<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for RawQuery<'_> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for RawQuery<'_> {}

macro_rules! raw_query_fragment {
    ($db:ty) => {
        impl QueryFragment<$db> for RawQuery<'_> {
            fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, $db>) -> QueryResult<()> {
                if !self.cache {
                    out.unsafe_to_cache_prepared();
                }
                for piece in self.frag.pieces() {
                    match piece {
                        Piece::Sql(sql) => out.push_sql(sql),
                        Piece::Bind(Bind::Int(v)) => out.push_bind_param::<BigInt, i64>(v)?,
                        Piece::Bind(Bind::Text(v)) => out.push_bind_param::<Text, String>(v)?,
                        Piece::Bind(Bind::Float(v)) => out.push_bind_param::<Double, f64>(v)?,
                        Piece::Bind(Bind::Bool(v)) => out.push_bind_param::<Bool, bool>(v)?,
                    }
                }
                Ok(())
            }
        }
    };
}

raw_query_fragment!(Sqlite);
raw_query_fragment!(Pg);

/// Runs a fragment on the connection's own backend (the multi-backend
/// connection cannot take raw SQL), caching its statement when `cache`.
pub(crate) fn load<T>(conn: &mut AnyConnection, frag: &Frag, cache: bool) -> QueryResult<Vec<T>>
where
    T: QueryableByName<Sqlite> + QueryableByName<Pg> + 'static,
{
    let q = RawQuery { frag, cache };
    match conn {
        AnyConnection::Sqlite(c) => q.load(c),
        AnyConnection::Pg(c) => q.load(c),
    }
}

fn execute(conn: &mut AnyConnection, frag: &Frag) -> QueryResult<usize> {
    let q = RawQuery { frag, cache: false };
    match conn {
        AnyConnection::Sqlite(c) => q.execute(c),
        AnyConnection::Pg(c) => q.execute(c),
    }
}

/// Walking direction, in the ascending order of keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Asc,
    Desc,
}

impl Dir {
    fn rev(self) -> Self {
        match self {
            Dir::Asc => Dir::Desc,
            Dir::Desc => Dir::Asc,
        }
    }
    fn sql(self) -> &'static str {
        match self {
            Dir::Asc => "ASC",
            Dir::Desc => "DESC",
        }
    }
    fn cmp(self) -> &'static str {
        match self {
            Dir::Asc => ">",
            Dir::Desc => "<",
        }
    }
}

/// The parts of the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seg {
    /// No `sortBy`: everything by pk.
    All,
    /// Resources with a sort value.
    Present,
    /// Resources without one.
    Missing,
}

/// How the sort key is computed.
#[derive(Debug)]
enum SortPlan {
    /// Join the single-valued attribute's index rows, in index order.
    Join {
        column: Column,
        rtype: String,
        attr: String,
    },
    /// A per-resource expression `(... ) AS k` (multi-valued attributes,
    /// or several resource types).
    Expr { column: Column, key: Frag },
}

impl SortPlan {
    fn column(&self) -> Column {
        match self {
            SortPlan::Join { column, .. } | SortPlan::Expr { column, .. } => *column,
        }
    }
}

/// A compiled query, ready to read pages.
struct Exec<'c> {
    conn: &'c mut AnyConnection,
    /// Whether the statements may be cached (a simple, common shape).
    cache: bool,
    tenant: i64,
    /// When no target has a filter: the resource types (their totals are
    /// kept in `resource_counts`); empty otherwise.
    unfiltered: Vec<String>,
    /// `r.tenant_id = ? AND (...)`.
    filter: Frag,
    sort: Option<SortPlan>,
    display: Dir,
}

fn key_columns(column: Option<Column>, expr: &str) -> String {
    let pick = |c: Column| if column == Some(c) { expr } else { "" };
    let col = |c: Column, name: &str, ty: &str| {
        let e = pick(c);
        if e.is_empty() {
            format!("CAST(NULL AS {ty}) AS {name}")
        } else {
            format!("{e} AS {name}")
        }
    };
    let text = match column {
        Some(Column::Folded | Column::Exact) => format!("{expr} AS k_text"),
        _ => "CAST(NULL AS TEXT) AS k_text".to_owned(),
    };
    format!(
        "{text}, {}, {}, {}",
        col(Column::Num, "k_num", "DOUBLE PRECISION"),
        col(Column::Time, "k_time", "BIGINT"),
        col(Column::Bool, "k_bool", "BOOLEAN")
    )
}

impl Exec<'_> {
    fn load<T>(&mut self, f: &Frag) -> Result<Vec<T>>
    where
        T: QueryableByName<Sqlite> + QueryableByName<Pg> + 'static,
    {
        Ok(load(self.conn, f, self.cache)?)
    }

    fn count(&mut self) -> Result<u64> {
        if !self.unfiltered.is_empty() {
            // Every resource of the types: the counts the triggers keep.
            let mut f = Frag::new();
            f.sql("SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS n FROM resource_counts WHERE tenant_id = ")
                .int(self.tenant)
                .sql(" AND resource_type IN (");
            for (i, t) in self.unfiltered.iter().enumerate() {
                f.sql(if i == 0 { "" } else { ", " }).text(t.as_str());
            }
            f.sql(")");
            let rows: Vec<CountRow> = self.load(&f)?;
            return Ok(rows.first().map_or(0, |r| u64::try_from(r.n).unwrap_or(0)));
        }
        let mut f = Frag::new();
        f.sql("SELECT COUNT(*) AS n FROM resources r WHERE ")
            .frag(&self.filter);
        let rows: Vec<CountRow> = self.load(&f)?;
        Ok(rows.first().map_or(0, |r| u64::try_from(r.n).unwrap_or(0)))
    }

    /// The FROM ... WHERE of a segment, with the keyset bound.
    fn segment_body(&self, seg: Seg, dir: Dir, from: Option<&SortKey>) -> Frag {
        let mut f = Frag::new();
        let cmp = dir.cmp();
        match (seg, &self.sort) {
            (Seg::All, _) | (_, None) => {
                f.sql(" FROM resources r WHERE ").frag(&self.filter);
                if let Some(k) = from {
                    f.sql(format!(" AND r.pk {cmp} ")).int(k.pk);
                }
            }
            (
                Seg::Present,
                Some(SortPlan::Join {
                    column,
                    rtype,
                    attr,
                }),
            ) => {
                let c = column.name();
                f.sql(" FROM attr_index s JOIN resources r ON r.pk = s.resource_pk WHERE s.tenant_id = ")
                    .int(self.tenant)
                    .sql(" AND s.resource_type = ")
                    .text(rtype.as_str())
                    .sql(" AND s.attr = ")
                    .text(attr.as_str())
                    .sql(format!(" AND s.{c} IS NOT NULL AND "))
                    .frag(&self.filter);
                if let Some(k) = from {
                    let v = k.value.as_ref().map_or(Bind::Int(0), KeyValue::bind);
                    f.sql(format!(" AND (s.{c}, s.resource_pk) {cmp} ("))
                        .bind(v)
                        .sql(", ")
                        .int(k.pk)
                        .sql(")");
                }
            }
            (
                Seg::Missing,
                Some(SortPlan::Join {
                    column,
                    rtype: _,
                    attr,
                }),
            ) => {
                f.sql(" FROM resources r WHERE ")
                    .frag(&self.filter)
                    .sql(" AND NOT EXISTS (SELECT 1 FROM attr_index s WHERE s.resource_pk = r.pk AND s.attr = ")
                    .text(attr.as_str())
                    .sql(format!(" AND s.{} IS NOT NULL)", column.name()));
                if let Some(k) = from {
                    f.sql(format!(" AND r.pk {cmp} ")).int(k.pk);
                }
            }
            (seg, Some(SortPlan::Expr { key, .. })) => {
                f.sql(" FROM (SELECT r.pk, r.resource_type, r.id, (")
                    .frag(key)
                    .sql(") AS k FROM resources r WHERE ")
                    .frag(&self.filter)
                    .sql(") q WHERE ");
                if seg == Seg::Present {
                    f.sql("q.k IS NOT NULL");
                    if let Some(k) = from {
                        let v = k.value.as_ref().map_or(Bind::Int(0), KeyValue::bind);
                        f.sql(format!(" AND (q.k, q.pk) {cmp} ("))
                            .bind(v)
                            .sql(", ")
                            .int(k.pk)
                            .sql(")");
                    }
                } else {
                    f.sql("q.k IS NULL");
                    if let Some(k) = from {
                        f.sql(format!(" AND q.pk {cmp} ")).int(k.pk);
                    }
                }
            }
        }
        f
    }

    fn segment(
        &mut self,
        seg: Seg,
        dir: Dir,
        from: Option<&SortKey>,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<FoundResource>> {
        let d = dir.sql();
        let body = self.segment_body(seg, dir, from);
        let column = self.sort.as_ref().map(SortPlan::column);
        let mut f = Frag::new();
        let two_step = matches!(self.sort, Some(SortPlan::Expr { .. }));
        match (seg, &self.sort) {
            (Seg::All, _) | (_, None) => {
                f.sql("SELECT r.pk, r.resource_type, r.id, r.document, ")
                    .sql(key_columns(None, ""))
                    .frag(&body)
                    .sql(format!(" ORDER BY r.pk {d}"));
            }
            (Seg::Present, Some(SortPlan::Join { column, .. })) => {
                let c = column.name();
                f.sql("SELECT r.pk, r.resource_type, r.id, r.document, ")
                    .sql(key_columns(Some(*column), &format!("s.{c}")))
                    .frag(&body)
                    .sql(format!(" ORDER BY s.{c} {d}, s.resource_pk {d}"));
            }
            (Seg::Missing, Some(SortPlan::Join { .. })) => {
                f.sql("SELECT r.pk, r.resource_type, r.id, r.document, ")
                    .sql(key_columns(None, ""))
                    .frag(&body)
                    .sql(format!(" ORDER BY r.pk {d}"));
            }
            (seg, Some(SortPlan::Expr { .. })) => {
                f.sql("SELECT q.pk, q.resource_type, q.id, CAST(NULL AS TEXT) AS document, ");
                if seg == Seg::Present {
                    f.sql(key_columns(column, "q.k"))
                        .frag(&body)
                        .sql(format!(" ORDER BY q.k {d}, q.pk {d}"));
                } else {
                    f.sql(key_columns(None, ""))
                        .frag(&body)
                        .sql(format!(" ORDER BY q.pk {d}"));
                }
            }
        }
        // LIMIT and OFFSET are numbers written into the text, not bound:
        // SQLite's planner reads bound LIMIT values, and a statement whose
        // plan read a bound value is prepared again every time it is bound.
        // Statements with an OFFSET are then not cached (too many texts).
        let limit = limit.min(i64::MAX as u64);
        let offset_text = offset.min(i64::MAX as u64);
        f.sql(format!(" LIMIT {limit} OFFSET {offset_text}"));
        let rows: Vec<PageRow> = load(self.conn, &f, self.cache && offset == 0)?;
        let mut docs = HashMap::new();
        if two_step && !rows.is_empty() {
            let mut q = Frag::new();
            q.sql("SELECT pk, document FROM resources WHERE pk IN (");
            for (i, r) in rows.iter().enumerate() {
                if i > 0 {
                    q.sql(", ");
                }
                q.int(r.pk);
            }
            q.sql(")");
            let found: Vec<DocRow> = load(self.conn, &q, false)?;
            docs.extend(found.into_iter().map(|d| (d.pk, d.document)));
        }
        rows.into_iter()
            .map(|row| {
                let PageRow {
                    pk,
                    resource_type,
                    id,
                    document,
                    k_text,
                    k_num,
                    k_time,
                    k_bool,
                } = row;
                let text = document
                    .or_else(|| docs.remove(&pk))
                    .ok_or_else(|| Error::internal(format!("resource {pk} vanished")))?;
                let document = serde_json::from_str(&text).map_err(|e| {
                    Error::internal(format!("stored document of resource {pk} is not JSON: {e}"))
                })?;
                let value = k_text
                    .map(KeyValue::Text)
                    .or(k_num.map(KeyValue::Num))
                    .or(k_time.map(KeyValue::Time))
                    .or(k_bool.map(KeyValue::Bool));
                Ok(FoundResource {
                    resource_type,
                    id,
                    document,
                    key: SortKey {
                        missing: seg == Seg::Missing,
                        value,
                        pk,
                    },
                })
            })
            .collect()
    }

    fn segment_count(&mut self, seg: Seg, dir: Dir, from: Option<&SortKey>) -> Result<u64> {
        let body = self.segment_body(seg, dir, from);
        let mut f = Frag::new();
        f.sql("SELECT COUNT(*) AS n").frag(&body);
        let rows: Vec<CountRow> = self.load(&f)?;
        Ok(rows.first().map_or(0, |r| u64::try_from(r.n).unwrap_or(0)))
    }

    /// Up to `limit` resources in direction `dir` (ascending key order when
    /// `Asc`), after `from` (exclusive), skipping `offset`.
    fn walk(
        &mut self,
        dir: Dir,
        from: Option<&SortKey>,
        mut offset: u64,
        limit: u64,
    ) -> Result<Vec<FoundResource>> {
        let segs: &[Seg] = match (&self.sort, dir) {
            (None, _) => &[Seg::All],
            (Some(_), Dir::Asc) => &[Seg::Present, Seg::Missing],
            (Some(_), Dir::Desc) => &[Seg::Missing, Seg::Present],
        };
        let from_seg = from.map(|k| match (&self.sort, k.missing) {
            (None, _) => Seg::All,
            (Some(_), false) => Seg::Present,
            (Some(_), true) => Seg::Missing,
        });
        let mut out: Vec<FoundResource> = Vec::new();
        let mut reached = from_seg.is_none();
        for &seg in segs {
            let bound = if Some(seg) == from_seg {
                reached = true;
                from
            } else if !reached {
                continue;
            } else {
                None
            };
            let want = limit.saturating_sub(out.len() as u64);
            if want == 0 {
                break;
            }
            let rows = self.segment(seg, dir, bound, offset, want)?;
            let got = rows.len() as u64;
            if got < want && offset > 0 {
                let in_segment = if got > 0 {
                    offset + got
                } else {
                    self.segment_count(seg, dir, bound)?
                };
                offset = offset.saturating_sub(in_segment);
            } else {
                offset = 0;
            }
            out.extend(rows);
        }
        Ok(out)
    }

    fn page(&mut self, page: &PageRequest) -> Result<QueryPage> {
        let display = self.display;
        if let PageRequest::Index { offset, count } = page
            && *count > 0
        {
            // A page that comes back short ends the result, so it tells the
            // total itself (the usual answer to `filter=userName eq ...`):
            // no count query.
            let rows = self.walk(display, None, *offset, *count)?;
            let got = rows.len() as u64;
            let total = if got < *count && (got > 0 || *offset == 0) {
                offset + got
            } else {
                self.count()?
            };
            return Ok(QueryPage {
                more_after: offset.saturating_add(got) < total,
                more_before: *offset > 0,
                total,
                resources: rows,
            });
        }
        let total = self.count()?;
        let (resources, more_after, more_before) = match page {
            PageRequest::Index { offset, .. } => (Vec::new(), *offset < total, *offset > 0),
            PageRequest::After { key, count } => self.after(key.as_ref(), *count)?,
            PageRequest::Before { key, count } => {
                if *count == 0 {
                    (Vec::new(), false, false)
                } else {
                    let mut rows = self.walk(display.rev(), Some(key), 0, count + 1)?;
                    if rows.len() as u64 > *count {
                        rows.truncate(*count as usize);
                        rows.reverse();
                        let after = match rows.last() {
                            Some(last) => !self.walk(display, Some(&last.key), 0, 1)?.is_empty(),
                            None => false,
                        };
                        (rows, after, true)
                    } else {
                        // Fewer than a page before the key: the first page.
                        self.after(None, *count)?
                    }
                }
            }
        };
        Ok(QueryPage {
            total,
            resources,
            more_after,
            more_before,
        })
    }

    fn after(
        &mut self,
        key: Option<&SortKey>,
        count: u64,
    ) -> Result<(Vec<FoundResource>, bool, bool)> {
        if count == 0 {
            return Ok((Vec::new(), false, false));
        }
        let display = self.display;
        let mut rows = self.walk(display, key, 0, count + 1)?;
        let after = rows.len() as u64 > count;
        rows.truncate(count as usize);
        let before = match (key, rows.first()) {
            (Some(_), Some(first)) => !self.walk(display.rev(), Some(&first.key), 0, 1)?.is_empty(),
            _ => false,
        };
        Ok((rows, after, before))
    }
}

/// The sort plan for the targets' `sortBy`.
fn sort_plan(targets: &[Target]) -> Option<SortPlan> {
    let first = targets.iter().find_map(|t| t.sort.as_ref())?;
    let column = Column::of(first)?;
    // Targets whose attribute is stored in another column have no value.
    let sorted: Vec<(&Target, &AttrRef)> = targets
        .iter()
        .filter_map(|t| t.sort.as_ref().map(|a| (t, a)))
        .filter(|(_, a)| Column::of(a) == Some(column))
        .collect();
    if let [(t, a)] = sorted.as_slice()
        && targets.len() == 1
        && !a.is_multi_valued()
    {
        {
            return Some(SortPlan::Join {
                column,
                rtype: t.rs.resource_type().id.clone(),
                attr: attr_key(a),
            });
        }
    }
    let c = column.name();
    let mut key = Frag::new();
    key.sql("CASE");
    for (t, a) in sorted {
        key.sql(" WHEN r.resource_type = ")
            .text(t.rs.resource_type().id.as_str())
            .sql(format!(
                " THEN (SELECT s.{c} FROM attr_index s WHERE s.resource_pk = r.pk AND s.attr = "
            ))
            .text(attr_key(a))
            .sql(format!(" AND s.{c} IS NOT NULL ORDER BY "));
        // The primary element's value first, else the first value.
        if a.has_sub()
            && a.attribute().multi_valued
            && let Some(primary) = a.parent().sub("primary")
        {
            {
                key.sql("CASE WHEN EXISTS (SELECT 1 FROM attr_index p WHERE p.resource_pk = r.pk AND p.attr = ")
                    .text(attr_key(&primary))
                    .sql(" AND p.ordinal = s.ordinal AND p.boolean = TRUE) THEN 0 ELSE 1 END, ");
            }
        }
        key.sql(format!("s.ordinal, s.{c} LIMIT 1)"));
    }
    key.sql(" END");
    Some(SortPlan::Expr { column, key })
}

impl Store {
    /// The paths among `paths` with index rows that may hold cut text.
    fn cut_paths(
        conn: &mut AnyConnection,
        tenant: TenantId,
        rtype: &str,
        paths: &BTreeSet<String>,
    ) -> Result<BTreeSet<String>> {
        if paths.is_empty() {
            return Ok(BTreeSet::new());
        }
        let mut f = Frag::new();
        f.sql("SELECT DISTINCT attr FROM attr_index WHERE tenant_id = ")
            .int(tenant.0)
            .sql(" AND resource_type = ")
            .text(rtype)
            .sql(" AND attr IN (");
        for (i, p) in paths.iter().enumerate() {
            if i > 0 {
                f.sql(", ");
            }
            f.text(p.as_str());
        }
        f.sql(") AND ").sql(maybe_cut_predicate());
        let rows: Vec<PathRow> = load(conn, &f, paths.len() == 1)?;
        Ok(rows.into_iter().map(|r| r.attr).collect())
    }

    /// The condition of one target: its node, made exact by re-checking in
    /// memory the rows the index cannot decide.
    fn target_condition(
        &self,
        conn: &mut AnyConnection,
        tenant: TenantId,
        t: &Target,
    ) -> Result<Node> {
        let rtype = t.rs.resource_type().id.as_str();
        let mut sensitive = BTreeSet::new();
        t.cond.sensitive_paths(&mut sensitive);
        let cut = Self::cut_paths(conn, tenant, rtype, &sensitive)?;
        let mut c = Compiler {
            backend: self.backend,
            rtype,
            location_prefix: &t.location_prefix,
            cut_paths: &cut,
            uncertain: false,
            tenant: tenant.0,
            key_override: None,
            subqueries: 0,
        };
        let sure = t.cond.build(&mut c, Bound::Sure)?;
        if !c.uncertain {
            return Ok(sure);
        }
        let maybe = t.cond.build(&mut c, Bound::Maybe)?;
        // The rows in doubt: maybe, but not surely.
        let mut f = Frag::new();
        f.sql("SELECT r.pk, r.document FROM resources r WHERE r.tenant_id = ")
            .int(tenant.0)
            .sql(" AND r.resource_type = ")
            .text(rtype)
            .sql(" AND ");
        let mut render = Renderer::new(tenant.0);
        render.resource(&maybe, true, &mut f);
        f.sql(" AND NOT ");
        render.resource(&sure, false, &mut f);
        f.sql(" LIMIT ")
            .int(i64::try_from(RECHECK_LIMIT + 1).unwrap_or(i64::MAX));
        let doubtful: Vec<DocRow> = load(conn, &f, false)?;
        if doubtful.len() > RECHECK_LIMIT {
            return Err(scim_core::Error::new(
                ErrorKind::TooMany,
                format!(
                    "the filter needs more than {RECHECK_LIMIT} resources re-checked against \
                     values longer than the index keeps; make it more selective"
                ),
            )
            .into());
        }
        let mut confirmed = Frag::new();
        let mut n = 0;
        for row in doubtful {
            let mut doc: Value = serde_json::from_str(&row.document).map_err(|e| {
                Error::internal(format!(
                    "stored document of resource {} is not JSON: {e}",
                    row.pk
                ))
            })?;
            if let Some(id) = doc.get("id").and_then(Value::as_str).map(str::to_owned)
                && doc.get("meta").is_some_and(Value::is_object)
            {
                doc["meta"]["location"] = Value::String(format!("{}{id}", t.location_prefix));
            }
            // Computed attributes are not in the stored document: add what
            // the condition reads, as a GET would serve it.
            if t.cond.reads("groups") {
                super::memberships::add_groups(conn, tenant, row.pk, &mut doc, &t.location_prefix)?;
            }
            if t.cond.reads("members") {
                super::memberships::add_member_displays(conn, tenant, row.pk, &mut doc)?;
            }
            if t.cond.matches(&doc) {
                confirmed.sql(if n == 0 { "" } else { ", " }).int(row.pk);
                n += 1;
            }
        }
        if n == 0 {
            return Ok(sure);
        }
        let mut raw = Frag::new();
        raw.sql("r.pk IN (").frag(&confirmed).sql(")");
        Ok(Node::Or(vec![
            sure,
            Node::Raw {
                sql: raw,
                score: Some(2),
            },
        ]))
    }
}

impl Store {
    /// `r.tenant_id = ? AND <the targets' conditions>`.
    fn compile_filter(&self, conn: &mut AnyConnection, query: &ResourceQuery) -> Result<Frag> {
        let tenant = query.tenant;
        let mut filter = Frag::new();
        filter.sql("r.tenant_id = ").int(tenant.0).sql(" AND ");
        let mut render = Renderer::new(tenant.0);
        let multi = query.targets.len() > 1;
        if multi {
            filter.sql("(");
        }
        if query.targets.is_empty() {
            filter.sql("1 = 0");
        }
        for (i, t) in query.targets.iter().enumerate() {
            let node = self.target_condition(conn, tenant, t)?;
            if i > 0 {
                filter.sql(" OR ");
            }
            filter
                .sql("(r.resource_type = ")
                .text(t.rs.resource_type().id.as_str())
                .sql(" AND ");
            render.resource(&node, true, &mut filter);
            filter.sql(")");
        }
        if multi {
            filter.sql(")");
        }
        Ok(filter)
    }

    /// The statement listing the first 100 matching resources in key
    /// order, for `EXPLAIN` in tests and diagnostics.
    pub fn query_statement(&self, query: &ResourceQuery) -> Result<Statement> {
        let mut conn = self.conn()?;
        let filter = self.compile_filter(&mut conn, query)?;
        let mut f = Frag::new();
        f.sql("SELECT r.pk FROM resources r WHERE ")
            .frag(&filter)
            .sql(" ORDER BY r.pk LIMIT 100");
        Ok(f.finish(self.backend))
    }
}

impl QueryStore for Store {
    fn query_resources(&self, query: &ResourceQuery, page: &PageRequest) -> Result<QueryPage> {
        let mut conn = self.conn()?;
        let tenant = query.tenant;
        let filter = self.compile_filter(&mut conn, query)?;
        let sort = if query.sorted {
            sort_plan(&query.targets)
        } else {
            None
        };
        // With sortBy naming nothing any target has, every resource lacks a
        // value: the order is the missing part alone, by pk.
        let missing_only = query.sorted && sort.is_none();
        let display = match query.order {
            SortOrder::Descending if query.sorted => Dir::Desc,
            _ => Dir::Asc,
        };
        let unfiltered = if query
            .targets
            .iter()
            .all(|t| matches!(t.cond, Cond::Const(true)))
        {
            query
                .targets
                .iter()
                .map(|t| t.rs.resource_type().id.clone())
                .collect()
        } else {
            Vec::new()
        };
        let cache = query.targets.len() == 1
            && query.targets.iter().all(|t| t.cond.leaves() <= 2)
            && filter.bind_count() <= 12;
        let mut exec = Exec {
            conn: &mut conn,
            cache,
            tenant: tenant.0,
            unfiltered,
            filter,
            sort,
            display,
        };
        let mut result = exec.page(page)?;
        if missing_only {
            for r in &mut result.resources {
                r.key.missing = false;
            }
        }
        Ok(result)
    }

    fn server_secret(&self, name: &str) -> Result<Vec<u8>> {
        if let Some(v) = self.cached_secret(name) {
            return Ok(v);
        }
        let mut conn = self.conn()?;
        let read = |conn: &mut AnyConnection| -> Result<Option<String>> {
            let mut f = Frag::new();
            f.sql("SELECT value FROM server_secrets WHERE name = ")
                .text(name);
            let rows: Vec<SecretRow> = load(conn, &f, true)?;
            Ok(rows.into_iter().next().map(|r| r.value))
        };
        let hex = match read(&mut conn)? {
            Some(v) => v,
            None => {
                let mut b = [0u8; 32];
                getrandom::fill(&mut b)
                    .map_err(|e| Error::internal(format!("no randomness available: {e}")))?;
                let value: String = b.iter().map(|x| format!("{x:02x}")).collect();
                let mut f = Frag::new();
                f.sql("INSERT INTO server_secrets (name, value, created) VALUES (")
                    .text(name)
                    .sql(", ")
                    .text(value)
                    .sql(", CURRENT_TIMESTAMP) ON CONFLICT (name) DO NOTHING");
                execute(&mut conn, &f)?;
                // Another replica may have won the race: read what is stored.
                read(&mut conn)?
                    .ok_or_else(|| Error::internal("the server secret was not stored"))?
            }
        };
        let bytes = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("zz"), 16))
            .collect::<std::result::Result<Vec<u8>, _>>()
            .map_err(|e| Error::internal(format!("server secret '{name}' is not hex: {e}")))?;
        self.cache_secret(name, &bytes);
        Ok(bytes)
    }
}
