//! The typed User (RFC 7643 section 4.1) and enterprise User extension
//! (section 4.3).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::serde_ci::{self, case_insensitive_serde};
use super::{Meta, Resource, kind_of, put_ci, typed_resource_conversions};
use crate::error::{Error, Result};
use crate::json::{get_ci, remove_ci};
use crate::schema::{ENTERPRISE_USER_SCHEMA, ResourceSchema, USER_SCHEMA};

/// `null` reads as the default (unassigned).
pub(super) fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A multi-valued attribute: `null` reads as empty, and a single value not
/// wrapped in an array as a one-element list (the same leniency as
/// validation).
pub(super) fn list<'de, D, T>(d: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .filter(|v| !v.is_null())
            .map(|v| serde_json::from_value(v).map_err(serde::de::Error::custom))
            .collect(),
        single => serde_json::from_value(single)
            .map(|v| vec![v])
            .map_err(serde::de::Error::custom),
    }
}

/// A User (RFC 7643 section 4.1).
///
/// `extra` holds every member this struct does not model: extension objects
/// (under their URN key) and unknown attributes; they are serialised back
/// unchanged. `userName` is REQUIRED by the schema; a projected
/// representation without it reads as an empty string, and an empty
/// `userName` is not serialised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct User {
    /// The schema URNs.
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub schemas: Vec<String>,
    /// The service provider's identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The client's identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The unique user name.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub user_name: String,
    /// The components of the user's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Name>,
    /// The name for display to end users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The casual name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nick_name: Option<String>,
    /// A URL of the user's online profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_url: Option<String>,
    /// The user's title, e.g. "Vice President".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The relationship to the organisation, e.g. "Employee".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    /// Preferred languages, in Accept-Language format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_language: Option<String>,
    /// The default location for localisation, e.g. `en-US`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// The time zone, e.g. `America/Los_Angeles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The administrative status. A JSON boolean only: identity-provider
    /// dialects such as `"True"` are converted before this layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// The password (write-only: never returned by a service provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Email addresses.
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub emails: Vec<MultiValue>,
    /// Phone numbers.
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub phone_numbers: Vec<MultiValue>,
    /// Instant messaging addresses.
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ims: Vec<MultiValue>,
    /// Photo URLs.
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub photos: Vec<MultiValue>,
    /// Physical mailing addresses.
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub addresses: Vec<Address>,
    /// The groups the user belongs to (read-only).
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub groups: Vec<ResourceRef>,
    /// Entitlements.
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub entitlements: Vec<MultiValue>,
    /// Roles.
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub roles: Vec<MultiValue>,
    /// Base64 DER X.509 certificates.
    #[serde(
        default,
        deserialize_with = "list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub x509_certificates: Vec<MultiValue>,
    /// Resource metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Extension objects and unknown attributes, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

case_insensitive_serde!(
    User,
    &[
        "schemas",
        "id",
        "externalId",
        "userName",
        "name",
        "displayName",
        "nickName",
        "profileUrl",
        "title",
        "userType",
        "preferredLanguage",
        "locale",
        "timezone",
        "active",
        "password",
        "emails",
        "phoneNumbers",
        "ims",
        "photos",
        "addresses",
        "groups",
        "entitlements",
        "roles",
        "x509Certificates",
        "meta",
    ]
);

typed_resource_conversions!(User);

impl User {
    /// A new User with the core schema and a `userName`.
    pub fn new(user_name: impl Into<String>) -> Self {
        Self {
            schemas: vec![USER_SCHEMA.to_string()],
            user_name: user_name.into(),
            ..Self::default()
        }
    }

    /// The enterprise extension, if present. `None` also when the object
    /// under the URN is malformed; [`User::try_enterprise`] tells the two apart.
    pub fn enterprise(&self) -> Option<EnterpriseUser> {
        self.try_enterprise().ok().flatten()
    }

    /// The enterprise extension: `Ok(None)` when absent or null, an
    /// [`crate::ErrorKind::InvalidValue`] error when malformed.
    pub fn try_enterprise(&self) -> Result<Option<EnterpriseUser>> {
        match get_ci(&self.extra, ENTERPRISE_USER_SCHEMA) {
            None | Some((_, Value::Null)) => Ok(None),
            Some((_, v @ Value::Object(_))) => {
                serde_json::from_value(v.clone()).map(Some).map_err(|e| {
                    Error::invalid_value(format!("invalid enterprise User extension: {e}"))
                })
            }
            Some((_, other)) => Err(Error::invalid_value(format!(
                "the enterprise User extension must be an object, not {}",
                kind_of(other)
            ))),
        }
    }

