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
    if text.len() >= halves::FROM
        && let Some(root) = halves::tree(text)
    {
        return Ok(root);
    }
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

/// The tree as the YAML crate's deserializer builds it. [`budgets`] holds
/// the text to its budgets first, placing a breach where it happens; the
/// deserializer's own budgets are set no tighter than those, and its
/// heuristic that takes many aliases of few anchors for an attack is off:
/// sharing one value many times is what anchors are for.
fn parse_with_serde(text: &str) -> Result<Node, ParseError> {
    budgets::check(text)?;
    let scaled = scaled_budget(text.len());
    let all = scaled.saturating_add(alias_budget(text.len()));
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = all;
    budget.max_nodes = all;
    budget.max_total_scalar_bytes = all;
    budget.max_depth = MAX_DEPTH;
    budget.max_documents = 1;
    budget.max_anchors = scaled;
    budget.max_aliases = scaled;
    budget.max_merge_keys = all;
    budget.max_recorded_anchor_events = all;
    budget.max_recorded_anchor_bytes = all;
    budget.enforce_alias_anchor_ratio = false;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = alias_budget(text.len());
    options.alias_limits.max_replay_stack_depth = MAX_DEPTH;
    // Keep what a person would read as text as text: `0123` (a CSI with a
    // leading zero), `1_000`, and YAML 1.1 booleans such as `no` or `on`.
    // (`events::scalar` resolves plain scalars the same way.)
    options.leading_zero_numbers_as_strings = true;
    options.underscored_numbers_as_strings = true;
    options.strict_booleans = true;
    // `.inf`, `.nan` and `1e999` are numbers like any other: where a string
    // is expected they read as written (`Node::scalar_text`).
    options.non_finite_float_policy = serde_saphyr::options::NonFiniteFloatPolicy::PassThrough;
    // Duplicate keys reach the tree, where checking names both places.
    options.duplicate_keys = serde_saphyr::options::DuplicateKeyPolicy::PassThrough;
    #[allow(clippy::needless_update)]
    serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|e| to_parse_error(&e, text))
}

/// The message and hint of nesting past [`MAX_DEPTH`] in the text.
fn too_deep() -> (String, String) {
    (
        format!("mappings and lists are nested deeper than {MAX_DEPTH} levels"),
        "a config file needs at most five levels; check the indentation".to_string(),
    )
}

/// What a limit breach the deserializer meets means for a person, however
/// deeply it is wrapped; `None` when the error is not a limit. The bool
/// says whether it is an input limit (true) or really a matter of syntax
/// (false). [`budgets`] stops a file before the deserializer meets any of
/// its budgets, so this is a second line only.
fn limit_message(error: &serde_saphyr::Error) -> Option<(bool, String, String)> {
    use serde_saphyr::budget::BudgetBreach;
    let copies = || {
        (
            true,
            "the aliases copy more than the file's size allows".to_string(),
            "write the values out instead of nesting aliases of aliases".to_string(),
        )
    };
    let deep = || {
        let (message, hint) = too_deep();
        (true, message, hint)
    };
    match error.without_snippet() {
        serde_saphyr::Error::AliasError { error, .. } => limit_message(error),
        serde_saphyr::Error::Budget { breach, .. } => Some(match breach {
            BudgetBreach::Depth { .. } => deep(),
            BudgetBreach::Documents { .. } => (
                false,
                "a config file holds one YAML document; this one has more (separated by `---`)"
                    .to_string(),
                "put each document in a file of its own".to_string(),
            ),
            BudgetBreach::Aliases { .. }
            | BudgetBreach::AliasAnchorRatio { .. }
            | BudgetBreach::RecordedAnchorEvents { .. }
            | BudgetBreach::RecordedAnchorBytes { .. } => copies(),
            _ => (
                true,
                "the YAML holds more than the file's size allows".to_string(),
                "a config file holds far fewer values than bytes; check what wrote this file"
                    .to_string(),
            ),
        }),
        serde_saphyr::Error::AliasReplayLimitExceeded { .. }
        | serde_saphyr::Error::AliasExpansionLimitExceeded { .. }
        | serde_saphyr::Error::AliasReplayCounterOverflow { .. } => Some(copies()),
        serde_saphyr::Error::AliasReplayStackDepthExceeded { .. } => Some(deep()),
        other if other.to_string().contains("recursion limit exceeded") => Some(deep()),
        _ => None,
    }
}

