//! Bearer token secrets and scopes.
//!
//! A secret is `scim_` followed by 40 random base62 characters (about 238
//! bits). Only its SHA-256 is stored; a presented secret is hashed, the row
//! is found by that hash, and the hashes are compared again in constant time.
//!
//! ## Verified-token cache
//!
//! A successful verification is remembered in this process for
//! [`VERIFIED_TTL`], keyed by the secret's hash, so that a request with a
//! known token costs one SHA-256 and a map lookup instead of a database
//! round trip on the blocking pool ([`cached_principal`]). A revocation
//! through this process ([`crate::store::TokenStore::revoke_token`]) drops
//! the entry at once; a revocation by another process (the CLI, another
//! replica) takes effect here within [`VERIFIED_TTL`]. `last_used` is
//! written on the database path only, at most once a minute per token.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{LazyLock, RwLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::store::Principal;

/// The prefix of every secret, so leaked tokens are easy to recognise.
pub const SECRET_PREFIX: &str = "scim_";
/// The number of random base62 characters after the prefix.
pub const SECRET_RANDOM_LEN: usize = 40;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new random secret.
pub fn generate_secret() -> Result<String> {
    let mut out = String::with_capacity(SECRET_PREFIX.len() + SECRET_RANDOM_LEN);
    out.push_str(SECRET_PREFIX);
    let mut produced = 0;
    let mut buf = [0u8; 64];
    while produced < SECRET_RANDOM_LEN {
        getrandom::fill(&mut buf)
            .map_err(|e| Error::internal(format!("no randomness available: {e}")))?;
        // 248 = 4 * 62: bytes at or above it are dropped so every character
        // is equally likely.
        for b in buf.iter().filter(|b| **b < 248) {
            if produced == SECRET_RANDOM_LEN {
                break;
            }
            out.push(char::from(BASE62[usize::from(*b % 62)]));
            produced += 1;
        }
    }
    Ok(out)
}

/// Whether `s` has the shape of a secret (prefix, length, alphabet).
pub fn looks_like_secret(s: &str) -> bool {
    s.strip_prefix(SECRET_PREFIX).is_some_and(|rest| {
        rest.len() == SECRET_RANDOM_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// The stored form of a secret: lowercase hex SHA-256.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(b & 0x0f)]));
    }
    hex
}

/// Compares two hashes in constant time.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// How long a verified token is trusted without asking the database: the
/// longest a revocation made by another process can go unnoticed here.
pub const VERIFIED_TTL: Duration = Duration::from_secs(5);

/// The most tokens remembered at once; past it, expired entries are
/// dropped, and if none are, the whole cache is.
const VERIFIED_CAPACITY: usize = 10_000;

struct Verified {
    hash: String,
    principal: Principal,
    at: Instant,
}

static VERIFIED: LazyLock<RwLock<HashMap<String, Verified>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

/// The principal of `secret` if it was verified by this process less than
/// [`VERIFIED_TTL`] ago (and not revoked through it since).
pub fn cached_principal(secret: &str) -> Option<Principal> {
    if !looks_like_secret(secret) {
        return None;
    }
    let hash = hash_secret(secret);
    let cache = VERIFIED.read().ok()?;
    let entry = cache.get(&hash)?;
    (hashes_equal(&entry.hash, &hash) && entry.at.elapsed() < VERIFIED_TTL)
        .then_some(entry.principal)
}

/// Remembers that the secret with hash `hash` verified as `principal`.
pub fn remember_verified(hash: &str, principal: Principal) {
    let Ok(mut cache) = VERIFIED.write() else {
        return;
    };
    if cache.len() >= VERIFIED_CAPACITY {
        cache.retain(|_, v| v.at.elapsed() < VERIFIED_TTL);
        if cache.len() >= VERIFIED_CAPACITY {
            cache.clear();
        }
    }
    cache.insert(
        hash.to_owned(),
        Verified {
            hash: hash.to_owned(),
            principal,
            at: Instant::now(),
        },
    );
}

/// Forgets every cached verification of the token with this id.
pub fn forget_verified(token_id: i64) {
    if let Ok(mut cache) = VERIFIED.write() {
        cache.retain(|_, v| v.principal.token_id != token_id);
    }
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `scim:read`: read resources and discovery documents.
    Read,
    /// `scim:write`: create, change and delete resources; includes read.
    Write,
    /// `admin`: the management API under `/api/v1` (applications,
    /// assignments, provisioning). Grants no SCIM access by itself.
    Admin,
}

impl Scope {
    /// The scope's name as stored and as given on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "scim:read",
            Scope::Write => "scim:write",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "scim:read" | "read" => Ok(Scope::Read),
            "scim:write" | "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            other => Err(Error::Config(format!(
                "unknown scope '{other}': use scim:read, scim:write or admin"
            ))),
        }
    }
}