    /// Sets (`Some`) or removes (`None`) the enterprise extension object,
    /// under its canonical URN key, and adds its URN to or removes it from
    /// `schemas`.
    pub fn set_enterprise(&mut self, enterprise: Option<EnterpriseUser>) {
        match enterprise {
            Some(ext) => {
                let obj = Value::Object(serde_ci::to_object(&ext));
                put_ci(&mut self.extra, ENTERPRISE_USER_SCHEMA, obj);
                if !self
                    .schemas
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA))
                {
                    self.schemas.push(ENTERPRISE_USER_SCHEMA.to_string());
                }
            }
            None => {
                remove_ci(&mut self.extra, ENTERPRISE_USER_SCHEMA);
                self.schemas
                    .retain(|s| !s.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA));
            }
        }
    }

    /// The primary email address, else the first one.
    pub fn primary_email(&self) -> Option<&str> {
        self.emails
            .iter()
            .find(|e| e.primary == Some(true))
            .or_else(|| self.emails.first())
            .and_then(|e| e.value.as_deref())
    }
}

/// The components of a User's name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct Name {
    /// The full name, formatted for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    /// The family (last) name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// The given (first) name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// The middle name(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    /// Honorific prefix(es), e.g. "Ms.".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honorific_prefix: Option<String>,
    /// Honorific suffix(es), e.g. "III".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honorific_suffix: Option<String>,
    /// Unknown sub-attributes, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

case_insensitive_serde!(
    Name,
    &[
        "formatted",
        "familyName",
        "givenName",
        "middleName",
        "honorificPrefix",
        "honorificSuffix",
    ]
);

/// An element of a multi-valued attribute with the default sub-attributes
/// (RFC 7643 section 2.4): emails, phoneNumbers, ims, photos, entitlements,
/// roles and x509Certificates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct MultiValue {
    /// The significant value (address, number, URL, base64 certificate...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// A human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// A label of the value's function, e.g. `work`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Whether this is the preferred value; absent means false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    /// Unknown sub-attributes, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

case_insensitive_serde!(MultiValue, &["value", "display", "type", "primary"]);

impl MultiValue {
    /// An element with a value and a type.
    pub fn new(value: impl Into<String>, kind: impl Into<String>) -> Self {
        Self {
            value: Some(value.into()),
            kind: Some(kind.into()),
            ..Self::default()
        }
    }
}

/// A physical mailing address.
///
/// `primary` is not in the RFC 7643 section 8.7.1 schema listing but is used
/// by the section 8.2 example and by clients, so it is modelled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct Address {
    /// The full address, formatted for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    /// The street address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    /// The city or locality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// The state or region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// The country (ISO 3166-1 alpha-2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// A label, e.g. `work`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Whether this is the preferred address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    /// Unknown sub-attributes, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

case_insensitive_serde!(
    Address,
    &[
        "formatted",
        "streetAddress",
        "locality",
        "region",
        "postalCode",
        "country",
        "type",
        "primary",
    ]
);

/// A reference to another resource, as in a User's `groups` and a Group's
/// `members`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct ResourceRef {
    /// The `id` of the referenced resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The URI of the referenced resource.
    #[serde(rename = "$ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// A human-readable name (read-only, set by the service provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// The type: `User` or `Group` for members, `direct` or `indirect` for groups.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Unknown sub-attributes, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

case_insensitive_serde!(ResourceRef, &["value", "$ref", "display", "type"]);

impl ResourceRef {
    /// A reference by `id` with a type (`User`, `Group`, `direct`...).
    pub fn new(value: impl Into<String>, kind: impl Into<String>) -> Self {
        Self {
            value: Some(value.into()),
            kind: Some(kind.into()),
            ..Self::default()
        }
    }
}

