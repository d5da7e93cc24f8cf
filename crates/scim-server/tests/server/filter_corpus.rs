//! The filter corpus (`conformance-tests/filters`) through the SQL path, on
//! each backend: the dataset is imported with the production index rows,
//! every case runs as a query, and every mismatch is reported at once.

use std::collections::BTreeSet;
use std::path::Path;

use scim_core::filter::Limits;
use scim_core::messages::{SearchRequest, SortOrder};
use scim_core::schema::SchemaRegistry;
use scim_server::api::list::compile_query;
use scim_server::store::{
    ImportMode, ImportStore, PageRequest, QueryStore, SortKey, Store, TenantId, TenantStore,
    WriteContext,
};
use serde_json::Value;

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../conformance-tests/filters"
);
/// The base URL the dataset's `meta.location` values use.
const BASE: &str = "https://example.com/v2";

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Loads the dataset into a new tenant called `name`.
pub fn load_dataset(store: &Store, name: &str) -> TenantId {
    let registry = SchemaRegistry::core();
    let tenant = store.ensure_tenant(name).unwrap().id;
    let data = read_json(&Path::new(CORPUS).join("resources.json"));
    for (type_name, docs) in data.as_object().unwrap() {
        let rs = registry.resource_schema(type_name).unwrap();
        let docs = docs.as_array().unwrap().clone();
        store
            .import_resources(
                WriteContext {
                    tenant_id: tenant,
                    actor: None,
                },
                &rs,
                docs,
                ImportMode::AsIs,
            )
            .unwrap();
    }
    tenant
}

/// Every case of the corpus: (file, case).
pub fn cases() -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(Path::new(CORPUS).join("cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        for case in read_json(&f)["cases"].as_array().unwrap() {
            out.push((name.clone(), case.clone()));
        }
    }
    out
}

/// A page's total, ids and keys.
type Answer = (u64, Vec<String>, Vec<SortKey>);

/// The ids matching a search, or the error's (scimType, position).
fn run(
    store: &Store,
    tenant: TenantId,
    type_name: &str,
    search: &SearchRequest,
    page: &PageRequest,
) -> Result<Answer, (String, Option<usize>)> {
    let rs = SchemaRegistry::core().resource_schema(type_name).unwrap();
    let result = compile_query(tenant, &[rs], search, BASE, &Limits::default())
        .and_then(|q| store.query_resources(&q, page));
    match result {
        Ok(p) => Ok((
            p.total,
            p.resources.iter().map(|r| r.id.clone()).collect(),
            p.resources.iter().map(|r| r.key.clone()).collect(),
        )),
        Err(e) => {
            let scim = e.to_scim();
            Err((
                scim.kind().scim_type().unwrap_or("").to_owned(),
                scim.position(),
            ))
        }
    }
}