/// The set of scopes of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes {
    read: bool,
    write: bool,
    admin: bool,
}

impl Scopes {
    /// The scopes named in `scopes`.
    pub fn of(scopes: &[Scope]) -> Self {
        let mut s = Self::default();
        for scope in scopes {
            match scope {
                Scope::Read => s.read = true,
                Scope::Write => s.write = true,
                Scope::Admin => s.admin = true,
            }
        }
        s
    }

    /// Parses the stored, space-separated form. Unknown names are ignored
    /// (a newer version may have written them) and grant nothing.
    pub fn parse_stored(s: &str) -> Self {
        let scopes: Vec<Scope> = s
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        Self::of(&scopes)
    }

    /// Whether a token with these scopes may do what `needed` allows.
    /// Write includes read.
    pub fn allows(self, needed: Scope) -> bool {
        match needed {
            Scope::Read => self.read || self.write,
            Scope::Write => self.write,
            Scope::Admin => self.admin,
        }
    }

    /// Whether no scope is granted.
    pub fn is_empty(self) -> bool {
        !self.read && !self.write && !self.admin
    }
}

/// The stored form: scope names separated by spaces.
impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = Vec::new();
        if self.read {
            names.push(Scope::Read.as_str());
        }
        if self.write {
            names.push(Scope::Write.as_str());
        }
        if self.admin {
            names.push(Scope::Admin.as_str());
        }
        f.write_str(&names.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TenantId;

    #[test]
    fn verified_tokens_are_cached_until_forgotten() {
        let secret = generate_secret().unwrap();
        assert_eq!(cached_principal(&secret), None);
        let principal = Principal {
            tenant_id: TenantId(3),
            token_id: -42,
            scopes: Scopes::of(&[Scope::Read]),
        };
        remember_verified(&hash_secret(&secret), principal);
        assert_eq!(cached_principal(&secret), Some(principal));
        // Another secret, or a malformed one, is never answered from it.
        assert_eq!(cached_principal(&generate_secret().unwrap()), None);
        assert_eq!(cached_principal("scim_short"), None);
        forget_verified(-42);
        assert_eq!(cached_principal(&secret), None);
    }

    #[test]
    fn secrets_are_random_and_well_formed() {
        let a = generate_secret().unwrap();
        let b = generate_secret().unwrap();
        assert_ne!(a, b);
        assert!(looks_like_secret(&a), "{a}");
        assert_eq!(a.len(), SECRET_PREFIX.len() + SECRET_RANDOM_LEN);
        assert!(!looks_like_secret("scim_short"));
        assert!(!looks_like_secret(&a.replace("scim_", "xxxx_")));
    }

    #[test]
    fn hashes_are_sha256_hex_and_compare() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(hashes_equal(&hash_secret("x"), &hash_secret("x")));
        assert!(!hashes_equal(&hash_secret("x"), &hash_secret("y")));
        assert!(!hashes_equal("ab", "abc"));
    }

    #[test]
    fn write_includes_read_and_read_excludes_write() {
        let read = Scopes::of(&[Scope::Read]);
        assert!(read.allows(Scope::Read));
        assert!(!read.allows(Scope::Write));
        let write = Scopes::of(&[Scope::Write]);
        assert!(write.allows(Scope::Read));
        assert!(write.allows(Scope::Write));
        assert!(Scopes::default().is_empty());
        assert!(!Scopes::default().allows(Scope::Read));
    }

    #[test]
    fn scopes_round_trip_through_storage() {
        let both = Scopes::of(&[Scope::Write, Scope::Read]);
        assert_eq!(both.to_string(), "scim:read scim:write");
        assert_eq!(Scopes::parse_stored(&both.to_string()), both);
        assert_eq!(
            Scopes::parse_stored("scim:read admin:future"),
            Scopes::of(&[Scope::Read])
        );
        assert_eq!("WRITE".parse::<Scope>().unwrap(), Scope::Write);
        assert!("scim:admin".parse::<Scope>().is_err());
        let admin = Scopes::of(&[Scope::Admin]);
        assert_eq!(admin.to_string(), "admin");
        assert_eq!(Scopes::parse_stored("admin"), admin);
        assert!(admin.allows(Scope::Admin));
        assert!(!admin.allows(Scope::Read));
        assert!(!Scopes::of(&[Scope::Write]).allows(Scope::Admin));
    }
}
