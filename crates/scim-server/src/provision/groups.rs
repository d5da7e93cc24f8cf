//! Group push: a group assigned to an application is provisioned there as
//! a Group whose members are the remote ids of its direct members that are
//! provisioned in the same application.
//!
//! - Create or adopt: before a create, the target is searched by
//!   `externalId` (our id), then `displayName`; a match is adopted and
//!   brought in line with a PATCH instead of creating a duplicate.
//! - Changes are minimal PATCHes: `displayName` when it changed, and the
//!   membership as deltas in the RFC form (one `add` of the new members,
//!   one `remove members[value eq "<remote id>"]` per member gone).
//! - The membership last sent is kept as a ledger, so targets that never
//!   echo `members` are handled, and members added at the target by
//!   someone else are left alone.
//! - A removal without a filter (`remove members`), which would wipe the
//!   whole group, is never sent.
//! - A group no longer assigned (or deleted here) is deleted downstream,
//!   or left as it is under the `groupDeprovision: "leave"` policy.

use scim_client::plan::{
    Deprovision, Managed, MatchStrategy, MembershipLedger, Plan, PlanOptions, Planner,
    TargetCapabilities,
};
use scim_client::{Applied, PatchOp};
use serde_json::{Value, json};

use super::{Planned, SendError, Sent, Session};
use crate::store::engine_state::{GroupDeprovision, PairExtra};
use crate::store::{ClaimedPair, PairOutcome, PairStatus};

/// The attributes of a pushed group the engine manages.
const MANAGED: [&str; 3] = ["displayName", "externalId", "members"];

const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// The group planner for a target with these capabilities: PATCH deltas,
/// or a PUT of the whole group where the target has no PATCH.
fn planner(caps: TargetCapabilities) -> Planner {
    Planner::groups(
        TargetCapabilities {
            // Membership is planned from the ledger of what we sent, which
            // works whether or not the target echoes members.
            echoes_members: false,
            ..caps
        },
        PlanOptions {
            deprovision: Deprovision::Delete,
            managed: Managed::Attributes(MANAGED.iter().map(|s| (*s).to_string()).collect()),
        },
    )
}

/// What the application should hold for the group (`None`: nothing).
fn desired(pair: &ClaimedPair) -> Option<Value> {
    let doc = pair.document.as_ref().filter(|_| pair.assigned)?;
    let members: Vec<Value> = pair
        .members
        .iter()
        .flatten()
        .map(|id| json!({"value": id}))
        .collect();
    Some(json!({
        "schemas": [GROUP_SCHEMA],
        "displayName": doc.get("displayName").cloned().unwrap_or(Value::Null),
        "externalId": doc.get("id").cloned().unwrap_or(Value::Null),
        "members": members,
    }))
}

fn ledger(pair: &ClaimedPair) -> MembershipLedger {
    pair.extra
        .ledger
        .as_deref()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default()
}

/// The snapshot kept of a group: what we sent, without members (they live
/// in the ledger).
fn snapshot(doc: &Value) -> Value {
    let mut doc = doc.clone();
    if let Value::Object(o) = &mut doc {
        o.retain(|k, _| !k.eq_ignore_ascii_case("members"));
    }
    doc
}

/// Plans one group pair without sending, for a target with PATCH.
pub fn plan_group(pair: &ClaimedPair) -> Planned {
    plan_group_with(pair, TargetCapabilities::default())
}

/// [`plan_group`] for a target with these capabilities. Without PATCH a
/// change is a PUT of the whole group, members included: members added at
/// the target by someone else do not survive it.
pub fn plan_group_with(pair: &ClaimedPair, caps: TargetCapabilities) -> Planned {
    let state = &pair.state;
    let desired = desired(pair);
    let remote: Option<Value> = state
        .remote_id
        .as_ref()
        .and(state.last_sent.as_deref())
        .and_then(|s| serde_json::from_str(s).ok());
    let leave = pair.settings.group_deprovision == GroupDeprovision::Leave;
    let plan = if desired.is_none() && leave {
        Plan::Nothing
    } else {
        planner(caps).plan_with_ledger(desired.as_ref(), remote.as_ref(), Some(&ledger(pair)))
    };
    Planned {
        plan,
        desired,
        remote,
        delete_after: None,
    }
}

