//! A serde deserializer over a [`Node`] tree.
//!
//! The raw config types derive `Deserialize` (and `JsonSchema`, from the same
//! definitions); this deserializer feeds them from the tree so that every
//! error carries the place of the node it is about, and so that each entry of
//! a config set can be read on its own: one bad user does not hide the next.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use super::raw::SPANNED_MARKER;
use super::yaml::{Node, NodeKind};
use crate::diag::{Location, did_you_mean};

/// What went wrong while reading a node into a type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeErrorKind {
    InvalidType,
    MissingField,
    UnknownField,
    DuplicateField,
}

#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct DeError {
    pub kind: DeErrorKind,
    pub message: String,
    pub hint: Option<String>,
    pub location: Option<Location>,
}

impl DeError {
    fn new(kind: DeErrorKind, message: String) -> Self {
        DeError {
            kind,
            message,
            hint: None,
            location: None,
        }
    }

    /// Places the error at `location` unless a deeper node already placed it.
    fn at(mut self, location: Location) -> Self {
        self.location.get_or_insert(location);
        self
    }
}

fn one_of(expected: &[&str]) -> String {
    let names: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
    match names.len() {
        0 => "nothing is allowed here".to_string(),
        1 => format!("the only one allowed is {}", names[0]),
        _ => format!("expected one of {}", names.join(", ")),
    }
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::new(DeErrorKind::InvalidType, msg.to_string())
    }

    fn invalid_type(unexpected: de::Unexpected, expected: &dyn de::Expected) -> Self {
        DeError::new(
            DeErrorKind::InvalidType,
            format!(
                "expected {expected}, found {}",
                describe_unexpected(&unexpected)
            ),
        )
    }

    fn invalid_value(unexpected: de::Unexpected, expected: &dyn de::Expected) -> Self {
        DeError::new(
            DeErrorKind::InvalidType,
            format!("invalid value {unexpected}, expected {expected}"),
        )
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut e = DeError::new(
            DeErrorKind::UnknownField,
            format!("unknown field `{field}`"),
        );
        e.hint = Some(match did_you_mean(field, expected.iter().copied()) {
            Some(best) => format!("did you mean `{best}`?"),
            None => one_of(expected),
        });
        e
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut e = DeError::new(
            DeErrorKind::InvalidType,
            format!("unknown value `{variant}`"),
        );
        e.hint = Some(match did_you_mean(variant, expected.iter().copied()) {
            Some(best) => format!("did you mean `{best}`? ({})", one_of(expected)),
            None => one_of(expected),
        });
        e
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::new(
            DeErrorKind::MissingField,
            format!("missing field `{field}`"),
        )
    }

    fn duplicate_field(field: &'static str) -> Self {
        DeError::new(
            DeErrorKind::DuplicateField,
            format!("field `{field}` is given twice"),
        )
    }
}

fn describe_unexpected(unexpected: &de::Unexpected) -> String {
    match unexpected {
        de::Unexpected::Map => "a mapping".into(),
        de::Unexpected::Seq => "a list".into(),
        de::Unexpected::Unit | de::Unexpected::Option => "nothing (null)".into(),
        other => other.to_string(),
    }
}

/// Deserializes one node of the file with index `file`, whose text is `source`.
#[derive(Clone, Copy)]
pub struct NodeDe<'a> {
    pub node: &'a Node,
    pub file: usize,
    pub source: &'a str,
}

impl<'a> NodeDe<'a> {
    pub fn new(node: &'a Node, file: usize, source: &'a str) -> Self {
        NodeDe { node, file, source }
    }

    pub fn location(&self) -> Location {
        location_of(self.node, self.file)
    }

    fn invalid(&self, expected: &str) -> DeError {
        DeError::new(
            DeErrorKind::InvalidType,
            format!("expected {expected}, found {}", self.node.kind.describe()),
        )
        .at(self.location())
    }
}