fn to_parse_error(error: &serde_saphyr::Error, text: &str) -> ParseError {
    let inner = error.without_snippet();
    let (line, column) = error
        .location()
        .map(|l| (to_u32(l.line()), to_u32(l.column())))
        .unwrap_or((1, 1));
    if let Some((limit, message, hint)) = limit_message(error) {
        // A limit is about something written: never the empty end of a file.
        let (line, column) = written_place(text, line.max(1), column.max(1));
        return ParseError {
            limit,
            message,
            hint: Some(hint),
            line,
            column,
            len: 1,
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
    // The parser blames a tab where it meets it: often the end of the line
    // before, whose value the tab seemed to continue. Point at the tab.
    if message.contains("tab")
        && let Some((line, column)) = indenting_tab(text, line.max(1))
    {
        return ParseError {
            limit: false,
            message: "this line is indented with a tab, and YAML indents with spaces only"
                .to_string(),
            hint: Some("replace the tab with spaces".to_string()),
            line,
            column,
            len: 1,
        };
    }
    ParseError {
        limit: false,
        message,
        hint: None,
        line: line.max(1),
        column: column.max(1),
        len: 1,
    }
}

/// The first tab in the indentation of a line of `text` from line `from`
/// on, as (line, column), within the top-level entry `from` is in (up to
/// the next line that starts at column 1).
fn indenting_tab(text: &str, from: u32) -> Option<(u32, u32)> {
    let skip = usize::try_from(from).ok()?.checked_sub(1)?;
    for (i, line) in crate::diag::lines(text).enumerate().skip(skip) {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        if let Some(at) = line[..indent].find('\t') {
            return Some((to_u32(i as u64 + 1), to_u32(at as u64 + 1)));
        }
        let top_level = line.starts_with(|c: char| c != ' ' && c != '#');
        if i > skip && top_level {
            return None;
        }
    }
    None
}

/// `(line, column)` when a character of `text` is written there; else (past
/// the end of its line, or on the empty line after the last break) the last
/// character written before it.
fn written_place(text: &str, line: u32, column: u32) -> (u32, u32) {
    let mut last = (1, 1);
    for (number, written) in crate::diag::lines(text)
        .enumerate()
        .map(|(i, l)| (i + 1, l))
    {
        let number = to_u32(number as u64);
        let chars = to_u32(written.trim_end().chars().count() as u64);
        if number == line && column <= chars {
            return (line, column);
        }
        if number > line {
            break;
        }
        if chars > 0 {
            last = (number, chars);
        }
    }
    last
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

/// The tree built straight from granit-parser's events (the parser the YAML
/// crate itself reads with, with the same options), for the files it can
/// build exactly as the deserializer would. `None` means "not here": the
/// file is either wrong (a syntax error, a budget or limit, a second
/// document) or uses what only the deserializer
/// implements (anchors and aliases, tags, merge keys), and `parse` asks the
/// deserializer instead.
mod events {
    use super::{MAX_DEPTH, Node, NodeKind, scaled_budget};
    use granit_parser::{Event, Parser, ScalarStyle, Span, StrInput};
    use std::borrow::Cow;

    /// The builder stops: the deserializer decides.
    struct Defer;

    type Step<T> = Result<T, Defer>;

    pub(super) fn tree(text: &str) -> Option<Node> {
        within(text, scaled_budget(text.len()))
    }

    /// The tree of `text` within budgets of `scaled` events, nodes and
    /// scalar bytes.
    pub(super) fn within(text: &str, scaled: usize) -> Option<Node> {
        // The YAML crate's parser options for these budgets: the parser's
        // defaults (its nesting limits are above `MAX_DEPTH`), no comments.
        let mut options = granit_parser::Options::default();
        options.emit_comments = false;
        options.block_nesting_limit = options.block_nesting_limit.max(MAX_DEPTH + 1);
        let mut builder = Builder {
            parser: Parser::with_options(StrInput::new(text), options),
            limit: scaled,
            events: 0,
            nodes: 0,
            scalar_bytes: 0,
            items: Vec::new(),
            entries: Vec::new(),
        };
        builder.stream().ok()
    }

    struct Builder<'a> {
        parser: Parser<'a, StrInput<'a>>,
        /// The budget of events, nodes and scalar bytes (as the crate's).
        limit: usize,
        events: usize,
        nodes: usize,
        scalar_bytes: usize,
        /// The items of the open sequences, innermost last: each becomes a
        /// `Vec` of its exact size when its sequence ends.
        items: Vec<Node>,
        /// The entries of the open mappings, likewise.
        entries: Vec<(Node, Node)>,
    }

    impl<'a> Builder<'a> {
        /// The next event, counted against the budget of events.
        fn next(&mut self) -> Step<Option<(Event<'a>, Span)>> {
            match self.parser.next() {
                None => Ok(None),
                Some(Err(_)) => Err(Defer),
                Some(Ok(next)) => {
                    self.events += 1;
                    if self.events > self.limit {
                        return Err(Defer);
                    }
                    Ok(Some(next))
                }
            }
        }

        /// The next event, which must be a node's.
        fn next_node(&mut self, depth: usize) -> Step<Node> {
            match self.next()? {
                Some((event, span)) => self.node(event, &span, depth),
                None => Err(Defer),
            }
        }

        /// The whole stream: one document's root, then nothing but the end.
        fn stream(&mut self) -> Step<Node> {
            let mut root = None;
            let mut documents = 0;
            // The place of an empty stream's null root: where it ends.
            let mut end = Span::default();
            while let Some((event, span)) = self.next()? {
                match event {
                    Event::StreamEnd => end = span,
                    Event::StreamStart | Event::DocumentEnd => {}
                    Event::DocumentStart(..) => {
                        documents += 1;
                        if documents > 1 {
                            return Err(Defer);
                        }
                    }
                    Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..)
                        if root.is_none() =>
                    {
                        root = Some(self.node(event, &span, 0)?);
                    }
                    _ => return Err(Defer),
                }
            }
            Ok(root.unwrap_or_else(|| {
                let (line, column, len, raw) = place(&end);
                Node {
                    line,
                    column,
                    len,
                    raw,
                    kind: NodeKind::Null,
                }
            }))
        }

        /// The node that `event` starts, inside `depth` collections.
        fn node(&mut self, event: Event<'a>, span: &Span, depth: usize) -> Step<Node> {
            self.nodes += 1;
            if self.nodes > self.limit {
                return Err(Defer);
            }
            match event {
                Event::Scalar(value, style, 0, None) => {
                    self.scalar_bytes = self.scalar_bytes.saturating_add(value.len());
                    if self.scalar_bytes > self.limit {
                        return Err(Defer);
                    }
                    let (line, column, len, raw) = place(span);
                    Ok(Node {
                        line,
                        column,
                        len,
                        raw,
                        kind: scalar(value, style),
                    })
                }
                Event::SequenceStart(_, 0, None) => {
                    let depth = self.enter(depth)?;
                    let start = self.items.len();
                    loop {
                        match self.next()? {
                            Some((Event::SequenceEnd, _)) => break,
                            Some((event, span)) => {
                                let item = self.node(event, &span, depth)?;
                                self.items.push(item);
                            }
                            None => return Err(Defer),
                        }
                    }
                    let items = self.items.split_off(start);
                    Ok(collection(span, NodeKind::Seq(items)))
                }
                Event::MappingStart(_, 0, None) => {
                    let depth = self.enter(depth)?;
                    let start = self.entries.len();
                    loop {
                        let key = match self.next()? {
                            Some((Event::MappingEnd, _)) => break,
                            Some((event, _)) if is_merge_key(&event) => return Err(Defer),
                            Some((event, span)) => self.node(event, &span, depth)?,
                            None => return Err(Defer),
                        };
                        let value = self.next_node(depth)?;
                        self.entries.push((key, value));
                    }
                    let entries = self.entries.split_off(start);
                    Ok(collection(span, NodeKind::Map(entries)))
                }
                // Anchors, aliases, tags, and any event that is not a node.
                _ => Err(Defer),
            }
        }

        /// One level deeper, within `MAX_DEPTH`.
        fn enter(&self, depth: usize) -> Step<usize> {
            let depth = depth + 1;
            if depth > MAX_DEPTH {
                return Err(Defer);
            }
            Ok(depth)
        }
    }

    /// A plain `<<` key: a merge key, which the deserializer expands.
    fn is_merge_key(event: &Event<'_>) -> bool {
        matches!(event, Event::Scalar(value, ScalarStyle::Plain, _, _) if value == "<<")
    }

    /// A collection's node: its place, and neither length nor text.
    fn collection(span: &Span, kind: NodeKind) -> Node {
        let (line, column) = line_column(span);
        Node {
            line,
            column,
            len: 0,
            raw: (0, 0),
            kind,
        }
    }

    /// Line and column (both from 1) of where `span` starts.
    fn line_column(span: &Span) -> (u32, u32) {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        (
            clamp(span.start.line()),
            clamp(span.start.col().saturating_add(1)),
        )
    }

    /// Line, column, length in characters and byte range of `span`, as the
    /// YAML crate's locations carry them: a length or offset past `u32`
    /// saturates one below `u32::MAX`, and a byte range that does not fit is
    /// unknown, `(0, 0)`.
    fn place(span: &Span) -> (u32, u32, u32, (u32, u32)) {
        const MAX: usize = u32::MAX as usize;
        let index = |n: usize| u32::try_from(n.min(MAX - 1)).unwrap_or(u32::MAX - 1);
        let (line, column) = line_column(span);
        let len = index(span.end.index().saturating_sub(span.start.index()));
        let raw = match (span.start.byte_offset(), span.end.byte_offset()) {
            (Some(start), Some(end)) => {
                let bytes = end.saturating_sub(start);
                if start <= MAX && bytes <= MAX {
                    (index(start), index(bytes))
                } else {
                    (0, 0)
                }
            }
            _ => (0, 0),
        };
        (line, column, len, raw)
    }

    /// An untagged scalar's value, resolved as the YAML crate's
    /// `deserialize_any` resolves it with the options of `parse`: quoted and
    /// block scalars are strings; a plain one is null (`~`, `null`, empty),
    /// a YAML 1.2 boolean, an integer (`i64` when negative, else `u64`) or a
    /// float (`.inf`, `.nan` and `1e999` too), or else a string — and a string
    /// too where a number would lose how it was written (`0123`, `1_000`,
    /// `0X1F`, `-.nan`).
    fn scalar(value: Cow<'_, str>, style: ScalarStyle) -> NodeKind {
        if style != ScalarStyle::Plain {
            return NodeKind::Str(value.into_owned());
        }
        if matches!(&*value, "" | "~" | "null" | "Null" | "NULL") {
            return NodeKind::Null;
        }
        let t = trim(&value);
        match t {
            "true" | "True" | "TRUE" => return NodeKind::Bool(true),
            "false" | "False" | "FALSE" => return NodeKind::Bool(false),
            _ => {}
        }
        let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
        // Every number, and every spelling kept as text below, starts with
        // a digit or a dot after its sign: anything else is text, at once.
        if !matches!(unsigned.as_bytes().first(), Some(b'0'..=b'9' | b'.')) {
            return NodeKind::Str(value.into_owned());
        }
        let uppercase_radix = matches!(unsigned.as_bytes(), [b'0', b'X' | b'O' | b'B', ..]);
        if uppercase_radix || is_signed_nan(t) || leading_zero_decimal(t) || t.contains('_') {
            return NodeKind::Str(value.into_owned());
        }
        if t.starts_with('-') {
            if let Some(n) = signed(t) {
                return NodeKind::Int(n);
            }
        } else if let Some(n) = unsigned_int(t) {
            return NodeKind::UInt(n);
        }
        match float(t) {
            Some(f) => NodeKind::Float(f),
            None => NodeKind::Str(value.into_owned()),
        }
    }

    /// The padding scalar conversion ignores (ASCII, so the cuts fall
    /// between characters).
    fn trim(s: &str) -> &str {
        let pad = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
        let bytes = s.as_bytes();
        let start = bytes.iter().position(|b| !pad(b)).unwrap_or(bytes.len());
        let end = bytes
            .iter()
            .rposition(|b| !pad(b))
            .map_or(start, |last| last + 1);
        &s[start..end]
    }

    fn is_signed_nan(t: &str) -> bool {
        t.strip_prefix(['+', '-'])
            .is_some_and(|unsigned| matches!(unsigned, ".nan" | ".NaN" | ".NAN"))
    }

    /// A decimal integer with a redundant leading zero: `0127`, `-0127`.
    fn leading_zero_decimal(t: &str) -> bool {
        let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
        digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
    }

    /// The radix of an integer's digits (`0x`, `0o`, `0b`, else 10).
    fn radix_and_digits(rest: &str) -> (u32, &str) {
        if let Some(r) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
            (16, r)
        } else if let Some(r) = rest.strip_prefix("0o").or_else(|| rest.strip_prefix("0O")) {
            (8, r)
        } else if let Some(r) = rest.strip_prefix("0b").or_else(|| rest.strip_prefix("0B")) {
            (2, r)
        } else {
            (10, rest)
        }
    }

    /// Digits in `radix`, with single underscores between them.
    fn digits_u128(digits: &str, radix: u32) -> Option<u128> {
        let bytes = digits.as_bytes();
        let mut value: u128 = 0;
        let mut saw = false;
        for (i, &b) in bytes.iter().enumerate() {
            let d = match b {
                b'_' => {
                    let prev_ok = i > 0 && bytes[i - 1] != b'_';
                    let next_ok = i + 1 < bytes.len() && bytes[i + 1] != b'_';
                    if !prev_ok || !next_ok {
                        return None;
                    }
                    continue;
                }
                b'0'..=b'9' => u32::from(b - b'0'),
                b'a'..=b'f' if radix > 10 => 10 + u32::from(b - b'a'),
                b'A'..=b'F' if radix > 10 => 10 + u32::from(b - b'A'),
                _ => return None,
            };
            if d >= radix {
                return None;
            }
            value = value
                .checked_mul(u128::from(radix))?
                .checked_add(u128::from(d))?;
            saw = true;
        }
        saw.then_some(value)
    }

    /// A trimmed integer that starts with `-`.
    fn signed(t: &str) -> Option<i64> {
        let (negative, rest) = match t.strip_prefix('+') {
            Some(r) => (false, r),
            None => match t.strip_prefix('-') {
                Some(r) => (true, r),
                None => (false, t),
            },
        };
        let (radix, digits) = radix_and_digits(rest);
        if radix == 10 && digits.starts_with('0') && digits != "0" {
            return None;
        }
        let magnitude = digits_u128(digits, radix)?;
        let value: i128 = if negative {
            if magnitude == (i128::MAX as u128) + 1 {
                i128::MIN
            } else {
                i128::try_from(magnitude).ok()?.checked_neg()?
            }
        } else {
            i128::try_from(magnitude).ok()?
        };
        i64::try_from(value).ok()
    }

    /// A trimmed integer that does not start with `-`.
    fn unsigned_int(t: &str) -> Option<u64> {
        let rest = t.strip_prefix('+').unwrap_or(t);
        let (radix, digits) = radix_and_digits(rest);
        if radix == 10 && digits.starts_with('0') && digits != "0" {
            return None;
        }
        u64::try_from(digits_u128(digits, radix)?).ok()
    }

    /// A trimmed float as YAML 1.2 writes it (`.inf`, `-.inf`, `.nan` too),
    /// or a numeral too large for `f64` as an infinity.
    fn float(t: &str) -> Option<f64> {
        let (negative, unsigned) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        match unsigned {
            ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
            ".inf" | ".Inf" | ".INF" if negative => return Some(f64::NEG_INFINITY),
            ".inf" | ".Inf" | ".INF" => return Some(f64::INFINITY),
            _ => {}
        }
        let parsed = t.parse::<f64>().ok()?;
        if parsed.is_finite() {
            return Some(parsed);
        }
        // `inf` and `nan` are words, not numerals: only an overflow counts.
        let numeral = t
            .strip_prefix(['+', '-'])
            .unwrap_or(t)
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_digit);
        (numeral && parsed.is_infinite()).then_some(parsed)
    }
}

