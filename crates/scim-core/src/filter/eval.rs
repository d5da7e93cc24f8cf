//! In-memory evaluation of a typed filter over JSON resources.
//!
//! Semantics, shared with the server's SQL compiler (the filter corpus in
//! `conformance-tests/filters` holds both to them):
//! - A path that reaches several values (a multi-valued attribute, or a
//!   sub-attribute of one) matches when any value matches.
//! - Strings compare after [`fold`] unless the attribute is `caseExact`
//!   ([`AttrRef::case_exact`]: binary values always are); `gt`/`lt` order
//!   strings by code point. There is no Unicode normalisation.
//! - Numbers compare by value; two whole numbers compare exactly (no
//!   rounding through floating point).
//! - dateTimes compare as instants, whatever their offsets.
//! - `ne` is the negation of `eq`: an absent attribute is `ne` anything.
//! - `eq null` matches when the attribute has no value; `ne null` when it has one.
//! - `pr` matches a non-empty value: not null, not `""`, not `[]`, not `{}`.
//! - A value of the wrong type in the resource never matches.

use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde_json::{Number, Value};

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
    let case_exact = attr.case_exact();
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
            .any(|v| compare(target, case_exact, CompareOp::Eq, literal, v)),
        _ => values
            .iter()
            .any(|v| compare(target, case_exact, op, literal, v)),
    }
}

/// Compares one resource value with a literal under `op` (not `ne`).
fn compare(
    target: &Attribute,
    case_exact: bool,
    op: CompareOp,
    literal: &Value,
    actual: &Value,
) -> bool {
    match target.ty {
        AttributeType::String | AttributeType::Reference | AttributeType::Binary => {
            let (Some(a), Some(b)) = (actual.as_str(), literal.as_str()) else {
                return false;
            };
            if case_exact {
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
            let (Some(a), Some(b)) = (actual.as_number(), literal.as_number()) else {
                return false;
            };
            compare_numbers(a, b).is_some_and(|o| ordering_matches(op, o))
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

/// Orders two JSON numbers by value. Whole numbers (i64 or u64) compare
/// exactly: through f64, 9007199254740993 would equal 9007199254740992.
fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
        (Some(x), Some(y), _, _) => Some(x.cmp(&y)),
        (_, _, Some(x), Some(y)) => Some(x.cmp(&y)),
        // One is a u64 above i64::MAX, the other a negative i64.
        (Some(_), None, _, Some(_)) => Some(Ordering::Less),
        (None, Some(_), Some(_), _) => Some(Ordering::Greater),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::SchemaRegistry;

    const NUMBERS: &str = "urn:example:params:scim:schemas:extension:numbers:2.0:User";

    /// The core schemas have no integer or decimal attribute: add an
    /// extension that has both.
    fn users_with_numbers() -> std::sync::Arc<crate::schema::ResourceSchema> {
        let mut r = SchemaRegistry::core();
        let id = r
            .add_schema_json(&format!(
                r#"{{"id":"{NUMBERS}","attributes":[
                    {{"name":"badge","type":"integer"}},
                    {{"name":"height","type":"decimal"}}]}}"#
            ))
            .unwrap();
        r.add_extension("User", &id, false).unwrap();
        r.resource_schema("User").unwrap()
    }

    fn matching(filter: &str, docs: &[Value]) -> Vec<usize> {
        let rs = users_with_numbers();
        let f = Filter::parse(filter, &rs).unwrap_or_else(|e| panic!("{filter}: {e}"));
        (0..docs.len()).filter(|&i| f.matches(&docs[i])).collect()
    }

    #[test]
    fn whole_numbers_compare_exactly() {
        let docs = [
            json!({ NUMBERS: {"badge": 9_007_199_254_740_992_i64} }),
            json!({ NUMBERS: {"badge": 9_007_199_254_740_993_i64} }),
            json!({ NUMBERS: {"badge": -5} }),
            json!({ NUMBERS: {"badge": u64::MAX} }),
            json!({}),
        ];
        // Through f64 the first two are the same number.
        assert_eq!(matching("badge eq 9007199254740993", &docs), [1]);
        assert_eq!(matching("badge gt 9007199254740992", &docs), [1, 3]);
        assert_eq!(matching("badge lt 0", &docs), [2]);
        assert_eq!(matching("badge ge -5", &docs), [0, 1, 2, 3]);
        assert_eq!(matching("badge le -6", &docs), Vec::<usize>::new());
        assert_eq!(matching("badge eq 18446744073709551615", &docs), [3]);
        assert_eq!(matching("badge gt -1", &docs), [0, 1, 3]);
        // `ne` is the negation of `eq`: the resource without a badge matches.
        assert_eq!(matching("badge ne -5", &docs), [0, 1, 3, 4]);
    }

    #[test]
    fn decimals_compare_by_value() {
        let docs = [
            json!({ NUMBERS: {"height": 1.5} }),
            json!({ NUMBERS: {"height": 2} }),
            json!({ NUMBERS: {"height": -0.25} }),
        ];
        assert_eq!(matching("height gt 1.25", &docs), [0, 1]);
        assert_eq!(matching("height eq 2.0", &docs), [1]);
        assert_eq!(matching("height eq 2", &docs), [1]);
        assert_eq!(matching("height le -2.5e-1", &docs), [2]);
        assert_eq!(matching("height lt 1E1", &docs), [0, 1, 2]);
    }

    #[test]
    fn numbers_refuse_strings_and_substring_operators() {
        let rs = users_with_numbers();
        for bad in [
            r#"badge eq "5""#,
            "badge eq 1.5",
            "badge co 5",
            "height sw 1",
            "badge eq true",
        ] {
            let err = Filter::parse(bad, &rs).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidFilter, "{bad}");
            assert_eq!(err.position(), Some(0), "{bad}");
        }
    }

    #[test]
    fn binary_values_are_case_exact() {
        // RFC 7643 2.3.6; the RFC's own schema marks x509Certificates.value
        // caseExact false, which must not make "AQID" equal "aqid".
        let rs = users_with_numbers();
        let docs = [
            json!({"x509Certificates": [{"value": "AQID"}]}),
            json!({"x509Certificates": [{"value": "aqid"}]}),
        ];
        let f = Filter::parse(r#"x509Certificates.value eq "AQID""#, &rs).unwrap();
        assert!(f.matches(&docs[0]));
        assert!(!f.matches(&docs[1]));
        let f = Filter::parse(r#"x509Certificates[value sw "aq"]"#, &rs).unwrap();
        assert!(!f.matches(&docs[0]));
        assert!(f.matches(&docs[1]));
    }
}
