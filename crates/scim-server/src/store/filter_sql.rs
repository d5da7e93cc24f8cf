//! Filter compilation: a typed SCIM filter (scim-core's [`Filter`]) becomes
//! one SQL condition on `resources r`, answered by the attribute index.
//!
//! Every value reaches the database as a bound parameter, attribute paths
//! included; the SQL text is built from fixed pieces only.
//!
//! The compiler works in two steps. [`Compiler::build`] turns the filter
//! into a [`Node`] tree whose leaves are "some index row of the resource at
//! path P satisfies C" ([`Node::Rows`]), "some element of the multi-valued
//! complex attribute P satisfies the inner tree" ([`Node::Elements`]) or a
//! condition on the resource row itself ([`Node::Raw`]: for `meta.location`,
//! which is derived from the `id` and never stored, and for `eq` on
//! `userName` and `externalId`, which the row holds in indexed columns). [`Renderer`] then
//! writes SQL, choosing for each conjunction one *driving* term, written
//! `r.pk IN (SELECT resource_pk FROM attr_index WHERE tenant, type, attr,
//! value...)` so that it is a range scan of a value index, and *probing*
//! the other terms with `EXISTS (... WHERE resource_pk = r.pk AND attr =
//! ...)`, a point lookup in `attr_index_element` per candidate. Without
//! this, SQLite materialises every `IN` subquery of an `AND` in full.
//!
//! ## Semantics (those of `scim_core::filter`'s evaluator)
//!
//! - any-value matching falls out of "some row"; `ne` is `NOT (eq)`; `pr`
//!   is a non-empty row (text `> ''`, element rows whose boolean says
//!   non-empty); `eq null` is `NOT (pr)`.
//! - value filters on multi-valued attributes iterate element rows and
//!   correlate the inner terms on `(resource_pk, ordinal)`; on a
//!   single-valued complex attribute (`name[...]`, `meta[...]`) the one
//!   element is the resource, so the inner filter applies to the resource
//!   once the element exists.
//! - `co` and `ew` use `instr`/`strpos` and `substr`/`right`, never `LIKE`:
//!   no pattern characters to escape, and SQLite's `LIKE` would ignore ASCII
//!   case. They scan the attribute's index range (a B-tree cannot seek a
//!   substring); `sw` is the range `>= prefix AND < prefix_upper_bound`.
//!
//! ## Exactness
//!
//! Some answers cannot come from the index alone: text cut at
//! [`MAX_INDEXED_TEXT_BYTES`](super::index::MAX_INDEXED_TEXT_BYTES) (for
//! `co`/`ew`, or an operand at least [`MAYBE_CUT_BYTES`] long), whole
//! numbers beyond 2^53 (the index keeps doubles), and dateTime operands
//! finer than a microsecond. For those leaves the compiler is asked twice,
//! for a condition that is surely true ([`Bound::Sure`]) and one that may
//! be true ([`Bound::Maybe`]); `not` swaps the two. The rows in between are
//! re-checked in Rust against their documents (see `store::query`). Text
//! leaves are only treated so when the attribute has index rows that may be
//! cut, which the small partial index `attr_index_long` answers.

use std::borrow::Cow;
use std::collections::BTreeSet;

use scim_core::filter::{CompareOp, Filter, parse_datetime};
use scim_core::schema::{AttrRef, AttributeType, COMMON_SCHEMA, Returned, Uniqueness};
use serde_json::Value;

use super::index::{MAYBE_CUT_BYTES, fold, prefix_upper_bound};
use crate::db::Backend;
use crate::error::Result;

mod computed;

/// A value bound to a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    /// BIGINT.
    Int(i64),
    /// TEXT.
    Text(String),
    /// DOUBLE PRECISION / REAL.
    Float(f64),
    /// BOOLEAN.
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Sql(Cow<'static, str>),
    Bind(Bind),
    /// The alias of the index row a condition is about, filled in when the
    /// condition is placed into a subquery.
    Alias,
}

/// A piece of SQL with its bound values, assembled without ever pasting a
/// value into the text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frag {
    parts: Vec<Part>,
}

/// A piece of a [`Frag`].
#[derive(Debug, Clone, Copy)]
pub enum Piece<'a> {
    /// SQL text.
    Sql(&'a str),
    /// A value, written as a placeholder.
    Bind(&'a Bind),
}

/// SQL text with placeholders for one backend, and the values to bind.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The text (`?` for SQLite, `$n` for PostgreSQL).
    pub sql: String,
    /// The values, in placeholder order.
    pub binds: Vec<Bind>,
}

impl Frag {
    /// An empty fragment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends SQL text.
    pub fn sql(&mut self, s: impl Into<Cow<'static, str>>) -> &mut Self {
        self.parts.push(Part::Sql(s.into()));
        self
    }

    /// Appends a placeholder for `b`.
    pub fn bind(&mut self, b: Bind) -> &mut Self {
        self.parts.push(Part::Bind(b));
        self
    }

