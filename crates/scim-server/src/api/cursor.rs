//! RFC 9865 cursors: opaque, tamper-proof, bound to the tenant and the query.
//!
//! A cursor is `base64url(payload) "." base64url(tag)`, only characters of
//! the RFC 3986 unreserved set. The payload (JSON) holds the tenant, a hash
//! of the query (endpoint, filter, sortBy, sortOrder, attributes,
//! excludedAttributes), the page size, the direction, the sort key of the
//! row the page starts after (or before) and when it was issued; the tag is
//! HMAC-SHA256 of the payload under the server secret `cursor` (stored in
//! the database, so every replica on it accepts every cursor), cut to 128
//! bits. Checks, in order:
//!
//! 1. the tag verifies and the payload parses, the tenant and query hash
//!    match: otherwise `invalidCursor` (one message for every reason, RFC
//!    9865 section 5.2);
//! 2. it was issued less than `cursorTimeout` ago: otherwise `expiredCursor`;
//! 3. the request's page size is the one the walk started with:
//!    otherwise `invalidCount`.
//!
//! The payload is signed, not encrypted: it shows the sort value of a row
//! the client has already received.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use scim_core::ErrorKind;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::store::{SortKey, TenantId};

/// Which way a cursor walks from its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// The page after the key (nextCursor).
    #[serde(rename = "n")]
    Next,
    /// The page before the key (previousCursor).
    #[serde(rename = "p")]
    Previous,
}

/// What a cursor says, once verified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CursorState {
    /// The walk's direction from `key`.
    #[serde(rename = "d")]
    pub direction: Direction,
    /// The key the page starts after (next) or ends before (previous).
    #[serde(rename = "k")]
    pub key: SortKey,
    /// The page size of the walk.
    #[serde(rename = "c")]
    pub count: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    #[serde(rename = "t")]
    tenant: i64,
    #[serde(rename = "q")]
    query: String,
    #[serde(rename = "i")]
    issued: i64,
    #[serde(flatten)]
    state: CursorState,
}

const TAG_BYTES: usize = 16;

/// A hash of what defines a query's result sequence and shape: a cursor
/// is only accepted with the same query.
pub fn query_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

fn tag(secret: &[u8], payload: &str) -> Result<Vec<u8>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|e| crate::Error::internal(format!("cursor key: {e}")))?;
    mac.update(payload.as_bytes());
    Ok(mac.finalize().into_bytes()[..TAG_BYTES].to_vec())
}

/// Issues a cursor.
pub fn encode(
    secret: &[u8],
    tenant: TenantId,
    query: &str,
    now: i64,
    state: CursorState,
) -> Result<String> {
    let payload = Payload {
        tenant: tenant.0,
        query: query.to_owned(),
        issued: now,
        state,
    };
    let json = serde_json::to_vec(&payload)
        .map_err(|e| crate::Error::internal(format!("cursor payload: {e}")))?;
    let body = URL_SAFE_NO_PAD.encode(json);
    let tag = URL_SAFE_NO_PAD.encode(tag(secret, &body)?);
    Ok(format!("{body}.{tag}"))
}

fn invalid() -> crate::Error {
    scim_core::Error::new(
        ErrorKind::InvalidCursor,
        "the cursor is not valid: send an empty cursor for the first page, then the \
         nextCursor or previousCursor of the last response with the same query",
    )
    .into()
}

/// Verifies a cursor for this tenant and query, issued at most
/// `timeout_secs` before `now`, for a page of `count`.
pub fn decode(
    secret: &[u8],
    cursor: &str,
    tenant: TenantId,
    query: &str,
    now: i64,
    timeout_secs: u64,
    count: u64,
) -> Result<CursorState> {
    let (body, given) = cursor.trim().split_once('.').ok_or_else(invalid)?;
    let given = URL_SAFE_NO_PAD.decode(given).map_err(|_| invalid())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|e| crate::Error::internal(format!("cursor key: {e}")))?;
    mac.update(body.as_bytes());
    // A shorter tag would verify fewer bytes.
    if given.len() != TAG_BYTES {
        return Err(invalid());
    }
    mac.verify_truncated_left(&given).map_err(|_| invalid())?;
    let json = URL_SAFE_NO_PAD.decode(body).map_err(|_| invalid())?;
    let payload: Payload = serde_json::from_slice(&json).map_err(|_| invalid())?;
    if payload.tenant != tenant.0 || payload.query != query {
        return Err(invalid());
    }
    let age = now.saturating_sub(payload.issued);
    if age < 0 || u64::try_from(age).unwrap_or(u64::MAX) > timeout_secs {
        return Err(scim_core::Error::new(
            ErrorKind::ExpiredCursor,
            format!("the cursor has expired: request the next page within {timeout_secs} seconds"),
        )
        .into());
    }
    if payload.state.count != count {
        return Err(scim_core::Error::new(
            ErrorKind::InvalidCount,
            format!(
                "count must stay {} while walking these cursors",
                payload.state.count
            ),
        )
        .into());
    }
    Ok(payload.state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeyValue;

    fn state() -> CursorState {
        CursorState {
            direction: Direction::Next,
            key: SortKey {
                missing: false,
                value: Some(KeyValue::Text("bjensen".into())),
                pk: 42,
            },
            count: 10,
        }
    }

    #[test]
    fn round_trip_and_tampering() {
        let key = b"0123456789abcdef0123456789abcdef";
        let q = query_hash(&["Users", "userName sw \"b\""]);
        let c = encode(key, TenantId(1), &q, 1000, state()).unwrap();
        assert!(
            c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)),
            "{c}"
        );
        assert_eq!(
            decode(key, &c, TenantId(1), &q, 1010, 60, 10).unwrap(),
            state()
        );
        let kind = |r: Result<CursorState>| r.unwrap_err().kind();
        // Another tenant, another query, another key, garbage, a flipped bit.
        assert_eq!(
            kind(decode(key, &c, TenantId(2), &q, 1010, 60, 10)),
            ErrorKind::InvalidCursor
        );
        let other = query_hash(&["Users", "userName sw \"c\""]);
        assert_eq!(
            kind(decode(key, &c, TenantId(1), &other, 1010, 60, 10)),
            ErrorKind::InvalidCursor
        );
        assert_eq!(
            kind(decode(b"another key", &c, TenantId(1), &q, 1010, 60, 10)),
            ErrorKind::InvalidCursor
        );
        for bad in ["", ".", "abc", "abc.def", &c[1..], &format!("{c}x")] {
            assert_eq!(
                kind(decode(key, bad, TenantId(1), &q, 1010, 60, 10)),
                ErrorKind::InvalidCursor,
                "{bad}"
            );
        }
        let mut bytes = c.clone().into_bytes();
        bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).unwrap();
        assert_eq!(
            kind(decode(key, &flipped, TenantId(1), &q, 1010, 60, 10)),
            ErrorKind::InvalidCursor
        );
        // Expired, then a changed count.
        assert_eq!(
            kind(decode(key, &c, TenantId(1), &q, 1061, 60, 10)),
            ErrorKind::ExpiredCursor
        );
        assert_eq!(
            kind(decode(key, &c, TenantId(1), &q, 1010, 60, 11)),
            ErrorKind::InvalidCount
        );
    }
}
