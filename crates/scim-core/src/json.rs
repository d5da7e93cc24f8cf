//! Case-insensitive access to attributes of JSON resources.
//!
//! SCIM attribute names are case-insensitive (RFC 7643 section 2.1), so
//! every lookup of a member by attribute name goes through these helpers.

use serde_json::{Map, Value};

use crate::schema::{AttrRef, Location};

/// The member of `obj` whose key equals `name` ignoring ASCII case, with its
/// actual key. An exact match wins over a case-insensitive one.
pub fn get_ci<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<(&'a String, &'a Value)> {
    if let Some((k, v)) = obj.get_key_value(name) {
        return Some((k, v));
    }
    obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))
}

/// The actual key in `obj` that equals `name` ignoring ASCII case.
pub fn key_ci(obj: &Map<String, Value>, name: &str) -> Option<String> {
    get_ci(obj, name).map(|(k, _)| k.clone())
}

/// Mutable access to the member whose key equals `name` ignoring ASCII case.
pub fn get_ci_mut<'a>(obj: &'a mut Map<String, Value>, name: &str) -> Option<&'a mut Value> {
    let key = key_ci(obj, name)?;
    obj.get_mut(&key)
}

/// Removes the member whose key equals `name` ignoring ASCII case.
pub fn remove_ci(obj: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let key = key_ci(obj, name)?;
    obj.shift_remove(&key)
}

/// The object holding the attribute's schema inside `resource`: the resource
/// itself for core and common attributes, the object under the extension
/// URN for extension attributes.
pub fn container<'a>(resource: &'a Value, attr: &AttrRef) -> Option<&'a Map<String, Value>> {
    let obj = resource.as_object()?;
    match attr.location() {
        Location::TopLevel => Some(obj),
        Location::Extension => get_ci(obj, attr.schema_urn())?.1.as_object(),
    }
}

/// The value of the top-level attribute of `attr` in `resource` (for a
/// sub-attribute path, the parent's value), if present and not null.
pub fn attribute_value<'a>(resource: &'a Value, attr: &AttrRef) -> Option<&'a Value> {
    let v = get_ci(container(resource, attr)?, &attr.attribute().name)?.1;
    (!v.is_null()).then_some(v)
}

/// Every leaf value the path `attr` reaches in `resource`, flattening
/// multi-valued attributes: for `emails.value` the `value` of each email, for
/// `emails` each email object, for `userName` the one string. Nulls and
/// missing members yield nothing.
pub fn values_at<'a>(resource: &'a Value, attr: &AttrRef) -> Vec<&'a Value> {
    let mut out = Vec::new();
    let Some(top) = attribute_value(resource, attr) else {
        return out;
    };
    let sub = attr.sub_attribute().map(|s| s.name.as_str());
    let mut push_leaf = |v: &'a Value| match v {
        Value::Null => {}
        Value::Array(items) => out.extend(items.iter().filter(|i| !i.is_null())),
        other => out.push(other),
    };
    let elements: Vec<&'a Value> = match top {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    for el in elements {
        match sub {
            None => push_leaf(el),
            Some(s) => {
                if let Some((_, v)) = el.as_object().and_then(|o| get_ci(o, s)) {
                    push_leaf(v);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SchemaRegistry;
    use serde_json::json;

    #[test]
    fn finds_values_case_insensitively() {
        let r = SchemaRegistry::core();
        let users = r.resource_schema("User").unwrap();
        let doc = json!({
            "UserName": "bjensen",
            "Emails": [{"Value": "a@x"}, {"value": "b@x"}, {"type": "home"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"Department": "R&D"}
        });
        let un = users.resolve("userName").unwrap();
        assert_eq!(values_at(&doc, &un), vec![&json!("bjensen")]);
        let ev = users.resolve("emails.value").unwrap();
        assert_eq!(values_at(&doc, &ev), vec![&json!("a@x"), &json!("b@x")]);
        let emails = users.resolve("emails").unwrap();
        assert_eq!(values_at(&doc, &emails).len(), 3);
        let dept = users.resolve("department").unwrap();
        assert_eq!(values_at(&doc, &dept), vec![&json!("R&D")]);
        let title = users.resolve("title").unwrap();
        assert!(values_at(&doc, &title).is_empty());
    }
}