    /// Appends a placeholder for a text value.
    pub fn text(&mut self, s: impl Into<String>) -> &mut Self {
        self.bind(Bind::Text(s.into()))
    }

    /// Appends a placeholder for an integer.
    pub fn int(&mut self, i: i64) -> &mut Self {
        self.bind(Bind::Int(i))
    }

    fn alias(&mut self) -> &mut Self {
        self.parts.push(Part::Alias);
        self
    }

    /// Appends another fragment.
    pub fn frag(&mut self, f: &Frag) -> &mut Self {
        self.parts.extend(f.parts.iter().cloned());
        self
    }

    /// Appends a row condition with its alias set to `alias`.
    fn frag_as(&mut self, f: &Frag, alias: &str) -> &mut Self {
        for p in &f.parts {
            self.parts.push(match p {
                Part::Alias => Part::Sql(Cow::Owned(alias.to_owned())),
                other => other.clone(),
            });
        }
        self
    }

    /// The pieces in order: text, or a value to bind (for running the
    /// fragment through diesel's AST).
    pub fn pieces(&self) -> impl Iterator<Item = Piece<'_>> {
        self.parts.iter().map(|p| match p {
            Part::Sql(s) => Piece::Sql(s),
            Part::Bind(b) => Piece::Bind(b),
            Part::Alias => Piece::Sql("r"),
        })
    }

    /// The number of bound values.
    pub fn bind_count(&self) -> usize {
        self.parts
            .iter()
            .filter(|p| matches!(p, Part::Bind(_)))
            .count()
    }

    /// The statement for `backend`.
    pub fn finish(&self, backend: Backend) -> Statement {
        let mut sql = String::new();
        let mut binds = Vec::new();
        for p in &self.parts {
            match p {
                Part::Sql(s) => sql.push_str(s),
                Part::Bind(b) => {
                    binds.push(b.clone());
                    match backend {
                        Backend::Sqlite => sql.push('?'),
                        Backend::Postgres => {
                            sql.push('$');
                            sql.push_str(&binds.len().to_string());
                        }
                    }
                }
                // Only row conditions carry aliases, and they are always
                // placed with `frag_as`.
                Part::Alias => sql.push('r'),
            }
        }
        Statement { sql, binds }
    }
}

/// Which side of an uncertain answer a condition errs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// True only where the filter surely holds.
    Sure,
    /// True wherever the filter may hold.
    Maybe,
}

impl Bound {
    fn flip(self) -> Self {
        match self {
            Bound::Sure => Bound::Maybe,
            Bound::Maybe => Bound::Sure,
        }
    }
}

/// A compiled filter, before it is written as SQL.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Always or never.
    Const(bool),
    /// Every term.
    And(Vec<Node>),
    /// Some term.
    Or(Vec<Node>),
    /// Not the term.
    Not(Box<Node>),
    /// Some index row of the resource at `attr` satisfies `cond`.
    Rows {
        /// The resource type id (`attr_index.resource_type`).
        rtype: String,
        /// The canonical attribute path (`attr_index.attr`).
        attr: String,
        /// The condition on the row (its alias left open).
        cond: Frag,
        /// How selective the row condition is as a driver (lower is better).
        score: u8,
    },
    /// Some element of the multi-valued complex attribute satisfies `inner`
    /// (whose `Rows` are about that element's sub-attributes).
    Elements {
        /// The resource type id.
        rtype: String,
        /// The complex attribute's path (its element rows).
        attr: String,
        /// The value filter.
        inner: Box<Node>,
    },
    /// A condition on `r` itself.
    Raw {
        /// The condition.
        sql: Frag,
        /// Its score as a driver, if it can drive (it uses an index on `r`).
        score: Option<u8>,
    },
}

/// The canonical index path of an attribute: what `index_rows` writes in
/// `attr_index.attr` (lowercase; extension attributes prefixed with their
/// schema URN and a colon).
pub fn attr_key(a: &AttrRef) -> String {
    let short = a.short_path().to_ascii_lowercase();
    if a.is_extension() {
        format!("{}:{}", a.schema_urn().to_ascii_lowercase(), short)
    } else {
        short
    }
}

/// Which index column holds an attribute's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// `text_folded`: strings compared ignoring case.
    Folded,
    /// `text_exact`: case-exact strings and binary values.
    Exact,
    /// `num`.
    Num,
    /// `time_us`.
    Time,
    /// `boolean`.
    Bool,
}

impl Column {
    /// The column of the attribute's values (`None` for complex ones).
    pub fn of(a: &AttrRef) -> Option<Self> {
        Some(match a.target().ty {
            AttributeType::String | AttributeType::Reference | AttributeType::Binary => {
                if a.case_exact() {
                    Column::Exact
                } else {
                    Column::Folded
                }
            }
            AttributeType::Boolean => Column::Bool,
            AttributeType::Integer | AttributeType::Decimal => Column::Num,
            AttributeType::DateTime => Column::Time,
            AttributeType::Complex => return None,
        })
    }

