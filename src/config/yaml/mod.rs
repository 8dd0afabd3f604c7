//! The one place that names the YAML crate (serde-saphyr) and its parser
//! (granit-parser).
//!
//! A file's text becomes a [`Node`] tree: every mapping, sequence and scalar
//! with its line, column and length. Later stages work on that tree, so they
//! can report every problem with its place, not only the first one the parser
//! meets. Budgets (events, nodes, scalar bytes, alias replays) grow with the
//! size of the input: a large honest file passes, while an alias bomb or
//! runaway nesting stays an error however small the file is.
//!
//! The tree of an ordinary file is built from the parser's events
//! ([`events`]); serde-saphyr's deserializer, through `Spanned<NodeKind>`,
//! builds it for every other file and gives every error (see [`parse`]).
//!
//! Here: the tree, [`parse`] and the budgets' sizes; in `events`, the
//! builder from events, and in `scalar`, how it reads a scalar's type; in
//! `budgets`, the file held to its budgets before the deserializer reads
//! it; in `deserializer`, the tree through serde and its errors made to
//! read for a person.

mod budgets;
mod deserializer;
mod events;
mod scalar;

use deserializer::parse_with_serde;

/// Deepest nesting of mappings and sequences a config file may use. The format
/// itself needs five levels; the margin is for anchors and flow style.
pub const MAX_DEPTH: usize = 32;

/// A YAML value with where it stands in its file.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub line: u32,
    pub column: u32,
    /// Length in characters of the scalar's text (0 for collections).
    pub len: u32,
    /// Where a scalar's text is written, as a byte range of the file (for an
    /// alias, the anchored original): a number is read back as written.
    pub raw: (u32, u32),
    pub kind: NodeKind,
}

#[derive(Clone, Debug)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// Equal kinds hold equal values; a float not-a-number (`.nan`) equals
/// another, so that two trees of the same text are equal.
impl PartialEq for NodeKind {
    fn eq(&self, other: &NodeKind) -> bool {
        use NodeKind::*;
        match (self, other) {
            (Null, Null) => true,
            (Bool(a), Bool(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (UInt(a), UInt(b)) => a == b,
            (Float(a), Float(b)) => a == b || (a.is_nan() && b.is_nan()),
            (Str(a), Str(b)) => a == b,
            (Seq(a), Seq(b)) => a == b,
            (Map(a), Map(b)) => a == b,
            _ => false,
        }
    }
}

impl NodeKind {
    /// What the value is, as a noun for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            NodeKind::Null => "nothing (null)",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Int(_) | NodeKind::UInt(_) => "an integer",
            NodeKind::Float(_) => "a number",
            NodeKind::Str(_) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// The text of a scalar as a string field reads it: a string's value, or
    /// a number or boolean exactly as written in `source` (`0x1F` stays
    /// `0x1F`, not `31`); `None` for null and collections.
    pub fn scalar_text<'a>(&'a self, source: &'a str) -> Option<std::borrow::Cow<'a, str>> {
        use std::borrow::Cow;
        let written = || {
            let (start, len) = (self.raw.0 as usize, self.raw.1 as usize);
            source.get(start..start + len).map(Cow::Borrowed)
        };
        match &self.kind {
            NodeKind::Str(s) => Some(Cow::Borrowed(s)),
            NodeKind::Bool(b) => written().or_else(|| Some(Cow::Owned(b.to_string()))),
            NodeKind::Int(i) => written().or_else(|| Some(Cow::Owned(i.to_string()))),
            NodeKind::UInt(u) => written().or_else(|| Some(Cow::Owned(u.to_string()))),
            NodeKind::Float(f) => written().or_else(|| Some(Cow::Owned(f.to_string()))),
            NodeKind::Null | NodeKind::Seq(_) | NodeKind::Map(_) => None,
        }
    }
}

/// Why a file could not become a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// True when a budget or limit was hit rather than the syntax being wrong.
    pub limit: bool,
    pub message: String,
    pub hint: Option<String>,
    pub line: u32,
    pub column: u32,
    /// Length in characters of what the error is about (at least 1).
    pub len: u32,
}

/// Parses one YAML document. An empty file is a [`NodeKind::Null`] root.
///
/// The tree is built straight from the parser's events, which is the whole
/// cost for an honest file. What that builder does not take on itself — a
/// syntax error, a budget or limit, more than one document, anchors and
/// aliases, tags, merge keys — it leaves to the YAML crate's deserializer,
/// which reads the file again from the start, after [`budgets`] has held the
/// file to its budgets, and either fails with the message and place it has
/// always given or builds the tree. Both ways give the same tree for the
/// same file (see the tests).
pub fn parse(text: &str) -> Result<Node, ParseError> {
    match events::tree(text) {
        Some(root) => Ok(root),
        None => parse_with_serde(text),
    }
}

/// Every event, node and byte of a value in an honest file comes from at
/// least one byte of its text, so what the text holds is budgeted at its
/// size plus a margin.
fn scaled_budget(size: usize) -> usize {
    size.saturating_add(4096)
}

/// How many times the text's own budget its aliases may copy.
const ALIAS_FACTOR: usize = 4;

/// What aliases may copy in all, in events and in bytes of values: a few
/// times the text's budget. An alias takes at least two bytes (`*a`), and in
/// a config file a line of twenty or more, so an honest file that shares
/// values many times stays well inside it; a "billion laughs", whose copies
/// multiply with every level, leaves it after a few of its lines.
fn alias_budget(size: usize) -> usize {
    scaled_budget(size).saturating_mul(ALIAS_FACTOR)
}

fn to_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
