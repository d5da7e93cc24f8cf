//! The shared filter corpus (`conformance-tests/filters`, format in its
//! README) run through the in-memory evaluator: every case is parsed for its
//! resource type and evaluated over the fixed dataset, and every failing
//! case is reported, not just the first.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use scim_core::filter::{Filter, Limits};
use scim_core::schema::{ResourceSchema, SchemaRegistry};
use serde::Deserialize;
use serde_json::Value;

/// A case file: `cases/*.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[allow(dead_code)] // reason: documentation for readers of the file
    description: String,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Case {
    name: String,
    resource_type: String,
    filter: String,
    #[serde(default)]
    expect: Option<Vec<String>>,
    #[serde(default)]
    error: Option<ExpectedError>,
    #[serde(default)]
    #[allow(dead_code)] // reason: documentation for readers of the file
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ExpectedError {
    scim_type: String,
    position: usize,
}

/// What a case expects.
enum Expected<'a> {
    Ids(BTreeSet<&'a str>),
    Error(&'a ExpectedError),
}

impl Case {
    fn expected(&self) -> Result<Expected<'_>, String> {
        match (&self.expect, &self.error) {
            (Some(ids), None) => {
                let set: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
                if set.len() != ids.len() {
                    return Err("`expect` lists an id twice".into());
                }
                Ok(Expected::Ids(set))
            }
            (None, Some(e)) => Ok(Expected::Error(e)),
            _ => Err("a case has exactly one of `expect` and `error`".into()),
        }
    }
}

struct Corpus {
    /// (file name, case), in file order.
    cases: Vec<(String, Case)>,
    /// Resources by resource type name.
    resources: BTreeMap<String, Vec<Value>>,
    registry: SchemaRegistry,
}

impl Corpus {
    fn load() -> Self {
        let dir = corpus_dir();
        let text = std::fs::read_to_string(dir.join("resources.json"))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join("resources.json").display()));
        let resources: BTreeMap<String, Vec<Value>> =
            serde_json::from_str(&text).expect("resources.json is an object of arrays");
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("cases"))
            .expect("conformance-tests/filters/cases exists")
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no case files in {}", dir.display());
        let mut cases = Vec::new();
        for path in files {
            let text = std::fs::read_to_string(&path).expect("case file is readable");
            let file: CaseFile =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            assert!(!file.cases.is_empty(), "{name} has no cases");
            cases.extend(file.cases.into_iter().map(|c| (name.clone(), c)));
        }
        Corpus {
            cases,
            resources,
            registry: SchemaRegistry::core(),
        }
    }

    fn schema(&self, resource_type: &str) -> Arc<ResourceSchema> {
        self.registry
            .resource_schema(resource_type)
            .unwrap_or_else(|| panic!("unknown resource type {resource_type}"))
    }

    fn ids(&self, resource_type: &str) -> BTreeSet<&str> {
        self.resources
            .get(resource_type)
            .map(|docs| docs.iter().map(id_of).collect())
            .unwrap_or_default()
    }
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance-tests/filters")
}

fn id_of(doc: &Value) -> &str {
    doc["id"].as_str().expect("every resource has a string id")
}

/// Limits for re-parsing printed filters: the printed form spells extension
/// attributes with their schema URN, so it may be longer than the input;
/// depth and term count never grow.
fn reparse_limits() -> Limits {
    Limits {
        max_length: usize::MAX,
        ..Limits::default()
    }
}

