//! The names of the dialect rules: what each rewrites, and the stable name
//! a server logs.

use std::fmt;

/// A rewrite the dialect layer knows. [`DialectRule::name`] is stable: log
/// it, count it, match on it.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DialectRule {
    /// `"op": "Replace"` (any case) read as `replace` (Entra ID).
    CapitalisedOp,
    /// `"True"` / `"False"` (any case) for a boolean attribute read as a
    /// boolean (Entra ID). Strings of string attributes stay strings.
    StringBoolean,
    /// A path-less value key with a sub-attribute, `"name.givenName"`,
    /// nested as `{"name": {"givenName": ...}}` (Entra ID).
    DottedKey,
    /// A path-less value key qualified with a schema URN,
    /// `"urn:...:enterprise:2.0:User:department"`, placed in its schema's
    /// object (Entra ID).
    UrnKey,
    /// `remove` of `members` with a list of `{"value": id}` read as one
    /// `remove` of `members[value eq "id"]` per element (Entra ID without
    /// its SCIM-compliance flag).
    ValueListRemoval,
    /// `"$ref": null` in an element of a multi-valued attribute dropped
    /// (Entra ID's member adds and removals).
    NullRef,
    /// The enterprise `manager` given as a bare id string read as
    /// `{"value": id}` (Entra ID).
    ManagerString,
    /// The enterprise `manager` given as `""` or `{"value": ""}` read as
    /// clearing it: `remove` with a path, null without one.
    ManagerEmptyValue,
    /// An attribute name in another case (`"UserName"`) written in the
    /// schema's spelling.
    PascalCaseName,
    /// Members other than `op`, `path` and `value` in an operation, or
    /// other than `schemas` and `Operations` in the message, ignored.
    ExtraMember,
    /// A one-element array for a single-valued attribute read as its
    /// element (Entra ID's manager: `"value": [{"value": id}]`).
    SingleValueArray,
    /// A `schemas` member inside an extension object (the value of a
    /// whole-extension path, or an extension URN's object in a path-less
    /// value) that lists only URNs of the resource type's schemas, dropped:
    /// `schemas` is a resource-level attribute the engine keeps itself, not
    /// an attribute of the extension (RFC 7643 section 3.3). SCIM client
    /// libraries that serialise an extension model whole send it
    /// (scim2-models). Any other `schemas` member is left for the engine to
    /// refuse.
    ExtensionSchemasMember,
}

impl DialectRule {
    /// Every rule.
    pub const ALL: &'static [DialectRule] = &[
        Self::CapitalisedOp,
        Self::StringBoolean,
        Self::DottedKey,
        Self::UrnKey,
        Self::ValueListRemoval,
        Self::NullRef,
        Self::ManagerString,
        Self::ManagerEmptyValue,
        Self::PascalCaseName,
        Self::ExtraMember,
        Self::SingleValueArray,
        Self::ExtensionSchemasMember,
    ];

    /// The stable name, e.g. `capitalised-op`.
    pub fn name(self) -> &'static str {
        match self {
            Self::CapitalisedOp => "capitalised-op",
            Self::StringBoolean => "string-boolean",
            Self::DottedKey => "dotted-key",
            Self::UrnKey => "urn-key",
            Self::ValueListRemoval => "value-list-removal",
            Self::NullRef => "null-ref",
            Self::ManagerString => "manager-string",
            Self::ManagerEmptyValue => "manager-empty-value",
            Self::PascalCaseName => "pascal-case-name",
            Self::ExtraMember => "extra-member",
            Self::SingleValueArray => "single-value-array",
            Self::ExtensionSchemasMember => "extension-schemas-member",
        }
    }

    /// The rule with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.name() == name)
    }
}

impl fmt::Display for DialectRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
