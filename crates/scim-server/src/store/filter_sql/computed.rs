//! Filters on values the server computes from the `memberships` table
//! rather than stores: `User.groups` (direct and indirect) and Group
//! `members.display` / `members.$ref`.
//!
//! ## User.groups
//!
//! An element of a user's `groups` is a group `g` above the user, with
//! `value` = `g.id`, `display` = `g`'s displayName, `$ref` = `g`'s location
//! and `type` = `direct` when the user is a member of `g` itself, else
//! `indirect`. The two values of `type` are substituted into the value
//! filter in Rust, which leaves two conditions on the group alone: one for
//! direct membership, one for indirect. Each is compiled like a filter on
//! Groups (`value` reads the group's `id` index rows, `display` its
//! `displayName` rows) and driven from the index, then:
//!
//! - direct: `r.pk IN (SELECT member_pk FROM memberships JOIN the groups)`;
//! - indirect: a `WITH RECURSIVE` walk down from the matching groups,
//!   keeping the (group, member) pairs with no direct membership row.
//!   `UNION` keeps each pair once, which ends the walk on cycles; the walk
//!   never visits more than the members below the matching groups.
//!
//! ## Group members
//!
//! A `members` term that names `display` or `$ref` iterates the group's
//! membership rows (joined to the member `m`): `value` reads `m`'s `id`
//! rows, `type` the row's `member_type` (substituted in Rust), `$ref` `m`'s
//! location under its endpoint, and `display` the display stored with the
//! member in the group's document when there is one, else `m`'s
//! displayName, else its userName (as `api::render` serves it). Terms on
//! `members.value` / `members.type` alone keep the index path of stored
//! attributes.
//!
//! Computed terms are never "uncertain" (see the parent module): their text
//! is read from index rows as if it were never cut.

use super::*;

/// Which computed attribute a term is about.
fn is_user_groups(c: &Compiler<'_>, a: &AttrRef) -> bool {
    c.rtype == "User"
        && c.key_override.is_none()
        && a.schema_urn()
            .eq_ignore_ascii_case(scim_core::schema::USER_SCHEMA)
        && a.attribute().name.eq_ignore_ascii_case("groups")
}

fn is_group_members(c: &Compiler<'_>, a: &AttrRef) -> bool {
    c.rtype == "Group"
        && c.key_override.is_none()
        && a.schema_urn()
            .eq_ignore_ascii_case(scim_core::schema::GROUP_SCHEMA)
        && a.attribute().name.eq_ignore_ascii_case("members")
}

fn sub_name(a: &AttrRef) -> Option<String> {
    a.sub_attribute().map(|s| s.name.to_ascii_lowercase())
}

/// Whether a filter over `members` names `display` or `$ref`.
fn names_computed_member_value(f: &Filter) -> bool {
    match f {
        Filter::And(c) | Filter::Or(c) => c.iter().any(names_computed_member_value),
        Filter::Not(c) | Filter::ValuePath { filter: c, .. } => names_computed_member_value(c),
        Filter::Present(a) | Filter::Compare { attr: a, .. } => {
            matches!(sub_name(a).as_deref(), Some("display" | "$ref"))
        }
    }
}

/// Whether a leaf on a text attribute holds for the value `actual`
/// (compared ignoring case, as `type` is not caseExact).
fn leaf_holds_for(f: &Filter, actual: &str) -> bool {
    match f {
        Filter::Present(_) => true,
        Filter::Compare { op, value, .. } => {
            let Some(x) = value.as_str() else {
                // null: `ne null` holds for a present value, `eq null` not.
                return *op == CompareOp::Ne;
            };
            let (a, x) = (fold(actual), fold(x));
            match op {
                CompareOp::Eq => a == x,
                CompareOp::Ne => a != x,
                CompareOp::Co => a.contains(&x),
                CompareOp::Sw => a.starts_with(&x),
                CompareOp::Ew => a.ends_with(&x),
                CompareOp::Gt => a > x,
                CompareOp::Ge => a >= x,
                CompareOp::Lt => a < x,
                CompareOp::Le => a <= x,
            }
        }
        _ => false,
    }
}

/// `base/Users/` from `base/Groups/` and back: the location prefix of the
/// sibling endpoint.
fn sibling_prefix(prefix: &str, endpoint: &str) -> String {
    let trimmed = prefix.trim_end_matches('/');
    let base = trimmed.rsplit_once('/').map_or("", |(b, _)| b);
    format!("{base}/{endpoint}/")
}

