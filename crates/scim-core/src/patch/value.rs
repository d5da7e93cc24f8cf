//! Values in PATCH operations: type checks against the schema, canonical
//! key spelling, and the schema-aware equality that decides what "the same
//! value" means (for no-op detection, duplicate elements and mutability).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_PAD_INDIFFERENT, URL_SAFE_PAD_INDIFFERENT};
use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value};

use super::op::json_type;
use crate::error::{Error, Result};
use crate::filter::{fold, parse_datetime};
use crate::json::get_ci;
use crate::schema::{Attribute, AttributeType, Mutability};

/// What to leave out of a complex value object as it is normalised.
#[derive(Debug, Clone, Copy)]
pub(super) struct Drop {
    /// Leave out readOnly sub-attributes (RFC 7644 section 3.3: readOnly
    /// values in a request body are ignored).
    pub read_only: bool,
    /// Leave out `$ref` sub-attributes: in multi-valued elements the
    /// reference is derived by the service provider from `value`.
    pub refs: bool,
}

/// Whether a value counts as unassigned (RFC 7643 section 2.5): absent,
/// null, an empty array, or an object without any assigned member.
pub(super) fn is_unassigned(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(items)) => items.iter().all(|i| is_unassigned(Some(i))),
        Some(Value::Object(obj)) => obj.values().all(|i| is_unassigned(Some(i))),
        Some(_) => false,
    }
}

/// Checks a non-null value against a simple (non-complex) attribute type.
pub(super) fn check_simple(def: &Attribute, v: &Value, name: &str) -> Result<()> {
    let ok = match def.ty {
        AttributeType::String | AttributeType::Reference => v.is_string(),
        AttributeType::Boolean => v.is_boolean(),
        AttributeType::Integer => v.as_number().is_some_and(|n| n.is_i64() || n.is_u64()),
        AttributeType::Decimal => v.is_number(),
        AttributeType::DateTime => {
            if let Some(s) = v.as_str() {
                if parse_datetime(s).is_none() {
                    return Err(Error::invalid_value(format!(
                        "'{name}' is a dateTime; '{s}' is not an xsd:dateTime such as \"2011-05-13T04:42:34Z\""
                    )));
                }
                true
            } else {
                false
            }
        }
        AttributeType::Binary => {
            if let Some(s) = v.as_str() {
                if STANDARD_PAD_INDIFFERENT.decode(s).is_err()
                    && URL_SAFE_PAD_INDIFFERENT.decode(s).is_err()
                {
                    return Err(Error::invalid_value(format!(
                        "'{name}' is binary; the value is not base64"
                    )));
                }
                true
            } else {
                false
            }
        }
        AttributeType::Complex => v.is_object(),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_value(format!(
            "'{name}' is {} {}; {} is not a valid value",
            article(def.ty),
            type_label(def),
            json_type(v)
        )))
    }
}

fn article(ty: AttributeType) -> &'static str {
    match ty {
        AttributeType::Integer => "an",
        _ => "a",
    }
}

fn type_label(def: &Attribute) -> &'static str {
    match def.ty {
        AttributeType::Integer => "integer (a whole number)",
        other => other.as_str(),
    }
}

/// Normalises the value of a simple attribute or sub-attribute. Null stays
/// null (unassign). A multi-valued simple attribute takes an array (a single
/// value is wrapped), without nulls; an empty result is null.
pub(super) fn simple_value(def: &Attribute, v: &Value, name: &str) -> Result<Value> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    if def.ty == AttributeType::Complex {
        return Err(Error::invalid_value(format!(
            "'{name}' is complex; give an object of its sub-attributes"
        )));
    }
    if !def.multi_valued {
        if v.is_array() {
            return Err(Error::invalid_value(format!(
                "'{name}' is single-valued; an array is not a valid value"
            )));
        }
        check_simple(def, v, name)?;
        return Ok(v.clone());
    }
    let items: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if item.is_null() {
            continue;
        }
        check_simple(def, item, name)?;
        out.push(item.clone());
    }
    Ok(if out.is_empty() {
        Value::Null
    } else {
        Value::Array(out)
    })
}

