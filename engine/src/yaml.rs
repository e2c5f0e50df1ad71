//! A YAML document as a tree of nodes that remember where they stand in the file.
//!
//! Workflow files are converted by hand from this tree rather than by serde derive, so that one
//! run reports every mistake in a file (not just the first), in Swedish or English, with the
//! exact line and column of the offending key or value.

mod events;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

/// A position in a source file, 1-based.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

/// One YAML value with the position where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// The shape of a YAML value; mappings keep their keys' positions and their order.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A mapping key and where it stands.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

/// A YAML syntax error with its position.
#[derive(Clone, Debug)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Parses one YAML document into a tree of positioned nodes.
pub fn parse(source: &str) -> Result<Node, SyntaxError> {
    if source.trim().is_empty() {
        return Ok(Node { value: Value::Null, pos: Pos { line: 1, column: 1 } });
    }
    events::parse(source).map_or_else(|| via_serde(source), Ok)
}

/// The tree through serde-saphyr: every YAML feature, and its error messages.
fn via_serde(source: &str) -> Result<Node, SyntaxError> {
    // Only `true`/`false` are booleans: a process owner's `ja`, `yes` or `no` stays text and is
    // reported where a boolean is expected, rather than silently flipping meaning.
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    // Comments are never read from the tree; capturing them was a fifth of the parse.
    options.emit_comments = false;
    match serde_saphyr::from_str_with_options::<Spanned<Value>>(source, options) {
        Ok(spanned) => Ok(Node { pos: pos_of(&spanned), value: spanned.value }),
        Err(err) => {
            let pos = err
                .location()
                .map(|l| Pos { line: l.line() as u32, column: l.column() as u32 })
                .unwrap_or(Pos { line: 1, column: 1 });
            Err(SyntaxError { pos, message: first_line(&err.without_snippet().to_string()) })
        }
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    // serde-saphyr appends its own position; ours is reported separately.
    match line.rfind(" at line ") {
        Some(cut) => line[..cut].to_string(),
        None => line.to_string(),
    }
}

fn pos_of<T>(spanned: &Spanned<T>) -> Pos {
    Pos { line: spanned.referenced.line() as u32, column: spanned.referenced.column() as u32 }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v).map(Value::Int).map_err(|_| E::custom("number too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Value>>()? {
            items.push(Node { pos: pos_of(&item), value: item.value });
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Value>>()? {
            let value = map.next_value::<Spanned<Value>>()?;
            let key_pos = pos_of(&key);
            let name = match key.value {
                Value::Str(s) => s,
                Value::Int(i) => i.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Float(f) => f.to_string(),
                Value::Null => String::new(),
                Value::Seq(_) | Value::Map(_) => {
                    return Err(de::Error::custom("a key must be a plain word, not a list or a mapping"));
                }
            };
            entries.push((Key { name, pos: key_pos }, Node { pos: pos_of(&value), value: value.value }));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positions_of_keys_and_values() {
        let node = parse("a: 1\nb:\n  c: [x, 'y']\n").unwrap();
        let Value::Map(entries) = node.value else { panic!("not a map") };
        assert_eq!(entries[1].0.pos, Pos { line: 2, column: 1 });
        let Value::Map(inner) = &entries[1].1.value else { panic!("not a map") };
        assert_eq!(inner[0].0.pos, Pos { line: 3, column: 3 });
        let Value::Seq(items) = &inner[0].1.value else { panic!("not a seq") };
        assert_eq!(items[1].pos, Pos { line: 3, column: 10 });
        assert_eq!(items[1].value, Value::Str("y".into()));
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1, "{err:?}");
        eprintln!("{err:?}");
    }

    #[test]
    fn rejects_duplicate_keys() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        eprintln!("{err:?}");
        assert_eq!(err.pos.line, 3);
    }

    /// The fast path gives exactly the serde path's tree, positions included, for every YAML
    /// file of the project and of the `check` corpus that it reads at all; and it reads the
    /// sample workflows.
    #[test]
    fn both_paths_build_the_same_tree() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        let mut dirs = vec![root.join("workflows"), root.join("tests/check")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    files.push(path);
                }
            }
        }
        assert!(files.len() > 50, "the corpus is there: {}", files.len());
        let mut fast = 0;
        for path in &files {
            let source = std::fs::read_to_string(path).unwrap();
            if let Some(tree) = events::parse(&source) {
                fast += 1;
                assert_eq!(Ok(tree), via_serde(&source).map_err(|e| e.message), "{}", path.display());
            }
        }
        for sample in ["andring-av-it", "finansieringsansokan", "produktionssattning"] {
            let source = std::fs::read_to_string(root.join(format!("workflows/{sample}.yaml"))).unwrap();
            assert_eq!(events::build(&source).err(), None, "{sample} takes the fast path");
        }
        eprintln!("{fast} of {} files took the fast path", files.len());
    }

    #[test]
    fn unusual_scalars_and_duplicates_go_the_serde_way() {
        for source in ["a: 2026-03-02\n", "a: 0x1F\n", "a: True\n", "a: 1e3\n", "a: 1\na: 2\n", "a: &x 1\nb: *x\n"] {
            assert!(events::parse(source).is_none(), "{source}");
        }
        let node = events::parse("a: -12\nb: 0.5\nc: ~\nd: '007'\n").unwrap();
        let Value::Map(entries) = node.value else { panic!() };
        let values: Vec<&Value> = entries.iter().map(|(_, n)| &n.value).collect();
        assert_eq!(values, [&Value::Int(-12), &Value::Float(0.5), &Value::Null, &Value::Str("007".into())]);
    }

    #[test]
    fn yes_and_no_stay_text() {
        let node = parse("a: yes\nb: 'true'\nc: true\nd: 1.5\ne: ~\n").unwrap();
        let Value::Map(entries) = node.value else { panic!() };
        assert_eq!(entries[0].1.value, Value::Str("yes".into()));
        assert_eq!(entries[1].1.value, Value::Str("true".into()));
        assert_eq!(entries[2].1.value, Value::Bool(true));
        assert_eq!(entries[3].1.value, Value::Float(1.5));
        assert_eq!(entries[4].1.value, Value::Null);
    }
}