/// `node` with its constant terms folded away.
fn simplify(node: Node) -> Node {
    match node {
        Node::And(c) => {
            let mut kept = Vec::new();
            for x in c.into_iter().map(simplify) {
                match x {
                    Node::Const(true) => {}
                    Node::Const(false) => return Node::Const(false),
                    other => kept.push(other),
                }
            }
            match kept.len() {
                0 => Node::Const(true),
                1 => kept.pop().unwrap_or(Node::Const(true)),
                _ => Node::And(kept),
            }
        }
        Node::Or(c) => {
            let mut kept = Vec::new();
            for x in c.into_iter().map(simplify) {
                match x {
                    Node::Const(false) => {}
                    Node::Const(true) => return Node::Const(true),
                    other => kept.push(other),
                }
            }
            match kept.len() {
                0 => Node::Const(false),
                1 => kept.pop().unwrap_or(Node::Const(false)),
                _ => Node::Or(kept),
            }
        }
        Node::Not(c) => match simplify(*c) {
            Node::Const(b) => Node::Const(!b),
            other => Node::Not(Box::new(other)),
        },
        other => other,
    }
}

fn constant(b: bool) -> Frag {
    let mut f = Frag::new();
    f.sql(if b { "1 = 1" } else { "1 = 0" });
    f
}

fn join(parts: Vec<Frag>, sep: &'static str) -> Frag {
    let mut f = Frag::new();
    balanced(&parts, sep, &mut f);
    f
}

