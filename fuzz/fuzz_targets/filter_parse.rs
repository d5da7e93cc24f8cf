//! Arbitrary bytes as filter text, parsed for Users and for Groups. Whatever
//! parses must print as text that parses back to an equal filter, and must
//! evaluate over the corpus dataset without panicking.

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use scim_core::filter::{Filter, Limits};
use scim_core::schema::{ResourceSchema, SchemaRegistry};
use serde_json::Value;

struct Fixture {
    types: Vec<(Arc<ResourceSchema>, Vec<Value>)>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let registry = SchemaRegistry::core();
        let data: serde_json::Map<String, Value> = serde_json::from_str(include_str!(
            "../../conformance-tests/filters/resources.json"
        ))
        .expect("resources.json");
        let types = ["User", "Group"]
            .into_iter()
            .map(|rt| {
                let docs = data[rt].as_array().expect("array of resources").clone();
                (registry.resource_schema(rt).expect("resource type"), docs)
            })
            .collect();
        Fixture { types }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The printed form spells extension attributes with their URN and can
    // be longer than the input; only the length limit is lifted to re-parse.
    let reparse = Limits {
        max_length: usize::MAX,
        ..Limits::default()
    };
    for (schema, docs) in &fixture().types {
        let Ok(filter) = Filter::parse(text, schema) else {
            continue;
        };
        let printed = filter.to_string();
        match Filter::parse_with(&printed, schema, &reparse) {
            Ok(again) => assert_eq!(again, filter, "{text:?} printed as {printed:?}"),
            Err(e) => panic!("{text:?} printed as {printed:?} does not parse: {e}"),
        }
        for doc in docs {
            let _ = filter.matches(doc);
        }
    }
});
