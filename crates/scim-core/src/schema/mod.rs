//! Schemas as data: the RFC 7643 model, the embedded core schemas, and the
//! registry that resolves attribute paths.

mod model;
mod registry;

pub use model::{
    Attribute, AttributeType, Mutability, RESOURCE_TYPE_SCHEMA, ResourceType, Returned,
    SCHEMA_SCHEMA, Schema, SchemaExtension, Uniqueness,
};
pub use registry::{
    AttrRef, COMMON_SCHEMA, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, Location, ResourceSchema,
    SchemaRegistry, USER_SCHEMA,
};
