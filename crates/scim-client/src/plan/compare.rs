//! Semantic comparison of attribute values: the canonical form two values
//! share when a service provider would treat them as the same.
//!
//! - Unassigned is one state: absent, `null`, `""`, `[]` and an object with
//!   nothing assigned (RFC 7643 section 2.5, plus the empty string, which
//!   providers commonly return for cleared values).
//! - Strings of `caseExact: false` attributes compare case-insensitively;
//!   of attributes the schema does not know, exactly.
//! - Booleans, integers and decimals sent as strings (`"True"`, `"42"`)
//!   compare as their values; dateTimes as instants.
//! - Member names of complex values compare case-insensitively.
//! - Multi-valued attributes compare as multisets: order does not matter.
//!   `primary: false` is the same as no `primary`.

use std::collections::BTreeMap;

use scim_core::filter::{fold, parse_datetime};
use scim_core::schema::{Attribute, AttributeType};
use serde_json::{Map, Number, Value};

/// The canonical form of a value of an attribute (`def` when the schema
/// knows it); `None` when unassigned.
pub(crate) fn normalize(v: &Value, def: Option<&Attribute>) -> Option<Value> {
    match v {
        Value::Array(items) => {
            let mut out: Vec<Value> = items
                .iter()
                .filter_map(|i| normalize_single(i, def))
                .collect();
            if out.is_empty() {
                return None;
            }
            out.sort_by_cached_key(Value::to_string);
            Some(Value::Array(out))
        }
        // A single value where the schema says multi-valued: a list of one.
        other if def.is_some_and(|d| d.multi_valued) => {
            normalize_single(other, def).map(|n| Value::Array(vec![n]))
        }
        other => normalize_single(other, def),
    }
}

/// The canonical form of one value (one element of a multi-valued attribute).
pub(crate) fn normalize_single(v: &Value, def: Option<&Attribute>) -> Option<Value> {
    let ty = def.map(|d| d.ty);
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::Object(map) => normalize_object(map, def),
        Value::Array(_) => normalize(v, None),
        Value::Bool(b) => Some(Value::Bool(*b)),
        Value::Number(n) => Some(number(n.as_f64())),
        Value::String(s) => Some(match ty {
            Some(AttributeType::Boolean) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => Value::String(s.clone()),
            },
            Some(AttributeType::Integer | AttributeType::Decimal) => {
                match s.trim().parse::<f64>() {
                    Ok(f) => number(Some(f)),
                    Err(_) => Value::String(s.clone()),
                }
            }
            Some(AttributeType::DateTime) => match parse_datetime(s) {
                Some(t) => Value::String(format!(
                    "@{}.{:09}",
                    t.timestamp(),
                    t.timestamp_subsec_nanos()
                )),
                None => Value::String(s.clone()),
            },
            _ if def.is_some_and(|d| !d.case_exact) => Value::String(fold(s)),
            _ => Value::String(s.clone()),
        }),
    }
}

fn number(f: Option<f64>) -> Value {
    f.and_then(Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

fn normalize_object(map: &Map<String, Value>, def: Option<&Attribute>) -> Option<Value> {
    let mut subs = BTreeMap::new();
    for (k, v) in map {
        let sub_def = def.and_then(|d| d.sub_attribute(k));
        let Some(n) = normalize(v, sub_def) else {
            continue;
        };
        if k.eq_ignore_ascii_case("primary") && n == Value::Bool(false) {
            continue;
        }
        subs.insert(k.to_ascii_lowercase(), n);
    }
    if subs.is_empty() {
        return None;
    }
    Some(Value::Object(subs.into_iter().collect()))
}

/// Whether two values of an attribute are the same for the provider.
pub(crate) fn same(a: Option<&Value>, b: Option<&Value>, def: Option<&Attribute>) -> bool {
    let na = a.and_then(|v| normalize(v, def));
    let nb = b.and_then(|v| normalize(v, def));
    na == nb
}

/// Whether a value is assigned (not absent, null, `""`, `[]` or empty).
pub(crate) fn is_assigned(v: Option<&Value>, def: Option<&Attribute>) -> bool {
    v.and_then(|v| normalize(v, def)).is_some()
}

/// The member of a JSON object by name, case-insensitively.
pub(crate) fn member<'a>(obj: &'a Value, name: &str) -> Option<&'a Value> {
    obj.as_object()
        .and_then(|o| scim_core::json::get_ci(o, name))
        .map(|(_, v)| v)
}

