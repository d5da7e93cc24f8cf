//! Multi-valued attributes: appending without duplicates, replacing the
//! list, value filters (`emails[type eq "work"]`, with or without a
//! sub-attribute), and the one-primary rule.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::apply::{Engine, effective_mutability};
use super::op::PatchOpKind;
use super::slots::{apply_plan, merge_plan, put, rename_ci, sub_change, unchanged, union};
use super::value::{self, Drop};
use crate::error::{Error, Result};
use crate::filter::{CompareOp, Filter};
use crate::json::get_ci;
use crate::schema::{AttrRef, Attribute, Mutability};

/// What an `add` through a filter that matched nothing brings.
enum Given<'v> {
    /// `attr[filter].sub` with this (normalised) value.
    Sub(&'v Attribute, Value),
    /// `attr[filter]` with these (normalised) sub-attributes.
    Record(Map<String, Value>),
}

impl Engine<'_> {
    /// The elements of `attr` (a lone non-array value counts as one).
    fn items(&self, attr: &AttrRef) -> &[Value] {
        match self.get(attr) {
            Some(Value::Array(items)) => items,
            Some(Value::Null) | None => &[],
            Some(other) => std::slice::from_ref(other),
        }
    }

    /// The indices of the elements the filter selects (all without one).
    fn matching(&self, attr: &AttrRef, filter: Option<&Filter>) -> Vec<usize> {
        self.items(attr)
            .iter()
            .enumerate()
            .filter(|(_, el)| filter.is_none_or(|f| f.matches_element(el)))
            .map(|(i, _)| i)
            .collect()
    }

    /// The list of `attr` for writing, created when missing.
    fn list_mut(&mut self, attr: &AttrRef) -> Result<&mut Vec<Value>> {
        let name = attr.attribute().name.clone();
        let obj = self.container_mut(attr)?;
        rename_ci(obj, &name);
        let slot = obj.entry(name).or_insert_with(|| Value::Array(Vec::new()));
        if !slot.is_array() {
            let single = std::mem::take(slot);
            *slot = Value::Array(if single.is_null() {
                Vec::new()
            } else {
                vec![single]
            });
        }
        slot.as_array_mut()
            .ok_or_else(|| Error::internal("a member just made an array is not one"))
    }

    /// Drops elements left empty and the attribute when no element is left.
    fn prune(&mut self, attr: &AttrRef) {
        let empty = match self.get_mut(attr) {
            Some(Value::Array(list)) => {
                list.retain(|el| !value::is_unassigned(Some(el)));
                list.is_empty()
            }
            _ => false,
        };
        if empty {
            self.remove_attr(attr);
        }
    }

    /// Add: appends the elements not already present (RFC 7644 section
    /// 3.5.2.1), then applies the one-primary rule.
    pub(super) fn append(&mut self, attr: &AttrRef, elements: Vec<Value>) -> Result<bool> {
        if elements.is_empty() {
            return Ok(false);
        }
        let def = attr.attribute();
        let list = self.list_mut(attr)?;
        let start = list.len();
        let mut index = DupIndex::new(def, list);
        for el in elements {
            if index.contains(list, &el) {
                continue;
            }
            index.insert(list.len(), &el);
            list.push(el);
        }
        let written: Vec<usize> = (start..list.len()).collect();
        settle_primary(def, list, &written, &attr.path())?;
        let changed = !written.is_empty();
        if list.is_empty() {
            self.remove_attr(attr);
        }
        Ok(changed)
    }

    /// Replace without a filter: the list becomes the given elements
    /// (duplicates among them dropped); none unassigns the attribute.
    pub(super) fn replace_list(&mut self, attr: &AttrRef, elements: Vec<Value>) -> Result<bool> {
        let def = attr.attribute();
        let mut list = Vec::with_capacity(elements.len());
        let mut index = DupIndex::new(def, &[]);
        for el in elements {
            if index.contains(&list, &el) {
                continue;
            }
            index.insert(list.len(), &el);
            list.push(el);
        }
        if list.is_empty() {
            return Ok(self.remove_attr(attr));
        }
        let all: Vec<usize> = (0..list.len()).collect();
        settle_primary(def, &mut list, &all, &attr.path())?;
        let new = Value::Array(list);
        if unchanged(def, effective_mutability(attr), self.get(attr), &new) {
            return Ok(false);
        }
        self.set_attr(attr, new)?;
        Ok(true)
    }

    /// Add or replace `attr[filter].sub`, or `attr.sub` on every element
    /// when `filter` is `None`.
    pub(super) fn write_elements(
        &mut self,
        kind: PatchOpKind,
        attr: &AttrRef,
        filter: Option<&Filter>,
        sub: &AttrRef,
        value: &Value,
    ) -> Result<bool> {
        let def = attr.attribute();
        let sdef = sub.target();
        let name = sub.path();
        let v = value::simple_value(sdef, value, &name)?;
        let matched = self.matching(attr, filter);
        if matched.is_empty() {
            return match (kind, filter) {
                (PatchOpKind::Add, Some(f)) => self.add_constructed(attr, f, Given::Sub(sdef, v)),
                _ => Err(no_match(attr, filter)),
            };
        }
        let list = self.list_mut(attr)?;
        let mut changed = false;
        let mut made_primary = Vec::new();
        for &i in &matched {
            let Some(Value::Object(el)) = list.get_mut(i) else {
                continue;
            };
            let cur = get_ci(el, &sdef.name).map(|(_, v)| v);
            let new = if v.is_null() {
                None
            } else if kind == PatchOpKind::Add && sdef.multi_valued {
                Some(union(sdef, cur, v.clone()))
            } else {
                Some(v.clone())
            };
            if let Some(change) = sub_change(sdef, &name, cur, new, true)? {
                apply_plan(el, vec![(sdef.name.clone(), change)]);
                changed = true;
            }
            if sdef.name == "primary" && list.get(i).is_some_and(is_primary) {
                made_primary.push(i);
            }
        }
        settle_primary(def, list, &made_primary, &attr.path())?;
        self.prune(attr);
        Ok(changed)
    }

    /// Add or replace `attr[filter]`: replace swaps each selected record
    /// for the value (RFC 7644 section 3.5.2.3); add merges the value's
    /// sub-attributes into each selected record.
    pub(super) fn write_records(
        &mut self,
        kind: PatchOpKind,
        attr: &AttrRef,
        filter: &Filter,
        value: &Value,
    ) -> Result<bool> {
        if value.is_null() {
            return self.remove_records(attr, filter);
        }
        let def = attr.attribute();
        let name = attr.path();
        let writable = effective_mutability(attr) != Mutability::ReadOnly;
        let drop = Drop {
            read_only: writable,
            refs: writable,
        };
        let patch = value::complex_object(def, value, &name, drop)?;
        let matched = self.matching(attr, Some(filter));
        if matched.is_empty() {
            return match kind {
                PatchOpKind::Add => self.add_constructed(attr, filter, Given::Record(patch)),
                _ => Err(no_match(attr, Some(filter))),
            };
        }
        let list = self.list_mut(attr)?;
        let mut changed = false;
        match kind {
            PatchOpKind::Replace => {
                let mut record = patch;
                record.retain(|_, v| !v.is_null());
                if record.is_empty() {
                    return Err(Error::invalid_value(format!(
                        "the replacement for elements of '{name}' has no writable sub-attribute"
                    )));
                }
                let record = Value::Object(record);
                let record_key = value::key(def, &record);
                let elsewhere = list
                    .iter()
                    .enumerate()
                    .any(|(i, el)| !matched.contains(&i) && value::key(def, el) == record_key);
                let (keep, drop_from) = if elsewhere {
                    (None, 0)
                } else {
                    (matched.first().copied(), 1)
                };
                if let Some(slot) = keep.and_then(|first| list.get_mut(first))
                    && *slot != record
                {
                    *slot = record;
                    changed = true;
                    settle_primary(def, list, &matched[..1], &name)?;
                }
                for &i in matched.iter().skip(drop_from).rev() {
                    if i < list.len() {
                        list.remove(i);
                        changed = true;
                    }
                }
            }
            _ => {
                let makes_primary = patch.get("primary") == Some(&Value::Bool(true));
                for &i in &matched {
                    let Some(Value::Object(el)) = list.get_mut(i) else {
                        continue;
                    };
                    let plan = merge_plan(def, &name, Some(el), patch.clone(), false)?;
                    changed |= !plan.is_empty();
                    apply_plan(el, plan);
                }
                if makes_primary {
                    settle_primary(def, list, &matched, &name)?;
                }
            }
        }
        self.prune(attr);
        Ok(changed)
    }

    /// An `add` whose filter matched nothing: when the filter is made of
    /// `eq` comparisons (`emails[type eq "work"].value`), it describes the
    /// element to add, as Entra ID expects; otherwise there is no target.
    fn add_constructed(
        &mut self,
        attr: &AttrRef,
        filter: &Filter,
        given: Given<'_>,
    ) -> Result<bool> {
        let def = attr.attribute();
        let name = attr.path();
        let Some(terms) = eq_terms(filter) else {
            return Err(no_match(attr, Some(filter)));
        };
        let mut record = Map::new();
        for (sub, literal) in terms {
            record.insert(sub, literal);
        }
        let mut merge = |key: &str, v: Value| -> Result<()> {
            if v.is_null() {
                return Ok(());
            }
            if let (Some(existing), Some(sdef)) = (record.get(key), def.sub_attribute(key))
                && !value::same(sdef, Some(existing), Some(&v))
            {
                return Err(Error::invalid_value(format!(
                    "the value of '{name}.{key}' contradicts the path filter"
                )));
            }
            record.insert(key.to_string(), v);
            Ok(())
        };
        match given {
            Given::Sub(sdef, v) => {
                if v.is_null() {
                    return Ok(false);
                }
                merge(&sdef.name, v)?;
            }
            Given::Record(patch) => {
                for (k, v) in patch {
                    merge(&k, v)?;
                }
            }
        }
        let writable = effective_mutability(attr) != Mutability::ReadOnly;
        let drop = Drop {
            read_only: writable,
            refs: writable,
        };
        let elements = value::elements(def, &Value::Object(record), &name, drop)?;
        self.append(attr, elements)
    }

    /// Remove `attr[filter]`: the selected records go; a filter that
    /// matches nothing changes nothing (RFC 7644 section 3.5.2.2: "If the
    /// user was not a member of this group, no changes should be made").
    pub(super) fn remove_records(&mut self, attr: &AttrRef, filter: &Filter) -> Result<bool> {
        let matched = self.matching(attr, Some(filter));
        if matched.is_empty() {
            return Ok(false);
        }
        let list = self.list_mut(attr)?;
        for &i in matched.iter().rev() {
            if i < list.len() {
                list.remove(i);
            }
        }
        self.prune(attr);
        Ok(true)
    }

    /// Remove `attr[filter].sub`, or `attr.sub` from every element.
    pub(super) fn remove_in_elements(
        &mut self,
        attr: &AttrRef,
        filter: Option<&Filter>,
        sub: &AttrRef,
    ) -> Result<bool> {
        let matched = self.matching(attr, filter);
        if matched.is_empty() {
            return Ok(false);
        }
        let sdef = sub.target();
        let name = sub.path();
        let list = self.list_mut(attr)?;
        let mut changed = false;
        for &i in &matched {
            let Some(Value::Object(el)) = list.get_mut(i) else {
                continue;
            };
            let cur = get_ci(el, &sdef.name).map(|(_, v)| v);
            if let Some(change) = sub_change(sdef, &name, cur, None, true)? {
                apply_plan(el, vec![(sdef.name.clone(), change)]);
                changed = true;
            }
        }
        self.prune(attr);
        Ok(changed)
    }
}

