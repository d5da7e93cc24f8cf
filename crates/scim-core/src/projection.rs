//! Which attributes a response returns: the `attributes` and
//! `excludedAttributes` parameters (RFC 7644 sections 3.4.2.5 and 3.9) with
//! the schema's `returned` characteristic (RFC 7643 section 7).
//!
//! ```
//! use scim_core::projection::Projection;
//! use scim_core::schema::SchemaRegistry;
//! use serde_json::json;
//!
//! let registry = SchemaRegistry::core();
//! let users = registry.resource_schema("User").unwrap();
//! let stored = json!({
//!     "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
//!     "id": "2819c223",
//!     "userName": "bjensen",
//!     "password": "t1meMa$heen",
//!     "emails": [{"value": "bjensen@example.com", "type": "work"}],
//!     "meta": {"resourceType": "User"}
//! });
//!
//! // GET /Users/2819c223?attributes=emails.value
//! let p = Projection::new(&["emails.value"], &[] as &[&str], &users).unwrap();
//! assert_eq!(
//!     p.apply(&stored),
//!     json!({
//!         "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
//!         "id": "2819c223",
//!         "emails": [{"value": "bjensen@example.com"}]
//!     })
//! );
//!
//! // No parameters: everything but `never` (password) and `request` attributes.
//! let p = Projection::default_for(&users);
//! assert!(p.apply(&stored).get("password").is_none());
//! ```
//!
//! ## Rules
//!
//! - `returned: never` attributes (e.g. `password`) are never returned, even
//!   when requested.
//! - `returned: always` attributes (`id`, `schemas`) are always returned,
//!   even when not requested or when excluded.
//! - `returned: default` attributes are returned unless excluded; when
//!   `attributes` is given, only if named.
//! - `returned: request` attributes are returned only when named in `attributes`.
//! - The same rules apply to sub-attributes inside their parent. Naming a
//!   complex attribute (`name`, `emails`) names all of its sub-attributes;
//!   naming a sub-attribute (`emails.value`) keeps only that one (plus
//!   `always` ones) in each element. Naming a schema URN names every
//!   attribute of that schema (for an extension, its whole object).
//! - Names are case-insensitive, may be URN-qualified
//!   (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`)
//!   and may be unqualified extension attributes when unambiguous.
//!
//! ## Decisions where the RFC leaves room
//!
//! - Unknown but well-formed names are ignored: the client asked for an
//!   attribute the resource type does not have, and the response simply has
//!   no value for it (like an unassigned attribute). Malformed names (not
//!   `ATTRNAME[.ATTRNAME]` with an optional URN prefix) and unqualified names
//!   that are ambiguous between extensions are [`ErrorKind::InvalidPath`]
//!   errors, and giving both lists is an [`ErrorKind::InvalidValue`] error,
//!   since RFC 7644 section 3.9 calls them mutually exclusive.
//! - Members of the document that the schema does not define (possible
//!   when validation ignored unknown attributes) count as `returned:
//!   default`: kept without parameters or with `excludedAttributes`,
//!   dropped when `attributes` is given.
//! - A complex value or element left without members, an empty array and
//!   an extension object left empty are removed (they are unassigned, RFC
//!   7643 section 2.5). `schemas` is never changed: it lists the schemas
//!   that MAY appear (RFC 7643 section 3.3), so an extension URN stays even
//!   when the projection removed all of that extension's attributes.
//! - `request` attributes returned after a POST, PUT or PATCH "if specified
//!   by the client" are the server's call: pass them in `attributes`.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::messages::SearchRequest;
use crate::schema::{AttrRef, Attribute, ResourceSchema, Returned, Schema};

/// Which of `attributes` / `excludedAttributes` the client gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Default,
    Include,
    Exclude,
}

/// What happens to one attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AttrPlan {
    Drop,
    Keep {
        /// For each sub-attribute of the schema, whether it is kept.
        subs: Vec<bool>,
        /// Whether sub-attributes the schema does not define are kept.
        unknown_subs: bool,
    },
}

/// The plan for the attributes of one schema.
#[derive(Debug, Clone)]
struct SchemaPlan {
    schema: Arc<Schema>,
    is_extension: bool,
    attrs: Vec<AttrPlan>,
    /// For an extension object: whether members the schema does not define are kept.
    unknown: bool,
}

