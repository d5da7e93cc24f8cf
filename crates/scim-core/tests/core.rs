//! Integration tests of scim-core, compiled into one test binary with a
//! module per area. The modules live in `tests/core/`; a crate root looks
//! for `mod x;` next to itself, hence the `#[path]` attributes.

#[path = "core/filter_corpus.rs"]
mod filter_corpus;
#[path = "core/filter_props.rs"]
mod filter_props;
