//! Reading typed values out of a positioned YAML tree, reporting every mismatch.
//!
//! Each reader reports its own problem and returns `None`, so that the caller can carry on and
//! find the next problem in the same file.

use super::model::{Expr, Ref, Template, Text};
use crate::diagnostic::{Msg, Report, suggest};
use crate::duration::Duration;
use crate::msg;
use crate::yaml::{Key, Node, Pos, Value};

/// A YAML mapping being read: tracks which keys are allowed.
pub struct Obj<'n> {
    pub pos: Pos,
    pub entries: &'n [(Key, Node)],
}

impl<'n> Obj<'n> {
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Reports a missing required key at the mapping's position.
    pub fn require(&self, r: &mut Report, key: &str) -> Option<&'n Node> {
        let node = self.get(key);
        if node.is_none() {
            r.error(
                self.pos,
                "missing-key",
                msg!("nyckeln `{key}` saknas här", "the key `{key}` is missing here"),
                Some(msg!("lägg till `{key}: …`", "add `{key}: …`")),
            );
        }
        node
    }

    /// Reports keys that are not in `allowed`. Keys that belong to a sibling kind (another state
    /// type, say) get their own code, so that the fix is to move the key, not respell it.
    pub fn check_keys(&self, r: &mut Report, allowed: &[&str], other_kind: Option<(&[&str], &str, &'static str)>) {
        for (key, _) in self.entries {
            if allowed.contains(&key.name.as_str()) {
                continue;
            }
            let name = &key.name;
            if let Some((_, kind, code)) = other_kind.filter(|(others, _, _)| others.contains(&name.as_str())) {
                r.error(
                    key.pos,
                    code,
                    msg!("`{name}` hör inte till typen `{kind}`", "`{name}` does not belong to the type `{kind}`"),
                    Some(msg!(
                        "ta bort `{name}` eller byt typ; här gäller: {list}",
                        "remove `{name}` or change the type; allowed here: {list}",
                        list = allowed.join(", ")
                    )),
                );
                continue;
            }
            r.error(
                key.pos,
                "unknown-key",
                msg!("okänd nyckel `{name}`", "unknown key `{name}`"),
                Some(suggest(name, allowed.iter().copied())),
            );
        }
    }
}

/// Reads a mapping; anything else is reported as the wrong type.
pub fn obj<'n>(r: &mut Report, node: &'n Node, what: &Msg) -> Option<Obj<'n>> {
    match &node.value {
        Value::Map(entries) => Some(Obj { pos: node.pos, entries }),
        Value::Null => Some(Obj { pos: node.pos, entries: &[] }),
        _ => {
            wrong_type(
                r,
                node,
                what,
                &Msg::new("en mappning (`nyckel: värde` på egna rader)", "a mapping (`key: value` lines)"),
            );
            None
        }
    }
}

pub fn wrong_type(r: &mut Report, node: &Node, what: &Msg, expected: &Msg) {
    let found = describe(&node.value);
    r.error(
        node.pos,
        "wrong-type",
        Msg::new(
            format!("{} ska vara {}, men är {}", what.sv, expected.sv, found.sv),
            format!("{} must be {}, but is {}", what.en, expected.en, found.en),
        ),
        None,
    );
}

fn describe(value: &Value) -> Msg {
    match value {
        Value::Null => Msg::new("tomt", "empty"),
        Value::Bool(_) => Msg::new("ett sanningsvärde", "a boolean"),
        Value::Int(_) | Value::Float(_) => Msg::new("ett tal", "a number"),
        Value::Str(_) => Msg::new("en text", "a text"),
        Value::Seq(_) => Msg::new("en lista", "a list"),
        Value::Map(_) => Msg::new("en mappning", "a mapping"),
    }
}

/// Reads plain text (a string, or a number written without quotes).
pub fn string(r: &mut Report, node: &Node, what: &Msg) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        _ => {
            wrong_type(r, node, what, &Msg::new("en text", "a text"));
            None
        }
    }
}

/// Reads a label: a string, or `{sv: …, en: …}`.
pub fn text(r: &mut Report, node: &Node, what: &Msg) -> Option<Text> {
    match &node.value {
        Value::Str(s) => Some(Text::plain(s.clone())),
        Value::Map(_) => {
            let o = obj(r, node, what)?;
            o.check_keys(r, &["sv", "en"], None);
            let sv = o.require(r, "sv").and_then(|n| plain_text(r, n, what))?;
            let en = o.get("en").and_then(|n| plain_text(r, n, what));
            Some(Text { sv, en })
        }
        _ => {
            wrong_type(r, node, what, &Msg::new("en text eller `{sv: …, en: …}`", "a text or `{sv: …, en: …}`"));
            None
        }
    }
}

fn plain_text(r: &mut Report, node: &Node, what: &Msg) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        _ => {
            wrong_type(r, node, what, &Msg::new("en text", "a text"));
            None
        }
    }
}

pub fn boolean(r: &mut Report, node: &Node, what: &Msg) -> Option<bool> {
    match &node.value {
        Value::Bool(b) => Some(*b),
        _ => {
            wrong_type(r, node, what, &Msg::new("`true` eller `false`", "`true` or `false`"));
            None
        }
    }
}

