//! Runs the PATCH corpus in `conformance-tests/patch/` (format in its
//! README) and reports every failing case at once.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use scim_core::patch::{self, Mode, PATCH_OP_SCHEMA};
use scim_core::schema::SchemaRegistry;
use serde_json::{Value, json};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance-tests/patch")
}

struct Case {
    file: String,
    json: Value,
}

fn load() -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("conformance-tests/patch exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable corpus file");
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        for case in doc["cases"].as_array().expect("a 'cases' array") {
            cases.push(Case {
                file: file.clone(),
                json: case.clone(),
            });
        }
    }
    cases
}

/// Runs one case; `Err` describes how it failed.
fn run(case: &Value, registry: &SchemaRegistry) -> Result<(), String> {
    let rt = case["resourceType"].as_str().ok_or("no resourceType")?;
    let rs = registry
        .resource_schema(rt)
        .ok_or_else(|| format!("unknown resourceType {rt}"))?;
    let before = &case["before"];
    let body = match (case.get("body"), case.get("operations")) {
        (Some(body), None) => body.clone(),
        (None, Some(ops)) => json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops}),
        _ => return Err("give exactly one of 'body' and 'operations'".into()),
    };
    let dialect = case["dialect"].as_bool().ok_or("no 'dialect' boolean")?;
    let mode = if dialect {
        Mode::Dialects
    } else {
        Mode::Strict
    };
    let result = patch::apply_message(before, &body, &rs, mode);
    match (case.get("after"), case.get("error"), result) {
        (Some(after), None, Ok(patched)) => {
            let mut problems = String::new();
            if patched.resource != *after {
                let _ = write!(
                    problems,
                    "\n    expected: {after}\n    got:      {}",
                    patched.resource
                );
            }
            if patched.changed != (after != before) {
                let _ = write!(
                    problems,
                    "\n    changed = {}, but after {} before",
                    patched.changed,
                    if after == before {
                        "equals"
                    } else {
                        "differs from"
                    }
                );
            }
            let got: BTreeSet<&str> = patched.rules.iter().map(|r| r.name()).collect();
            let want: BTreeSet<&str> = case
                .get("rules")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if dialect && got != want {
                let _ = write!(problems, "\n    rules: expected {want:?}, got {got:?}");
            }
            if !dialect {
                // Strict bodies mean the same through the dialect layer.
                match patch::apply_message(before, &body, &rs, Mode::Dialects) {
                    Ok(p) if p.resource == patched.resource => {}
                    Ok(p) => {
                        let _ = write!(problems, "\n    through the dialect layer: {}", p.resource);
                    }
                    Err(e) => {
                        let _ = write!(problems, "\n    through the dialect layer: {e}");
                    }
                }
            }
            if problems.is_empty() {
                Ok(())
            } else {
                Err(problems)
            }
        }
        (Some(_), None, Err(e)) => Err(format!("\n    expected success, got {e}")),
        (None, Some(want), Err(e)) => {
            let want_type = want["scimType"].as_str().ok_or("error without scimType")?;
            let want_op = want.get("operation").and_then(Value::as_u64);
            let got_type = e.kind().scim_type().unwrap_or("(none)");
            let got_op = e.operation().map(|i| i as u64);
            if got_type != want_type || got_op != want_op {
                return Err(format!(
                    "\n    expected {want_type} at operation {want_op:?}, got {got_type} at operation {got_op:?}: {e}"
                ));
            }
            if e.error().detail().is_empty() {
                return Err("\n    the error has no detail".into());
            }
            Ok(())
        }
        (None, Some(want), Ok(p)) => Err(format!(
            "\n    expected error {want}, got success: {}",
            p.resource
        )),
        _ => Err("give exactly one of 'after' and 'error'".into()),
    }
}

#[test]
fn patch_corpus() {
    let registry = SchemaRegistry::core();
    let cases = load();
    assert!(cases.len() >= 80, "the corpus has {} cases", cases.len());
    let mut names = BTreeSet::new();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.json["name"].as_str().unwrap_or("(unnamed)");
        if !names.insert(name.to_string()) {
            failures.push(format!("{}: {name}: duplicate name", case.file));
            continue;
        }
        if let Err(why) = run(&case.json, &registry) {
            failures.push(format!("{}: {name}:{why}", case.file));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} PATCH cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    println!("{} PATCH cases passed", cases.len());
}
