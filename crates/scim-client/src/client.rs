//! The client: configuration, the one request loop (authentication,
//! timeouts, retries) and discovery.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, IF_MATCH};
use reqwest::{Method, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use crate::auth::{Auth, CachedToken, parse_token_response, token_error_reason};
use crate::discovery::Capabilities;
use crate::error::{ClientError, HttpError, Result, display_url, root_cause};
use crate::observe::{Exchange, Observer, ObserverSlot, RateLimiter, redact_body};
use crate::retry::{Decision, Outcome, RetryPolicy, parse_retry_after};
use crate::target::{AddressFilter, FilterSlot, FilteringResolver, is_scim_shaped, withheld_note};

/// The media type of SCIM messages (RFC 7644 section 8.1).
pub const SCIM_MEDIA_TYPE: &str = "application/scim+json";

const ACCEPT_VALUE: &str = "application/scim+json, application/json;q=0.9";

/// Settings of a [`ScimClient`]; [`ScimClient::builder`] starts one.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    auth: Auth,
    timeout: Duration,
    connect_timeout: Duration,
    retry: RetryPolicy,
    page_size: u64,
    user_agent: String,
    capabilities: Option<Capabilities>,
    rate_limit: Option<f64>,
    observer: Option<ObserverSlot>,
    limiter: Option<RateLimiter>,
    address_filter: Option<FilterSlot>,
    scim_bodies_only: bool,
}

impl ClientBuilder {
    fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.to_string(),
            auth: Auth::None,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            page_size: 100,
            user_agent: format!("scim-client/{}", env!("CARGO_PKG_VERSION")),
            capabilities: None,
            rate_limit: None,
            observer: None,
            limiter: None,
            address_filter: None,
            scim_bodies_only: false,
        }
    }

    /// How to authenticate (default: no `Authorization` header).
    #[must_use]
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// The time limit of one attempt, response body included (default 30 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The time limit for opening a connection (default 10 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The retry policy (default [`RetryPolicy::default`]).
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The page size asked for in queries (default 100), lowered to the
    /// provider's `maxResults` / `maxPageSize`.
    #[must_use]
    pub fn page_size(mut self, page_size: u64) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// The `User-Agent` header (default `scim-client/<version>`).
    #[must_use]
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Spaces requests (every attempt, retries and token requests
    /// included) at least `1 / per_second` apart, shared by all clones of
    /// the client: a steady pace under a provider's published rate limit,
    /// rather than bursts answered with 429. Default: no limit.
    #[must_use]
    pub fn rate_limit(mut self, per_second: f64) -> Self {
        self.rate_limit = (per_second.is_finite() && per_second > 0.0).then_some(per_second);
        self
    }

    /// Calls `observer` after every attempt (retries, reads and token
    /// requests included) with what was sent and answered, secrets
    /// redacted ([`crate::observe`]).
    #[must_use]
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(ObserverSlot(observer));
        self
    }

    /// Takes a token from `limiter` before every attempt. Clients given
    /// clones of one limiter share its budget.
    #[must_use]
    pub fn limiter(mut self, limiter: RateLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Connects only to addresses `filter` allows: IP-literal hosts are
    /// checked before sending, DNS names through the client's resolver,
    /// which drops refused addresses ([`crate::target`]). Proxy settings
    /// from the environment are then ignored. Default: no filter.
    #[must_use]
    pub fn address_filter(mut self, filter: Arc<dyn AddressFilter>) -> Self {
        self.address_filter = Some(FilterSlot(filter));
        self
    }

    /// When `true`, response bodies that are not SCIM-shaped (a JSON object
    /// with a `schemas` array, or a SCIM Error message) are not passed on
    /// to observers or in errors: a note with their content type and
    /// length stands in ([`crate::target::is_scim_shaped`]). For callers
    /// that show exchanges to people who must not read whatever a target
    /// answers. Default `false`.
    #[must_use]
    pub fn scim_bodies_only(mut self, only: bool) -> Self {
        self.scim_bodies_only = only;
        self
    }

    /// Fixed capabilities, for providers without (or with a wrong)
    /// ServiceProviderConfig. [`ScimClient::discover`] replaces them.
    #[must_use]
    pub fn capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = Some(capabilities);
        self
    }

    /// Builds the client. Fails on a base URL that is not `http` or `https`.
    pub fn build(self) -> Result<ScimClient> {
        let mut base = Url::parse(self.base_url.trim())
            .map_err(|e| ClientError::InvalidRequest(format!("base URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ClientError::InvalidRequest(format!(
                "base URL must be http or https: {}",
                display_url(&base)
            )));
        }
        base.set_query(None);
        base.set_fragment(None);
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        if let Auth::OAuth2(c) = &self.auth {
            Url::parse(&c.token_url)
                .map_err(|e| ClientError::InvalidRequest(format!("token URL: {e}")))?;
        }
        let mut http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .user_agent(self.user_agent)
            // Never followed: a redirect could lead past an address filter
            // and would repeat non-idempotent requests.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(FilterSlot(filter)) = &self.address_filter {
            http = http
                .dns_resolver(Arc::new(FilteringResolver(filter.clone())))
                .no_proxy();
        }
        let http = http
            .build()
            .map_err(|e| ClientError::InvalidRequest(format!("HTTP client: {}", root_cause(&e))))?;
        Ok(ScimClient {
            inner: Arc::new(Inner {
                http,
                base,
                auth: self.auth,
                token: Mutex::new(None),
                timeout: self.timeout,
                retry: self.retry,
                page_size: self.page_size,
                capabilities: RwLock::new(self.capabilities.unwrap_or_default()),
                pace: self.rate_limit.map(|per_second| Pace {
                    interval: Duration::from_secs_f64(1.0 / per_second),
                    next: Mutex::new(None),
                }),
                observer: self.observer,
                limiter: self.limiter,
                address_filter: self.address_filter,
                scim_bodies_only: self.scim_bodies_only,
            }),
        })
    }
}

