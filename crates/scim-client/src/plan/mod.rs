//! The planner: given what a resource should be at a service provider and
//! what the provider holds (or what we last sent it), the smallest set of
//! operations that makes the provider hold it. Pure: no I/O, no storage.
//!
//! ```
//! use scim_client::plan::{Plan, PlanOptions, Planner, TargetCapabilities};
//! use serde_json::json;
//!
//! let planner = Planner::users(TargetCapabilities::default(), PlanOptions::default());
//! let desired = json!({
//!     "userName": "bjensen",
//!     "active": true,
//!     "emails": [{"type": "work", "value": "bjensen@example.com", "primary": true}]
//! });
//! let remote = json!({
//!     "id": "2819c223", "meta": {"version": "W/\"3\""},
//!     "userName": "BJensen", "active": "True", "nickName": "Babs",
//!     "emails": [{"type": "work", "value": "babs@example.com", "primary": true}]
//! });
//! let Plan::Patch(ops) = planner.plan(Some(&desired), Some(&remote)) else { panic!() };
//! let ops: Vec<String> = ops.iter().map(ToString::to_string).collect();
//! assert_eq!(ops, [r#"replace emails[type eq "work"].value = "bjensen@example.com""#]);
//! ```
//!
//! ## What is compared
//!
//! Attribute mapping happens before the planner: `desired` is already the
//! provider's representation. Only **managed** attributes are compared
//! ([`Managed`]), so what the provider adds (`id`, `meta`, its defaults)
//! never causes a change. `id`, `meta` and `schemas`, read-only and
//! write-only attributes (`password` is never returned, so it is sent on
//! create and replace only) and immutable ones are never compared.
//!
//! Values are compared as the provider would treat them:
//!
//! - absent, `null`, `""`, `[]` and `{}` are one "unassigned" state;
//! - strings of `caseExact: false` attributes (`userName`, `emails.value`,
//!   `type`) compare case-insensitively, of unknown attributes exactly;
//! - booleans and numbers sent as strings (`"True"`) compare as values,
//!   dateTimes as instants;
//! - multi-valued attributes compare as sets (order never matters), each
//!   element only on the sub-attributes the desired elements carry, so
//!   `emails[].display` added by the provider is ignored; `primary` is
//!   compared when the desired elements carry it (`false` = absent);
//! - for a complex attribute (`name`), the sub-attributes the desired value
//!   carries; list `name.middleName` in [`Managed::Attributes`] to have its
//!   absence removed.
//!
//! ## How changes are written
//!
//! - A single value: `add` when the provider has none, `replace` when it
//!   differs, `remove` when a managed attribute is no longer desired.
//! - A complex value: one operation per differing sub-attribute
//!   (`replace name.givenName`); `add name` whole when the provider has none.
//! - A multi-valued complex attribute whose elements all have a distinct
//!   `type` (else a distinct `value`) on both sides, at a provider that
//!   takes filtered paths: per-element operations, `replace
//!   emails[type eq "work"].value`, `remove emails[type eq "home"]`, and one
//!   `add emails` with the new elements. They touch only what changed and
//!   keep what the provider added to the elements. Otherwise (duplicate or
//!   missing keys, or [`TargetCapabilities::value_path_filters`] off): one
//!   `replace emails` with the whole desired list, simpler and always
//!   correct.
//! - Group members: deltas, see [`MembershipLedger`].
//! - Without PATCH at the provider: `Replace` with the whole desired
//!   resource, plus the provider's `id` and its writable attributes that
//!   are not managed (so a PUT does not wipe them).
//!
//! ## Outcomes
//!
//! | desired | remote | plan |
//! |---|---|---|
//! | absent | absent | `Nothing` |
//! | present | absent | `Create(desired)` (look for a match first: [`match_queries`]) |
//! | present | present, same | `Nothing` |
//! | present | present, differs | `Patch(ops)`, or `Replace(doc)` when the provider lacks PATCH |
//! | absent | present | `Deactivate` or `Delete` by [`Deprovision`]; `Nothing` when already inactive |
//!
//! A desired resource without `active` is taken as active: a remote
//! resource we deactivated is reactivated when it is desired again.
//! [`Deprovision::Deactivate`] applies to resource types with an `active`
//! attribute; others (groups) are deleted.

