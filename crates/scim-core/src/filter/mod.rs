//! SCIM filters (RFC 7644 section 3.4.2.2), in two stages like a compiler:
//!
//! 1. [`parse_syntax`]: text to a syntax tree ([`ast::Expr`]) with byte spans,
//!    bounded by [`Limits`]. Errors are `invalidFilter` with the byte
//!    position of the problem.
//! 2. [`Filter::resolve`]: the tree resolved against a resource schema
//!    (attributes found, URN-qualified names understood, value types and
//!    operators checked).
//!
//! [`Filter::parse`] does both. The typed filter evaluates in memory
//! ([`Filter::matches`]) and prints back to text (`Display`).
//!
//! ```
//! use scim_core::filter::Filter;
//! use scim_core::schema::SchemaRegistry;
//!
//! let registry = SchemaRegistry::core();
//! let users = registry.resource_schema("User").unwrap();
//! let f = Filter::parse(r#"title pr or USERTYPE eq "Intern" and active eq true"#, &users).unwrap();
//! // `and` binds tighter than `or`:
//! assert_eq!(f.to_string(), r#"title pr or userType eq "Intern" and active eq true"#);
//! assert!(f.matches(&serde_json::json!({"title": "Tour Guide"})));
//!
//! let err = Filter::parse(r#"nickName eq "x" and shoeSize gt 9"#, &users).unwrap_err();
//! assert_eq!(err.kind().scim_type(), Some("invalidFilter"));
//! assert_eq!(err.position(), Some(20));
//! ```

pub mod ast;
mod display;
pub use display::ValueFilterDisplay;
mod eval;
mod parse;
mod typed;

pub use eval::{fold, parse_datetime};
pub use parse::{PathSyntax, parse_path_syntax, parse_syntax};
pub use typed::Filter;

pub use ast::CompareOp;

/// Bounds on filter input, so hostile filters are refused early and cheaply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest accepted filter, in bytes.
    pub max_length: usize,
    /// Deepest nesting of parentheses, `not (...)` and `[...]`.
    pub max_depth: usize,
    /// Most comparison and presence terms.
    pub max_terms: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_length: 16 * 1024,
            max_depth: 32,
            max_terms: 500,
        }
    }
}
