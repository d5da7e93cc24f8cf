//! Property tests of the filter language: printing a typed filter and
//! parsing it back gives the same filter; the parser never panics, whatever
//! the input; and the evaluator's explicit-stack machine agrees with the
//! plain meaning of and, or and not.

use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use proptest::sample::select;
use scim_core::filter::{CompareOp, Filter};
use scim_core::schema::{AttrRef, AttributeType, ResourceSchema, SchemaRegistry};
use serde_json::Value;

fn registry() -> &'static SchemaRegistry {
    static REGISTRY: OnceLock<SchemaRegistry> = OnceLock::new();
    REGISTRY.get_or_init(SchemaRegistry::core)
}

fn users() -> Arc<ResourceSchema> {
    registry().resource_schema("User").expect("User")
}

fn groups() -> Arc<ResourceSchema> {
    registry().resource_schema("Group").expect("Group")
}

/// The corpus dataset, to evaluate generated filters against real documents.
fn dataset() -> &'static [Value] {
    static DOCS: OnceLock<Vec<Value>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../conformance-tests/filters/resources.json");
        let text = std::fs::read_to_string(path).expect("resources.json");
        let all: serde_json::Map<String, Value> = serde_json::from_str(&text).expect("JSON");
        all.into_iter()
            .flat_map(|(_, docs)| match docs {
                Value::Array(docs) => docs,
                _ => Vec::new(),
            })
            .collect()
    })
}

/// Every attribute and sub-attribute of the User resource type (common,
/// core and enterprise), resolved by its qualified name.
fn user_attributes() -> Vec<AttrRef> {
    let rs = users();
    let mut out = Vec::new();
    let schemas = std::iter::once(rs.common())
        .chain(std::iter::once(rs.core()))
        .chain(rs.extensions().iter().map(|(s, _)| s));
    for schema in schemas {
        for a in &schema.attributes {
            let path = if rs.extension(&schema.id).is_some() {
                format!("{}:{}", schema.id, a.name)
            } else {
                a.name.clone()
            };
            let top = rs.resolve(&path).expect("schema attribute resolves");
            for s in &a.sub_attributes {
                out.push(top.sub(&s.name).expect("sub-attribute resolves"));
            }
            out.push(top);
        }
    }
    out
}

fn simple_attributes() -> Vec<AttrRef> {
    user_attributes()
        .into_iter()
        .filter(|a| !a.target().is_complex())
        .collect()
}

fn complex_attributes() -> Vec<AttrRef> {
    user_attributes()
        .into_iter()
        .filter(|a| !a.has_sub() && a.target().is_complex())
        .collect()
}

/// Strings rich in what printing must escape: quotes, backslashes, control
/// characters, and non-ASCII up to the astral planes.
fn text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        3 => any::<char>(),
        2 => prop::char::range('a', 'z'),
        1 => Just('"'),
        1 => Just('\\'),
        1 => Just('/'),
        1 => (0u32..0x20).prop_map(|c| char::from_u32(c).expect("control character")),
        1 => Just('\u{7f}'),
        1 => Just('é'),
        1 => Just('\u{2028}'),
        1 => Just('😀'),
    ];
    prop::collection::vec(ch, 0..12).prop_map(String::from_iter)
}

/// xsd:dateTime text that `parse_datetime` accepts, with `Z`, an offset or
/// no zone, and with or without fractional seconds.
fn datetime() -> impl Strategy<Value = String> {
    (
        (1970i32..2100, 1u32..=12, 1u32..=28),
        (0u32..24, 0u32..60, 0u32..60),
        prop::option::of(0u32..1_000_000),
        prop_oneof![
            Just(String::from("Z")),
            Just(String::new()),
            (-14i32..=14, select(vec![0u32, 30, 45])).prop_map(|(h, m)| format!(
                "{}{:02}:{m:02}",
                if h < 0 { '-' } else { '+' },
                h.abs()
            )),
        ],
    )
        .prop_map(|((y, mo, d), (h, mi, s), frac, zone)| {
            let frac = frac.map(|f| format!(".{f:06}")).unwrap_or_default();
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{zone}")
        })
}

fn any_op() -> impl Strategy<Value = CompareOp> {
    select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ])
}