mod compare;
mod diff;
mod matching;
mod members;

use std::collections::BTreeSet;
use std::sync::Arc;

use scim_core::schema::{Mutability, ResourceSchema, SchemaRegistry};
use serde_json::{Map, Value};

use crate::discovery::Capabilities;
use crate::patch::PatchOperation;
use diff::{Entry, Target};

pub use matching::{MatchStrategy, Matched, match_queries, match_query, pick_match};
pub use members::MembershipLedger;

/// What to do at the provider.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// It already holds the desired state.
    Nothing,
    /// POST this document.
    Create(Value),
    /// PATCH with these operations.
    Patch(Vec<PatchOperation>),
    /// PUT this document (the provider lacks PATCH).
    Replace(Value),
    /// Set `active` to false.
    Deactivate,
    /// DELETE the resource.
    Delete,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_nothing(&self) -> bool {
        matches!(self, Self::Nothing)
    }
}

/// What the planner needs to know of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetCapabilities {
    /// PATCH is supported; otherwise changes are planned as PUT.
    pub patch: bool,
    /// The provider returns `members` of groups; otherwise the current
    /// membership is read from the [`MembershipLedger`].
    pub echoes_members: bool,
    /// The provider accepts filtered PATCH paths (`emails[type eq "work"].value`).
    pub value_path_filters: bool,
}

impl Default for TargetCapabilities {
    /// PATCH, members returned, filtered paths accepted.
    fn default() -> Self {
        Self {
            patch: true,
            echoes_members: true,
            value_path_filters: true,
        }
    }
}

impl From<&Capabilities> for TargetCapabilities {
    /// PATCH support from discovery; the rest cannot be discovered and
    /// takes the defaults.
    fn from(c: &Capabilities) -> Self {
        Self {
            patch: c.patch,
            ..Self::default()
        }
    }
}

/// What happens to a resource that should no longer exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Deprovision {
    /// Set `active` to false (resource types without `active` are deleted).
    #[default]
    Deactivate,
    /// Delete it.
    Delete,
}

/// Which attributes the planner compares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Managed {
    /// The attributes the desired resource carries. An attribute that
    /// disappears from the desired resource is then left alone at the
    /// provider, never removed.
    #[default]
    Desired,
    /// These attribute paths (`userName`, `name`, `name.middleName`,
    /// `emails`, an extension attribute by URN-qualified path, or a whole
    /// extension by its URN). An attribute listed here that the desired
    /// resource lacks is removed at the provider.
    Attributes(Vec<String>),
}

/// Options of a [`Planner`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// What happens to resources that should no longer exist.
    pub deprovision: Deprovision,
    /// Which attributes are compared.
    pub managed: Managed,
}

/// Plans the operations for one resource type at one provider.
#[derive(Debug, Clone)]
pub struct Planner {
    schema: Arc<ResourceSchema>,
    caps: TargetCapabilities,
    deprovision: Deprovision,
    /// `None`: the desired resource's own attributes.
    managed: Option<Vec<Entry>>,
    manage_members: bool,
}

/// Attributes never compared.
const UNCOMPARED: &[&str] = &["id", "meta", "schemas"];

impl Planner {
    /// A planner for resources of `schema`.
    pub fn new(
        schema: Arc<ResourceSchema>,
        caps: TargetCapabilities,
        options: PlanOptions,
    ) -> Self {
        let has_members = schema.resolve("members").is_ok();
        let (managed, manage_members) = match &options.managed {
            Managed::Desired => (None, has_members),
            Managed::Attributes(paths) => {
                let manage_members =
                    has_members && paths.iter().any(|p| p.eq_ignore_ascii_case("members"));
                (Some(resolve_entries(&schema, paths)), manage_members)
            }
        };
        Self {
            schema,
            caps,
            deprovision: options.deprovision,
            managed,
            manage_members,
        }
    }

