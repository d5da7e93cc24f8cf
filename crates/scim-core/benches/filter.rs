//! Filter parsing and in-memory evaluation (docs/BENCHMARKS.md).
//!
//! `cargo bench -p scim-core --bench filter`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use scim_core::filter::{Filter, Limits};
use scim_core::schema::SchemaRegistry;
use serde_json::{Value, json};

const SIMPLE: &str = r#"userName eq "x""#;
/// The longest example filter of RFC 7644 section 3.4.2.2 (Figure 2).
const RFC_LONGEST: &str = r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#;

fn or_chain(terms: usize) -> String {
    (0..terms)
        .map(|i| format!(r#"userName eq "user{i:05}""#))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// `n` Users, deterministic, shaped like an identity provider's: one to
/// three emails, a name, a title on most, enterprise data on half.
fn users(n: usize) -> Vec<Value> {
    const GIVEN: [&str; 8] = [
        "Ada", "Björn", "Chen", "Dana", "Émile", "Fatima", "Gus", "Hana",
    ];
    const FAMILY: [&str; 8] = [
        "Jensen", "O'Malley", "Smith", "Müller", "García", "Li", "Novak", "Okafor",
    ];
    const TYPES: [&str; 3] = ["Employee", "Intern", "Contractor"];
    const DEPARTMENTS: [&str; 4] = ["Engineering", "Sales", "Research", "Tour Operations"];
    (0..n)
        .map(|i| {
            let given = GIVEN[i % GIVEN.len()];
            let family = FAMILY[(i / 8) % FAMILY.len()];
            let user_name = format!("user{i:05}");
            let domain = if i % 5 == 0 { "example.org" } else { "example.com" };
            let mut emails = vec![json!({"value": format!("{user_name}@{domain}"), "type": "work", "primary": true})];
            if i % 2 == 0 {
                emails.push(json!({"value": format!("{given}.{i}@home.example.net"), "type": "home"}));
            }
            if i % 7 == 0 {
                emails.push(json!({"value": format!("{i}@example.com"), "type": "other"}));
            }
            let mut user = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "id": format!("{i:08x}-0000-4000-8000-000000000000"),
                "userName": user_name,
                "name": {"givenName": given, "familyName": family, "formatted": format!("{given} {family}")},
                "displayName": format!("{given} {family}"),
                "userType": TYPES[i % TYPES.len()],
                "active": i % 10 != 0,
                "emails": emails,
                "meta": {
                    "resourceType": "User",
                    "created": format!("20{:02}-01-01T00:00:00Z", 10 + i % 15),
                    "lastModified": format!("20{:02}-{:02}-15T12:00:00+02:00", 10 + i % 15, 1 + i % 12),
                },
            });
            if i % 4 != 0 {
                user["title"] = json!(["Engineer", "Manager", "Guide"][i % 3]);
            }
            if i % 2 == 1 {
                user["schemas"]
                    .as_array_mut()
                    .expect("schemas")
                    .push(json!("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"));
                user["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = json!({
                    "department": DEPARTMENTS[(i / 2) % DEPARTMENTS.len()],
                    "employeeNumber": format!("{i}"),
                    "manager": {"value": format!("{:08x}-0000-4000-8000-000000000000", i / 10)},
                });
            }
            user
        })
        .collect()
}

fn parse(c: &mut Criterion) {
    let registry = SchemaRegistry::core();
    let schema = registry.resource_schema("User").expect("User");
    let chain = or_chain(50);
    let limits = Limits::default();
    let mut group = c.benchmark_group("filter_parse");
    group.throughput(Throughput::Elements(1));
    for (name, text) in [
        ("simple", SIMPLE),
        ("rfc_longest", RFC_LONGEST),
        ("or_chain_50", chain.as_str()),
    ] {
        Filter::parse(text, &schema).expect("benchmark filter parses");
        group.bench_function(name, |b| {
            b.iter(|| Filter::parse_with(black_box(text), &schema, &limits))
        });
    }
    group.finish();
}

fn evaluate(c: &mut Criterion) {
    let registry = SchemaRegistry::core();
    let schema = registry.resource_schema("User").expect("User");
    let docs = users(10_000);
    let mut group = c.benchmark_group("filter_eval_10k_users");
    group.throughput(Throughput::Elements(docs.len() as u64));
    for (name, text) in [
        ("eq_userName", r#"userName eq "user05000""#),
        (
            "rfc_value_path",
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
        ),
        (
            "mixed",
            r#"(title pr or userType eq "Intern") and not (meta.lastModified lt "2015-01-01T00:00:00Z") and urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department sw "eng""#,
        ),
    ] {
        let filter = Filter::parse(text, &schema).expect("benchmark filter parses");
        let matched = docs.iter().filter(|d| filter.matches(d)).count();
        assert!(matched > 0, "{name} matches no generated user");
        group.bench_function(name, |b| {
            b.iter(|| docs.iter().filter(|d| filter.matches(black_box(d))).count())
        });
    }
    group.finish();
}

criterion_group!(benches, parse, evaluate);
criterion_main!(benches);
