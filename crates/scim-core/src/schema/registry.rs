//! The schema registry: which schemas and resource types exist, and which
//! attribute a (possibly URN-qualified, any-case) path names.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

use super::model::{Attribute, AttributeType, ResourceType, Schema, SchemaExtension};
use crate::error::{Error, Result};

/// URN of the core User schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// URN of the core Group schema.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// URN of the enterprise User extension.
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// URN of our pseudo-schema holding the RFC 7643 section 3.1 common
/// attributes (`id`, `externalId`, `schemas`, `meta`), which sit at the top
/// level of every resource.
pub const COMMON_SCHEMA: &str = "urn:scim-platform:params:scim:schemas:common";

const EMBEDDED_SCHEMAS: &[&str] = &[
    include_str!("../../../../scim-schemas/common.json"),
    include_str!("../../../../scim-schemas/user.json"),
    include_str!("../../../../scim-schemas/group.json"),
    include_str!("../../../../scim-schemas/enterprise-user.json"),
    include_str!("../../../../scim-schemas/service-provider-config.json"),
    include_str!("../../../../scim-schemas/resource-type.json"),
    include_str!("../../../../scim-schemas/schema.json"),
];

const EMBEDDED_RESOURCE_TYPES: &[&str] = &[
    include_str!("../../../../scim-schemas/resource-types/user.json"),
    include_str!("../../../../scim-schemas/resource-types/group.json"),
];

/// All known schemas and resource types.
///
/// ```
/// use scim_core::schema::{SchemaRegistry, AttributeType};
///
/// let registry = SchemaRegistry::core();
/// let users = registry.resource_schema("User").unwrap();
/// let attr = users.resolve("NAME.givenname").unwrap();
/// assert_eq!(attr.path(), "name.givenName");
/// assert_eq!(attr.target().ty, AttributeType::String);
///
/// let dept = users
///     .resolve("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department")
///     .unwrap();
/// assert!(dept.is_extension());
/// ```
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    schemas: BTreeMap<String, Arc<Schema>>,
    resource_types: Vec<ResourceType>,
    resolved: Vec<Arc<ResourceSchema>>,
}

impl SchemaRegistry {
    /// The registry of the embedded RFC 7643 schemas and the User and Group
    /// resource types (User with the enterprise extension).
    ///
    /// The embedded files are parsed once per process; each call returns a
    /// cheap clone (the schemas are shared behind `Arc`s) that the caller may
    /// extend without affecting other copies.
    pub fn core() -> Self {
        static CORE: LazyLock<SchemaRegistry> = LazyLock::new(SchemaRegistry::parse_embedded);
        CORE.clone()
    }

    fn parse_embedded() -> Self {
        let mut registry = Self {
            schemas: BTreeMap::new(),
            resource_types: Vec::new(),
            resolved: Vec::new(),
        };
        for json in EMBEDDED_SCHEMAS {
            // The embedded files are checked by this crate's tests; a broken
            // one is a build defect, not a run-time condition.
            #[allow(clippy::expect_used)] // reason: embedded data, covered by tests
            let schema = Schema::from_json(json).expect("embedded schema is valid");
            registry
                .schemas
                .insert(schema.id.to_ascii_lowercase(), Arc::new(schema));
        }
        for json in EMBEDDED_RESOURCE_TYPES {
            #[allow(clippy::expect_used)] // reason: embedded data, covered by tests
            let rt = ResourceType::from_json(json).expect("embedded resource type is valid");
            registry.resource_types.push(rt);
        }
        #[allow(clippy::expect_used)] // reason: embedded data, covered by tests
        registry.rebuild().expect("embedded resource types resolve");
        registry
    }

    /// Adds (or replaces) a schema given in the RFC 7643 JSON representation.
    /// Returns the schema id.
    pub fn add_schema_json(&mut self, json: &str) -> Result<String> {
        let schema = Schema::from_json(json)?;
        self.add_schema(schema)
    }

    /// Adds (or replaces) a schema. Returns the schema id.
    pub fn add_schema(&mut self, schema: Schema) -> Result<String> {
        schema.check()?;
        let id = schema.id.clone();
        let previous = self
            .schemas
            .insert(id.to_ascii_lowercase(), Arc::new(schema));
        if let Err(e) = self.rebuild() {
            // Restore the registry as it was.
            match previous {
                Some(p) => self.schemas.insert(id.to_ascii_lowercase(), p),
                None => self.schemas.remove(&id.to_ascii_lowercase()),
            };
            self.rebuild()?;
            return Err(e);
        }
        Ok(id)
    }

