//! PATCH (RFC 7644 section 3.5.2): operations parsed strictly from the
//! wire form, an engine that applies them in order and atomically to a
//! resource while enforcing the schema, and a separate dialect layer that
//! rewrites what identity providers actually send into that strict form,
//! naming each rewrite.
//!
//! ```
//! use scim_core::patch::{self, Mode, PatchOperation};
//! use scim_core::schema::SchemaRegistry;
//! use serde_json::json;
//!
//! let registry = SchemaRegistry::core();
//! let groups = registry.resource_schema("Group").unwrap();
//! let group = json!({
//!     "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
//!     "id": "e9e30dba",
//!     "displayName": "Tour Guides",
//!     "members": [{"value": "2819c223"}]
//! });
//!
//! // Strict operations: add a member that is already there, then another.
//! let ops = [
//!     PatchOperation::add(Some("members"), json!([{"value": "2819c223"}])),
//!     PatchOperation::add(Some("members"), json!({"value": "902c246b", "display": "Ann"})),
//! ];
//! let patched = patch::apply(&group, &ops, &groups).unwrap();
//! assert!(patched.changed);
//! // No duplicate; `display` is readWrite here and kept as sent.
//! assert_eq!(
//!     patched.resource["members"],
//!     json!([{"value": "2819c223"}, {"value": "902c246b", "display": "Ann"}])
//! );
//!
//! // What Microsoft Entra ID sends, through the dialect layer.
//! let body = json!({
//!     "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
//!     "Operations": [{"op": "Remove", "path": "members", "value": [{"value": "2819c223"}]}]
//! });
//! let patched = patch::apply_message(&group, &body, &groups, Mode::Dialects).unwrap();
//! assert_eq!(patched.resource.get("members"), None);
//! let rules: Vec<&str> = patched.rules.iter().map(|r| r.name()).collect();
//! assert_eq!(rules, ["capitalised-op", "value-list-removal"]);
//!
//! // The same body is refused in strict mode, and the error names the operation.
//! let err = patch::apply_message(&group, &body, &groups, Mode::Strict).unwrap_err();
//! assert_eq!(err.operation(), Some(0));
//! assert_eq!(err.kind().scim_type(), Some("invalidSyntax"));
//! ```
//!
//! # Semantics
//!
//! Where RFC 7644 section 3.5.2 leaves room, the engine decides as follows.
//!
//! - **Atomic.** Operations apply in order to a copy; the first error ends
//!   the request, carries the index of the failing operation
//!   ([`PatchError::operation`]) and leaves the input untouched.
//! - **Changed.** [`Patched::changed`] is false when the document after is
//!   the same JSON as before (object member order aside), e.g. re-adding an
//!   existing member (section 3.5.2.1: "no changes SHOULD be made"), so a
//!   server can keep the version and modify timestamp.
//! - **Values as sent.** A readWrite value is stored as the client sent it:
//!   `"BJensen"` replaces `"bjensen"` even though `userName` is not
//!   `caseExact`. Schema equality (type, `caseExact`, dateTime instants)
//!   decides duplicates and whether a readOnly or immutable value is left
//!   as it was.
//! - **Complex attributes.** `add` and `replace` both merge the given
//!   sub-attributes and leave the others (section 3.5.2.3), with or without
//!   a path; a null sub-attribute is unassigned.
//! - **Multi-valued attributes.** `add` appends; a single value is wrapped in
//!   an array. An element is not added again when an existing element
//!   already holds every sub-attribute it gives, compared by type and
//!   `caseExact`. `replace` without a filter replaces the list.
//! - **Null and empty.** Null unassigns (RFC 7643 section 2.5), in `add`
//!   and `replace`. An empty array unassigns in `replace` and adds nothing
//!   in `add`.
//! - **Value filters.** `remove` whose filter matches nothing succeeds
//!   without change (section 3.5.2.2, "If the user was not a member of this
//!   group, no changes should be made"). `replace` whose filter matches
//!   nothing is `noTarget` (section 3.5.2.3). `add` whose filter matches
//!   nothing adds a new element when the filter is made only of `eq`
//!   comparisons joined by `and` (the filter describes it: section 3.5.2.1,
//!   "If the target location does not exist, the attribute and value are
//!   added"; Entra ID sends `emails[type eq "work"].value` this way);
//!   otherwise it is `noTarget`. `replace` of `attr[filter]` replaces each
//!   matched record whole; `add` to it merges into each.
//!   `attr.sub` of a multi-valued attribute without a filter addresses every
//!   element (`noTarget` for `add`/`replace` when there is none).
//! - **Primary.** Setting `primary` true on an element sets it false on the
//!   others (section 3.5.2); an operation that would make two elements
//!   primary is `invalidValue`.
//! - **Mutability.** Changing a readOnly attribute is `mutability`, unless
//!   the operation leaves it as it was (clients echo `id` and `meta`). An
//!   immutable attribute can be set while unassigned, then not changed; the
//!   immutable sub-attributes of Group `members` cannot be changed in place,
//!   but records can be added, removed or replaced. Removing or unassigning
//!   a required attribute is `mutability` (section 3.5.2.2). `schemas` is
//!   kept by the engine and read-only to clients: a `schemas` member is
//!   accepted only when it equals what the operation leaves. readOnly
//!   sub-attributes inside a value object (`displayName` of the enterprise
//!   manager; `display` of Group members is readWrite in this project's
//!   schema and kept as sent) and `$ref` of multi-valued
//!   elements (derived from `value` by the service provider) are left out
//!   silently, as RFC 7644 sections 3.3 and 3.5.1 ignore readOnly values in
//!   request bodies; named by a path, a readOnly sub-attribute is an error.
//! - **Extensions.** Setting the first attribute of an extension creates its
//!   object and adds its URN to `schemas` (section 3.5.2); when the object is
//!   left without attributes it is removed with its URN (a required
//!   extension keeps its URN). Removing the extension URN path removes all
//!   of it.
//! - **Spelling.** Keys are written in the schema's spelling (`UserName`
//!   becomes `userName`).
//! - **Path-less values** hold attribute names in any case, URN-qualified
//!   attribute names, and extension URNs holding objects. Dotted keys such as
//!   `name.givenName` are not attribute names: only the dialect layer
//!   accepts them.
//!
//! Errors use RFC 7644 Table 9: `invalidSyntax` for the message shape and
//! unknown `op`s, `invalidPath` for paths, `noTarget` for `remove` without a
//! path and filters without a match as above, `invalidValue` for a missing
//! or ill-typed value (and a value on `remove`), `mutability` as above.
//!
//! # Dialects
//!
//! [`dialect::normalize`] rewrites known identity-provider shapes (Entra
//! ID's `"Replace"` and `"False"`, dotted keys, value-list member removal,
//! the manager as a bare id, extra members, a `schemas` member inside an
//! extension object, ...) into strict operations and
//! reports each [`DialectRule`] that fired. Shapes it does not know are
//! refused, never guessed.

