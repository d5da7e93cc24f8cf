//! The attribute index: the rows that filters and sorts read instead of the
//! JSON documents.
//!
//! [`index_rows`] walks a resource with its schema and yields one
//! [`IndexRow`] per value: every attribute, sub-attribute and extension
//! attribute, named by its canonical lowercase path (`username`,
//! `emails.value`, `urn:...:enterprise:2.0:user:manager.value`). Strings are
//! folded with [`fold`] into `text_folded`; case-exact strings also keep
//! their exact text; numbers, instants and booleans are typed. Each element
//! of a multi-valued attribute keeps its position as `ordinal`, so that the
//! terms of a value filter (`emails[type eq "work" and value co "x"]`) can be
//! required to hold on the same element. Single values have ordinal 0.
//!
//! Complex attributes also get one *element row* per value (per element of
//! a multi-valued one), at the attribute's own path (`emails`, `name`) with
//! the element's ordinal and, as its boolean, whether the element is
//! non-empty in the sense of `pr` (some member is not null, `""`, `[]` or
//! `{}`). `emails pr` reads the `true` rows; a value filter
//! `emails[value eq null]` iterates every element, empty ones included.
//!
//! Binary values are indexed as case-exact text (RFC 7643 section 2.3.6).
//!
//! Not indexed: attributes returned `never` (such as `password`), values
//! whose JSON type does not match the schema (validation rejects those
//! before they are stored), and members the schema does not define. Text is
//! cut at [`MAX_INDEXED_TEXT_BYTES`]; see that constant.

use scim_core::json::get_ci;
use scim_core::schema::{Attribute, AttributeType, ResourceSchema, Returned, Schema};
use serde_json::{Map, Value};

/// The longest text kept in an index row, in bytes (cut at a character
/// boundary). PostgreSQL refuses B-tree entries over about 2.7 kB, so longer
/// values would make writes fail; a filter whose operand is this long or
/// longer cannot be decided by the index alone and must be re-checked
/// against the document.
pub const MAX_INDEXED_TEXT_BYTES: usize = 1024;

/// One indexed value of a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexRow {
    /// Canonical lowercase attribute path.
    pub attr: String,
    /// Element position in a multi-valued attribute; 0 for single values.
    pub ordinal: i32,
    /// The typed value.
    pub value: IndexValue,
}

/// The typed value of an [`IndexRow`].
#[derive(Debug, Clone, PartialEq)]
pub enum IndexValue {
    /// A string or reference.
    Text {
        /// The value folded with [`fold`] (every string has one).
        folded: String,
        /// The value as given, for `caseExact` attributes only.
        exact: Option<String>,
    },
    /// An integer or decimal.
    Number(f64),
    /// A dateTime, as microseconds since the Unix epoch (UTC).
    Time(i64),
    /// A boolean.
    Bool(bool),
}

/// The case folding used for every case-insensitive comparison:
/// [`scim_core::filter::fold`] (Unicode lowercase), the function the
/// in-memory evaluator uses. Filter operands are folded with it too.
pub fn fold(s: &str) -> String {
    scim_core::filter::fold(s)
}

/// The shortest stored text that may have been cut: a value cut at
/// [`MAX_INDEXED_TEXT_BYTES`] on a character boundary keeps at least this
/// many bytes. Stored text shorter than this is the whole value.
pub const MAYBE_CUT_BYTES: usize = MAX_INDEXED_TEXT_BYTES - 3;

