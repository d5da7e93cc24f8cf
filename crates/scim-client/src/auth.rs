//! Credentials for a service provider: a bearer token, HTTP basic, or
//! OAuth2 client credentials (RFC 6749 section 4.4) with the token cached
//! until shortly before it expires.
//!
//! Secrets are held in [`Secret`], whose `Debug` shows `***`; the client
//! marks the `Authorization` header as sensitive and never logs headers.

use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

/// A secret string (a token, a password, a client secret). `Debug` prints
/// `Secret(***)`; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

/// How the client authenticates to the service provider.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Auth {
    /// No `Authorization` header.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// A bearer token obtained with the OAuth2 client credentials grant,
    /// cached, refreshed before it expires and after a 401.
    OAuth2(ClientCredentials),
}

impl Auth {
    /// A static bearer token.
    pub fn bearer(token: impl Into<Secret>) -> Self {
        Self::Bearer(token.into())
    }

    /// HTTP basic authentication.
    pub fn basic(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Self::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    /// OAuth2 client credentials.
    pub fn oauth2(credentials: ClientCredentials) -> Self {
        Self::OAuth2(credentials)
    }

    /// The header value for the static schemes; `None` for [`Auth::None`]
    /// and [`Auth::OAuth2`] (whose token is fetched).
    pub(crate) fn static_header(&self) -> Option<String> {
        match self {
            Self::Bearer(t) => Some(format!("Bearer {}", t.expose())),
            Self::Basic { username, password } => Some(basic_header(username, password)),
            Self::None | Self::OAuth2(_) => None,
        }
    }
}

fn basic_header(username: &str, password: &Secret) -> String {
    let raw = format!("{username}:{}", password.expose());
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// How the client authenticates to the token endpoint (RFC 6749 section 2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// HTTP basic with the client id and secret (`client_secret_basic`), the
    /// RFC's preferred method.
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    RequestBody,
}

/// The settings of the OAuth2 client credentials grant.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    /// The token endpoint.
    pub token_url: String,
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: Secret,
    /// The `scope` to ask for, if any.
    pub scope: Option<String>,
    /// Extra form parameters some providers want (e.g. `audience`, `resource`).
    pub extra_params: Vec<(String, String)>,
    /// How to present the client credentials.
    pub client_auth: ClientAuthMethod,
}

impl ClientCredentials {
    /// Client credentials with basic client authentication and no scope.
    pub fn new(
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
    ) -> Self {
        Self {
            token_url: token_url.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scope: None,
            extra_params: Vec::new(),
            client_auth: ClientAuthMethod::Basic,
        }
    }

    /// Asks for this `scope`.
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The form body of the token request.
    pub(crate) fn form(&self) -> Vec<(String, String)> {
        let mut form = vec![("grant_type".to_string(), "client_credentials".to_string())];
        if let Some(scope) = &self.scope {
            form.push(("scope".into(), scope.clone()));
        }
        if self.client_auth == ClientAuthMethod::RequestBody {
            form.push(("client_id".into(), self.client_id.clone()));
            form.push((
                "client_secret".into(),
                self.client_secret.expose().to_string(),
            ));
        }
        form.extend(self.extra_params.iter().cloned());
        form
    }

    /// The `Authorization` header of the token request, for basic client
    /// authentication. RFC 6749 section 2.3.1 form-encodes id and secret first.
    pub(crate) fn token_request_auth(&self) -> Option<String> {
        (self.client_auth == ClientAuthMethod::Basic).then(|| {
            let id = form_urlencode(&self.client_id);
            let secret = Secret::new(form_urlencode(self.client_secret.expose()));
            basic_header(&id, &secret)
        })
    }
}

/// `application/x-www-form-urlencoded` encoding of one name or value.
pub(crate) fn form_urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// An access token and when to stop using it.
#[derive(Clone)]
pub(crate) struct CachedToken {
    pub(crate) token: Secret,
    pub(crate) refresh_at: Option<Instant>,
}

impl CachedToken {
    pub(crate) fn is_fresh(&self, now: Instant) -> bool {
        self.refresh_at.is_none_or(|t| now < t)
    }
}

/// The successful answer of a token endpoint (RFC 6749 section 5.1).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