mod apply;
pub mod dialect;
mod multi;
mod op;
mod rules;
mod slots;
mod value;

use std::fmt;

use serde_json::Value;

use crate::error::{Error, ErrorKind};
use crate::schema::ResourceSchema;

pub use dialect::{DialectRule, Normalized, normalize};
pub use op::{PATCH_OP_SCHEMA, PatchOpKind, PatchOperation, PatchRequest};

/// The result of a successful PATCH.
#[derive(Debug, Clone, PartialEq)]
pub struct Patched {
    /// The resource after every operation.
    pub resource: Value,
    /// Whether the resource differs from the input; when false a server can
    /// keep its version and modify timestamp.
    pub changed: bool,
    /// The dialect rules that rewrote the request (empty in strict mode).
    pub rules: Vec<DialectRule>,
}

/// A PATCH error: the SCIM error and the index of the operation that
/// failed (in the request as the client sent it), when one did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchError {
    operation: Option<usize>,
    error: Error,
}

impl PatchError {
    /// An error in the operation at `index`.
    pub fn at(index: usize, error: Error) -> Self {
        Self {
            operation: Some(index),
            error,
        }
    }

    /// An error in the message itself, not in one operation.
    pub fn body(error: Error) -> Self {
        Self {
            operation: None,
            error,
        }
    }

    /// The index of the failed operation in `Operations`.
    pub fn operation(&self) -> Option<usize> {
        self.operation
    }

    /// The SCIM error.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The SCIM error kind.
    pub fn kind(&self) -> ErrorKind {
        self.error.kind()
    }

    /// The SCIM error with the operation named in its detail
    /// (`Operations[2]: ...`), ready for the wire.
    pub fn into_error(self) -> Error {
        let Some(i) = self.operation else {
            return self.error;
        };
        let mut e = Error::new(
            self.error.kind(),
            format!("Operations[{i}]: {}", self.error.detail()),
        );
        if let Some(p) = self.error.position() {
            e = e.at(p);
        }
        e
    }
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.operation {
            Some(i) => write!(f, "Operations[{i}]: {}", self.error),
            None => write!(f, "{}", self.error),
        }
    }
}

impl std::error::Error for PatchError {}

impl From<PatchError> for Error {
    fn from(e: PatchError) -> Self {
        e.into_error()
    }
}

/// How [`apply_message`] reads the request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only the RFC wire form ([`PatchRequest::from_json`]).
    Strict,
    /// Identity-provider dialects first ([`dialect::normalize`]).
    Dialects,
}

/// Applies operations in order to a copy of `resource` (a JSON object) of
/// the resource type `rs`. See the [module documentation](self) for the
/// semantics. On error nothing is returned but the error, which names the
/// failing operation.
pub fn apply(
    resource: &Value,
    ops: &[PatchOperation],
    rs: &ResourceSchema,
) -> Result<Patched, PatchError> {
    let Some(doc) = resource.as_object() else {
        return Err(PatchError::body(Error::invalid_value(
            "the resource to patch must be a JSON object",
        )));
    };
    let mut engine = apply::Engine::new(rs, doc.clone());
    for (i, op) in ops.iter().enumerate() {
        engine.apply(op).map_err(|e| PatchError::at(i, e))?;
    }
    let out = Value::Object(engine.into_doc());
    crate::input::check_key_lengths(&out, rs).map_err(PatchError::body)?;
    let changed = out != *resource;
    Ok(Patched {
        resource: out,
        changed,
        rules: Vec::new(),
    })
}

/// Parses a PatchOp message body (strictly, or through the dialect layer)
/// and applies it to `resource`. Error indices refer to the operations as
/// the client sent them.
pub fn apply_message(
    resource: &Value,
    body: &Value,
    rs: &ResourceSchema,
    mode: Mode,
) -> Result<Patched, PatchError> {
    crate::input::check_text(body).map_err(PatchError::body)?;
    match mode {
        Mode::Strict => {
            let request = PatchRequest::from_json(body)?;
            apply(resource, &request.operations, rs)
        }
        Mode::Dialects => {
            let normalized = normalize(body, rs)?;
            let mut patched = apply(resource, &normalized.request.operations, rs)
                .map_err(|e| normalized.map_error(e))?;
            patched.rules = normalized.rules;
            Ok(patched)
        }
    }
}
