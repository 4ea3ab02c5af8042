//! Request JSON read strictly. serde's derived `Deserialize` for a struct also takes a
//! JSON array (the fields by position), so `["김보험", "1986-05-01", "male", ...]` would
//! register a customer. [`Objects`] wraps a JSON deserializer so that every struct,
//! however deeply nested, must be a JSON object; anything else is refused with "expected
//! a JSON object", at the place `serde_path_to_error` names. It also words a wrong type
//! for an enum as the choices (`expected one of `male`, `female``) where serde_json says
//! only "expected value".
//!
//! It is a wrapper around the deserializer and its visitors, not another pass over the
//! input: the burst quote path reads through it at the same cost.

use serde::Deserialize;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Unexpected,
    VariantAccess, Visitor,
};
use std::fmt;

/// Parses `input` as one `T` (and nothing after it), every struct as a JSON object.
pub fn from_str<'a, T: Deserialize<'a>>(input: &'a str) -> Result<T, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(input);
    let value = T::deserialize(Objects::new(&mut de))?;
    de.end()?;
    Ok(value)
}

/// Parses `input` as [`from_str`] does; a failure names its place in the document
/// (`insured.birthDate`, `[3].sumInsured`; `.` for the document itself).
pub fn from_str_with_path<'a, T: Deserialize<'a>>(input: &'a str) -> Result<T, (String, String)> {
    let mut de = serde_json::Deserializer::from_str(input);
    let value = serde_path_to_error::deserialize::<_, T>(Objects::new(&mut de)).map_err(|e| {
        let path = e.path().to_string();
        (path, shortened(e.into_inner().to_string()))
    })?;
    de.end().map_err(|e| (String::new(), e.to_string()))?;
    Ok(value)
}

/// serde's messages quote what they refuse whole (`unknown variant `…``, `invalid type:
/// string "…"`): a 10,000-character value would come back in the detail. Kept are the
/// start and the end, which says what was expected and where.
fn shortened(message: String) -> String {
    const KEPT: usize = 150;
    let chars = message.chars().count();
    if chars <= 2 * KEPT + 50 {
        return message;
    }
    let head: String = message.chars().take(KEPT).collect();
    let tail: String = message.chars().skip(chars - KEPT).collect();
    format!("{head}…({} characters left out)…{tail}", chars - 2 * KEPT)
}

/// A deserializer whose structs are JSON objects only (see the module).
#[derive(Debug)]
pub struct Objects<D>(D);

impl<D> Objects<D> {
    pub fn new(inner: D) -> Objects<D> {
        Objects(inner)
    }
}

/// What a struct is, in messages.
const OBJECT: &str = "a JSON object";