    /// The column name.
    pub fn name(self) -> &'static str {
        match self {
            Column::Folded => "text_folded",
            Column::Exact => "text_exact",
            Column::Num => "num",
            Column::Time => "time_us",
            Column::Bool => "boolean",
        }
    }
}

/// `(octet_length(a.text_folded) >= N OR octet_length(a.text_exact) >= N)`:
/// the index row may hold a cut value.
fn maybe_cut() -> Frag {
    let mut f = Frag::new();
    f.sql("(octet_length(")
        .alias()
        .sql(format!(
            ".text_folded) >= {MAYBE_CUT_BYTES} OR octet_length("
        ))
        .alias()
        .sql(format!(".text_exact) >= {MAYBE_CUT_BYTES})"));
    f
}

/// The predicate of the partial index `attr_index_long`, unqualified. A
/// query must repeat it exactly for SQLite to use that index.
pub fn maybe_cut_predicate() -> String {
    format!(
        "(octet_length(text_folded) >= {MAYBE_CUT_BYTES} OR octet_length(text_exact) >= {MAYBE_CUT_BYTES})"
    )
}

/// The text paths of a filter whose answer depends on whether the index
/// holds cut values (`co` and `ew`, and operands long enough to reach the
/// cut): ask the database about these before compiling.
pub fn paths_sensitive_to_cuts(filter: &Filter) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![filter];
    while let Some(f) = stack.pop() {
        match f {
            Filter::And(c) | Filter::Or(c) => stack.extend(c.iter()),
            Filter::Not(c) | Filter::ValuePath { filter: c, .. } => stack.push(c),
            Filter::Present(_) => {}
            Filter::Compare { attr, op, value } => {
                let text = matches!(Column::of(attr), Some(Column::Folded | Column::Exact));
                let long = value
                    .as_str()
                    .is_some_and(|s| s.len().max(fold(s).len()) >= MAYBE_CUT_BYTES);
                if text && (matches!(op, CompareOp::Co | CompareOp::Ew) || long) {
                    out.insert(attr_key(attr));
                }
            }
        }
    }
    out
}

/// Builds [`Node`]s for one resource type.
#[derive(Debug)]
pub struct Compiler<'a> {
    /// The database the SQL is for.
    pub backend: Backend,
    /// The resource type id.
    pub rtype: &'a str,
    /// `meta.location` of a resource is this prefix followed by its id.
    pub location_prefix: &'a str,
    /// Paths with index rows that may hold cut text (in this tenant and type).
    pub cut_paths: &'a BTreeSet<String>,
    /// Set when some leaf could not be decided by the index alone.
    pub uncertain: bool,
    /// The tenant (computed attributes are answered by subqueries that
    /// name it).
    pub tenant: i64,
    /// The index path to use instead of the attribute's own (when a
    /// computed sub-attribute is answered by another resource's rows).
    pub key_override: Option<&'static str>,
    /// Computed-attribute terms compiled so far (for unique aliases).
    pub subqueries: usize,
}

const TWO_POW_53: f64 = 9_007_199_254_740_992.0;

fn is_location(a: &AttrRef) -> bool {
    a.schema_urn() == COMMON_SCHEMA
        && a.attribute().name.eq_ignore_ascii_case("meta")
        && a.sub_attribute()
            .is_some_and(|s| s.name.eq_ignore_ascii_case("location"))
}

