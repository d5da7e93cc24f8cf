//! Finding the remote account a desired resource corresponds to, so that a
//! create never makes a duplicate.
//!
//! A [`MatchStrategy`] lists attributes to try in order: for users
//! `externalId`, then `userName`; for groups `externalId`, then
//! `displayName`; or a configured attribute. [`match_queries`] gives the
//! filter for each attribute the desired resource has a value for.
//!
//! A provider that ignores the filter answers with unrelated resources, so
//! candidates are checked again here ([`pick_match`]): a candidate matches
//! when its value of the first strategy attribute the desired resource
//! carries equals the desired value (case-insensitively where the schema
//! says `caseExact: false`). Two or more matching candidates are ambiguous
//! and never adopted.

use std::sync::LazyLock;

use scim_core::schema::SchemaRegistry;
use serde_json::Value;

use super::compare::{member, same};

static CORE: LazyLock<SchemaRegistry> = LazyLock::new(SchemaRegistry::core);

/// The attributes that identify a remote resource, tried in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchStrategy {
    attributes: Vec<String>,
}

impl MatchStrategy {
    /// `externalId`, then `userName`.
    pub fn users() -> Self {
        Self::attributes(["externalId", "userName"])
    }

    /// `externalId`, then `displayName`.
    pub fn groups() -> Self {
        Self::attributes(["externalId", "displayName"])
    }

    /// One configured attribute only (`emails.value`,
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`).
    pub fn attribute(path: impl Into<String>) -> Self {
        Self {
            attributes: vec![path.into()],
        }
    }

    /// These attributes, in order.
    pub fn attributes<I, S>(paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            attributes: paths.into_iter().map(Into::into).collect(),
        }
    }

    /// The strategy for an endpoint: [`MatchStrategy::groups`] for
    /// `/Groups`, [`MatchStrategy::users`] otherwise.
    pub fn for_endpoint(endpoint: &str) -> Self {
        if endpoint.trim_matches('/').eq_ignore_ascii_case("Groups") {
            Self::groups()
        } else {
            Self::users()
        }
    }

    /// The attribute paths, in order.
    pub fn paths(&self) -> &[String] {
        &self.attributes
    }
}

/// The value at `path` in `doc`: `attr`, `attr.sub` (the first element's
/// `sub` for a multi-valued attribute), or URN-qualified. Only strings,
/// numbers and booleans count.
pub(crate) fn lookup<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    let (container, rest) = split_urn(doc, path).unwrap_or((doc, path));
    let (name, sub) = match rest.split_once('.') {
        Some((n, s)) => (n, Some(s)),
        None => (rest, None),
    };
    let mut v = member(container, name)?;
    if let Some(sub) = sub {
        if let Value::Array(items) = v {
            // Prefer the primary element.
            v = items
                .iter()
                .find(|i| member(i, "primary") == Some(&Value::Bool(true)))
                .or_else(|| items.first())?;
        }
        v = member(v, sub)?;
    }
    match v {
        Value::String(s) if !s.is_empty() => Some(v),
        Value::Number(_) | Value::Bool(_) => Some(v),
        _ => None,
    }
}

fn split_urn<'a, 'p>(doc: &'a Value, path: &'p str) -> Option<(&'a Value, &'p str)> {
    if !path.get(..4)?.eq_ignore_ascii_case("urn:") {
        return None;
    }
    let obj = doc.as_object()?;
    obj.iter()
        .filter(|(k, _)| {
            path.len() > k.len()
                && path.is_char_boundary(k.len())
                && path[..k.len()].eq_ignore_ascii_case(k)
                && path.as_bytes()[k.len()] == b':'
        })
        .max_by_key(|(k, _)| k.len())
        .map(|(k, v)| (v, &path[k.len() + 1..]))
}

/// `path eq value`, with the value written as a filter literal.
fn equality(path: &str, value: &Value) -> String {
    format!("{path} eq {value}")
}

/// The filters to look a desired resource up by, in the strategy's order,
/// one per attribute the desired resource has a value for.
///
/// ```
/// use scim_client::plan::{MatchStrategy, match_queries};
/// use serde_json::json;
///
/// let desired = json!({"externalId": "e-1", "userName": "bjensen\"x"});
/// assert_eq!(
///     match_queries(&desired, &MatchStrategy::users()),
///     [r#"externalId eq "e-1""#, r#"userName eq "bjensen\"x""#]
/// );
/// ```
pub fn match_queries(desired: &Value, strategy: &MatchStrategy) -> Vec<String> {
    strategy
        .attributes
        .iter()
        .filter_map(|path| lookup(desired, path).map(|v| equality(path, v)))
        .collect()
}

/// The first of [`match_queries`]: the filter to look the desired resource
/// up by, or `None` when it has a value for none of the attributes.
pub fn match_query(desired: &Value, strategy: &MatchStrategy) -> Option<String> {
    match_queries(desired, strategy).into_iter().next()
}

/// What a set of candidates came to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Matched<'a> {
    /// No candidate matches.
    None,
    /// Exactly one candidate matches.
    One(&'a Value),
    /// This many candidates match; none is chosen.
    Ambiguous(usize),
}

/// Picks the candidate that is the desired resource, by the first strategy
/// attribute the desired resource has a value for that decides.
pub fn pick_match<'a>(
    desired: &Value,
    candidates: &'a [Value],
    strategy: &MatchStrategy,
) -> Matched<'a> {
    for path in &strategy.attributes {
        let Some(want) = lookup(desired, path) else {
            continue;
        };
        let def = attribute_def(path);
        let hits: Vec<&Value> = candidates
            .iter()
            .filter(|c| {
                lookup(c, path).is_some_and(|have| same(Some(want), Some(have), def.as_ref()))
            })
            .collect();
        match hits.as_slice() {
            [] => continue,
            [one] => return Matched::One(one),
            many => return Matched::Ambiguous(many.len()),
        }
    }
    Matched::None
}

