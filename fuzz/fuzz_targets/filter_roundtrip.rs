//! Typed User filters built from the fuzzer's bytes (any shape, including
//! chains thousands of `not`s deep that no parser would accept), printed and
//! parsed back. Within the parser's limits the result must be equal; beyond
//! them the parser must refuse it. Printing, evaluating and dropping must
//! never overflow the stack, whatever the depth.

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use scim_core::filter::{CompareOp, Filter, Limits};
use scim_core::schema::{AttrRef, AttributeType, ResourceSchema, SchemaRegistry};
use serde_json::Value;

struct Fixture {
    users: Arc<ResourceSchema>,
    /// Simple attributes and sub-attributes (comparable).
    simple: Vec<AttrRef>,
    /// Top-level complex attributes (value paths, presence).
    complex: Vec<AttrRef>,
    docs: Vec<Value>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let registry = SchemaRegistry::core();
        let users = registry.resource_schema("User").expect("User");
        let mut simple = Vec::new();
        let mut complex = Vec::new();
        let schemas = [users.common(), users.core()]
            .into_iter()
            .chain(users.extensions().iter().map(|(s, _)| s));
        for schema in schemas {
            for a in &schema.attributes {
                let path = if users.extension(&schema.id).is_some() {
                    format!("{}:{}", schema.id, a.name)
                } else {
                    a.name.clone()
                };
                let top = users.resolve(&path).expect("attribute resolves");
                if a.is_complex() {
                    for s in &a.sub_attributes {
                        simple.push(top.sub(&s.name).expect("sub-attribute"));
                    }
                    complex.push(top);
                } else {
                    simple.push(top);
                }
            }
        }
        let data: serde_json::Map<String, Value> = serde_json::from_str(include_str!(
            "../../conformance-tests/filters/resources.json"
        ))
        .expect("resources.json");
        let docs = data["User"].as_array().expect("users").clone();
        Fixture {
            users,
            simple,
            complex,
            docs,
        }
    })
}

const OPS: [CompareOp; 9] = [
    CompareOp::Eq,
    CompareOp::Ne,
    CompareOp::Co,
    CompareOp::Sw,
    CompareOp::Ew,
    CompareOp::Gt,
    CompareOp::Ge,
    CompareOp::Lt,
    CompareOp::Le,
];

fn comparison(u: &mut Unstructured<'_>, attr: &AttrRef) -> Result<Filter> {
    let ty = attr.target().ty;
    let (op, value) = if u.ratio(1, 8)? {
        (*u.choose(&OPS[..2])?, Value::Null)
    } else {
        match ty {
            AttributeType::Boolean => (*u.choose(&OPS[..2])?, Value::Bool(u.arbitrary()?)),
            AttributeType::DateTime => {
                let op = *u.choose(&[OPS[0], OPS[1], OPS[5], OPS[6], OPS[7], OPS[8]])?;
                let text = format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}",
                    u.int_in_range(1..=9999)?,
                    u.int_in_range(1..=12)?,
                    u.int_in_range(1..=28)?,
                    u.int_in_range(0..=23)?,
                    u.int_in_range(0..=59)?,
                    u.int_in_range(0..=59)?,
                    *u.choose(&["Z", "+02:00", "-05:30", "", ".5Z"])?
                );
                (op, Value::String(text))
            }
            AttributeType::Binary => (*u.choose(&OPS[..5])?, Value::String(u.arbitrary()?)),
            AttributeType::Integer => (*u.choose(&OPS)?, Value::from(u.arbitrary::<i64>()?)),
            AttributeType::Decimal => {
                let f: f64 = u.arbitrary()?;
                (
                    *u.choose(&OPS)?,
                    Value::from(if f.is_finite() { f } else { 0.5 }),
                )
            }
            AttributeType::String | AttributeType::Reference | AttributeType::Complex => {
                (*u.choose(&OPS)?, Value::String(u.arbitrary()?))
            }
        }
    };
    Ok(Filter::Compare {
        attr: attr.clone(),
        op,
        value,
    })
}

