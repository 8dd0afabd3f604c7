//! The budgets of a file that the event builder leaves to the deserializer,
//! counted on the parser's events before the deserializer reads it: what
//! the text holds (events, values, bytes of values, nesting), and what its
//! aliases copy. A breach is an error at the event that goes over — for
//! aliases, the `*alias` whose copy does — that says which budget, and why:
//! an anchor that holds aliases itself (as in a "billion laughs") is told
//! apart from one large value shared often. The deserializer then runs with
//! budgets no tighter than these (see `deserializer::parse_with_serde`), so
//! it stops on none of them first.

use granit_parser::{Event, Parser, Span, StrInput, Tag};

use super::{MAX_DEPTH, ParseError, alias_budget, scaled_budget, to_u32};

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
                count.start(&span, anchor, tag_len(tag.as_deref()))?;
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

    /// A mapping or sequence starts at `span`, with anchor `anchor` (0 for
    /// none) and a tag of `bytes` bytes.
    fn start(&mut self, span: &Span, anchor: usize, bytes: usize) -> Result<(), ParseError> {
        self.read(span, 1, bytes)?;
        self.keep(span, 1, bytes, usize::from(anchor != 0))?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let (message, hint) = super::deserializer::too_deep();
            return Err(limit(span, message, hint));
        }
        if let Some(open) = self.open.last_mut() {
            open.deepest = open.deepest.max(self.depth);
        }
        if anchor != 0 {
            self.open.push(Open {
                id: anchor,
                depth: self.depth,
                events: self.events + self.copied_events - 1,
                bytes: self.bytes + self.copied_bytes - bytes,
                deepest: self.depth,
                nested: false,
                name: String::new(),
                line: 0,
            });
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::tests::char_at;
    use super::super::{Node, NodeKind, parse};

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
}