/// The budgets of a file that the event builder leaves to the deserializer,
/// counted on the parser's events before the deserializer reads it: what
/// the text holds (events, values, bytes of values, nesting), and what its
/// aliases copy. A breach is an error at the event that goes over — for
/// aliases, the `*alias` whose copy does — that says which budget, and why:
/// an anchor that holds aliases itself (as in a "billion laughs") is told
/// apart from one large value shared often. The deserializer then runs with
/// budgets no tighter than these (see [`parse_with_serde`]), so it stops on
/// none of them first.
mod budgets {
    use super::{MAX_DEPTH, ParseError, alias_budget, scaled_budget, to_u32};
    use granit_parser::{Event, Parser, Span, StrInput, Tag};

    /// What one alias of an anchor copies, its own aliases' copies included.
    struct Anchor {
        events: usize,
        bytes: usize,
        /// Levels of nesting its value spans (0 for a scalar).
        depth: usize,
        /// Whether its value holds aliases.
        nested: bool,
        /// How often it has been copied.
        uses: usize,
        /// Its name and the line of `&name`.
        name: String,
        line: u32,
    }

    /// An anchored collection not closed yet.
    struct Open {
        id: usize,
        /// The level of the collection itself.
        depth: usize,
        /// The events and bytes counted (read and copied) before it.
        events: usize,
        bytes: usize,
        /// The deepest level under it so far.
        deepest: usize,
        nested: bool,
        name: String,
        line: u32,
    }

    struct Count {
        size: usize,
        /// The budget of what the text holds, and of what aliases copy.
        text: usize,
        copies: usize,
        /// Events, values (nodes) and bytes of values in the text.
        events: usize,
        nodes: usize,
        bytes: usize,
        /// Events and bytes of values copied through aliases.
        copied_events: usize,
        copied_bytes: usize,
        /// Events and bytes of values the deserializer keeps to replay
        /// anchors: each once for every anchored collection open around it.
        kept_events: usize,
        kept_bytes: usize,
        depth: usize,
        /// Complete anchors, by the parser's ids (dense, from 1).
        anchors: Vec<Option<Anchor>>,
        open: Vec<Open>,
    }

    /// Holds `text` to its budgets. `Ok` also where the text is not
    /// well-formed YAML, or holds a second document or an alias of no
    /// anchor: the deserializer reports those, there.
    pub(super) fn check(text: &str) -> Result<(), ParseError> {
        let mut options = granit_parser::Options::default();
        options.emit_comments = false;
        options.emit_anchor_events = true;
        options.block_nesting_limit = options.block_nesting_limit.max(MAX_DEPTH + 1);
        let mut count = Count {
            size: text.len(),
            text: scaled_budget(text.len()),
            copies: alias_budget(text.len()),
            events: 0,
            nodes: 0,
            bytes: 0,
            copied_events: 0,
            copied_bytes: 0,
            kept_events: 0,
            kept_bytes: 0,
            depth: 0,
            anchors: Vec::new(),
            open: Vec::new(),
        };
        let mut documents = 0;
        for next in Parser::with_options(StrInput::new(text), options) {
            let Ok((event, span)) = next else {
                return Ok(());
            };
            match event {
                Event::DocumentStart(..) => {
                    documents += 1;
                    if documents > 1 {
                        return Ok(());
                    }
                    count.read(&span, 0, 0)?;
                }
                Event::Scalar(value, _, anchor, tag) => {
                    let bytes = value.len().saturating_add(tag_len(tag.as_deref()));
                    count.read(&span, 1, bytes)?;
                    count.keep(&span, 1, bytes, usize::from(anchor != 0))?;
                    if anchor != 0 {
                        count.complete(anchor, 1, bytes, 0, false, String::new(), 0);
                    }
                }
                Event::SequenceStart(_, anchor, tag) | Event::MappingStart(_, anchor, tag) => {
                    let bytes = tag_len(tag.as_deref());
                    count.read(&span, 1, bytes)?;
                    count.keep(&span, 1, bytes, usize::from(anchor != 0))?;
                    count.depth += 1;
                    if count.depth > MAX_DEPTH {
                        let (message, hint) = super::too_deep();
                        return Err(limit(&span, message, hint));
                    }
                    if let Some(open) = count.open.last_mut() {
                        open.deepest = open.deepest.max(count.depth);
                    }
                    if anchor != 0 {
                        count.open.push(Open {
                            id: anchor,
                            depth: count.depth,
                            events: count.events + count.copied_events - 1,
                            bytes: count.bytes + count.copied_bytes - bytes,
                            deepest: count.depth,
                            nested: false,
                            name: String::new(),
                            line: 0,
                        });
                    }
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    count.read(&span, 0, 0)?;
                    count.keep(&span, 1, 0, 0)?;
                    if count.open.last().is_some_and(|o| o.depth == count.depth) {
                        count.close();
                    }
                    count.depth = count.depth.saturating_sub(1);
                }
                Event::Alias(id) => {
                    // The deserializer counts the alias as an event of the
                    // text, and copies what its anchor holds.
                    count.read(&span, 0, 0)?;
                    if !count.copy(&span, id)? {
                        return Ok(());
                    }
                }
                Event::Anchor(id, name) => count.name(id, &name, &span),
                _ => count.read(&span, 0, 0)?,
            }
        }
        Ok(())
    }

    /// The bytes of a tag the deserializer counts as bytes of values.
    fn tag_len(tag: Option<&Tag>) -> usize {
        tag.map_or(0, |t| t.handle().len().saturating_add(t.suffix().len()))
    }

    fn limit(span: &Span, message: String, hint: String) -> ParseError {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        ParseError {
            limit: true,
            message,
            hint: Some(hint),
            line: clamp(span.start.line()).max(1),
            column: clamp(span.start.col().saturating_add(1)),
            len: clamp(span.end.index().saturating_sub(span.start.index())).max(1),
        }
    }

    /// A count with commas between thousands: `12,345`.
    fn thousands(n: usize) -> String {
        let digits = n.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    }

    /// `n` `thing`s: `1 event`, `2,000 bytes`.
    fn counted(n: usize, thing: &str) -> String {
        let s = if n == 1 { "" } else { "s" };
        format!("{} {thing}{s}", thousands(n))
    }

    impl Count {
        /// An event of the text, holding `nodes` values and `bytes` bytes of
        /// values.
        fn read(&mut self, span: &Span, nodes: usize, bytes: usize) -> Result<(), ParseError> {
            self.events += 1;
            self.nodes += nodes;
            self.bytes = self.bytes.saturating_add(bytes);
            let over = |what: &str| {
                limit(
                    span,
                    format!(
                        "the file holds more YAML {what} than its size allows: over {} for a file of {} bytes",
                        thousands(self.text),
                        thousands(self.size)
                    ),
                    "a config file holds far fewer values than bytes; check what wrote this file"
                        .to_string(),
                )
            };
            if self.events > self.text {
                return Err(over("events"));
            }
            if self.nodes > self.text {
                return Err(over("values"));
            }
            if self.bytes > self.text {
                return Err(limit(
                    span,
                    format!(
                        "escapes and tags make the values longer than the file's size allows: over {} bytes for a file of {} bytes",
                        thousands(self.text),
                        thousands(self.size)
                    ),
                    "a config file needs no tags; write characters out instead of as escapes"
                        .to_string(),
                ));
            }
            Ok(())
        }

        /// `events` events holding `bytes` bytes of values, kept once for
        /// every anchored collection open around them and `more` times
        /// besides (for an anchor of their own).
        fn keep(
            &mut self,
            span: &Span,
            events: usize,
            bytes: usize,
            more: usize,
        ) -> Result<(), ParseError> {
            let times = self.open.len() + more;
            self.kept_events = self
                .kept_events
                .saturating_add(events.saturating_mul(times));
            self.kept_bytes = self.kept_bytes.saturating_add(bytes.saturating_mul(times));
            let most = self.text.saturating_add(self.copies);
            if self.kept_events > most || self.kept_bytes > most {
                return Err(limit(
                    span,
                    format!(
                        "anchors inside anchors keep more copies of the YAML than the file's size allows: over {} events or bytes for a file of {} bytes",
                        thousands(most),
                        thousands(self.size)
                    ),
                    "anchor the values that are shared, not the mappings and lists around them"
                        .to_string(),
                ));
            }
            Ok(())
        }

        /// `&name` at `span`, written after the value of anchor `id` starts.
        fn name(&mut self, id: usize, name: &str, span: &Span) {
            let line = to_u32(span.start.line() as u64);
            if let Some(open) = self.open.last_mut().filter(|o| o.id == id) {
                open.name = name.to_string();
                open.line = line;
            } else if let Some(Some(anchor)) = self.anchors.get_mut(id) {
                anchor.name = name.to_string();
                anchor.line = line;
            }
        }

        #[allow(clippy::too_many_arguments)]
        fn complete(
            &mut self,
            id: usize,
            events: usize,
            bytes: usize,
            depth: usize,
            nested: bool,
            name: String,
            line: u32,
        ) {
            if self.anchors.len() <= id {
                self.anchors.resize_with(id + 1, || None);
            }
            self.anchors[id] = Some(Anchor {
                events,
                bytes,
                depth,
                nested,
                uses: 0,
                name,
                line,
            });
        }