/// A filter over `simple` (and `complex`, outside value paths), at most
/// `depth` levels of and/or/not/value path deep.
fn build(
    u: &mut Unstructured<'_>,
    fx: &Fixture,
    parent: Option<&AttrRef>,
    depth: u32,
) -> Result<Filter> {
    let subs: Vec<AttrRef>;
    let simple: &[AttrRef] = match parent {
        Some(p) => {
            subs = p
                .attribute()
                .sub_attributes
                .iter()
                .filter_map(|s| p.sub(&s.name))
                .collect();
            &subs
        }
        None => &fx.simple,
    };
    let choice = if depth == 0 {
        u.int_in_range(3..=4)?
    } else {
        u.int_in_range(0..=5)?
    };
    Ok(match choice {
        0 | 1 => {
            let n = u.int_in_range(2..=3)?;
            let mut children = Vec::with_capacity(n);
            for _ in 0..n {
                children.push(build(u, fx, parent, depth - 1)?);
            }
            if choice == 0 {
                Filter::And(children)
            } else {
                Filter::Or(children)
            }
        }
        2 => Filter::Not(Box::new(build(u, fx, parent, depth - 1)?)),
        3 => {
            if parent.is_none() && u.ratio(1, 4)? {
                Filter::Present(u.choose(&fx.complex)?.clone())
            } else {
                Filter::Present(u.choose(simple)?.clone())
            }
        }
        4 => {
            let attr = u.choose(simple)?.clone();
            comparison(u, &attr)?
        }
        _ => match parent {
            Some(_) => {
                let attr = u.choose(simple)?.clone();
                comparison(u, &attr)?
            }
            None => {
                let attr = u.choose(&fx.complex)?.clone();
                let inner = build(u, fx, Some(&attr), depth.min(3) - 1)?;
                Filter::ValuePath {
                    attr,
                    filter: Box::new(inner),
                }
            }
        },
    })
}

/// The deepest nesting of `(` and `[` outside string literals in printed
/// filter text: what the parser's depth limit measures.
fn nesting(text: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for c in text.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn terms(f: &Filter) -> usize {
    let mut n = 0;
    let mut stack = vec![f];
    while let Some(f) = stack.pop() {
        match f {
            Filter::And(c) | Filter::Or(c) => stack.extend(c),
            Filter::Not(c) | Filter::ValuePath { filter: c, .. } => stack.push(c),
            Filter::Present(_) | Filter::Compare { .. } => n += 1,
        }
    }
    n
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    let mut u = Unstructured::new(data);
    let Ok(mut filter) = build(&mut u, fx, None, 4) else {
        return;
    };
    // Sometimes wrap the tree in a chain of `not`s deeper than any limit
    // (the unit tests in typed.rs go to a million levels; here a few
    // thousand keep the fuzzer fast).
    let nots: u16 = u.arbitrary().unwrap_or(0);
    let nots = if nots % 8 == 1 {
        usize::from(nots % 4096)
    } else {
        0
    };
    for _ in 0..nots {
        filter = Filter::Not(Box::new(filter));
    }
    let printed = filter.to_string();
    for doc in &fx.docs {
        let _ = filter.matches(doc);
    }
    let limits = Limits {
        max_length: usize::MAX,
        ..Limits::default()
    };
    let parsed = Filter::parse_with(&printed, &fx.users, &limits);
    if nesting(&printed) <= limits.max_depth && terms(&filter) <= limits.max_terms {
        match parsed {
            Ok(again) => assert!(again == filter, "{printed:?} parsed back differently"),
            Err(e) => panic!("{printed:?} does not parse: {e}"),
        }
    } else {
        assert!(
            parsed.is_err(),
            "{} bytes beyond the limits parsed",
            printed.len()
        );
    }
    // Dropping `filter` here walks the tree without recursion.
});