/// The names given by the client, resolved to schema positions.
#[derive(Debug, Default)]
struct Named {
    schemas: HashSet<usize>,
    attrs: HashSet<(usize, usize)>,
    subs: HashSet<(usize, usize, usize)>,
}

/// A compiled projection for one resource type: apply it to any number of
/// resources.
#[derive(Debug, Clone)]
pub struct Projection {
    mode: Mode,
    /// Common attributes, core schema, then each extension.
    plans: Vec<SchemaPlan>,
}

impl Projection {
    /// The projection for `attributes` / `excludedAttributes` (at most one
    /// of them non-empty). Entries may themselves be comma-separated lists.
    pub fn new<A: AsRef<str>, E: AsRef<str>>(
        attributes: &[A],
        excluded: &[E],
        rs: &ResourceSchema,
    ) -> Result<Self> {
        let attributes = split(attributes);
        let excluded = split(excluded);
        let (mode, names) = match (attributes.is_empty(), excluded.is_empty()) {
            (true, true) => (Mode::Default, Vec::new()),
            (false, true) => (Mode::Include, attributes),
            (true, false) => (Mode::Exclude, excluded),
            (false, false) => {
                return Err(Error::invalid_value(
                    "\"attributes\" and \"excludedAttributes\" are mutually exclusive",
                ));
            }
        };
        let schemas = schemas_of(rs);
        let mut named = Named::default();
        for name in &names {
            resolve_name(name, rs, &schemas, &mut named)?;
        }
        let plans = schemas
            .iter()
            .enumerate()
            .map(|(si, (schema, is_extension))| SchemaPlan {
                schema: schema.clone(),
                is_extension: *is_extension,
                attrs: schema
                    .attributes
                    .iter()
                    .enumerate()
                    .map(|(ai, a)| plan_attribute(mode, &named, si, ai, a))
                    .collect(),
                unknown: mode != Mode::Include || named.schemas.contains(&si),
            })
            .collect();
        Ok(Self { mode, plans })
    }

    /// The projection of a request without `attributes` or
    /// `excludedAttributes`: every attribute except `never` and `request` ones.
    pub fn default_for(rs: &ResourceSchema) -> Self {
        let schemas = schemas_of(rs);
        let named = Named::default();
        let plans = schemas
            .iter()
            .enumerate()
            .map(|(si, (schema, is_extension))| SchemaPlan {
                schema: schema.clone(),
                is_extension: *is_extension,
                attrs: schema
                    .attributes
                    .iter()
                    .enumerate()
                    .map(|(ai, a)| plan_attribute(Mode::Default, &named, si, ai, a))
                    .collect(),
                unknown: true,
            })
            .collect();
        Self {
            mode: Mode::Default,
            plans,
        }
    }

    /// The projection asked for by a query.
    pub fn from_search(search: &SearchRequest, rs: &ResourceSchema) -> Result<Self> {
        Self::new(&search.attributes, &search.excluded_attributes, rs)
    }

    /// Whether the projection may return values of `attr` (for a
    /// sub-attribute: of that sub-attribute). A server can use it to fetch
    /// less. Members unknown to the schema are not covered.
    pub fn includes(&self, attr: &AttrRef) -> bool {
        let Some(plan) = self
            .plans
            .iter()
            .find(|p| p.schema.id.eq_ignore_ascii_case(attr.schema_urn()))
        else {
            return false;
        };
        let Some(ai) = plan.schema.attribute_index(&attr.attribute().name) else {
            return false;
        };
        match (&plan.attrs[ai], attr.sub_attribute()) {
            (AttrPlan::Drop, _) => false,
            (AttrPlan::Keep { .. }, None) => true,
            (AttrPlan::Keep { subs, .. }, Some(sub)) => attr
                .attribute()
                .sub_attribute_index(&sub.name)
                .and_then(|j| subs.get(j).copied())
                .unwrap_or(false),
        }
    }

    /// Whether the client gave `attributes` (only named attributes and
    /// `always` ones are returned).
    pub fn is_explicit(&self) -> bool {
        self.mode == Mode::Include
    }