    /// A planner for the core User resource type (with the enterprise extension).
    pub fn users(caps: TargetCapabilities, options: PlanOptions) -> Self {
        Self::core("User", caps, options)
    }

    /// A planner for the core Group resource type.
    pub fn groups(caps: TargetCapabilities, options: PlanOptions) -> Self {
        Self::core("Group", caps, options)
    }

    fn core(name: &str, caps: TargetCapabilities, options: PlanOptions) -> Self {
        #[allow(clippy::expect_used)]
        // reason: the embedded core registry always has User and Group
        let schema = SchemaRegistry::core()
            .resource_schema(name)
            .expect("the core registry defines User and Group");
        Self::new(schema, caps, options)
    }

    /// The capabilities planned for.
    pub fn capabilities(&self) -> TargetCapabilities {
        self.caps
    }

    /// Plans for one resource. `desired` is `None` when the resource should
    /// not exist; `remote` is what the provider holds (or what we last
    /// sent it), `None` when it has nothing. Group members are compared
    /// with the remote `members` (see [`Planner::plan_with_ledger`] for
    /// providers that do not return them).
    pub fn plan(&self, desired: Option<&Value>, remote: Option<&Value>) -> Plan {
        self.plan_with_ledger(desired, remote, None)
    }

    /// [`Planner::plan`], with the membership last sent, for providers
    /// that do not return `members` (`echoes_members: false`). With
    /// `echoes_members: true` the ledger is used only when the remote
    /// document has no `members` member at all.
    pub fn plan_with_ledger(
        &self,
        desired: Option<&Value>,
        remote: Option<&Value>,
        ledger: Option<&MembershipLedger>,
    ) -> Plan {
        match (desired, remote) {
            (None, None) => Plan::Nothing,
            (Some(d), None) => Plan::Create(self.document(d, None)),
            (None, Some(r)) => self.deprovision(r),
            (Some(d), Some(r)) => self.update(d, r, ledger),
        }
    }

    fn deprovision(&self, remote: &Value) -> Plan {
        let Ok(active) = self.schema.resolve("active") else {
            return Plan::Delete;
        };
        match self.deprovision {
            Deprovision::Delete => Plan::Delete,
            Deprovision::Deactivate => {
                let current = scim_core::json::attribute_value(remote, &active);
                if compare::same(current, Some(&Value::Bool(false)), Some(active.attribute())) {
                    Plan::Nothing
                } else {
                    Plan::Deactivate
                }
            }
        }
    }

    fn update(&self, desired: &Value, remote: &Value, ledger: Option<&MembershipLedger>) -> Plan {
        let mut entries = match &self.managed {
            Some(entries) => entries.clone(),
            None => entries_of(&self.schema, desired),
        };
        let mut ops = Vec::new();
        let mut reactivate = false;
        // A desired resource without `active` is active: never remove
        // `active`, and reactivate what we deactivated.
        if let Ok(active) = self.schema.resolve("active")
            && scim_core::json::attribute_value(desired, &active).is_none()
        {
            let target = Target::Known(active.clone());
            entries.retain(|e| !e.target.same_as(&target));
            let current = scim_core::json::attribute_value(remote, &active);
            if compare::same(current, Some(&Value::Bool(false)), Some(active.attribute())) {
                ops.push(PatchOperation::replace(active.path(), Value::Bool(true)));
                reactivate = true;
            }
        }
        for entry in &entries {
            diff::diff_entry(
                entry,
                desired,
                remote,
                self.caps.value_path_filters,
                &mut ops,
            );
        }
        let member_ops = self.member_ops(desired, remote, ledger);
        if ops.is_empty() && member_ops.is_empty() {
            return Plan::Nothing;
        }
        if !self.caps.patch {
            let mut doc = self.document(desired, Some(remote));
            // Only the reactivation above adds `active`; a desired
            // `active: false` is already in the document.
            if reactivate && let Value::Object(obj) = &mut doc {
                obj.insert("active".into(), Value::Bool(true));
            }
            return Plan::Replace(doc);
        }
        ops.extend(member_ops);
        Plan::Patch(ops)
    }