/// Reads a token response. The token is refreshed 30 seconds (or a tenth
/// of its lifetime, if shorter) before it expires; without `expires_in` it
/// is used until the provider answers 401.
pub(crate) fn parse_token_response(body: &[u8], now: Instant) -> Result<CachedToken, String> {
    let r: TokenResponse = serde_json::from_slice(body)
        .map_err(|e| format!("the token response is not valid: {e}"))?;
    if let Some(t) = &r.token_type
        && !t.eq_ignore_ascii_case("bearer")
    {
        return Err(format!("unsupported token_type \"{t}\""));
    }
    if r.access_token.is_empty() {
        return Err("the token response has an empty access_token".into());
    }
    let lifetime = r.expires_in.and_then(|v| match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    });
    let refresh_at = lifetime.map(|secs| {
        let life = Duration::from_secs(secs);
        let margin = Duration::from_secs(30).min(life / 10);
        now + life.saturating_sub(margin)
    });
    Ok(CachedToken {
        token: Secret::new(r.access_token),
        refresh_at,
    })
}

/// The reason in an OAuth2 error response (RFC 6749 section 5.2), without
/// anything of the request.
pub(crate) fn token_error_reason(status: u16, body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct OAuthError {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    }
    match serde_json::from_slice::<OAuthError>(body) {
        Ok(e) => match e.error_description {
            Some(d) => format!("{status} {}: {d}", e.error),
            None => format!("{status} {}", e.error),
        },
        Err(_) => crate::error::HttpError::from_response(status, body, None).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_debug_print() {
        let auth = Auth::basic("admin", "hunter2");
        let shown = format!("{auth:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let creds = ClientCredentials::new("https://idp/token", "id", "s3cret");
        assert!(!format!("{:?}", Auth::oauth2(creds)).contains("s3cret"));
        assert!(!format!("{:?}", Auth::bearer("tok")).contains("tok\""));
    }

    #[test]
    fn static_headers() {
        assert_eq!(
            Auth::basic("Aladdin", "open sesame")
                .static_header()
                .unwrap(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(Auth::bearer("abc").static_header().unwrap(), "Bearer abc");
        assert_eq!(Auth::None.static_header(), None);
    }

    #[test]
    fn client_credentials_request() {
        let mut c = ClientCredentials::new("https://idp/token", "my id", "a+b/c").scope("scim");
        assert_eq!(
            c.form(),
            [
                ("grant_type".to_string(), "client_credentials".to_string()),
                ("scope".into(), "scim".into())
            ]
        );
        // "my+id:a%2Bb%2Fc"
        assert_eq!(
            c.token_request_auth().unwrap(),
            "Basic bXkraWQ6YSUyQmIlMkZj"
        );
        c.client_auth = ClientAuthMethod::RequestBody;
        assert_eq!(c.token_request_auth(), None);
        assert!(c.form().contains(&("client_secret".into(), "a+b/c".into())));
    }

    #[test]
    fn form_encoding() {
        assert_eq!(form_urlencode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn token_responses() {
        let now = Instant::now();
        let t = parse_token_response(
            br#"{"access_token":"t1","token_type":"Bearer","expires_in":3600}"#,
            now,
        )
        .unwrap();
        assert_eq!(t.token.expose(), "t1");
        assert_eq!(t.refresh_at, Some(now + Duration::from_secs(3570)));
        let short =
            parse_token_response(br#"{"access_token":"t","expires_in":"60"}"#, now).unwrap();
        assert_eq!(short.refresh_at, Some(now + Duration::from_secs(54)));
        assert!(short.is_fresh(now));
        assert!(!short.is_fresh(now + Duration::from_secs(55)));
        let forever = parse_token_response(br#"{"access_token":"t"}"#, now).unwrap();
        assert!(forever.is_fresh(now + Duration::from_secs(1_000_000)));
        assert!(parse_token_response(br#"{"access_token":"t","token_type":"mac"}"#, now).is_err());
        assert!(parse_token_response(b"nope", now).is_err());
        assert_eq!(
            token_error_reason(
                401,
                br#"{"error":"invalid_client","error_description":"bad secret"}"#
            ),
            "401 invalid_client: bad secret"
        );
        assert_eq!(token_error_reason(500, b""), "500 Internal Server Error");
    }
}
