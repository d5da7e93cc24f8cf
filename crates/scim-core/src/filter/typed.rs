//! The typed filter: a syntax tree resolved against a resource schema.
//!
//! Every attribute is known, every comparison value fits the attribute's
//! type, and every operator fits the type. This is what the in-memory
//! evaluator and the server's SQL compiler consume.

use serde_json::Value;

use super::Limits;
use super::ast::{AttrPath, CompareOp, Expr, ExprKind};
use super::parse::parse_syntax;
use crate::error::{Error, Result};
use crate::schema::{AttrRef, AttributeType, ResourceSchema};

/// A filter resolved against a schema.
///
/// Inside a [`Filter::ValuePath`], the attributes of the inner filter are
/// sub-attributes of the value path's attribute (`emails[type eq "work"]`
/// holds a comparison on `emails.type`).
///
/// Trees built by the parser are bounded by [`Limits`]; trees built by hand
/// may be arbitrarily deep, and evaluation, display and drop still use no
/// recursion proportional to their depth.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// All terms match (two or more).
    And(Vec<Filter>),
    /// Any term matches (two or more).
    Or(Vec<Filter>),
    /// The inner filter does not match.
    Not(Box<Filter>),
    /// The attribute has a non-empty value.
    Present(AttrRef),
    /// The attribute compares to the value. The value is a JSON literal that
    /// fits the attribute's type (a string for string, reference, binary and
    /// dateTime attributes; a number for integer and decimal; a boolean; or
    /// null with `eq`/`ne`).
    Compare {
        /// The attribute compared (never a complex attribute).
        attr: AttrRef,
        /// The operator.
        op: CompareOp,
        /// The literal.
        value: Value,
    },
    /// Some element of the multi-valued complex attribute (or the value of
    /// a single-valued one, as in `name[givenName eq "x"]`) matches the
    /// inner filter as a whole.
    ValuePath {
        /// The complex attribute.
        attr: AttrRef,
        /// The filter over its sub-attributes.
        filter: Box<Filter>,
    },
}

impl Filter {
    /// Parses and resolves filter text for a resource type, with the default limits.
    pub fn parse(text: &str, rs: &ResourceSchema) -> Result<Filter> {
        Self::parse_with(text, rs, &Limits::default())
    }

    /// Parses and resolves filter text for a resource type, with the given limits.
    pub fn parse_with(text: &str, rs: &ResourceSchema, limits: &Limits) -> Result<Filter> {
        let expr = parse_syntax(text, limits)?;
        Resolver { rs, parent: None }.resolve(&expr)
    }

    /// Resolves a syntax tree against a resource type. Trees deeper than
    /// [`Limits::max_depth`] times three are refused.
    pub fn resolve(expr: &Expr, rs: &ResourceSchema) -> Result<Filter> {
        check_depth(expr)?;
        Resolver { rs, parent: None }.resolve(expr)
    }

    /// Resolves a value filter whose attributes are sub-attributes of
    /// `parent` (as inside `emails[...]` in a PATCH path).
    pub fn resolve_value_filter(
        expr: &Expr,
        rs: &ResourceSchema,
        parent: &AttrRef,
    ) -> Result<Filter> {
        check_depth(expr)?;
        Resolver {
            rs,
            parent: Some(parent),
        }
        .resolve(expr)
    }

    /// The depth of the tree (a leaf is 1), computed without recursion.
    pub fn depth(&self) -> usize {
        let mut max = 0;
        let mut stack = vec![(self, 1usize)];
        while let Some((f, d)) = stack.pop() {
            max = max.max(d);
            match f {
                Filter::And(c) | Filter::Or(c) => stack.extend(c.iter().map(|c| (c, d + 1))),
                Filter::Not(c) | Filter::ValuePath { filter: c, .. } => stack.push((c, d + 1)),
                Filter::Present(_) | Filter::Compare { .. } => {}
            }
        }
        max
    }

    /// Every attribute the filter reads, in order of appearance, computed
    /// without recursion.
    pub fn attributes(&self) -> Vec<&AttrRef> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(f) = stack.pop() {
            match f {
                Filter::And(c) | Filter::Or(c) => stack.extend(c.iter().rev()),
                Filter::Not(c) => stack.push(c),
                Filter::ValuePath { attr, filter } => {
                    out.push(attr);
                    stack.push(filter);
                }
                Filter::Present(a) | Filter::Compare { attr: a, .. } => out.push(a),
            }
        }
        out
    }
}

