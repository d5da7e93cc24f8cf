//! Watching the exchanges a client has with a provider, and sharing a
//! request budget between clients.
//!
//! An [`Observer`] set with [`crate::ClientBuilder::observer`] sees every
//! attempt the client makes (retries and reads included) as an
//! [`Exchange`]: method, URL, request body, status, response body (both
//! bounded in size), error and duration. Secrets never reach it: headers
//! are not part of an exchange, the bodies of OAuth2 token requests and
//! answers are replaced by `[redacted]`, and every JSON member named
//! `password` (any case, at any depth) reads `[redacted]`.
//!
//! A [`RateLimiter`] is a token bucket; clients built with the same one
//! ([`crate::ClientBuilder::limiter`]) share its budget, so several clients
//! of one provider stay under one rate together.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;

/// The longest body kept in an [`Exchange`], in bytes.
pub const MAX_OBSERVED_BODY: usize = 4000;

/// What stands in for a secret.
pub const REDACTED: &str = "[redacted]";

/// One attempt of a request and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The HTTP method.
    pub method: String,
    /// The URL with its query, without user information.
    pub url: String,
    /// The request body, redacted and bounded.
    pub request_body: Option<String>,
    /// The status answered (`None`: no answer, see `error`).
    pub status: Option<u16>,
    /// The response body, redacted and bounded (`None`: empty).
    pub response_body: Option<String>,
    /// Why the attempt failed (a non-2xx status or a transport failure).
    pub error: Option<String>,
    /// How long the attempt took.
    pub duration: Duration,
    /// 1 for the first attempt of a request, 2 for its first retry, ...
    pub attempt: u32,
}

/// Receives every [`Exchange`] of a client. Called on the request path:
/// keep it quick (collect, then store elsewhere).
pub trait Observer: Send + Sync {
    /// One attempt finished.
    fn observe(&self, exchange: Exchange);
}

/// An observer held by a client (printable, so builders stay `Debug`).
#[derive(Clone)]
pub(crate) struct ObserverSlot(pub(crate) Arc<dyn Observer>);

impl std::fmt::Debug for ObserverSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

/// A body as an observer may see it: JSON with every `password` member
/// redacted, or the text itself, cut at [`MAX_OBSERVED_BODY`] bytes.
pub fn redact_body(bytes: &[u8]) -> Option<String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let text = match serde_json::from_slice::<Value>(bytes) {
        Ok(mut v) => {
            redact_passwords(&mut v, 0);
            v.to_string()
        }
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    };
    Some(bound(text))
}

/// Cuts `s` at [`MAX_OBSERVED_BODY`] bytes (on a character boundary),
/// marking the cut with `…`.
pub fn bound(mut s: String) -> String {
    if s.len() > MAX_OBSERVED_BODY {
        let mut cut = MAX_OBSERVED_BODY;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Nesting deeper than this is left as it is (the JSON parser's own limit
/// is lower).
const MAX_DEPTH: usize = 64;

fn redact_passwords(v: &mut Value, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                if k.eq_ignore_ascii_case("password") {
                    *item = Value::String(REDACTED.into());
                } else {
                    redact_passwords(item, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                redact_passwords(item, depth + 1);
            }
        }
        _ => {}
    }
}

/// A token bucket: `per_second` requests on average, bursts of at most
/// `burst`. Cheap to clone; clones share the bucket.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    inner: Arc<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    per_second: f64,
    burst: f64,
    state: Mutex<(f64, tokio::time::Instant)>,
}

impl RateLimiter {
    /// A bucket refilled at `per_second` (at least 0.001) holding at most
    /// `burst` (at least 1) tokens; it starts full.
    pub fn new(per_second: f64, burst: u32) -> Self {
        let per_second = if per_second.is_finite() {
            per_second.max(0.001)
        } else {
            f64::MAX
        };
        let burst = f64::from(burst.max(1));
        Self {
            inner: Arc::new(Bucket {
                per_second,
                burst,
                state: Mutex::new((burst, tokio::time::Instant::now())),
            }),
        }
    }

    /// The refill rate.
    pub fn per_second(&self) -> f64 {
        self.inner.per_second
    }

    /// Waits until a token is available and takes it. Waiters queue on a
    /// fair lock, so each waits its turn.
    pub async fn acquire(&self) {
        let b = &self.inner;
        let mut state = b.state.lock().await;
        let now = tokio::time::Instant::now();
        let (tokens, last) = *state;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * b.per_second).min(b.burst);
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now);
            return;
        }
        let wait = Duration::from_secs_f64(((1.0 - tokens) / b.per_second).min(3600.0));
        tokio::time::sleep(wait).await;
        // The wait earned exactly the missing part of a token.
        *state = (0.0, now + wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn passwords_are_redacted_at_any_depth() {
        let body = json!({"userName": "a", "Password": "s3cret",
            "Operations": [{"op": "replace", "value": {"password": "x"}}]});
        let shown = redact_body(body.to_string().as_bytes()).unwrap();
        assert!(
            !shown.contains("s3cret") && !shown.contains("\"x\""),
            "{shown}"
        );
        assert_eq!(shown.matches(REDACTED).count(), 2);
        assert_eq!(redact_body(b"  "), None);
        assert_eq!(redact_body(b"plain").as_deref(), Some("plain"));
    }

    #[test]
    fn bodies_are_bounded() {
        let long = "é".repeat(MAX_OBSERVED_BODY);
        let cut = bound(long);
        assert!(cut.len() <= MAX_OBSERVED_BODY + 3);
        assert!(cut.ends_with('…'));
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_allows_bursts_then_paces() {
        let limiter = RateLimiter::new(10.0, 3);
        let start = tokio::time::Instant::now();
        for _ in 0..3 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        for _ in 0..5 {
            limiter.acquire().await;
        }
        // Five more at 10 per second: 500 ms.
        let took = start.elapsed().as_millis();
        assert!((499..=501).contains(&took), "{took}");
        // Clones share the bucket.
        let other = limiter.clone();
        let again = tokio::time::Instant::now();
        other.acquire().await;
        limiter.acquire().await;
        assert_eq!(again.elapsed().as_millis(), 200);
    }
}