macro_rules! forward_deserialize {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method(Any(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Objects<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any deserialize_bool
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64 deserialize_char deserialize_str deserialize_string
        deserialize_bytes deserialize_byte_buf deserialize_option deserialize_unit
        deserialize_seq deserialize_map deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, Any(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        // serde_json's RawValue is read here by its name: it must reach serde_json as is.
        self.0.deserialize_newtype_struct(name, Any(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, Any(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple_struct(name, len, Any(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_struct(name, fields, Object(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        // Read as whatever it is, so that a wrong type is refused naming the variants.
        self.0.deserialize_any(OneOf { visitor, variants })
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// A visitor passed through, with whatever it is given wrapped again.
struct Any<V>(V);

macro_rules! forward_visit {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.0.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Any<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }

    forward_visit! {
        visit_bool(bool)
        visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64) visit_i128(i128)
        visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64) visit_u128(u128)
        visit_f32(f32) visit_f64(f64) visit_char(char)
        visit_str(&str) visit_borrowed_str(&'de str) visit_string(String)
        visit_bytes(&[u8]) visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_some(Objects(d))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_newtype_struct(Objects(d))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(Elements(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(Entries(map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.0.visit_enum(Variants(data))
    }
}

/// A struct's visitor: a JSON object, nothing else.
struct Object<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for Object<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(OBJECT)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(Entries(map))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<V::Value, A::Error> {
        Err(de::Error::invalid_type(Unexpected::Other("array"), &self))
    }
}

/// An enum's visitor: a variant's name (or, for data-carrying variants, an object of one
/// entry); anything else is refused naming the variants.
struct OneOf<V> {
    visitor: V,
    variants: &'static [&'static str],
}

impl<'de, V: Visitor<'de>> Visitor<'de> for OneOf<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.variants {
            [] => f.write_str("nothing (the enum has no variants)"),
            [only] => write!(f, "`{only}`"),
            [first, rest @ ..] => {
                write!(f, "one of `{first}`")?;
                rest.iter().try_for_each(|v| write!(f, ", `{v}`"))
            }
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<V::Value, E> {
        self.visitor
            .visit_enum(de::value::StrDeserializer::<E>::new(v))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<V::Value, E> {
        self.visitor
            .visit_enum(de::value::BorrowedStrDeserializer::<E>::new(v))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<V::Value, E> {
        self.visitor
            .visit_enum(de::value::StringDeserializer::<E>::new(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.visitor
            .visit_enum(de::value::MapAccessDeserializer::new(Entries(map)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<V::Value, A::Error> {
        Err(de::Error::invalid_type(Unexpected::Other("array"), &self))
    }
}

struct Elements<A>(A);

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Elements<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

struct Entries<A>(A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Entries<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        // Keys are strings in JSON: nothing in them to check.
        self.0.next_key_seed(seed)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.0.next_value_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

struct Variants<A>(A);

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Variants<A> {
    type Error = A::Error;
    type Variant = Variant<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let (value, variant) = self.0.variant_seed(seed)?;
        Ok((value, Variant(variant)))
    }
}

struct Variant<A>(A);

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Variant<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(Seed(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Any(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, Object(visitor))
    }
}

/// A seed whose deserializer is wrapped: how nested values stay strict.
struct Seed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Objects(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Outer<'a> {
        name: String,
        #[serde(borrow)]
        note: Option<Cow<'a, str>>,
        inner: Inner,
        #[serde(default)]
        list: Vec<Inner>,
        #[serde(default)]
        maybe: Option<Inner>,
        #[serde(default)]
        color: Option<Color>,
        #[serde(default, borrow)]
        raw: Option<&'a serde_json::value::RawValue>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        n: u32,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Color {
        Red,
        Blue,
    }

    fn failure(input: &str) -> (String, String) {
        match from_str_with_path::<Outer>(input) {
            Ok(v) => panic!("{input} was read as {v:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn objects_are_read_as_before() {
        let text = r#"{"name":"a","note":"b\"c","inner":{"n":1},"list":[{"n":2}],
            "maybe":{"n":3},"color":"blue","raw":[1,{"x":[]}]}"#;
        let strict: Outer = from_str(text).expect("strict");
        let plain: Outer = serde_json::from_str(text).expect("plain");
        assert_eq!(format!("{strict:?}"), format!("{plain:?}"));
        assert_eq!(strict.name, "a");
        assert_eq!(strict.inner, Inner { n: 1 });
        assert_eq!(strict.list, [Inner { n: 2 }]);
        assert_eq!(strict.maybe, Some(Inner { n: 3 }));
        assert_eq!(strict.color, Some(Color::Blue));
        assert_eq!(strict.raw.map(|r| r.get()), Some(r#"[1,{"x":[]}]"#));
        assert_eq!(strict.note.as_deref(), Some("b\"c"));
    }

    #[test]
    fn arrays_for_objects_are_refused_where_they_are() {
        for (input, path) in [
            (r#"["a", null, {"n": 1}]"#, "."),
            (r#"{"name": "a", "inner": [1]}"#, "inner"),
            (
                r#"{"name": "a", "inner": {"n": 1}, "list": [[2]]}"#,
                "list[0]",
            ),
            (r#"{"name": "a", "inner": {"n": 1}, "maybe": [3]}"#, "maybe"),
        ] {
            assert!(serde_json::from_str::<Outer>(input).is_ok(), "{input}");
            let (at, message) = failure(input);
            assert_eq!(at, path, "{input}");
            assert!(
                message.contains("invalid type: array, expected a JSON object"),
                "{input}: {message}"
            );
        }
    }

    #[test]
    fn other_wrong_types_name_an_object_too() {
        for input in ["null", "1", "\"x\"", "true"] {
            let (at, message) = failure(input);
            assert_eq!(at, ".");
            assert!(message.contains("expected a JSON object"), "{message}");
        }
    }

    #[test]
    fn enums_of_a_wrong_type_name_their_variants() {
        for bad in ["[\"red\"]", "1", "true", "{}"] {
            let input = format!(r#"{{"name": "a", "inner": {{"n": 1}}, "color": {bad}}}"#);
            let (at, message) = failure(&input);
            assert_eq!(at, "color", "{input}");
            if bad != "{}" {
                assert!(
                    message.contains("expected one of `red`, `blue`"),
                    "{bad}: {message}"
                );
            }
        }
        let input = r#"{"name": "a", "inner": {"n": 1}, "color": "green"}"#;
        let (_, message) = failure(input);
        assert!(message.contains("unknown variant `green`"), "{message}");
        let escaped = r#"{"name": "a", "inner": {"n": 1}, "color": "r\u0065d"}"#;
        assert_eq!(
            from_str::<Outer>(escaped).map(|o| o.color).ok(),
            Some(Some(Color::Red))
        );
    }

    #[test]
    fn long_refused_values_are_left_out_of_messages() {
        let long = "x".repeat(10_000);
        let input = format!(r#"{{"name": "a", "inner": {{"n": 1}}, "color": "{long}"}}"#);
        let (at, message) = failure(&input);
        assert_eq!(at, "color");
        assert!(message.len() < 500, "{message}");
        assert!(message.starts_with("unknown variant `xxx"), "{message}");
        assert!(message.contains("characters left out"), "{message}");
        assert!(
            message.ends_with("expected `red` or `blue` at line 1 column 10044"),
            "{message}"
        );
    }

    #[test]
    fn trailing_text_is_refused() {
        let (at, message) = failure(r#"{"name": "a", "inner": {"n": 1}} x"#);
        assert_eq!(at, "");
        assert!(message.contains("trailing characters"), "{message}");
    }
}
