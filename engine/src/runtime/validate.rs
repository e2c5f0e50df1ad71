//! Case data and form data checked against their fields, and normalised (defaults filled in,
//! numbers given as text turned into numbers).

use super::World;
use crate::definition::model::{Field, FieldType, ValuesFrom};
use crate::diagnostic::Msg;
use crate::msg;
use serde::Serialize;
use serde_json::{Map, Value};

/// One problem with one field, for the person who filled it in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub field: String,
    pub code: &'static str,
    pub message: MsgOut,
}

/// A message in both languages, serialisable for the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MsgOut {
    pub sv: String,
    pub en: String,
}

impl From<Msg> for MsgOut {
    fn from(m: Msg) -> MsgOut {
        MsgOut { sv: m.sv, en: m.en }
    }
}

fn problem(field: &Field, code: &'static str, message: Msg) -> Problem {
    Problem { field: field.id.clone(), code, message: message.into() }
}

/// Checks `input` against `fields`: every problem is reported, none is fixed silently.
/// Returns the data with defaults filled in.
pub fn data(world: &World, fields: &[&Field], input: &Map<String, Value>) -> Result<Map<String, Value>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut out = Map::new();
    for key in input.keys() {
        if !fields.iter().any(|f| &f.id == key) {
            problems.push(Problem {
                field: key.clone(),
                code: "unknown-field",
                message: msg!(
                    "fältet `{key}` finns inte i arbetsflödet",
                    "the field `{key}` is not part of the workflow"
                )
                .into(),
            });
        }
    }
    for field in fields {
        let given = input.get(&field.id).filter(|v| !is_empty(v));
        match (given, &field.default) {
            (Some(value), _) => match value_of(world, field, value) {
                Ok(v) => {
                    out.insert(field.id.clone(), v);
                }
                Err(p) => problems.push(p),
            },
            (None, Some(default)) => {
                out.insert(field.id.clone(), default.clone());
            }
            (None, None) if field.required => {
                let label = &field.label.sv;
                let label_en = field.label.en.as_deref().unwrap_or(label);
                problems.push(problem(field, "required", msg!("{label} måste fyllas i", "{label_en} is required")));
            }
            (None, None) => {}
        }
    }
    if problems.is_empty() { Ok(out) } else { Err(problems) }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// One value checked against its field.
pub fn value_of(world: &World, field: &Field, value: &Value) -> Result<Value, Problem> {
    let checked = match field.kind {
        FieldType::List => list(world, field, value),
        kind => scalar(world, field, kind, value),
    }?;
    bounds(field, &checked)?;
    Ok(checked)
}

fn list(world: &World, field: &Field, value: &Value) -> Result<Value, Problem> {
    let Value::Array(items) = value else {
        return Err(problem(field, "wrong-type", Msg::new("ska vara en lista", "must be a list")));
    };
    let kind = field.items.unwrap_or(FieldType::Text);
    items.iter().map(|item| scalar(world, field, kind, item)).collect::<Result<Vec<_>, _>>().map(Value::Array)
}

fn scalar(world: &World, field: &Field, kind: FieldType, value: &Value) -> Result<Value, Problem> {
    let text = value.as_str().map(str::trim);
    let wrong = |sv: &str, en: &str| Err(problem(field, "wrong-type", Msg::new(sv, en)));
    match kind {
        FieldType::Text => {
            text.map(|t| Value::String(t.to_string())).map_or_else(|| wrong("ska vara en text", "must be a text"), Ok)
        }
        FieldType::Number | FieldType::Money => number(field, kind, value),
        FieldType::Boolean => match (value, text) {
            (Value::Bool(b), _) => Ok(Value::Bool(*b)),
            (_, Some("true" | "ja" | "on")) => Ok(Value::Bool(true)),
            (_, Some("false" | "nej" | "off")) => Ok(Value::Bool(false)),
            _ => wrong("ska vara ja eller nej", "must be yes or no"),
        },
        FieldType::Date => match text {
            Some(t) if jiff::civil::Date::strptime("%Y-%m-%d", t).is_ok() => Ok(Value::String(t.to_string())),
            _ => wrong("ska vara ett datum (ÅÅÅÅ-MM-DD)", "must be a date (YYYY-MM-DD)"),
        },
        FieldType::Email => match text {
            Some(t) if t.split_once('@').is_some_and(|(a, d)| !a.is_empty() && d.contains('.')) && !t.contains(' ') => {
                Ok(Value::String(t.to_string()))
            }
            _ => wrong("ska vara en e-postadress", "must be an email address"),
        },
        FieldType::Person => match text {
            Some(t) if world.directory.person(t).is_some() => Ok(Value::String(t.to_string())),
            _ => wrong("ska vara en person i katalogen", "must be a person in the directory"),
        },
        FieldType::Enum => enum_value(world, field, text),
        FieldType::List => wrong("listor kan inte innehålla listor", "lists cannot hold lists"),
    }
}

fn number(field: &Field, kind: FieldType, value: &Value) -> Result<Value, Problem> {
    let parsed = match value {
        Value::Number(n) => n.as_f64(),
        // Forms send text; Swedish writes "150 000,50".
        Value::String(s) => s.replace([' ', '\u{a0}'], "").replace(',', ".").trim_end_matches("kr").trim().parse().ok(),
        _ => None,
    };
    let Some(n) = parsed.filter(|n: &f64| n.is_finite()) else {
        return Err(problem(field, "wrong-type", Msg::new("ska vara ett tal", "must be a number")));
    };
    if kind == FieldType::Money && (n * 100.0 - (n * 100.0).round()).abs() > 1e-6 {
        return Err(problem(
            field,
            "wrong-type",
            Msg::new(
                "belopp anges i kronor med högst två decimaler",
                "amounts are in kronor with at most two decimals",
            ),
        ));
    }
    Ok(if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    })
}

fn enum_value(world: &World, field: &Field, text: Option<&str>) -> Result<Value, Problem> {
    let allowed: Vec<String> = match field.values_from {
        Some(ValuesFrom::Forvaltningar) => world.directory.forvaltningar.iter().map(|f| f.id.clone()).collect(),
        Some(ValuesFrom::Portfolios) => {
            world.frames.iter().flat_map(|(_, p)| p.portfolios.iter().map(|p| p.id.clone())).collect()
        }
        None => field.values.iter().map(|v| v.id.clone()).collect(),
    };
    match text {
        Some(t) if allowed.iter().any(|a| a == t) => Ok(Value::String(t.to_string())),
        _ => {
            let list = allowed.join(", ");
            Err(problem(field, "invalid-value", msg!("ska vara ett av: {list}", "must be one of: {list}")))
        }
    }
}

fn bounds(field: &Field, value: &Value) -> Result<(), Problem> {
    let Some(n) = value.as_f64() else { return Ok(()) };
    if let Some(min) = field.min.filter(|min| n < *min) {
        return Err(problem(
            field,
            "out-of-range",
            msg!("får inte vara mindre än {min}", "must not be less than {min}"),
        ));
    }
    if let Some(max) = field.max.filter(|max| n > *max) {
        return Err(problem(
            field,
            "out-of-range",
            msg!("får inte vara större än {max}", "must not be greater than {max}"),
        ));
    }
    Ok(())
}
