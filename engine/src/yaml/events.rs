//! The fast path of [`super::parse`]: the tree built straight from the tokenizer's events.
//!
//! Going through serde (serde-saphyr's `Spanned<Value>`) costs about twice what the tokenizer
//! itself does, and parsing is most of `beslut check` on a large folder. This path covers what
//! workflow files are made of: block and flow mappings and sequences, quoted and plain
//! scalars. Anything else it hands back (`None`) to the serde path, which then gives the same
//! tree or the same error as before: a syntax error, anchors and aliases, tags, a second
//! document, a duplicate or complex key, and any plain scalar whose type is not plainly a word,
//! `true`/`false`, `null`, an integer or a decimal number (dates, `0x1F`, `.inf`, `True`, …).

use super::{Key, Node, Pos, Value};
use granit_parser::{Event, Parser, ScalarStyle};

/// A collection being read, with where it starts.
enum Open {
    Seq(Pos, Vec<Node>),
    /// A mapping's entries so far, and the key waiting for its value.
    Map(Pos, Vec<(Key, Node)>, Option<Key>),
}

/// The tree of `source`, or `None` when the serde path must read it (see the module).
pub(super) fn parse(source: &str) -> Option<Node> {
    build(source).ok()
}

/// As [`parse`], with why the serde path must read it instead.
pub(super) fn build(source: &str) -> Result<Node, &'static str> {
    let mut open: Vec<Open> = Vec::new();
    let mut root = None;
    let mut documents = 0;
    let mut options = granit_parser::Options::default();
    options.set_emit_comments(false);
    for item in Parser::new_from_str_with_options(source, options) {
        let (event, span) = item.map_err(|_| "syntax")?;
        let pos = Pos { line: span.start.line() as u32, column: span.start.col() as u32 + 1 };
        if event.anchor_id().is_some() {
            return Err("anchor");
        }
        match event {
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return Err("documents");
                }
            }
            Event::Scalar(text, style, _, None) => {
                let node = Node { value: scalar(&text, style).ok_or("scalar")?, pos };
                add(&mut open, &mut root, node).ok_or("key")?;
            }
            Event::SequenceStart(_, _, None) => open.push(Open::Seq(pos, Vec::new())),
            Event::MappingStart(_, _, None) => open.push(Open::Map(pos, Vec::new(), None)),
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match open.pop().ok_or("end")? {
                    Open::Seq(pos, items) => Node { value: Value::Seq(items), pos },
                    Open::Map(pos, entries, None) => Node { value: Value::Map(entries), pos },
                    Open::Map(_, _, Some(_)) => return Err("key without value"),
                };
                add(&mut open, &mut root, node).ok_or("key")?;
            }
            Event::Alias(_)
            | Event::Anchor(..)
            | Event::UnresolvedAlias(_)
            | Event::Scalar(.., Some(_))
            | Event::SequenceStart(.., Some(_))
            | Event::MappingStart(.., Some(_)) => return Err("alias or tag"),
            // The stream and document bounds, and comments: nothing in the tree.
            _ => {}
        }
    }
    if !open.is_empty() {
        return Err("unclosed");
    }
    root.ok_or("empty")
}

/// Puts a finished node where it belongs: the document, a sequence, or a mapping's key or value.
fn add(open: &mut [Open], root: &mut Option<Node>, node: Node) -> Option<()> {
    match open.last_mut() {
        None if root.is_none() => *root = Some(node),
        None => return None,
        Some(Open::Seq(_, items)) => items.push(node),
        Some(Open::Map(_, entries, pending)) => match pending.take() {
            Some(key) => entries.push((key, node)),
            None => {
                let name = key_name(node.value)?;
                if entries.iter().any(|(k, _)| k.name == name) {
                    return None;
                }
                *pending = Some(Key { name, pos: node.pos });
            }
        },
    }
    Some(())
}

/// A key as the serde path names it; lists and mappings as keys are left to it.
fn key_name(value: Value) -> Option<String> {
    match value {
        Value::Str(s) => Some(s),
        Value::Int(i) => Some(i.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Null => Some(String::new()),
        Value::Seq(_) | Value::Map(_) => None,
    }
}

/// A scalar's value: quoted and block scalars are text; a plain one is typed as the serde path
/// types it, or `None` where that is not certain.
fn scalar(text: &str, style: ScalarStyle) -> Option<Value> {
    if style != ScalarStyle::Plain {
        return Some(Value::Str(text.to_string()));
    }
    match text {
        "true" => return Some(Value::Bool(true)),
        "false" => return Some(Value::Bool(false)),
        "" | "~" | "null" => return Some(Value::Null),
        "True" | "TRUE" | "False" | "FALSE" | "Null" | "NULL" => return None,
        _ => {}
    }
    let first = text.chars().next()?;
    if !(first.is_ascii_digit() || matches!(first, '-' | '+' | '.')) || is_prose(text) {
        return Some(Value::Str(text.to_string()));
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if is_integer(digits) {
        return text.parse().ok().map(Value::Int);
    }
    if is_decimal(digits) {
        return text.parse().ok().map(Value::Float);
    }
    None
}

/// Text no reader takes for a number, date or time: it has a letter that none of those has
/// (`10 arbetsdagar`), or a character outside them.
fn is_prose(text: &str) -> bool {
    text.chars().any(|c| {
        (c.is_alphabetic() && !"eExXoOaAbBcCdDfFtTzZiInN".contains(c))
            || !(c.is_ascii_alphanumeric() || " +-.:_".contains(c))
    })
}

/// `0` or digits without a leading zero (which some readers take for octal).
fn is_integer(digits: &str) -> bool {
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && (digits == "0" || !digits.starts_with('0'))
}

/// `1.5`, `0.25`, `10.`: digits, a point, digits; no exponent.
fn is_decimal(digits: &str) -> bool {
    let Some((whole, fraction)) = digits.split_once('.') else { return false };
    is_integer(whole) && fraction.bytes().all(|b| b.is_ascii_digit())
}
