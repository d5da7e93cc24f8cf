//! The PATCH operations that turn one managed attribute of the remote
//! resource into the desired value.
//!
//! Per attribute shape:
//!
//! - **single-valued simple** (`userName`, `active`, an extension's
//!   `department`): `add` when the remote has no value, `replace` when it
//!   differs, `remove` when the desired resource has none.
//! - **single-valued complex** (`name`, the enterprise `manager`): one
//!   operation per differing sub-attribute (`replace name.givenName`);
//!   `add` of the whole value when the remote has none; `remove` of the
//!   whole attribute when the desired resource has none. Sub-attributes the
//!   desired value does not carry are not compared (so `name.formatted`
//!   computed by the provider causes no change) unless managed explicitly
//!   (`name.middleName` in the managed list).
//! - **multi-valued complex** (`emails`, `roles`): compared as a set of
//!   elements, each element only on the sub-attributes the desired
//!   elements carry (`primary` only if some desired element has it). When
//!   every element on both sides has a distinct `type` (or else a distinct
//!   `value`) and the provider takes filtered paths, the change is made per
//!   element: `replace emails[type eq "work"].value`, `remove
//!   emails[type eq "home"]`, and one `add emails` with the new elements.
//!   Otherwise one `replace emails` with the whole desired list: simpler
//!   and always correct, at the cost of overwriting what the provider added
//!   to the elements.
//! - **multi-valued simple**: compared as a set; changed lists are
//!   replaced whole.

use scim_core::schema::{AttrRef, Attribute};
use serde_json::Value;

use super::compare::{is_assigned, key_text, member, normalize, normalize_single, same};
use crate::patch::{PatchOperation, filter_literal};

/// One managed top-level attribute.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// What it is.
    pub(crate) target: Target,
    /// Whether the whole attribute is managed (else only `subs`).
    pub(crate) whole: bool,
    /// Sub-attributes managed explicitly (canonical names when known).
    pub(crate) subs: Vec<String>,
}

/// A top-level attribute: known to the schema, or only by its name.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// An attribute of the resource schema (never a sub-attribute reference).
    Known(AttrRef),
    /// An attribute the schema does not know, by its top-level key.
    Raw(String),
}

impl Target {
    pub(crate) fn path(&self) -> String {
        match self {
            Self::Known(a) => a.path(),
            Self::Raw(k) => k.clone(),
        }
    }

    pub(crate) fn def(&self) -> Option<&Attribute> {
        match self {
            Self::Known(a) => Some(a.attribute()),
            Self::Raw(_) => None,
        }
    }