fn report(what: &str, total: usize, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} of {total} {what} failed:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_is_well_formed() {
    let corpus = Corpus::load();
    let mut problems = Vec::new();
    for (rt, docs) in &corpus.resources {
        let schema = corpus.schema(rt);
        let mut seen = BTreeSet::new();
        for doc in docs {
            let id = id_of(doc);
            if !seen.insert(id) {
                problems.push(format!("resources.json: {rt} id {id} twice"));
            }
            let declared = doc["meta"]["resourceType"].as_str();
            if declared != Some(schema.resource_type().name.as_str()) {
                problems.push(format!(
                    "resources.json: {id} has meta.resourceType {declared:?}"
                ));
            }
        }
    }
    let mut names = BTreeSet::new();
    for (file, case) in &corpus.cases {
        let at = format!("{file}: {}", case.name);
        if !names.insert(case.name.as_str()) {
            problems.push(format!("{at}: the name is used twice"));
        }
        if !corpus.resources.contains_key(&case.resource_type) {
            problems.push(format!("{at}: no resources of type {}", case.resource_type));
        }
        match case.expected() {
            Err(e) => problems.push(format!("{at}: {e}")),
            Ok(Expected::Ids(ids)) => {
                let known = corpus.ids(&case.resource_type);
                for id in ids.difference(&known) {
                    problems.push(format!("{at}: expects unknown id {id}"));
                }
            }
            Ok(Expected::Error(e)) => {
                if e.scim_type != "invalidFilter" {
                    problems.push(format!("{at}: unexpected scimType {}", e.scim_type));
                }
            }
        }
    }
    assert!(
        corpus.cases.len() >= 150,
        "the corpus has only {} cases",
        corpus.cases.len()
    );
    report("well-formedness checks", corpus.cases.len(), &problems);
}

#[test]
fn corpus_cases_match_the_evaluator() {
    let corpus = Corpus::load();
    let mut failures = Vec::new();
    for (file, case) in &corpus.cases {
        let Ok(expected) = case.expected() else {
            continue; // reported by corpus_is_well_formed
        };
        let schema = corpus.schema(&case.resource_type);
        let parsed = Filter::parse(&case.filter, &schema);
        let mut out = String::new();
        match (&expected, parsed) {
            (Expected::Ids(want), Ok(filter)) => {
                let docs = &corpus.resources[&case.resource_type];
                let got: BTreeSet<&str> = docs
                    .iter()
                    .filter(|d| filter.matches(d))
                    .map(id_of)
                    .collect();
                if &got != want {
                    let missing: Vec<_> = want.difference(&got).collect();
                    let extra: Vec<_> = got.difference(want).collect();
                    let _ = write!(
                        out,
                        "expected {want:?}\n  got      {got:?}\n  missing  {missing:?}\n  extra    {extra:?}"
                    );
                }
            }
            (Expected::Ids(want), Err(e)) => {
                let _ = write!(out, "expected {want:?}\n  got error {e}");
            }
            (Expected::Error(want), Ok(filter)) => {
                let _ = write!(
                    out,
                    "expected {} at {}\n  got a filter: {filter}",
                    want.scim_type, want.position
                );
            }
            (Expected::Error(want), Err(e)) => {
                let scim_type = e.kind().scim_type();
                if scim_type != Some(want.scim_type.as_str()) || e.position() != Some(want.position)
                {
                    let _ = write!(
                        out,
                        "expected {} at {}\n  got {scim_type:?} at {:?}: {}",
                        want.scim_type,
                        want.position,
                        e.position(),
                        e.detail()
                    );
                }
            }
        }
        if !out.is_empty() {
            failures.push(format!(
                "{file}: {} ({})\n  filter   {}\n  {out}\n",
                case.name,
                case.resource_type,
                shorten(&case.filter)
            ));
        }
    }
    report("corpus cases", corpus.cases.len(), &failures);
}

#[test]
fn corpus_filters_print_and_parse_back_unchanged() {
    let corpus = Corpus::load();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (file, case) in &corpus.cases {
        if case.error.is_some() {
            continue;
        }
        let schema = corpus.schema(&case.resource_type);
        let Ok(filter) = Filter::parse(&case.filter, &schema) else {
            continue; // reported by corpus_cases_match_the_evaluator
        };
        checked += 1;
        let printed = filter.to_string();
        match Filter::parse_with(&printed, &schema, &reparse_limits()) {
            Ok(again) if again == filter => {}
            Ok(again) => failures.push(format!(
                "{file}: {}\n  printed  {}\n  reparsed {}\n",
                case.name,
                shorten(&printed),
                shorten(&again.to_string())
            )),
            Err(e) => failures.push(format!(
                "{file}: {}\n  printed  {}\n  error    {e}\n",
                case.name,
                shorten(&printed)
            )),
        }
    }
    assert!(checked > 0, "no filter was checked");
    report("round trips", checked, &failures);
}

/// Long filters (the limit cases) are cut for the report.
fn shorten(s: &str) -> String {
    const MAX: usize = 300;
    if s.len() <= MAX {
        return format!("{s:?}");
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}... ({} bytes)", &s[..end], s.len())
}
