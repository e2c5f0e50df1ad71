//! Guard and data expressions in CEL (Common Expression Language): safe, total, no loops.
//!
//! CEL has no static type checker in the `cel` crate, so a definition's expressions are type
//! checked by evaluating them against sample values of the declared field types: a comparison
//! of a text with a number fails there exactly as it would fail on a real case.

use crate::definition::model::{Field, FieldType};
use cel::common::ast::Expr;
use cel::parser::Expression as IdedExpr;
use cel::{Context, ExecutionError, Program, Value};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

/// Where and why an expression does not parse: column (1-based, in the expression), the
/// offending text, and the parser's reason.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub column: u32,
    pub problem: Problem,
}

/// The parser's complaint, reduced to what a process owner can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Text that does not belong where it stands (`>>`, a stray word).
    Unexpected(String),
    /// The expression stops before it is complete (`klassning ==`).
    EndsEarly,
    /// A character the language does not have, or an unclosed string.
    BadCharacter(String),
    Other(String),
}

impl Problem {
    fn from_parser(message: &str) -> Problem {
        let message = message.replace("Syntax error: ", "");
        let quoted = |m: &str| m.split('\'').nth(1).unwrap_or_default().to_string();
        if message.starts_with("mismatched input '<EOF>'") {
            Problem::EndsEarly
        } else if message.starts_with("extraneous input") || message.starts_with("mismatched input") {
            Problem::Unexpected(quoted(&message))
        } else if message.starts_with("token recognition error") {
            Problem::BadCharacter(quoted(&message))
        } else {
            Problem::Other(message)
        }
    }

    /// How many characters of the expression the problem covers.
    pub fn width(&self) -> usize {
        match self {
            Problem::Unexpected(t) | Problem::BadCharacter(t) => t.chars().count().max(1),
            _ => 1,
        }
    }
}

/// Compiles an expression.
/// The compiled program of `source`, parsed once per process: a workflow has a few dozen
/// expressions, evaluated on every decision.
pub fn cached(source: &str) -> Result<Arc<Program>, SyntaxError> {
    static PROGRAMS: LazyLock<Mutex<HashMap<String, Arc<Program>>>> = LazyLock::new(Mutex::default);
    // Sources come from workflow files; the bound only guards against a flood of edits.
    const MOST: usize = 10_000;
    if let Some(program) = PROGRAMS.lock().unwrap_or_else(|p| p.into_inner()).get(source) {
        return Ok(program.clone());
    }
    let program = Arc::new(compile(source)?);
    let mut programs = PROGRAMS.lock().unwrap_or_else(|p| p.into_inner());
    if programs.len() >= MOST {
        programs.clear();
    }
    programs.insert(source.to_string(), program.clone());
    Ok(program)
}

pub fn compile(source: &str) -> Result<Program, SyntaxError> {
    // The cel parser panics on some malformed inputs; a process owner's typo must not crash check.
    let result = std::panic::catch_unwind(|| Program::compile(source));
    match result {
        Ok(Ok(program)) => Ok(program),
        Ok(Err(errors)) => {
            let first = errors.errors.first();
            // CEL columns are already 1-based.
            let column = first.map_or(1, |e| e.pos.1.max(1) as u32);
            let problem = first.map_or(Problem::EndsEarly, |e| Problem::from_parser(&e.msg));
            Err(SyntaxError { column, problem })
        }
        Err(_) => Err(SyntaxError { column: 1, problem: Problem::Other("the parser gave up".into()) }),
    }
}

/// The variable names an expression reads.
pub fn variables(program: &Program) -> Vec<String> {
    program.references().variables().into_iter().map(str::to_string).collect()
}

/// What kind of value an expression gave in a trial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Number,
    Bool,
    List,
    Map,
    Null,
    Other,
}

pub fn kind_of(value: &Value) -> Kind {
    match value {
        Value::String(_) => Kind::Text,
        Value::Int(_) | Value::UInt(_) | Value::Float(_) => Kind::Number,
        Value::Bool(_) => Kind::Bool,
        Value::List(_) => Kind::List,
        Value::Map(_) => Kind::Map,
        Value::Null => Kind::Null,
        _ => Kind::Other,
    }
}

/// The kind a field's values have inside expressions.
pub fn field_kind(kind: FieldType) -> Kind {
    match kind {
        FieldType::Number | FieldType::Money => Kind::Number,
        FieldType::Boolean => Kind::Bool,
        FieldType::List => Kind::List,
        _ => Kind::Text,
    }
}