impl Compiler<'_> {
    /// The node for `filter` on the side `bound`.
    pub fn build(&mut self, filter: &Filter, bound: Bound) -> Result<Node> {
        if let Some(node) = self.computed_term(filter)? {
            return Ok(node);
        }
        Ok(match filter {
            Filter::And(c) => Node::And(
                c.iter()
                    .map(|f| self.build(f, bound))
                    .collect::<Result<_>>()?,
            ),
            Filter::Or(c) => Node::Or(
                c.iter()
                    .map(|f| self.build(f, bound))
                    .collect::<Result<_>>()?,
            ),
            Filter::Not(c) => Node::Not(Box::new(self.build(c, bound.flip())?)),
            Filter::Present(a) => {
                check_filterable(a)?;
                self.present(a)
            }
            Filter::Compare { attr, op, value } => {
                check_filterable(attr)?;
                self.compare(attr, *op, value, bound)
            }
            Filter::ValuePath { attr, filter } => {
                check_filterable(attr)?;
                let inner = self.build(filter, bound)?;
                if attr.attribute().multi_valued {
                    Node::Elements {
                        rtype: self.rtype.to_owned(),
                        attr: attr_key(attr),
                        inner: Box::new(inner),
                    }
                } else {
                    // The one element is the resource's: it must exist, and
                    // the inner terms are about the resource.
                    let mut cond = Frag::new();
                    cond.sql("1 = 1");
                    Node::And(vec![self.rows(attr, cond, 7), inner])
                }
            }
        })
    }

    /// The index path of `a`'s rows.
    fn key(&self, a: &AttrRef) -> String {
        match self.key_override {
            Some(k) => k.to_owned(),
            None => attr_key(a),
        }
    }

    fn rows(&self, a: &AttrRef, cond: Frag, score: u8) -> Node {
        Node::Rows {
            rtype: self.rtype.to_owned(),
            attr: self.key(a),
            cond,
            score,
        }
    }

    fn present(&self, a: &AttrRef) -> Node {
        if is_location(a) {
            return Node::Const(true);
        }
        let mut cond = Frag::new();
        match Column::of(a) {
            None => cond.alias().sql(".boolean = TRUE"),
            Some(Column::Folded | Column::Exact) => cond.alias().sql(".text_folded > ''"),
            Some(c) => cond.alias().sql(format!(".{} IS NOT NULL", c.name())),
        };
        self.rows(a, cond, 7)
    }

    fn compare(&mut self, a: &AttrRef, op: CompareOp, value: &Value, bound: Bound) -> Node {
        if value.is_null() {
            return match op {
                CompareOp::Eq => Node::Not(Box::new(self.present(a))),
                CompareOp::Ne => self.present(a),
                _ => Node::Const(false),
            };
        }
        if op == CompareOp::Ne {
            return Node::Not(Box::new(self.compare(
                a,
                CompareOp::Eq,
                value,
                bound.flip(),
            )));
        }
        if is_location(a) {
            return self.location(a, op, value);
        }
        let Some(col) = Column::of(a) else {
            return Node::Const(false);
        };
        match col {
            Column::Folded | Column::Exact => {
                let Some(s) = value.as_str() else {
                    return Node::Const(false);
                };
                let x = if col == Column::Exact {
                    s.to_owned()
                } else {
                    fold(s)
                };
                if op == CompareOp::Eq
                    && let Some(node) = self.row_column(a, &x)
                {
                    return node;
                }
                let (base, mut score) = self.text_condition(col, op, &x);
                if a.target().canonical_strings().is_some() {
                    // Few distinct values (emails.type: work, home, other):
                    // a poor place to start from.
                    score = score.max(6);
                }
                let key = self.key(a);
                let sensitive =
                    matches!(op, CompareOp::Co | CompareOp::Ew) || x.len() >= MAYBE_CUT_BYTES;
                if sensitive && self.cut_paths.contains(&key) {
                    self.uncertain = true;
                    self.rows(a, widen(&base, bound, &maybe_cut()), score)
                } else {
                    self.rows(a, base, score)
                }
            }
            Column::Bool => {
                let Some(b) = value.as_bool() else {
                    return Node::Const(false);
                };
                if op != CompareOp::Eq {
                    return Node::Const(false);
                }
                let mut cond = Frag::new();
                cond.alias().sql(".boolean = ").bind(Bind::Bool(b));
                self.rows(a, cond, 8)
            }
            Column::Num => {
                let Some(f) = value.as_f64() else {
                    return Node::Const(false);
                };
                let whole = value.as_i64().is_some() || value.as_u64().is_some();
                self.ordered(
                    a,
                    col,
                    op,
                    Bind::Float(f),
                    whole && f.abs() >= TWO_POW_53,
                    bound,
                )
            }
            Column::Time => {
                let Some(t) = value.as_str().and_then(parse_datetime) else {
                    return Node::Const(false);
                };
                let finer = t.timestamp_subsec_nanos() % 1000 != 0;
                self.ordered(a, col, op, Bind::Int(t.timestamp_micros()), finer, bound)
            }
        }
    }

    /// A comparison on a number or instant column; `uncertain` when rows
    /// equal to the operand in the index may differ from it in the document.
    fn ordered(
        &mut self,
        a: &AttrRef,
        col: Column,
        op: CompareOp,
        x: Bind,
        uncertain: bool,
        bound: Bound,
    ) -> Node {
        let Some(sym) = ordering_symbol(op) else {
            return Node::Const(false);
        };
        let mut base = Frag::new();
        base.alias()
            .sql(format!(".{} {sym} ", col.name()))
            .bind(x.clone());
        let score = if op == CompareOp::Eq { 1 } else { 4 };
        if !uncertain {
            return self.rows(a, base, score);
        }
        self.uncertain = true;
        let mut equal = Frag::new();
        equal.alias().sql(format!(".{} = ", col.name())).bind(x);
        self.rows(a, widen(&base, bound, &equal), score)
    }

    /// The condition on a text column for `op x` (`x` already folded when
    /// the column is folded), and its score as a driver.
    fn text_condition(&self, col: Column, op: CompareOp, x: &str) -> (Frag, u8) {
        let c = col.name();
        let mut f = Frag::new();
        if col == Column::Exact {
            // Lets SQLite use the partial index attr_index_exact.
            f.alias().sql(".text_exact IS NOT NULL AND ");
        }
        let score = match op {
            CompareOp::Eq => {
                f.alias().sql(format!(".{c} = ")).text(x);
                1
            }
            CompareOp::Sw if x.is_empty() => {
                f.alias().sql(format!(".{c} IS NOT NULL"));
                7
            }
            CompareOp::Sw => {
                f.alias().sql(format!(".{c} >= ")).text(x);
                if let Some(upper) = prefix_upper_bound(x) {
                    f.sql(" AND ").alias().sql(format!(".{c} < ")).text(upper);
                }
                3
            }
            CompareOp::Co | CompareOp::Ew if x.is_empty() => {
                f.alias().sql(format!(".{c} IS NOT NULL"));
                7
            }
            CompareOp::Co => {
                match self.backend {
                    Backend::Sqlite => f.sql("instr(").alias().sql(format!(".{c}, ")),
                    Backend::Postgres => f.sql("strpos(").alias().sql(format!(".{c}, ")),
                };
                f.text(x).sql(") > 0");
                9
            }
            CompareOp::Ew => {
                let n = i64::try_from(x.chars().count()).unwrap_or(i64::MAX);
                match self.backend {
                    Backend::Sqlite => f
                        .sql("substr(")
                        .alias()
                        .sql(format!(".{c}, "))
                        .int(-n)
                        .sql(") = "),
                    Backend::Postgres => f
                        .sql("right(")
                        .alias()
                        .sql(format!(".{c}, "))
                        .bind(Bind::Int(n))
                        .sql("::int) = "),
                };
                f.text(x);
                9
            }
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => {
                let sym = ordering_symbol(op).unwrap_or("=");
                f.alias().sql(format!(".{c} {sym} ")).text(x);
                4
            }
            CompareOp::Ne => {
                // Handled as NOT (eq) by the caller.
                f.sql("1 = 0");
                0
            }
        };
        (f, score)
    }

    /// `eq` on an attribute the resource row also holds whole, in an
    /// indexed column: `userName` where it is unique (`user_name_folded`,
    /// folded unless the attribute is case-exact, as the filter operand
    /// is) and a case-exact `externalId` (`external_id`). These are the
    /// lookups identity providers make before every create; the unique
    /// index answers them in one probe, with no re-check for long values
    /// (the column is not cut), and PostgreSQL's planner estimates one row
    /// whatever the value, so it keeps one plan for the cached statement
    /// instead of planning it again at each call.
    fn row_column(&self, a: &AttrRef, x: &str) -> Option<Node> {
        if self.key_override.is_some() || a.has_sub() || a.is_extension() {
            return None;
        }
        let attr = a.attribute();
        let column = if a.schema_urn() == COMMON_SCHEMA {
            (attr.name.eq_ignore_ascii_case("externalId") && a.case_exact())
                .then_some("external_id")?
        } else if attr.name.eq_ignore_ascii_case("userName") && attr.uniqueness != Uniqueness::None
        {
            "user_name_folded"
        } else {
            return None;
        };
        // IS NOT NULL keeps `not (userName eq "x")` true for a resource
        // without the attribute, as the evaluator has it.
        let mut f = Frag::new();
        f.alias()
            .sql(format!(".{column} IS NOT NULL AND "))
            .alias()
            .sql(format!(".{column} = "))
            .text(x);
        Some(Node::Raw {
            sql: f,
            score: Some(0),
        })
    }

    /// `meta.location`, which is `location_prefix` followed by the id.
    fn location(&self, a: &AttrRef, op: CompareOp, value: &Value) -> Node {
        let Some(s) = value.as_str() else {
            return Node::Const(false);
        };
        let exact = a.case_exact();
        let norm = |t: &str| if exact { t.to_owned() } else { fold(t) };
        let (x, prefix) = (norm(s), norm(self.location_prefix));
        let mut id = Frag::new();
        if exact {
            id.alias().sql(".id");
        } else {
            id.sql("lower(").alias().sql(".id)");
        }
        let mut f = Frag::new();
        match op {
            CompareOp::Eq => match x.strip_prefix(&prefix) {
                Some(rest) => {
                    f.frag(&id).sql(" = ").text(rest);
                    return Node::Raw {
                        sql: f,
                        score: Some(0),
                    };
                }
                None => return Node::Const(false),
            },
            CompareOp::Sw if prefix.starts_with(&x) => return Node::Const(true),
            CompareOp::Sw => match x.strip_prefix(&prefix) {
                Some(rest) => {
                    f.frag(&id).sql(" >= ").text(rest);
                    if let Some(upper) = prefix_upper_bound(rest) {
                        f.sql(" AND ").frag(&id).sql(" < ").text(upper);
                    }
                    return Node::Raw {
                        sql: f,
                        score: Some(3),
                    };
                }
                None => return Node::Const(false),
            },
            _ => {}
        }
        let mut loc = Frag::new();
        loc.sql("(").text(prefix).sql(" || ").frag(&id).sql(")");
        if self.backend == Backend::Postgres {
            loc.sql(" COLLATE \"C\"");
        }
        match op {
            CompareOp::Co => {
                let func = match self.backend {
                    Backend::Sqlite => "instr(",
                    Backend::Postgres => "strpos(",
                };
                f.sql(func).frag(&loc).sql(", ").text(x).sql(") > 0");
            }
            CompareOp::Ew => {
                let n = i64::try_from(x.chars().count()).unwrap_or(i64::MAX);
                match self.backend {
                    Backend::Sqlite => f.sql("substr(").frag(&loc).sql(", ").int(-n),
                    Backend::Postgres => f.sql("right(").frag(&loc).sql(", ").int(n).sql("::int"),
                };
                f.sql(") = ").text(x);
            }
            _ => {
                let Some(sym) = ordering_symbol(op) else {
                    return Node::Const(false);
                };
                f.frag(&loc).sql(format!(" {sym} ")).text(x);
            }
        }
        Node::Raw {
            sql: f,
            score: None,
        }
    }
}