/// Whether a plan would remove every member at once.
fn wipes_members(plan: &Plan) -> bool {
    match plan {
        Plan::Patch(ops) => ops.iter().any(|op| {
            op.op == PatchOp::Remove
                && op
                    .path
                    .as_deref()
                    .is_some_and(|p| p.trim().eq_ignore_ascii_case("members"))
        }),
        _ => false,
    }
}

/// Plans and sends a group pair.
pub(crate) async fn send(
    pair: &ClaimedPair,
    session: &Session,
    caps: TargetCapabilities,
) -> std::result::Result<Sent, SendError> {
    let state = &pair.state;
    let Planned {
        mut plan,
        desired,
        mut remote,
        ..
    } = plan_group_with(pair, caps);
    let mut ledger = ledger(pair);
    let mut remote_id = state.remote_id.clone();
    let client = &session.client;
    let strategy = MatchStrategy::groups();
    let err = |e: scim_client::ClientError| (e.to_string(), e.retry_after());
    if let (Plan::Create(_), Some(want), None) = (&plan, &desired, &remote_id) {
        // Adopt a group the target already has (made by hand, or by a run
        // whose answer was lost) rather than create a second one.
        if let Some(existing) = client
            .find_match("/Groups", want, &strategy)
            .await
            .map_err(err)?
        {
            remote_id = existing
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if remote_id.is_none() {
                return Err(("the matching group has no id".into(), None));
            }
            // Its members, when it shows them, are the current membership.
            ledger = MembershipLedger::from_ids(
                existing
                    .get("members")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m.get("value").and_then(Value::as_str)),
            );
            let found = snapshot(&existing);
            plan = planner(caps).plan_with_ledger(Some(want), Some(&found), Some(&ledger));
            remote = Some(found);
        }
    }
    if plan.is_nothing() && remote_id == state.remote_id {
        return Ok(Sent::Nothing(PairExtra {
            delete_after: None,
            ledger: pair.extra.ledger.clone(),
        }));
    }
    if wipes_members(&plan) {
        return Err((
            "refused: the plan would remove every member of the group at once".into(),
            None,
        ));
    }
    let applied = client
        .apply(
            "/Groups",
            remote_id.as_deref(),
            &plan,
            remote.as_ref(),
            &strategy,
        )
        .await
        .map_err(err)?;
    ledger.record(&plan);
    let remote_id = match &applied {
        Applied::Created(v) | Applied::Adopted(v) => {
            let id = v.get("id").and_then(Value::as_str).map(str::to_owned);
            if id.is_none() {
                return Err(("the application's answer has no id".into(), None));
            }
            if let Applied::Adopted(v) = &applied {
                // Adopted on a 409: the next pass brings it in line.
                ledger = MembershipLedger::from_ids(
                    v.get("members")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|m| m.get("value").and_then(Value::as_str)),
                );
            }
            id
        }
        Applied::Deleted { .. } => None,
        _ => remote_id,
    };
    let held = match (&applied, &desired) {
        (Applied::Deleted { .. }, _) | (_, None) => None,
        (Applied::Adopted(v), _) => Some(snapshot(v)),
        (_, Some(d)) => Some(snapshot(d)),
    };
    let last_sent = held.map(|v| v.to_string());
    let ledger = remote_id
        .as_ref()
        .and_then(|_| serde_json::to_string(&ledger).ok());
    Ok(Sent::Changed(PairOutcome {
        remote_id,
        last_sent_hash: last_sent.as_deref().map(crate::tokens::hash_secret),
        last_sent,
        status: if desired.is_some() {
            PairStatus::Provisioned
        } else {
            PairStatus::Deprovisioned
        },
        attempts: 0,
        next_attempt_at: None,
        last_error: None,
        extra: PairExtra {
            delete_after: None,
            ledger,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim_client::PatchOperation;

    #[test]
    fn a_removal_of_all_members_is_recognised() {
        let all = Plan::Patch(vec![PatchOperation::remove("members")]);
        let one = Plan::Patch(vec![PatchOperation::remove(r#"members[value eq "a"]"#)]);
        assert!(wipes_members(&all));
        assert!(!wipes_members(&one));
        assert!(!wipes_members(&Plan::Delete));
    }
}