fn no_match(attr: &AttrRef, filter: Option<&Filter>) -> Error {
    match filter {
        Some(f) => Error::no_target(format!(
            "no element of '{}' matches [{}]",
            attr.path(),
            f.as_value_filter()
        )),
        None => Error::no_target(format!("'{}' has no elements", attr.path())),
    }
}

/// The `sub eq literal` terms of a filter made only of `eq` comparisons
/// joined by `and`, each sub-attribute once.
fn eq_terms(filter: &Filter) -> Option<Vec<(String, Value)>> {
    let mut out: Vec<(String, Value)> = Vec::new();
    let mut stack = vec![filter];
    while let Some(f) = stack.pop() {
        match f {
            Filter::And(children) => stack.extend(children.iter().rev()),
            Filter::Compare {
                attr,
                op: CompareOp::Eq,
                value,
            } if !value.is_null() => {
                let sub = attr.sub_attribute()?;
                if out.iter().any(|(n, _)| *n == sub.name) {
                    return None;
                }
                out.push((sub.name.clone(), value.clone()));
            }
            _ => return None,
        }
    }
    Some(out)
}

fn is_primary(el: &Value) -> bool {
    el.as_object()
        .and_then(|o| get_ci(o, "primary"))
        .is_some_and(|(_, v)| *v == Value::Bool(true))
}