/// Normalises a value object for the complex attribute `def`: keys in their
/// canonical spelling, each sub-attribute value checked; nulls kept (the
/// caller decides whether null means "unassign" or "nothing").
pub(super) fn complex_object(
    def: &Attribute,
    v: &Value,
    name: &str,
    drop: Drop,
) -> Result<Map<String, Value>> {
    let Some(obj) = v.as_object() else {
        return Err(Error::invalid_value(format!(
            "'{name}' is complex; give an object of its sub-attributes, not {}",
            json_type(v)
        )));
    };
    let mut out = Map::new();
    for (key, value) in obj {
        let Some(sub) = def.sub_attribute(key) else {
            return Err(Error::invalid_value(format!(
                "'{name}' has no sub-attribute '{key}'"
            )));
        };
        if out.contains_key(&sub.name) {
            return Err(Error::invalid_value(format!(
                "sub-attribute '{name}.{}' is given twice",
                sub.name
            )));
        }
        if (drop.read_only && sub.mutability == Mutability::ReadOnly)
            || (drop.refs && sub.name == "$ref")
        {
            continue;
        }
        let sub_name = format!("{name}.{}", sub.name);
        out.insert(sub.name.clone(), simple_value(sub, value, &sub_name)?);
    }
    Ok(out)
}

/// Normalises the elements given for a multi-valued attribute: a single
/// value is wrapped in an array; nulls and elements left empty are dropped.
/// For complex elements, readOnly sub-attributes and `$ref` are left out
/// when `drop.read_only` (see [`Drop`]).
pub(super) fn elements(def: &Attribute, v: &Value, name: &str, drop: Drop) -> Result<Vec<Value>> {
    let items: Vec<&Value> = match v {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if item.is_null() {
            continue;
        }
        if def.ty == AttributeType::Complex {
            let mut obj = complex_object(def, item, name, drop)?;
            obj.retain(|_, v| !v.is_null());
            if !obj.is_empty() {
                out.push(Value::Object(obj));
            }
        } else {
            if item.is_array() {
                return Err(Error::invalid_value(format!(
                    "'{name}' takes a flat array of values"
                )));
            }
            check_simple(def, item, name)?;
            out.push(item.clone());
        }
    }
    Ok(out)
}

/// A string that two values share exactly when they are equal under the
/// attribute's type and caseExact: the basis of every comparison here.
pub(super) fn key(def: &Attribute, v: &Value) -> String {
    match (def.ty, v) {
        (_, Value::Array(items)) => {
            let mut keys: Vec<String> = items
                .iter()
                .filter(|i| !i.is_null())
                .map(|i| key(def, i))
                .collect();
            keys.sort();
            format!("a:{}", serde_json::Value::from(keys))
        }
        (AttributeType::Complex, Value::Object(obj)) => {
            let mut pairs: Vec<(String, String)> = obj
                .iter()
                .filter(|(_, v)| !is_unassigned(Some(v)))
                .map(|(k, v)| {
                    let k = k.to_ascii_lowercase();
                    match def.sub_attribute(&k) {
                        Some(sub) => (k, key(sub, v)),
                        None => (k, format!("j:{v}")),
                    }
                })
                .collect();
            pairs.sort();
            let flat: Vec<Value> = pairs
                .into_iter()
                .flat_map(|(k, v)| [Value::String(k), Value::String(v)])
                .collect();
            format!("o:{}", Value::Array(flat))
        }
        (AttributeType::String | AttributeType::Reference, Value::String(s)) => {
            if def.case_exact {
                format!("s:{s}")
            } else {
                format!("s:{}", fold(s))
            }
        }
        (AttributeType::DateTime, Value::String(s)) => match parse_datetime(s) {
            Some(t) => format!(
                "t:{}",
                t.with_timezone(&Utc)
                    .to_rfc3339_opts(SecondsFormat::Nanos, true)
            ),
            None => format!("s:{s}"),
        },
        (AttributeType::Integer | AttributeType::Decimal, Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                format!("n:{i}")
            } else if let Some(u) = n.as_u64() {
                format!("n:{u}")
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    // Integral and well inside i64: the cast is exact.
                    format!("n:{}", f as i64)
                } else {
                    format!("n:{f}")
                }
            }
        }
        (_, other) => format!("j:{other}"),
    }
}

