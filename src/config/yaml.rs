//! The one place that names the YAML crate.
//!
//! A file's text becomes a [`Node`] tree: every mapping, sequence and scalar
//! with its line, column and length. Later stages work on that tree, so they
//! can report every problem with its place, not only the first one the parser
//! meets. Budgets (events, nodes, scalar bytes, alias replays) grow with the
//! size of the input: a large honest file passes, while an alias bomb or
//! runaway nesting stays an error however small the file is.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

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

#[derive(Clone, Debug, PartialEq)]
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
}

/// Parses one YAML document. An empty file is a [`NodeKind::Null`] root.
pub fn parse(text: &str) -> Result<Node, ParseError> {
    let size = text.len();
    // Every event, node and scalar byte of an honest file comes from at least
    // one byte of its text; only aliases can multiply them, so the budgets
    // are the size plus a margin, and replays are capped the same way.
    let scaled = size.saturating_add(4096);
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = scaled;
    budget.max_nodes = scaled;
    budget.max_total_scalar_bytes = scaled;
    budget.max_depth = MAX_DEPTH;
    budget.max_documents = 1;
    budget.max_anchors = scaled.min(budget.max_anchors.max(50_000));
    budget.max_aliases = scaled.min(budget.max_aliases.max(50_000));
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = scaled;
    options.alias_limits.max_replay_stack_depth = MAX_DEPTH;
    // Keep what a person would read as text as text: `0123` (a CSI with a
    // leading zero), `1_000`, and YAML 1.1 booleans such as `no` or `on`.
    options.leading_zero_numbers_as_strings = true;
    options.underscored_numbers_as_strings = true;
    options.strict_booleans = true;
    // Duplicate keys reach the tree, where checking names both places.
    options.duplicate_keys = serde_saphyr::options::DuplicateKeyPolicy::PassThrough;
    #[allow(clippy::needless_update)]
    serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|e| to_parse_error(&e))
}

/// What a limit breach means for a person, however deeply it is wrapped;
/// `None` when the error is not a limit. The bool says whether it is an
/// input limit (true) or really a matter of syntax (false).
fn limit_message(error: &serde_saphyr::Error) -> Option<(bool, String, String)> {
    use serde_saphyr::budget::BudgetBreach;
    let expands = || {
        (
            true,
            "the YAML expands to far more than the file holds (aliases repeated too often, as in a \"billion laughs\")".to_string(),
            "write the values out instead of nesting aliases of aliases".to_string(),
        )
    };
    let too_deep = || {
        (
            true,
            format!("mappings and lists are nested deeper than {MAX_DEPTH} levels"),
            "a config file needs at most five levels; check the indentation".to_string(),
        )
    };
    match error.without_snippet() {
        serde_saphyr::Error::AliasError { error, .. } => limit_message(error),
        serde_saphyr::Error::Budget { breach, .. } => Some(match breach {
            BudgetBreach::Depth { .. } => too_deep(),
            BudgetBreach::Documents { .. } => (
                false,
                "a config file holds one YAML document; this one has more (separated by `---`)"
                    .to_string(),
                "put each document in a file of its own".to_string(),
            ),
            _ => expands(),
        }),
        serde_saphyr::Error::AliasReplayLimitExceeded { .. }
        | serde_saphyr::Error::AliasExpansionLimitExceeded { .. }
        | serde_saphyr::Error::AliasReplayCounterOverflow { .. } => Some(expands()),
        serde_saphyr::Error::AliasReplayStackDepthExceeded { .. } => Some(too_deep()),
        other if other.to_string().contains("recursion limit exceeded") => Some(too_deep()),
        _ => None,
    }
}