fn check_depth(expr: &Expr) -> Result<()> {
    let max = Limits::default().max_depth * 3;
    if expr.depth() > max {
        return Err(Error::invalid_filter(format!(
            "filter is deeper than {max} levels"
        )));
    }
    Ok(())
}

impl Drop for Filter {
    // Drops children from an explicit stack so a deep tree cannot overflow
    // the call stack.
    fn drop(&mut self) {
        let mut stack = Vec::new();
        take_children(self, &mut stack);
        while let Some(mut f) = stack.pop() {
            take_children(&mut f, &mut stack);
        }
    }
}

fn take_children(f: &mut Filter, out: &mut Vec<Filter>) {
    match f {
        Filter::And(c) | Filter::Or(c) => out.append(c),
        Filter::Not(c) | Filter::ValuePath { filter: c, .. } => {
            if matches!(
                **c,
                Filter::And(_) | Filter::Or(_) | Filter::Not(_) | Filter::ValuePath { .. }
            ) {
                out.push(std::mem::replace(&mut **c, Filter::And(Vec::new())));
            }
        }
        Filter::Present(_) | Filter::Compare { .. } => {}
    }
}

struct Resolver<'a> {
    rs: &'a ResourceSchema,
    /// Set inside a value filter: the complex attribute whose sub-attributes
    /// the inner paths name.
    parent: Option<&'a AttrRef>,
}

impl Resolver<'_> {
    fn resolve(&self, expr: &Expr) -> Result<Filter> {
        Ok(match &expr.kind {
            ExprKind::And(terms) => Filter::And(
                terms
                    .iter()
                    .map(|t| self.resolve(t))
                    .collect::<Result<_>>()?,
            ),
            ExprKind::Or(terms) => Filter::Or(
                terms
                    .iter()
                    .map(|t| self.resolve(t))
                    .collect::<Result<_>>()?,
            ),
            ExprKind::Not(inner) => Filter::Not(Box::new(self.resolve(inner)?)),
            ExprKind::Present(path) => Filter::Present(self.attr(path)?),
            ExprKind::Compare(path, op, value) => {
                let mut attr = self.attr(path)?;
                if attr.target().is_complex() {
                    // RFC 7644 3.4.2.2 examples compare `emails` directly: a
                    // complex attribute with a `value` sub-attribute is
                    // compared on that sub-attribute.
                    attr = attr.sub("value").ok_or_else(|| {
                        Error::invalid_filter(format!(
                            "'{}' is a complex attribute; compare one of its sub-attributes",
                            path.text
                        ))
                        .at(path.span.start)
                    })?;
                }
                check_comparison(&attr, *op, value).map_err(|e| e.at(path.span.start))?;
                Filter::Compare {
                    attr,
                    op: *op,
                    value: value.clone(),
                }
            }
            ExprKind::ValuePath(path, inner) => {
                if self.parent.is_some() {
                    return Err(
                        Error::invalid_filter("value filters cannot be nested").at(path.span.start)
                    );
                }
                let attr = self.attr(path)?;
                if attr.has_sub() || !attr.target().is_complex() {
                    return Err(Error::invalid_filter(format!(
                        "'{}' is not a complex attribute; '[...]' filters need one",
                        path.text
                    ))
                    .at(path.span.start));
                }
                let inner = Resolver {
                    rs: self.rs,
                    parent: Some(&attr),
                }
                .resolve(inner)?;
                Filter::ValuePath {
                    attr,
                    filter: Box::new(inner),
                }
            }
        })
    }

    fn attr(&self, path: &AttrPath) -> Result<AttrRef> {
        let relabel = |e: Error| Error::invalid_filter(e.detail().to_string()).at(path.span.start);
        match self.parent {
            None => self.rs.resolve(&path.text).map_err(relabel),
            Some(parent) => {
                if path.text.contains(['.', ':']) {
                    // Allow the fully spelled form `emails[emails.type eq ..]`? No:
                    // the RFC grammar names sub-attributes only.
                    return Err(Error::invalid_filter(format!(
                        "inside '{}[...]' name a sub-attribute of '{}', not '{}'",
                        parent.attribute().name,
                        parent.attribute().name,
                        path.text
                    ))
                    .at(path.span.start));
                }
                self.rs.resolve_sub(parent, &path.text).map_err(relabel)
            }
        }
    }
}

