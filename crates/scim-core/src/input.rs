//! The input policy every embedder shares: what text is accepted whatever
//! database stores it.
//!
//! - **U+0000 is refused** (`invalidValue`; `invalidFilter` in a filter):
//!   PostgreSQL cannot store it in a text column, SQLite can, so accepting
//!   it would make data stored on one unable to move to the other. It is
//!   checked in bodies at any depth (keys and values), in filters, in
//!   attribute paths, and in query parameters.
//! - **Unique keys are at most [`MAX_KEY_BYTES`] bytes**: `externalId` and
//!   every core attribute whose `uniqueness` is not `none` (`userName`;
//!   a Group's `displayName` where the schema makes it unique, as
//!   scim-server does by default). See the constant for why 1,024.
//!
//! ```
//! use scim_core::input::{check_text, NulScanner};
//! use scim_core::ErrorKind;
//! use serde_json::json;
//!
//! let err = check_text(&json!({"name": {"givenName": "a\u{0}b"}})).unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::InvalidValue);
//! assert!(err.detail().contains("name.givenName"));
//!
//! // The same decision on raw JSON text, fed in chunks as it arrives.
//! let mut scanner = NulScanner::default();
//! assert!(!scanner.feed(br#"{"userName":"a\u00"#));
//! assert!(scanner.feed(br#"00"}"#));
//! ```

use serde_json::Value;

use crate::error::{Error, Result};
use crate::json::get_ci;
use crate::schema::{ResourceSchema, Uniqueness};

/// The most bytes (UTF-8) a unique key may hold: `userName`, `externalId`,
/// a Group's `displayName`.
///
/// Why 1,024: identifiers real systems send are far shorter (an e-mail
/// address is at most 254 bytes, an LDAP DN or an object GUID well under
/// 1,024). PostgreSQL refuses a btree index row over 2,704 bytes, and these
/// columns are indexed after case folding, which can lengthen UTF-8 text by
/// half (U+0130 is 2 bytes, its lower case 3): 1,024 bytes fold to at most
/// 1,536, with room for the other columns of the index. The attribute
/// index also keeps the first 1,024 bytes of text values, so a filter on a
/// key compares the whole key.
pub const MAX_KEY_BYTES: usize = 1024;

/// The error for U+0000 found at `location`.
fn nul_error(location: &str) -> Error {
    Error::invalid_value(format!(
        "{location} contains the character U+0000, which is not accepted"
    ))
}

/// Refuses U+0000 in `text`; `what` names the input in the error.
pub fn check_str(what: &str, text: &str) -> Result<()> {
    if text.contains('\0') {
        return Err(nul_error(what));
    }
    Ok(())
}

