//! ListResponse (RFC 7644 section 3.4.2, RFC 9865 section 2) and
//! SearchRequest (RFC 7644 section 3.4.3, RFC 9865 section 3).

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{LIST_RESPONSE_SCHEMA, SEARCH_REQUEST_SCHEMA, string_list_strict};
use crate::error::{Error, Result};
use crate::resource::serde_ci::{self, canonical_keys, case_insensitive_serde};

/// A ListResponse (RFC 7644 section 3.4.2, with RFC 9865 cursors).
///
/// `totalResults` is optional because RFC 9865 section 2 lets a cursor-paged
/// provider that cannot count omit it; this crate's constructors always set
/// it. `Resources` is always serialised, as an empty array when there are
/// none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListResponse<T = Value> {
    /// Should contain [`LIST_RESPONSE_SCHEMA`].
    pub schemas: Vec<String>,
    /// The total number of results of the query.
    #[serde(rename = "totalResults", skip_serializing_if = "Option::is_none")]
    pub total_results: Option<u64>,
    /// The number of resources in this page.
    #[serde(rename = "itemsPerPage", skip_serializing_if = "Option::is_none")]
    pub items_per_page: Option<u64>,
    /// The 1-based index of the first resource of this page.
    #[serde(rename = "startIndex", skip_serializing_if = "Option::is_none")]
    pub start_index: Option<u64>,
    /// RFC 9865: the cursor of the next page; absent on the last page.
    #[serde(rename = "nextCursor", skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// RFC 9865: the cursor of the previous page.
    #[serde(rename = "previousCursor", skip_serializing_if = "Option::is_none")]
    pub previous_cursor: Option<String>,
    /// The resources of this page.
    #[serde(rename = "Resources")]
    pub resources: Vec<T>,
}

impl<T> ListResponse<T> {
    /// A complete, unpaged list: `totalResults` and `itemsPerPage` are the
    /// number of resources, `startIndex` is 1.
    pub fn new(resources: Vec<T>) -> Self {
        let n = resources.len() as u64;
        Self::page(resources, n, 1)
    }

    /// One page of an index-paginated result (RFC 7644 section 3.4.2.4).
    pub fn page(resources: Vec<T>, total_results: u64, start_index: u64) -> Self {
        Self {
            schemas: vec![LIST_RESPONSE_SCHEMA.to_string()],
            total_results: Some(total_results),
            items_per_page: Some(resources.len() as u64),
            start_index: Some(start_index),
            next_cursor: None,
            previous_cursor: None,
            resources,
        }
    }

    /// One page of a cursor-paginated result (RFC 9865 section 2).
    pub fn cursor_page(
        resources: Vec<T>,
        total_results: Option<u64>,
        next_cursor: Option<String>,
        previous_cursor: Option<String>,
    ) -> Self {
        Self {
            schemas: vec![LIST_RESPONSE_SCHEMA.to_string()],
            total_results,
            items_per_page: Some(resources.len() as u64),
            start_index: None,
            next_cursor,
            previous_cursor,
            resources,
        }
    }

    /// The same response with each resource converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> ListResponse<U> {
        ListResponse {
            schemas: self.schemas,
            total_results: self.total_results,
            items_per_page: self.items_per_page,
            start_index: self.start_index,
            next_cursor: self.next_cursor,
            previous_cursor: self.previous_cursor,
            resources: self.resources.into_iter().map(f).collect(),
        }
    }
}

const LIST_RESPONSE_FIELDS: &[&str] = &[
    "schemas",
    "totalResults",
    "itemsPerPage",
    "startIndex",
    "nextCursor",
    "previousCursor",
    "Resources",
];

/// The wire form of a ListResponse, before the resources are typed.
#[derive(Deserialize)]
struct ListResponseWire {
    #[serde(default, deserialize_with = "string_list_strict")]
    schemas: Vec<String>,
    #[serde(
        rename = "totalResults",
        default,
        deserialize_with = "serde_ci::opt_u64"
    )]
    total_results: Option<u64>,
    #[serde(
        rename = "itemsPerPage",
        default,
        deserialize_with = "serde_ci::opt_u64"
    )]
    items_per_page: Option<u64>,
    #[serde(rename = "startIndex", default, deserialize_with = "serde_ci::opt_u64")]
    start_index: Option<u64>,
    #[serde(rename = "nextCursor", default)]
    next_cursor: Option<String>,
    #[serde(rename = "previousCursor", default)]
    previous_cursor: Option<String>,
    #[serde(rename = "Resources", default)]
    resources: Option<Vec<Value>>,
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for ListResponse<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let map = Map::<String, Value>::deserialize(d)?;
        let wire: ListResponseWire =
            serde_json::from_value(Value::Object(canonical_keys(map, LIST_RESPONSE_FIELDS)))
                .map_err(D::Error::custom)?;
        let resources = wire
            .resources
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                serde_json::from_value(r)
                    .map_err(|e| D::Error::custom(format!("Resources[{i}]: {e}")))
            })
            .collect::<std::result::Result<Vec<T>, D::Error>>()?;
        Ok(Self {
            schemas: wire.schemas,
            total_results: wire.total_results,
            items_per_page: wire.items_per_page,
            start_index: wire.start_index,
            next_cursor: wire.next_cursor,
            previous_cursor: wire.previous_cursor,
            resources,
        })
    }
}

