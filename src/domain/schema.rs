//! JSON Schemas for the domain types whose JSON is written by hand (ids, money, dates,
//! periods, names): their serde impls are not derived, so the OpenAPI derive cannot see
//! what they accept. Each schema says what the type's `Deserialize` refuses, as far as a
//! schema can, so a generated client checks the same rules before it sends.

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};

/// A string of `format` (`date`, `uuid`) or matching `pattern`.
pub fn string(
    description: &str,
    format: Option<KnownFormat>,
    pattern: Option<&str>,
    example: &str,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(format.map(SchemaFormat::KnownFormat))
        .pattern(pattern)
        .description(Some(description))
        .examples([example])
        .into()
}

/// A string matching `pattern`, which bounds its length too.
pub fn text(description: &str, pattern: &str, example: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .examples([example])
        .into()
}

/// An integer from `min` to `max`.
pub fn integer(description: &str, min: i64, max: i64, example: i64) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(min))
        .maximum(Some(max))
        .description(Some(description))
        .examples([example])
        .into()
}

/// One of `schemas`.
pub fn one_of(
    description: &str,
    schemas: impl IntoIterator<Item = RefOr<Schema>>,
) -> RefOr<Schema> {
    let mut one_of = OneOfBuilder::new().description(Some(description));
    for schema in schemas {
        one_of = one_of.item(schema);
    }
    one_of.into()
}

/// Exactly the string `value`.
pub fn constant(value: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([value]))
        .into()
}

/// Implements `ToSchema` for a type from a function giving its schema.
#[macro_export]
macro_rules! json_schema {
    ($ty:ty, $schema:expr) => {
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
                $schema
            }
        }
        impl utoipa::ToSchema for $ty {}
    };
}
