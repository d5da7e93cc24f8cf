//! The SCIM `password` attribute: hashed with Argon2id before it is
//! stored, never returned (its schema says `returned: never`, which the
//! projection and the attribute index honour).
//!
//! A stored document holds the PHC string (`$argon2id$v=19$...`) in place
//! of the password. [`protect`] runs on every document about to be stored:
//! a `password` that is the stored hash (kept by a PUT or PATCH that did
//! not touch it) stays; a new plaintext that verifies against the stored
//! hash keeps the stored hash too, so resending the same password is not a
//! change; any other plaintext is hashed with a fresh salt.
//!
//! Argon2 is slow on purpose (tens of milliseconds), so it never runs
//! inside a store write, where SQLite's single write gate would make every
//! other writer wait: a replace or patch works its hash out first with
//! [`Prepared::prepare`] against the stored document, and the write only
//! takes it with [`Prepared::apply`] (no Argon2), or asks for a new
//! preparation when the stored password changed in between. The store marks
//! its write closures with [`WriteScope`]; Argon2 work inside one is counted
//! by [`work_in_writes`] (which stays 0) and logged.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use scim_core::json::key_ci;
use serde_json::Value;

use crate::error::{Error, Result};

/// The Argon2id hash (PHC string) of `password`, with a random salt and
/// the crate's default cost (RFC 9106's second recommended option).
pub fn hash(password: &str) -> Result<String> {
    note_work();
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("password hashing failed: {e}")))
}

/// Whether `password` matches the PHC string `hash`. A malformed hash
/// matches nothing.
pub fn verify(password: &str, hash: &str) -> bool {
    note_work();
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// Replaces a plaintext `password` in `document` by its hash, keeping the
/// hash of `previous` (the stored document, for a replace or patch) when
/// the password did not change. A `password` that is not a string is left
/// for validation to refuse. Slow: call it outside store writes.
pub fn protect(document: &mut Value, previous: Option<&Value>) -> Result<()> {
    let mut prepared = Prepared::default();
    prepared.prepare(document, previous)?;
    if prepared.apply(document, previous) {
        Ok(())
    } else {
        Err(Error::internal("a prepared password hash did not apply"))
    }
}

/// Password hashes worked out before a write, for the write to take
/// without any Argon2 work of its own.
#[derive(Debug, Default, Clone)]
pub struct Prepared {
    entries: Vec<PreparedHash>,
}

/// What [`protect`] stores for the plaintext `given` when the stored hash
/// is `stored`.
#[derive(Debug, Clone)]
struct PreparedHash {
    given: String,
    stored: Option<String>,
    protected: String,
}

impl Prepared {
    /// Works out (slowly) what to store for the plaintext password of
    /// `document` when the stored document is `previous`. Nothing to do
    /// without a plaintext password, or when it is the stored hash itself.
    pub fn prepare(&mut self, document: &Value, previous: Option<&Value>) -> Result<()> {
        let Some((_, given)) = given_password(document) else {
            return Ok(());
        };
        let stored = stored_password(previous);
        if stored == Some(given) || self.find(given, stored).is_some() {
            return Ok(());
        }
        let protected = match stored {
            Some(stored) if verify(given, stored) => stored.to_owned(),
            _ => hash(given)?,
        };
        self.entries.push(PreparedHash {
            given: given.to_owned(),
            stored: stored.map(str::to_owned),
            protected,
        });
        Ok(())
    }

    /// [`protect`] without Argon2: replaces the plaintext password of
    /// `document` by the prepared hash. `false` (and `document` untouched)
    /// when none was prepared for this password against this stored hash:
    /// prepare again against the current document.
    pub fn apply(&self, document: &mut Value, previous: Option<&Value>) -> bool {
        let Some((key, given)) = given_password(document) else {
            return true;
        };
        let stored = stored_password(previous);
        let protected = if stored == Some(given) {
            given.to_owned()
        } else {
            match self.find(given, stored) {
                Some(p) => p.to_owned(),
                None => return false,
            }
        };
        if let Some(doc) = document.as_object_mut() {
            doc.insert(key, Value::String(protected));
        }
        true
    }

    fn find(&self, given: &str, stored: Option<&str>) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.given == given && e.stored.as_deref() == stored)
            .map(|e| e.protected.as_str())
    }
}