    /// Adds (or replaces, by id) a resource type. Its schemas must be known.
    pub fn add_resource_type(&mut self, rt: ResourceType) -> Result<()> {
        let old = self.resource_types.clone();
        match self
            .resource_types
            .iter_mut()
            .find(|r| r.id.eq_ignore_ascii_case(&rt.id))
        {
            Some(existing) => *existing = rt,
            None => self.resource_types.push(rt),
        }
        if let Err(e) = self.rebuild() {
            self.resource_types = old;
            self.rebuild()?;
            return Err(e);
        }
        Ok(())
    }

    /// Declares `schema` (already added) as an extension of the resource
    /// type `resource_type`.
    pub fn add_extension(
        &mut self,
        resource_type: &str,
        schema: &str,
        required: bool,
    ) -> Result<()> {
        let mut rt = self
            .resource_types
            .iter()
            .find(|r| r.id.eq_ignore_ascii_case(resource_type))
            .cloned()
            .ok_or_else(|| Error::not_found(format!("unknown resource type '{resource_type}'")))?;
        rt.schema_extensions
            .retain(|e| !e.schema.eq_ignore_ascii_case(schema));
        rt.schema_extensions.push(SchemaExtension {
            schema: schema.to_string(),
            required,
        });
        self.add_resource_type(rt)
    }

    fn rebuild(&mut self) -> Result<()> {
        let common = self.require(COMMON_SCHEMA)?;
        let mut resolved = Vec::with_capacity(self.resource_types.len());
        for rt in &self.resource_types {
            let core = self.require(&rt.schema)?;
            let mut extensions = Vec::new();
            for ext in &rt.schema_extensions {
                extensions.push((self.require(&ext.schema)?, ext.required));
            }
            resolved.push(Arc::new(ResourceSchema {
                resource_type: rt.clone(),
                common: common.clone(),
                core,
                extensions,
            }));
        }
        self.resolved = resolved;
        Ok(())
    }

    fn require(&self, id: &str) -> Result<Arc<Schema>> {
        self.schema(id)
            .ok_or_else(|| Error::invalid_value(format!("unknown schema '{id}'")))
    }

    /// A schema by URN, case-insensitively.
    pub fn schema(&self, id: &str) -> Option<Arc<Schema>> {
        self.schemas.get(&id.to_ascii_lowercase()).cloned()
    }

    /// Every schema, except the internal common-attributes pseudo-schema.
    pub fn schemas(&self) -> impl Iterator<Item = &Arc<Schema>> {
        self.schemas
            .values()
            .filter(|s| !s.id.eq_ignore_ascii_case(COMMON_SCHEMA))
    }

    /// Every resource type.
    pub fn resource_types(&self) -> &[ResourceType] {
        &self.resource_types
    }

    /// The resolved view of a resource type, by id, name or endpoint
    /// (`User`, `/Users`, `Users`), case-insensitively.
    pub fn resource_schema(&self, name: &str) -> Option<Arc<ResourceSchema>> {
        let trimmed = name.trim_start_matches('/');
        self.resolved
            .iter()
            .find(|r| {
                let rt = &r.resource_type;
                rt.id.eq_ignore_ascii_case(trimmed)
                    || rt.name.eq_ignore_ascii_case(trimmed)
                    || rt
                        .endpoint
                        .trim_start_matches('/')
                        .eq_ignore_ascii_case(trimmed)
            })
            .cloned()
    }

    /// The resolved view of the resource type whose core schema is `urn`.
    pub fn resource_schema_for(&self, urn: &str) -> Option<Arc<ResourceSchema>> {
        self.resolved
            .iter()
            .find(|r| r.core.id.eq_ignore_ascii_case(urn))
            .cloned()
    }
}

impl Default for SchemaRegistry {
    fn default() -> Self {
        Self::core()
    }
}

/// Everything needed to interpret one type of resource: its resource type,
/// core schema, extension schemas and the common attributes.
#[derive(Debug, Clone)]
pub struct ResourceSchema {
    resource_type: ResourceType,
    common: Arc<Schema>,
    core: Arc<Schema>,
    extensions: Vec<(Arc<Schema>, bool)>,
}

impl ResourceSchema {
    /// The resource type.
    pub fn resource_type(&self) -> &ResourceType {
        &self.resource_type
    }

    /// The core schema.
    pub fn core(&self) -> &Arc<Schema> {
        &self.core
    }

