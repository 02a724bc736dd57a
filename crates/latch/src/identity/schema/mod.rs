//! Identity schemas: loading the configured JSON Schemas, validating
//! identity traits against them with Kratos-compatible error messages, and
//! evaluating the `ory.sh/kratos` extension (identifiers, verifiable,
//! recovery and code addresses).
//!
//! Siblings are referenced only through `super::`/`self::` so the folder can
//! be moved into another crate unchanged.

mod errors;
mod extension;
mod registry;
mod source;
mod validate;

#[cfg(test)]
mod tests;

pub use self::errors::{SchemaError, TraitError, UiText, ids};
pub use self::extension::{
    Address, EXTENSION_KEY, Extracted, IDENTIFIER_TYPES, normalize_email, normalize_identifier, normalize_phone,
};
pub use self::registry::{IdentitySchema, SchemaRegistry, decode_schema_id, encode_schema_id};