pub fn whole_number(r: &mut Report, node: &Node, what: &Msg) -> Option<u32> {
    match &node.value {
        Value::Int(i) if (0..=i64::from(u32::MAX)).contains(i) => Some(*i as u32),
        _ => {
            wrong_type(r, node, what, &Msg::new("ett heltal, 0 eller större", "a whole number, 0 or more"));
            None
        }
    }
}

pub fn number(r: &mut Report, node: &Node, what: &Msg) -> Option<f64> {
    match &node.value {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => {
            wrong_type(r, node, what, &Msg::new("ett tal", "a number"));
            None
        }
    }
}

/// Reads a reference to something named elsewhere (a state, role, field …).
pub fn reference(r: &mut Report, node: &Node, what: &Msg) -> Option<Ref> {
    string(r, node, what).map(|name| Ref { name, pos: node.pos })
}

/// Reads a CEL expression; plain numbers and booleans are expressions too.
pub fn expr(r: &mut Report, node: &Node, what: &Msg) -> Option<Expr> {
    let source = match &node.value {
        Value::Bool(b) => b.to_string(),
        _ => string(r, node, what)?,
    };
    Some(Expr { source, pos: node.pos })
}

pub fn template(r: &mut Report, node: &Node, what: &Msg) -> Option<Template> {
    string(r, node, what).map(|source| Template { source, pos: node.pos })
}

pub fn duration(r: &mut Report, node: &Node, what: &Msg) -> Option<Duration> {
    let text = string(r, node, what)?;
    match Duration::parse(&text) {
        Ok(d) => Some(d),
        Err(unit) => {
            let help = if unit.is_empty() || unit.chars().any(|c| c.is_ascii_digit()) {
                Msg::new(
                    "skriv ett heltal och en enhet, t.ex. `10 working days`, `10 arbetsdagar`, `3 dagar`, `4 timmar`",
                    "write a whole number and a unit, e.g. `10 working days`, `10 arbetsdagar`, `3 days`, `4 hours`",
                )
            } else {
                suggest(&unit, Duration::unit_words())
            };
            r.error(
                node.pos,
                "invalid-duration",
                msg!("`{text}` är ingen giltig tidsrymd", "`{text}` is not a valid duration"),
                Some(help),
            );
            None
        }
    }
}

/// Reads a list; a single value where a list is expected is reported.
pub fn list<'n>(r: &mut Report, node: &'n Node, what: &Msg) -> Option<&'n [Node]> {
    match &node.value {
        Value::Seq(items) => Some(items),
        Value::Null => Some(&[]),
        _ => {
            wrong_type(
                r,
                node,
                what,
                &Msg::new("en lista (rader som börjar med `- `)", "a list (lines starting with `- `)"),
            );
            None
        }
    }
}

/// Checks an id: ASCII lower-case letters, digits, `-` and `_`, starting with a letter.
pub fn check_id(r: &mut Report, name: &str, pos: Pos) -> bool {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        let fixed = ascii_id(name);
        r.error(
            pos,
            "invalid-value",
            msg!("`{name}` är inget giltigt id", "`{name}` is not a valid id"),
            Some(msg!(
                "id skrivs med a–z, 0–9, `-` och `_` och börjar med en bokstav, t.ex. `{fixed}`; skriv svensk text i `label`",
                "ids use a–z, 0–9, `-` and `_` and start with a letter, e.g. `{fixed}`; put Swedish text in `label`"
            )),
        );
    }
    valid
}

/// A suggestion for an id: Swedish letters folded to ASCII, other characters to `_`.
fn ascii_id(name: &str) -> String {
    let folded: String = name
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'å' | 'ä' => 'a',
            'ö' => 'o',
            'é' => 'e',
            c if c.is_ascii_alphanumeric() || c == '-' || c == '_' => c,
            _ => '_',
        })
        .collect();
    if folded.starts_with(|c: char| c.is_ascii_lowercase()) { folded } else { format!("x{folded}") }
}

/// Reads one of a fixed set of words.
pub fn choice<T: Copy>(r: &mut Report, node: &Node, what: &Msg, options: &[(&str, T)]) -> Option<T> {
    let text = string(r, node, what)?;
    if let Some((_, value)) = options.iter().find(|(name, _)| *name == text) {
        return Some(*value);
    }
    r.error(
        node.pos,
        "invalid-value",
        Msg::new(
            format!("`{text}` är inte tillåtet som {}", what.sv),
            format!("`{text}` is not allowed as {}", what.en),
        ),
        Some(suggest(&text, options.iter().map(|(name, _)| *name))),
    );
    None
}

/// Iterates a mapping whose keys are ids (states, fields, actions …), checking each id.
pub fn entries<'n>(r: &mut Report, node: &'n Node, what: &Msg) -> Vec<(&'n Key, &'n Node)> {
    let Some(o) = obj(r, node, what) else { return Vec::new() };
    o.entries.iter().filter(|(k, _)| check_id(r, &k.name, k.pos)).map(|(k, v)| (k, v)).collect()
}

/// Reads `{name: EXPRESSION, …}`.
pub fn expr_map(r: &mut Report, node: &Node, what: &Msg) -> Vec<(Ref, Expr)> {
    let Some(o) = obj(r, node, what) else { return Vec::new() };
    o.entries
        .iter()
        .filter_map(|(k, v)| {
            let e = expr(r, v, what)?;
            Some((Ref { name: k.name.clone(), pos: k.pos }, e))
        })
        .collect()
}
