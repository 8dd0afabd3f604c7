//! The tree as serde-saphyr's deserializer builds it, through
//! `Spanned<NodeKind>`: for what the event builder leaves to it (anchors and
//! aliases, tags, merge keys), and for every error, whose message and place
//! are the crate's own, made to read for a person.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{MAX_DEPTH, Node, NodeKind, ParseError, alias_budget, budgets, scaled_budget, to_u32};

/// The tree as the YAML crate's deserializer builds it. [`budgets`] holds
/// the text to its budgets first, placing a breach where it happens; the
/// deserializer's own budgets are set no tighter than those, and its
/// heuristic that takes many aliases of few anchors for an attack is off:
/// sharing one value many times is what anchors are for.
pub(super) fn parse_with_serde(text: &str) -> Result<Node, ParseError> {
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
pub(super) fn too_deep() -> (String, String) {
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