    /// The projected copy of `resource`. A value that is not a JSON object
    /// is returned unchanged.
    pub fn apply(&self, resource: &Value) -> Value {
        let Some(obj) = resource.as_object() else {
            return resource.clone();
        };
        let mut out = Map::with_capacity(obj.len());
        for (key, value) in obj {
            if let Some((plan, ai)) = self.top_level_attribute(key) {
                if let Some(v) =
                    project_attribute(&plan.schema.attributes[ai], &plan.attrs[ai], value)
                {
                    out.insert(key.clone(), v);
                }
            } else if let Some(plan) = self
                .plans
                .iter()
                .find(|p| p.is_extension && p.schema.id.eq_ignore_ascii_case(key))
            {
                if let Value::Object(ext) = value {
                    let projected = project_container(plan, ext);
                    if !projected.is_empty() {
                        out.insert(key.clone(), Value::Object(projected));
                    }
                } else if plan.unknown {
                    out.insert(key.clone(), value.clone());
                }
            } else if self.mode != Mode::Include {
                out.insert(key.clone(), value.clone());
            }
        }
        Value::Object(out)
    }

    fn top_level_attribute(&self, key: &str) -> Option<(&SchemaPlan, usize)> {
        self.plans
            .iter()
            .filter(|p| !p.is_extension)
            .find_map(|p| p.schema.attribute_index(key).map(|ai| (p, ai)))
    }
}

fn split<S: AsRef<str>>(names: &[S]) -> Vec<String> {
    crate::resource::serde_ci::split_names(names.iter().map(AsRef::as_ref))
}

/// The schemas of a resource type in plan order, with "is an extension".
fn schemas_of(rs: &ResourceSchema) -> Vec<(Arc<Schema>, bool)> {
    let mut out = vec![(rs.common().clone(), false), (rs.core().clone(), false)];
    out.extend(rs.extensions().iter().map(|(s, _)| (s.clone(), true)));
    out
}

fn resolve_name(
    name: &str,
    rs: &ResourceSchema,
    schemas: &[(Arc<Schema>, bool)],
    named: &mut Named,
) -> Result<()> {
    if let Some(si) = schemas
        .iter()
        .position(|(s, _)| s.id.eq_ignore_ascii_case(name))
    {
        named.schemas.insert(si);
        return Ok(());
    }
    match rs.resolve(name) {
        Ok(attr) => {
            let position = schemas
                .iter()
                .position(|(s, _)| s.id == attr.schema_urn())
                .and_then(|si| {
                    let ai = schemas[si].0.attribute_index(&attr.attribute().name)?;
                    Some((si, ai))
                });
            let Some((si, ai)) = position else {
                return Ok(());
            };
            match attr.sub_attribute() {
                None => {
                    named.attrs.insert((si, ai));
                }
                Some(sub) => {
                    if let Some(j) = attr.attribute().sub_attribute_index(&sub.name) {
                        named.subs.insert((si, ai, j));
                    }
                }
            }
            Ok(())
        }
        Err(_) if !well_formed(name) => Err(Error::new(
            ErrorKind::InvalidPath,
            format!("'{name}' is not an attribute name in standard attribute notation"),
        )),
        Err(_) => {
            let head = name.split('.').next().unwrap_or(name);
            let holders = rs
                .extensions()
                .iter()
                .filter(|(s, _)| s.attribute(head).is_some())
                .count();
            let top = rs.common().attribute(head).is_some() || rs.core().attribute(head).is_some();
            if !top && holders > 1 && !has_urn_prefix(name) {
                return Err(Error::invalid_path(format!(
                    "'{name}' is ambiguous between extension schemas; qualify it with the schema URN"
                )));
            }
            // Unknown attribute: ignored (see the module documentation).
            Ok(())
        }
    }
}

fn has_urn_prefix(name: &str) -> bool {
    name.get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

/// `ATTRNAME[.ATTRNAME]`, or anything URN-like without characters that
/// cannot appear in a URN-qualified attribute path.
fn well_formed(name: &str) -> bool {
    if has_urn_prefix(name) {
        return !name
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '[' | ']' | '(' | ')' | ','));
    }
    let attrname = |s: &str| {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '$' | '-' | '_'))
    };
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() <= 2 && parts.iter().all(|p| attrname(p))
}

