//! In-memory evaluation of a typed filter over JSON resources.
//!
//! Semantics, shared with the server's SQL compiler (the filter corpus in
//! `conformance-tests/filters` holds both to them):
//! - A path that reaches several values (a multi-valued attribute, or a
//!   sub-attribute of one) matches when any value matches.
//! - Strings compare after [`fold`] unless the attribute is `caseExact`;
//!   `gt`/`lt` order strings by code point.
//! - dateTimes compare as instants, whatever their offsets.
//! - `ne` is the negation of `eq`: an absent attribute is `ne` anything.
//! - `eq null` matches when the attribute has no value; `ne null` when it has one.
//! - `pr` matches a non-empty value: not null, not `""`, not `[]`, not `{}`.
//! - A value of the wrong type in the resource never matches.

use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

use super::Filter;
use super::ast::CompareOp;
use crate::json::{attribute_value, get_ci, values_at};
use crate::schema::{AttrRef, Attribute, AttributeType};

/// Folds a string for case-insensitive comparison (Unicode lowercase).
/// The server folds indexed values and filter values with this same function.
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// Parses an xsd:dateTime (RFC 3339, with `Z` or an offset; without one the
/// time is taken as UTC).
pub fn parse_datetime(s: &str) -> Option<DateTime<FixedOffset>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t);
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    Some(Utc.from_utc_datetime(&naive).fixed_offset())
}

#[derive(Clone, Copy)]
enum Ctx<'v> {
    Resource(&'v Value),
    Element(&'v Value),
}

impl Filter {
    /// Whether the resource matches the filter.
    pub fn matches(&self, resource: &Value) -> bool {
        eval(self, Ctx::Resource(resource))
    }

    /// Whether one element of a multi-valued complex attribute matches a
    /// value filter (the inner filter of a value path, whose attributes are
    /// the element's sub-attributes).
    pub fn matches_element(&self, element: &Value) -> bool {
        eval(self, Ctx::Element(element))
    }
}

fn eval(root: &Filter, ctx: Ctx<'_>) -> bool {
    // An explicit stack of (node, next child) instead of recursion.
    let mut stack: Vec<(&Filter, usize)> = vec![(root, 0)];
    let mut last = false;
    while let Some(&(node, idx)) = stack.last() {
        let top = stack.len() - 1;
        match node {
            Filter::And(children) => {
                if idx > 0 && !last {
                    stack.pop();
                } else if idx == children.len() {
                    stack.pop();
                    last = true;
                } else {
                    stack[top].1 += 1;
                    stack.push((&children[idx], 0));
                }
            }
            Filter::Or(children) => {
                if idx > 0 && last {
                    stack.pop();
                } else if idx == children.len() {
                    stack.pop();
                    last = false;
                } else {
                    stack[top].1 += 1;
                    stack.push((&children[idx], 0));
                }
            }
            Filter::Not(inner) => {
                if idx == 0 {
                    stack[top].1 = 1;
                    stack.push((inner, 0));
                } else {
                    stack.pop();
                    last = !last;
                }
            }
            Filter::Present(attr) => {
                stack.pop();
                last = leaf_values(attr, ctx).iter().any(|v| is_non_empty(v));
            }
            Filter::Compare { attr, op, value } => {
                stack.pop();
                last = compare_leaf(attr, *op, value, &leaf_values(attr, ctx));
            }
            Filter::ValuePath { attr, filter } => {
                stack.pop();
                last = match ctx {
                    // Value filters do not nest.
                    Ctx::Element(_) => false,
                    Ctx::Resource(doc) => match attribute_value(doc, attr) {
                        Some(Value::Array(items)) => {
                            items.iter().any(|el| eval(filter, Ctx::Element(el)))
                        }
                        Some(el @ Value::Object(_)) => eval(filter, Ctx::Element(el)),
                        _ => false,
                    },
                };
            }
        }
    }
    last
}

fn leaf_values<'v>(attr: &AttrRef, ctx: Ctx<'v>) -> Vec<&'v Value> {
    match ctx {
        Ctx::Resource(doc) => values_at(doc, attr),
        Ctx::Element(el) => {
            let Some(sub) = attr.sub_attribute() else {
                return Vec::new();
            };
            match el.as_object().and_then(|o| get_ci(o, &sub.name)) {
                Some((_, Value::Array(items))) => items.iter().filter(|v| !v.is_null()).collect(),
                Some((_, Value::Null)) | None => Vec::new(),
                Some((_, v)) => vec![v],
            }
        }
    }
}

fn is_non_empty(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(is_non_empty),
        Value::Object(o) => o.values().any(is_non_empty_shallow),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

// Members of a complex value are simple (or arrays of simple values).
fn is_non_empty_shallow(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn compare_leaf(attr: &AttrRef, op: CompareOp, literal: &Value, values: &[&Value]) -> bool {
    let target = attr.target();
    if literal.is_null() {
        let present = values.iter().any(|v| is_non_empty(v));
        return match op {
            CompareOp::Eq => !present,
            CompareOp::Ne => present,
            _ => false,
        };
    }
    match op {
        CompareOp::Ne => !values
            .iter()
            .any(|v| compare(target, CompareOp::Eq, literal, v)),
        _ => values.iter().any(|v| compare(target, op, literal, v)),
    }
}

/// Compares one resource value with a literal under `op` (not `ne`).
fn compare(target: &Attribute, op: CompareOp, literal: &Value, actual: &Value) -> bool {
    match target.ty {
        AttributeType::String | AttributeType::Reference | AttributeType::Binary => {
            let (Some(a), Some(b)) = (actual.as_str(), literal.as_str()) else {
                return false;
            };
            if target.case_exact {
                compare_str(op, a, b)
            } else {
                compare_str(op, &fold(a), &fold(b))
            }
        }
        AttributeType::Boolean => match (actual.as_bool(), literal.as_bool()) {
            (Some(a), Some(b)) => op == CompareOp::Eq && a == b,
            _ => false,
        },
        AttributeType::Integer | AttributeType::Decimal => {
            let (Some(a), Some(b)) = (actual.as_f64(), literal.as_f64()) else {
                return false;
            };
            a.partial_cmp(&b).is_some_and(|o| ordering_matches(op, o))
        }
        AttributeType::DateTime => {
            let (Some(a), Some(b)) = (
                actual.as_str().and_then(parse_datetime),
                literal.as_str().and_then(parse_datetime),
            ) else {
                return false;
            };
            ordering_matches(op, a.cmp(&b))
        }
        AttributeType::Complex => false,
    }
}

fn compare_str(op: CompareOp, a: &str, b: &str) -> bool {
    match op {
        CompareOp::Co => a.contains(b),
        CompareOp::Sw => a.starts_with(b),
        CompareOp::Ew => a.ends_with(b),
        _ => ordering_matches(op, a.cmp(b)),
    }
}

fn ordering_matches(op: CompareOp, o: Ordering) -> bool {
    match op {
        CompareOp::Eq => o == Ordering::Equal,
        CompareOp::Ne => o != Ordering::Equal,
        CompareOp::Gt => o == Ordering::Greater,
        CompareOp::Ge => o != Ordering::Less,
        CompareOp::Lt => o == Ordering::Less,
        CompareOp::Le => o != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}
