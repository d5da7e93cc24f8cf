//! The one error type of the client, [`ClientError`], and the parsed error
//! answer of a service provider, [`HttpError`].
//!
//! Every variant that comes from a request names the method and the URL
//! (scheme, host, port and path: never credentials, never the query), so a
//! message reads on its own in a log:
//!
//! ```text
//! POST https://example.com/scim/v2/Users: 409 uniqueness: userName taken
//! GET https://example.com/scim/v2/Users/42: 503 Service Unavailable (retry after 30s)
//! PATCH https://example.com/scim/v2/Groups/7: timed out after 30s
//! ```
//!
//! Secrets (tokens, passwords, client secrets) never appear in an error.

use std::fmt;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use scim_core::ErrorKind;
use scim_core::error::ErrorResponse;

/// The longest piece of a non-SCIM error body kept in an [`HttpError`].
pub const BODY_SNIPPET_LIMIT: usize = 300;

/// What went wrong talking to a service provider.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The request did not complete within the configured timeout. The
    /// request may have reached the service provider.
    #[error("{method} {url}: timed out after {timeout:?}")]
    Timeout {
        /// The HTTP method.
        method: Method,
        /// The URL, without credentials or query.
        url: String,
        /// The configured request timeout.
        timeout: Duration,
    },
    /// No connection could be opened; the request was not sent.
    #[error("{method} {url}: cannot connect: {reason}")]
    Connect {
        /// The HTTP method.
        method: Method,
        /// The URL, without credentials or query.
        url: String,
        /// What the network layer said.
        reason: String,
    },
    /// The connection failed after the request was (possibly) sent, before a
    /// complete response arrived.
    #[error("{method} {url}: connection failed: {reason}")]
    Transport {
        /// The HTTP method.
        method: Method,
        /// The URL, without credentials or query.
        url: String,
        /// What the network layer said.
        reason: String,
    },
    /// The service provider answered with an error status.
    #[error("{method} {url}: {error}")]
    Http {
        /// The HTTP method.
        method: Method,
        /// The URL, without credentials or query.
        url: String,
        /// The status and the parsed SCIM error.
        error: Box<HttpError>,
    },
    /// A successful response did not have the expected shape.
    #[error("{method} {url}: cannot read the {status} response: {reason}")]
    Decode {
        /// The HTTP method.
        method: Method,
        /// The URL, without credentials or query.
        url: String,
        /// The (successful) status.
        status: u16,
        /// What was wrong with the body.
        reason: String,
    },
    /// Getting an OAuth2 access token failed.
    #[error("OAuth2 token request to {token_url}: {reason}")]
    OAuth {
        /// The token endpoint, without credentials or query.
        token_url: String,
        /// What went wrong (never the client secret).
        reason: String,
    },
    /// The service provider does not support what was asked, by its
    /// discovered or configured capabilities.
    #[error("the service provider does not support {0}")]
    Unsupported(String),
    /// A match lookup found more than one remote resource; none is adopted.
    #[error("{count} remote resources match {filter}; refusing to pick one")]
    AmbiguousMatch {
        /// The filter that found them.
        filter: String,
        /// How many matched.
        count: usize,
    },
    /// The request could not be built: a bad base URL, identifier or input.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

/// A `Result` with [`ClientError`].
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

impl ClientError {
    /// The HTTP status of an [`ClientError::Http`] error.
    pub fn status(&self) -> Option<u16> {
        self.http().map(|e| e.status)
    }

    /// The `scimType` the service provider sent, if any.
    pub fn scim_type(&self) -> Option<&str> {
        self.http().and_then(|e| e.scim_type.as_deref())
    }