fn plan_attribute(mode: Mode, named: &Named, si: usize, ai: usize, a: &Attribute) -> AttrPlan {
    let whole = named.schemas.contains(&si) || named.attrs.contains(&(si, ai));
    let sub_named = |j: usize| named.subs.contains(&(si, ai, j));
    let any_sub_named = (0..a.sub_attributes.len()).any(sub_named);
    let always = a.returned == Returned::Always;
    let kept = match (a.returned, mode) {
        (Returned::Never, _) => false,
        (Returned::Always, _) => true,
        (Returned::Default, Mode::Default) => true,
        (Returned::Default, Mode::Exclude) => !whole,
        (Returned::Default | Returned::Request, Mode::Include) => whole || any_sub_named,
        (Returned::Request, Mode::Default | Mode::Exclude) => false,
    };
    if !kept {
        return AttrPlan::Drop;
    }
    // In include mode an attribute kept only for `always`, or named as a
    // whole, returns all of its default sub-attributes.
    let full = mode != Mode::Include || whole || (always && !any_sub_named);
    let subs = a
        .sub_attributes
        .iter()
        .enumerate()
        .map(|(j, s)| match s.returned {
            Returned::Never => false,
            Returned::Always => true,
            Returned::Request => mode == Mode::Include && (whole || sub_named(j)),
            Returned::Default => match mode {
                Mode::Default => true,
                Mode::Include => full || sub_named(j),
                Mode::Exclude => always || !sub_named(j),
            },
        })
        .collect();
    AttrPlan::Keep {
        subs,
        unknown_subs: full,
    }
}

fn project_container(plan: &SchemaPlan, obj: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::with_capacity(obj.len());
    for (key, value) in obj {
        match plan.schema.attribute_index(key) {
            Some(ai) => {
                if let Some(v) =
                    project_attribute(&plan.schema.attributes[ai], &plan.attrs[ai], value)
                {
                    out.insert(key.clone(), v);
                }
            }
            None if plan.unknown => {
                out.insert(key.clone(), value.clone());
            }
            None => {}
        }
    }
    out
}

