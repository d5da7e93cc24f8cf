//! The RFC example messages parse into the typed messages and serialise
//! back to equal documents.

use scim_core::messages::{
    BULK_REQUEST_SCHEMA, BULK_RESPONSE_SCHEMA, BulkMethod, BulkRequest, BulkResponse, ListResponse,
    SEARCH_REQUEST_SCHEMA, SearchRequest, ServiceProviderConfig, require_schema,
    resource_type_resource,
};
use scim_core::schema::ResourceType;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Parses `doc` as `T` and checks that it serialises back to `doc`.
fn round_trip<T: DeserializeOwned + Serialize>(doc: &Value) -> T {
    let parsed: T = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(&serde_json::to_value(&parsed).unwrap(), doc);
    parsed
}

#[test]
fn rfc7644_3_4_2_list_response() {
    let doc = rfc_json!("rfc7644-3.4.2-list-response.json");
    let list: ListResponse = round_trip(&doc);
    assert_eq!(list.total_results, Some(2));
    assert_eq!(list.start_index, None);
    assert_eq!(list.resources.len(), 2);
    assert_eq!(list.resources[1]["userName"], "jsmith");
}

#[test]
fn rfc7644_3_4_3_search_request_and_response() {
    let doc = rfc_json!("rfc7644-3.4.3-search-request.json");
    let search: SearchRequest = round_trip(&doc);
    require_schema(&search.schemas, SEARCH_REQUEST_SCHEMA).unwrap();
    assert_eq!(search.attributes, ["displayName", "userName"]);
    assert_eq!(search.filter.as_deref(), Some("displayName sw \"smith\""));
    assert_eq!((search.start_index, search.count), (Some(1), Some(10)));
    assert_eq!(search.cursor, None);

    let doc = rfc_json!("rfc7644-3.4.3-list-response.json");
    let list: ListResponse = round_trip(&doc);
    assert_eq!(
        (list.total_results, list.items_per_page, list.start_index),
        (Some(100), Some(10), Some(1))
    );
    assert_eq!(list.resources[1]["displayName"], "Smith Family");
}

#[test]
fn rfc9865_3_search_request_with_empty_cursor() {
    let doc = rfc_json!("rfc9865-3-search-request.json");
    let search: SearchRequest = round_trip(&doc);
    assert_eq!(search.cursor.as_deref(), Some(""));
    assert_eq!(search.count, Some(10));
}

#[test]
fn rfc9865_cursor_list_response() {
    // Section 2's second page (its "previousCursor: typo corrected).
    let doc = json!({
        "totalResults": 100,
        "itemsPerPage": 10,
        "previousCursor": "ze7L30kMiiLX6x",
        "nextCursor": "YkU3OF86Pz0rGv",
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "Resources": [{"id": "a"}]
    });
    let list: ListResponse = round_trip(&doc);
    assert_eq!(list.next_cursor.as_deref(), Some("YkU3OF86Pz0rGv"));
    assert_eq!(list.previous_cursor.as_deref(), Some("ze7L30kMiiLX6x"));
    // Section 2: a provider that cannot count may omit totalResults.
    let list: ListResponse = round_trip(&json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "itemsPerPage": 0,
        "Resources": []
    }));
    assert_eq!(list.total_results, None);
}