    /// The parsed error answer, for [`ClientError::Http`].
    pub fn http(&self) -> Option<&HttpError> {
        match self {
            Self::Http { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Whether the service provider answered 404.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Whether the service provider answered 409 (e.g. `uniqueness`).
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }

    /// Whether the service provider answered 412 (an `If-Match` failed).
    pub fn is_precondition_failed(&self) -> bool {
        self.status() == Some(412)
    }

    /// How long the service provider asked to wait before trying again
    /// (`Retry-After` of a 429 or 503 that the client did not wait for).
    pub fn retry_after(&self) -> Option<Duration> {
        self.http().and_then(|e| e.retry_after)
    }

    /// Whether trying the same request later may succeed: timeouts,
    /// connection failures, 408, 429 and 5xx answers. (A failed OAuth2
    /// token request is not: check the credentials first.)
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::Connect { .. } | Self::Transport { .. } => true,
            Self::Http { error, .. } => matches!(error.status, 408 | 429 | 500..=599),
            _ => false,
        }
    }
}

/// The error answer of a service provider: the status, and what the SCIM
/// Error message in the body said (RFC 7644 section 3.12), or a snippet of
/// the body when it was not one.
///
/// Displays as `409 uniqueness: userName taken`, `404: no such user`, or
/// `502 Bad Gateway: <html>...` for a body that is not a SCIM error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// The HTTP status of the response.
    pub status: u16,
    /// The `scimType` of the SCIM error, when sent.
    pub scim_type: Option<String>,
    /// The `detail` of the SCIM error, when sent.
    pub detail: Option<String>,
    /// The start of the body (at most [`BODY_SNIPPET_LIMIT`] characters,
    /// whitespace collapsed) when it was not a SCIM Error message.
    pub body: Option<String>,
    /// The `Retry-After` of the response, when it had one.
    pub retry_after: Option<Duration>,
}

impl HttpError {
    /// Reads an error response: a SCIM Error message when the body is one
    /// (leniently: any member case, the status as a string or a number),
    /// otherwise a snippet of the body.
    pub fn from_response(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        let parsed = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| error_response(&v));
        match parsed {
            Some(r) => Self {
                status,
                scim_type: r.scim_type.filter(|t| !t.trim().is_empty()),
                detail: r.detail.filter(|d| !d.trim().is_empty()),
                body: None,
                retry_after,
            },
            None => Self {
                status,
                scim_type: None,
                detail: None,
                body: snippet(body),
                retry_after,
            },
        }
    }

    /// The scim-core kind for this answer: from the `scimType` when it is
    /// one of the RFC's, else from the status.
    pub fn kind(&self) -> ErrorKind {
        self.scim_type
            .as_deref()
            .and_then(ErrorKind::from_scim_type)
            .unwrap_or_else(|| ErrorKind::from_status(self.status))
    }
}

/// The SCIM Error message in `v`, if it is one (member names in any case,
/// a `status` member is not required to match the HTTP status).
fn error_response(v: &serde_json::Value) -> Option<ErrorResponse> {
    let obj = v.as_object()?;
    let mut lowered = serde_json::Map::new();
    for (k, val) in obj {
        let key = match k.to_ascii_lowercase().as_str() {
            "schemas" => "schemas",
            "status" => "status",
            "scimtype" => "scimType",
            "detail" => "detail",
            _ => continue,
        };
        lowered.insert(key.to_string(), val.clone());
    }
    // Some providers omit `status` in the body; the HTTP status stands in.
    let looks_like_error = lowered.contains_key("detail") || lowered.contains_key("scimType");
    if !looks_like_error {
        return None;
    }
    lowered
        .entry("status")
        .or_insert(serde_json::Value::from(0));
    serde_json::from_value(serde_json::Value::Object(lowered)).ok()
}