    fn member_ops(
        &self,
        desired: &Value,
        remote: &Value,
        ledger: Option<&MembershipLedger>,
    ) -> Vec<PatchOperation> {
        if !self.manage_members {
            return Vec::new();
        }
        let Some(wanted) = members::member_ids(desired) else {
            // Managed by the desired resource's attributes, and it has none.
            if self.managed.is_none() {
                return Vec::new();
            }
            return members::member_ops(&[], &self.current_members(remote, ledger));
        };
        members::member_ops(&wanted, &self.current_members(remote, ledger))
    }

    fn current_members(
        &self,
        remote: &Value,
        ledger: Option<&MembershipLedger>,
    ) -> BTreeSet<String> {
        let from_remote = members::member_ids(remote);
        let from_ledger = || ledger.map(|l| l.ids().map(str::to_string).collect::<BTreeSet<_>>());
        if self.caps.echoes_members {
            match from_remote {
                Some(ids) => ids.into_iter().collect(),
                None => from_ledger().unwrap_or_default(),
            }
        } else {
            from_ledger()
                .or_else(|| from_remote.map(|ids| ids.into_iter().collect()))
                .unwrap_or_default()
        }
    }

    /// The document to POST or PUT: the desired resource without `id` and
    /// `meta`, with `schemas` completed; for a PUT, with the remote `id`
    /// and the remote's unmanaged, writable attributes kept.
    fn document(&self, desired: &Value, remote: Option<&Value>) -> Value {
        let mut doc = match desired {
            Value::Object(obj) => obj.clone(),
            _ => Map::new(),
        };
        for key in ["id", "meta"] {
            scim_core::json::remove_ci(&mut doc, key);
        }
        if let Some(Value::Object(r)) = remote {
            self.keep_unmanaged(&mut doc, r, desired);
            if let Some((_, id)) = scim_core::json::get_ci(r, "id") {
                doc.insert("id".into(), id.clone());
            }
        }
        self.complete_schemas(&mut doc);
        Value::Object(doc)
    }

    fn keep_unmanaged(
        &self,
        doc: &mut Map<String, Value>,
        remote: &Map<String, Value>,
        desired: &Value,
    ) {
        let entries = match &self.managed {
            Some(entries) => entries.clone(),
            None => entries_of(&self.schema, desired),
        };
        let kept = |path: &str| -> bool {
            let target = match self.schema.resolve(path) {
                Ok(a) if matches!(a.attribute().mutability, Mutability::ReadOnly) => return false,
                Ok(a) => Target::Known(a),
                Err(_) => Target::Raw(path.to_string()),
            };
            !entries.iter().any(|e| e.target.same_as(&target))
        };
        for (key, value) in remote {
            if UNCOMPARED.iter().any(|u| u.eq_ignore_ascii_case(key))
                || (key.eq_ignore_ascii_case("members") && self.manage_members)
            {
                continue;
            }
            if let Some(ext) = self.schema.extension(key) {
                let Value::Object(remote_ext) = value else {
                    continue;
                };
                let mut merged = match scim_core::json::get_ci(doc, key) {
                    Some((_, Value::Object(o))) => o.clone(),
                    _ => Map::new(),
                };
                for (k, v) in remote_ext {
                    if scim_core::json::get_ci(&merged, k).is_none()
                        && kept(&format!("{}:{k}", ext.id))
                    {
                        merged.insert(k.clone(), v.clone());
                    }
                }
                if !merged.is_empty() {
                    scim_core::json::remove_ci(doc, key);
                    doc.insert(ext.id.clone(), Value::Object(merged));
                }
                continue;
            }
            if scim_core::json::get_ci(doc, key).is_none() && kept(key) {
                doc.insert(key.clone(), value.clone());
            }
        }
    }