        /// The innermost anchored collection ends: its anchor is complete.
        fn close(&mut self) {
            let Some(open) = self.open.pop() else {
                return;
            };
            let events = self.events + self.copied_events - open.events;
            let bytes = self.bytes + self.copied_bytes - open.bytes;
            if let Some(parent) = self.open.last_mut() {
                parent.deepest = parent.deepest.max(open.deepest);
                parent.nested |= open.nested;
            }
            let depth = open.deepest - open.depth + 1;
            self.complete(
                open.id,
                events,
                bytes,
                depth,
                open.nested,
                open.name,
                open.line,
            );
        }

        /// The alias `*` of anchor `id` at `span` copies its value; false
        /// when there is no such complete anchor.
        fn copy(&mut self, span: &Span, id: usize) -> Result<bool, ParseError> {
            let Some(Some(anchor)) = self.anchors.get_mut(id) else {
                return Ok(false);
            };
            anchor.uses += 1;
            let (events, bytes, depth) = (anchor.events, anchor.bytes, anchor.depth);
            self.copied_events = self.copied_events.saturating_add(events);
            self.copied_bytes = self.copied_bytes.saturating_add(bytes);
            if let Some(open) = self.open.last_mut() {
                open.nested = true;
                open.deepest = open.deepest.max(self.depth + depth);
            }
            let over = if self.copied_events > self.copies {
                Some(("events", self.copied_events))
            } else if self.copied_bytes > self.copies {
                Some(("bytes of values", self.copied_bytes))
            } else {
                None
            };
            if let (Some((what, copied)), Some(Some(anchor))) = (over, self.anchors.get(id)) {
                return Err(self.copied_too_much(span, anchor, what, copied));
            }
            if self.depth + depth > MAX_DEPTH {
                let name = self.anchors[id].as_ref().map_or("", |a| a.name.as_str());
                return Err(limit(
                    span,
                    format!(
                        "mappings and lists are nested deeper than {MAX_DEPTH} levels: `*{name}` puts a value {depth} levels deep at level {}",
                        self.depth + 1
                    ),
                    "a config file needs at most five levels; anchor a smaller part of the value"
                        .to_string(),
                ));
            }
            self.keep(span, events, bytes, 0)?;
            Ok(true)
        }

        fn copied_too_much(
            &self,
            span: &Span,
            anchor: &Anchor,
            what: &str,
            copied: usize,
        ) -> ParseError {
            let name = &anchor.name;
            let message = format!(
                "`*{name}` makes the aliases copy more than the file's size allows: {} {what}, over the {} a file of {} bytes may copy",
                thousands(copied),
                thousands(self.copies),
                thousands(self.size)
            );
            let hint = if anchor.nested {
                format!(
                    "`&{name}` (line {}) holds aliases itself, so each `*{name}` copies all they copy too, as in a \"billion laughs\"; write the values out instead of nesting aliases of aliases",
                    anchor.line
                )
            } else {
                format!(
                    "each `*{name}` copies the {} and {} of values of `&{name}` (line {}), {} up to here; write the value out where it is used (the budget grows with the file), or anchor a smaller part of it",
                    counted(anchor.events, "event"),
                    counted(anchor.bytes, "byte"),
                    anchor.line,
                    counted(anchor.uses, "time")
                )
            };
            limit(span, message, hint)
        }
    }
}

/// A large file's tree built in two halves on two threads: the parser reads
/// about 20 MB/s, so a single file of 10k users (1.6 MB) took 80 ms to parse
/// on one core while the other waited.
///
/// The text is cut at the start of a line near its middle where a plain key
/// is written with the least indentation in reach: a key of the mapping the
/// first half ends in. Each half is built from events on its own thread —
/// the second half under a made-up key of its own when the cut is inside a
/// nested mapping (`users:`) — and the second's nodes are moved to their
/// places in the whole text. Nothing is guessed: the cut is used only when
/// both halves build, the first half ends in a block mapping that the line
/// continues at its indentation, and the line before the cut holds a value
/// of its own (not an empty one, whose place the parser would put at the
/// cut); anything else is parsed whole. A construct the cut would break (a
/// quoted scalar or flow collection running over lines) leaves the first
/// half unfinished, which does not build; and a block scalar or a plain one
/// cannot take in a line at its parent's indentation. Each half has half
/// the whole text's budgets, so together they never allow more. Tests
/// compare the halves with the whole at every line of many texts, written
/// and made at random.
mod halves {
    use super::{Node, NodeKind, events};
    use std::borrow::Cow;

    /// From this size a text is worth two threads.
    pub(super) const FROM: usize = 1 << 20;

    /// How far past the middle a cut is looked for.
    const REACH: usize = 64 << 10;

    /// The key the second half's entries go under when the cut is inside a
    /// nested mapping; dropped again.
    const UNDER: &str = "x:\n";

    /// The tree of `text` from its two halves; `None` when it cannot be cut
    /// near its middle.
    pub(super) fn tree(text: &str) -> Option<Node> {
        cut_at(text, cut_near(text, text.len() / 2)?)
    }

    /// The indentation of a line that starts with a plain key (`name:`,
    /// `u0123:` — letters, digits, `.`, `_` and `-`), or `None`.
    fn key_indent(line: &str) -> Option<usize> {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let rest = &line[indent..];
        let key_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .unwrap_or(rest.len());
        let first = rest.bytes().next()?;
        let after = rest[key_len..].strip_prefix(':')?;
        (key_len > 0
            && first.is_ascii_alphanumeric()
            && (after.is_empty() || after.starts_with([' ', '\n', '\r'])))
        .then_some(indent)
    }

    /// The start of the line from `from` on (within [`REACH`]) that starts
    /// with a plain key at the least indentation, the first such.
    fn cut_near(text: &str, from: usize) -> Option<usize> {
        let start = from
            + text
                .as_bytes()
                .get(from..)?
                .iter()
                .position(|&b| b == b'\n')?
            + 1;
        let end = (start + REACH).min(text.len());
        let mut best: Option<(usize, usize)> = None;
        let mut at = start;
        while at < end {
            let line_end = text[at..].find('\n').map_or(text.len(), |n| at + n + 1);
            if let Some(indent) = key_indent(&text[at..line_end])
                && best.is_none_or(|(least, _)| indent < least)
                && ends_with_a_value(&text[..at])
            {
                best = Some((indent, at));
                if indent == 0 {
                    break;
                }
            }
            at = line_end;
        }
        best.map(|(_, at)| at)
    }

    /// Whether the last line of `first` that holds more than a comment ends
    /// with a value written on it: not a key or item without one (`name:`,
    /// `-`), an explicit key, a block scalar's header, or a comment after
    /// it. Only a cheap first look, so that the cut chosen is likely to be
    /// taken: [`cut_at`] decides from the tree.
    fn ends_with_a_value(first: &str) -> bool {
        let Some(last) = first
            .lines()
            .rev()
            .map(|line| line.trim_end_matches([' ', '\r']))
            .find(|line| !line.trim_start().is_empty() && !line.trim_start().starts_with('#'))
        else {
            return false;
        };
        let last_word = last.rsplit(' ').next().unwrap_or(last);
        !(last.contains(" #")
            || last.contains('\t')
            || last.ends_with([':', '-', '?'])
            || last_word.starts_with(['|', '>', '&', '!']))
    }