fn snippet(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return None;
    }
    let mut out: String = collapsed.chars().take(BODY_SNIPPET_LIMIT).collect();
    if collapsed.chars().count() > BODY_SNIPPET_LIMIT {
        out.push('…');
    }
    Some(out)
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        match (&self.scim_type, &self.detail, &self.body) {
            (Some(t), Some(d), _) => write!(f, " {t}: {d}")?,
            (Some(t), None, _) => write!(f, " {t}")?,
            (None, Some(d), _) => write!(f, ": {d}")?,
            (None, None, body) => {
                if let Some(reason) = StatusCode::from_u16(self.status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                {
                    write!(f, " {reason}")?;
                }
                if let Some(b) = body {
                    write!(f, ": {b}")?;
                }
            }
        }
        if let Some(ra) = self.retry_after {
            write!(f, " (retry after {}s)", ra.as_secs())?;
        }
        Ok(())
    }
}

/// The URL as shown in errors and logs: scheme, host, port and path, with
/// no user information and no query.
pub(crate) fn display_url(url: &Url) -> String {
    let mut out = format!("{}://", url.scheme());
    if let Some(host) = url.host_str() {
        out.push_str(host);
    }
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(url.path());
    out
}

/// The innermost cause of a transport error, as text, without the URL
/// reqwest adds to its own messages.
pub(crate) fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, body: &str) -> ClientError {
        ClientError::Http {
            method: Method::POST,
            url: "https://host/scim/v2/Users".into(),
            error: Box::new(HttpError::from_response(status, body.as_bytes(), None)),
        }
    }

    #[test]
    fn scim_errors_read_like_the_provider_said() {
        let e = http(
            409,
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status":"409","scimType":"uniqueness","detail":"userName taken"}"#,
        );
        assert_eq!(
            e.to_string(),
            "POST https://host/scim/v2/Users: 409 uniqueness: userName taken"
        );
        assert_eq!(e.scim_type(), Some("uniqueness"));
        assert!(e.is_conflict());
        assert_eq!(e.http().unwrap().kind(), ErrorKind::Uniqueness);
        // Numeric status, odd member case, no schemas.
        let e = http(
            400,
            r#"{"Status":400,"ScimType":"invalidFilter","Detail":"bad"}"#,
        );
        assert_eq!(
            e.to_string(),
            "POST https://host/scim/v2/Users: 400 invalidFilter: bad"
        );
        // Detail only, no status in the body.
        let e = http(404, r#"{"detail":"no such user"}"#);
        assert_eq!(
            e.to_string(),
            "POST https://host/scim/v2/Users: 404: no such user"
        );
        assert!(e.is_not_found());
        assert_eq!(e.http().unwrap().kind(), ErrorKind::NotFound);
    }

    #[test]
    fn other_bodies_are_snippets() {
        let e = http(502, "<html>\n  <body>Bad   gateway</body>\n</html>");
        assert_eq!(
            e.to_string(),
            "POST https://host/scim/v2/Users: 502 Bad Gateway: <html> <body>Bad gateway</body> </html>"
        );
        let long = "x".repeat(1000);
        let e = HttpError::from_response(500, long.as_bytes(), None);
        assert_eq!(
            e.body.as_ref().unwrap().chars().count(),
            BODY_SNIPPET_LIMIT + 1
        );
        let e = HttpError::from_response(503, b"", Some(Duration::from_secs(30)));
        assert_eq!(e.to_string(), "503 Service Unavailable (retry after 30s)");
        // JSON that is not a SCIM error is shown as a snippet.
        let e = HttpError::from_response(400, br#"{"error":"nope"}"#, None);
        assert_eq!(e.to_string(), r#"400 Bad Request: {"error":"nope"}"#);
        assert_eq!(e.kind(), ErrorKind::BadRequest);
    }

    #[test]
    fn urls_never_show_credentials_or_queries() {
        let url =
            Url::parse("https://user:secret@host:8443/scim/v2/Users?access_token=abc").unwrap();
        assert_eq!(display_url(&url), "https://host:8443/scim/v2/Users");
    }

    #[test]
    fn transient_errors() {
        assert!(http(503, "").is_transient());
        assert!(http(429, "").is_transient());
        assert!(!http(409, "").is_transient());
        assert!(!ClientError::Unsupported("bulk".into()).is_transient());
    }
}