/// The schema definition of a path in the core User or Group schema (for
/// `caseExact`), if it names one.
fn attribute_def(path: &str) -> Option<scim_core::schema::Attribute> {
    ["User", "Group"].into_iter().find_map(|rt| {
        CORE.resource_schema(rt)?
            .resolve(path)
            .ok()
            .map(|a| a.target().clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queries_in_order_and_escaped() {
        let d = json!({"userName": "b\\jensen"});
        assert_eq!(
            match_queries(&d, &MatchStrategy::users()),
            [r#"userName eq "b\\jensen""#]
        );
        assert_eq!(match_query(&json!({}), &MatchStrategy::users()), None);
        let g = json!({"displayName": "Tour \"Guides\"", "externalId": ""});
        assert_eq!(
            match_query(&g, &MatchStrategy::for_endpoint("/Groups")).as_deref(),
            Some(r#"displayName eq "Tour \"Guides\"""#)
        );
        let e = json!({
            "emails": [{"value": "x@y", "type": "home"}, {"value": "p@y", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701"}
        });
        assert_eq!(
            match_query(&e, &MatchStrategy::attribute("emails.value")).as_deref(),
            Some(r#"emails.value eq "p@y""#)
        );
        let urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber";
        assert_eq!(
            match_query(&e, &MatchStrategy::attribute(urn)),
            Some(format!("{urn} eq \"701\""))
        );
        assert_eq!(
            match_query(&json!({"age": 7}), &MatchStrategy::attribute("age")).as_deref(),
            Some("age eq 7")
        );
    }

    #[test]
    fn candidates_are_checked_again() {
        let d = json!({"externalId": "E1", "userName": "BJensen"});
        let s = MatchStrategy::users();
        let others = [
            json!({"id": "1", "userName": "alice"}),
            json!({"id": "2", "userName": "bob"}),
        ];
        assert_eq!(pick_match(&d, &others, &s), Matched::None);
        let by_name = [others[0].clone(), json!({"id": "3", "userName": "bjensen"})];
        assert_eq!(pick_match(&d, &by_name, &s), Matched::One(&by_name[1]));
        // externalId is caseExact: "e1" is not "E1".
        let wrong_case = [json!({"id": "4", "externalId": "e1", "userName": "x"})];
        assert_eq!(pick_match(&d, &wrong_case, &s), Matched::None);
        let by_ext = [json!({"id": "5", "externalId": "E1"}), by_name[1].clone()];
        assert_eq!(pick_match(&d, &by_ext, &s), Matched::One(&by_ext[0]));
        let twins = [
            json!({"id": "6", "userName": "bjensen"}),
            json!({"id": "7", "userName": "BJENSEN"}),
        ];
        assert_eq!(pick_match(&d, &twins, &s), Matched::Ambiguous(2));
    }
}