/// Refuses filters on attributes that are never returned (`password`):
/// answering them would make the server an oracle for their values.
fn check_filterable(a: &AttrRef) -> Result<()> {
    if a.attribute().returned == Returned::Never || a.target().returned == Returned::Never {
        return Err(scim_core::Error::invalid_filter(format!(
            "'{}' cannot be used in a filter",
            a.path()
        ))
        .into());
    }
    Ok(())
}

fn ordering_symbol(op: CompareOp) -> Option<&'static str> {
    Some(match op {
        CompareOp::Eq => "=",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        _ => return None,
    })
}

/// An uncertain row condition on the side `bound`: rows where `doubt` holds
/// are those the index cannot decide; `Sure` excludes them, `Maybe` takes
/// them in.
fn widen(base: &Frag, bound: Bound, doubt: &Frag) -> Frag {
    let mut f = Frag::new();
    match bound {
        Bound::Sure => f.sql("(").frag(base).sql(") AND NOT ").frag(doubt),
        Bound::Maybe => f.sql("((").frag(base).sql(") OR ").frag(doubt).sql(")"),
    };
    f
}

/// How selective a node is as a driver, if it can drive at all.
fn score(node: &Node) -> Option<u8> {
    match node {
        Node::Const(false) => Some(0),
        Node::Const(true) | Node::Not(_) => None,
        Node::Rows { score, .. } => Some(*score),
        Node::Raw { score, .. } => *score,
        Node::Elements { inner, .. } => Some(element_driver(inner).map_or(8, |(d, _)| d.1)),
        Node::And(c) => c.iter().filter_map(score).min(),
        Node::Or(c) => c
            .iter()
            .map(score)
            .collect::<Option<Vec<u8>>>()
            .map(|s| s.into_iter().max().unwrap_or(0).saturating_add(1)),
    }
}