fn to_parse_error(error: &serde_saphyr::Error) -> ParseError {
    let inner = error.without_snippet();
    let (line, column) = error
        .location()
        .map(|l| (to_u32(l.line()), to_u32(l.column())))
        .unwrap_or((1, 1));
    if let Some((limit, message, hint)) = limit_message(error) {
        return ParseError {
            limit,
            message,
            hint: Some(hint),
            line: line.max(1),
            column: column.max(1),
        };
    }
    let mut message = inner.to_string();
    // The crate appends the place; ours is printed in front instead.
    for suffix in [
        format!(" at line {line}, column {column}"),
        format!("line {line} column {column}: "),
    ] {
        if let Some(stripped) = message.strip_suffix(suffix.as_str()) {
            message = stripped.to_string();
        }
        if let Some(stripped) = message.strip_prefix(suffix.as_str()) {
            message = stripped.to_string();
        }
    }
    if let Some(stripped) = message.strip_prefix("error: ") {
        message = stripped.to_string();
    }
    ParseError {
        limit: false,
        message,
        hint: None,
        line: line.max(1),
        column: column.max(1),
    }
}

fn to_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        let spanned = serde_saphyr::Spanned::<NodeKind>::deserialize(deserializer)?;
        let at = spanned.referenced;
        let (len, raw) = match spanned.value {
            NodeKind::Seq(_) | NodeKind::Map(_) => (0, (0, 0)),
            _ => {
                let defined = spanned.defined.span();
                let raw = (
                    to_u32(defined.byte_offset().unwrap_or(0)),
                    to_u32(defined.byte_len().unwrap_or(0)),
                );
                (to_u32(at.span().len()), raw)
            }
        };
        Ok(Node {
            line: to_u32(at.line()),
            column: to_u32(at.column()),
            len,
            raw,
            kind: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for NodeKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<NodeKind, D::Error> {
        deserializer.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = NodeKind;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }
    fn visit_none<E>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<NodeKind, D::Error> {
        NodeKind::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<NodeKind, E> {
        Ok(NodeKind::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<NodeKind, E> {
        Ok(NodeKind::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<NodeKind, E> {
        Ok(NodeKind::UInt(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<NodeKind, E> {
        Ok(NodeKind::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeKind, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(NodeKind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeKind, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1024));
        while let Some(entry) = map.next_entry::<Node, Node>()? {
            entries.push(entry);
        }
        Ok(NodeKind::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_keep_their_place_and_length() {
        let root = parse("a: 1\nb:\n  c: \"x y\"\n").unwrap();
        let NodeKind::Map(entries) = &root.kind else {
            panic!("not a map: {root:?}")
        };
        let (key, value) = &entries[1];
        assert_eq!((key.line, key.column, key.len), (2, 1, 1));
        let NodeKind::Map(inner) = &value.kind else {
            panic!("not a map")
        };
        let (_, c) = &inner[0];
        assert_eq!((c.line, c.column, c.len), (3, 6, 5));
        assert_eq!(c.kind, NodeKind::Str("x y".into()));
    }

    #[test]
    fn text_that_looks_like_numbers_stays_text_where_it_would_lose_information() {
        let root = parse("a: 0123\nb: no\nc: 2027-06-30\n").unwrap();
        let NodeKind::Map(entries) = root.kind else {
            panic!()
        };
        let kinds: Vec<_> = entries.into_iter().map(|(_, v)| v.kind).collect();
        assert_eq!(
            kinds,
            vec![
                NodeKind::Str("0123".into()),
                NodeKind::Str("no".into()),
                NodeKind::Str("2027-06-30".into())
            ]
        );
    }

    #[test]
    fn duplicate_keys_reach_the_tree() {
        let root = parse("a: 1\na: 2\n").unwrap();
        let NodeKind::Map(entries) = root.kind else {
            panic!()
        };
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn syntax_errors_have_a_place() {
        let e = parse("a: [1, 2\n").unwrap_err();
        assert!(!e.limit);
        assert_eq!((e.line, e.column), (1, 4));
        assert!(e.message.contains("unclosed"), "{}", e.message);
    }

    #[test]
    fn alias_bombs_hit_a_limit() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8u8 {
            let prev = (b'a' + i) as char;
            let next = (b'b' + i) as char;
            bomb.push_str(&format!(
                "{next}: &{next} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        let e = parse(&bomb).unwrap_err();
        assert!(e.limit, "{e:?}");
    }

    #[test]
    fn deep_nesting_hits_a_limit() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse(&deep).unwrap_err().limit);
        let mut block = String::new();
        for depth in 0..100 {
            block.push_str(&" ".repeat(depth));
            block.push_str("k:\n");
        }
        assert!(parse(&block).unwrap_err().limit);
    }
}