    /// Line breaks as the parser counts lines; `None` for a lone carriage
    /// return, which is not worth the doubt.
    fn lines_in(text: &str) -> Option<u32> {
        let bytes = text.as_bytes();
        let mut lines = 0u32;
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'\n' => lines = lines.checked_add(1)?,
                b'\r' if bytes.get(i + 1) != Some(&b'\n') => return None,
                _ => {}
            }
        }
        Some(lines)
    }

    /// The tree of `text` from `text[..at]` and `text[at..]`, when the line at
    /// `at` continues the block mapping the first half ends in.
    pub(super) fn cut_at(text: &str, at: usize) -> Option<Node> {
        if at == 0 || at >= text.len() || text.as_bytes()[at - 1] != b'\n' {
            return None;
        }
        let (first, rest) = text.split_at(at);
        let line = rest.split('\n').next().unwrap_or(rest);
        let indent = key_indent(line)?;
        let line_of_cut = lines_in(first)?.checked_add(1)?;
        u32::try_from(text.len()).ok()?;
        let second: Cow<str> = if indent == 0 {
            Cow::Borrowed(rest)
        } else {
            Cow::Owned(format!("{UNDER}{rest}"))
        };
        // Each half within half the whole's budgets: together within them.
        let limit = super::scaled_budget(text.len()) / 2;
        let (head, tail) = std::thread::scope(|scope| {
            let tail = scope.spawn(|| events::within(&second, limit));
            let head = events::within(first, limit);
            (
                head,
                tail.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            )
        });
        let (mut head, tail) = (head?, tail?);
        // The first half's last value must end on its last line, before the
        // line break: a block scalar's place runs on to the next token (and
        // an empty value's starts there), which the cut moved.
        let end = last_scalar_end(&head)?;
        if first
            .get(end..)
            .is_none_or(|after| after.trim_start_matches([' ', '\r', '}', ']', ',']) != "\n")
        {
            return None;
        }
        // A block mapping at `column`: it starts where its first key does
        // (a flow one at its `{`, before its first key; an empty one is a
        // flow one).
        let block_at = |node: &Node, column: u32| {
            node.column == column
                && matches!(&node.kind, NodeKind::Map(entries) if entries
                    .first()
                    .is_some_and(|(key, _)| key.line == node.line && key.column == node.column))
        };
        let column = u32::try_from(indent + 1).ok()?;
        let (lines, bytes) = if indent == 0 {
            (line_of_cut - 1, at)
        } else {
            (line_of_cut - 2, at.checked_sub(UNDER.len())?)
        };
        if !block_at(&head, 1) || (indent == 0 && tail.column != 1) {
            return None;
        }
        let (NodeKind::Map(roots), NodeKind::Map(tail_roots)) = (&mut head.kind, tail.kind) else {
            return None;
        };
        let mut tail_roots = tail_roots.into_iter();
        let shifted = |mut node: Node| {
            shift(&mut node, lines, bytes as u32);
            node
        };
        if indent == 0 {
            roots.extend(tail_roots.map(|(k, v)| (shifted(k), shifted(v))));
        } else {
            // The first half ends in the mapping the cut line continues.
            let (_, open) = roots.last_mut()?;
            if !block_at(open, column) {
                return None;
            }
            let (under, more) = tail_roots.next()?;
            if under.line != 1 || under.kind != NodeKind::Str("x".into()) || more.column != column {
                return None;
            }
            let (NodeKind::Map(entries), NodeKind::Map(more)) = (&mut open.kind, more.kind) else {
                return None;
            };
            entries.extend(more.into_iter().map(|(k, v)| (shifted(k), shifted(v))));
            roots.extend(tail_roots.map(|(k, v)| (shifted(k), shifted(v))));
        }
        Some(head)
    }

    /// The byte where the last scalar of a tree ends; `None` when the tree
    /// ends in an empty collection, whose end the tree does not tell.
    fn last_scalar_end(node: &Node) -> Option<usize> {
        match &node.kind {
            NodeKind::Map(entries) => last_scalar_end(&entries.last()?.1),
            NodeKind::Seq(items) => last_scalar_end(items.last()?),
            _ => Some(node.raw.0 as usize + node.raw.1 as usize),
        }
    }

    /// Moves a node of the second half, and all under it, by `lines` lines
    /// and `bytes` bytes (columns stay: the cut is at a line's start).
    fn shift(node: &mut Node, lines: u32, bytes: u32) {
        node.line += lines;
        if node.raw != (0, 0) {
            node.raw.0 += bytes;
        }
        match &mut node.kind {
            NodeKind::Seq(items) => items.iter_mut().for_each(|n| shift(n, lines, bytes)),
            NodeKind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                shift(k, lines, bytes);
                shift(v, lines, bytes);
            }),
            _ => {}
        }
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

    // Budgets that scale with the file (issue 17 §8).

    /// A tenancy whose users all share one support account through `*hq`.
    fn shared_account(users: usize) -> String {
        let mut text = String::from(
            "tenancy: { name: t, csi: \"1\", admin: hq }\nusers:\n  hq:\n    email: hq@x.example\n    support_account: &hq { phone: \"+1 212 555 0100\", timezone: America/New_York }\n",
        );
        for i in 0..users {
            text.push_str(&format!(
                "  u{i}:\n    email: u{i}@x.example\n    support_account: *hq\n"
            ));
        }
        text
    }

    /// What `kind` holds, without places (an alias's nodes are placed at
    /// the alias).
    fn bare(kind: &NodeKind) -> NodeKind {
        let node = |n: &Node| Node {
            line: 0,
            column: 0,
            len: 0,
            raw: (0, 0),
            kind: bare(&n.kind),
        };
        match kind {
            NodeKind::Seq(items) => NodeKind::Seq(items.iter().map(node).collect()),
            NodeKind::Map(entries) => {
                NodeKind::Map(entries.iter().map(|(k, v)| (node(k), node(v))).collect())
            }
            other => other.clone(),
        }
    }

    /// The support account of every user in a tree of [`shared_account`].
    fn accounts(root: &Node) -> Vec<NodeKind> {
        let NodeKind::Map(sections) = &root.kind else {
            panic!("not a map: {root:?}")
        };
        let NodeKind::Map(users) = &sections[1].1.kind else {
            panic!("no users")
        };
        users
            .iter()
            .map(|(_, user)| {
                let NodeKind::Map(fields) = &user.kind else {
                    panic!("not a user: {user:?}")
                };
                fields[1].1.kind.clone()
            })
            .collect()
    }

    #[test]
    fn one_anchor_shared_by_many_users_is_no_alias_bomb() {
        // 100 users, as the issue has it, and ten and a hundred times more.
        for users in [100, 1_000, 10_000] {
            let text = shared_account(users);
            let root = parse(&text).unwrap_or_else(|e| panic!("{users} users: {e:?}"));
            let accounts = accounts(&root);
            assert_eq!(accounts.len(), users + 1);
            assert!(
                accounts.iter().all(|a| bare(a) == bare(&accounts[0])),
                "{users} users: an alias copied something else"
            );
        }
    }

    #[test]
    fn merge_keys_are_not_capped_whatever_the_files_size() {
        // More than the YAML crate's fixed cap of 10,000 merge keys.
        let mut text = String::from("base: &base { timezone: UTC }\nusers:\n");
        for i in 0..12_000 {
            text.push_str(&format!("  u{i}: {{ <<: *base, phone: \"{i}\" }}\n"));
        }
        let root = parse(&text).unwrap_or_else(|e| panic!("{e:?}"));
        let NodeKind::Map(sections) = &root.kind else {
            panic!()
        };
        let NodeKind::Map(users) = &sections[1].1.kind else {
            panic!()
        };
        assert_eq!(users.len(), 12_000);
        let NodeKind::Map(last) = &users[11_999].1.kind else {
            panic!()
        };
        let keys: Vec<_> = last.iter().map(|(k, _)| k.kind.clone()).collect();
        assert!(keys.contains(&NodeKind::Str("timezone".into())), "{keys:?}");
    }

    /// The character at `line` and `column` (both from 1) of `text`.
    fn char_at(text: &str, line: u32, column: u32) -> Option<char> {
        crate::diag::lines(text)
            .nth(line as usize - 1)?
            .chars()
            .nth(column as usize - 1)
    }

    /// A "billion laughs" of `levels` levels, each `fan` aliases of the last.
    fn laughs(levels: usize, fan: usize) -> String {
        let mut text = format!("l0: &l0 [{}]\n", vec!["lol"; fan].join(", "));
        for level in 1..levels {
            let aliases = vec![format!("*l{}", level - 1); fan].join(", ");
            text.push_str(&format!("l{level}: &l{level} [{aliases}]\n"));
        }
        text
    }

    #[test]
    fn an_alias_bomb_is_stopped_at_the_alias_that_goes_over_and_called_one() {
        for fan in 2..=10 {
            for levels in 2..=12 {
                let text = laughs(levels, fan);
                let Err(e) = parse(&text) else {
                    // Few enough copies to stay within the budget: a tree
                    // of what the text says, not a bomb.
                    continue;
                };
                assert!(e.limit, "{e:?}");
                assert_eq!(char_at(&text, e.line, e.column), Some('*'), "{e:?}");
                assert!(e.len >= 3, "{e:?}");
                assert!(e.message.starts_with("`*l"), "{}", e.message);
                let hint = e.hint.unwrap_or_default();
                assert!(hint.contains("billion laughs"), "{hint}");
            }
        }
        // Nine levels of ten, as the fixture has it, is a bomb.
        assert!(parse(&laughs(9, 10)).is_err());
    }

    #[test]
    fn a_large_value_shared_too_often_is_told_from_a_bomb() {
        let note = "n".repeat(2_000);
        let mut text = format!("note: &note \"{note}\"\nusers:\n");
        for i in 0..100 {
            text.push_str(&format!("  u{i}: {{ name: *note }}\n"));
        }
        let e = parse(&text).unwrap_err();
        assert!(e.limit, "{e:?}");
        assert_eq!(char_at(&text, e.line, e.column), Some('*'), "{e:?}");
        assert_eq!(e.len, 5, "the caret spans `*note`");
        assert!(
            e.message.contains("bytes of values"),
            "the message names what ran over: {}",
            e.message
        );
        let hint = e.hint.unwrap_or_default();
        assert!(!hint.contains("billion laughs"), "{hint}");
        assert!(
            hint.contains(
                "each `*note` copies the 1 event and 2,000 bytes of values of `&note` (line 1)"
            ),
            "{hint}"
        );
    }

    #[test]
    fn nesting_through_aliases_is_stopped_at_the_alias() {
        let mut deep = String::from("v");
        for _ in 0..20 {
            deep = format!("[{deep}]");
        }
        let mut inner = String::from("*d");
        for _ in 0..15 {
            inner = format!("[{inner}]");
        }
        let text = format!("d: &d {deep}\ne: {inner}\n");
        let e = parse(&text).unwrap_err();
        assert!(e.limit, "{e:?}");
        assert_eq!((e.line, char_at(&text, e.line, e.column)), (2, Some('*')));
        assert!(
            e.message.contains("nested deeper than 32 levels"),
            "{}",
            e.message
        );
    }

    #[test]
    fn budget_breaches_without_aliases_are_placed_in_the_file_with_their_cause() {
        // Escapes that write three bytes with two, and tags that add bytes.
        let escapes = format!("k: \"{}\"\n", "\\L".repeat(9_000));
        let tags = format!("k: [{}]\n", vec!["!!str a"; 2_500].join(", "));
        for text in [escapes, tags] {
            let e = parse(&text).unwrap_err();
            assert!(e.limit, "{e:?}");
            assert!(char_at(&text, e.line, e.column).is_some(), "{e:?}");
            assert!(e.message.contains("escapes and tags"), "{}", e.message);
            assert!(!e.hint.unwrap_or_default().contains("alias"));
        }
    }

    #[test]
    fn a_tab_in_the_indentation_is_reported_at_the_tab() {
        for text in [
            "a:\n\tb: 1\n",
            "k:\n  - a\n\t- b\n",
            "k:\n  - a\n  \t- b\n",
            "k: |\n\ttext\n",
            "a:\n  b: 1\n\tc: 2\n",
            "a:\n  - b: 1\n\t  c: 2\n",
            "a:\n  b: x\n    y\n\tc: 2\n",
            "users:\n  a:\n    email: a@x.example\n\tname: x\n",
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(
                char_at(text, e.line, e.column),
                Some('\t'),
                "{text:?}: {e:?}"
            );
            assert_eq!(
                e.hint.as_deref(),
                Some("replace the tab with spaces"),
                "{text:?}"
            );
        }
    }

    /// Every indented line of the examples, indented with a tab instead of
    /// its first space: the error is at that tab, never on the line before.
    #[test]
    fn a_tab_put_in_any_indentation_of_the_examples_is_found_there() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for name in [
            "examples/acme-prod.yaml",
            "tests/data/valid/every-concept.yaml",
        ] {
            files.push(std::fs::read_to_string(root.join(name)).unwrap());
        }
        let mut tried = 0;
        for text in &files {
            let lines: Vec<&str> = text.split('\n').collect();
            for (i, line) in lines.iter().enumerate() {
                let trimmed = line.trim_start_matches(' ');
                if trimmed.len() == line.len() || trimmed.is_empty() || trimmed.starts_with('#') {
                    continue;
                }
                let mut changed = lines.clone();
                let tabbed = format!("\t{}", &line[1..]);
                changed[i] = &tabbed;
                let changed = changed.join("\n");
                let Err(e) = parse(&changed) else {
                    continue;
                };
                tried += 1;
                assert_eq!(
                    (e.line, e.column),
                    (i as u32 + 1, 1),
                    "line {}: {e:?}",
                    i + 1
                );
                assert_eq!(e.hint.as_deref(), Some("replace the tab with spaces"));
            }
        }
        assert!(tried > 50, "only {tried} lines");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// The law of the alias budget: a file whose aliases copy one
        /// value of `fields` fields `uses` times is read exactly when the
        /// copies stay within four times the file's size plus 4,096, in
        /// events and in bytes of values; otherwise the error is at an
        /// alias, and its hint is about a shared value, not a bomb.
        #[test]
        fn aliases_may_copy_four_times_the_files_budget(
            fields in 1usize..40,
            value_len in 1usize..200,
            uses in 1usize..3_000,
            padding in 0usize..400,
        ) {
            let value = "v".repeat(value_len);
            let entries: Vec<String> = (0..fields).map(|i| format!("k{i:02}: {value}")).collect();
            let mut text = format!("shared: &s {{{}}}\n", entries.join(", "));
            let comment = format!("# {}\n", "c".repeat(padding));
            for i in 0..uses {
                text.push_str(&format!("u{i}: *s\n"));
                if i % 50 == 0 {
                    text.push_str(&comment);
                }
            }
            // One alias copies the mapping's start and end and each key and
            // value (events), and the keys' and values' text (bytes).
            let events = uses * (2 + 2 * fields);
            let bytes = uses * fields * (3 + value_len);
            let budget = 4 * (text.len() + 4096);
            match parse(&text) {
                Ok(_) => prop_assert!(events <= budget && bytes <= budget, "read past the budget"),
                Err(e) => {
                    prop_assert!(events > budget || bytes > budget, "refused within the budget: {e:?}");
                    prop_assert!(e.limit);
                    prop_assert_eq!(char_at(&text, e.line, e.column), Some('*'));
                    let hint = e.hint.unwrap_or_default();
                    prop_assert!(hint.starts_with("each `*s` copies"), "{}", hint);
                }
            }
        }
    }

    /// What the event builder and the deserializer make of `text`: whether
    /// the builder built the tree itself. Wherever it does, the deserializer
    /// must build the very same tree; and `parse` must always answer as the
    /// deserializer does.
    fn built_from_events(text: &str) -> bool {
        let events = events::tree(text);
        let serde = parse_with_serde(text);
        if let Some(tree) = &events {
            assert_eq!(Ok(tree), serde.as_ref(), "different trees for {text:?}");
        }
        assert_eq!(parse(text), serde, "different outcomes for {text:?}");
        events.is_some()
    }

    /// Scalars whose type, text or place is easy to get wrong.
    const SCALARS: &[&str] = &[
        "",
        "~",
        "null",
        "Null",
        "NULL",
        "nULL",
        "none",
        "None",
        "true",
        "True",
        "TRUE",
        "tRue",
        "false",
        "False",
        "FALSE",
        "yes",
        "no",
        "on",
        "off",
        "y",
        "n",
        "Yes",
        "NO",
        "0",
        "-0",
        "+0",
        "00",
        "007",
        "-007",
        "+007",
        "1",
        "+1",
        "-1",
        "123",
        " 42",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "18446744073709551615",
        "18446744073709551616",
        "340282366920938463463374607431768211456",
        "-170141183460469231731687303715884105728",
        "0x1F",
        "0X1F",
        "-0x1F",
        "+0x1f",
        "0xff",
        "0o17",
        "0O17",
        "0b101",
        "0B101",
        "0x",
        "0o",
        "0b",
        "0xG",
        "0o8",
        "0b2",
        "-0b101",
        "-0o17",
        "0x8000000000000000",
        "-0x8000000000000000",
        "-0x8000000000000001",
        "0xFFFFFFFFFFFFFFFF",
        "0x10000000000000000",
        "1_000",
        "1__000",
        "_1",
        "1_",
        "0x_1",
        "1.5",
        "-1.5",
        "+1.5",
        ".5",
        "5.",
        "-.5",
        "1e5",
        "1E5",
        "1e-5",
        "1.5e+10",
        "1.5E-3",
        "0.0",
        "-0.0",
        "00.5",
        "0.5",
        "01.5",
        "1_0.5",
        "1.0.0",
        "1e",
        "e5",
        "1e308",
        "2.2250738585072014e-308",
        "4.9e-324",
        "1e-400",
        "inf",
        "-inf",
        "nan",
        "NaN",
        "infinity",
        "Infinity",
        "+nan",
        "-.nan",
        "+.nan",
        "-.NaN",
        "+.NAN",
        ".infx",
        "0x1.8p3",
        "1,000",
        "1 000",
        "$1",
        "2027-06-30",
        "2001-12-14t21:59:43.10-05:00",
        "12:30",
        "1:20:30",
        "0:30",
        "\"quoted\"",
        "'single'",
        "\"\"",
        "''",
        "\"null\"",
        "'~'",
        "\"123\"",
        "'true'",
        "\"0x1F\"",
        "\"1e999\"",
        "'.inf'",
        "\"a\\tb\\u00e9\\x41\"",
        "'it''s'",
        "\"  padded \"",
        "hello world",
        "a:b",
        "a#b",
        "-",
        "--",
        "+",
        ".",
        "é",
        "日本語",
        "emoji 😀",
        "a b  c",
        "x=1",
        "=",
        "%",
        "a\\b",
        "'multi\n  line'",
        "\"multi\n\n  line\"",
        "http://example.com/a?b=c#d",
        "ocid1.user.oc1..aaaa",
        "+44 20 7946 0958",
        "Europe/Paris",
        "support@example.com",
    ];

    #[test]
    fn scalars_are_resolved_as_the_deserializer_resolves_them() {
        let mut built = 0;
        for scalar in SCALARS {
            let forms = [
                scalar.to_string(),
                format!("k: {scalar}\n"),
                format!("{scalar}: v\n"),
                format!("- {scalar}\n- x\n"),
                format!("[{scalar}, {scalar}]"),
                format!("{{{scalar}: {scalar}}}"),
                format!("a:\n  b:\n    - {scalar}\n    - c: {scalar}\n      d: 1\n"),
                format!("k: {scalar} # comment\n"),
                format!("k: {scalar}\r\n"),
            ];
            for form in &forms {
                built += usize::from(built_from_events(form));
            }
        }
        assert!(built > SCALARS.len() * 5, "only {built} built from events");
    }

    /// `.inf`, `.nan` and a numeral too large for a float are numbers like
    /// any other: built from events as the deserializer builds them, and
    /// read as written where text is expected.
    #[test]
    fn non_finite_numbers_are_numbers_read_as_written() {
        for scalar in [
            "1e999", "-1e999", "+1e999", ".inf", "-.inf", "+.inf", ".Inf", ".INF", ".nan", ".NaN",
            ".NAN", "1E400",
        ] {
            let text = format!("k: {scalar}\n");
            assert!(built_from_events(&text), "{text:?}");
            let root = parse(&text).unwrap();
            let NodeKind::Map(entries) = &root.kind else {
                panic!("not a map: {root:?}")
            };
            let value = &entries[0].1;
            assert!(
                matches!(value.kind, NodeKind::Float(f) if !f.is_finite()),
                "{text:?}: {value:?}"
            );
            assert_eq!(value.scalar_text(&text).as_deref(), Some(scalar));
            // Through the deserializer too (an anchor sends the file there).
            let anchored = format!("k: &a {scalar}\nl: *a\n");
            let root = parse(&anchored).unwrap();
            let NodeKind::Map(entries) = &root.kind else {
                panic!("not a map: {root:?}")
            };
            for (_, value) in entries {
                assert_eq!(value.scalar_text(&anchored).as_deref(), Some(scalar));
            }
        }
    }

    #[test]
    fn documents_and_collections_are_built_as_the_deserializer_builds_them() {
        let documents = [
            "",
            "\n",
            "\n\n\n",
            "# only a comment\n",
            "  # indented comment",
            " \n\t\n",
            "---\n",
            "---",
            "...\n",
            "---\n...\n",
            "--- # comment\n",
            "%YAML 1.2\n---\na: 1\n",
            "%YAML 1.1\n---\n- yes\n",
            "%TAG !e! tag:example.com,2000:\n---\na: 1\n",
            "---\na: 1\n",
            "---\na: 1\n...\n",
            "a: 1\n...\n",
            "a: 1\n...\n# trailing comment\n",
            "--- 5\n",
            "--- |\n  text\n",
            "\u{feff}a: 1\n",
            "\u{feff}",
            "\u{feff}# bom and comment\n",
            "a: 1\r\nb: 2\r\n",
            "a:\t1\n",
            "a: 1\nb:\n  c: [1, 2, {d: e}]\n  f:\n    - x\n    - y: z\n      w: v\n",
            "- a\n- - b\n  - c\n- {}\n- []\n- [[]]\n- {a: {}}\n",
            "{a: 1, b: [2, 3], c: {d: 4}}",
            "{a: 1, b: [2, 3], c: {d: 4},}",
            "[a, b, c]",
            "[a, b, c,]",
            "[]",
            "{}",
            "[a: b]",
            "[a: b, c, d: ]",
            "[? a, b]",
            "{a, b: c, ? d}",
            "{a: , : b}",
            "[{a: b}, {c: d}]",
            "? complex key\n: value\n",
            "? a\n? b\n: c\n",
            "? |\n  block key\n: v\n",
            "? [a, b]\n: c\n",
            "? {a: b}\n: c\n",
            "? - a\n  - b\n: - c\n  - d\n",
            "{[a, b]: c}",
            "{{a: b}: c}",
            "a:\nb:\nc: ~\n",
            "a:\n  -\n  - \n  - ''\n",
            "a: 1\na: 2\n",
            "a: 1\nb: 2\na: 3\n",
            "1: a\n1: b\n0x1: c\n",
            "é: ü\n日本: 語\n😀: x\n",
            "a: 1 # c\n# c\nb: # c\n  c: 1 # c\n",
            "k: |\n  line1\n  line2\n",
            "k: >\n  folded\n  text\n\n  more\n",
            "k: |-\n  x\n",
            "k: |+\n  x\n\n",
            "k: >2\n   indented\n",
            "k: |\n  123\n",
            "k: |\n",
            "k: >-\n\n",
            "- |\n  a\n- >\n  b\n",
            "k: a\n  b\n  c\n",
            "k: \"a\n  b\"\n",
            "k: 'a\n\n  b'\n",
            "k: \"\\\n  x\"\n",
            "k: \"\\u263A \\U0001F600 \\x41 \\n \\t \\\\ \\\" \\/ \\0 \\a \\e \\_ \\N \\L \\P\"\n",
            "- - - - deep\n",
            "a: {b: {c: {d: {e: [1, [2, [3]]]}}}}\n",
            "long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
            "<<x: 1\n",
            "k: <<\n",
            "'<<': {a: 1}\n",
            "\"<<\": 1\n",
            "- <<\n",
            "users:\n  - id: ocid1.user.oc1..a\n    name: Ann\n    email: ann@example.com\n    phone: '+44 1'\n    csi: 0123\n    since: 2027-06-30\n    admin: no\n",
        ];
        let mut built = 0;
        for text in documents {
            built += usize::from(built_from_events(text));
        }
        assert_eq!(built, documents.len(), "not all built from events");
    }

    /// Errors, limits and what only the deserializer implements: the
    /// builder leaves them to it, so messages and places are its own.
    #[test]
    fn errors_limits_anchors_tags_and_merge_keys_are_left_to_the_deserializer() {
        let mut deep_flow = "[".repeat(MAX_DEPTH + 1);
        deep_flow.push_str(&"]".repeat(MAX_DEPTH + 1));
        let mut deep_block = String::new();
        for depth in 0..=MAX_DEPTH {
            deep_block.push_str(&" ".repeat(depth));
            deep_block.push_str("k:\n");
        }
        deep_block.push_str(&" ".repeat(MAX_DEPTH + 1));
        deep_block.push_str("v\n");
        let mut deepest_allowed = "[".repeat(MAX_DEPTH);
        deepest_allowed.push_str(&"]".repeat(MAX_DEPTH));
        assert!(built_from_events(&deepest_allowed));
        let inputs = [
            "a: [1, 2\n",
            "a: b: c\n",
            "a: 1\n---\nb: 2\n",
            "a: 1\n---\n",
            "---\n---\n",
            "a: 1\n...\n---\n",
            "- a\nb: c\n",
            "key: \"unterminated\n",
            "a: @b\n",
            "a: `b\n",
            "a: \"\\ud83d\"\n",
            "a: \"\\q\"\n",
            "{a: 1\n",
            "a: 1\n b: 2\n",
            "[a, b]]\n",
            "a: &x 1\nb: *x\n",
            "a: &x [1, 2]\nb: *x\nc: *x\n",
            "a: &x {k: v}\nb: *x\n",
            "a: *unknown\n",
            "&a [*a]",
            "&x a: 1\n",
            "!!str 123",
            "k: !!int 1\n",
            "k: !!float 1\n",
            "k: !!bool true\n",
            "k: !!null ''\n",
            "k: !!str\n",
            "k: !custom x\n",
            "k: ! 12\n",
            "k: !!binary aGVsbG8=\n",
            "k: !!map {a: 1}\n",
            "k: !!seq [1]\n",
            "k: !!int [1]\n",
            "<<: {a: 1}\nb: 2\n",
            "base: &b {a: 1}\nx:\n  <<: *b\n  c: 2\n",
            "{<<: {a: 1}}",
            deep_flow.as_str(),
            deep_block.as_str(),
        ];
        for text in inputs {
            assert!(!built_from_events(text), "built from events: {text:?}");
        }
    }

    /// Every YAML file of the repository: the examples and the fixtures.
    fn repository_files() -> Vec<std::path::PathBuf> {
        fn walk(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, files);
                } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    files.push(path);
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        walk(&root.join("examples"), &mut files);
        walk(&root.join("tests/data"), &mut files);
        files
    }

    #[test]
    fn the_repository_files_build_the_same_tree() {
        let files = repository_files();
        assert!(files.len() > 50, "{} files", files.len());
        let mut built = 0;
        for file in &files {
            // Not every fixture is UTF-8 (that is what some of them test).
            if let Ok(text) = std::fs::read_to_string(file) {
                built += usize::from(built_from_events(&text));
            }
        }
        assert!(
            built > files.len() * 9 / 10,
            "{built} of {} built",
            files.len()
        );
    }

    /// A YAML value to write out in block or flow style.
    #[derive(Clone, Debug)]
    enum Shape {
        Scalar(String),
        Seq(Vec<Shape>, bool),
        Map(Vec<(Shape, Shape)>, bool),
    }

    impl Shape {
        /// In flow style, as a key, an item or a value on the key's line.
        fn flow(&self, out: &mut String) {
            match self {
                Shape::Scalar(s) => out.push_str(s),
                Shape::Seq(items, _) => {
                    out.push('[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        item.flow(out);
                    }
                    out.push(']');
                }
                Shape::Map(entries, _) => {
                    out.push('{');
                    for (i, (k, v)) in entries.iter().enumerate() {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        k.flow(out);
                        out.push_str(": ");
                        v.flow(out);
                    }
                    out.push('}');
                }
            }
        }

        fn is_block(&self) -> bool {
            match self {
                Shape::Scalar(_) => false,
                Shape::Seq(items, block) => *block && !items.is_empty(),
                Shape::Map(entries, block) => *block && !entries.is_empty(),
            }
        }

        /// In block style (where it asks for it) at `indent`, from a new line.
        fn block(&self, indent: usize, out: &mut String) {
            let pad = " ".repeat(indent);
            match self {
                Shape::Seq(items, _) if self.is_block() => {
                    for item in items {
                        out.push_str(&pad);
                        out.push('-');
                        if item.is_block() {
                            out.push('\n');
                            item.block(indent + 2, out);
                        } else {
                            out.push(' ');
                            item.flow(out);
                            out.push('\n');
                        }
                    }
                }
                Shape::Map(entries, _) if self.is_block() => {
                    for (k, v) in entries {
                        out.push_str(&pad);
                        if k.is_block() {
                            out.push_str("?\n");
                            k.block(indent + 2, out);
                            out.push_str(&pad);
                            out.push(':');
                        } else {
                            k.flow(out);
                            out.push(':');
                        }
                        if v.is_block() {
                            out.push('\n');
                            v.block(indent + 2, out);
                        } else {
                            out.push(' ');
                            v.flow(out);
                            out.push('\n');
                        }
                    }
                }
                _ => {
                    out.push_str(&pad);
                    self.flow(out);
                    out.push('\n');
                }
            }
        }
    }

    fn arb_scalar() -> impl Strategy<Value = String> {
        let text = "[a-z0-9 ._:#'\"\\\\~+é-]{0,8}";
        prop_oneof![
            3 => prop::sample::select(SCALARS).prop_map(str::to_owned),
            2 => text,
            1 => text.prop_map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))),
            1 => text.prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        ]
    }

    fn arb_shape() -> impl Strategy<Value = Shape> {
        arb_scalar()
            .prop_map(Shape::Scalar)
            .prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    (prop::collection::vec(inner.clone(), 0..6), any::<bool>())
                        .prop_map(|(items, block)| Shape::Seq(items, block)),
                    (
                        prop::collection::vec((inner.clone(), inner), 0..6),
                        any::<bool>()
                    )
                        .prop_map(|(entries, block)| Shape::Map(entries, block)),
                ]
            })
    }

    /// Characters that change what YAML means, for mutating documents.
    const MUTATIONS: &[&str] = &[
        "-", ":", " ", "\n", "#", "'", "\"", "[", "]", "{", "}", ",", "?", "|", ">", "&a ", "*a",
        "!", "\t", "0", "x", "é", "~", ".", "_", "---\n", "...\n", "<<", "\\", "\r\n",
    ];

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

        /// Generated documents, most of them valid YAML, in both styles.
        #[test]
        fn generated_documents_build_the_same_tree(shape in arb_shape()) {
            let mut text = String::new();
            shape.block(0, &mut text);
            built_from_events(&text);
        }

        /// Documents with a few edits, to reach odd corners of the syntax
        /// (and the errors, limits and features left to the deserializer).
        #[test]
        fn mutated_documents_give_the_same_outcome(
            shape in arb_shape(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(MUTATIONS), 0u8..3), 1..4),
        ) {
            let mut text = String::new();
            shape.block(0, &mut text);
            for (at, insert, how) in edits {
                let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
                let at = boundaries[at.index(boundaries.len())];
                match how {
                    0 => text.insert_str(at, insert),
                    1 => {
                        if let Some(c) = text[at..].chars().next() {
                            text.replace_range(at..at + c.len_utf8(), insert);
                        }
                    }
                    _ => {
                        if let Some(c) = text[at..].chars().next() {
                            text.replace_range(at..at + c.len_utf8(), "");
                        }
                    }
                }
            }
            built_from_events(&text);
        }
    }

    // A large file parsed in two halves (`halves`).

    /// Texts whose lines a cut could fall on, or that a cut could break.
    const CUT_TEXTS: &[&str] = &[
        "tenancy:\n  name: acme\n  csi: \"0123\"\nusers:\n  alice:\n    email: a@x.example\n    name: Alice\n  bob:\n    email: b@x.example\n  carol: {email: c@x.example}\nmemberships:\n  - user: alice\n  - user: bob\napprovals:\n  - user: alice\n    role: admin\n",
        // Empty values before a cut: their place is where the next token is.
        "a:\n  b:\n  c:\nd:\ne: 1\nf:\n",
        "a:\n  - \n  -\nb: x\nc: |\nd: >-\ne: ?\n",
        "a:\n  b: x # a comment\n  c: y\n  # only a comment\nd: z\n",
        // Block scalars: a line at the parent's indentation ends them.
        "a: |\n  text\n  b: not a key\nc: 1\nd: >\n  folded\n\n  more\ne: |2\n    deeper\n  f: g\n",
        "users:\n  u1:\n    note: |\n      u2: inside\n    x: 1\n  u2:\n    note: >-\n      y\n  u3: z\n",
        // Quoted and flow values running over lines.
        "a: \"one\n  two\"\nb: 'three\n  four'\nc: [1,\n  2]\nd: {e: 1,\n  f: 2}\ng: h\n",
        "users:\n  u1: {email: a,\n    name: b}\n  u2: \"x\n    y\"\n  u3: [1,\n    2]\n  u4: w\n",
        "a: \"unclosed\nb: 1\nc: 2\n",
        "a: [1,\nb: 2]\nc: 3\n",
        // A flow mapping at the root, and one under a key.
        "{a: 1,\n b: 2}\n",
        "{a: 1}\nb: 2\n",
        "users: {a: 1}\nb: 2\nc: 3\n",
        "users:\n  {a: 1,\n  b: 2}\nc: 3\n",
        // Plain scalars over lines.
        "a: one\n  two\nb: three\n  four\n  c: five\nd: six\n",
        // Anchors, aliases, tags and merge keys go to the deserializer.
        "a: &x 1\nb: *x\nc: !!str 2\nd:\n  <<: {e: 1}\n  f: 2\n",
        // Documents, directives and their markers.
        "---\na: 1\nb: 2\n...\n",
        "a: 1\n---\nb: 2\n",
        "%YAML 1.2\n---\na: 1\nb: 2\n",
        // Sequences, and mappings nested in them.
        "a:\n- b: 1\n  c: 2\n- d: 3\ne:\n  - f\n  - g\nh: i\n",
        // Duplicate keys, keys with dots and dashes, numbers as keys.
        "a: 1\na: 2\nb.c: 3\nd-e: 4\n0123: 5\n12: 6\n",
        // Line ends: CRLF, a lone CR, no newline at the end.
        "a: 1\r\nb:\r\n  c: 2\r\n  d: 3\r\ne: 4\r\n",
        "a: 1\rb: 2\nc: 3\n",
        "a: 1\nb: 2",
        // Tabs, and keys that are not keys.
        "a:\n\tb: 1\nc: 2\n",
        "a: b:c\nd:e\nf: 1\n",
        "a: 1\n  # indented comment\nb: 2\n\n\nc: 3\n",
        // Explicit keys.
        "? a\n: 1\n? b\nc: 2\n",
        // Found by a review: a second document after an empty collection, a
        // root that is not at column 1, flow roots after a BOM or a
        // multi-byte character (columns count characters).
        "a: []\n...\nb: 2\n",
        "a:\n  b: {}\n...\n  c: 1\n",
        "a: [x, []]\n...\n# c\nb: 2\n",
        "  a:\n    b: 1\n    c: 2\nd: 3\n",
        "\u{FEFF}{a: 1}\nc: 3\n",
        "\u{FEFF}{a: 1,\n b: 2}\nc: 3\n",
        "é: {p: 1}\n   q: 2\n",
        "a\n  k: 1\n",
    ];

    /// A single-file config set of `users` users, as the benchmark makes
    /// them: the nested `users:` mapping holds most of the text.
    fn config_of(users: usize) -> String {
        let mut text =
            String::from("tenancy:\n  name: acme\n  csi: \"12345\"\n  admin: u0\nusers:\n");
        for i in 0..users {
            text.push_str(&format!(
                "  u{i}:\n    email: u{i}@acme.example\n    name: User {i}\n"
            ));
            if i % 3 == 0 {
                text.push_str(&format!(
                    "    support_account: {{ phone: \"+1 212 555 {i:04}\", timezone: Europe/Berlin }}\n"
                ));
            }
        }
        text.push_str("memberships:\n");
        for i in (0..users).step_by(3) {
            text.push_str(&format!("  - user: u{i}\n"));
        }
        text
    }

    #[test]
    fn a_text_cut_in_two_builds_the_tree_the_whole_text_does() {
        let mut texts: Vec<String> = CUT_TEXTS.iter().map(|t| t.to_string()).collect();
        // Not every fixture is UTF-8 (that is what some of them test).
        texts.extend(
            repository_files()
                .iter()
                .filter_map(|f| std::fs::read_to_string(f).ok()),
        );
        texts.push(config_of(60));
        let mut cuts = 0;
        for text in &texts {
            let whole = events::tree(text);
            for at in text.match_indices(['\n', '\r']).map(|(at, _)| at + 1) {
                if let Some(tree) = halves::cut_at(text, at) {
                    cuts += 1;
                    assert_eq!(
                        Some(&tree),
                        whole.as_ref(),
                        "the cut at byte {at} of {text:?} builds another tree"
                    );
                }
            }
        }
        // The cut is taken at most lines of the config-like texts.
        assert!(cuts > 150, "only {cuts} cuts");
    }

    /// Lines a cut may fall among, for texts made at random.
    const SOUP: &[&str] = &[
        "a: 1",
        "b: x",
        "k:",
        "k: []",
        "k: {}",
        "k: [1,",
        "2]",
        "k: {a: 1,",
        "b: 2}",
        "}",
        "]",
        "k: \"q",
        "k: 'q",
        "q\"",
        "q'",
        "k: |",
        "k: |+",
        "k: >-",
        "k: |2",
        "k: >+1",
        "text",
        "",
        "# c",
        "k: v # c",
        "- x",
        "-",
        "- k: v",
        "- []",
        "? k",
        ": v",
        ":",
        "---",
        "...",
        "--- x",
        "--- {a: 1,",
        "--- |",
        "%YAML 1.2",
        "%TAG ! tag:x,2000:",
        "k: &a v",
        "k: *a",
        "k: !t v",
        "<<: {a: 1}",
        "k: é",
        "é: ü",
        "éé: {p: 1,",
        "k: x\ty",
        "k: v ",
        "0: 1",
        "true: 1",
        "null:",
        "~: 1",
        "k: [x, []]",
        "k: {a: [], b: {}}",
        "k: x y",
        "k: x:y",
        "k: \"a\\",
        "{a: 1,",
        "{a: 1}",
        "[a,",
        "[a: b]",
        "k: \"\\L\\L\"",
        "k: 'x''y'",
        "k: -.inf",
        "k: 1e999",
        "k : v",
        "k:v",
        "k:\t1",
        "\tk: 1",
        "k: - x",
        "k: ? x",
        "k: 2}",
        "k: x]",
        "k: ,",
        "k: '",
        "k: \"",
        "k:  # c",
        "k: \"x\" # c",
        "u1:",
        "users:",
        "  ",
        "\u{FEFF}a: 1",
        "k: 😀😀: x",
        "k: {p: 😀,",
        "k: [😀,",
        "k: 0x1F",
        "k: 0123",
        "k: |-",
        "k: >",
        "k: |1-",
    ];

    #[test]
    fn texts_made_at_random_cut_in_two_build_the_tree_the_whole_text_does() {
        // xorshift64, from a fixed seed: the same texts every run.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut random = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let mut cuts = 0;
        for _ in 0..3000 {
            let mut text = String::new();
            if random(20) == 0 {
                text.push('\u{FEFF}');
            }
            let crlf = random(8) == 0;
            for _ in 0..2 + random(9) {
                text.push_str(&" ".repeat([0, 0, 0, 2, 2, 4, 1, 3][random(8)]));
                text.push_str(SOUP[random(SOUP.len())]);
                text.push_str(match random(40) {
                    0 => "\r",
                    1 => "\r\n",
                    _ if crlf => "\r\n",
                    _ => "\n",
                });
            }
            if random(10) == 0 {
                text.pop();
            }
            let whole = events::tree(&text);
            for at in text.match_indices(['\n', '\r']).map(|(at, _)| at + 1) {
                if let Some(tree) = halves::cut_at(&text, at) {
                    cuts += 1;
                    assert_eq!(Some(&tree), whole.as_ref(), "cut at byte {at} of {text:?}");
                }
            }
        }
        assert!(cuts >= 10, "only {cuts} cuts");
    }

    #[test]
    fn the_two_halves_together_keep_within_the_whole_texts_budgets() {
        // Text that makes more events, or more scalar bytes, than it has
        // bytes: the whole is over its budget, each half alone would not be.
        for half in [
            |key: &str| format!("{key}: [{}x]\n", ":,".repeat(1500)),
            |key: &str| format!("{key}: \"{}\"\n", "\\L".repeat(3000)),
        ] {
            let text = format!("{}{}", half("a"), half("b"));
            assert_eq!(events::tree(&text), None, "the whole is over budget");
            let at = half("a").len();
            assert_eq!(halves::cut_at(&text, at), None);
        }
    }

    #[test]
    fn a_large_file_is_parsed_in_two_halves_as_it_is_whole() {
        let text = config_of(12_000);
        assert!(text.len() >= halves::FROM);
        let halves = halves::tree(&text).expect("cut near the middle of the users");
        assert_eq!(Some(halves), events::tree(&text));
        // Where no line near the middle can take the cut, it is parsed whole.
        let one_scalar = format!("a: |\n{}", "  text text text\n".repeat(80_000));
        assert!(halves::tree(&one_scalar).is_none());
        assert!(parse(&one_scalar).is_ok());
    }
}