    /// The common-attributes pseudo-schema.
    pub fn common(&self) -> &Arc<Schema> {
        &self.common
    }

    /// The extension schemas and whether each is required.
    pub fn extensions(&self) -> &[(Arc<Schema>, bool)] {
        &self.extensions
    }

    /// The extension schema with this URN, case-insensitively.
    pub fn extension(&self, urn: &str) -> Option<&Arc<Schema>> {
        self.extensions
            .iter()
            .map(|(s, _)| s)
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// Whether `urn` is the core schema or one of the extensions.
    pub fn has_schema(&self, urn: &str) -> bool {
        self.core.id.eq_ignore_ascii_case(urn) || self.extension(urn).is_some()
    }

    /// The core schema, the extensions and the common attributes, in the
    /// order unqualified names are looked up (common, core, extensions).
    fn lookup_order(&self) -> impl Iterator<Item = (&Arc<Schema>, Location)> {
        std::iter::once((&self.common, Location::TopLevel))
            .chain(std::iter::once((&self.core, Location::TopLevel)))
            .chain(
                self.extensions
                    .iter()
                    .map(|(s, _)| (s, Location::Extension)),
            )
    }

    /// The schema whose URN prefixes `path` followed by `:` (the longest
    /// match), with the rest of the path after the colon.
    pub fn split_urn<'p>(&self, path: &'p str) -> Option<(&Arc<Schema>, Location, &'p str)> {
        let mut best: Option<(&Arc<Schema>, Location, &'p str)> = None;
        for (schema, loc) in self.lookup_order() {
            let id = &schema.id;
            if path.len() > id.len()
                && path.is_char_boundary(id.len())
                && path[..id.len()].eq_ignore_ascii_case(id)
                && path.as_bytes()[id.len()] == b':'
                && best.is_none_or(|(b, _, _)| b.id.len() < id.len())
            {
                best = Some((schema, loc, &path[id.len() + 1..]));
            }
        }
        best
    }

    /// Resolves an attribute path (`userName`, `name.givenName`,
    /// `urn:...:User:userName`, `urn:...:enterprise:2.0:User:manager.value`)
    /// to the attribute it names. Names match case-insensitively. Errors are
    /// [`crate::ErrorKind::InvalidPath`]; callers that resolve filter paths
    /// re-label them.
    pub fn resolve(&self, path: &str) -> Result<AttrRef> {
        if path.is_empty() {
            return Err(Error::invalid_path("empty attribute path"));
        }
        if path
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        {
            let Some((schema, loc, rest)) = self.split_urn(path) else {
                return Err(Error::invalid_path(format!(
                    "'{path}' does not name an attribute of a schema of resource type '{}'",
                    self.resource_type.name
                )));
            };
            let (name, sub) = split_sub(rest);
            return resolve_in(schema, loc, name, sub)
                .ok_or_else(|| unknown_attribute(path, &self.resource_type.name));
        }
        let (name, sub) = split_sub(path);
        let mut found: Option<AttrRef> = None;
        for (schema, loc) in self.lookup_order() {
            if let Some(a) = resolve_in(schema, loc, name, sub) {
                if loc == Location::TopLevel {
                    return Ok(a);
                }
                if found.is_some() {
                    return Err(Error::invalid_path(format!(
                        "'{path}' is ambiguous between extension schemas; qualify it with the schema URN"
                    )));
                }
                found = Some(a);
            }
        }
        found.ok_or_else(|| unknown_attribute(path, &self.resource_type.name))
    }

    /// Resolves a sub-attribute name relative to a complex attribute, as in
    /// a value filter `emails[type eq "work"]`.
    pub fn resolve_sub(&self, parent: &AttrRef, name: &str) -> Result<AttrRef> {
        parent.sub(name).ok_or_else(|| {
            Error::invalid_path(format!("'{}' has no sub-attribute '{name}'", parent.path()))
        })
    }
}

fn split_sub(path: &str) -> (&str, Option<&str>) {
    match path.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (path, None),
    }
}

fn unknown_attribute(path: &str, rt: &str) -> Error {
    Error::invalid_path(format!(
        "unknown attribute '{path}' for resource type '{rt}'"
    ))
}

fn resolve_in(
    schema: &Arc<Schema>,
    loc: Location,
    name: &str,
    sub: Option<&str>,
) -> Option<AttrRef> {
    let attr = schema.attribute_index(name)?;
    let sub = match sub {
        None => None,
        Some(s) => Some(schema.attributes[attr].sub_attribute_index(s)?),
    };
    Some(AttrRef {
        schema: schema.clone(),
        location: loc,
        attr,
        sub,
    })
}

