//! PATCH attribute paths (RFC 7644 section 3.5.2):
//! `PATH = attrPath / valuePath [subAttr]`.
//!
//! ```
//! use scim_core::path::Path;
//! use scim_core::schema::SchemaRegistry;
//!
//! let registry = SchemaRegistry::core();
//! let users = registry.resource_schema("User").unwrap();
//! let Path::Attribute { attr, filter, sub } =
//!     Path::parse(r#"emails[type eq "work"].value"#, &users).unwrap()
//! else {
//!     unreachable!()
//! };
//! assert_eq!(attr.path(), "emails");
//! assert_eq!(filter.unwrap().as_value_filter().to_string(), r#"type eq "work""#);
//! assert_eq!(sub.unwrap().path(), "emails.value");
//!
//! let err = Path::parse("emails[type eq]", &users).unwrap_err();
//! assert_eq!(err.kind().scim_type(), Some("invalidPath"));
//! ```

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::filter::{Filter, Limits, parse_path_syntax};
use crate::schema::{AttrRef, ResourceSchema, Schema};

/// A resolved PATCH path.
#[derive(Debug, Clone, PartialEq)]
pub enum Path {
    /// A whole extension schema, named by its URN alone
    /// (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`).
    Extension(Arc<Schema>),
    /// An attribute, optionally narrowed by a value filter and a sub-attribute.
    Attribute {
        /// The top-level attribute (never a sub-attribute reference).
        attr: AttrRef,
        /// The value filter selecting elements of a multi-valued attribute.
        filter: Option<Filter>,
        /// The sub-attribute (`name.givenName`, or `.value` after a filter).
        sub: Option<AttrRef>,
    },
}

impl Path {
    /// Parses and resolves a path for a resource type, with the default limits.
    pub fn parse(text: &str, rs: &ResourceSchema) -> Result<Path> {
        Self::parse_with(text, rs, &Limits::default())
    }

    /// Parses and resolves a path for a resource type. Every error is
    /// `invalidPath`, with the byte position where known.
    pub fn parse_with(text: &str, rs: &ResourceSchema, limits: &Limits) -> Result<Path> {
        // Positions count from the start of `text`, leading whitespace included.
        let lead = text.len() - text.trim_start().len();
        Self::parse_trimmed(text.trim(), rs, limits).map_err(|e| match e.position() {
            Some(p) => e.at(p + lead),
            None => e,
        })
    }

    fn parse_trimmed(text: &str, rs: &ResourceSchema, limits: &Limits) -> Result<Path> {
        if let Some(schema) = rs.extension(text) {
            return Ok(Path::Extension(schema.clone()));
        }
        let syntax = parse_path_syntax(text, limits)?;
        let at = |e: Error, pos: usize| {
            Error::invalid_path(e.detail().to_string()).at(e.position().unwrap_or(pos))
        };
        let resolved = rs
            .resolve(&syntax.attr.text)
            .map_err(|e| at(e, syntax.attr.span.start))?;
        let Some(expr) = &syntax.filter else {
            let attr = resolved.parent();
            let sub = resolved.has_sub().then_some(resolved);
            return Ok(Path::Attribute {
                attr,
                filter: None,
                sub,
            });
        };
        if resolved.has_sub() || !resolved.target().is_complex() {
            return Err(Error::invalid_path(format!(
                "'{}' is not a complex attribute; a '[...]' filter needs one",
                syntax.attr.text
            ))
            .at(syntax.attr.span.start));
        }
        let filter = Filter::resolve_value_filter(expr, rs, &resolved)
            .map_err(|e| at(e, syntax.attr.span.end))?;
        let sub = match &syntax.sub {
            None => None,
            Some(s) => Some(
                rs.resolve_sub(&resolved, &s.text)
                    .map_err(|e| at(e, s.span.start))?,
            ),
        };
        Ok(Path::Attribute {
            attr: resolved,
            filter: Some(filter),
            sub,
        })
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Extension(schema) => f.write_str(&schema.id),
            Path::Attribute { attr, filter, sub } => match (filter, sub) {
                (None, Some(sub)) => write!(f, "{}", sub.path()),
                (None, None) => write!(f, "{}", attr.path()),
                (Some(filter), sub) => {
                    write!(f, "{}[{}]", attr.path(), filter.as_value_filter())?;
                    if let Some(sub) = sub.as_ref().and_then(|s| s.sub_attribute()) {
                        write!(f, ".{}", sub.name)?;
                    }
                    Ok(())
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SchemaRegistry;

    fn users() -> Arc<ResourceSchema> {
        SchemaRegistry::core().resource_schema("User").unwrap()
    }

    #[test]
    fn forms_of_paths() {
        let rs = users();
        for (text, shown) in [
            ("userName", "userName"),
            ("NAME.GIVENNAME", "name.givenName"),
            ("members", "members"),
            (r#"emails[type eq "work"]"#, r#"emails[type eq "work"]"#),
            (
                r#"addresses[type eq "work"].streetAddress"#,
                r#"addresses[type eq "work"].streetAddress"#,
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            ),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName",
                "name.familyName",
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            ),
        ] {
            if text == "members" {
                assert!(Path::parse(text, &rs).is_err());
                continue;
            }
            let p = Path::parse(text, &rs).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(p.to_string(), shown, "{text}");
        }
    }

    #[test]
    fn bad_paths_are_invalid_path_with_position() {
        let rs = users();
        for (text, pos) in [
            ("nickname2", Some(0)),
            ("name.nope", Some(0)),
            (r#"userName[value eq "x"]"#, Some(0)),
            (r#"emails[nope eq "x"]"#, Some(7)),
            (r#"emails[type eq "x"].nope"#, Some(20)),
            (r#"emails[type eq "x""#, Some(18)),
            ("urn:example:unknown", Some(0)),
            ("", Some(0)),
            ("  nickname2", Some(2)),
            ("\temails[type eq \"x\"].nope ", Some(21)),
        ] {
            let e = Path::parse(text, &rs).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidPath, "{text}: {e}");
            assert_eq!(e.position(), pos, "{text}: {e}");
        }
    }
}