#[test]
fn rfc7644_3_7_bulk_requests() {
    let doc = rfc_json!("rfc7644-3.7.1-bulk-request.json");
    let bulk: BulkRequest = round_trip(&doc);
    require_schema(&bulk.schemas, BULK_REQUEST_SCHEMA).unwrap();
    assert_eq!(bulk.operations.len(), 2);
    assert_eq!(bulk.operations[0].method, BulkMethod::Post);
    assert_eq!(bulk.operations[0].bulk_id.as_deref(), Some("qwerty"));
    assert_eq!(bulk.operations[0].path, "/Groups");
    assert_eq!(
        bulk.operations[1].data.as_ref().unwrap()["members"][0]["value"],
        "bulkId:qwerty"
    );

    let doc = rfc_json!("rfc7644-3.7.2-bulk-request.json");
    let bulk: BulkRequest = round_trip(&doc);
    assert_eq!(bulk.operations[1].path, "/Groups");

    let doc = rfc_json!("rfc7644-3.7.2-bulk-request-enterprise.json");
    let bulk: BulkRequest = round_trip(&doc);
    let data = bulk.operations[1].data.as_ref().unwrap();
    assert_eq!(
        data["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]["value"],
        "bulkId:qwerty"
    );

    let doc = rfc_json!("rfc7644-3.7.3-bulk-request.json");
    let bulk: BulkRequest = round_trip(&doc);
    assert_eq!(bulk.fail_on_errors, Some(1));
    let methods: Vec<BulkMethod> = bulk.operations.iter().map(|o| o.method).collect();
    assert_eq!(
        methods,
        [
            BulkMethod::Post,
            BulkMethod::Put,
            BulkMethod::Patch,
            BulkMethod::Delete
        ]
    );
    assert_eq!(
        bulk.operations[1].version.as_deref(),
        Some("W/\"3694e05e9dff591\"")
    );
    assert_eq!(bulk.operations[3].data, None);
    let patch = bulk.operations[2].data.clone().unwrap();
    let patch: scim_core::messages::PatchRequest = round_trip(&patch);
    assert_eq!(patch.operations.len(), 2);
}

#[test]
fn rfc7644_3_7_2_bulk_response_with_status_object() {
    // The section 3.7.2 example writes `"status": {"code": "201"}`; it reads
    // as 201 and is written in the section 3.7.3 form.
    let doc = rfc_json!("rfc7644-3.7.2-bulk-response.json");
    let bulk: BulkResponse = serde_json::from_value(doc.clone()).unwrap();
    require_schema(&bulk.schemas, BULK_RESPONSE_SCHEMA).unwrap();
    assert!(bulk.operations.iter().all(|o| o.status == 201));
    let mut expected = doc;
    for op in expected["Operations"].as_array_mut().unwrap() {
        op["status"] = json!("201");
    }
    assert_eq!(serde_json::to_value(&bulk).unwrap(), expected);
}

#[test]
fn rfc7644_3_7_3_bulk_responses() {
    let doc = rfc_json!("rfc7644-3.7.3-bulk-response.json");
    let bulk: BulkResponse = round_trip(&doc);
    let statuses: Vec<u16> = bulk.operations.iter().map(|o| o.status).collect();
    assert_eq!(statuses, [201, 200, 200, 204]);
    assert!(
        bulk.operations
            .iter()
            .all(|o| o.is_success() && o.location.is_some())
    );

    let doc = rfc_json!("rfc7644-3.7.3-bulk-response-stopped.json");
    let bulk: BulkResponse = round_trip(&doc);
    let failed = &bulk.operations[0];
    assert_eq!((failed.status, failed.location.as_deref()), (400, None));
    let error: scim_core::error::ErrorResponse =
        serde_json::from_value(failed.response.clone().unwrap()).unwrap();
    assert_eq!(error.scim_type.as_deref(), Some("invalidSyntax"));

    let doc = rfc_json!("rfc7644-3.7.3-bulk-response-all-failed.json");
    let bulk: BulkResponse = round_trip(&doc);
    let statuses: Vec<u16> = bulk.operations.iter().map(|o| o.status).collect();
    assert_eq!(statuses, [400, 412, 412, 404]);
}

#[test]
fn rfc7643_8_5_service_provider_config() {
    let doc = rfc_json!("rfc7643-8.5-service-provider-config.json");
    let spc: ServiceProviderConfig = round_trip(&doc);
    assert_eq!(
        spc.documentation_uri.as_deref(),
        Some("http://example.com/help/scim.html")
    );
    assert!(spc.patch.supported && spc.bulk.supported && spc.filter.supported);
    assert!(spc.change_password.supported && spc.sort.supported && spc.etag.supported);
    assert_eq!(
        (spc.bulk.max_operations, spc.bulk.max_payload_size),
        (1000, 1_048_576)
    );
    assert_eq!(spc.filter.max_results, 200);
    assert_eq!(spc.authentication_schemes.len(), 2);
    assert_eq!(spc.authentication_schemes[0].kind, "oauthbearertoken");
    assert_eq!(spc.authentication_schemes[0].primary, Some(true));
    assert_eq!(spc.authentication_schemes[1].primary, None);
    assert_eq!(spc.pagination, None);
    let meta = spc.meta.unwrap();
    assert_eq!(meta.resource_type.as_deref(), Some("ServiceProviderConfig"));
    assert_eq!(meta.version.as_deref(), Some("W/\"3694e05e9dff594\""));
}

#[test]
fn rfc9865_4_pagination_in_service_provider_config() {
    let mut doc = rfc_json!("rfc7643-8.5-service-provider-config.json");
    doc["pagination"] = json!({
        "cursor": true,
        "index": true,
        "defaultPaginationMethod": "cursor",
        "defaultPageSize": 100,
        "maxPageSize": 250,
        "cursorTimeout": 3600
    });
    let spc: ServiceProviderConfig = round_trip(&doc);
    let p = spc.pagination.unwrap();
    assert!(p.cursor && p.index);
    assert_eq!(p.default_pagination_method.as_deref(), Some("cursor"));
    assert_eq!(
        (p.default_page_size, p.max_page_size, p.cursor_timeout),
        (Some(100), Some(250), Some(3600))
    );
}

#[test]
fn rfc7644_4_resource_types_list_and_representation() {
    let doc = rfc_json!("rfc7644-4-resource-types-list-response.json");
    let list: ListResponse = round_trip(&doc);
    assert_eq!(list.total_results, Some(2));
    // Our representation of each resource type is the RFC's (sections 4 and 8.6).
    for served in rfc_json!("rfc7643-8.6-resource-types.json")
        .as_array()
        .unwrap()
    {
        let rt: ResourceType = serde_json::from_value(served.clone()).unwrap();
        assert_eq!(
            &resource_type_resource(&rt, "https://example.com/v2"),
            served
        );
    }
}