/// `s` cut to at most [`MAX_INDEXED_TEXT_BYTES`] at a character boundary.
pub fn truncate_for_index(s: &str) -> &str {
    if s.len() <= MAX_INDEXED_TEXT_BYTES {
        return s;
    }
    let mut end = MAX_INDEXED_TEXT_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The smallest string greater than every string starting with `prefix`,
/// for answering `sw` with an index range `col >= prefix AND col < bound`.
/// `None` when no such bound exists (empty prefix, or only U+10FFFF), in
/// which case `col >= prefix` alone is the range.
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(n) = next {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The index rows of `doc`, a resource of the type `rs` describes.
pub fn index_rows(doc: &Value, rs: &ResourceSchema) -> Vec<IndexRow> {
    let mut out = Vec::new();
    let Some(obj) = doc.as_object() else {
        return out;
    };
    walk_schema(obj, rs.common(), "", &mut out);
    walk_schema(obj, rs.core(), "", &mut out);
    for (ext, _) in rs.extensions() {
        if let Some((_, Value::Object(ext_obj))) = get_ci(obj, &ext.id) {
            let prefix = format!("{}:", ext.id.to_ascii_lowercase());
            walk_schema(ext_obj, ext, &prefix, &mut out);
        }
    }
    out
}

fn walk_schema(obj: &Map<String, Value>, schema: &Schema, prefix: &str, out: &mut Vec<IndexRow>) {
    for attr in &schema.attributes {
        if attr.returned == Returned::Never {
            continue;
        }
        let Some((_, value)) = get_ci(obj, &attr.name) else {
            continue;
        };
        let path = format!("{prefix}{}", attr.name.to_ascii_lowercase());
        if attr.is_complex() {
            push_element_rows(value, attr, &path, out);
        }
        for (ordinal, element) in elements(value, attr) {
            if attr.is_complex() {
                let Some(element) = element.as_object() else {
                    continue;
                };
                for sub in &attr.sub_attributes {
                    if sub.returned == Returned::Never {
                        continue;
                    }
                    let Some((_, sub_value)) = get_ci(element, &sub.name) else {
                        continue;
                    };
                    let sub_path = format!("{path}.{}", sub.name.to_ascii_lowercase());
                    // A multi-valued sub-attribute's values all belong to
                    // the element they sit in, so they share its ordinal.
                    for (_, leaf) in elements(sub_value, sub) {
                        push_leaf(leaf, sub, &sub_path, ordinal, out);
                    }
                }
            } else {
                push_leaf(element, attr, &path, ordinal, out);
            }
        }
    }
}

/// The element rows of a complex attribute: one per element (nulls in an
/// array included, as a value filter visits them), its boolean telling
/// whether the element is non-empty.
fn push_element_rows(value: &Value, attr: &Attribute, path: &str, out: &mut Vec<IndexRow>) {
    let items: Vec<(i32, &Value)> = match value {
        Value::Null => Vec::new(),
        Value::Array(items) if attr.multi_valued => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i32::try_from(i).unwrap_or(i32::MAX), v))
            .collect(),
        Value::Array(_) => Vec::new(),
        other => vec![(0, other)],
    };
    for (ordinal, item) in items {
        out.push(IndexRow {
            attr: path.to_owned(),
            ordinal,
            value: IndexValue::Bool(is_non_empty(item)),
        });
    }
}

/// Whether a value counts as present for `pr`: the rule of the in-memory
/// evaluator (not null, not `""`, not `[]`, not `{}`, not an object whose
/// members are all empty).
pub fn is_non_empty(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(is_non_empty),
        Value::Object(o) => o.values().any(|m| match m {
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
            Value::Bool(_) | Value::Number(_) => true,
        }),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// The values of an attribute with their ordinals: each array element for a
/// multi-valued attribute, else the one value at ordinal 0. Nulls are skipped.
fn elements<'a>(value: &'a Value, attr: &Attribute) -> Vec<(i32, &'a Value)> {
    match value {
        Value::Null => Vec::new(),
        Value::Array(items) if attr.multi_valued => items
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_null())
            .map(|(i, v)| (i32::try_from(i).unwrap_or(i32::MAX), v))
            .collect(),
        Value::Array(_) => Vec::new(),
        other => vec![(0, other)],
    }
}