impl Compiler<'_> {
    /// The node of a term on a computed attribute; `None` for every other
    /// filter (compiled from the stored attributes' index rows).
    pub(super) fn computed_term(&mut self, filter: &Filter) -> Result<Option<Node>> {
        let (a, inner) = match filter {
            Filter::Present(a) | Filter::Compare { attr: a, .. } => (a, filter),
            Filter::ValuePath { attr, filter } => (attr, &**filter),
            _ => return Ok(None),
        };
        let users = is_user_groups(self, a);
        let groups = is_group_members(self, a) && names_computed_member_value(inner);
        if !users && !groups {
            return Ok(None);
        }
        check_filterable(a)?;
        // A plain path follows the stored attributes' rules: `ne` is
        // `not (eq)`, `eq null` is `not (pr)`, `ne null` is `pr`.
        if let Filter::Compare { attr, op, value } = filter {
            let negated = match (op, value.is_null()) {
                (CompareOp::Ne, false) => Some(Filter::Compare {
                    attr: attr.clone(),
                    op: CompareOp::Eq,
                    value: value.clone(),
                }),
                (CompareOp::Eq, true) => Some(Filter::Present(attr.clone())),
                _ => None,
            };
            if let Some(positive) = negated {
                let node = self.computed_term(&positive)?.unwrap_or(Node::Const(false));
                return Ok(Some(Node::Not(Box::new(node))));
            }
            if *op == CompareOp::Ne {
                return self.computed_term(&Filter::Present(attr.clone()));
            }
        }
        self.subqueries += 1;
        Ok(Some(if users {
            self.user_groups(inner)?
        } else {
            self.group_members(inner)?
        }))
    }

    /// A compiler for the rows of another resource type, answering every
    /// leaf from the index alone.
    fn nested<'b>(
        &self,
        rtype: &'b str,
        prefix: &'b str,
        cut: &'b BTreeSet<String>,
    ) -> Compiler<'b> {
        Compiler {
            backend: self.backend,
            rtype,
            location_prefix: prefix,
            cut_paths: cut,
            uncertain: false,
            tenant: self.tenant,
            key_override: None,
            subqueries: 0,
        }
    }

    /// The condition on a group `g` that an element of `groups` with this
    /// `type` (`direct` or not) satisfies `f`.
    fn group_side(&mut self, f: &Filter, direct: bool) -> Result<Node> {
        Ok(match f {
            Filter::And(c) => Node::And(
                c.iter()
                    .map(|x| self.group_side(x, direct))
                    .collect::<Result<_>>()?,
            ),
            Filter::Or(c) => Node::Or(
                c.iter()
                    .map(|x| self.group_side(x, direct))
                    .collect::<Result<_>>()?,
            ),
            Filter::Not(c) => Node::Not(Box::new(self.group_side(c, direct)?)),
            Filter::ValuePath { .. } => Node::Const(false),
            Filter::Present(a) | Filter::Compare { attr: a, .. } => match sub_name(a).as_deref() {
                Some("value") => self.with_key("id", f)?,
                Some("display") => self.with_key("displayname", f)?,
                Some("$ref") => match f {
                    Filter::Compare { op, value, .. } if !value.is_null() => {
                        if *op == CompareOp::Ne {
                            Node::Not(Box::new(self.location(a, CompareOp::Eq, value)))
                        } else {
                            self.location(a, *op, value)
                        }
                    }
                    other => Node::Const(leaf_holds_for(other, "x")),
                },
                Some("type") => Node::Const(leaf_holds_for(
                    f,
                    if direct { "direct" } else { "indirect" },
                )),
                // `groups pr`: any element.
                None => Node::Const(matches!(f, Filter::Present(_))),
                Some(_) => Node::Const(false),
            },
        })
    }

    /// `f` compiled against the index rows at `key` of this compiler's type.
    fn with_key(&mut self, key: &'static str, f: &Filter) -> Result<Node> {
        self.key_override = Some(key);
        let node = self.build(f, Bound::Sure);
        self.key_override = None;
        node
    }

    fn user_groups(&mut self, f: &Filter) -> Result<Node> {
        let n = self.subqueries;
        let prefix = sibling_prefix(self.location_prefix, "Groups");
        let cut = BTreeSet::new();
        let mut sub = self.nested("Group", &prefix, &cut);
        let direct = simplify(sub.group_side(f, true)?);
        let indirect = simplify(sub.group_side(f, false)?);
        let g = format!("g{n}");
        let render = |node: &Node, out: &mut Frag| {
            let mut r = Renderer::about(self.tenant, &g, &format!("g{n}x"));
            r.resource(node, true, out);
        };
        // The groups the condition holds for, with their member rows.
        let groups = |node: &Node, m: &str, out: &mut Frag| {
            out.sql(format!(
                "SELECT {m}.group_pk, {m}.member_pk FROM resources {g} JOIN memberships {m} \
                 ON {m}.group_pk = {g}.pk WHERE {g}.tenant_id = "
            ))
            .int(self.tenant)
            .sql(format!(" AND {g}.resource_type = 'Group' AND "));
            render(node, out);
        };
        // One `IN` list: SQLite reads an `OR` of two as a scan of `r`.
        let mut selects = Vec::new();
        let mut with = Frag::new();
        if direct != Node::Const(false) {
            let mut f = Frag::new();
            f.sql(format!("SELECT d{n}.member_pk FROM ("));
            groups(&direct, &format!("m{n}"), &mut f);
            f.sql(format!(") d{n}"));
            selects.push(f);
        }
        // Any indirect member is also a direct member of some group, so
        // `groups pr` needs no walk.
        let trivial = direct == Node::Const(true) && indirect == Node::Const(true);
        if indirect != Node::Const(false) && !trivial {
            with.sql(format!("WITH RECURSIVE below{n}(top, pk) AS ("));
            groups(&indirect, &format!("i{n}"), &mut with);
            with.sql(format!(
                " UNION SELECT b.top, w.member_pk FROM below{n} b \
                 JOIN memberships w ON w.group_pk = b.pk) "
            ));
            let mut f = Frag::new();
            f.sql(format!(
                "SELECT b.pk FROM below{n} b WHERE NOT EXISTS (SELECT 1 FROM memberships d \
                 WHERE d.group_pk = b.top AND d.member_pk = b.pk)"
            ));
            selects.push(f);
        }
        if selects.is_empty() {
            return Ok(Node::Const(false));
        }
        let mut sql = Frag::new();
        sql.alias().sql(".pk IN (").frag(&with);
        for (i, s) in selects.iter().enumerate() {
            if i > 0 {
                sql.sql(" UNION ");
            }
            sql.frag(s);
        }
        sql.sql(")");
        Ok(Node::Raw {
            sql,
            score: Some(5),
        })
    }

    /// The condition on a membership row `m{n}` (member resource `e{n}`) of
    /// the group `r` for a `members` filter `f`.
    fn member_side(&mut self, f: &Filter, n: usize) -> Result<Frag> {
        let (m, e) = (format!("m{n}"), format!("e{n}"));
        Ok(match f {
            Filter::And(c) | Filter::Or(c) => {
                let parts = c
                    .iter()
                    .map(|x| self.member_side(x, n))
                    .collect::<Result<Vec<_>>>()?;
                join(
                    parts,
                    if matches!(f, Filter::And(_)) {
                        " AND "
                    } else {
                        " OR "
                    },
                )
            }
            Filter::Not(c) => {
                let mut out = Frag::new();
                out.sql("NOT (").frag(&self.member_side(c, n)?).sql(")");
                out
            }
            Filter::ValuePath { .. } => constant(false),
            Filter::Present(a) | Filter::Compare { attr: a, .. } => match sub_name(a).as_deref() {
                Some("value") => {
                    let cut = BTreeSet::new();
                    let mut sub = self.nested("User", self.location_prefix, &cut);
                    let node = sub.with_key("id", f)?;
                    self.probe(&node, &e, n)
                }
                Some("type") => {
                    let mut parts = Vec::new();
                    for t in ["User", "Group"] {
                        if leaf_holds_for(f, t) {
                            let mut p = Frag::new();
                            p.sql(format!("{m}.member_type = ")).text(t);
                            parts.push(p);
                        }
                    }
                    match parts.len() {
                        0 => constant(false),
                        2 => constant(true),
                        _ => join(parts, " OR "),
                    }
                }
                Some("$ref") => {
                    let mut parts = Vec::new();
                    for t in ["User", "Group"] {
                        let prefix = sibling_prefix(self.location_prefix, &format!("{t}s"));
                        let cut = BTreeSet::new();
                        let mut sub = self.nested(t, &prefix, &cut);
                        let node = sub.group_side(f, true)?;
                        let mut p = Frag::new();
                        p.sql(format!("({m}.member_type = ")).text(t).sql(" AND ");
                        p.frag(&self.probe(&node, &e, n)).sql(")");
                        parts.push(p);
                    }
                    join(parts, " OR ")
                }
                Some("display") => {
                    let cut = BTreeSet::new();
                    let mut sub = self.nested("Group", self.location_prefix, &cut);
                    let node = sub.with_key("members.display", f)?;
                    self.display(&node, n)
                }
                _ => constant(false),
            },
        })
    }

    /// `node` (about a resource) as a probe of the resource `outer`.
    fn probe(&self, node: &Node, outer: &str, n: usize) -> Frag {
        let mut out = Frag::new();
        let mut r = Renderer::about(self.tenant, outer, &format!("{outer}x{n}_"));
        r.resource(node, false, &mut out);
        out
    }

    /// A `members.display` condition (`node` over rows at
    /// `members.display`) on the member of row `m{n}`: the display stored
    /// with it in the group, else the member's displayName, else its
    /// userName.
    fn display(&self, node: &Node, n: usize) -> Frag {
        match node {
            Node::Const(b) => constant(*b),
            Node::Not(c) => {
                let mut out = Frag::new();
                out.sql("NOT (").frag(&self.display(c, n)).sql(")");
                out
            }
            Node::And(c) | Node::Or(c) => join(
                c.iter().map(|x| self.display(x, n)).collect(),
                if matches!(node, Node::And(_)) {
                    " AND "
                } else {
                    " OR "
                },
            ),
            Node::Rows { cond, .. } => {
                let e = format!("e{n}");
                // The group's stored display for this member: the element
                // whose value is the member's id.
                let stored = |with: Option<&Frag>| {
                    let mut f = Frag::new();
                    f.sql(format!(
                        "EXISTS (SELECT 1 FROM attr_index v{n} JOIN attr_index s{n} \
                         ON s{n}.resource_pk = v{n}.resource_pk AND s{n}.ordinal = v{n}.ordinal \
                         AND s{n}.attr = 'members.display' \
                         WHERE v{n}.resource_pk = "
                    ))
                    .alias()
                    .sql(format!(
                        ".pk AND v{n}.attr = 'members.value' AND v{n}.text_folded = lower({e}.id)"
                    ));
                    if let Some(c) = with {
                        f.sql(" AND (").frag_as(c, &format!("s{n}")).sql(")");
                    }
                    f.sql(")");
                    f
                };
                let own = |attr: &str, with: Option<&Frag>| {
                    let a = format!("o{n}");
                    let mut f = Frag::new();
                    f.sql(format!(
                        "EXISTS (SELECT 1 FROM attr_index {a} WHERE {a}.resource_pk = {e}.pk AND {a}.attr = '{attr}'"
                    ));
                    if let Some(c) = with {
                        f.sql(" AND (").frag_as(c, &a).sql(")");
                    }
                    f.sql(")");
                    f
                };
                let mut f = Frag::new();
                f.sql("(CASE WHEN ")
                    .frag(&stored(None))
                    .sql(" THEN ")
                    .frag(&stored(Some(cond)))
                    .sql(" ELSE (")
                    .frag(&own("displayname", Some(cond)))
                    .sql(" OR (NOT ")
                    .frag(&own("displayname", None))
                    .sql(" AND ")
                    .frag(&own("username", Some(cond)))
                    .sql(")) END)");
                f
            }
            _ => constant(false),
        }
    }

    fn group_members(&mut self, f: &Filter) -> Result<Node> {
        let n = self.subqueries;
        let cond = self.member_side(f, n)?;
        let mut sql = Frag::new();
        sql.sql(format!(
            "EXISTS (SELECT 1 FROM memberships m{n} JOIN resources e{n} ON e{n}.pk = m{n}.member_pk \
             WHERE m{n}.group_pk = "
        ))
        .alias()
        .sql(".pk AND (")
        .frag(&cond)
        .sql("))");
        Ok(Node::Raw { sql, score: None })
    }
}