/// Where a schema's attributes sit in a resource document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Location {
    /// At the top level (core schema and common attributes).
    TopLevel,
    /// Inside an object keyed by the extension schema URN.
    Extension,
}

/// A resolved reference to an attribute or sub-attribute of a schema.
/// Cheap to clone; compares by schema id and position.
#[derive(Clone)]
pub struct AttrRef {
    schema: Arc<Schema>,
    location: Location,
    attr: usize,
    sub: Option<usize>,
}

impl AttrRef {
    /// The schema that defines the attribute.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// The URN of the schema that defines the attribute.
    pub fn schema_urn(&self) -> &str {
        &self.schema.id
    }

    /// Whether the attribute belongs to an extension schema (and so sits in
    /// the resource under the schema URN key).
    pub fn is_extension(&self) -> bool {
        self.location == Location::Extension
    }

    /// Where the attribute's schema sits in a resource document.
    pub fn location(&self) -> Location {
        self.location
    }

    /// The top-level attribute (the parent when this names a sub-attribute).
    pub fn attribute(&self) -> &Attribute {
        &self.schema.attributes[self.attr]
    }

    /// The sub-attribute, when the path names one.
    pub fn sub_attribute(&self) -> Option<&Attribute> {
        self.sub.map(|s| &self.attribute().sub_attributes[s])
    }

    /// The attribute the path ends at: the sub-attribute if any, else the attribute.
    pub fn target(&self) -> &Attribute {
        self.sub_attribute().unwrap_or_else(|| self.attribute())
    }

    /// Whether the path names a sub-attribute.
    pub fn has_sub(&self) -> bool {
        self.sub.is_some()
    }

    /// The same attribute without its sub-attribute.
    pub fn parent(&self) -> AttrRef {
        AttrRef {
            sub: None,
            ..self.clone()
        }
    }

    /// A sub-attribute of this (top-level, complex) attribute, by name,
    /// case-insensitively. `None` if this already names a sub-attribute or
    /// has no such sub-attribute.
    pub fn sub(&self, name: &str) -> Option<AttrRef> {
        if self.sub.is_some() {
            return None;
        }
        let sub = self.attribute().sub_attribute_index(name)?;
        Some(AttrRef {
            sub: Some(sub),
            ..self.clone()
        })
    }

    /// Whether the values are compared case-sensitively: the target's
    /// `caseExact` characteristic, except that binary values are always case
    /// exact (RFC 7643 section 2.3.6: "A binary is case exact"; base64 text
    /// that differs only in case encodes different bytes).
    pub fn case_exact(&self) -> bool {
        let target = self.target();
        target.case_exact || target.ty == AttributeType::Binary
    }

    /// Whether the value found at this path can be a list: the attribute
    /// or, for a sub-attribute, its parent is multi-valued.
    pub fn is_multi_valued(&self) -> bool {
        self.attribute().multi_valued || self.target().multi_valued
    }

    /// The canonical names, without URN: `name` or `name.sub`.
    pub fn short_path(&self) -> String {
        match self.sub_attribute() {
            Some(s) => format!("{}.{}", self.attribute().name, s.name),
            None => self.attribute().name.clone(),
        }
    }

    /// The canonical path: URN-qualified for extension attributes
    /// (`urn:...:enterprise:2.0:User:manager.value`), plain for core ones.
    pub fn path(&self) -> String {
        match self.location {
            Location::TopLevel => self.short_path(),
            Location::Extension => format!("{}:{}", self.schema.id, self.short_path()),
        }
    }

    /// The fully qualified path, always with the schema URN (the common
    /// attributes keep their plain names).
    pub fn qualified_path(&self) -> String {
        if self.schema.id == COMMON_SCHEMA {
            self.short_path()
        } else {
            format!("{}:{}", self.schema.id, self.short_path())
        }
    }
}

impl PartialEq for AttrRef {
    fn eq(&self, other: &Self) -> bool {
        self.schema.id == other.schema.id && self.attr == other.attr && self.sub == other.sub
    }
}

impl Eq for AttrRef {}

impl std::hash::Hash for AttrRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.schema.id.hash(state);
        self.attr.hash(state);
        self.sub.hash(state);
    }
}

impl fmt::Debug for AttrRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AttrRef({})", self.path())
    }
}

