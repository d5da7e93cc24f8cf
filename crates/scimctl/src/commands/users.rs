//! `scimctl users ...`.

use serde_json::{Map, Value, json};

use super::resource;
use crate::Context;
use crate::cli::{CreateUserArgs, Kind, UsersCommand};
use crate::error::{Error, Result};
use crate::records::core_schema;

/// Runs a `users` subcommand.
pub async fn run(ctx: &Context, cmd: UsersCommand) -> Result<()> {
    match cmd {
        UsersCommand::List(args) => resource::list(ctx, Kind::Users, args).await,
        UsersCommand::Get(arg) => resource::get(ctx, Kind::Users, &arg.id).await,
        UsersCommand::Create(args) => {
            resource::create(ctx, Kind::Users, user_from_args(args)?).await
        }
        UsersCommand::Patch(args) => {
            let request = resource::patch_request(&args)?;
            resource::patch(ctx, Kind::Users, &args.id, &request).await
        }
        UsersCommand::Delete(arg) => resource::delete(ctx, Kind::Users, &arg.id).await,
    }
}

/// The user to create: the JSON file, or one made of the options.
pub fn user_from_args(args: CreateUserArgs) -> Result<Value> {
    let CreateUserArgs {
        file,
        user_name,
        given_name,
        family_name,
        display_name,
        email,
        external_id,
        active,
    } = args;
    if let Some(file) = file {
        let user = super::read_json(&file)?;
        if !user.is_object() {
            return Err(Error::Input("the user must be a JSON object".into()));
        }
        return Ok(user);
    }
    let mut user = Map::new();
    user.insert("schemas".into(), json!([core_schema(Kind::Users)]));
    if let Some(v) = user_name {
        user.insert("userName".into(), json!(v));
    }
    if given_name.is_some() || family_name.is_some() {
        let mut name = Map::new();
        if let Some(g) = given_name {
            name.insert("givenName".into(), json!(g));
        }
        if let Some(f) = family_name {
            name.insert("familyName".into(), json!(f));
        }
        user.insert("name".into(), Value::Object(name));
    }
    if let Some(v) = display_name {
        user.insert("displayName".into(), json!(v));
    }
    if !email.is_empty() {
        let emails: Vec<Value> = email
            .iter()
            .enumerate()
            .map(|(i, e)| json!({"value": e, "type": "work", "primary": i == 0}))
            .collect();
        user.insert("emails".into(), Value::Array(emails));
    }
    if let Some(v) = external_id {
        user.insert("externalId".into(), json!(v));
    }
    if let Some(v) = active {
        user.insert("active".into(), json!(v));
    }
    Ok(Value::Object(user))
}
