//! Lenient serde for SCIM wire types, shared by the typed resources and the
//! message types.
//!
//! - Member names match case-insensitively (RFC 7643 section 2.1): the
//!   incoming object's keys are first rewritten to the spelling of the
//!   struct's fields ([`canonical_keys`]), then the derived deserializer runs.
//!   A type opts in with `#[serde(remote = "Self")]` on its derives and
//!   [`case_insensitive_serde!`] with the list of its wire names.
//! - Integers may arrive as JSON strings (`"10"`), as some clients send them.
//!
//! Beware: `#[serde(remote = "Self")]` makes the derived, case-sensitive
//! `serialize` / `deserialize` *inherent* functions, which shadow the trait
//! methods in path calls. Inside this crate, write
//! `<Meta as Deserialize>::deserialize(v)`, never `Meta::deserialize(v)`
//! (or use `serde_json::from_value`, which goes through the trait).

use serde::de::{self, Deserialize, Deserializer};
use serde::ser::Serializer;
use serde_json::{Map, Value};

/// Rewrites the keys of `map` that equal one of `fields` ignoring ASCII case
/// to that field's spelling. A key already spelled exactly wins; a
/// differently cased duplicate keeps its own key (so nothing is lost, and a
/// type with a flattened `extra` map keeps it there). Order is preserved.
pub(crate) fn canonical_keys(map: Map<String, Value>, fields: &[&str]) -> Map<String, Value> {
    let needs_work = map
        .keys()
        .any(|k| !fields.contains(&k.as_str()) && fields.iter().any(|f| f.eq_ignore_ascii_case(k)));
    if !needs_work {
        return map;
    }
    let exact: Vec<&str> = fields
        .iter()
        .copied()
        .filter(|f| map.contains_key(*f))
        .collect();
    let mut out = Map::with_capacity(map.len());
    for (key, value) in map {
        let canonical = fields
            .iter()
            .copied()
            .find(|f| f.eq_ignore_ascii_case(&key) && *f != key);
        match canonical {
            Some(f) if !exact.contains(&f) && !out.contains_key(f) => {
                out.insert(f.to_string(), value);
            }
            _ => {
                out.insert(key, value);
            }
        }
    }
    out
}

/// Implements `Serialize` and a case-insensitive `Deserialize` for a
/// non-generic type whose derives carry `#[serde(remote = "Self")]`.
/// `$fields` lists every wire name of the type's own members.
macro_rules! case_insensitive_serde {
    ($ty:ident, $fields:expr) => {
        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                $ty::serialize(self, serializer)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::std::result::Result<Self, D::Error> {
                let map = <::serde_json::Map<String, ::serde_json::Value> as ::serde::Deserialize>::deserialize(
                    deserializer,
                )?;
                let value = ::serde_json::Value::Object(
                    $crate::resource::serde_ci::canonical_keys(map, $fields),
                );
                $ty::deserialize(value).map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }
    };
}
pub(crate) use case_insensitive_serde;

fn integer_from_value<E: de::Error>(value: &Value) -> Result<i64, E> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| E::custom(format!("expected an integer, got {n}"))),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| E::custom(format!("expected an integer, got \"{s}\""))),
        other => Err(E::custom(format!("expected an integer, got {other}"))),
    }
}

/// An optional signed integer, given as a JSON number or a numeric string.
pub(crate) fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(v) => integer_from_value(&v).map(Some),
    }
}

/// An optional non-negative integer, given as a JSON number or a numeric string.
pub(crate) fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match opt_i64(d)? {
        None => Ok(None),
        Some(n) => u64::try_from(n)
            .map(Some)
            .map_err(|_| de::Error::custom(format!("expected a non-negative integer, got {n}"))),
    }
}

/// A non-negative integer (null reads as 0), as a JSON number or a numeric string.
pub(crate) fn u64_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(opt_u64(d)?.unwrap_or(0))
}

/// A boolean, as JSON `true`/`false` or the strings `"true"`/`"false"` in
/// any case (null reads as false). Used for configuration read from other
/// providers, never for resource attributes.
pub(crate) fn bool_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(b),
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => Err(de::Error::custom(format!(
            "expected a boolean, got {other}"
        ))),
    }
}

/// An HTTP status as sent in a Bulk response or an Error message: a string
/// (`"201"`, the RFC form), a number, or the pre-RFC `{"code": "201"}` object.
pub(crate) fn status<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let value = Value::deserialize(d)?;
    let code = match &value {
        Value::Object(obj) => crate::json::get_ci(obj, "code")
            .map(|(_, v)| v)
            .ok_or_else(|| de::Error::custom("status object has no \"code\""))?,
        other => other,
    };
    let n = integer_from_value::<D::Error>(code)?;
    u16::try_from(n)
        .ok()
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| de::Error::custom(format!("status {n} is not an HTTP status code")))
}

/// Serialises an HTTP status as the string the RFC uses (`"201"`).
pub(crate) fn status_as_string<S: Serializer>(status: &u16, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&status.to_string())
}

/// A list of attribute names: a JSON array of strings or one comma-separated
/// string; every entry is split at commas and trimmed, empty entries dropped.
pub(crate) fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let items = match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(de::Error::custom(format!(
                    "expected a list of attribute names, got {other}"
                ))),
            })
            .collect::<Result<Vec<_>, D::Error>>()?,
        Some(other) => {
            return Err(de::Error::custom(format!(
                "expected a list of attribute names, got {other}"
            )));
        }
    };
    Ok(split_names(items.iter().map(String::as_str)))
}

/// Splits comma-separated attribute name lists, trimming and dropping empties.
pub(crate) fn split_names<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    items
        .into_iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Serialises `value` into a JSON object map. Only for types whose
/// serialisation cannot fail (string keys, no custom errors); anything else
/// yields an empty map.
pub(crate) fn to_object<T: serde::Serialize>(value: &T) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_keys_renames_and_keeps_duplicates() {
        let Value::Object(map) = json!({"USERNAME": "a", "userName": "b", "Other": 1, "Name": {}})
        else {
            unreachable!()
        };
        let out = canonical_keys(map, &["userName", "name"]);
        assert_eq!(
            Value::Object(out),
            json!({"USERNAME": "a", "userName": "b", "Other": 1, "name": {}})
        );
    }

    #[test]
    fn lenient_numbers_and_lists() {
        #[derive(serde::Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "opt_i64")]
            a: Option<i64>,
            #[serde(default, deserialize_with = "string_list")]
            b: Vec<String>,
            #[serde(deserialize_with = "status")]
            c: u16,
        }
        let t: T =
            serde_json::from_value(json!({"a": "-5", "b": "x, y ,,z", "c": {"code": "201"}}))
                .unwrap();
        assert_eq!(
            (t.a, t.b, t.c),
            (Some(-5), vec!["x".into(), "y".into(), "z".into()], 201)
        );
        let t: T = serde_json::from_value(json!({"b": ["p,q", "r"], "c": 404})).unwrap();
        assert_eq!(
            (t.a, t.b, t.c),
            (None, vec!["p".into(), "q".into(), "r".into()], 404)
        );
        assert!(serde_json::from_value::<T>(json!({"a": 1.5, "c": "200"})).is_err());
        assert!(serde_json::from_value::<T>(json!({"c": "2000"})).is_err());
    }
}