/// An async client for one SCIM service provider. Cheap to clone: clones
/// share the connection pool, the OAuth2 token and the capabilities.
#[derive(Clone)]
pub struct ScimClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    http: reqwest::Client,
    base: Url,
    auth: Auth,
    token: Mutex<Option<CachedToken>>,
    timeout: Duration,
    retry: RetryPolicy,
    pub(crate) page_size: u64,
    capabilities: RwLock<Capabilities>,
    pace: Option<Pace>,
    observer: Option<ObserverSlot>,
    limiter: Option<RateLimiter>,
    address_filter: Option<FilterSlot>,
    scim_bodies_only: bool,
}

/// The client-side rate limit: the earliest start of the next request.
struct Pace {
    interval: Duration,
    next: Mutex<Option<tokio::time::Instant>>,
}

impl Pace {
    /// Waits for this request's slot.
    async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = tokio::time::Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

impl std::fmt::Debug for ScimClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimClient")
            .field("base_url", &display_url(&self.inner.base))
            .field("auth", &self.inner.auth)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// One request, as the request loop repeats it.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) content_type: &'static str,
    pub(crate) if_match: Option<String>,
    /// Whether to send the client's credentials (not to a token endpoint).
    pub(crate) authenticate: bool,
    /// An `Authorization` value for this call only (token requests).
    pub(crate) authorization: Option<String>,
}

impl Call {
    pub(crate) fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            body: None,
            content_type: SCIM_MEDIA_TYPE,
            if_match: None,
            authenticate: true,
            authorization: None,
        }
    }

    pub(crate) fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| ClientError::InvalidRequest(format!("cannot serialise the body: {e}")))?;
        self.body = Some(bytes);
        Ok(self)
    }

    pub(crate) fn display_url(&self) -> String {
        display_url(&self.url)
    }
}

/// A successful (2xx) response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn etag(&self) -> Option<String> {
        self.headers
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    pub(crate) fn content_type(&self) -> Option<&str> {
        self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.body.iter().all(u8::is_ascii_whitespace)
    }
}

/// Why one attempt produced no response.
enum AttemptError {
    /// A network failure, which the retry policy judges.
    Net { outcome: Outcome, reason: String },
    /// A failure no retry can mend (e.g. the token endpoint refused).
    Fatal(ClientError),
}

fn classify(e: &reqwest::Error) -> AttemptError {
    let outcome = if e.is_connect() {
        Outcome::ConnectFailed
    } else if e.is_timeout() {
        Outcome::TimedOut
    } else {
        Outcome::ConnectionLost
    };
    AttemptError::Net {
        outcome,
        reason: root_cause(e),
    }
}