/// An operator and a literal that fit the attribute's type.
fn comparison(attr: AttrRef) -> BoxedStrategy<Filter> {
    let ty = attr.target().ty;
    let typed: BoxedStrategy<(CompareOp, Value)> = match ty {
        AttributeType::String | AttributeType::Reference => {
            (any_op(), text().prop_map(Value::String)).boxed()
        }
        AttributeType::Binary => (
            select(vec![
                CompareOp::Eq,
                CompareOp::Ne,
                CompareOp::Co,
                CompareOp::Sw,
                CompareOp::Ew,
            ]),
            text().prop_map(Value::String),
        )
            .boxed(),
        AttributeType::Boolean => (
            select(vec![CompareOp::Eq, CompareOp::Ne]),
            any::<bool>().prop_map(Value::Bool),
        )
            .boxed(),
        AttributeType::DateTime => (
            select(vec![
                CompareOp::Eq,
                CompareOp::Ne,
                CompareOp::Gt,
                CompareOp::Ge,
                CompareOp::Lt,
                CompareOp::Le,
            ]),
            datetime().prop_map(Value::String),
        )
            .boxed(),
        AttributeType::Integer => (
            select(vec![
                CompareOp::Eq,
                CompareOp::Ne,
                CompareOp::Gt,
                CompareOp::Le,
            ]),
            any::<i64>().prop_map(Value::from),
        )
            .boxed(),
        AttributeType::Decimal => (
            select(vec![
                CompareOp::Eq,
                CompareOp::Ne,
                CompareOp::Gt,
                CompareOp::Le,
            ]),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
        )
            .boxed(),
        AttributeType::Complex => unreachable!("comparisons are generated for simple attributes"),
    };
    let null = select(vec![CompareOp::Eq, CompareOp::Ne]).prop_map(|op| (op, Value::Null));
    prop_oneof![6 => typed, 1 => null]
        .prop_map(move |(op, value)| Filter::Compare {
            attr: attr.clone(),
            op,
            value,
        })
        .boxed()
}

/// A leaf on one of `attrs`: presence or a comparison.
fn leaf(attrs: Vec<AttrRef>) -> BoxedStrategy<Filter> {
    select(attrs)
        .prop_flat_map(|attr| {
            let present = Just(Filter::Present(attr.clone()));
            if attr.target().is_complex() {
                present.boxed()
            } else {
                prop_oneof![1 => present, 4 => comparison(attr)].boxed()
            }
        })
        .boxed()
}

/// And (two or more terms), or (two or more terms) and not over `leaves`.
fn tree(leaves: BoxedStrategy<Filter>, depth: u32) -> BoxedStrategy<Filter> {
    leaves
        .prop_recursive(depth, 24, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..4).prop_map(Filter::And),
                prop::collection::vec(inner.clone(), 2..4).prop_map(Filter::Or),
                inner.prop_map(|f| Filter::Not(Box::new(f))),
            ]
        })
        .boxed()
}

/// `attr[...]` over the sub-attributes of a complex attribute.
fn value_path() -> BoxedStrategy<Filter> {
    select(complex_attributes())
        .prop_flat_map(|attr| {
            let subs: Vec<AttrRef> = attr
                .attribute()
                .sub_attributes
                .iter()
                .map(|s| attr.sub(&s.name).expect("sub-attribute"))
                .collect();
            tree(leaf(subs), 2).prop_map(move |inner| Filter::ValuePath {
                attr: attr.clone(),
                filter: Box::new(inner),
            })
        })
        .boxed()
}

/// Random typed filters over the User schema.
fn user_filter() -> BoxedStrategy<Filter> {
    let mut all = simple_attributes();
    all.extend(complex_attributes());
    let leaves = prop_oneof![4 => leaf(all), 1 => value_path()].boxed();
    tree(leaves, 4)
}

/// Evaluates and, or and not by their plain meaning, and leaves with the
/// evaluator itself.
fn reference_matches(f: &Filter, doc: &Value) -> bool {
    match f {
        Filter::And(c) => c.iter().all(|c| reference_matches(c, doc)),
        Filter::Or(c) => c.iter().any(|c| reference_matches(c, doc)),
        Filter::Not(c) => !reference_matches(c, doc),
        leaf => leaf.matches(doc),
    }
}

/// Filter-like text: a soup of grammar tokens, terms joined by keywords in
/// any case with random grouping, or a printed random filter with a few
/// bytes cut, repeated or replaced. Many of these parse, many almost do.
fn filterish() -> impl Strategy<Value = String> {
    prop_oneof![soup(), terms(), mutated()]
}

