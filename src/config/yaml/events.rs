//! The tree built straight from granit-parser's events (the parser the YAML
//! crate itself reads with, with the same options), for the files it can
//! build exactly as the deserializer would. `None` means "not here": the
//! file is either wrong (a syntax error, a budget or limit, a second
//! document) or uses what only the deserializer implements (anchors and
//! aliases, tags, merge keys), and `parse` asks the deserializer instead.

use granit_parser::{Event, Parser, ScalarStyle, Span, StrInput};

use super::scalar::scalar;
use super::{MAX_DEPTH, Node, NodeKind, scaled_budget};

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