/// What an observer sees of one attempt.
fn exchange(
    call: &Call,
    result: &std::result::Result<std::result::Result<Reply, Reply>, AttemptError>,
    duration: Duration,
    attempt: u32,
    scim_bodies_only: bool,
) -> Exchange {
    // Token requests carry the client secret, and their answers the token.
    let secret = !call.authenticate || call.authorization.is_some();
    let shown = |bytes: &[u8]| {
        if secret {
            Some(crate::observe::REDACTED.to_string())
        } else {
            redact_body(bytes)
        }
    };
    let answered = |reply: &Reply| {
        if scim_bodies_only && !secret && !is_scim_shaped(&reply.body) {
            Some(withheld_note(reply.content_type(), reply.body.len()))
        } else {
            shown(&reply.body)
        }
    };
    let mut url = call.url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let (status, response_body, error) = match result {
        Ok(Ok(reply)) => (Some(reply.status), answered(reply), None),
        Ok(Err(reply)) => (
            Some(reply.status),
            answered(reply),
            Some(format!("HTTP {}", reply.status)),
        ),
        Err(AttemptError::Net { reason, .. }) => (None, None, Some(reason.clone())),
        Err(AttemptError::Fatal(e)) => (None, None, Some(e.to_string())),
    };
    Exchange {
        method: call.method.to_string(),
        url: url.to_string(),
        request_body: call.body.as_deref().and_then(shown),
        status,
        response_body,
        error,
        duration,
        attempt,
    }
}

impl ScimClient {
    /// Starts configuring a client for the service provider at `base_url`
    /// (e.g. `https://example.com/scim/v2`).
    pub fn builder(base_url: &str) -> ClientBuilder {
        ClientBuilder::new(base_url)
    }