/// The order of a sorted query (RFC 7644 section 3.4.2.3). Parsed
/// case-insensitively; written as `ascending` / `descending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SortOrder {
    /// Smallest first; missing values last. The default.
    #[default]
    Ascending,
    /// Largest first; missing values first.
    Descending,
}

impl SortOrder {
    /// The RFC spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ascending => "ascending",
            Self::Descending => "descending",
        }
    }
}

impl FromStr for SortOrder {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("ascending") {
            Ok(Self::Ascending)
        } else if s.eq_ignore_ascii_case("descending") {
            Ok(Self::Descending)
        } else {
            Err(Error::invalid_value(format!(
                "sortOrder must be \"ascending\" or \"descending\", not \"{s}\""
            )))
        }
    }
}

impl fmt::Display for SortOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SortOrder {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SortOrder {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|e: Error| serde::de::Error::custom(e.detail().to_string()))
    }
}

/// A query: the body of `POST /.search` (RFC 7644 section 3.4.3, RFC 9865
/// section 3) or the query parameters of a GET ([`SearchRequest::from_query_pairs`]).
///
/// `startIndex` and `count` keep what the client sent (a negative `count`
/// too); [`SearchRequest::effective_start_index`] and
/// [`SearchRequest::effective_count`] apply the RFC's interpretation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct SearchRequest {
    /// Should contain [`SEARCH_REQUEST_SCHEMA`].
    #[serde(default, deserialize_with = "string_list_strict")]
    pub schemas: Vec<String>,
    /// Attributes to return (`attributes`); an array or a comma-separated string.
    #[serde(
        default,
        deserialize_with = "serde_ci::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub attributes: Vec<String>,
    /// Attributes to leave out (`excludedAttributes`).
    #[serde(
        default,
        deserialize_with = "serde_ci::string_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub excluded_attributes: Vec<String>,
    /// The filter expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The attribute to sort by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_by: Option<String>,
    /// The sort order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_order: Option<SortOrder>,
    /// The 1-based index of the first result, as sent.
    #[serde(
        default,
        deserialize_with = "serde_ci::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_index: Option<i64>,
    /// The maximum number of results per page, as sent.
    #[serde(
        default,
        deserialize_with = "serde_ci::opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub count: Option<i64>,
    /// RFC 9865: the cursor; `Some("")` asks for the first cursor page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

case_insensitive_serde!(
    SearchRequest,
    &[
        "schemas",
        "attributes",
        "excludedAttributes",
        "filter",
        "sortBy",
        "sortOrder",
        "startIndex",
        "count",
        "cursor",
    ]
);