type Driver<'n> = ((&'n str, u8, &'n Frag), Vec<&'n Node>);

/// The positive row term that can drive a value filter, with the other terms.
fn element_driver(inner: &Node) -> Option<Driver<'_>> {
    match inner {
        Node::Rows {
            attr, cond, score, ..
        } => Some(((attr.as_str(), *score, cond), Vec::new())),
        Node::And(c) => {
            let (i, attr, score, cond) = c
                .iter()
                .enumerate()
                .filter_map(|(i, n)| match n {
                    Node::Rows {
                        attr, cond, score, ..
                    } => Some((i, attr.as_str(), *score, cond)),
                    _ => None,
                })
                .min_by_key(|(_, _, s, _)| *s)?;
            let rest = c
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, n)| n)
                .collect();
            Some(((attr, score, cond), rest))
        }
        _ => None,
    }
}

/// Joins terms with `sep` as a balanced tree of parentheses: a flat chain
/// of 500 terms would nest 500 deep in SQLite's parser, which refuses
/// expressions deeper than 1000.
fn balanced(parts: &[Frag], sep: &'static str, out: &mut Frag) {
    out.sql("(");
    if parts.len() <= 4 {
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                out.sql(sep);
            }
            out.frag(p);
        }
    } else {
        let (left, right) = parts.split_at(parts.len() / 2);
        balanced(left, sep, out);
        out.sql(sep);
        balanced(right, sep, out);
    }
    out.sql(")");
}

/// Writes [`Node`]s as SQL conditions on `resources r`.
#[derive(Debug)]
pub struct Renderer {
    tenant: i64,
    aliases: usize,
    /// The alias of the resource row conditions are about (`r`).
    outer: String,
    /// The prefix of index-row aliases.
    prefix: String,
}

impl Renderer {
    /// A renderer for the tenant's rows.
    pub fn new(tenant: i64) -> Self {
        Self::about(tenant, "r", "x")
    }