    /// The base URL, with a trailing slash.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The capabilities in use: discovered, configured, or
    /// [`Capabilities::assumed`].
    pub fn capabilities(&self) -> Capabilities {
        match self.inner.capabilities.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the capabilities in use.
    pub fn set_capabilities(&self, capabilities: Capabilities) {
        match self.inner.capabilities.write() {
            Ok(mut c) => *c = capabilities,
            Err(poisoned) => *poisoned.into_inner() = capabilities,
        }
    }

    /// The URL of `path` (segments separated by `/`, e.g. `Users` or
    /// `/Users`) under the base URL, with an optional resource id as one
    /// more, percent-encoded, segment.
    pub(crate) fn url(&self, path: &str, id: Option<&str>) -> Result<Url> {
        let mut url = self.inner.base.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| ClientError::InvalidRequest("base URL cannot be a base".into()))?;
            segments.pop_if_empty();
            for s in path.split('/').filter(|s| !s.is_empty()) {
                segments.push(s);
            }
            if let Some(id) = id {
                if id.is_empty() {
                    return Err(ClientError::InvalidRequest("empty resource id".into()));
                }
                segments.push(id);
            }
        }
        Ok(url)
    }

    async fn authorization(&self, call: &Call) -> Result<Option<String>> {
        if let Some(a) = &call.authorization {
            return Ok(Some(a.clone()));
        }
        if !call.authenticate {
            return Ok(None);
        }
        if let Some(h) = self.inner.auth.static_header() {
            return Ok(Some(h));
        }
        if matches!(self.inner.auth, Auth::OAuth2(_)) {
            let token = Box::pin(self.oauth_token()).await?;
            return Ok(Some(format!("Bearer {}", token.expose())));
        }
        Ok(None)
    }

    /// The cached OAuth2 access token, fetched when missing or stale.
    /// Concurrent callers wait for one token request.
    async fn oauth_token(&self) -> Result<crate::auth::Secret> {
        let Auth::OAuth2(creds) = &self.inner.auth else {
            return Err(ClientError::InvalidRequest("not OAuth2".into()));
        };
        let mut cached = self.inner.token.lock().await;
        if let Some(t) = cached.as_ref().filter(|t| t.is_fresh(Instant::now())) {
            return Ok(t.token.clone());
        }
        let url = Url::parse(&creds.token_url)
            .map_err(|e| ClientError::InvalidRequest(format!("token URL: {e}")))?;
        let token_url = display_url(&url);
        let mut call = Call::new(Method::POST, url);
        call.content_type = "application/x-www-form-urlencoded";
        call.authenticate = false;
        call.authorization = creds.token_request_auth();
        let form = creds.form();
        let body = form
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    crate::auth::form_urlencode(k),
                    crate::auth::form_urlencode(v)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        call.body = Some(body.into_bytes());
        // The token request is safe to repeat: it only mints a token.
        let reply = match self.send_as(&call, true).await {
            Ok(r) => r,
            Err(ClientError::Http { error, .. }) => {
                let reason = token_error_reason(
                    error.status,
                    error.body.as_deref().map(str::as_bytes).unwrap_or_default(),
                );
                let reason = if error.body.is_some() {
                    reason
                } else {
                    error.to_string()
                };
                return Err(ClientError::OAuth { token_url, reason });
            }
            Err(e) => {
                return Err(ClientError::OAuth {
                    token_url,
                    reason: e.to_string(),
                });
            }
        };
        let token = parse_token_response(&reply.body, Instant::now())
            .map_err(|reason| ClientError::OAuth { token_url, reason })?;
        log::debug!("OAuth2: new access token");
        let secret = token.token.clone();
        *cached = Some(token);
        Ok(secret)
    }

    async fn forget_token(&self) {
        *self.inner.token.lock().await = None;
    }

    /// One attempt: `Ok(Ok(reply))` for a 2xx answer, `Ok(Err(reply))` for
    /// any other answer.
    async fn attempt(
        &self,
        call: &Call,
    ) -> std::result::Result<std::result::Result<Reply, Reply>, AttemptError> {
        if let Some(FilterSlot(filter)) = &self.inner.address_filter {
            crate::target::check_literal(filter.as_ref(), &call.url).map_err(|why| {
                AttemptError::Fatal(ClientError::Connect {
                    method: call.method.clone(),
                    url: call.display_url(),
                    reason: format!("refused by the address policy: {why}"),
                })
            })?;
        }
        let mut rb = self
            .inner
            .http
            .request(call.method.clone(), call.url.clone())
            .header(ACCEPT, ACCEPT_VALUE);
        if let Some(a) = self
            .authorization(call)
            .await
            .map_err(AttemptError::Fatal)?
        {
            let mut v = HeaderValue::from_str(&a).map_err(|_| {
                AttemptError::Fatal(ClientError::InvalidRequest(
                    "the credentials are not a valid header value".into(),
                ))
            })?;
            v.set_sensitive(true);
            rb = rb.header(AUTHORIZATION, v);
        }
        if let Some(body) = &call.body {
            rb = rb
                .header(CONTENT_TYPE, call.content_type)
                .body(body.clone());
        }
        if let Some(m) = &call.if_match {
            rb = rb.header(IF_MATCH, m.as_str());
        }
        let resp = rb.send().await.map_err(|e| classify(&e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|e| classify(&e))?.to_vec();
        let reply = Reply {
            status,
            headers,
            body,
        };
        if (200..300).contains(&status) {
            Ok(Ok(reply))
        } else {
            Ok(Err(reply))
        }
    }

    /// Sends a call with the retry policy; a non-2xx answer is an
    /// [`ClientError::Http`].
    pub(crate) async fn send(&self, call: &Call) -> Result<Reply> {
        self.send_as(call, false).await
    }

    /// [`ScimClient::send`], treating the call as idempotent when
    /// `idempotent` (for POSTs that are safe to repeat, such as searches).
    pub(crate) async fn send_as(&self, call: &Call, idempotent: bool) -> Result<Reply> {
        let policy = &self.inner.retry;
        // Decide as if the method were GET when the caller vouches for it.
        let method_for_retry = if idempotent {
            Method::GET
        } else {
            call.method.clone()
        };
        let url = call.display_url();
        let mut attempts = 0u32;
        let mut waited = Duration::ZERO;
        let mut token_refreshed = false;
        // Bounded: every pass either returns or counts an attempt, and
        // `decide` stops at `max_attempts`; the token refresh happens once.
        loop {
            attempts += 1;
            if let Some(pace) = &self.inner.pace {
                pace.wait().await;
            }
            if let Some(limiter) = &self.inner.limiter {
                limiter.acquire().await;
            }
            let started = Instant::now();
            let result = self.attempt(call).await;
            if let Some(ObserverSlot(observer)) = &self.inner.observer {
                observer.observe(exchange(
                    call,
                    &result,
                    started.elapsed(),
                    attempts,
                    self.inner.scim_bodies_only,
                ));
            }
            let elapsed = started.elapsed().as_millis();
            let (outcome, error) = match result {
                Ok(Ok(reply)) => {
                    log::debug!("{} {url}: {} in {elapsed} ms", call.method, reply.status);
                    return Ok(reply);
                }
                Ok(Err(reply)) => {
                    if reply.status == 401
                        && call.authenticate
                        && !token_refreshed
                        && matches!(self.inner.auth, Auth::OAuth2(_))
                    {
                        log::info!("{} {url}: 401, fetching a new OAuth2 token", call.method);
                        token_refreshed = true;
                        self.forget_token().await;
                        attempts -= 1;
                        continue;
                    }
                    let retry_after = reply
                        .headers
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    let mut error =
                        HttpError::from_response(reply.status, &reply.body, retry_after);
                    if self.inner.scim_bodies_only && error.body.is_some() {
                        error.body = Some(withheld_note(reply.content_type(), reply.body.len()));
                    }
                    log::debug!("{} {url}: {error} in {elapsed} ms", call.method);
                    (
                        Outcome::Status(reply.status, retry_after),
                        ClientError::Http {
                            method: call.method.clone(),
                            url: url.clone(),
                            error: Box::new(error),
                        },
                    )
                }
                Err(AttemptError::Fatal(e)) => return Err(e),
                Err(AttemptError::Net { outcome, reason }) => {
                    let error = match outcome {
                        Outcome::ConnectFailed => ClientError::Connect {
                            method: call.method.clone(),
                            url: url.clone(),
                            reason,
                        },
                        Outcome::TimedOut => ClientError::Timeout {
                            method: call.method.clone(),
                            url: url.clone(),
                            timeout: self.inner.timeout,
                        },
                        _ => ClientError::Transport {
                            method: call.method.clone(),
                            url: url.clone(),
                            reason,
                        },
                    };
                    (outcome, error)
                }
            };
            match policy.decide(&method_for_retry, outcome, attempts, waited) {
                Decision::Stop => {
                    if attempts > 1 {
                        log::warn!("{error} (gave up after {attempts} attempts)");
                    }
                    return Err(error);
                }
                Decision::RetryAfter(wait) => {
                    log::warn!(
                        "{error}; retrying in {} ms (attempt {} of {})",
                        wait.as_millis(),
                        attempts + 1,
                        policy.max_attempts
                    );
                    tokio::time::sleep(wait).await;
                    waited += wait;
                }
            }
        }
    }

    /// Sends one `application/json` request to `path` (segments under the
    /// base URL, e.g. a service's management API) with `query` pairs, using
    /// the client's authentication, retries, limiter and observer. Answers
    /// the JSON body, `None` when empty. For APIs beside SCIM; SCIM
    /// resources have [`crate::Endpoint`].
    pub async fn call_json(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<Option<serde_json::Value>> {
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| ClientError::InvalidRequest(format!("not an HTTP method: {method}")))?;
        let mut url = self.url(path, None)?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        let mut call = Call::new(method, url);
        if let Some(body) = body {
            call = call.json(body)?;
            call.content_type = "application/json";
        }
        let reply = self.send(&call).await?;
        if reply.is_empty() {
            return Ok(None);
        }
        self.decode(&call, &reply).map(Some)
    }

    /// Decodes a JSON body.
    pub(crate) fn decode<T: DeserializeOwned>(&self, call: &Call, reply: &Reply) -> Result<T> {
        serde_json::from_slice(&reply.body).map_err(|e| ClientError::Decode {
            method: call.method.clone(),
            url: call.display_url(),
            status: reply.status,
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_built_under_the_base() {
        let c = ScimClient::builder("https://h.example/scim/v2?x=1")
            .build()
            .unwrap();
        assert_eq!(c.base_url().as_str(), "https://h.example/scim/v2/");
        assert_eq!(
            c.url("/Users", Some("a b/c")).unwrap().as_str(),
            "https://h.example/scim/v2/Users/a%20b%2Fc"
        );
        assert_eq!(
            c.url("Users/.search", None).unwrap().as_str(),
            "https://h.example/scim/v2/Users/.search"
        );
        assert!(c.url("Users", Some("")).is_err());
        assert!(ScimClient::builder("ftp://h/").build().is_err());
        assert!(ScimClient::builder("not a url").build().is_err());
        let root = ScimClient::builder("http://127.0.0.1:1").build().unwrap();
        assert_eq!(
            root.url("Groups", None).unwrap().as_str(),
            "http://127.0.0.1:1/Groups"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pace_spaces_requests() {
        let pace = Pace {
            interval: Duration::from_millis(100),
            next: Mutex::new(None),
        };
        let start = tokio::time::Instant::now();
        for _ in 0..5 {
            pace.wait().await;
        }
        // The first goes at once, the fifth 400 ms later.
        assert_eq!(start.elapsed(), Duration::from_millis(400));
        // After a pause, no catching up in a burst.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let again = tokio::time::Instant::now();
        pace.wait().await;
        pace.wait().await;
        assert_eq!(again.elapsed(), Duration::from_millis(100));
    }

    #[test]
    fn debug_hides_credentials() {
        let c = ScimClient::builder("https://h/")
            .auth(Auth::bearer("t0psecret"))
            .build()
            .unwrap();
        assert!(!format!("{c:?}").contains("t0psecret"));
    }
}