/// The enterprise User extension (RFC 7643 section 4.3), the object under
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct EnterpriseUser {
    /// The employee number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_number: Option<String>,
    /// The cost center.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_center: Option<String>,
    /// The organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// The division.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub division: Option<String>,
    /// The department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// The user's manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<Manager>,
    /// Unknown attributes, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

case_insensitive_serde!(
    EnterpriseUser,
    &[
        "employeeNumber",
        "costCenter",
        "organization",
        "division",
        "department",
        "manager",
    ]
);

/// The manager of an enterprise User.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct Manager {
    /// The manager's `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The URI of the manager's resource.
    #[serde(rename = "$ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The manager's display name (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Unknown sub-attributes, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

case_insensitive_serde!(Manager, &["value", "$ref", "displayName"]);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every field list given to `case_insensitive_serde!` names exactly the
    /// members a fully populated value serialises.
    #[test]
    fn field_lists_match_the_structs() {
        let mv = MultiValue {
            value: Some("v".into()),
            display: Some("d".into()),
            kind: Some("t".into()),
            primary: Some(true),
            ..MultiValue::default()
        };
        let user = User {
            schemas: vec!["s".into()],
            id: Some("i".into()),
            external_id: Some("e".into()),
            user_name: "u".into(),
            name: Some(Name::default()),
            display_name: Some("x".into()),
            nick_name: Some("x".into()),
            profile_url: Some("x".into()),
            title: Some("x".into()),
            user_type: Some("x".into()),
            preferred_language: Some("x".into()),
            locale: Some("x".into()),
            timezone: Some("x".into()),
            active: Some(true),
            password: Some("x".into()),
            emails: vec![mv.clone()],
            phone_numbers: vec![mv.clone()],
            ims: vec![mv.clone()],
            photos: vec![mv.clone()],
            addresses: vec![Address::default()],
            groups: vec![ResourceRef::default()],
            entitlements: vec![mv.clone()],
            roles: vec![mv.clone()],
            x509_certificates: vec![mv.clone()],
            meta: Some(Meta::default()),
            extra: Map::new(),
        };
        let keys: Vec<String> = user
            .to_value()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys.len(), 25);
        // Differently cased input of every key reads back to the same value.
        let shouted: Map<String, Value> = user
            .to_value()
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.to_ascii_uppercase(), v.clone()))
            .collect();
        let back: User = serde_json::from_value(Value::Object(shouted)).unwrap();
        assert_eq!(back, user);
        assert!(back.extra.is_empty());
        let mv_back: MultiValue = serde_json::from_value(
            json!({"VALUE": "v", "Display": "d", "TYPE": "t", "Primary": true}),
        )
        .unwrap();
        assert_eq!(mv_back, mv);
        let addr: Address = serde_json::from_value(json!({
            "FORMATTED": "f", "STREETADDRESS": "s", "LOCALITY": "l", "REGION": "r",
            "POSTALCODE": "p", "COUNTRY": "c", "TYPE": "t", "PRIMARY": false
        }))
        .unwrap();
        assert!(addr.extra.is_empty());
        let name: Name = serde_json::from_value(json!({
            "FORMATTED": "f", "FAMILYNAME": "a", "GIVENNAME": "b", "MIDDLENAME": "c",
            "HONORIFICPREFIX": "d", "HONORIFICSUFFIX": "e"
        }))
        .unwrap();
        assert!(name.extra.is_empty());
        let ent: EnterpriseUser = serde_json::from_value(json!({
            "EMPLOYEENUMBER": "1", "COSTCENTER": "2", "ORGANIZATION": "3", "DIVISION": "4",
            "DEPARTMENT": "5", "MANAGER": {"VALUE": "m", "$REF": "r", "DISPLAYNAME": "d"}
        }))
        .unwrap();
        assert!(ent.extra.is_empty());
        assert!(ent.manager.unwrap().extra.is_empty());
        let r: ResourceRef = serde_json::from_value(
            json!({"VALUE": "v", "$Ref": "r", "DISPLAY": "d", "TYPE": "User"}),
        )
        .unwrap();
        assert!(r.extra.is_empty());
    }

    #[test]
    fn enterprise_extension_read_and_write() {
        let mut user: User = serde_json::from_value(json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "userName": "bjensen",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {
                "employeeNumber": "701984", "Manager": {"value": "m1"}, "x-custom": 1
            },
            "urn:example:acme:2.0:User": {"badge": 7}
        }))
        .unwrap();
        let mut ent = user.enterprise().unwrap();
        assert_eq!(ent.employee_number.as_deref(), Some("701984"));
        assert_eq!(ent.extra.get("x-custom"), Some(&json!(1)));
        ent.department = Some("Tours".into());
        user.set_enterprise(Some(ent));
        let v = user.to_value();
        assert_eq!(v[ENTERPRISE_USER_SCHEMA]["department"], "Tours");
        assert_eq!(v[ENTERPRISE_USER_SCHEMA]["manager"]["value"], "m1");
        assert_eq!(v["urn:example:acme:2.0:User"]["badge"], 7);
        user.set_enterprise(None);
        assert_eq!(user.schemas, vec![USER_SCHEMA.to_string()]);
        assert!(user.enterprise().is_none());
        user.extra
            .insert(ENTERPRISE_USER_SCHEMA.into(), json!("bad"));
        assert!(user.try_enterprise().is_err());
    }

    #[test]
    fn active_is_a_boolean_and_lists_are_lenient() {
        let err = User::try_from(json!({"userName": "a", "active": "True"})).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidValue);
        let user = User::try_from(json!({
            "userName": "a", "emails": {"value": "a@x"}, "phoneNumbers": null, "nickName": null
        }))
        .unwrap();
        assert_eq!(user.primary_email(), Some("a@x"));
        assert_eq!(
            user.to_value(),
            json!({"userName": "a", "emails": [{"value": "a@x"}]})
        );
        assert_eq!(
            User::try_from(json!("x")).unwrap_err().kind(),
            crate::ErrorKind::InvalidSyntax
        );
        let u = User::new("bjensen");
        assert_eq!(
            Value::from(u),
            json!({"schemas": [USER_SCHEMA], "userName": "bjensen"})
        );
    }
}