/// The result of a trial evaluation.
pub enum Trial {
    Value(Value),
    /// Operands of the wrong kinds for an operator or function.
    TypeError(Mismatch),
    /// A function that does not exist.
    UnknownFunction(String),
    /// Anything else (division by zero on samples, a missing map key) says nothing about types.
    Inconclusive,
}

/// An operator or function applied to values of kinds it does not take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The operator as written (`>`, `+`, `==`) or the function's name; empty when unknown.
    pub operator: String,
    pub kinds: Vec<Kind>,
}

/// The operator as a process owner wrote it, from CEL's internal name (`_>_` → `>`).
fn operator_text(name: &str) -> String {
    match name {
        "@in" => "in".to_string(),
        "add" => "+".to_string(),
        "sub" => "-".to_string(),
        "mul" => "*".to_string(),
        "div" => "/".to_string(),
        other => other.trim_matches('_').to_string(),
    }
}

fn kind_of_type_name(name: &str) -> Kind {
    match name {
        "string" => Kind::Text,
        "int" | "uint" | "double" => Kind::Number,
        "bool" => Kind::Bool,
        "list" => Kind::List,
        "map" => Kind::Map,
        "null" => Kind::Null,
        _ => Kind::Other,
    }
}

fn mismatch(error: &ExecutionError) -> Option<Mismatch> {
    let (operator, kinds) = match error {
        ExecutionError::NoSuchOverload(e) => {
            (e.function(), e.argument_types().iter().map(|t| kind_of_type_name(t)).collect())
        }
        ExecutionError::UnsupportedBinaryOperator(op, a, b) => (*op, vec![kind_of(a), kind_of(b)]),
        ExecutionError::ValuesNotComparable(a, b) => ("<", vec![kind_of(a), kind_of(b)]),
        ExecutionError::UnexpectedType { .. }
        | ExecutionError::UnsupportedTargetType { .. }
        | ExecutionError::NotSupportedAsMethod { .. } => ("", Vec::new()),
        _ => return None,
    };
    Some(Mismatch { operator: operator_text(operator), kinds })
}

thread_local! {
    /// The standard library, built once per thread: every `Context::default()` builds it anew,
    /// which was a tenth of `beslut check`'s time (an expression is tried several times).
    static STDLIB: Context<'static, 'static> = Context::default();
}

/// Runs `f` with a fresh scope for variables over the standard library.
pub fn with_scope<T>(f: impl FnOnce(&mut Context) -> T) -> T {
    STDLIB.with(|root| f(&mut root.new_inner_scope()))
}

/// Evaluates with sample values for every field, booleans set to `flag`.
pub fn trial(program: &Program, fields: &[&Field], extra: &[(&str, Value)], flag: bool) -> Trial {
    with_scope(|context| trial_in(context, program, fields, extra, flag))
}

fn trial_in(context: &mut Context, program: &Program, fields: &[&Field], extra: &[(&str, Value)], flag: bool) -> Trial {
    for field in fields {
        context.add_variable_from_value(field.id.clone(), sample(field, flag));
    }
    context.add_variable_from_value("case", case_sample());
    for (name, value) in extra {
        context.add_variable_from_value(*name, value.clone());
    }
    if let Some(problem) = mixed_equality(program.expression(), context) {
        return Trial::TypeError(problem);
    }
    match program.execute(context) {
        Ok(value) => Trial::Value(value),
        Err(ExecutionError::UndeclaredReference(name)) => Trial::UnknownFunction(name.to_string()),
        Err(e) => mismatch(&e).map_or(Trial::Inconclusive, Trial::TypeError),
    }
}

/// CEL lets `"text" == 2` quietly be false; for a process owner that is always a mistake (an
/// enum compared with a number, say), so equality and `in` between different kinds are
/// reported like any other type error.
fn mixed_equality(expr: &IdedExpr, context: &Context) -> Option<Mismatch> {
    let Expr::Call(call) = &expr.expr else {
        return match &expr.expr {
            Expr::List(list) => list.elements.iter().find_map(|e| mixed_equality(e, context)),
            Expr::Select(select) => mixed_equality(&select.operand, context),
            _ => None,
        };
    };
    let nested = call.target.iter().map(|t| t.as_ref()).chain(&call.args).find_map(|e| mixed_equality(e, context));
    if nested.is_some() {
        return nested;
    }
    let [left, right] = call.args.as_slice() else { return None };
    let (Ok(a), Ok(b)) = (context.resolve(left), context.resolve(right)) else { return None };
    let (a, b) = match (call.func_name.as_str(), &b) {
        ("_==_" | "_!=_", _) => (kind_of(&a), kind_of(&b)),
        ("@in", Value::List(items)) => match items.first() {
            Some(first) => (kind_of(&a), kind_of(first)),
            None => return None,
        },
        _ => return None,
    };
    let comparable = a == b || a == Kind::Null || b == Kind::Null || a == Kind::Other || b == Kind::Other;
    (!comparable).then(|| Mismatch { operator: operator_text(&call.func_name), kinds: vec![a, b] })
}

