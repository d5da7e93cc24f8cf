//! The RFC 7643 schema model: schemas, attributes and their characteristics,
//! and resource types, with serde in the RFC's own JSON representation.
//!
//! Characteristics the JSON omits take the RFC 7643 section 2.2 defaults.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// The schema URN of the Schema resource itself.
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
/// The schema URN of a ResourceType resource.
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";

/// A SCIM schema (RFC 7643 section 7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    /// The schema URN, e.g. `urn:ietf:params:scim:schemas:core:2.0:User`.
    pub id: String,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The top-level attributes.
    #[serde(default)]
    pub attributes: Vec<Attribute>,
}

impl Schema {
    /// Parses a schema from its RFC 7643 JSON representation and checks it.
    pub fn from_json(json: &str) -> Result<Self> {
        let schema: Schema = serde_json::from_str(json)
            .map_err(|e| Error::invalid_syntax(format!("schema is not valid: {e}")))?;
        schema.check()?;
        Ok(schema)
    }

    /// Finds a top-level attribute by name, case-insensitively.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Index of a top-level attribute by name, case-insensitively.
    pub fn attribute_index(&self, name: &str) -> Option<usize> {
        self.attributes
            .iter()
            .position(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Checks the structural rules a usable schema must meet: a URN id,
    /// unique attribute names (case-insensitively), sub-attributes only on
    /// complex attributes and only one level deep.
    pub fn check(&self) -> Result<()> {
        if !self.id.to_ascii_lowercase().starts_with("urn:") {
            return Err(Error::invalid_value(format!(
                "schema id '{}' is not a URN",
                self.id
            )));
        }
        check_names(&self.id, &self.attributes)?;
        for a in &self.attributes {
            if a.ty != AttributeType::Complex && !a.sub_attributes.is_empty() {
                return Err(Error::invalid_value(format!(
                    "attribute '{}' of schema '{}' has sub-attributes but is not complex",
                    a.name, self.id
                )));
            }
            check_names(&self.id, &a.sub_attributes)?;
            // The Schema meta-schema itself is the one RFC-defined exception
            // (`attributes.subAttributes` is complex).
            if self.id == SCHEMA_SCHEMA {
                continue;
            }
            for s in &a.sub_attributes {
                if s.ty == AttributeType::Complex || !s.sub_attributes.is_empty() {
                    return Err(Error::invalid_value(format!(
                        "sub-attribute '{}.{}' of schema '{}' is complex; SCIM allows one level",
                        a.name, s.name, self.id
                    )));
                }
            }
        }
        Ok(())
    }
}

fn check_names(schema: &str, attrs: &[Attribute]) -> Result<()> {
    for (i, a) in attrs.iter().enumerate() {
        let valid = a.name.chars().enumerate().all(|(j, c)| {
            c.is_ascii_alphabetic()
                || (j > 0 && (c.is_ascii_digit() || c == '_' || c == '-'))
                || (j == 0 && c == '$')
        });
        if a.name.is_empty() || !valid {
            return Err(Error::invalid_value(format!(
                "attribute name '{}' in schema '{schema}' is not a valid ATTRNAME",
                a.name
            )));
        }
        if attrs[..i]
            .iter()
            .any(|b| b.name.eq_ignore_ascii_case(&a.name))
        {
            return Err(Error::invalid_value(format!(
                "attribute '{}' is defined twice in schema '{schema}'",
                a.name
            )));
        }
    }
    Ok(())
}

/// An attribute definition with its characteristics (RFC 7643 section 2.2 and 7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribute {
    /// The attribute name, e.g. `userName` or `$ref`.
    pub name: String,
    /// The data type.
    #[serde(rename = "type", default)]
    pub ty: AttributeType,
    /// Whether the attribute holds a list of values.
    #[serde(default)]
    pub multi_valued: bool,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether the attribute must be present.
    #[serde(default)]
    pub required: bool,
    /// Suggested values. Absent or empty means any value is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical_values: Option<Vec<Value>>,
    /// Whether string comparisons are case-sensitive.
    #[serde(default)]
    pub case_exact: bool,
    /// When the attribute may be changed.
    #[serde(default)]
    pub mutability: Mutability,
    /// When the attribute is returned.
    #[serde(default)]
    pub returned: Returned,
    /// How the service provider enforces uniqueness.
    #[serde(default)]
    pub uniqueness: Uniqueness,
    /// For references: the resource types or `external` / `uri` it may point at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_types: Option<Vec<String>>,
    /// For complex attributes: the sub-attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_attributes: Vec<Attribute>,
}

impl Attribute {
    /// A new attribute with the RFC 7643 section 2.2 defaults.
    pub fn new(name: impl Into<String>, ty: AttributeType) -> Self {
        Self {
            name: name.into(),
            ty,
            multi_valued: false,
            description: None,
            required: false,
            canonical_values: None,
            case_exact: false,
            mutability: Mutability::default(),
            returned: Returned::default(),
            uniqueness: Uniqueness::default(),
            reference_types: None,
            sub_attributes: Vec::new(),
        }
    }

