//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of the management
//! API, checked in as `openapi/api-v1.json` and served as is (no token
//! needed: it describes the API, not the tenant's data).
//!
//! The tests below read the route table (`api/routes.rs`) and fail when an
//! `/api/v1` route or method is missing from the document, or the document
//! names one the table lacks: a route added later must be documented.

use actix_web::HttpResponse;

/// The document.
pub const DOCUMENT: &str = include_str!("../../openapi/api-v1.json");

/// `GET /api/v1/openapi.json`.
pub async fn get_openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::DOCUMENT;

    /// `/a/{id}/b/{user_id}` -> `/a/{}/b/{}`.
    fn normalise(path: &str) -> String {
        let mut out = String::new();
        let mut in_param = false;
        for c in path.chars() {
            match c {
                '{' => {
                    in_param = true;
                    out.push('{');
                }
                '}' => {
                    in_param = false;
                    out.push('}');
                }
                _ if in_param => {}
                _ => out.push(c),
            }
        }
        out
    }

    /// The string literal starting at `text` (which starts after `"`).
    fn literal(text: &str) -> &str {
        &text[..text.find('"').unwrap_or(text.len())]
    }

    /// (method, normalised path) of every route registered under
    /// `/api/v1` in routes.rs: `get_only("..")`, `post_only("..")`, and
    /// `web::resource("..")` with the `.route(web::<method>()...)` calls
    /// that follow it.
    fn registered() -> BTreeSet<(String, String)> {
        let source = include_str!("routes.rs");
        let start = source
            .find("web::scope(\"/api/v1\")")
            .expect("routes.rs has the /api/v1 scope");
        // Drop comments, then walk the tokens in order.
        let code: String = source[start..]
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let mut routes = BTreeSet::new();
        let mut current: Option<String> = None;
        let mut i = 0;
        while i < code.len() {
            let rest = &code[i..];
            // rustfmt may break the line after the opening parenthesis.
            let path_arg = |prefix: &str| {
                rest.strip_prefix(prefix)
                    .and_then(|r| r.trim_start().strip_prefix('"'))
                    .map(|r| normalise(literal(r)))
            };
            if let Some(path) = path_arg("get_only(") {
                routes.insert(("get".to_owned(), path));
                current = None;
            } else if let Some(path) = path_arg("post_only(") {
                routes.insert(("post".to_owned(), path));
                current = None;
            } else if let Some(path) = path_arg("web::resource(") {
                current = Some(path);
            } else if rest.starts_with("fn ") {
                // A helper's body (get_only, post_only) is no route.
                current = None;
            } else if let Some(r) = rest.strip_prefix(".route(web::") {
                let method = &r[..r.find('(').unwrap_or(0)];
                if let Some(path) = &current {
                    routes.insert((method.to_owned(), path.clone()));
                }
            }
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
        routes
    }

    fn documented(doc: &Value) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in ["get", "put", "post", "delete", "patch"] {
                if item.get(method).is_some() {
                    out.insert((method.to_owned(), normalise(path)));
                }
            }
        }
        out
    }

    #[test]
    fn every_api_v1_route_is_documented() {
        let doc: Value = serde_json::from_str(DOCUMENT).expect("the document is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let registered = registered();
        assert!(
            registered.contains(&("get".into(), "/audit".into())),
            "the route scan found {registered:?}"
        );
        assert!(registered.contains(&("patch".into(), "/applications/{}".into())));
        let documented = documented(&doc);
        let missing: Vec<_> = registered.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "routes registered in api/routes.rs but not in openapi/api-v1.json: {missing:?}"
        );
        let extra: Vec<_> = documented.difference(&registered).collect();
        assert!(
            extra.is_empty(),
            "operations in openapi/api-v1.json that api/routes.rs does not register: {extra:?}"
        );
    }

    #[test]
    fn every_reference_resolves_and_operation_ids_are_unique() {
        let doc: Value = serde_json::from_str(DOCUMENT).unwrap();
        fn walk(v: &Value, refs: &mut Vec<String>, ids: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        refs.push(r.clone());
                    }
                    if let Some(Value::String(id)) = m.get("operationId") {
                        ids.push(id.clone());
                    }
                    m.values().for_each(|v| walk(v, refs, ids));
                }
                Value::Array(a) => a.iter().for_each(|v| walk(v, refs, ids)),
                _ => {}
            }
        }
        let (mut refs, mut ids) = (Vec::new(), Vec::new());
        walk(&doc, &mut refs, &mut ids);
        for r in refs {
            let pointer = r.strip_prefix('#').expect("local reference");
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "duplicate operationId");
        // Every path parameter is declared.
        for (path, item) in doc["paths"].as_object().unwrap() {
            let names: Vec<&str> = path
                .split('{')
                .skip(1)
                .filter_map(|s| s.split('}').next())
                .collect();
            for name in names {
                let declared = item["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|p| p["name"] == name && p["in"] == "path");
                assert!(declared, "{path}: path parameter {name} is not declared");
            }
        }
    }
}