/// The folded text of a string key (`type`, `value`) for matching elements.
pub(crate) fn key_text(v: Option<&Value>, def: Option<&Attribute>) -> Option<String> {
    let s = v?.as_str()?;
    if s.is_empty() {
        return None;
    }
    Some(if def.is_none_or(|d| d.case_exact) {
        s.to_string()
    } else {
        fold(s)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_core::schema::SchemaRegistry;
    use serde_json::json;

    fn attr(path: &str) -> Attribute {
        let users = SchemaRegistry::core().resource_schema("User").unwrap();
        users.resolve(path).unwrap().target().clone()
    }

    #[test]
    fn unassigned_is_one_state() {
        let title = attr("title");
        for v in [
            json!(null),
            json!(""),
            json!([]),
            json!({}),
            json!({"a": null}),
        ] {
            assert!(!is_assigned(Some(&v), Some(&title)), "{v}");
        }
        assert!(!is_assigned(None, None));
        assert!(same(None, Some(&json!("")), Some(&title)));
    }

    #[test]
    fn case_and_types() {
        let user_name = attr("userName");
        assert!(same(
            Some(&json!("BJensen")),
            Some(&json!("bjensen")),
            Some(&user_name)
        ));
        assert!(!same(
            Some(&json!("BJensen")),
            Some(&json!("bjensen")),
            None
        ));
        let active = attr("active");
        assert!(same(
            Some(&json!(true)),
            Some(&json!("True")),
            Some(&active)
        ));
        assert!(!same(
            Some(&json!(true)),
            Some(&json!("False")),
            Some(&active)
        ));
        let number = Attribute::new("n", AttributeType::Integer);
        assert!(same(Some(&json!(42)), Some(&json!("42")), Some(&number)));
        assert!(same(Some(&json!(42)), Some(&json!(42.0)), Some(&number)));
        let when = Attribute::new("t", AttributeType::DateTime);
        assert!(same(
            Some(&json!("2020-01-01T01:00:00+01:00")),
            Some(&json!("2020-01-01T00:00:00.000Z")),
            Some(&when)
        ));
    }

    #[test]
    fn multi_valued_as_sets_with_primary() {
        let emails = attr("emails");
        let a = json!([
            {"value": "A@x.com", "type": "work", "primary": true},
            {"value": "b@x.com", "type": "home", "primary": false}
        ]);
        let b = json!([
            {"Type": "Home", "value": "b@x.com"},
            {"primary": true, "type": "work", "value": "a@x.com"}
        ]);
        assert!(same(Some(&a), Some(&b), Some(&emails)));
        let moved_primary = json!([
            {"value": "a@x.com", "type": "work"},
            {"value": "b@x.com", "type": "home", "primary": true}
        ]);
        assert!(!same(Some(&a), Some(&moved_primary), Some(&emails)));
        // One value for a multi-valued attribute is a list of one.
        assert!(same(
            Some(&json!({"value": "a@x.com"})),
            Some(&json!([{"value": "A@X.com"}])),
            Some(&emails)
        ));
    }

    #[test]
    fn keys() {
        let t = attr("emails.type");
        assert_eq!(
            key_text(Some(&json!("Work")), Some(&t)).as_deref(),
            Some("work")
        );
        assert_eq!(key_text(Some(&json!("")), Some(&t)), None);
        assert_eq!(key_text(Some(&json!(1)), Some(&t)), None);
        assert_eq!(member(&json!({"Type": 1}), "type"), Some(&json!(1)));
    }
}