/// A hash that values equal under [`key`] always share (unequal values may
/// share it too): a cheap first look, without allocating for strings, when
/// indexing long lists.
pub(super) fn coarse_hash(def: &Attribute, v: &Value) -> u64 {
    match (def.ty, v) {
        (AttributeType::String | AttributeType::Reference, Value::String(s)) => {
            if def.case_exact {
                fnv1a(FNV_OFFSET, s.as_bytes())
            } else if s.is_ascii() {
                s.bytes()
                    .fold(FNV_OFFSET, |h, b| fnv1a(h, &[b.to_ascii_lowercase()]))
            } else {
                // `fold` lower-cases a final sigma to 'ς' and other sigmas to
                // 'σ'; hashing both as 'σ' keeps equal folds equal here.
                let mut h = FNV_OFFSET;
                let mut buf = [0u8; 4];
                for c in s.chars().flat_map(char::to_lowercase) {
                    let c = if c == 'ς' { 'σ' } else { c };
                    h = fnv1a(h, c.encode_utf8(&mut buf).as_bytes());
                }
                h
            }
        }
        _ => fnv1a(FNV_OFFSET, key(def, v).as_bytes()),
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// 64-bit FNV-1a over `bytes`, continuing from `h`.
fn fnv1a(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Whether two values of an attribute are the same value. Unassigned
/// values (absent, null, empty) are all the same; multi-valued attributes
/// compare as multisets, complex values member by member.
pub(super) fn same(def: &Attribute, a: Option<&Value>, b: Option<&Value>) -> bool {
    match (is_unassigned(a), is_unassigned(b)) {
        (true, true) => true,
        (false, false) => match (a, b) {
            (Some(a), Some(b)) => a == b || key(def, a) == key(def, b),
            _ => false,
        },
        _ => false,
    }
}

/// Whether the element `new` of a multi-valued complex attribute is already
/// contained in `existing`: every sub-attribute `new` assigns has the same
/// value in `existing` (RFC 7644 section 3.5.2.1: "If the target location
/// already contains the value specified, no changes SHOULD be made").
pub(super) fn element_contains(def: &Attribute, existing: &Value, new: &Value) -> bool {
    let (Some(e), Some(n)) = (existing.as_object(), new.as_object()) else {
        return key(def, existing) == key(def, new);
    };
    n.iter().all(|(k, nv)| {
        if is_unassigned(Some(nv)) {
            return true;
        }
        let ev = get_ci(e, k).map(|(_, v)| v);
        match def.sub_attribute(k) {
            Some(sub) => same(sub, ev, Some(nv)),
            None => ev == Some(nv),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SchemaRegistry;
    use serde_json::json;

    fn attr(path: &str) -> Attribute {
        let rs = SchemaRegistry::core().resource_schema("User").unwrap();
        rs.resolve(path).unwrap().target().clone()
    }

    #[test]
    fn types_are_checked() {
        let active = attr("active");
        assert!(simple_value(&active, &json!(true), "active").is_ok());
        let e = simple_value(&active, &json!("True"), "active").unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidValue);
        assert!(e.detail().contains("boolean"), "{e}");
        let modified = attr("meta.lastModified");
        assert!(simple_value(&modified, &json!("2011-05-13T04:42:34Z"), "m").is_ok());
        assert!(simple_value(&modified, &json!("yesterday"), "m").is_err());
        let cert = attr("x509Certificates.value");
        assert!(simple_value(&cert, &json!("TUlJREF6Q0NBdXVnQXdJQg=="), "c").is_ok());
        assert!(simple_value(&cert, &json!("not base64!"), "c").is_err());
        let user_name = attr("userName");
        assert!(simple_value(&user_name, &json!(["a"]), "userName").is_err());
        assert!(simple_value(&user_name, &json!(7), "userName").is_err());
    }

    #[test]
    fn equality_follows_case_exact_and_types() {
        let user_name = attr("userName");
        assert!(same(
            &user_name,
            Some(&json!("BJensen")),
            Some(&json!("bjensen"))
        ));
        let id = attr("id");
        assert!(!same(&id, Some(&json!("A")), Some(&json!("a"))));
        let modified = attr("meta.lastModified");
        assert!(same(
            &modified,
            Some(&json!("2011-05-13T04:42:34Z")),
            Some(&json!("2011-05-13T06:42:34+02:00"))
        ));
        let emails = attr("emails");
        assert!(same(
            &emails,
            Some(&json!([{"value": "A@x", "type": "work"}, {"value": "b@x"}])),
            Some(&json!([{"value": "b@x"}, {"Type": "work", "value": "a@x", "primary": null}]))
        ));
        assert!(same(&emails, None, Some(&json!([]))));
        // Values with equal keys always share the coarse hash.
        let value = attr("emails.value");
        for (a, b) in [("ΟΔΟΣ@x", "οδος@x"), ("Ab@X", "aB@x"), ("ΣΑΣ", "σας")] {
            assert_eq!(key(&value, &json!(a)), key(&value, &json!(b)), "{a} {b}");
            assert_eq!(
                coarse_hash(&value, &json!(a)),
                coarse_hash(&value, &json!(b))
            );
        }
        assert!(element_contains(
            &emails,
            &json!({"value": "a@x", "type": "work", "primary": true}),
            &json!({"value": "A@X", "type": "work"})
        ));
        assert!(!element_contains(
            &emails,
            &json!({"value": "a@x", "type": "work"}),
            &json!({"value": "a@x", "type": "home"})
        ));
    }
}