    /// Finds a sub-attribute by name, case-insensitively.
    pub fn sub_attribute(&self, name: &str) -> Option<&Attribute> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Index of a sub-attribute by name, case-insensitively.
    pub fn sub_attribute_index(&self, name: &str) -> Option<usize> {
        self.sub_attributes
            .iter()
            .position(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Whether the attribute is complex.
    pub fn is_complex(&self) -> bool {
        self.ty == AttributeType::Complex
    }

    /// The canonical values as strings, if the attribute restricts its values.
    /// `None` when the list is absent or empty ("any value").
    pub fn canonical_strings(&self) -> Option<Vec<&str>> {
        let values = self.canonical_values.as_ref()?;
        if values.is_empty() {
            return None;
        }
        Some(values.iter().filter_map(Value::as_str).collect())
    }
}

/// The SCIM data types (RFC 7643 section 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttributeType {
    /// A Unicode string.
    #[default]
    String,
    /// `true` or `false`.
    Boolean,
    /// A real number.
    Decimal,
    /// A whole number.
    Integer,
    /// An xsd:dateTime instant.
    DateTime,
    /// Base64-encoded bytes.
    Binary,
    /// A URI.
    Reference,
    /// A structure of sub-attributes.
    Complex,
}

impl AttributeType {
    /// The RFC spelling of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Boolean => "boolean",
            Self::Decimal => "decimal",
            Self::Integer => "integer",
            Self::DateTime => "dateTime",
            Self::Binary => "binary",
            Self::Reference => "reference",
            Self::Complex => "complex",
        }
    }
}

/// When an attribute may be written (RFC 7643 section 7, "mutability").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    /// Never written by clients.
    ReadOnly,
    /// Read and written by clients.
    #[default]
    ReadWrite,
    /// Written once (at creation or when unset), then never changed.
    Immutable,
    /// Written but never returned (e.g. `password`).
    WriteOnly,
}

/// When an attribute is returned (RFC 7643 section 7, "returned").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    /// Always returned, whatever `attributes`/`excludedAttributes` say.
    Always,
    /// Never returned.
    Never,
    /// Returned unless excluded.
    #[default]
    Default,
    /// Returned only when requested by `attributes`.
    Request,
}

/// How uniqueness is enforced (RFC 7643 section 7, "uniqueness").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Uniqueness {
    /// No uniqueness.
    #[default]
    None,
    /// Unique within the service provider (per tenant).
    Server,
    /// Globally unique.
    Global,
}

/// A resource type (RFC 7643 section 6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceType {
    /// The resource type id, e.g. `User`.
    pub id: String,
    /// The resource type name, e.g. `User`.
    pub name: String,
    /// The endpoint relative to the base URL, e.g. `/Users`.
    pub endpoint: String,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The URN of the core schema.
    pub schema: String,
    /// The extension schemas.
    #[serde(default)]
    pub schema_extensions: Vec<SchemaExtension>,
}

impl ResourceType {
    /// Parses a resource type from its RFC 7643 JSON representation.
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json)
            .map_err(|e| Error::invalid_syntax(format!("resource type is not valid: {e}")))
    }
}

/// An extension schema of a resource type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaExtension {
    /// The extension schema URN.
    pub schema: String,
    /// Whether resources must carry the extension.
    #[serde(default)]
    pub required: bool,
}