fn project_attribute(attr: &Attribute, plan: &AttrPlan, value: &Value) -> Option<Value> {
    let AttrPlan::Keep { subs, unknown_subs } = plan else {
        return None;
    };
    if attr.sub_attributes.is_empty() {
        return Some(value.clone());
    }
    let project_one = |v: &Value| -> Option<Value> {
        match v {
            Value::Object(o) => {
                let mut out = Map::with_capacity(o.len());
                for (k, sv) in o {
                    let keep = match attr.sub_attribute_index(k) {
                        Some(j) => subs.get(j).copied().unwrap_or(false),
                        None => *unknown_subs,
                    };
                    if keep {
                        out.insert(k.clone(), sv.clone());
                    }
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
            Value::Null => None,
            other => Some(other.clone()),
        }
    };
    match value {
        Value::Array(items) => {
            let out: Vec<Value> = items.iter().filter_map(project_one).collect();
            (!out.is_empty()).then_some(Value::Array(out))
        }
        other => project_one(other),
    }
}

/// The value of a top-level member, case-insensitively; for callers that
/// check what a projection left.
#[cfg(test)]
fn member<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    crate::json::get_ci(v.as_object()?, name).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ENTERPRISE_USER_SCHEMA, SchemaRegistry, USER_SCHEMA};
    use serde_json::json;

    const NONE: &[&str] = &[];

    fn users() -> Arc<ResourceSchema> {
        SchemaRegistry::core().resource_schema("User").unwrap()
    }

    fn bjensen() -> Value {
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "id": "2819c223",
            "externalId": "701984",
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "password": "secret",
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            ENTERPRISE_USER_SCHEMA: {
                "department": "Tour Operations",
                "manager": {"value": "26118915", "displayName": "John Smith"}
            },
            "meta": {"resourceType": "User", "version": "W/\"1\""}
        })
    }

    #[test]
    fn default_drops_never_and_keeps_everything_else() {
        let p = Projection::default_for(&users());
        let mut expected = bjensen();
        expected.as_object_mut().unwrap().shift_remove("password");
        assert_eq!(p.apply(&bjensen()), expected);
        assert!(!p.is_explicit());
        let same = Projection::new(NONE, NONE, &users()).unwrap();
        assert_eq!(same.apply(&bjensen()), expected);
    }

    #[test]
    fn password_is_never_returned_even_when_requested() {
        let p = Projection::new(&["password", "userName"], NONE, &users()).unwrap();
        assert_eq!(
            p.apply(&bjensen()),
            json!({"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "id": "2819c223", "userName": "bjensen"})
        );
        assert!(!p.includes(&users().resolve("password").unwrap()));
    }

    #[test]
    fn id_and_schemas_are_returned_even_when_excluded() {
        let p = Projection::new(
            NONE,
            &["id", "schemas", "userName", "emails", "name", "meta"],
            &users(),
        )
        .unwrap();
        let out = p.apply(&bjensen());
        assert_eq!(member(&out, "id"), Some(&json!("2819c223")));
        assert!(member(&out, "schemas").is_some());
        for gone in ["userName", "emails", "name", "meta", "password"] {
            assert!(member(&out, gone).is_none(), "{gone}");
        }
        assert_eq!(member(&out, "externalId"), Some(&json!("701984")));
        assert!(member(&out, ENTERPRISE_USER_SCHEMA).is_some());
    }

    #[test]
    fn sub_attribute_selection_in_multi_valued_complex_attributes() {
        let p = Projection::new(&["emails.value", "name.givenName"], NONE, &users()).unwrap();
        assert_eq!(
            p.apply(&bjensen()),
            json!({
                "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
                "id": "2819c223",
                "name": {"givenName": "Barbara"},
                "emails": [{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}]
            })
        );
        let rs = users();
        assert!(p.includes(&rs.resolve("emails").unwrap()));
        assert!(p.includes(&rs.resolve("emails.value").unwrap()));
        assert!(!p.includes(&rs.resolve("emails.type").unwrap()));
        assert!(!p.includes(&rs.resolve("userName").unwrap()));

        let p = Projection::new(NONE, &["emails.value", "emails.primary"], &users()).unwrap();
        assert_eq!(
            member(&p.apply(&bjensen()), "emails"),
            Some(&json!([{"type": "work"}, {"type": "home"}]))
        );
        // Elements without the selected sub-attribute disappear, and so does
        // an array left empty.
        let doc = json!({"id": "1", "emails": [{"type": "work"}], "name": {"familyName": "J"}});
        let p = Projection::new(&["emails.value", "name.givenName"], NONE, &users()).unwrap();
        assert_eq!(p.apply(&doc), json!({"id": "1"}));
    }

    #[test]
    fn extension_attributes_and_whole_extensions() {
        let rs = users();
        let p = Projection::new(
            &["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"],
            NONE,
            &rs,
        )
        .unwrap();
        assert_eq!(
            member(&p.apply(&bjensen()), ENTERPRISE_USER_SCHEMA),
            Some(&json!({"manager": {"value": "26118915"}}))
        );
        let p = Projection::new(&["department"], NONE, &rs).unwrap();
        assert_eq!(
            member(&p.apply(&bjensen()), ENTERPRISE_USER_SCHEMA),
            Some(&json!({"department": "Tour Operations"}))
        );
        let p = Projection::new(&[ENTERPRISE_USER_SCHEMA.to_ascii_lowercase()], NONE, &rs).unwrap();
        let out = p.apply(&bjensen());
        assert_eq!(
            member(&out, ENTERPRISE_USER_SCHEMA),
            member(&bjensen(), ENTERPRISE_USER_SCHEMA)
        );
        assert!(member(&out, "userName").is_none());
        // Excluding every attribute of the extension removes its object; `schemas` stays.
        let p = Projection::new(NONE, &[ENTERPRISE_USER_SCHEMA], &rs).unwrap();
        let out = p.apply(&bjensen());
        assert!(member(&out, ENTERPRISE_USER_SCHEMA).is_none());
        assert_eq!(member(&out, "schemas"), member(&bjensen(), "schemas"));
        let p = Projection::new(NONE, &["department", "manager"], &rs).unwrap();
        assert!(member(&p.apply(&bjensen()), ENTERPRISE_USER_SCHEMA).is_none());
        // The core schema URN names every core attribute.
        let p = Projection::new(&[USER_SCHEMA], NONE, &rs).unwrap();
        let out = p.apply(&bjensen());
        assert!(member(&out, "emails").is_some() && member(&out, "password").is_none());
        assert!(member(&out, ENTERPRISE_USER_SCHEMA).is_none());
    }

    #[test]
    fn names_are_case_insensitive_and_may_be_qualified() {
        let p = Projection::new(
            &[
                "USERNAME",
                "urn:ietf:params:scim:schemas:core:2.0:user:Name.GivenName",
            ],
            NONE,
            &users(),
        )
        .unwrap();
        assert_eq!(
            p.apply(&bjensen()),
            json!({
                "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
                "id": "2819c223",
                "userName": "bjensen",
                "name": {"givenName": "Barbara"}
            })
        );
        // Keys in the document in another case are matched too.
        let doc = json!({"ID": "1", "UserName": "b", "EMAILS": [{"VALUE": "x", "Type": "w"}]});
        let p = Projection::new(&["emails.value"], NONE, &users()).unwrap();
        assert_eq!(
            p.apply(&doc),
            json!({"ID": "1", "EMAILS": [{"VALUE": "x"}]})
        );
    }

    #[test]
    fn comma_separated_unknown_and_malformed_names() {
        let p = Projection::new(
            &["userName, nickName2", "urn:example:nope:attr"],
            NONE,
            &users(),
        )
        .unwrap();
        assert_eq!(
            p.apply(&bjensen()),
            json!({"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "id": "2819c223", "userName": "bjensen"})
        );
        for bad in [
            "emails[type eq \"work\"]",
            "a b",
            "name.givenName.x",
            "9lives",
        ] {
            let e = Projection::new(&[bad], NONE, &users()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidPath, "{bad}");
        }
        let e = Projection::new(&["userName"], &["emails"], &users()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
    }

    #[test]
    fn request_attributes_only_when_named() {
        let mut registry = SchemaRegistry::core();
        let id = registry
            .add_schema_json(
                r#"{"id": "urn:example:params:scim:schemas:extension:acme:2.0:User",
                    "attributes": [
                      {"name": "badge", "type": "string", "returned": "request"},
                      {"name": "floor", "type": "integer"},
                      {"name": "access", "type": "complex", "subAttributes": [
                        {"name": "code", "type": "string", "returned": "request"},
                        {"name": "zone", "type": "string"},
                        {"name": "pin", "type": "string", "returned": "never"}]}]}"#,
            )
            .unwrap();
        registry.add_extension("User", &id, false).unwrap();
        let rs = registry.resource_schema("User").unwrap();
        let doc = json!({
            "id": "1",
            "urn:example:params:scim:schemas:extension:acme:2.0:User": {
                "badge": "B-7", "floor": 3, "access": {"code": "c", "zone": "z", "pin": "0000"}
            }
        });
        let ext = |v: &Value| member(v, &id).cloned();
        assert_eq!(
            ext(&Projection::default_for(&rs).apply(&doc)),
            Some(json!({"floor": 3, "access": {"zone": "z"}}))
        );
        assert_eq!(
            ext(&Projection::new(NONE, &["floor"], &rs).unwrap().apply(&doc)),
            Some(json!({"access": {"zone": "z"}}))
        );
        assert_eq!(
            ext(&Projection::new(&["badge", "access"], NONE, &rs)
                .unwrap()
                .apply(&doc)),
            Some(json!({"badge": "B-7", "access": {"code": "c", "zone": "z"}}))
        );
        assert_eq!(
            ext(&Projection::new(&["access.code"], NONE, &rs)
                .unwrap()
                .apply(&doc)),
            Some(json!({"access": {"code": "c"}}))
        );
    }

    #[test]
    fn unknown_members_follow_default_rules() {
        let doc = json!({"id": "1", "userName": "b", "custom": 1, "urn:example:x": {"a": 1}});
        let rs = users();
        assert_eq!(Projection::default_for(&rs).apply(&doc), doc);
        assert_eq!(
            Projection::new(NONE, &["userName"], &rs)
                .unwrap()
                .apply(&doc),
            json!({"id": "1", "custom": 1, "urn:example:x": {"a": 1}})
        );
        assert_eq!(
            Projection::new(&["userName"], NONE, &rs)
                .unwrap()
                .apply(&doc),
            json!({"id": "1", "userName": "b"})
        );
        assert_eq!(Projection::default_for(&rs).apply(&json!([1])), json!([1]));
    }

    #[test]
    fn from_search_request() {
        let q = SearchRequest::from_query_pairs([("excludedAttributes", "emails,meta")]).unwrap();
        let p = Projection::from_search(&q, &users()).unwrap();
        let out = p.apply(&bjensen());
        assert!(member(&out, "emails").is_none() && member(&out, "meta").is_none());
        assert!(member(&out, "userName").is_some());
    }
}