/// RFC 7644 section 3.5.2: setting `primary` to true on one element sets it
/// to false on every other; RFC 7643 section 2.4: at most one primary.
/// `written` are the elements the operation set; more than one of them
/// primary is `invalidValue`.
fn settle_primary(
    def: &Attribute,
    list: &mut [Value],
    written: &[usize],
    name: &str,
) -> Result<()> {
    if def.sub_attribute("primary").is_none() {
        return Ok(());
    }
    let chosen: Vec<usize> = written
        .iter()
        .copied()
        .filter(|&i| list.get(i).is_some_and(is_primary))
        .collect();
    match chosen.as_slice() {
        [] => Ok(()),
        [one] => {
            for (i, el) in list.iter_mut().enumerate() {
                if i != *one
                    && is_primary(el)
                    && let Value::Object(obj) = el
                {
                    put(obj, "primary", Value::Bool(false));
                }
            }
            Ok(())
        }
        _ => Err(Error::invalid_value(format!(
            "at most one element of '{name}' can be primary (RFC 7643 section 2.4)"
        ))),
    }
}

/// Finds elements already present in a list (see
/// [`value::element_contains`]), indexing complex elements by their
/// `value` sub-attribute and simple ones by their key, so adding to a
/// large list stays linear.
struct DupIndex<'d> {
    def: &'d Attribute,
    value_sub: Option<&'d Attribute>,
    /// The last element indexed under each coarse hash of `value`...
    head: HashMap<u64, usize>,
    /// ...and, per element, the previous one under the same hash: a
    /// multimap in two flat arrays.
    next: Vec<Option<usize>>,
    simple: HashSet<String>,
}

