//! The representations of resource types and schemas served at
//! `/ResourceTypes` and `/Schemas` (RFC 7644 section 4).

use serde_json::{Map, Value};

use crate::resource::Meta;
use crate::resource::serde_ci;
use crate::schema::{RESOURCE_TYPE_SCHEMA, ResourceType, SCHEMA_SCHEMA, Schema};

fn endpoint_url(base_url: &str, collection: &str, id: &str) -> String {
    format!("{}/{collection}/{id}", base_url.trim_end_matches('/'))
}

fn discovery_resource(
    schema_urn: &str,
    body: Map<String, Value>,
    resource_type: &str,
    location: String,
) -> Value {
    let mut out = Map::with_capacity(body.len() + 2);
    out.insert(
        "schemas".into(),
        Value::Array(vec![Value::String(schema_urn.into())]),
    );
    out.extend(body);
    let meta = Meta {
        resource_type: Some(resource_type.to_string()),
        location: Some(location),
        ..Meta::default()
    };
    out.insert("meta".into(), Value::Object(serde_ci::to_object(&meta)));
    Value::Object(out)
}

/// The representation of a resource type served at
/// `{base_url}/ResourceTypes/{id}` (RFC 7643 sections 6 and 8.6): with
/// `schemas` and `meta` (`resourceType` `ResourceType`, `location`). An
/// empty `schemaExtensions` is left out, as in the RFC's Group example.
pub fn resource_type_resource(rt: &ResourceType, base_url: &str) -> Value {
    let mut body = serde_ci::to_object(rt);
    if body
        .get("schemaExtensions")
        .is_some_and(|v| v.as_array().is_some_and(Vec::is_empty))
    {
        body.shift_remove("schemaExtensions");
    }
    discovery_resource(
        RESOURCE_TYPE_SCHEMA,
        body,
        "ResourceType",
        endpoint_url(base_url, "ResourceTypes", &rt.id),
    )
}

/// The representation of a schema served at `{base_url}/Schemas/{urn}`
/// (RFC 7643 sections 7 and 8.7): with `schemas` and `meta`
/// (`resourceType` `Schema`, `location`).
pub fn schema_resource(schema: &Schema, base_url: &str) -> Value {
    discovery_resource(
        SCHEMA_SCHEMA,
        serde_ci::to_object(schema),
        "Schema",
        endpoint_url(base_url, "Schemas", &schema.id),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SchemaRegistry;
    use serde_json::json;
    #[test]
    fn discovery_representations() {
        let registry = SchemaRegistry::core();
        let group_rt = registry
            .resource_schema("Group")
            .unwrap()
            .resource_type()
            .clone();
        assert_eq!(
            resource_type_resource(&group_rt, "https://example.com/v2/"),
            json!({
                "schemas": [RESOURCE_TYPE_SCHEMA],
                "id": "Group",
                "name": "Group",
                "endpoint": "/Groups",
                "description": "Group",
                "schema": "urn:ietf:params:scim:schemas:core:2.0:Group",
                "meta": {
                    "resourceType": "ResourceType",
                    "location": "https://example.com/v2/ResourceTypes/Group"
                }
            })
        );
        let user_schema = registry.schema(crate::schema::USER_SCHEMA).unwrap();
        let v = schema_resource(&user_schema, "https://example.com/v2");
        assert_eq!(v["schemas"], json!([SCHEMA_SCHEMA]));
        assert_eq!(v["id"], crate::schema::USER_SCHEMA);
        assert_eq!(
            v["meta"]["location"],
            "https://example.com/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"
        );
        assert_eq!(v["attributes"][0]["name"], "userName");
        assert_eq!(v["attributes"][0]["multiValued"], false);
        let back: Schema = serde_json::from_value(v).unwrap();
        assert_eq!(&back, user_schema.as_ref());
    }
}
