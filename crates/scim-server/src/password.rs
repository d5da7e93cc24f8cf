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

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use scim_core::json::key_ci;
use serde_json::Value;

use crate::error::{Error, Result};

/// The Argon2id hash (PHC string) of `password`, with a random salt and
/// the crate's default cost (RFC 9106's second recommended option).
pub fn hash(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("password hashing failed: {e}")))
}

/// Whether `password` matches the PHC string `hash`. A malformed hash
/// matches nothing.
pub fn verify(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// Replaces a plaintext `password` in `document` by its hash, keeping the
/// hash of `previous` (the stored document, for a replace or patch) when
/// the password did not change. A `password` that is not a string is left
/// for validation to refuse.
pub fn protect(document: &mut Value, previous: Option<&Value>) -> Result<()> {
    let Some(doc) = document.as_object_mut() else {
        return Ok(());
    };
    let Some(key) = key_ci(doc, "password") else {
        return Ok(());
    };
    let Some(Value::String(given)) = doc.get(&key) else {
        return Ok(());
    };
    let stored = previous
        .and_then(Value::as_object)
        .and_then(|o| key_ci(o, "password").and_then(|k| o.get(&k)))
        .and_then(Value::as_str);
    let protected = match stored {
        Some(stored) if stored == given || verify(given, stored) => stored.to_owned(),
        _ => hash(given)?,
    };
    doc.insert(key, Value::String(protected));
    Ok(())
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
}