    /// A renderer of conditions on the resource row `outer`, naming its
    /// index rows `<prefix>1`, `<prefix>2`...
    pub fn about(tenant: i64, outer: &str, prefix: &str) -> Self {
        Self {
            tenant,
            aliases: 0,
            outer: outer.to_owned(),
            prefix: prefix.to_owned(),
        }
    }

    fn alias(&mut self) -> String {
        self.aliases += 1;
        format!("{}{}", self.prefix, self.aliases)
    }

    /// Writes `node` as a condition on `r`; `drive` asks for a form the
    /// database can start from (a value-index range) rather than probe.
    pub fn resource(&mut self, node: &Node, drive: bool, out: &mut Frag) {
        match node {
            Node::Const(b) => {
                out.sql(if *b { "1 = 1" } else { "1 = 0" });
            }
            Node::And(c) => {
                let driver = if drive {
                    c.iter()
                        .enumerate()
                        .filter_map(|(i, n)| score(n).map(|s| (i, s)))
                        .min_by_key(|(_, s)| *s)
                        .map(|(i, _)| i)
                } else {
                    None
                };
                let parts: Vec<Frag> = c
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        let mut f = Frag::new();
                        self.resource(n, driver == Some(i), &mut f);
                        f
                    })
                    .collect();
                balanced(&parts, " AND ", out);
            }
            Node::Or(c) => {
                let drive_all = drive && c.iter().all(|n| score(n).is_some());
                let parts: Vec<Frag> = c
                    .iter()
                    .map(|n| {
                        let mut f = Frag::new();
                        self.resource(n, drive_all, &mut f);
                        f
                    })
                    .collect();
                balanced(&parts, " OR ", out);
            }
            Node::Not(c) => {
                out.sql("NOT (");
                self.resource(c, false, out);
                out.sql(")");
            }
            Node::Raw { sql, .. } => {
                let outer = self.outer.clone();
                out.sql("(").frag_as(sql, &outer).sql(")");
            }
            Node::Rows {
                rtype, attr, cond, ..
            } => {
                let a = self.alias();
                if drive {
                    self.driving_rows(&a, rtype, attr, out);
                } else {
                    out.sql(format!(
                        "EXISTS (SELECT 1 FROM attr_index {a} WHERE {a}.resource_pk = {}.pk AND {a}.attr = ",
                        self.outer
                    ))
                    .text(attr.as_str());
                }
                out.sql(" AND (").frag_as(cond, &a).sql("))");
            }
            Node::Elements { rtype, attr, inner } => {
                let a = self.alias();
                if !drive {
                    out.sql(format!(
                        "EXISTS (SELECT 1 FROM attr_index {a} WHERE {a}.resource_pk = {}.pk AND {a}.attr = ",
                        self.outer
                    ))
                    .text(attr.as_str())
                    .sql(" AND ");
                    self.element(inner, &a, out);
                    out.sql(")");
                    return;
                }
                match element_driver(inner) {
                    Some(((dattr, _, cond), rest)) => {
                        self.driving_rows(&a, rtype, dattr, out);
                        out.sql(" AND (").frag_as(cond, &a).sql(")");
                        for n in rest {
                            out.sql(" AND ");
                            self.element(n, &a, out);
                        }
                    }
                    None => {
                        self.driving_rows(&a, rtype, attr, out);
                        out.sql(" AND ");
                        self.element(inner, &a, out);
                    }
                }
                out.sql(")");
            }
        }
    }

    /// `r.pk IN (SELECT a.resource_pk FROM attr_index a WHERE <tenant, type,
    /// attr>` (the caller adds the value condition and the closing paren).
    fn driving_rows(&mut self, a: &str, rtype: &str, attr: &str, out: &mut Frag) {
        out.sql(format!(
            "{}.pk IN (SELECT {a}.resource_pk FROM attr_index {a} WHERE {a}.tenant_id = ",
            self.outer
        ))
        .int(self.tenant)
        .sql(format!(" AND {a}.resource_type = "))
        .text(rtype)
        .sql(format!(" AND {a}.attr = "))
        .text(attr);
    }

    /// Writes `node` as a condition on the element whose row has alias `el`.
    fn element(&mut self, node: &Node, el: &str, out: &mut Frag) {
        match node {
            Node::Const(b) => {
                out.sql(if *b { "1 = 1" } else { "1 = 0" });
            }
            Node::And(c) | Node::Or(c) => {
                let sep = if matches!(node, Node::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let parts: Vec<Frag> = c
                    .iter()
                    .map(|n| {
                        let mut f = Frag::new();
                        self.element(n, el, &mut f);
                        f
                    })
                    .collect();
                balanced(&parts, sep, out);
            }
            Node::Not(c) => {
                out.sql("NOT (");
                self.element(c, el, out);
                out.sql(")");
            }
            Node::Rows { attr, cond, .. } => {
                let a = self.alias();
                out.sql(format!(
                    "EXISTS (SELECT 1 FROM attr_index {a} WHERE {a}.resource_pk = {el}.resource_pk AND {a}.attr = "
                ))
                .text(attr.as_str())
                .sql(format!(" AND {a}.ordinal = {el}.ordinal AND ("))
                .frag_as(cond, &a)
                .sql("))");
            }
            // Value filters do not nest, and element terms are never raw.
            Node::Elements { .. } | Node::Raw { .. } => {
                out.sql("1 = 0");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_core::schema::SchemaRegistry;

    fn compile(filter: &str, backend: Backend) -> Statement {
        let users = SchemaRegistry::core().resource_schema("User").unwrap();
        let f = Filter::parse(filter, &users).unwrap();
        let cut = BTreeSet::new();
        let mut c = Compiler {
            backend,
            rtype: "User",
            location_prefix: "https://h/scim/v2/Users/",
            cut_paths: &cut,
            uncertain: false,
            tenant: 7,
            key_override: None,
            subqueries: 0,
        };
        let node = c.build(&f, Bound::Sure).unwrap();
        assert!(!c.uncertain);
        let mut out = Frag::new();
        Renderer::new(7).resource(&node, true, &mut out);
        out.finish(backend)
    }

    #[test]
    fn values_are_bound_never_pasted() {
        let s = compile(
            r#"userName eq "x'); DROP TABLE resources;--""#,
            Backend::Sqlite,
        );
        assert!(!s.sql.contains("DROP"), "{}", s.sql);
        assert!(
            s.binds
                .contains(&Bind::Text("x'); drop table resources;--".into()))
        );
        assert_eq!(
            s.sql,
            "(r.user_name_folded IS NOT NULL AND r.user_name_folded = ?)"
        );
        let s = compile(
            r#"title eq "x'); DROP TABLE resources;--""#,
            Backend::Sqlite,
        );
        assert!(!s.sql.contains("DROP"), "{}", s.sql);
        assert_eq!(
            s.sql,
            "r.pk IN (SELECT x1.resource_pk FROM attr_index x1 WHERE x1.tenant_id = ? \
             AND x1.resource_type = ? AND x1.attr = ? AND (x1.text_folded = ?))"
        );
        let s = compile(r#"externalId eq "Ext-1""#, Backend::Sqlite);
        assert_eq!(s.sql, "(r.external_id IS NOT NULL AND r.external_id = ?)");
        assert_eq!(s.binds, [Bind::Text("Ext-1".into())]);
        // Other operators on the same attributes still read the index.
        let s = compile(r#"userName sw "bj""#, Backend::Sqlite);
        assert!(s.sql.contains("x1.text_folded >= ?"), "{}", s.sql);
        let p = compile(r#"title eq "a" and nickName pr"#, Backend::Postgres);
        assert!(p.sql.contains("$4") && !p.sql.contains('?'), "{}", p.sql);
    }

    #[test]
    fn conjunctions_drive_from_the_most_selective_term() {
        let s = compile(r#"active eq true and title eq "x""#, Backend::Sqlite);
        // title drives (IN), active is probed (EXISTS).
        assert!(s.sql.starts_with("(EXISTS"), "{}", s.sql);
        assert!(s.sql.contains("AND r.pk IN"), "{}", s.sql);
        let s = compile(r#"active eq true and userName eq "x""#, Backend::Sqlite);
        // userName is read from the row; active is probed.
        assert!(s.sql.starts_with("(EXISTS"), "{}", s.sql);
        assert!(
            s.sql.contains("AND (r.user_name_folded IS NOT NULL"),
            "{}",
            s.sql
        );
        let s = compile(
            r#"emails[type eq "work" and value sw "b"]"#,
            Backend::Sqlite,
        );
        assert!(s.sql.contains("x1.text_folded >= ?"), "{}", s.sql);
        assert!(s.sql.contains("x2.ordinal = x1.ordinal"), "{}", s.sql);
    }

    #[test]
    fn location_is_derived_from_the_id() {
        let s = compile(
            r#"meta.location eq "https://h/scim/v2/Users/abc""#,
            Backend::Sqlite,
        );
        assert_eq!(s.sql, "(r.id = ?)");
        assert_eq!(s.binds, [Bind::Text("abc".into())]);
        assert_eq!(
            compile(
                r#"meta.location eq "https://elsewhere/abc""#,
                Backend::Sqlite
            )
            .sql,
            "1 = 0"
        );
    }

    #[test]
    fn cut_predicate_matches_the_migration() {
        let migration = include_str!("../../migrations/sqlite/2026-11-02-000002_cursors/up.sql");
        let predicate = maybe_cut_predicate();
        let inner = predicate.trim_start_matches('(').trim_end_matches(')');
        assert!(migration.contains(inner), "{inner}");
        let migration = include_str!("../../migrations/postgres/2026-11-02-000002_cursors/up.sql");
        assert!(migration.contains(inner), "{inner}");
    }
}