pub fn location_of(node: &Node, file: usize) -> Location {
    Location {
        file: file as u32,
        line: node.line,
        column: node.column,
        len: node.len,
    }
}

impl<'de, 'a> Deserializer<'de> for NodeDe<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let here = self.location();
        let result = match &self.node.kind {
            NodeKind::Null => visitor.visit_unit(),
            NodeKind::Bool(b) => visitor.visit_bool(*b),
            NodeKind::Int(i) => visitor.visit_i64(*i),
            NodeKind::UInt(u) => visitor.visit_u64(*u),
            NodeKind::Float(f) => visitor.visit_f64(*f),
            NodeKind::Str(s) => visitor.visit_str(s),
            NodeKind::Seq(items) => visitor.visit_seq(Items {
                iter: items.iter(),
                file: self.file,
                source: self.source,
            }),
            NodeKind::Map(entries) => visitor.visit_map(Entries {
                iter: entries.iter(),
                file: self.file,
                source: self.source,
                value: None,
            }),
        };
        result.map_err(|e| e.at(here))
    }

    /// Strings accept any scalar as its text: `csi: 20817431` reads as the
    /// string `"20817431"`, as a person writing it means.
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.scalar_text(self.source) {
            Some(text) => visitor
                .visit_str(&text)
                .map_err(|e: DeError| e.at(self.location())),
            None => Err(self.invalid("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.kind {
            NodeKind::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Seq(_) => self.deserialize_any(visitor),
            _ => Err(self.invalid("a list")),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Map(_) => self.deserialize_any(visitor),
            _ => Err(self.invalid("a mapping")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.node.scalar_text(self.source) {
            Some(text) => visitor
                .visit_enum(text.as_ref().into_deserializer())
                .map_err(|e: DeError| e.at(self.location())),
            None => Err(self.invalid(&one_of(variants).replace("expected one of", "one of"))),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == SPANNED_MARKER {
            visitor.visit_map(SpanAccess { de: self, step: 0 })
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char
        bytes byte_buf unit unit_struct tuple tuple_struct ignored_any
    }
}

struct Items<'a> {
    iter: std::slice::Iter<'a, Node>,
    file: usize,
    source: &'a str,
}

impl<'de, 'a> SeqAccess<'de> for Items<'a> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.iter.next() {
            Some(node) => seed
                .deserialize(NodeDe::new(node, self.file, self.source))
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct Entries<'a> {
    iter: std::slice::Iter<'a, (Node, Node)>,
    file: usize,
    source: &'a str,
    value: Option<&'a Node>,
}

impl<'de, 'a> MapAccess<'de> for Entries<'a> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.iter.next() {
            Some((key, value)) => {
                self.value = Some(value);
                let de = NodeDe::new(key, self.file, self.source);
                seed.deserialize(de)
                    .map(Some)
                    .map_err(|e| e.at(de.location()))
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let value = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a mapping value was read before its key"))?;
        seed.deserialize(NodeDe::new(value, self.file, self.source))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// Hands a [`super::raw::Spanned`] its place, then its value.
struct SpanAccess<'a> {
    de: NodeDe<'a>,
    step: u8,
}

const SPAN_KEYS: [&str; 5] = ["file", "line", "column", "len", "value"];

impl<'de, 'a> MapAccess<'de> for SpanAccess<'a> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match SPAN_KEYS.get(usize::from(self.step)) {
            Some(key) => seed.deserialize((*key).into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let node = self.de.node;
        let step = self.step;
        self.step += 1;
        match step {
            0 => seed.deserialize((self.de.file as u64).into_deserializer()),
            1 => seed.deserialize(u64::from(node.line).into_deserializer()),
            2 => seed.deserialize(u64::from(node.column).into_deserializer()),
            3 => seed.deserialize(u64::from(node.len).into_deserializer()),
            _ => seed.deserialize(self.de),
        }
    }
}