fn expected_ids(case: &Value) -> Option<BTreeSet<String>> {
    case["expect"]
        .as_array()
        .map(|ids| ids.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
}

store_test!(corpus_answers_like_the_evaluator, |store| {
    let tenant = load_dataset(&store, "corpus");
    // The same data in another tenant must never leak into the answers.
    load_dataset(&store, "neighbour");
    let all = PageRequest::Index {
        offset: 0,
        count: 1000,
    };
    let mut failures = Vec::new();
    let cases = cases();
    assert!(cases.len() >= 400, "only {} cases", cases.len());
    for (file, case) in &cases {
        let name = case["name"].as_str().unwrap();
        let filter = case["filter"].as_str().unwrap();
        let search = SearchRequest {
            filter: Some(filter.to_owned()),
            ..SearchRequest::default()
        };
        let got = run(
            &store,
            tenant,
            case["resourceType"].as_str().unwrap(),
            &search,
            &all,
        );
        match (expected_ids(case), got) {
            (Some(want), Ok((total, ids, _))) => {
                let got: BTreeSet<String> = ids.iter().cloned().collect();
                if got != want || total != ids.len() as u64 || got.len() != ids.len() {
                    failures.push(format!(
                        "{file} {name}: {filter}\n  expected {want:?}\n  got      {ids:?} (total {total})"
                    ));
                }
            }
            (Some(want), Err(e)) => failures.push(format!(
                "{file} {name}: {filter}\n  expected {want:?}\n  got error {e:?}"
            )),
            (None, got) => {
                let want = (
                    case["error"]["scimType"].as_str().unwrap().to_owned(),
                    case["error"]["position"].as_u64().map(|p| p as usize),
                );
                if got.as_ref().err() != Some(&want) {
                    failures.push(format!(
                        "{file} {name}: {}\n  expected error {want:?}\n  got {got:?}",
                        filter.chars().take(200).collect::<String>()
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
});

// Each matching case again, sorted by several attributes and read in
// cursor pages of 2 and index pages of 3: every walk yields the whole
// answer, in the same order, without repeats.
store_test!(corpus_answers_survive_sorting_and_cursor_walks, |store| {
    let tenant = load_dataset(&store, "corpus");
    let mut failures = Vec::new();
    let mut checked = 0;
    let sorts = [
        ("userName", SortOrder::Ascending),
        ("displayName", SortOrder::Descending),
        ("emails", SortOrder::Ascending),
        ("meta.lastModified", SortOrder::Descending),
        ("title", SortOrder::Ascending),
    ];
    // Every fifth case, each with one of the orders in turn: enough to
    // cover every shape of answer without making the test slow.
    for (n, (file, case)) in cases().into_iter().enumerate().filter(|(n, _)| n % 5 == 0) {
        let Some(want) = expected_ids(&case) else {
            continue;
        };
        let type_name = case["resourceType"].as_str().unwrap();
        for (sort_by, order) in [
            sorts[(n / 5) % sorts.len()],
            sorts[(n / 5 + 2) % sorts.len()],
        ] {
            let search = SearchRequest {
                filter: Some(case["filter"].as_str().unwrap().to_owned()),
                sort_by: Some(sort_by.to_owned()),
                sort_order: Some(order),
                ..SearchRequest::default()
            };
            let Ok((_, whole, _)) = run(
                &store,
                tenant,
                type_name,
                &search,
                &PageRequest::Index {
                    offset: 0,
                    count: 1000,
                },
            ) else {
                // sortBy unknown to the type (userName on Groups).
                continue;
            };
            checked += 1;
            // Forward with cursors of 2.
            let mut walked = Vec::new();
            let mut key = None;
            loop {
                let page = PageRequest::After { key, count: 2 };
                let Ok((_, ids, keys)) = run(&store, tenant, type_name, &search, &page) else {
                    failures.push(format!("{file} {}: cursor walk failed", case["name"]));
                    break;
                };
                walked.extend(ids);
                match keys.last() {
                    Some(k) if walked.len() < whole.len() + 2 => key = Some(k.clone()),
                    _ => break,
                }
            }
            // Index pages of 3.
            let mut indexed = Vec::new();
            for offset in (0..whole.len() as u64 + 3).step_by(3) {
                let page = PageRequest::Index { offset, count: 3 };
                if let Ok((_, ids, _)) = run(&store, tenant, type_name, &search, &page) {
                    indexed.extend(ids);
                }
            }
            let set: BTreeSet<String> = whole.iter().cloned().collect();
            if set != want || walked != whole || indexed != whole {
                failures.push(format!(
                    "{file} {} sorted by {sort_by} {order}:\n  whole   {whole:?}\n  cursors {walked:?}\n  index   {indexed:?}\n  want    {want:?}",
                    case["name"]
                ));
            }
        }
    }
    assert!(checked > 60, "{checked}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
});

/// The plan of a statement from the compiler, with its values bound. On
/// PostgreSQL sequential and bitmap scans are disabled, as in
/// `store::hot_queries_use_indexes`: the tables are tiny, and what is
/// checked is that the statement can use the indexes.
fn plan(store: &Store, st: &scim_server::store::filter_sql::Statement) -> String {
    use diesel::RunQueryDsl;
    use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
    use diesel::sql_types::{BigInt, Bool, Double, Text};
    use scim_server::db::AnyConnection;
    use scim_server::store::filter_sql::Bind;

    #[derive(diesel::QueryableByName)]
    struct SqlitePlan {
        #[diesel(sql_type = Text)]
        detail: String,
    }
    #[derive(diesel::QueryableByName)]
    struct PgPlan {
        #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
        line: String,
    }
    macro_rules! bound {
        ($q:expr) => {{
            let mut q = $q;
            for b in &st.binds {
                q = match b.clone() {
                    Bind::Int(v) => q.bind::<BigInt, _>(v),
                    Bind::Text(v) => q.bind::<Text, _>(v),
                    Bind::Float(v) => q.bind::<Double, _>(v),
                    Bind::Bool(v) => q.bind::<Bool, _>(v),
                };
            }
            q
        }};
    }
    let mut conn = store.conn().unwrap();
    match &mut *conn {
        AnyConnection::Sqlite(c) => {
            let q: BoxedSqlQuery<'_, diesel::sqlite::Sqlite, SqlQuery> =
                diesel::sql_query(format!("EXPLAIN QUERY PLAN {}", st.sql)).into_boxed();
            bound!(q)
                .load::<SqlitePlan>(c)
                .unwrap()
                .into_iter()
                .map(|r| r.detail)
                .collect::<Vec<_>>()
                .join("\n")
        }
        AnyConnection::Pg(c) => {
            for s in [
                "ANALYZE",
                "SET enable_seqscan = off",
                "SET enable_bitmapscan = off",
            ] {
                diesel::sql_query(s).execute(c).unwrap();
            }
            let q: BoxedSqlQuery<'_, diesel::pg::Pg, SqlQuery> =
                diesel::sql_query(format!("EXPLAIN {}", st.sql)).into_boxed();
            let plan = bound!(q)
                .load::<PgPlan>(c)
                .unwrap()
                .into_iter()
                .map(|r| r.line)
                .collect::<Vec<_>>()
                .join("\n");
            for s in ["RESET enable_seqscan", "RESET enable_bitmapscan"] {
                diesel::sql_query(s).execute(c).unwrap();
            }
            plan
        }
    }
}

store_test!(compiled_filters_use_the_indexes, |store| {
    let tenant = load_dataset(&store, "corpus");
    // Other tenants' rows make the statistics realistic.
    for i in 0..3 {
        load_dataset(&store, &format!("noise{i}"));
    }
    let users = SchemaRegistry::core().resource_schema("User").unwrap();
    let cases: [(&str, &[&str]); 9] = [
        // userName and externalId equality read the resource row's own
        // indexed columns.
        (
            r#"userName eq "bjensen""#,
            &["resources_user_name_folded_key"],
        ),
        (r#"externalId eq "BJ-1""#, &["resources_external_id"]),
        (
            r#"emails.value eq "bjensen@example.com""#,
            &["attr_index_text"],
        ),
        (r#"userName sw "b""#, &["attr_index_text"]),
        (
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            &["attr_index_time"],
        ),
        (
            r#"emails[type eq "work" and value co "example"]"#,
            &["attr_index_text", "attr_index_element"],
        ),
        (
            r#"userName eq "bjensen" and active eq true"#,
            &["resources_user_name_folded_key", "attr_index_element"],
        ),
        // Computed: the groups are found by their index rows, their
        // members by the memberships key.
        (r#"groups.value eq "g01""#, &["attr_index_text"]),
        (
            r#"groups[display eq "engineering" and type eq "indirect"]"#,
            &["attr_index_text"],
        ),
    ];
    for (filter, indexes) in cases {
        let search = SearchRequest {
            filter: Some(filter.to_owned()),
            ..SearchRequest::default()
        };
        let q = compile_query(
            tenant,
            std::slice::from_ref(&users),
            &search,
            BASE,
            &Limits::default(),
        )
        .unwrap();
        let st = store.query_statement(&q).unwrap();
        let plan = plan(&store, &st);
        for index in indexes {
            assert!(
                plan.contains(index),
                "{filter}: expected {index} in\n{plan}\n{}",
                st.sql
            );
        }
        if std::env::var("SHOW_PLANS").is_ok() {
            eprintln!("{filter}:\n{plan}\n");
        }
        // The resources are reached by key, never scanned.
        assert!(
            !plan.contains("SCAN r\n") && !plan.ends_with("SCAN r") && !plan.contains("Seq Scan"),
            "{filter}:\n{plan}"
        );
    }
});