    /// The value in a resource document (nulls read as absent).
    pub(crate) fn value<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        match self {
            Self::Known(a) => scim_core::json::attribute_value(doc, a),
            Self::Raw(k) => member(doc, k).filter(|v| !v.is_null()),
        }
    }

    pub(crate) fn same_as(&self, other: &Target) -> bool {
        match (self, other) {
            (Self::Known(a), Self::Known(b)) => a == b,
            (Self::Raw(a), Self::Raw(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
    }
}

enum Shape {
    Simple,
    Complex,
    MultiComplex,
    MultiSimple,
}

fn shape(def: Option<&Attribute>, d: Option<&Value>, r: Option<&Value>) -> Shape {
    if let Some(def) = def {
        return match (def.multi_valued, def.is_complex()) {
            (false, false) => Shape::Simple,
            (false, true) => Shape::Complex,
            (true, true) => Shape::MultiComplex,
            (true, false) => Shape::MultiSimple,
        };
    }
    match d.or(r) {
        Some(Value::Array(items)) if items.iter().any(Value::is_object) => Shape::MultiComplex,
        Some(Value::Array(_)) => Shape::MultiSimple,
        Some(Value::Object(_)) => Shape::Complex,
        _ => Shape::Simple,
    }
}

/// Appends the operations for one managed attribute to `out`.
pub(crate) fn diff_entry(
    entry: &Entry,
    desired: &Value,
    remote: &Value,
    value_paths: bool,
    out: &mut Vec<PatchOperation>,
) {
    let def = entry.target.def();
    let d = entry.target.value(desired);
    let r = entry.target.value(remote);
    let path = entry.target.path();
    match shape(def, d, r) {
        Shape::Simple | Shape::MultiSimple => simple(&path, d, r, def, out),
        Shape::Complex => complex(entry, &path, d, r, def, out),
        Shape::MultiComplex => multi_complex(&path, d, r, def, value_paths, out),
    }
}

/// add / replace / remove of one value at `path`.
fn simple(
    path: &str,
    d: Option<&Value>,
    r: Option<&Value>,
    def: Option<&Attribute>,
    out: &mut Vec<PatchOperation>,
) {
    if same(d, r, def) {
        return;
    }
    match d.filter(|d| is_assigned(Some(d), def)) {
        None => out.push(PatchOperation::remove(path)),
        Some(d) if !is_assigned(r, def) => out.push(PatchOperation::add(path, d.clone())),
        Some(d) => out.push(PatchOperation::replace(path, d.clone())),
    }
}

fn complex(
    entry: &Entry,
    path: &str,
    d: Option<&Value>,
    r: Option<&Value>,
    def: Option<&Attribute>,
    out: &mut Vec<PatchOperation>,
) {
    let d_assigned = is_assigned(d, def);
    let r_assigned = is_assigned(r, def);
    if entry.whole && !d_assigned {
        if r_assigned {
            out.push(PatchOperation::remove(path));
        }
        return;
    }
    if entry.whole && !r_assigned {
        if let Some(d) = d {
            out.push(PatchOperation::add(path, d.clone()));
        }
        return;
    }
    // Sub-attributes to compare: those the desired value carries (when the
    // whole attribute is managed) and those managed explicitly.
    let mut names: Vec<String> = Vec::new();
    if entry.whole
        && let Some(Value::Object(obj)) = d
    {
        names.extend(obj.keys().cloned());
    }
    names.extend(entry.subs.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    for name in names {
        let sub_def = def.and_then(|a| a.sub_attribute(&name));
        let canonical = sub_def.map_or(name.clone(), |s| s.name.clone());
        if !seen.insert(canonical.to_ascii_lowercase()) {
            continue;
        }
        let dv = d.and_then(|d| member(d, &name));
        let rv = r.and_then(|r| member(r, &name));
        simple(&format!("{path}.{canonical}"), dv, rv, sub_def, out);
    }
}

/// The canonical names of the sub-attributes the desired elements carry;
/// `primary` only if one of them has it.
fn compared_subs(d: &[Value], def: Option<&Attribute>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for el in d {
        if let Value::Object(obj) = el {
            for k in obj.keys() {
                let canonical = def
                    .and_then(|a| a.sub_attribute(k))
                    .map_or(k.clone(), |s| s.name.clone());
                if !names.iter().any(|n| n.eq_ignore_ascii_case(&canonical)) {
                    names.push(canonical);
                }
            }
        }
    }
    names
}

/// An element reduced to the sub-attributes in `subs`.
fn project(el: &Value, subs: &[String]) -> Value {
    match el {
        Value::Object(obj) => Value::Object(
            obj.iter()
                .filter(|(k, _)| subs.iter().any(|s| s.eq_ignore_ascii_case(k)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn as_list(v: Option<&Value>) -> Vec<Value> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().filter(|i| !i.is_null()).cloned().collect(),
        Some(other) => vec![other.clone()],
    }
}

fn multi_complex(
    path: &str,
    d: Option<&Value>,
    r: Option<&Value>,
    def: Option<&Attribute>,
    value_paths: bool,
    out: &mut Vec<PatchOperation>,
) {
    let d_list = as_list(d);
    let r_list = as_list(r);
    let subs = compared_subs(&d_list, def);
    let d_proj: Vec<Value> = d_list.iter().map(|e| project(e, &subs)).collect();
    let r_proj: Vec<Value> = r_list.iter().map(|e| project(e, &subs)).collect();
    let nd = normalize(&Value::Array(d_proj), def);
    let nr = normalize(&Value::Array(r_proj), def);
    if nd == nr {
        return;
    }
    if nd.is_none() {
        out.push(PatchOperation::remove(path));
        return;
    }
    if nr.is_none() {
        out.push(PatchOperation::add(path, Value::Array(d_list)));
        return;
    }
    if value_paths
        && let Some(key) = ["type", "value"]
            .into_iter()
            .find(|k| keyed(k, &subs, &d_list, &r_list, def))
    {
        keyed_ops(path, key, &subs, &d_list, &r_list, def, out);
        return;
    }
    out.push(PatchOperation::replace(path, Value::Array(d_list)));
}

/// Whether every element on both sides has a distinct `key`.
fn keyed(key: &str, subs: &[String], d: &[Value], r: &[Value], def: Option<&Attribute>) -> bool {
    if !subs.iter().any(|s| s.eq_ignore_ascii_case(key)) {
        return false;
    }
    let key_def = def.and_then(|a| a.sub_attribute(key));
    let distinct = |list: &[Value]| {
        let mut seen = std::collections::HashSet::new();
        list.iter()
            .all(|el| key_text(member(el, key), key_def).is_some_and(|k| seen.insert(k)))
    };
    distinct(d) && distinct(r)
}

fn keyed_ops(
    path: &str,
    key: &str,
    subs: &[String],
    d: &[Value],
    r: &[Value],
    def: Option<&Attribute>,
    out: &mut Vec<PatchOperation>,
) {
    let key_def = def.and_then(|a| a.sub_attribute(key));
    let key_of = |el: &Value| key_text(member(el, key), key_def).unwrap_or_default();
    let selector = |raw: &Value| {
        let literal = member(raw, key)
            .and_then(Value::as_str)
            .map(filter_literal)
            .unwrap_or_default();
        format!("{path}[{key} eq {literal}]")
    };
    let mut removes = Vec::new();
    let mut replaces = Vec::new();
    let mut added = Vec::new();
    for r_el in r {
        if !d.iter().any(|d_el| key_of(d_el) == key_of(r_el)) {
            removes.push(PatchOperation::remove(selector(r_el)));
        }
    }
    for d_el in d {
        let Some(r_el) = r.iter().find(|r_el| key_of(r_el) == key_of(d_el)) else {
            added.push(d_el.clone());
            continue;
        };
        let same_element = normalize_single(&project(d_el, subs), def)
            == normalize_single(&project(r_el, subs), def);
        if same_element {
            continue;
        }
        for sub in subs.iter().filter(|s| !s.eq_ignore_ascii_case(key)) {
            let sub_def = def.and_then(|a| a.sub_attribute(sub));
            let dv = member(d_el, sub);
            let rv = member(r_el, sub);
            let is_primary = sub.eq_ignore_ascii_case("primary");
            let unchanged = if is_primary {
                // `primary: false` and no `primary` are the same.
                is_true(dv, sub_def) == is_true(rv, sub_def)
            } else {
                same(dv, rv, sub_def)
            };
            if unchanged {
                continue;
            }
            let sub_path = format!("{}.{sub}", selector(r_el));
            match dv.filter(|v| is_assigned(Some(v), sub_def)) {
                Some(v) => replaces.push(PatchOperation::replace(sub_path, v.clone())),
                None if is_primary => {
                    replaces.push(PatchOperation::replace(sub_path, Value::Bool(false)));
                }
                None => removes.push(PatchOperation::remove(sub_path)),
            }
        }
    }
    out.append(&mut removes);
    out.append(&mut replaces);
    if !added.is_empty() {
        out.push(PatchOperation::add(path, Value::Array(added)));
    }
}

fn is_true(v: Option<&Value>, def: Option<&Attribute>) -> bool {
    v.and_then(|v| normalize(v, def)) == Some(Value::Bool(true))
}