impl SearchRequest {
    /// Reads the query parameters of a GET query (already percent-decoded).
    /// Parameter names match case-insensitively; unknown parameters are
    /// ignored (RFC 7644 section 3.4.2). A repeated `attributes` or
    /// `excludedAttributes` adds to the list; other repeated parameters
    /// keep the last value. A non-integer `startIndex` or `count` or an
    /// unknown `sortOrder` is [`crate::ErrorKind::InvalidValue`], and so is
    /// U+0000 in any parameter ([`crate::ErrorKind::InvalidFilter`] in
    /// `filter`).
    pub fn from_query_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut req = Self {
            schemas: vec![SEARCH_REQUEST_SCHEMA.to_string()],
            ..Self::default()
        };
        let int = |name: &str, v: &str| {
            v.trim().parse::<i64>().map_err(|_| {
                Error::invalid_value(format!("{name} must be an integer, not \"{v}\""))
            })
        };
        for (k, v) in pairs {
            let (k, v) = (k.as_ref(), v.as_ref());
            let is = |name: &str| k.eq_ignore_ascii_case(name);
            if k.contains('\0') || v.contains('\0') {
                let what = format!("the query parameter {}", k.escape_default());
                return Err(if is("filter") {
                    Error::invalid_filter(format!(
                        "{what} contains the character U+0000, which is not accepted"
                    ))
                } else {
                    Error::invalid_value(format!(
                        "{what} contains the character U+0000, which is not accepted"
                    ))
                });
            }
            if is("attributes") {
                req.attributes.extend(serde_ci::split_names([v]));
            } else if is("excludedAttributes") {
                req.excluded_attributes.extend(serde_ci::split_names([v]));
            } else if is("filter") {
                req.filter = Some(v.to_string());
            } else if is("sortBy") {
                req.sort_by = Some(v.to_string());
            } else if is("sortOrder") {
                req.sort_order = Some(v.parse()?);
            } else if is("startIndex") {
                req.start_index = Some(int("startIndex", v)?);
            } else if is("count") {
                req.count = Some(int("count", v)?);
            } else if is("cursor") {
                req.cursor = Some(v.to_string());
            }
        }
        Ok(req)
    }

    /// `startIndex` as the RFC reads it: absent means 1, and a value less
    /// than 1 SHALL be interpreted as 1.
    pub fn effective_start_index(&self) -> u64 {
        self.start_index
            .and_then(|i| u64::try_from(i).ok())
            .unwrap_or(1)
            .max(1)
    }

    /// `count` as the RFC reads it: a negative value SHALL be interpreted as
    /// 0; `None` leaves the page size to the service provider.
    pub fn effective_count(&self) -> Option<u64> {
        self.count.map(|c| u64::try_from(c).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use serde_json::json;
    #[test]
    fn list_response_is_lenient_and_typed() {
        let r: ListResponse = serde_json::from_value(json!({
            "schemas": [LIST_RESPONSE_SCHEMA], "TotalResults": "2", "resources": [{"id": "a"}]
        }))
        .unwrap();
        assert_eq!(r.total_results, Some(2));
        assert_eq!(r.resources, vec![json!({"id": "a"})]);
        let empty: ListResponse = serde_json::from_value(json!({"totalResults": 0})).unwrap();
        assert!(empty.resources.is_empty());
        let v = serde_json::to_value(ListResponse::<Value>::new(vec![])).unwrap();
        assert_eq!(
            v,
            json!({"schemas": [LIST_RESPONSE_SCHEMA], "totalResults": 0, "itemsPerPage": 0,
                   "startIndex": 1, "Resources": []})
        );
        let typed: ListResponse<crate::resource::User> = serde_json::from_value(json!({
            "totalResults": 1, "Resources": [{"UserName": "bjensen"}]
        }))
        .unwrap();
        assert_eq!(typed.resources[0].user_name, "bjensen");
        let bad = serde_json::from_value::<ListResponse<crate::resource::User>>(json!({
            "Resources": [{"active": "yes"}]
        }))
        .unwrap_err();
        assert!(bad.to_string().contains("Resources[0]"), "{bad}");
        let cursor = ListResponse::cursor_page(vec![1, 2], None, Some("n".into()), None);
        assert_eq!(
            serde_json::to_value(cursor.map(|i| i * 10)).unwrap(),
            json!({"schemas": [LIST_RESPONSE_SCHEMA], "itemsPerPage": 2, "nextCursor": "n",
                   "Resources": [10, 20]})
        );
    }

    #[test]
    fn search_request_from_query_pairs() {
        let q = SearchRequest::from_query_pairs([
            ("attributes", "userName,name.givenName"),
            ("ATTRIBUTES", "emails"),
            ("filter", "userName eq \"x\""),
            ("sortOrder", "Descending"),
            ("startIndex", "-3"),
            ("count", "-1"),
            ("cursor", ""),
            ("unknown", "ignored"),
        ])
        .unwrap();
        assert_eq!(q.attributes, ["userName", "name.givenName", "emails"]);
        assert_eq!(q.sort_order, Some(SortOrder::Descending));
        assert_eq!(q.effective_start_index(), 1);
        assert_eq!(q.effective_count(), Some(0));
        assert_eq!(q.cursor.as_deref(), Some(""));
        let e = SearchRequest::from_query_pairs([("count", "ten")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
        assert!(SearchRequest::from_query_pairs([("sortOrder", "up")]).is_err());
        let none = SearchRequest::default();
        assert_eq!(
            (none.effective_start_index(), none.effective_count()),
            (1, None)
        );
    }
}