/// Checks that `op value` is meaningful for the attribute's type.
fn check_comparison(attr: &AttrRef, op: CompareOp, value: &Value) -> Result<()> {
    let ty = attr.target().ty;
    let name = attr.path();
    let bad = |why: String| Err(Error::invalid_filter(why));
    if value.is_null() {
        if matches!(op, CompareOp::Eq | CompareOp::Ne) {
            return Ok(());
        }
        return bad(format!(
            "'{}' cannot compare with null; use eq, ne or pr",
            op.as_str()
        ));
    }
    match ty {
        AttributeType::String | AttributeType::Reference | AttributeType::Binary => {
            if !value.is_string() {
                return bad(format!(
                    "'{name}' is a {}; compare it with a quoted string",
                    ty.as_str()
                ));
            }
            if ty == AttributeType::Binary && op.is_ordering() {
                return bad(format!(
                    "'{name}' is binary; gt, ge, lt and le are not defined for it"
                ));
            }
        }
        AttributeType::Boolean => {
            if !value.is_boolean() {
                return bad(format!(
                    "'{name}' is a boolean; compare it with true or false"
                ));
            }
            if !matches!(op, CompareOp::Eq | CompareOp::Ne) {
                return bad(format!("'{name}' is a boolean; only eq, ne and pr apply"));
            }
        }
        AttributeType::Integer | AttributeType::Decimal => {
            let Some(n) = value.as_number() else {
                return bad(format!("'{name}' is a number; compare it with a number"));
            };
            if ty == AttributeType::Integer && !(n.is_i64() || n.is_u64()) {
                return bad(format!(
                    "'{name}' is an integer; compare it with a whole number"
                ));
            }
            if op.is_substring() {
                return bad(format!(
                    "'{name}' is a number; co, sw and ew apply to strings"
                ));
            }
        }
        AttributeType::DateTime => {
            let Some(s) = value.as_str() else {
                return bad(format!(
                    "'{name}' is a dateTime; compare it with a quoted xsd:dateTime"
                ));
            };
            if super::eval::parse_datetime(s).is_none() {
                return bad(format!(
                    "'{s}' is not a valid dateTime (e.g. \"2011-05-13T04:42:34Z\")"
                ));
            }
            if op.is_substring() {
                return bad(format!(
                    "'{name}' is a dateTime; co, sw and ew apply to strings"
                ));
            }
        }
        AttributeType::Complex => {
            return bad(format!(
                "'{name}' is a complex attribute; compare one of its sub-attributes"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::filter::ast::Span;
    use crate::schema::SchemaRegistry;

    /// Trees built by hand can be far deeper than the parser allows; a test
    /// thread's 2 MiB stack would overflow long before 200,000 levels if
    /// anything recursed.
    #[test]
    fn deep_trees_print_evaluate_and_drop_without_recursion() {
        let users = SchemaRegistry::core().resource_schema("User").unwrap();
        let leaf = Filter::parse("title pr", &users).unwrap();
        let mut f = leaf.clone();
        for i in 0..200_000 {
            f = if i % 2 == 0 {
                Filter::Not(Box::new(f))
            } else {
                Filter::And(vec![f, leaf.clone()])
            };
        }
        assert_eq!(f.depth(), 200_001);
        assert_eq!(f.attributes().len(), 100_001);
        // Not then And(_, title pr), repeated: with a title the value cycles
        // false, false, true, true; without one every And is false.
        assert!(f.matches(&json!({"title": "Guide"})));
        assert!(!f.matches(&json!({})));
        let text = f.to_string();
        assert!(text.starts_with("not (not (not ("), "{}", &text[..40]);
        assert!(text.ends_with(") and title pr) and title pr"));
        let err = Filter::parse(&text, &users).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidFilter);
        drop(f);
    }

    #[test]
    fn deep_syntax_trees_are_refused_and_dropped_without_recursion() {
        let users = SchemaRegistry::core().resource_schema("User").unwrap();
        let mut e = Expr {
            kind: ExprKind::Present(AttrPath {
                text: "title".into(),
                span: Span::new(0, 5),
            }),
            span: Span::new(0, 5),
        };
        for _ in 0..200_000 {
            e = Expr {
                kind: ExprKind::Not(Box::new(e)),
                span: Span::default(),
            };
        }
        let err = Filter::resolve(&e, &users).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidFilter);
        drop(e);
    }
}