/// The key and plaintext of a string `password` in `document`.
fn given_password(document: &Value) -> Option<(String, &str)> {
    let doc = document.as_object()?;
    let key = key_ci(doc, "password")?;
    let given = doc.get(&key)?.as_str()?;
    Some((key, given))
}

/// The stored hash in the stored document.
fn stored_password(previous: Option<&Value>) -> Option<&str> {
    previous
        .and_then(Value::as_object)
        .and_then(|o| key_ci(o, "password").and_then(|k| o.get(&k)))
        .and_then(Value::as_str)
}

thread_local! {
    /// Whether this thread runs a store write closure.
    static IN_WRITE: Cell<bool> = const { Cell::new(false) };
}

/// Argon2 computations that ran inside a store write.
static WORK_IN_WRITES: AtomicU64 = AtomicU64::new(0);

/// Marks the current thread as running a store write until dropped.
#[derive(Debug)]
pub struct WriteScope {
    outer: bool,
}

impl WriteScope {
    /// Enters a write (nesting is allowed).
    pub fn enter() -> Self {
        Self {
            outer: IN_WRITE.with(|w| w.replace(true)),
        }
    }
}

impl Drop for WriteScope {
    fn drop(&mut self) {
        IN_WRITE.with(|w| w.set(self.outer));
    }
}

/// How many Argon2 hashes or verifications ran inside a store write since
/// the process started: 0 unless a write path forgot to prepare.
pub fn work_in_writes() -> u64 {
    WORK_IN_WRITES.load(Ordering::Relaxed)
}

fn note_work() {
    if IN_WRITE.with(Cell::get) {
        WORK_IN_WRITES.fetch_add(1, Ordering::Relaxed);
        log::warn!("password hashing ran inside a store write");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn passwords_are_hashed_and_kept() {
        let mut doc = json!({"userName": "a", "password": "t1meMa$heen"});
        protect(&mut doc, None).unwrap();
        let stored = doc["password"].as_str().unwrap().to_owned();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(verify("t1meMa$heen", &stored));
        assert!(!verify("other", &stored));
        assert!(!verify("x", "not a hash"));

        // The stored hash carried over by a replace stays.
        let previous = doc.clone();
        let mut kept = json!({"userName": "a", "password": stored});
        protect(&mut kept, Some(&previous)).unwrap();
        assert_eq!(kept["password"], previous["password"]);
        // The same plaintext again is no change either.
        let mut again = json!({"userName": "a", "password": "t1meMa$heen"});
        protect(&mut again, Some(&previous)).unwrap();
        assert_eq!(again["password"], previous["password"]);
        // A new one gets a new hash.
        let mut changed = json!({"userName": "a", "Password": "n3w"});
        protect(&mut changed, Some(&previous)).unwrap();
        assert_ne!(changed["Password"], previous["password"]);
        assert!(verify("n3w", changed["Password"].as_str().unwrap()));
        // No password: nothing to do.
        let mut none = json!({"userName": "a"});
        protect(&mut none, Some(&previous)).unwrap();
        assert_eq!(none, json!({"userName": "a"}));
    }

    #[test]
    fn prepared_hashes_apply_only_against_the_same_stored_hash() {
        let mut first = json!({"password": "one"});
        protect(&mut first, None).unwrap();
        let mut prepared = Prepared::default();
        let mut doc = json!({"userName": "a", "password": "two"});
        prepared.prepare(&doc, Some(&first)).unwrap();
        let before = work_in_writes();
        {
            let _write = WriteScope::enter();
            // Another stored hash (the password changed meanwhile): not
            // prepared for it, nothing hashed in the write.
            let mut other = doc.clone();
            assert!(!prepared.apply(&mut other, Some(&json!({"password": "$x"}))));
            assert_eq!(other["password"], "two");
            assert!(prepared.apply(&mut doc, Some(&first)));
            // No password, or the stored hash sent back: nothing to prepare.
            assert!(prepared.apply(&mut json!({"userName": "a"}), Some(&first)));
            let mut kept = first.clone();
            assert!(prepared.apply(&mut kept, Some(&first)));
            assert_eq!(kept, first);
        }
        assert_eq!(work_in_writes(), before);
        assert!(verify("two", doc["password"].as_str().unwrap()));
        {
            let _write = WriteScope::enter();
            hash("x").unwrap();
        }
        assert!(work_in_writes() > before);
    }
}