fn push_leaf(value: &Value, attr: &Attribute, path: &str, ordinal: i32, out: &mut Vec<IndexRow>) {
    let typed = match attr.ty {
        // The whole value is folded before the cut, so the stored folded
        // text is always a prefix of the folded value (folding can change
        // the length, and a final sigma folds by context).
        AttributeType::String | AttributeType::Reference | AttributeType::Binary => {
            value.as_str().map(|s| IndexValue::Text {
                folded: truncate_for_index(&fold(s)).to_owned(),
                exact: (attr.case_exact || attr.ty == AttributeType::Binary)
                    .then(|| truncate_for_index(s).to_owned()),
            })
        }
        AttributeType::Boolean => value.as_bool().map(IndexValue::Bool),
        AttributeType::Integer | AttributeType::Decimal => value
            .as_f64()
            .filter(|n| n.is_finite())
            .map(IndexValue::Number),
        AttributeType::DateTime => value
            .as_str()
            .and_then(scim_core::filter::parse_datetime)
            .map(|t| IndexValue::Time(t.timestamp_micros())),
        AttributeType::Complex => None,
    };
    if let Some(value) = typed {
        out.push(IndexRow {
            attr: path.to_owned(),
            ordinal,
            value,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_core::schema::SchemaRegistry;
    use serde_json::json;

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user";

    fn text(folded: &str, exact: Option<&str>) -> IndexValue {
        IndexValue::Text {
            folded: folded.into(),
            exact: exact.map(Into::into),
        }
    }

    fn rows_for(rows: &[IndexRow], attr: &str) -> Vec<(i32, IndexValue)> {
        rows.iter()
            .filter(|r| r.attr == attr)
            .map(|r| (r.ordinal, r.value.clone()))
            .collect()
    }

    fn bjensen() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "BJ-1",
            "UserName": "BJensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "active": true,
            "password": "t1meMa$heen",
            "emails": [
                {"value": "bjensen@Example.com", "type": "work", "primary": true},
                null,
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAw"}],
            "meta": {"created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34+02:00",
                     "version": "W/\"3\"", "resourceType": "User"},
            "urn:IETF:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984",
                "department": "Tour Operations",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
            },
            "notInSchema": "ignored"
        })
    }

    #[test]
    fn walks_core_common_and_extension_attributes() {
        let registry = SchemaRegistry::core();
        let users = registry.resource_schema("User").unwrap();
        let rows = index_rows(&bjensen(), &users);

        // caseExact=false: folded only; member names matched case-insensitively.
        assert_eq!(
            rows_for(&rows, "username"),
            vec![(0, text("bjensen", None))]
        );
        // caseExact=true (id, externalId): folded and exact.
        assert_eq!(
            rows_for(&rows, "externalid"),
            vec![(0, text("bj-1", Some("BJ-1")))]
        );
        assert_eq!(
            rows_for(&rows, "name.givenname"),
            vec![(0, text("barbara", None))]
        );
        assert_eq!(rows_for(&rows, "active"), vec![(0, IndexValue::Bool(true))]);
        // Multi-valued complex: each element keeps its position (the null
        // element at 1 yields nothing).
        assert_eq!(
            rows_for(&rows, "emails.value"),
            vec![
                (0, text("bjensen@example.com", None)),
                (2, text("babs@jensen.org", None))
            ]
        );
        assert_eq!(
            rows_for(&rows, "emails.type"),
            vec![(0, text("work", None)), (2, text("home", None))]
        );
        assert_eq!(
            rows_for(&rows, "emails.primary"),
            vec![(0, IndexValue::Bool(true))]
        );
        // Multi-valued simple attribute: one row per value.
        assert_eq!(rows_for(&rows, "schemas").len(), 2);
        // dateTime parsed to an instant, offsets honoured.
        assert_eq!(
            rows_for(&rows, "meta.created"),
            vec![(0, IndexValue::Time(1_264_222_582_000_000))]
        );
        assert_eq!(
            rows_for(&rows, "meta.lastmodified"),
            vec![(0, IndexValue::Time(1_305_254_554_000_000))]
        );
        // Extension attributes under their URN, found with any-case key.
        assert_eq!(
            rows_for(&rows, &format!("{ENTERPRISE}:department")),
            vec![(0, text("tour operations", None))]
        );
        assert_eq!(
            rows_for(&rows, &format!("{ENTERPRISE}:manager.displayname")),
            vec![(0, text("john smith", None))]
        );
        // Binary values are case-exact text.
        let cert = "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAw";
        assert_eq!(
            rows_for(&rows, "x509certificates.value"),
            vec![(0, text(&cert.to_lowercase(), Some(cert)))]
        );
        // Element rows of complex attributes: every element, with whether
        // it is non-empty; the null element at 1 included.
        assert_eq!(
            rows_for(&rows, "emails"),
            vec![
                (0, IndexValue::Bool(true)),
                (1, IndexValue::Bool(false)),
                (2, IndexValue::Bool(true))
            ]
        );
        assert_eq!(rows_for(&rows, "name"), vec![(0, IndexValue::Bool(true))]);
        // Never indexed: password (returned never), unknown members.
        assert!(rows_for(&rows, "password").is_empty());
        assert!(rows.iter().all(|r| !r.attr.contains("notinschema")));
        // Every path is lowercase.
        assert!(rows.iter().all(|r| r.attr == r.attr.to_lowercase()));
    }

    #[test]
    fn typed_values_and_mismatches() {
        let mut registry = SchemaRegistry::core();
        let id = registry
            .add_schema_json(
                r#"{"id":"urn:example:params:scim:schemas:extension:acme:2.0:User","attributes":[
                    {"name":"badge","type":"integer"},
                    {"name":"score","type":"decimal"},
                    {"name":"tags","type":"string","multiValued":true,"caseExact":true}]}"#,
            )
            .unwrap();
        registry.add_extension("User", &id, false).unwrap();
        let users = registry.resource_schema("User").unwrap();
        let doc = json!({
            "userName": "x",
            "active": "True",
            "urn:example:params:scim:schemas:extension:acme:2.0:User": {
                "badge": 42, "score": 2.5, "tags": ["A", "b"]
            },
            "meta": {"created": "not a date"}
        });
        let rows = index_rows(&doc, &users);
        let acme = "urn:example:params:scim:schemas:extension:acme:2.0:user";
        assert_eq!(
            rows_for(&rows, &format!("{acme}:badge")),
            vec![(0, IndexValue::Number(42.0))]
        );
        assert_eq!(
            rows_for(&rows, &format!("{acme}:score")),
            vec![(0, IndexValue::Number(2.5))]
        );
        assert_eq!(
            rows_for(&rows, &format!("{acme}:tags")),
            vec![(0, text("a", Some("A"))), (1, text("b", Some("b")))]
        );
        // A string where a boolean belongs, and a bad date: not indexed.
        assert!(rows_for(&rows, "active").is_empty());
        assert!(rows_for(&rows, "meta.created").is_empty());
    }

    #[test]
    fn group_members_keep_their_element() {
        let registry = SchemaRegistry::core();
        let groups = registry.resource_schema("Group").unwrap();
        let doc = json!({
            "displayName": "Tour Guides",
            "members": [{"value": "a", "type": "User"}, {"value": "b", "type": "Group"}]
        });
        let rows = index_rows(&doc, &groups);
        assert_eq!(
            rows_for(&rows, "displayname"),
            vec![(0, text("tour guides", None))]
        );
        assert_eq!(
            rows_for(&rows, "members.type"),
            vec![(0, text("user", None)), (1, text("group", None))]
        );
    }

    #[test]
    fn unicode_folding_and_truncation() {
        assert_eq!(fold("ÅSA Öberg"), "åsa öberg");
        let long = "é".repeat(MAX_INDEXED_TEXT_BYTES);
        let cut = truncate_for_index(&long);
        assert!(cut.len() <= MAX_INDEXED_TEXT_BYTES && cut.len() >= MAX_INDEXED_TEXT_BYTES - 1);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(truncate_for_index("short"), "short");
    }

    #[test]
    fn prefix_bounds() {
        assert_eq!(prefix_upper_bound("abc").as_deref(), Some("abd"));
        assert_eq!(
            prefix_upper_bound("a\u{D7FF}").as_deref(),
            Some("a\u{E000}")
        );
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        // Every string with the prefix sorts inside [prefix, bound).
        let bound = prefix_upper_bound("bj").unwrap();
        for s in ["bj", "bjensen", "bj\u{10FFFF}x", "bjz"] {
            assert!(s >= "bj" && s < bound.as_str(), "{s}");
        }
        for s in ["bi", "bk", "b"] {
            assert!(!(s >= "bj" && s < bound.as_str()), "{s}");
        }
    }
}
