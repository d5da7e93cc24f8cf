//! `scimctl groups ...`.

use scim_client::PatchBuilder;
use serde_json::{Map, Value, json};

use super::resource;
use crate::Context;
use crate::cli::{CreateGroupArgs, GroupsCommand, Kind, MembersArgs};
use crate::error::{Error, Result};
use crate::records::core_schema;

/// Runs a `groups` subcommand.
pub async fn run(ctx: &Context, cmd: GroupsCommand) -> Result<()> {
    match cmd {
        GroupsCommand::List(args) => resource::list(ctx, Kind::Groups, args).await,
        GroupsCommand::Get(arg) => resource::get(ctx, Kind::Groups, &arg.id).await,
        GroupsCommand::Create(args) => {
            resource::create(ctx, Kind::Groups, group_from_args(args)?).await
        }
        GroupsCommand::Patch(args) => {
            let request = resource::patch_request(&args)?;
            resource::patch(ctx, Kind::Groups, &args.id, &request).await
        }
        GroupsCommand::Delete(arg) => resource::delete(ctx, Kind::Groups, &arg.id).await,
        GroupsCommand::AddMember(args) => members(ctx, args, true).await,
        GroupsCommand::RemoveMember(args) => members(ctx, args, false).await,
    }
}

/// The group to create: the JSON file, or one made of the options.
pub fn group_from_args(args: CreateGroupArgs) -> Result<Value> {
    let CreateGroupArgs {
        file,
        display_name,
        external_id,
        members,
    } = args;
    if let Some(file) = file {
        let group = super::read_json(&file)?;
        if !group.is_object() {
            return Err(Error::Input("the group must be a JSON object".into()));
        }
        return Ok(group);
    }
    let mut group = Map::new();
    group.insert("schemas".into(), json!([core_schema(Kind::Groups)]));
    if let Some(v) = display_name {
        group.insert("displayName".into(), json!(v));
    }
    if let Some(v) = external_id {
        group.insert("externalId".into(), json!(v));
    }
    if !members.is_empty() {
        let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
        group.insert("members".into(), Value::Array(members));
    }
    Ok(Value::Object(group))
}

/// `add-member` and `remove-member`: one PATCH for all the ids.
async fn members(ctx: &Context, args: MembersArgs, add: bool) -> Result<()> {
    let MembersArgs {
        group_id,
        member_ids,
    } = args;
    let builder = if add {
        PatchBuilder::new().add_members(&member_ids)
    } else {
        member_ids
            .iter()
            .fold(PatchBuilder::new(), |b, id| b.remove_member(id))
    };
    let group = resource::endpoint(ctx, Kind::Groups)
        .patch_and_get(&group_id, &builder.build(), None)
        .await?;
    if ctx.out.is_json() {
        return ctx.out.json_line(&group);
    }
    let n = member_ids.len();
    let plural = if n == 1 { "" } else { "s" };
    ctx.out.line(&if add {
        format!("added {n} member{plural} to group {group_id}")
    } else {
        format!("removed {n} member{plural} from group {group_id}")
    })
}