fn soup() -> impl Strategy<Value = String> {
    let token = select(vec![
        "userName",
        "emails",
        "emails.value",
        "name.familyName",
        "meta.lastModified",
        "active",
        "members",
        "urn:ietf:params:scim:schemas:core:2.0:User:",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        "$ref",
        "type",
        "value",
        ".",
        ":",
        "[",
        "]",
        "(",
        ")",
        "not",
        "and",
        "or",
        "eq",
        "ne",
        "co",
        "sw",
        "gt",
        "le",
        "pr",
        "\"",
        "\"work\"",
        "\"2011-05-13T04:42:34Z\"",
        "\\",
        "\\\"",
        "\\u",
        "\\ud83d",
        "\\ude00",
        "00e9",
        "true",
        "False",
        "null",
        "42",
        "-1.5e3",
        "é",
        "😀",
        "\t",
        "\n",
    ]);
    let piece = prop_oneof![4 => token.prop_map(String::from), 1 => text()];
    let sep = select(vec!["", " ", " ", "  "]);
    prop::collection::vec((piece, sep), 0..24).prop_map(|parts| {
        parts
            .into_iter()
            .map(|(p, s)| format!("{p}{s}"))
            .collect::<String>()
    })
}

fn terms() -> impl Strategy<Value = String> {
    let attr = select(vec![
        "userName",
        "USERNAME",
        "title",
        "active",
        "emails",
        "emails.type",
        "emails[type eq \"work\"]",
        "name.givenName",
        "meta.created",
        "x509Certificates.value",
        "members.value",
        "displayName",
        "department",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "name",
        "nope",
    ]);
    let op = select(vec![
        "eq", "NE", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr", "Pr", "xx",
    ]);
    let value = select(vec![
        "\"work\"",
        "\"\"",
        "true",
        "FALSE",
        "null",
        "42",
        "1.5",
        "\"2011-05-13T04:42:34+02:00\"",
        "\"a\\\"b\\\\c\"",
        "\"\\u00e9\\ud83d\\ude00\"",
        "work",
        "",
    ]);
    let term = (attr, op, value, any::<bool>(), any::<bool>()).prop_map(|(a, o, v, not, group)| {
        let t = if o.eq_ignore_ascii_case("pr") {
            format!("{a} {o}")
        } else {
            format!("{a} {o} {v}")
        };
        let t = if group { format!("({t})") } else { t };
        if not { format!("not ({t})") } else { t }
    });
    let joiner = select(vec![" and ", " or ", " AND ", " Or ", " ", "and"]);
    (term.clone(), prop::collection::vec((joiner, term), 0..6)).prop_map(|(first, rest)| {
        rest.into_iter()
            .fold(first, |acc, (j, t)| format!("{acc}{j}{t}"))
    })
}

fn mutated() -> impl Strategy<Value = String> {
    let edit = (
        any::<prop::sample::Index>(),
        0usize..4,
        select(vec![
            "", "(", ")", "[", "]", "\"", "\\", " ", "not ", " and ", "é",
        ]),
    );
    (user_filter(), prop::collection::vec(edit, 1..4)).prop_map(|(f, edits)| {
        let mut s = f.to_string();
        for (at, cut, insert) in edits {
            let mut i = at.index(s.len() + 1);
            while !s.is_char_boundary(i) {
                i -= 1;
            }
            let mut j = (i + cut).min(s.len());
            while !s.is_char_boundary(j) {
                j += 1;
            }
            s.replace_range(i..j, insert);
        }
        s
    })
}

/// Parses `text` for both resource types; whatever parses must print and
/// parse back unchanged and evaluate without panicking.
fn check_any_input(text: &str) -> Result<(), TestCaseError> {
    for rs in [users(), groups()] {
        if let Ok(f) = Filter::parse(text, &rs) {
            let printed = f.to_string();
            let limits = scim_core::filter::Limits {
                max_length: usize::MAX,
                ..Default::default()
            };
            let again = Filter::parse_with(&printed, &rs, &limits);
            prop_assert_eq!(again.as_ref(), Ok(&f), "printed as {}", printed);
            for doc in dataset() {
                let _ = f.matches(doc);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn printed_filters_parse_back_unchanged(f in user_filter()) {
        let printed = f.to_string();
        prop_assert_eq!(Filter::parse(&printed, &users()), Ok(f), "printed as {}", printed);
    }

    #[test]
    fn evaluation_agrees_with_the_meaning_of_connectives(f in user_filter()) {
        for doc in dataset() {
            prop_assert_eq!(f.matches(doc), reference_matches(&f, doc), "{}", f);
        }
    }

    #[test]
    fn parser_never_panics_on_arbitrary_strings(text in any::<String>()) {
        check_any_input(&text)?;
    }

    #[test]
    fn parser_never_panics_on_filterish_strings(text in filterish()) {
        check_any_input(&text)?;
    }
}
