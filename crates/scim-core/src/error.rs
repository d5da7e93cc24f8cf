//! The one error type of scim-core.
//!
//! Every [`ErrorKind`] maps to exactly one HTTP status and, where RFC 7644
//! section 3.12 (Table 9) or RFC 9865 defines one, exactly one `scimType`.
//! [`Error`] serialises as the SCIM Error message
//! (`urn:ietf:params:scim:api:messages:2.0:Error`) with the status as a string.
//!
//! ```
//! use scim_core::{Error, ErrorKind};
//!
//! let err = Error::new(ErrorKind::InvalidFilter, "unknown attribute 'nickname2'").at(7);
//! assert_eq!(err.status(), 400);
//! assert_eq!(err.kind().scim_type(), Some("invalidFilter"));
//! let body = serde_json::to_value(&err).unwrap();
//! assert_eq!(body["status"], "400");
//! assert_eq!(body["scimType"], "invalidFilter");
//! ```

use std::fmt;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

/// The schema URN of the SCIM Error message.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// What went wrong, in the vocabulary of RFC 7644 and RFC 9865.
///
/// The first group carries a `scimType`; the second group is answered with a
/// bare HTTP status.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// 400 `invalidFilter`: the filter syntax was invalid or the attribute and
    /// comparison combination is not supported.
    InvalidFilter,
    /// 400 `tooMany`: the filter yields more results than the server will process.
    TooMany,
    /// 409 `uniqueness`: a value would violate a uniqueness constraint.
    Uniqueness,
    /// 400 `mutability`: the change is incompatible with an attribute's mutability.
    Mutability,
    /// 400 `invalidSyntax`: the request body is not a valid SCIM message.
    InvalidSyntax,
    /// 400 `invalidPath`: the attribute path is invalid or unsupported.
    InvalidPath,
    /// 400 `noTarget`: the path did not yield an attribute that could be operated on.
    NoTarget,
    /// 400 `invalidValue`: a required value was missing or a value was not compatible.
    InvalidValue,
    /// 400 `invalidVers`: the protocol version is not supported.
    InvalidVersion,
    /// 403 `sensitive`: the request cannot be completed because of sensitive data in the URI.
    Sensitive,
    /// 400 `invalidCursor` (RFC 9865): the cursor is malformed or not valid for this request.
    InvalidCursor,
    /// 400 `expiredCursor` (RFC 9865): the cursor has expired.
    ExpiredCursor,
    /// 400 `invalidCount` (RFC 9865): the count is not acceptable with cursors.
    InvalidCount,
    /// 400 with no `scimType`: a malformed request that no scimType describes.
    BadRequest,
    /// 401: no valid credentials.
    Unauthorized,
    /// 403: the credentials do not allow this operation.
    Forbidden,
    /// 404: the resource or endpoint does not exist.
    NotFound,
    /// 405: the endpoint does not support this method.
    MethodNotAllowed,
    /// 409 with no `scimType`: the request conflicts with the current state.
    Conflict,
    /// 412: an `If-Match` precondition failed.
    PreconditionFailed,
    /// 413: the request or a bulk payload is too large.
    PayloadTooLarge,
    /// 415: the content type is not supported.
    UnsupportedMediaType,
    /// 429: too many requests.
    TooManyRequests,
    /// 500: an internal error; the detail must not leak internals.
    Internal,
    /// 501: the operation is not implemented.
    NotImplemented,
    /// 503: the service is temporarily unavailable.
    Unavailable,
}

impl ErrorKind {
    /// The HTTP status code answered for this kind.
    pub fn status(self) -> u16 {
        use ErrorKind::*;
        match self {
            InvalidFilter | TooMany | Mutability | InvalidSyntax | InvalidPath | NoTarget
            | InvalidValue | InvalidVersion | InvalidCursor | ExpiredCursor | InvalidCount
            | BadRequest => 400,
            Unauthorized => 401,
            Sensitive | Forbidden => 403,
            NotFound => 404,
            MethodNotAllowed => 405,
            Uniqueness | Conflict => 409,
            PreconditionFailed => 412,
            PayloadTooLarge => 413,
            UnsupportedMediaType => 415,
            TooManyRequests => 429,
            Internal => 500,
            NotImplemented => 501,
            Unavailable => 503,
        }
    }

    /// The RFC 7644 / RFC 9865 `scimType`, for the kinds that have one.
    pub fn scim_type(self) -> Option<&'static str> {
        use ErrorKind::*;
        Some(match self {
            InvalidFilter => "invalidFilter",
            TooMany => "tooMany",
            Uniqueness => "uniqueness",
            Mutability => "mutability",
            InvalidSyntax => "invalidSyntax",
            InvalidPath => "invalidPath",
            NoTarget => "noTarget",
            InvalidValue => "invalidValue",
            InvalidVersion => "invalidVers",
            Sensitive => "sensitive",
            InvalidCursor => "invalidCursor",
            ExpiredCursor => "expiredCursor",
            InvalidCount => "invalidCount",
            _ => return None,
        })
    }

    /// The kind named by a `scimType` string (exact RFC spelling).
    pub fn from_scim_type(scim_type: &str) -> Option<Self> {
        use ErrorKind::*;
        Some(match scim_type {
            "invalidFilter" => InvalidFilter,
            "tooMany" => TooMany,
            "uniqueness" => Uniqueness,
            "mutability" => Mutability,
            "invalidSyntax" => InvalidSyntax,
            "invalidPath" => InvalidPath,
            "noTarget" => NoTarget,
            "invalidValue" => InvalidValue,
            "invalidVers" => InvalidVersion,
            "sensitive" => Sensitive,
            "invalidCursor" => InvalidCursor,
            "expiredCursor" => ExpiredCursor,
            "invalidCount" => InvalidCount,
            _ => return None,
        })
    }

    /// The kind for a bare HTTP status without a `scimType`.
    pub fn from_status(status: u16) -> Self {
        use ErrorKind::*;
        match status {
            401 => Unauthorized,
            403 => Forbidden,
            404 => NotFound,
            405 => MethodNotAllowed,
            409 => Conflict,
            412 => PreconditionFailed,
            413 => PayloadTooLarge,
            415 => UnsupportedMediaType,
            429 => TooManyRequests,
            501 => NotImplemented,
            503 => Unavailable,
            400..=499 => BadRequest,
            _ => Internal,
        }
    }
}

