//! When to try a request again, and how long to wait first.
//!
//! The rules ([`RetryPolicy::decide`]):
//!
//! | what happened | methods retried | wait |
//! |---|---|---|
//! | could not connect (nothing was sent) | all | backoff |
//! | 429 or 503 (the provider refused to process the request) | all | `Retry-After`, else backoff |
//! | 408, 500, 502, 504 | GET, HEAD, PUT, DELETE | backoff |
//! | timeout or connection lost after sending | GET, HEAD, PUT, DELETE | backoff |
//! | anything else | none | |
//!
//! POST and PATCH are not idempotent: once they may have reached the
//! provider, trying again could create a second account or apply an `add`
//! twice, so they are retried only when the provider certainly did not act
//! on them.
//!
//! Backoff is exponential with full jitter: the wait before retry `n`
//! (counting from 0) is drawn uniformly from
//! `0..=min(max_backoff, initial_backoff * 2^n)`. A `Retry-After` (seconds
//! or an HTTP date) is honoured as given when it is at most
//! `max_retry_after`; a longer one ends the retries at once and the error
//! carries it ([`crate::ClientError::retry_after`]), so a caller such as a
//! provisioning queue can reschedule instead of holding a task for minutes.
//! No retry starts once the waits would add up to more than
//! `max_total_wait`.

use std::time::{Duration, SystemTime};

use reqwest::Method;

/// How often and how patiently to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The most attempts of one request, the first included (1 = no retries).
    pub max_attempts: u32,
    /// The backoff ceiling of the first retry; it doubles with each retry.
    pub initial_backoff: Duration,
    /// The largest backoff ceiling.
    pub max_backoff: Duration,
    /// The most time spent waiting between the attempts of one request.
    pub max_total_wait: Duration,
    /// The longest `Retry-After` honoured; a longer one ends the retries.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 4 attempts, backoff from 250 ms up to 8 s, at most 30 s of waiting,
    /// `Retry-After` up to 30 s.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_total_wait: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

/// What one attempt came to, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response with this status and, if sent, `Retry-After`.
    Status(u16, Option<Duration>),
    /// No connection could be made: the request was not sent.
    ConnectFailed,
    /// The request timed out, possibly after reaching the provider.
    TimedOut,
    /// The connection failed after the request was possibly sent.
    ConnectionLost,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then try again.
    RetryAfter(Duration),
    /// Give up and report the outcome.
    Stop,
}

/// Whether a method may be repeated without changing the result
/// (RFC 9110 section 9.2.2). PATCH and POST are not.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The upper bound of the backoff before retry `retry` (0 for the first
    /// retry): `min(max_backoff, initial_backoff * 2^retry)`.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.initial_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    /// A backoff with full jitter: uniform in `0..=backoff_ceiling(retry)`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.backoff_ceiling(retry).as_millis();
        let ceiling = u64::try_from(ceiling).unwrap_or(u64::MAX);
        Duration::from_millis(rand::random_range(0..=ceiling))
    }

    /// Decides whether to retry after `attempts` attempts (1 after the
    /// first) with `waited` already spent waiting, given the method and what
    /// the last attempt came to. See the module documentation for the rules.
    pub fn decide(
        &self,
        method: &Method,
        outcome: Outcome,
        attempts: u32,
        waited: Duration,
    ) -> Decision {
        if attempts >= self.max_attempts {
            return Decision::Stop;
        }
        let retry = attempts.saturating_sub(1);
        let idempotent = is_idempotent(method);
        let wait = match outcome {
            Outcome::ConnectFailed => self.backoff(retry),
            Outcome::Status(429 | 503, Some(ra)) => {
                if ra > self.max_retry_after {
                    return Decision::Stop;
                }
                ra
            }
            Outcome::Status(429 | 503, None) => self.backoff(retry),
            Outcome::Status(408 | 500 | 502 | 504, _) if idempotent => self.backoff(retry),
            Outcome::TimedOut | Outcome::ConnectionLost if idempotent => self.backoff(retry),
            _ => return Decision::Stop,
        };
        if waited.saturating_add(wait) > self.max_total_wait {
            return Decision::Stop;
        }
        Decision::RetryAfter(wait)
    }
}

/// Reads a `Retry-After` header value (RFC 9110 section 10.2.3): a number
/// of seconds, or an HTTP date (then the time from `now` until it; a date
/// in the past is zero). `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            max_total_wait: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(5),
        }
    }

    #[test]
    fn backoff_is_exponential_capped_and_jittered() {
        let p = policy();
        let ceilings: Vec<u128> = (0..6).map(|r| p.backoff_ceiling(r).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.backoff_ceiling(1000), Duration::from_millis(1000));
        let mut distinct = std::collections::HashSet::new();
        for retry in 0..6 {
            for _ in 0..200 {
                let b = p.backoff(retry);
                assert!(b <= p.backoff_ceiling(retry), "{b:?} retry {retry}");
                distinct.insert(b);
            }
        }
        assert!(distinct.len() > 50, "full jitter spreads the waits");
    }

    #[test]
    fn what_is_retried() {
        let p = policy();
        let z = Duration::ZERO;
        let retried = |m: &Method, o| matches!(p.decide(m, o, 1, z), Decision::RetryAfter(_));
        for m in [
            Method::GET,
            Method::PUT,
            Method::DELETE,
            Method::POST,
            Method::PATCH,
        ] {
            assert!(retried(&m, Outcome::ConnectFailed), "{m}");
            assert!(retried(&m, Outcome::Status(429, None)), "{m}");
            assert!(retried(&m, Outcome::Status(503, None)), "{m}");
            assert!(!retried(&m, Outcome::Status(400, None)), "{m}");
            assert!(!retried(&m, Outcome::Status(409, None)), "{m}");
            assert!(!retried(&m, Outcome::Status(501, None)), "{m}");
        }
        for m in [Method::GET, Method::PUT, Method::DELETE] {
            assert!(retried(&m, Outcome::TimedOut), "{m}");
            assert!(retried(&m, Outcome::ConnectionLost), "{m}");
            assert!(retried(&m, Outcome::Status(500, None)), "{m}");
            assert!(retried(&m, Outcome::Status(502, None)), "{m}");
        }
        for m in [Method::POST, Method::PATCH] {
            assert!(!retried(&m, Outcome::TimedOut), "{m}");
            assert!(!retried(&m, Outcome::ConnectionLost), "{m}");
            assert!(!retried(&m, Outcome::Status(500, None)), "{m}");
        }
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let p = policy();
        let z = Duration::ZERO;
        let three = Some(Duration::from_secs(3));
        assert_eq!(
            p.decide(&Method::POST, Outcome::Status(429, three), 1, z),
            Decision::RetryAfter(Duration::from_secs(3))
        );
        // Longer than max_retry_after: stop, the caller reschedules.
        let long = Some(Duration::from_secs(60));
        assert_eq!(
            p.decide(&Method::GET, Outcome::Status(503, long), 1, z),
            Decision::Stop
        );
        // The total wait budget.
        let waited = Duration::from_secs(8);
        assert_eq!(
            p.decide(&Method::GET, Outcome::Status(429, three), 2, waited),
            Decision::Stop
        );
        // Attempts.
        assert_eq!(
            p.decide(&Method::GET, Outcome::ConnectFailed, 5, z),
            Decision::Stop
        );
        assert_eq!(
            RetryPolicy::none().decide(&Method::GET, Outcome::ConnectFailed, 1, z),
            Decision::Stop
        );
    }

    #[test]
    fn parses_retry_after_in_both_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        // 1445412480 is Wed, 21 Oct 2015 07:28:00 GMT.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