/// Refuses U+0000 anywhere in `value`: in strings and in object keys, at
/// any depth. The error names the first place found (`emails[1].value`).
pub fn check_text(value: &Value) -> Result<()> {
    // Iterative, so the depth of the document does not matter.
    let mut stack: Vec<(&Value, String)> = vec![(value, String::new())];
    while let Some((v, at)) = stack.pop() {
        match v {
            Value::String(s) if s.contains('\0') => {
                return Err(nul_error(&describe(&at)));
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate().rev() {
                    stack.push((item, format!("{at}[{i}]")));
                }
            }
            Value::Object(map) => {
                for (k, item) in map.iter().rev() {
                    let here = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    if k.contains('\0') {
                        return Err(nul_error(&format!(
                            "an attribute name in {}",
                            describe(&at)
                        )));
                    }
                    stack.push((item, here));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn describe(at: &str) -> String {
    if at.is_empty() {
        "the body".to_owned()
    } else {
        at.escape_default().to_string()
    }
}

/// Refuses unique keys longer than [`MAX_KEY_BYTES`] in a resource
/// document of `rs`: `externalId` and the core attributes whose
/// uniqueness is not `none`.
pub fn check_key_lengths(doc: &Value, rs: &ResourceSchema) -> Result<()> {
    let Some(obj) = doc.as_object() else {
        return Ok(());
    };
    let unique = rs
        .core()
        .attributes
        .iter()
        .filter(|a| a.uniqueness != Uniqueness::None)
        .map(|a| a.name.as_str());
    for name in std::iter::once("externalId").chain(unique) {
        if let Some((_, Value::String(s))) = get_ci(obj, name)
            && s.len() > MAX_KEY_BYTES
        {
            return Err(Error::invalid_value(format!(
                "{name} is {} bytes long; the limit is {MAX_KEY_BYTES}",
                s.len()
            )));
        }
    }
    Ok(())
}

/// Finds U+0000 in JSON text as it arrives, chunk by chunk: the escape
/// `\u0000` inside a string, or a raw zero byte (which JSON does not allow
/// anyway). Lets a server refuse such a body while reading it, before any
/// handler sees it; the decision is the one [`check_text`] makes on the
/// parsed value.
#[derive(Debug, Clone, Default)]
pub struct NulScanner {
    /// The previous byte was a backslash that starts an escape.
    escape: bool,
    /// Inside `\u`: how many `0` digits followed it so far.
    zeros: Option<u8>,
    found: bool,
}

impl NulScanner {
    /// Reads the next chunk; true once U+0000 has been seen.
    pub fn feed(&mut self, chunk: &[u8]) -> bool {
        if self.found {
            return true;
        }
        for &b in chunk {
            if let Some(n) = self.zeros {
                if b == b'0' {
                    if n == 3 {
                        self.found = true;
                        return true;
                    }
                    self.zeros = Some(n + 1);
                    continue;
                }
                self.zeros = None;
            }
            if self.escape {
                self.escape = false;
                if b == b'u' {
                    self.zeros = Some(0);
                }
                continue;
            }
            match b {
                b'\\' => self.escape = true,
                0 => {
                    self.found = true;
                    return true;
                }
                _ => {}
            }
        }
        false
    }

    /// Whether U+0000 has been seen.
    pub fn found(&self) -> bool {
        self.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::schema::SchemaRegistry;
    use serde_json::json;

    fn scan(text: &[u8]) -> bool {
        NulScanner::default().feed(text)
    }

    #[test]
    fn the_scanner_agrees_with_the_parsed_value() {
        for text in [
            r#"{"a":"\u0000"}"#,
            r#"{"a\u0000":1}"#,
            r#"{"a":["x",{"b":"y\u0000z"}]}"#,
            r#"{"a":"\\\u0000"}"#,
        ] {
            let value: Value = serde_json::from_str(text).unwrap();
            assert!(check_text(&value).is_err(), "{text}");
            assert!(scan(text.as_bytes()), "{text}");
            // Every split into two chunks finds it too.
            for cut in 0..text.len() {
                let mut s = NulScanner::default();
                let (a, b) = text.as_bytes().split_at(cut);
                assert!(s.feed(a) | s.feed(b), "{text} cut at {cut}");
            }
        }
        for text in [
            r#"{"a":"\\u0000"}"#,
            r#"{"a":"\u0001\u00000"}"#,
            r#"{"a":"u0000"}"#,
            r#"{"a":"\\\\u0000"}"#,
            r#"{"a":"\u1000"}"#,
        ] {
            let value: Value = serde_json::from_str(text).unwrap();
            let parsed_has_nul = check_text(&value).is_err();
            assert_eq!(scan(text.as_bytes()), parsed_has_nul, "{text}");
        }
        assert!(scan(b"{\"a\":\"\0\"}"));
    }

    #[test]
    fn nul_is_named_where_it_is() {
        let err =
            check_text(&json!({"emails": [{"value": "a"}, {"value": "b\u{0}"}]})).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue);
        assert!(err.detail().contains("emails[1].value"), "{}", err.detail());
        let err = check_text(&json!({"urn:x": {"k\u{0}": 1}})).unwrap_err();
        assert!(
            err.detail().contains("attribute name in urn:x"),
            "{}",
            err.detail()
        );
        assert!(check_text(&json!({"a": ["b", {"c": 1.5, "d": null}]})).is_ok());
        assert!(check_str("the id", "x\u{0}").is_err());
    }

    #[test]
    fn filters_paths_and_query_parameters_refuse_nul() {
        use crate::filter::Filter;
        use crate::messages::SearchRequest;
        let r = SchemaRegistry::core();
        let users = r.resource_schema("User").unwrap();
        let err = Filter::parse("userName eq \"a\u{0}\"", &users).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidFilter);
        assert!(crate::path::Path::parse("title\u{0}", &users).is_err());
        let err = SearchRequest::from_query_pairs([("filter", "title pr\u{0}")]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidFilter);
        let err = SearchRequest::from_query_pairs([("sortBy", "\u{0}")]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue);
    }

    #[test]
    fn unique_keys_are_bounded() {
        let mut r = SchemaRegistry::core();
        let users = r.resource_schema("User").unwrap();
        // A Group displayName is a key where the schema makes it unique
        // (the server's default), not otherwise.
        let long_names = r.resource_schema("Group").unwrap();
        let mut group = (*r.schema(crate::schema::GROUP_SCHEMA).unwrap()).clone();
        for attr in &mut group.attributes {
            if attr.name == "displayName" {
                attr.uniqueness = Uniqueness::Server;
            }
        }
        r.add_schema(group).unwrap();
        let groups = r.resource_schema("Group").unwrap();
        let at_limit = "é".repeat(MAX_KEY_BYTES / 2);
        let over = format!("{at_limit}x");
        assert!(check_key_lengths(&json!({"userName": at_limit}), &users).is_ok());
        for (doc, rs, name) in [
            (json!({"userName": over}), &users, "userName"),
            (
                json!({"UserName": "a", "externalId": over}),
                &users,
                "externalId",
            ),
            (json!({"displayName": over}), &groups, "displayName"),
        ] {
            let err = check_key_lengths(&doc, rs).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidValue);
            assert_eq!(
                err.detail(),
                format!("{name} is 1025 bytes long; the limit is 1024")
            );
        }
        // A User's displayName is not unique: long is fine.
        assert!(check_key_lengths(&json!({"userName": "a", "displayName": over}), &users).is_ok());
        assert!(check_key_lengths(&json!({"displayName": over}), &long_names).is_ok());
    }
}
