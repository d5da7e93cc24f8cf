//! Group membership as deltas, and the ledger of what was sent to
//! providers that do not return `members`.
//!
//! Membership is never replaced wholesale in a PATCH: new members are added
//! in one `add` operation on `members`, and each member that goes is
//! removed with `remove members[value eq "id"]` (RFC 7644 section
//! 3.5.2.2). So a group of ten thousand members gains one member with a
//! request of one member, and members added at the provider by someone else
//! are kept unless we had sent them.
//!
//! Some providers never return `members` (or return them only on request,
//! or truncated). For them the current membership is what we last sent:
//! the [`MembershipLedger`], which the caller stores with the group and
//! updates with [`MembershipLedger::record`] after each successful request.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Plan;
use super::compare::member;
use crate::patch::{PatchOp, PatchOperation, member_path};

/// The member ids last sent to a provider for one group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MembershipLedger {
    members: BTreeSet<String>,
}

impl MembershipLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// A ledger holding these ids.
    pub fn from_ids<I, S>(ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            members: ids.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether `id` was sent as a member.
    pub fn contains(&self, id: &str) -> bool {
        self.members.contains(id)
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether no member is recorded.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The member ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(String::as_str)
    }

    /// Updates the ledger after `plan` was carried out successfully: the
    /// members of a created or replaced group, the `members` operations of
    /// a PATCH, nothing after a delete.
    pub fn record(&mut self, plan: &Plan) {
        match plan {
            Plan::Create(doc) | Plan::Replace(doc) => {
                self.members = member_ids(doc).unwrap_or_default().into_iter().collect();
            }
            Plan::Patch(ops) => {
                for op in ops {
                    self.record_op(op);
                }
            }
            Plan::Delete => self.members.clear(),
            Plan::Nothing | Plan::Deactivate => {}
        }
    }

    fn record_op(&mut self, op: &PatchOperation) {
        let Some(path) = op.path.as_deref() else {
            return;
        };
        if path.eq_ignore_ascii_case("members") {
            let ids = op.value.as_ref().map(ids_of).unwrap_or_default();
            match op.op {
                PatchOp::Add => self.members.extend(ids),
                PatchOp::Replace => self.members = ids.into_iter().collect(),
                PatchOp::Remove => self.members.clear(),
            }
        } else if op.op == PatchOp::Remove
            && let Some(id) = removed_member(path)
        {
            self.members.remove(&id);
        }
    }
}

/// The id in `members[value eq "id"]`, as written by [`member_path`].
fn removed_member(path: &str) -> Option<String> {
    let inner = path.strip_prefix("members[value eq ")?.strip_suffix(']')?;
    serde_json::from_str::<String>(inner).ok()
}

fn ids_of(v: &Value) -> Vec<String> {
    let items: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let id = match item {
            Value::String(s) => Some(s.as_str()),
            other => member(other, "value").and_then(Value::as_str),
        };
        if let Some(id) = id.filter(|s| !s.is_empty())
            && !out.iter().any(|o| o == id)
        {
            out.push(id.to_string());
        }
    }
    out
}

/// The member ids of a group document, in order, without repeats; `None`
/// when it has no `members` member at all.
pub(crate) fn member_ids(doc: &Value) -> Option<Vec<String>> {
    let members = member(doc, "members")?;
    Some(if members.is_null() {
        Vec::new()
    } else {
        ids_of(members)
    })
}

/// The operations that take the membership from `current` to `desired`:
/// removals first (one per member), then one `add` of every new member.
pub(crate) fn member_ops(desired: &[String], current: &BTreeSet<String>) -> Vec<PatchOperation> {
    let wanted: BTreeSet<&str> = desired.iter().map(String::as_str).collect();
    let mut ops: Vec<PatchOperation> = current
        .iter()
        .filter(|id| !wanted.contains(id.as_str()))
        .map(|id| PatchOperation::remove(member_path(id)))
        .collect();
    let added: Vec<Value> = desired
        .iter()
        .filter(|id| !current.contains(*id))
        .map(|id| json!({"value": id}))
        .collect();
    if !added.is_empty() {
        ops.push(PatchOperation::add("members", Value::Array(added)));
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn deltas() {
        let ops = member_ops(
            &["a".into(), "b".into(), "d".into()],
            &set(&["a", "c", "x\"y"]),
        );
        let shown: Vec<String> = ops.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                r#"remove members[value eq "c"]"#,
                r#"remove members[value eq "x\"y"]"#,
                r#"add members = [{"value":"b"},{"value":"d"}]"#,
            ]
        );
        assert!(member_ops(&["a".into()], &set(&["a"])).is_empty());
    }

    #[test]
    fn ledger_follows_what_was_sent() {
        let mut ledger = MembershipLedger::from_ids(["a", "c", "x\"y"]);
        let ops = member_ops(&["a".into(), "b".into()], &set(&["a", "c", "x\"y"]));
        ledger.record(&Plan::Patch(ops));
        assert_eq!(ledger.ids().collect::<Vec<_>>(), ["a", "b"]);
        ledger.record(&Plan::Replace(json!({"members": [{"value": "z"}, "q"]})));
        assert_eq!(ledger.ids().collect::<Vec<_>>(), ["q", "z"]);
        ledger.record(&Plan::Nothing);
        assert_eq!(ledger.len(), 2);
        ledger.record(&Plan::Delete);
        assert!(ledger.is_empty());
        // Stored as a plain JSON array.
        let stored = serde_json::to_value(MembershipLedger::from_ids(["b", "a"])).unwrap();
        assert_eq!(stored, json!(["a", "b"]));
        let back: MembershipLedger = serde_json::from_value(stored).unwrap();
        assert!(back.contains("a"));
    }

    #[test]
    fn member_ids_of_documents() {
        assert_eq!(member_ids(&json!({"displayName": "g"})), None);
        assert_eq!(member_ids(&json!({"members": null})), Some(vec![]));
        assert_eq!(
            member_ids(
                &json!({"Members": [{"value": "a"}, {"Value": "b"}, {"value": "a"}, {"display": "x"}]})
            ),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(
            removed_member(r#"members[value eq "a\"b"]"#).as_deref(),
            Some("a\"b")
        );
        assert_eq!(removed_member("members"), None);
    }
}
