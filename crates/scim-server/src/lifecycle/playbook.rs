//! Playbook actions: what they are on the wire, and how they are checked
//! and resolved (application names to ids, group names to ids) when a
//! playbook is saved.

use std::sync::Arc;

use scim_core::patch::{self, Mode};
use scim_core::schema::ResourceSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::store::{Storage, TenantId};

/// One action of a playbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Action {
    /// Assign an application (an account is provisioned there).
    #[serde(rename_all = "camelCase")]
    AssignApplication {
        /// The application id (resolved from `application` on save).
        #[serde(default)]
        application_id: Option<i64>,
        /// The application's name.
        #[serde(default)]
        application: Option<String>,
        /// A role on the application side, kept on the assignment and sent
        /// by the engine as the account's `roles` (`[{"value": role}]`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        /// Manual runs: the access ends this many seconds after it is
        /// granted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        valid_for_seconds: Option<i64>,
    },
    /// Add the user to a local group.
    #[serde(rename_all = "camelCase")]
    AddToGroup {
        /// The group's SCIM id (resolved from `group` on save).
        #[serde(default)]
        group_id: Option<String>,
        /// The group's displayName.
        #[serde(default)]
        group: Option<String>,
    },
    /// Set attributes of the user (attribute path -> value, as a PATCH
    /// `replace`).
    #[serde(rename_all = "camelCase")]
    SetAttributes {
        /// Path -> value.
        attributes: Map<String, Value>,
    },
    /// Remove the user's access to an application (every assignment,
    /// whatever its source), or to every application when none is named.
    #[serde(rename_all = "camelCase")]
    RemoveAccess {
        /// The application id (resolved from `application` on save).
        #[serde(default)]
        application_id: Option<i64>,
        /// The application's name.
        #[serde(default)]
        application: Option<String>,
    },
}

impl Action {
    /// The action's wire name.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::AssignApplication { .. } => "assignApplication",
            Action::AddToGroup { .. } => "addToGroup",
            Action::SetAttributes { .. } => "setAttributes",
            Action::RemoveAccess { .. } => "removeAccess",
        }
    }
}

fn invalid(detail: String) -> Error {
    scim_core::Error::invalid_value(detail).into()
}

/// The PatchOp message that sets `attributes`.
pub fn set_message(attributes: &Map<String, Value>) -> Value {
    let ops: Vec<Value> = attributes
        .iter()
        .map(|(path, value)| json!({"op": "replace", "path": path, "value": value}))
        .collect();
    json!({"schemas": [patch::PATCH_OP_SCHEMA], "Operations": ops})
}

/// Reads stored actions (saved through [`resolve`], so they are valid).
pub fn parse_actions(actions: &Value) -> Result<Vec<Action>> {
    serde_json::from_value(actions.clone())
        .map_err(|e| Error::internal(format!("stored playbook actions: {e}")))
}

/// Checks a playbook's actions and resolves names to ids (blocking: reads
/// the store). A missing application or group, an unknown action or a bad
/// attribute path is a 400 naming the action.
pub fn resolve(
    storage: &Arc<dyn Storage>,
    tenant: TenantId,
    users: &ResourceSchema,
    actions: &Value,
) -> Result<Vec<Action>> {
    let Some(items) = actions.as_array() else {
        return Err(invalid("'actions' must be an array".into()));
    };
    if items.len() > 100 {
        return Err(invalid("a playbook holds at most 100 actions".into()));
    }
    let apps = storage.list_applications(tenant)?;
    let app_id = |i: usize, id: Option<i64>, name: &Option<String>| -> Result<(i64, String)> {
        let found = match (id, name) {
            (Some(id), _) => apps.iter().find(|a| a.id == id),
            (None, Some(name)) => apps.iter().find(|a| a.fields.name == *name),
            (None, None) => {
                return Err(invalid(format!(
                    "action {i}: name the application with 'application' or 'applicationId'"
                )));
            }
        };
        found.map(|a| (a.id, a.fields.name.clone())).ok_or_else(|| {
            invalid(format!(
                "action {i}: no application {}",
                id.map_or_else(
                    || format!("named '{}'", name.clone().unwrap_or_default()),
                    |id| format!("with id {id}")
                )
            ))
        })
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let action: Action = serde_json::from_value(item.clone())
            .map_err(|e| invalid(format!("action {i}: {e}")))?;
        let action = match action {
            Action::AssignApplication {
                application_id,
                application,
                role,
                valid_for_seconds,
            } => {
                if valid_for_seconds.is_some_and(|s| s <= 0) {
                    return Err(invalid(format!(
                        "action {i}: validForSeconds must be positive"
                    )));
                }
                let (id, name) = app_id(i, application_id, &application)?;
                Action::AssignApplication {
                    application_id: Some(id),
                    application: Some(name),
                    role,
                    valid_for_seconds,
                }
            }
            Action::RemoveAccess {
                application_id,
                application,
            } => {
                if application_id.is_none() && application.is_none() {
                    Action::RemoveAccess {
                        application_id: None,
                        application: None,
                    }
                } else {
                    let (id, name) = app_id(i, application_id, &application)?;
                    Action::RemoveAccess {
                        application_id: Some(id),
                        application: Some(name),
                    }
                }
            }
            Action::AddToGroup { group_id, group } => {
                let key = group_id.clone().or(group.clone()).ok_or_else(|| {
                    invalid(format!(
                        "action {i}: name the group with 'group' or 'groupId'"
                    ))
                })?;
                let (_, id) = storage
                    .find_group(tenant, &key)?
                    .ok_or_else(|| invalid(format!("action {i}: no group '{key}'")))?;
                Action::AddToGroup {
                    group_id: Some(id),
                    group: group.or(Some(key)),
                }
            }
            Action::SetAttributes { attributes } => {
                if attributes.is_empty() {
                    return Err(invalid(format!("action {i}: 'attributes' is empty")));
                }
                let probe =
                    json!({"schemas": [scim_core::schema::USER_SCHEMA], "userName": "probe"});
                patch::apply_message(&probe, &set_message(&attributes), users, Mode::Strict)
                    .map_err(|e| invalid(format!("action {i}: {}", e.into_error().detail())))?;
                Action::SetAttributes { attributes }
            }
        };
        out.push(action);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_read_their_wire_form() {
        let a: Action = serde_json::from_value(
            json!({"type": "assignApplication", "application": "Slack", "role": "member"}),
        )
        .unwrap();
        assert_eq!(
            a,
            Action::AssignApplication {
                application_id: None,
                application: Some("Slack".into()),
                role: Some("member".into()),
                valid_for_seconds: None
            }
        );
        assert!(serde_json::from_value::<Action>(json!({"type": "launchRocket"})).is_err());
        let r: Action = serde_json::from_value(json!({"type": "removeAccess"})).unwrap();
        assert_eq!(r.kind(), "removeAccess");
    }
}
