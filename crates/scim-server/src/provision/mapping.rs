//! The attribute mapping: our User document -> the document an application
//! should hold.

use serde_json::{Map, Value};

/// The core User schema URN.
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// Looks up a dotted path (`name.givenName`) in `doc`, case-insensitively.
fn get<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(doc, |v, key| {
        v.as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Sets a dotted path in `doc`, creating objects on the way.
fn set(doc: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts = path.split('.').peekable();
    let mut cur = doc;
    while let Some(key) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(key.to_owned(), value);
            return;
        }
        let entry = cur
            .entry(key.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        match entry.as_object_mut() {
            Some(next) => cur = next,
            None => return,
        }
    }
}

/// The document the application should hold for `source` under `mapping`
/// (target path -> source path or `{"constant": value}`). Unmapped and
/// absent source attributes are left out.
pub fn map_user(source: &Value, mapping: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    out.insert("schemas".into(), Value::Array(vec![USER_SCHEMA.into()]));
    for (target, rule) in mapping {
        let value = match rule {
            Value::String(path) => get(source, path).cloned(),
            Value::Object(o) => o.get("constant").cloned(),
            _ => None,
        };
        if let Some(v) = value.filter(|v| !v.is_null()) {
            set(&mut out, target, v);
        }
    }
    Value::Object(out)
}

/// Adds the application-side roles granted by assignments to a mapped
/// document as its RFC 7643 `roles` (`[{"value": role}]`). What the
/// mapping put in `roles` (the user's own roles, when the mapping maps
/// them) is kept as it is; a granted role it already lists is not added
/// twice. The list is sorted by `value` for a stable document. Without
/// granted roles the document is left as it is.
pub fn with_roles(mut doc: Value, roles: &[String]) -> Value {
    let Value::Object(out) = &mut doc else {
        return doc;
    };
    if roles.is_empty() {
        return doc;
    }
    let mut list: Vec<Value> = match out.remove("roles") {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => Vec::new(),
        Some(Value::String(s)) => vec![serde_json::json!({"value": s})],
        Some(other) => vec![other],
    };
    let value_of = |v: &Value| v.get("value").and_then(Value::as_str).map(str::to_owned);
    for role in roles {
        if !list.iter().any(|v| value_of(v).as_deref() == Some(role)) {
            list.push(serde_json::json!({ "value": role }));
        }
    }
    // Elements without a value last, in their order.
    list.sort_by_key(|v| (value_of(v).is_none(), value_of(v)));
    out.insert("roles".into(), Value::Array(list));
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_paths_constants_and_skips_absent() {
        let source = json!({"id": "u1", "userName": "alice", "name": {"givenName": "Alice"},
                            "active": true, "meta": {"version": "1"}});
        let mapping = json!({"userName": "userName", "externalId": "id",
                             "name.givenName": "NAME.givenName", "title": {"constant": "Staff"},
                             "nickName": "nickName"});
        assert_eq!(
            map_user(&source, mapping.as_object().unwrap()),
            json!({"schemas": [USER_SCHEMA], "userName": "alice", "externalId": "u1",
                   "name": {"givenName": "Alice"}, "title": "Staff"})
        );
    }

    #[test]
    fn granted_roles_are_added_sorted_and_once() {
        let mapped = json!({"schemas": [USER_SCHEMA], "userName": "alice"});
        let roles = ["viewer".to_owned(), "editor".to_owned()];
        assert_eq!(
            with_roles(mapped.clone(), &roles),
            json!({"schemas": [USER_SCHEMA], "userName": "alice",
                   "roles": [{"value": "editor"}, {"value": "viewer"}]})
        );
        assert_eq!(with_roles(mapped.clone(), &[]), mapped);
    }

    #[test]
    fn the_users_own_mapped_roles_are_kept() {
        let mapped = json!({"userName": "alice",
                            "roles": [{"value": "viewer", "display": "Viewer", "primary": true},
                                      {"value": "admin", "type": "local"}]});
        let roles = ["viewer".to_owned(), "billing".to_owned()];
        assert_eq!(
            with_roles(mapped, &roles),
            json!({"userName": "alice", "roles": [
                {"value": "admin", "type": "local"},
                {"value": "billing"},
                {"value": "viewer", "display": "Viewer", "primary": true}]})
        );
    }
}
