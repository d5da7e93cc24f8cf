//! Writing members of JSON objects for the engine: sub-attribute changes
//! checked against mutability, merges of complex values, and member access
//! that ignores the case of keys but writes the schema's spelling.

use serde_json::{Map, Value};

use super::value;
use crate::error::{Error, Result};
use crate::json::{get_ci, key_ci};
use crate::schema::{Attribute, Mutability};

/// What one sub-attribute write does: `None` when nothing changes,
/// `Some(None)` to unassign, `Some(Some(v))` to set `v`. Enforces the
/// sub-attribute's mutability; `explicit` when the path names it (a
/// readOnly sub-attribute named by a path is an error, one inside a value
/// object is left out before this point).
pub(super) fn sub_change(
    sdef: &Attribute,
    name: &str,
    cur: Option<&Value>,
    new: Option<Value>,
    explicit: bool,
) -> Result<Option<Option<Value>>> {
    let cur_assigned = !value::is_unassigned(cur);
    match new {
        None => {
            if !cur_assigned {
                // Drop a stray null member, if any.
                return Ok(cur.is_some().then_some(None));
            }
            if sdef.required {
                return Err(Error::mutability(format!(
                    "'{name}' is required; it cannot be removed"
                )));
            }
            check_sub_mutability(sdef, name, explicit, cur_assigned)?;
            Ok(Some(None))
        }
        Some(v) => {
            if unchanged(sdef, sdef.mutability, cur, &v) {
                return Ok(None);
            }
            check_sub_mutability(sdef, name, explicit, cur_assigned)?;
            Ok(Some(Some(v)))
        }
    }
}

/// Whether writing `new` over `cur` changes nothing to keep: the same JSON,
/// or, for a readOnly or immutable value, the same value under the schema
/// (a readWrite value is stored as sent, so `BJensen` replaces `bjensen`).
pub(super) fn unchanged(
    def: &Attribute,
    mutability: Mutability,
    cur: Option<&Value>,
    new: &Value,
) -> bool {
    cur == Some(new)
        || (matches!(mutability, Mutability::ReadOnly | Mutability::Immutable)
            && value::same(def, cur, Some(new)))
}

fn check_sub_mutability(
    sdef: &Attribute,
    name: &str,
    explicit: bool,
    assigned: bool,
) -> Result<()> {
    match sdef.mutability {
        Mutability::ReadOnly if explicit => Err(Error::mutability(format!(
            "'{name}' is readOnly; it cannot be changed"
        ))),
        Mutability::Immutable if assigned => Err(Error::mutability(format!(
            "'{name}' is immutable and already has a value"
        ))),
        _ => Ok(()),
    }
}

/// The changes a merge of `patch` into the complex value `current` makes,
/// checked for mutability.
pub(super) fn merge_plan(
    def: &Attribute,
    name: &str,
    current: Option<&Map<String, Value>>,
    patch: Map<String, Value>,
    explicit: bool,
) -> Result<Vec<(String, Option<Value>)>> {
    let mut plan = Vec::new();
    for (key, v) in patch {
        let Some(sdef) = def.sub_attribute(&key) else {
            continue;
        };
        let cur = current.and_then(|o| get_ci(o, &key)).map(|(_, v)| v);
        let new = (!v.is_null()).then_some(v);
        let sub_name = format!("{name}.{}", sdef.name);
        if let Some(change) = sub_change(sdef, &sub_name, cur, new, explicit)? {
            plan.push((sdef.name.clone(), change));
        }
    }
    Ok(plan)
}

/// Applies planned sub-attribute changes to an object.
pub(super) fn apply_plan(target: &mut Map<String, Value>, plan: Vec<(String, Option<Value>)>) {
    for (key, v) in plan {
        match v {
            Some(v) => put(target, &key, v),
            None => {
                remove_all_ci(target, &key);
            }
        }
    }
}

/// The values of a multi-valued simple attribute `cur` with those of
/// `new` added, without duplicates.
pub(super) fn union(def: &Attribute, cur: Option<&Value>, new: Value) -> Value {
    let mut out: Vec<Value> = match cur {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other.clone()],
    };
    let mut keys: Vec<String> = out.iter().map(|v| value::key(def, v)).collect();
    let items = match new {
        Value::Array(items) => items,
        other => vec![other],
    };
    for item in items {
        let k = value::key(def, &item);
        if !keys.contains(&k) {
            keys.push(k);
            out.push(item);
        }
    }
    Value::Array(out)
}

/// Sets `obj[name]`, dropping members spelled differently.
pub(super) fn put(obj: &mut Map<String, Value>, name: &str, v: Value) {
    if obj.len() > 1 || !obj.contains_key(name) {
        let others: Vec<String> = obj
            .keys()
            .filter(|k| k.as_str() != name && k.eq_ignore_ascii_case(name))
            .cloned()
            .collect();
        for k in others {
            obj.shift_remove(&k);
        }
    }
    obj.insert(name.to_string(), v);
}

/// Removes every member named `name` in any case; the first one removed.
pub(super) fn remove_all_ci(obj: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let keys: Vec<String> = obj
        .keys()
        .filter(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .collect();
    let mut first = None;
    for k in keys {
        let v = obj.shift_remove(&k);
        if first.is_none() {
            first = v;
        }
    }
    first
}

/// Renames a member spelled differently to the canonical `name`.
pub(super) fn rename_ci(obj: &mut Map<String, Value>, name: &str) {
    if obj.contains_key(name) {
        return;
    }
    if let Some(v) = remove_all_ci(obj, name) {
        obj.insert(name.to_string(), v);
    }
}

pub(super) fn get_ci_mut<'m>(obj: &'m mut Map<String, Value>, name: &str) -> Option<&'m mut Value> {
    let key = key_ci(obj, name)?;
    obj.get_mut(&key)
}

/// The object member `key` of `obj`, made an empty object when missing or
/// not an object.
pub(super) fn object_slot(
    obj: &mut Map<String, Value>,
    key: String,
) -> Result<&mut Map<String, Value>> {
    let slot = obj.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
        .ok_or_else(|| Error::internal("a member just made an object is not one"))
}