/// A SCIM error: a kind, a detail message for the client and, for errors in
/// a filter or path, the byte offset in the input where the problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    detail: String,
    position: Option<usize>,
}

/// The result type of scim-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a human-readable `detail`.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            position: None,
        }
    }

    /// Records the byte offset in the input where the problem was found.
    #[must_use]
    pub fn at(mut self, position: usize) -> Self {
        self.position = Some(position);
        self
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The message for the client, without position.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The byte offset in the filter or path text, if the error came from one.
    pub fn position(&self) -> Option<usize> {
        self.position
    }

    /// The detail as sent on the wire: with " (at position N)" when known.
    pub fn wire_detail(&self) -> String {
        match self.position {
            Some(p) => format!("{} (at position {p})", self.detail),
            None => self.detail.clone(),
        }
    }

    /// Shorthand for [`ErrorKind::InvalidFilter`].
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidFilter, detail)
    }

    /// Shorthand for [`ErrorKind::InvalidPath`].
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidPath, detail)
    }

    /// Shorthand for [`ErrorKind::InvalidSyntax`].
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidSyntax, detail)
    }

    /// Shorthand for [`ErrorKind::InvalidValue`].
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidValue, detail)
    }

    /// Shorthand for [`ErrorKind::Mutability`].
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Mutability, detail)
    }

    /// Shorthand for [`ErrorKind::NoTarget`].
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::NoTarget, detail)
    }

    /// Shorthand for [`ErrorKind::NotFound`].
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, detail)
    }

    /// Shorthand for [`ErrorKind::Internal`].
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, detail)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind.scim_type() {
            Some(t) => write!(f, "{} {t}: {}", self.status(), self.wire_detail()),
            None => write!(f, "{}: {}", self.status(), self.wire_detail()),
        }
    }
}

impl std::error::Error for Error {}

impl Serialize for Error {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("schemas", &[ERROR_SCHEMA])?;
        map.serialize_entry("status", &self.status().to_string())?;
        if let Some(t) = self.kind.scim_type() {
            map.serialize_entry("scimType", t)?;
        }
        map.serialize_entry("detail", &self.wire_detail())?;
        map.end()
    }
}

/// The SCIM Error message as received from a service provider, lenient about
/// the status being a string or a number (some providers send numbers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// Should contain [`ERROR_SCHEMA`].
    #[serde(default)]
    pub schemas: Vec<String>,
    /// The HTTP status, as the provider sent it.
    #[serde(deserialize_with = "de_status")]
    pub status: u16,
    /// The `scimType`, when present.
    #[serde(rename = "scimType", default, skip_serializing_if = "Option::is_none")]
    pub scim_type: Option<String>,
    /// The human-readable detail, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn de_status<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u16, D::Error> {
    use serde::de::Error as _;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s.trim().parse().map_err(D::Error::custom),
        serde_json::Value::Number(n) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| D::Error::custom("status out of range")),
        _ => Err(D::Error::custom("status must be a string or a number")),
    }
}

impl From<ErrorResponse> for Error {
    fn from(r: ErrorResponse) -> Self {
        let kind = r
            .scim_type
            .as_deref()
            .and_then(ErrorKind::from_scim_type)
            .unwrap_or_else(|| ErrorKind::from_status(r.status));
        Error::new(kind, r.detail.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scim_type_round_trips() {
        for t in [
            "invalidFilter",
            "tooMany",
            "uniqueness",
            "mutability",
            "invalidSyntax",
            "invalidPath",
            "noTarget",
            "invalidValue",
            "invalidVers",
            "sensitive",
            "invalidCursor",
            "expiredCursor",
            "invalidCount",
        ] {
            let kind = ErrorKind::from_scim_type(t).unwrap();
            assert_eq!(kind.scim_type(), Some(t));
        }
        assert_eq!(ErrorKind::Uniqueness.status(), 409);
        assert_eq!(ErrorKind::Sensitive.status(), 403);
    }

    #[test]
    fn serialises_as_scim_error_message() {
        let e = Error::new(ErrorKind::NotFound, "no such user");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "schemas": [ERROR_SCHEMA],
                "status": "404",
                "detail": "no such user"
            })
        );
    }

    #[test]
    fn parses_provider_errors_with_numeric_status() {
        let r: ErrorResponse = serde_json::from_str(
            r#"{"schemas":[],"status":409,"scimType":"uniqueness","detail":"taken"}"#,
        )
        .unwrap();
        let e = Error::from(r);
        assert_eq!(e.kind(), ErrorKind::Uniqueness);
        let r: ErrorResponse = serde_json::from_str(r#"{"status":"503"}"#).unwrap();
        assert_eq!(Error::from(r).kind(), ErrorKind::Unavailable);
    }
}
