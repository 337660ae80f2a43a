//! A small YAML tree that remembers the line of every node.
//!
//! Generic YAML values drop positions, so the task file is read through the
//! event parser of `yaml-rust2` into [`Node`]s that carry their line in the
//! parsed text (1-based). Scalars stay text: the task-file parser decides
//! what each key's value must be.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Nesting deeper than this is refused (protects the stack on hostile input).
const MAX_DEPTH: usize = 64;
/// More nodes than this is refused (protects memory against alias bombs).
const MAX_NODES: usize = 200_000;

/// One YAML node and the line (1-based, in the parsed text) where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub line: usize,
    pub kind: Kind,
}

/// What a node holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// A scalar; `plain` is false when it was quoted or a block scalar.
    Scalar {
        value: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    /// Pairs in file order (duplicate keys are reported by the parser).
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// True for `~`, `null`, `Null`, `NULL` and an empty plain scalar.
    pub fn is_null(&self) -> bool {
        match &self.kind {
            Kind::Scalar { value, plain: true } => {
                matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL")
            }
            _ => false,
        }
    }

    /// True for a plain (unquoted, not block) scalar.
    pub fn is_plain(&self) -> bool {
        matches!(self.kind, Kind::Scalar { plain: true, .. })
    }

    /// The text of a scalar (None for sequences and mappings).
    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// A short name of the node's type for messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar { .. } if self.is_null() => "null",
            Kind::Scalar { .. } => "a scalar",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

/// A YAML syntax error at a line of the parsed text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct YamlError {
    pub line: usize,
    pub message: String,
}

/// An open collection: anchor id, start line, content so far.
enum Frame {
    Seq(usize, usize, Vec<Node>),
    Map(usize, usize, Vec<(Node, Node)>, Option<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: std::collections::HashMap<usize, Node>,
    docs: Vec<Node>,
    nodes: usize,
    error: Option<YamlError>,
}

impl Builder {
    fn fail(&mut self, line: usize, message: &str) {
        if self.error.is_none() {
            self.error = Some(YamlError {
                line,
                message: message.to_string(),
            });
        }
    }

    fn push_value(&mut self, node: Node, anchor: usize) {
        self.nodes = self.nodes.saturating_add(1);
        if self.nodes > MAX_NODES {
            self.fail(node.line, "the document is too large (too many nodes)");
            return;
        }
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, pairs, key)) => match key.take() {
                None => *key = Some(node),
                Some(k) => pairs.push((k, node)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let line = mark.line().max(1);
        match ev {
            Event::Scalar(value, style, anchor, _tag) => {
                let plain = style == TScalarStyle::Plain;
                self.push_value(
                    Node {
                        line,
                        kind: Kind::Scalar { value, plain },
                    },
                    anchor,
                );
            }
            Event::SequenceStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    self.fail(line, "the document is nested too deeply");
                    return;
                }
                self.stack.push(Frame::Seq(anchor, line, Vec::new()));
            }
            Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    self.fail(line, "the document is nested too deeply");
                    return;
                }
                self.stack.push(Frame::Map(anchor, line, Vec::new(), None));
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq(anchor, start, items)) => self.push_value(
                    Node {
                        line: start,
                        kind: Kind::Seq(items),
                    },
                    anchor,
                ),
                Some(Frame::Map(anchor, start, pairs, _)) => self.push_value(
                    Node {
                        line: start,
                        kind: Kind::Map(pairs),
                    },
                    anchor,
                ),
                None => self.fail(line, "unbalanced document structure"),
            },
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    node.line = line;
                    let size = count(&node);
                    self.nodes = self.nodes.saturating_add(size);
                    self.push_value(node, 0);
                }
                None => self.fail(line, "unknown yaml alias"),
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

fn count(node: &Node) -> usize {
    match &node.kind {
        Kind::Scalar { .. } => 1,
        Kind::Seq(items) => items.iter().map(count).fold(1usize, usize::saturating_add),
        Kind::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| count(k).saturating_add(count(v)))
            .fold(1usize, usize::saturating_add),
    }
}

/// Parses one YAML document. An empty text gives `Ok(None)`; more than one
/// document is an error.
pub(crate) fn parse(text: &str) -> Result<Option<Node>, YamlError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        return Err(YamlError {
            line: e.marker().line().max(1),
            message: e.info().to_string(),
        });
    }
    if let Some(e) = builder.error {
        return Err(e);
    }
    let mut docs = builder.docs.into_iter();
    let first = docs.next();
    if let Some(second) = docs.next() {
        return Err(YamlError {
            line: second.line,
            message: "the file holds more than one yaml document".to_string(),
        });
    }
    Ok(first)
}