impl fmt::Display for AttrRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{AttributeType, Mutability, Returned, Uniqueness};

    #[test]
    fn embedded_schemas_load() {
        let r = SchemaRegistry::core();
        for id in [
            USER_SCHEMA,
            GROUP_SCHEMA,
            ENTERPRISE_USER_SCHEMA,
            COMMON_SCHEMA,
        ] {
            assert!(r.schema(id).is_some(), "{id}");
        }
        assert_eq!(r.resource_types().len(), 2);
        assert_eq!(r.schemas().count(), 6);
    }

    // Found by the `http_request` fuzz target (`sortBy` with a character
    // spanning byte 4): the `urn:` prefix check sliced inside it and panicked.
    #[test]
    fn paths_with_multibyte_characters_near_the_urn_prefix_are_errors() {
        let r = SchemaRegistry::core();
        let users = r.resource_schema("/Users").unwrap();
        for path in ["ur\u{20ac}x", "urn\u{e9}x", "\u{20ac}", "u\u{1f600}:x"] {
            assert!(users.resolve(path).is_err(), "{path}");
        }
    }

    #[test]
    fn user_schema_characteristics() {
        let r = SchemaRegistry::core();
        let users = r.resource_schema("/Users").unwrap();
        let user_name = users.resolve("username").unwrap();
        let a = user_name.target();
        assert_eq!(a.name, "userName");
        assert!(a.required);
        assert_eq!(a.uniqueness, Uniqueness::Server);
        assert!(!a.case_exact);
        let password = users.resolve("password").unwrap();
        assert_eq!(password.target().returned, Returned::Never);
        assert_eq!(password.target().mutability, Mutability::WriteOnly);
        let groups = users.resolve("groups.value").unwrap();
        assert_eq!(groups.target().mutability, Mutability::ReadOnly);
        assert!(groups.is_multi_valued());
        let id = users.resolve("ID").unwrap();
        assert_eq!(id.target().returned, Returned::Always);
        assert!(id.case_exact());
        let modified = users.resolve("meta.lastModified").unwrap();
        assert_eq!(modified.target().ty, AttributeType::DateTime);
        assert_eq!(modified.path(), "meta.lastModified");
    }

    #[test]
    fn urn_qualified_paths_are_not_split_at_the_version_dot() {
        let r = SchemaRegistry::core();
        let users = r.resource_schema("User").unwrap();
        let m = users
            .resolve("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value")
            .unwrap();
        assert!(m.is_extension());
        assert_eq!(m.short_path(), "manager.value");
        let core = users
            .resolve("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:name.familyName")
            .unwrap();
        assert!(!core.is_extension());
        assert_eq!(core.path(), "name.familyName");
        // Unqualified extension attribute resolves when unambiguous.
        assert!(users.resolve("department").unwrap().is_extension());
        assert!(users.resolve("urn:example:unknown:attr").is_err());
        assert!(users.resolve("name.nope").is_err());
        assert!(users.resolve("nope").is_err());
        // A Group does not see User attributes.
        let groups = r.resource_schema("Groups").unwrap();
        assert!(groups.resolve("userName").is_err());
        assert!(groups.resolve("members.value").is_ok());
    }

    #[test]
    fn extension_schemas_load_at_run_time() {
        let mut r = SchemaRegistry::core();
        let id = r
            .add_schema_json(
                r#"{"id":"urn:example:params:scim:schemas:extension:acme:2.0:User",
                    "name":"Acme","attributes":[
                      {"name":"badge","type":"integer"},
                      {"name":"costCenter","type":"string"},
                      {"name":"region","type":"string","canonicalValues":[]}]}"#,
            )
            .unwrap();
        r.add_extension("User", &id, false).unwrap();
        let users = r.resource_schema("User").unwrap();
        let badge = users
            .resolve("urn:example:params:scim:schemas:extension:acme:2.0:User:BADGE")
            .unwrap();
        assert_eq!(badge.target().ty, AttributeType::Integer);
        let region = users.resolve("region").unwrap();
        assert_eq!(region.target().canonical_strings(), None);
        // costCenter now exists in two extensions: an unqualified name is ambiguous.
        let err = users.resolve("costCenter").unwrap_err();
        assert!(err.detail().contains("ambiguous"), "{err}");
        // A broken schema is refused and leaves the registry intact.
        assert!(
            r.add_schema_json(r#"{"id":"not-a-urn","attributes":[]}"#)
                .is_err()
        );
        assert!(r.add_extension("User", "urn:missing", false).is_err());
        assert!(r.resource_schema("User").unwrap().resolve("badge").is_ok());
    }
}