impl<'d> DupIndex<'d> {
    fn new(def: &'d Attribute, list: &[Value]) -> Self {
        let mut index = Self {
            def,
            value_sub: def.sub_attribute("value").filter(|_| def.is_complex()),
            head: HashMap::with_capacity(list.len()),
            next: Vec::with_capacity(list.len()),
            simple: HashSet::new(),
        };
        for (i, el) in list.iter().enumerate() {
            index.insert(i, el);
        }
        index
    }

    /// The coarse hash of the element's `value` (candidates are then
    /// checked exactly with [`value::element_contains`]).
    fn value_key(&self, el: &Value) -> Option<u64> {
        let vdef = self.value_sub?;
        let v = get_ci(el.as_object()?, "value")?.1;
        (!value::is_unassigned(Some(v))).then(|| value::coarse_hash(vdef, v))
    }

    fn insert(&mut self, i: usize, el: &Value) {
        if !self.def.is_complex() {
            self.simple.insert(value::key(self.def, el));
        } else if let Some(k) = self.value_key(el) {
            if self.next.len() <= i {
                self.next.resize(i + 1, None);
            }
            self.next[i] = self.head.insert(k, i);
        }
    }

    fn contains(&self, list: &[Value], el: &Value) -> bool {
        if !self.def.is_complex() {
            return self.simple.contains(&value::key(self.def, el));
        }
        let Some(k) = self.value_key(el) else {
            return list
                .iter()
                .any(|e| value::element_contains(self.def, e, el));
        };
        let mut candidate = self.head.get(&k).copied();
        while let Some(i) = candidate {
            if list
                .get(i)
                .is_some_and(|e| value::element_contains(self.def, e, el))
            {
                return true;
            }
            candidate = self.next.get(i).copied().flatten();
        }
        false
    }
}