    fn complete_schemas(&self, doc: &mut Map<String, Value>) {
        let mut schemas: Vec<String> = match scim_core::json::get_ci(doc, "schemas") {
            Some((_, Value::Array(items))) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        let mut wanted = vec![self.schema.core().id.clone()];
        for (ext, _) in self.schema.extensions() {
            if scim_core::json::get_ci(doc, &ext.id).is_some() {
                wanted.push(ext.id.clone());
            }
        }
        for urn in wanted {
            if !schemas.iter().any(|s| s.eq_ignore_ascii_case(&urn)) {
                schemas.push(urn);
            }
        }
        scim_core::json::remove_ci(doc, "schemas");
        doc.shift_insert(0, "schemas".into(), Value::from(schemas));
    }
}

/// Whether an attribute is compared at all.
fn comparable(target: &Target) -> bool {
    match target {
        Target::Known(a) => {
            let attr = a.attribute();
            !UNCOMPARED.iter().any(|u| attr.name.eq_ignore_ascii_case(u))
                && !attr.name.eq_ignore_ascii_case("members")
                && !matches!(
                    attr.mutability,
                    Mutability::ReadOnly | Mutability::WriteOnly | Mutability::Immutable
                )
        }
        Target::Raw(k) => !UNCOMPARED.iter().any(|u| k.eq_ignore_ascii_case(u)),
    }
}

/// Adds a managed path to `entries`, merging sub-attributes into their
/// top-level attribute.
fn add_entry(schema: &ResourceSchema, entries: &mut Vec<Entry>, path: &str) {
    let (target, sub) = match schema.resolve(path) {
        Ok(a) if a.has_sub() && !a.attribute().multi_valued => {
            let sub = a.sub_attribute().map(|s| s.name.clone());
            (Target::Known(a.parent()), sub)
        }
        Ok(a) => (Target::Known(a.parent()), None),
        Err(_) => (Target::Raw(path.to_string()), None),
    };
    if !comparable(&target) {
        return;
    }
    match entries.iter_mut().find(|e| e.target.same_as(&target)) {
        Some(e) => match sub {
            Some(s) => e.subs.push(s),
            None => e.whole = true,
        },
        None => entries.push(Entry {
            target,
            whole: sub.is_none(),
            subs: sub.into_iter().collect(),
        }),
    }
}

/// The entries of an explicit managed list; a whole extension URN stands
/// for every attribute of the extension.
fn resolve_entries(schema: &ResourceSchema, paths: &[String]) -> Vec<Entry> {
    let mut entries = Vec::new();
    for path in paths {
        if let Some(ext) = schema.extension(path) {
            for a in &ext.attributes {
                add_entry(schema, &mut entries, &format!("{}:{}", ext.id, a.name));
            }
        } else {
            add_entry(schema, &mut entries, path);
        }
    }
    entries
}

/// The entries for the attributes a desired resource carries (extension
/// objects contribute their attributes).
fn entries_of(schema: &ResourceSchema, desired: &Value) -> Vec<Entry> {
    let mut entries = Vec::new();
    let Some(obj) = desired.as_object() else {
        return entries;
    };
    for (key, value) in obj {
        match (schema.extension(key), value) {
            (Some(ext), Value::Object(inner)) => {
                for k in inner.keys() {
                    add_entry(schema, &mut entries, &format!("{}:{k}", ext.id));
                }
            }
            (Some(_), _) => {}
            (None, _) => add_entry(schema, &mut entries, key),
        }
    }
    entries
}

#[cfg(test)]
mod tests;
