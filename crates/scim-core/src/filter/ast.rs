//! The syntax tree of a filter, as written, with byte spans.
//!
//! This is the first stage: it knows the grammar of RFC 7644 section
//! 3.4.2.2 but nothing of schemas. [`crate::filter::Filter`] is the checked
//! form resolved against a schema.

use std::fmt;

use serde_json::Value;

/// A byte range in the filter text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// Offset of the first byte.
    pub start: usize,
    /// Offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }
}

/// A comparison operator (RFC 7644 Table 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `eq`: equal.
    Eq,
    /// `ne`: not equal.
    Ne,
    /// `co`: contains.
    Co,
    /// `sw`: starts with.
    Sw,
    /// `ew`: ends with.
    Ew,
    /// `gt`: greater than.
    Gt,
    /// `ge`: greater than or equal to.
    Ge,
    /// `lt`: less than.
    Lt,
    /// `le`: less than or equal to.
    Le,
}

impl CompareOp {
    /// Parses an operator name, case-insensitively (`pr` is not a comparison).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "co" => Self::Co,
            "sw" => Self::Sw,
            "ew" => Self::Ew,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            _ => return None,
        })
    }

    /// The lowercase operator name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Co => "co",
            Self::Sw => "sw",
            Self::Ew => "ew",
            Self::Gt => "gt",
            Self::Ge => "ge",
            Self::Lt => "lt",
            Self::Le => "le",
        }
    }

    /// Whether this is an ordering operator (gt, ge, lt, le).
    pub fn is_ordering(self) -> bool {
        matches!(self, Self::Gt | Self::Ge | Self::Lt | Self::Le)
    }

    /// Whether this is a substring operator (co, sw, ew).
    pub fn is_substring(self) -> bool {
        matches!(self, Self::Co | Self::Sw | Self::Ew)
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An attribute path as written: `userName`, `name.familyName`,
/// `urn:ietf:params:scim:schemas:core:2.0:User:userName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The path text exactly as written.
    pub text: String,
    /// Where it is in the filter.
    pub span: Span,
}

/// A node of the syntax tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What the node is.
    pub kind: ExprKind,
    /// Where it is in the filter.
    pub span: Span,
}

/// The kinds of syntax tree nodes.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// Two or more terms joined by `and` (flattened: `a and b and c` is one node).
    And(Vec<Expr>),
    /// Two or more terms joined by `or` (flattened likewise).
    Or(Vec<Expr>),
    /// `not (...)`.
    Not(Box<Expr>),
    /// `attrPath pr`.
    Present(AttrPath),
    /// `attrPath op value`; the value is a JSON literal (string, number,
    /// boolean or null).
    Compare(AttrPath, CompareOp, Value),
    /// `attrPath[valFilter]`.
    ValuePath(AttrPath, Box<Expr>),
}

impl Expr {
    /// The depth of the tree (a leaf is 1), computed without recursion.
    pub fn depth(&self) -> usize {
        let mut max = 0;
        let mut stack = vec![(self, 1usize)];
        while let Some((e, d)) = stack.pop() {
            max = max.max(d);
            match &e.kind {
                ExprKind::And(c) | ExprKind::Or(c) => stack.extend(c.iter().map(|c| (c, d + 1))),
                ExprKind::Not(c) | ExprKind::ValuePath(_, c) => stack.push((c, d + 1)),
                ExprKind::Present(_) | ExprKind::Compare(..) => {}
            }
        }
        max
    }
}

impl Drop for Expr {
    // Drops children from an explicit stack so a deep tree, however it was
    // built, cannot overflow the call stack.
    fn drop(&mut self) {
        let mut stack = Vec::new();
        take_children(&mut self.kind, &mut stack);
        while let Some(mut e) = stack.pop() {
            take_children(&mut e.kind, &mut stack);
        }
    }
}

fn take_children(kind: &mut ExprKind, out: &mut Vec<Expr>) {
    match kind {
        ExprKind::And(c) | ExprKind::Or(c) => out.append(c),
        ExprKind::Not(c) | ExprKind::ValuePath(_, c) => {
            if has_children(&c.kind) {
                let placeholder = ExprKind::And(Vec::new());
                let kind = std::mem::replace(&mut c.kind, placeholder);
                out.push(Expr { kind, span: c.span });
            }
        }
        ExprKind::Present(_) | ExprKind::Compare(..) => {}
    }
}

fn has_children(kind: &ExprKind) -> bool {
    matches!(
        kind,
        ExprKind::And(_) | ExprKind::Or(_) | ExprKind::Not(_) | ExprKind::ValuePath(..)
    )
}