fn sample(field: &Field, flag: bool) -> Value {
    let text = |s: &str| Value::String(Arc::new(s.to_string()));
    match field.kind {
        FieldType::Number | FieldType::Money => Value::Int(1),
        FieldType::Boolean => Value::Bool(flag),
        FieldType::Date => text("2026-01-01"),
        FieldType::Enum => text(field.values.first().map_or("x", |v| v.id.as_str())),
        FieldType::List => {
            let item = Field { kind: field.items.unwrap_or(FieldType::Text), ..field.clone() };
            Value::List(Arc::new(vec![sample(&item, flag)]))
        }
        _ => text("x"),
    }
}

fn case_sample() -> Value {
    let mut map: HashMap<String, Value> = HashMap::new();
    map.insert("number".into(), Value::String(Arc::new("IT 2026/0001".into())));
    map.insert("year".into(), Value::Int(2026));
    map.insert("started_by".into(), Value::String(Arc::new("x".into())));
    map.insert("id".into(), Value::String(Arc::new("x".into())));
    Value::from(map)
}

/// Evaluates `source` with the given variables (JSON), for places outside a case, such as a
/// webhook's mapping from its payload to case data.
pub fn evaluate(source: &str, vars: &[(&str, serde_json::Value)]) -> Result<serde_json::Value, String> {
    let program = cached(source).map_err(|e| format!("`{source}`: {:?}", e.problem))?;
    with_scope(|context| {
        for (name, value) in vars {
            context.add_variable_from_value(*name, from_json(value));
        }
        program.execute(context).map(|v| to_json(&v)).map_err(|e| format!("`{source}`: {e}"))
    })
}

/// Converts case data (JSON) to a CEL value: whole numbers become integers so that
/// `kostnad > 500000` and `kostnad + 1` both work.
pub fn from_json(value: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match value {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::Int(f as i64),
            (None, Some(f)) => Value::Float(f),
            _ => Value::Null,
        },
        J::String(s) => Value::String(Arc::new(s.clone())),
        J::Array(items) => Value::List(Arc::new(items.iter().map(from_json).collect())),
        J::Object(map) => {
            let converted: HashMap<String, Value> = map.iter().map(|(k, v)| (k.clone(), from_json(v))).collect();
            Value::from(converted)
        }
    }
}

/// Converts a CEL result back to JSON, for storing in case data.
pub fn to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::UInt(u) => J::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::String(s) => J::String(s.to_string()),
        Value::List(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(map) => J::Object(map.map.iter().map(|(k, v)| (key_text(k), to_json(v))).collect()),
        _ => J::Null,
    }
}

fn key_text(key: &cel::objects::Key) -> String {
    match key {
        cel::objects::Key::String(s) => s.to_string(),
        cel::objects::Key::Int(i) => i.to_string(),
        cel::objects::Key::Uint(u) => u.to_string(),
        cel::objects::Key::Bool(b) => b.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::model::Text;
    use crate::yaml::Pos;

    fn field(id: &str, kind: FieldType) -> Field {
        Field {
            id: id.into(),
            pos: Pos::default(),
            kind,
            label: Text::plain(id),
            help: None,
            required: false,
            default: None,
            values: Vec::new(),
            values_from: None,
            items: None,
            min: None,
            max: None,
            multiline: false,
        }
    }

    #[test]
    fn finds_type_errors_by_trial() {
        let fields = [field("rubrik", FieldType::Text), field("kostnad", FieldType::Money)];
        let refs: Vec<&Field> = fields.iter().collect();
        let bad = compile("rubrik > 5").unwrap();
        assert!(matches!(trial(&bad, &refs, &[], true), Trial::TypeError(_)));
        let good = compile("kostnad > 500000 && size(rubrik) > 0").unwrap();
        assert!(matches!(trial(&good, &refs, &[], true), Trial::Value(Value::Bool(false))));
    }

    #[test]
    fn reports_syntax_error_columns() {
        let err = compile("kostnad >> 5").unwrap_err();
        assert_eq!(err.column, 10);
    }

    #[test]
    fn whole_numbers_become_ints() {
        assert_eq!(from_json(&serde_json::json!(150000.0)), Value::Int(150000));
        assert_eq!(to_json(&Value::Int(3)), serde_json::json!(3));
    }
}
