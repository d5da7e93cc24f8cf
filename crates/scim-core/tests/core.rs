//! Integration tests of scim-core, one module per area.

/// The text of an RFC example file in `conformance-tests/rfc-examples/`.
macro_rules! rfc_example {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../conformance-tests/rfc-examples/",
            $name
        ))
    };
}

/// Parses an RFC example file as JSON.
macro_rules! rfc_json {
    ($name:literal) => {
        serde_json::from_str::<serde_json::Value>(rfc_example!($name))
            .expect(concat!($name, " is valid JSON"))
    };
}

// The crate root is `tests/core.rs`, so the area modules in `tests/core/`
// need their paths spelled out.
#[path = "core/filter_corpus.rs"]
mod filter_corpus;
#[path = "core/filter_props.rs"]
mod filter_props;
#[path = "core/messages.rs"]
mod messages;
#[path = "core/projection.rs"]
mod projection;
#[path = "core/resource.rs"]
mod resource;
#[path = "core/validate.rs"]
mod validate;
