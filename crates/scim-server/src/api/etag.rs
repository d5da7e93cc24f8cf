//! ETags and preconditions (RFC 7644 section 3.14, RFC 9110 section 13).
//!
//! A resource's ETag is its weak version tag `W/"<version>"`, the same
//! string as `meta.version`. `If-Match` (PUT, PATCH, DELETE) and
//! `If-None-Match` (GET) take `*` or a comma-separated list of entity
//! tags, compared weakly: `W/"3"` and `"3"` both name version 3. A tag
//! that is not a version of ours names nothing, so it never matches.

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderName};
use scim_core::ErrorKind;

use crate::error::{Error, Result};
use crate::store::etag;

/// What an `If-Match` or `If-None-Match` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tags {
    /// `*`: any current version.
    Any,
    /// These versions (tags that are not versions of ours are dropped:
    /// they can match nothing).
    Versions(Vec<i64>),
}

impl Tags {
    /// Parses a header value: `*`, or entity tags `W/"3", "4"`. Unquoted
    /// tokens are read as opaque tags too (lenient).
    pub fn parse(value: &str) -> Self {
        let value = value.trim();
        if value == "*" {
            return Tags::Any;
        }
        let versions = value
            .split(',')
            .filter_map(|tag| {
                let tag = tag.trim();
                let tag = tag
                    .strip_prefix("W/")
                    .or_else(|| tag.strip_prefix("w/"))
                    .unwrap_or(tag);
                let opaque = tag
                    .strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .unwrap_or(tag);
                opaque.parse::<i64>().ok()
            })
            .collect();
        Tags::Versions(versions)
    }

    /// The precondition in a request header, if present. Several headers
    /// of the same name are read as one list.
    pub fn from_request(req: &HttpRequest, name: HeaderName) -> Result<Option<Self>> {
        let mut values = req.headers().get_all(name.clone()).peekable();
        if values.peek().is_none() {
            return Ok(None);
        }
        let mut joined = Vec::new();
        for v in values {
            let text = v.to_str().map_err(|_| {
                Error::from(scim_core::Error::new(
                    ErrorKind::BadRequest,
                    format!("the {name} header is not ASCII"),
                ))
            })?;
            joined.push(text.to_owned());
        }
        Ok(Some(Tags::parse(&joined.join(","))))
    }

    /// Whether the current `version` matches (weak comparison).
    pub fn matches(&self, version: i64) -> bool {
        match self {
            Tags::Any => true,
            Tags::Versions(v) => v.contains(&version),
        }
    }
}

/// The request's `If-Match` precondition.
pub fn if_match(req: &HttpRequest) -> Result<Option<Tags>> {
    Tags::from_request(req, header::IF_MATCH)
}

/// The request's `If-None-Match` precondition.
pub fn if_none_match(req: &HttpRequest) -> Result<Option<Tags>> {
    Tags::from_request(req, header::IF_NONE_MATCH)
}

/// The 412 for a resource at `current` that `If-Match` did not name.
pub fn precondition_failed(current: i64) -> Error {
    scim_core::Error::new(
        ErrorKind::PreconditionFailed,
        format!(
            "the resource is at version {}, which If-Match does not name",
            etag(current)
        ),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse_and_compare_weakly() {
        assert_eq!(Tags::parse("*"), Tags::Any);
        assert_eq!(Tags::parse(r#"W/"3""#), Tags::Versions(vec![3]));
        assert_eq!(
            Tags::parse(r#"W/"3", "4" ,w/"x", 5"#),
            Tags::Versions(vec![3, 4, 5])
        );
        assert_eq!(Tags::parse(r#""abc""#), Tags::Versions(vec![]));
        assert!(Tags::parse(r#""7""#).matches(7));
        assert!(!Tags::parse(r#"W/"7""#).matches(8));
        assert!(Tags::Any.matches(1));
    }
}
