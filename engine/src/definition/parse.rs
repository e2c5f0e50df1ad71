//! From a positioned YAML tree to a [`Definition`], reporting every structural problem.

use super::model::*;
use super::reader::{self, Obj};
use crate::diagnostic::{Msg, Report, suggest};
use crate::msg;
use crate::yaml::{Node, Pos, Value};

const TOP_KEYS: [&str; 11] = [
    "name",
    "name_en",
    "description",
    "series",
    "title",
    "start",
    "withdraw_to",
    "data",
    "ledgers",
    "webhook",
    "states",
];
const FIELD_KEYS: [&str; 11] =
    ["type", "label", "help", "required", "default", "values", "values_from", "items", "min", "max", "multiline"];
const COMMON_STATE_KEYS: [&str; 3] = ["type", "label", "description"];
const TASK_KEYS: [&str; 8] =
    ["assignee", "actions", "form", "deadline", "reminders", "on_timeout", "email", "delegable"];
const PARALLEL_KEYS: [&str; 5] = ["branches", "join", "veto", "on_approved", "on_rejected"];
const CHOICE_KEYS: [&str; 2] = ["when", "otherwise"];
const AUTO_KEYS: [&str; 2] = ["do", "next"];
const CALL_KEYS: [&str; 7] = ["request", "wait_for_callback", "timeout", "retries", "store", "next", "on_failure"];
const WAIT_KEYS: [&str; 8] = ["signal", "key", "until", "for", "store", "timeout", "on_timeout", "next"];
const SUB_KEYS: [&str; 4] = ["workflow", "data", "outcomes", "otherwise"];
const END_KEYS: [&str; 2] = ["outcome", "notify_starter"];
const ACTION_KEYS: [&str; 7] = ["label", "to", "vote", "comment", "fields", "set", "reserve"];

fn w(sv: &str, en: &str) -> Msg {
    Msg::new(sv, en)
}

/// Parses the tree of one workflow file. Returns a definition even when there were errors, as
/// far as it could be read, so that later checks can still find more problems.
pub fn definition(r: &mut Report, id: &str, root: &Node) -> Option<Definition> {
    let top = reader::obj(r, root, &w("arbetsflödet", "the workflow"))?;
    top.check_keys(r, &TOP_KEYS, None);
    let name = top.require(r, "name").and_then(|n| reader::text(r, n, &w("`name`", "`name`")));
    let name_en = top.get("name_en").and_then(|n| reader::string(r, n, &w("`name_en`", "`name_en`")));
    let mut name = name.unwrap_or_else(|| Text::plain(id));
    if name_en.is_some() {
        name.en = name_en;
    }
    let series = top.require(r, "series").and_then(|n| series(r, n)).unwrap_or_default();
    let start = top.require(r, "start").and_then(|n| reader::reference(r, n, &w("`start`", "`start`")));
    let states_node = top.require(r, "states");
    Some(Definition {
        id: id.to_string(),
        name,
        description: top.get("description").and_then(|n| reader::text(r, n, &w("`description`", "`description`"))),
        series,
        title: top.get("title").and_then(|n| reader::template(r, n, &w("`title`", "`title`"))),
        start: start.unwrap_or(Ref { name: String::new(), pos: top.pos }),
        withdraw_to: top.get("withdraw_to").and_then(|n| reader::reference(r, n, &w("`withdraw_to`", "`withdraw_to`"))),
        data: top.get("data").map(|n| fields(r, n)).unwrap_or_default(),
        ledgers: top.get("ledgers").map(|n| ledgers(r, n)).unwrap_or_default(),
        webhook: top.get("webhook").and_then(|n| webhook(r, n)),
        states: states_node.map(|n| states(r, n)).unwrap_or_default(),
    })
}

fn series(r: &mut Report, node: &Node) -> Option<String> {
    let text = reader::string(r, node, &w("`series`", "`series`"))?;
    let valid = (1..=6).contains(&text.len()) && text.chars().all(|c| c.is_ascii_uppercase());
    if !valid {
        let upper = text.to_uppercase();
        r.error(
            node.pos,
            "invalid-value",
            msg!("`{text}` duger inte som diarieserie", "`{text}` is not a valid case number series"),
            Some(msg!("skriv 1–6 versaler A–Z, t.ex. `{upper}`", "write 1–6 capital letters A–Z, e.g. `{upper}`")),
        );
        return None;
    }
    Some(text)
}

/// Reads `data:` or `form:`: fields by id.
pub fn fields(r: &mut Report, node: &Node) -> Vec<Field> {
    reader::entries(r, node, &w("fälten", "the fields"))
        .into_iter()
        .filter_map(|(key, value)| field(r, &key.name, key.pos, value))
        .collect()
}

fn field(r: &mut Report, id: &str, pos: Pos, node: &Node) -> Option<Field> {
    let o = reader::obj(r, node, &msg!("fältet `{id}`", "the field `{id}`"))?;
    o.check_keys(r, &FIELD_KEYS, None);
    let kind = o.require(r, "type").and_then(|n| reader::choice(r, n, &w("fälttyp", "field type"), &FieldType::ALL));
    let label = o.require(r, "label").and_then(|n| reader::text(r, n, &w("`label`", "`label`")));
    let kind = kind?;
    let mut field = Field {
        id: id.to_string(),
        pos,
        kind,
        label: label.unwrap_or_else(|| Text::plain(id)),
        help: o.get("help").and_then(|n| reader::text(r, n, &w("`help`", "`help`"))),
        required: o
            .get("required")
            .and_then(|n| reader::boolean(r, n, &w("`required`", "`required`")))
            .unwrap_or(false),
        default: None,
        values: o.get("values").map(|n| enum_values(r, n)).unwrap_or_default(),
        values_from: o.get("values_from").and_then(|n| {
            let options = [("forvaltningar", ValuesFrom::Forvaltningar), ("portfolios", ValuesFrom::Portfolios)];
            reader::choice(r, n, &w("`values_from`", "`values_from`"), &options)
        }),
        items: o.get("items").and_then(|n| {
            let options: Vec<_> =
                FieldType::ALL.into_iter().filter(|(_, t)| !matches!(t, FieldType::List | FieldType::Enum)).collect();
            reader::choice(r, n, &w("listans typ (`items`)", "the list's type (`items`)"), &options)
        }),
        min: o.get("min").and_then(|n| reader::number(r, n, &w("`min`", "`min`"))),
        max: o.get("max").and_then(|n| reader::number(r, n, &w("`max`", "`max`"))),
        multiline: o
            .get("multiline")
            .and_then(|n| reader::boolean(r, n, &w("`multiline`", "`multiline`")))
            .unwrap_or(false),
    };
    check_field_keys_fit(r, &o, &field);
    if let Some(node) = o.get("default") {
        field.default = default_value(r, &field, node);
    }
    Some(field)
}

/// Keys that only make sense for some field types.
fn check_field_keys_fit(r: &mut Report, o: &Obj, field: &Field) {
    let kind = field.kind;
    let fits: [(&str, bool); 6] = [
        ("values", kind == FieldType::Enum),
        ("values_from", kind == FieldType::Enum),
        ("items", kind == FieldType::List),
        ("min", matches!(kind, FieldType::Number | FieldType::Money)),
        ("max", matches!(kind, FieldType::Number | FieldType::Money)),
        ("multiline", kind == FieldType::Text),
    ];
    for (key, fit) in fits {
        if !fit && let Some((k, _)) = o.entries.iter().find(|(k, _)| k.name == key) {
            let type_name = kind.name();
            r.error(
                k.pos,
                "wrong-field-kind",
                msg!(
                    "`{key}` gäller inte fält av typen `{type_name}`",
                    "`{key}` does not apply to fields of type `{type_name}`"
                ),
                Some(msg!("ta bort `{key}` eller byt typ", "remove `{key}` or change the type")),
            );
        }
    }
    if kind == FieldType::Enum && !o.has("values") && !o.has("values_from") {
        let id = &field.id;
        r.error(
            field.pos,
            "enum-without-values",
            msg!("valfältet `{id}` har inga värden", "the enum field `{id}` has no values"),
            Some(Msg::new(
                "lägg till `values: [a, b]` eller `values_from: forvaltningar`",
                "add `values: [a, b]` or `values_from: forvaltningar`",
            )),
        );
    }
    if o.has("values") && o.has("values_from") {
        r.error(
            o.pos,
            "invalid-value",
            Msg::new("både `values` och `values_from` är angivna", "both `values` and `values_from` are given"),
            Some(Msg::new("behåll en av dem", "keep one of them")),
        );
    }
}

fn enum_values(r: &mut Report, node: &Node) -> Vec<EnumValue> {
    match &node.value {
        Value::Seq(items) => items
            .iter()
            .filter_map(|item| {
                let id = reader::string(r, item, &w("ett värde i `values`", "a value in `values`"))?;
                reader::check_id(r, &id, item.pos).then(|| EnumValue { label: Text::plain(id.clone()), id })
            })
            .collect(),
        Value::Map(_) => reader::entries(r, node, &w("`values`", "`values`"))
            .into_iter()
            .filter_map(|(k, v)| {
                let label = reader::text(r, v, &msg!("etiketten för `{k}`", "the label of `{k}`", k = &k.name))?;
                Some(EnumValue { id: k.name.clone(), label })
            })
            .collect(),
        _ => {
            reader::wrong_type(
                r,
                node,
                &w("`values`", "`values`"),
                &w("en lista eller en mappning", "a list or a mapping"),
            );
            Vec::new()
        }
    }
}

/// Reads a field's default and checks it against the field's type.
fn default_value(r: &mut Report, field: &Field, node: &Node) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    let fits = match (&node.value, field.kind) {
        (Value::Str(s), FieldType::Text | FieldType::Email | FieldType::Person) => Some(J::String(s.clone())),
        (Value::Str(s), FieldType::Date) if jiff::civil::Date::strptime("%Y-%m-%d", s).is_ok() => {
            Some(J::String(s.clone()))
        }
        (Value::Str(s), FieldType::Enum) if field.values_from.is_some() || field.values.iter().any(|v| &v.id == s) => {
            Some(J::String(s.clone()))
        }
        (Value::Int(i), FieldType::Number | FieldType::Money) => Some(J::from(*i)),
        (Value::Float(f), FieldType::Number | FieldType::Money) => serde_json::Number::from_f64(*f).map(J::Number),
        (Value::Bool(b), FieldType::Boolean) => Some(J::Bool(*b)),
        (Value::Seq(items), FieldType::List) if items.is_empty() => Some(J::Array(Vec::new())),
        _ => None,
    };
    if fits.is_none() {
        let id = &field.id;
        let type_name = field.kind.name();
        let help = if field.kind == FieldType::Enum {
            suggest(&scalar_text(&node.value), field.values.iter().map(|v| v.id.as_str()))
        } else {
            msg!("ge ett värde av typen `{type_name}`", "give a value of type `{type_name}`")
        };
        r.error(
            node.pos,
            "bad-default",
            msg!(
                "standardvärdet passar inte fältet `{id}` (typ `{type_name}`)",
                "the default does not fit the field `{id}` (type `{type_name}`)"
            ),
            Some(help),
        );
    }
    fits
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

fn ledgers(r: &mut Report, node: &Node) -> Vec<Ledger> {
    reader::entries(r, node, &w("`ledgers`", "`ledgers`"))
        .into_iter()
        .filter_map(|(key, value)| {
            let o = reader::obj(r, value, &msg!("budgetramen `{k}`", "the ledger `{k}`", k = &key.name))?;
            o.check_keys(r, &["label", "frames", "key"], None);
            let label = o.require(r, "label").and_then(|n| reader::text(r, n, &w("`label`", "`label`")));
            let frames = o.require(r, "frames").and_then(|n| reader::reference(r, n, &w("`frames`", "`frames`")))?;
            let key_node = o.require(r, "key")?;
            let keys = reader::list(r, key_node, &w("`key`", "`key`"))?
                .iter()
                .filter_map(|n| reader::reference(r, n, &w("ett fält i `key`", "a field in `key`")))
                .collect();
            Some(Ledger { id: key.name.clone(), pos: key.pos, label: label.unwrap_or_default(), frames, key: keys })
        })
        .collect()
}

fn webhook(r: &mut Report, node: &Node) -> Option<Webhook> {
    let o = reader::obj(r, node, &w("`webhook`", "`webhook`"))?;
    o.check_keys(r, &["source", "starter", "data"], None);
    let source_node = o.require(r, "source");
    let source = source_node.and_then(|n| reader::string(r, n, &w("`source`", "`source`")));
    if let (Some(name), Some(n)) = (&source, source_node) {
        reader::check_id(r, name, n.pos);
    }
    let starter = o.require(r, "starter").and_then(|n| reader::expr(r, n, &w("`starter`", "`starter`")));
    let data = o.require(r, "data").map(|n| reader::expr_map(r, n, &w("`data`", "`data`"))).unwrap_or_default();
    Some(Webhook { source: source?, pos: node.pos, starter: starter?, data })
}

fn states(r: &mut Report, node: &Node) -> Vec<State> {
    reader::entries(r, node, &w("`states`", "`states`"))
        .into_iter()
        .filter_map(|(key, value)| state(r, &key.name, key.pos, value))
        .collect()
}

fn kind_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "task" => &TASK_KEYS,
        "parallel" => &PARALLEL_KEYS,
        "choice" => &CHOICE_KEYS,
        "auto" => &AUTO_KEYS,
        "call" => &CALL_KEYS,
        "wait" => &WAIT_KEYS,
        "subworkflow" => &SUB_KEYS,
        _ => &END_KEYS,
    }
}

fn state(r: &mut Report, id: &str, pos: Pos, node: &Node) -> Option<State> {
    let o = reader::obj(r, node, &msg!("tillståndet `{id}`", "the state `{id}`"))?;
    let type_node = o.require(r, "type");
    let label = o.require(r, "label").and_then(|n| reader::text(r, n, &w("`label`", "`label`")));
    let description = o.get("description").and_then(|n| reader::text(r, n, &w("`description`", "`description`")));
    let kinds: Vec<(&str, &str)> = StateKind::NAMES.iter().map(|n| (*n, *n)).collect();
    let Some(kind_name) = type_node.and_then(|n| reader::choice(r, n, &w("tillståndstyp", "state type"), &kinds))
    else {
        let every: Vec<&str> =
            StateKind::NAMES.iter().flat_map(|k| kind_keys(k).iter().copied()).chain(COMMON_STATE_KEYS).collect();
        o.check_keys(r, &every, None);
        return None;
    };
    let allowed: Vec<&str> = COMMON_STATE_KEYS.iter().chain(kind_keys(kind_name)).copied().collect();
    let others: Vec<&str> = StateKind::NAMES.iter().flat_map(|k| kind_keys(k).iter().copied()).collect();
    o.check_keys(r, &allowed, Some((&others, kind_name, "wrong-state-kind")));
    let kind = match kind_name {
        "task" => StateKind::Task(task(r, &o, false)),
        "parallel" => StateKind::Parallel(parallel(r, &o)),
        "choice" => StateKind::Choice(choice(r, &o)),
        "auto" => StateKind::Auto(auto(r, &o)),
        "call" => StateKind::Call(call(r, &o)?),
        "wait" => StateKind::Wait(wait(r, &o)),
        "subworkflow" => StateKind::Subworkflow(subworkflow(r, &o)),
        _ => StateKind::End(end(r, &o)),
    };
    Some(State { id: id.to_string(), pos, label: label.unwrap_or_else(|| Text::plain(id)), description, kind })
}

fn required_ref(r: &mut Report, o: &Obj, key: &str) -> Ref {
    o.require(r, key)
        .and_then(|n| reader::reference(r, n, &msg!("`{key}`", "`{key}`")))
        .unwrap_or(Ref { name: String::new(), pos: o.pos })
}

fn optional_ref(r: &mut Report, o: &Obj, key: &str) -> Option<Ref> {
    o.get(key).and_then(|n| reader::reference(r, n, &msg!("`{key}`", "`{key}`")))
}

/// Reads a task, or (with `branch`) one branch of a parallel review.
fn task(r: &mut Report, o: &Obj, branch: bool) -> Task {
    let assignee = o.require(r, "assignee").and_then(|n| assignee(r, n));
    let actions = o.require(r, "actions").map(|n| actions(r, n, branch)).unwrap_or_default();
    let reminders = o
        .get("reminders")
        .and_then(|n| reader::list(r, n, &w("`reminders`", "`reminders`")))
        .map(|items| items.iter().filter_map(|n| reader::duration(r, n, &w("en påminnelse", "a reminder"))).collect())
        .unwrap_or_default();
    Task {
        pos: o.pos,
        assignee,
        actions,
        form: o.get("form").map(|n| fields(r, n)).unwrap_or_default(),
        deadline: o.get("deadline").and_then(|n| reader::duration(r, n, &w("`deadline`", "`deadline`"))),
        reminders,
        on_timeout: o.get("on_timeout").and_then(|n| timeout(r, n, branch)),
        email: o
            .get("email")
            .and_then(|n| reader::reference(r, n, &w("`email`", "`email`")))
            .unwrap_or(Ref { name: "task".into(), pos: o.pos }),
        delegable: o
            .get("delegable")
            .and_then(|n| reader::boolean(r, n, &w("`delegable`", "`delegable`")))
            .unwrap_or(true),
    }
}

pub fn assignee(r: &mut Report, node: &Node) -> Option<Assignee> {
    if let Value::Str(s) = &node.value
        && s == "starter"
    {
        return Some(Assignee::Starter);
    }
    let o = reader::obj(r, node, &w("`assignee`", "`assignee`"))?;
    o.check_keys(r, &["role", "scope", "field", "person"], None);
    let given: Vec<&str> = ["role", "field", "person"].into_iter().filter(|k| o.has(k)).collect();
    if given.len() != 1 {
        r.error(
            o.pos,
            if given.is_empty() { "missing-key" } else { "invalid-value" },
            Msg::new(
                "ange precis en av `role`, `field` och `person`",
                "give exactly one of `role`, `field` and `person`",
            ),
            Some(Msg::new(
                "t.ex. `{role: it-chef}`, `{role: it-samordnare, scope: forvaltning}` eller `{field: handlaggare}`",
                "e.g. `{role: it-chef}`, `{role: it-samordnare, scope: forvaltning}` or `{field: handlaggare}`",
            )),
        );
        return None;
    }
    if let Some(role) = optional_ref(r, &o, "role") {
        return Some(Assignee::Role { role, scope: optional_ref(r, &o, "scope") });
    }
    if let Some(k) = o.entries.iter().find(|(k, _)| k.name == "scope") {
        r.error(
            k.0.pos,
            "invalid-value",
            Msg::new("`scope` gäller bara tillsammans med `role`", "`scope` only applies together with `role`"),
            None,
        );
    }
    if let Some(field) = optional_ref(r, &o, "field") {
        return Some(Assignee::Field(field));
    }
    optional_ref(r, &o, "person").map(Assignee::Person)
}

fn actions(r: &mut Report, node: &Node, branch: bool) -> Vec<Action> {
    reader::entries(r, node, &w("`actions`", "`actions`"))
        .into_iter()
        .filter_map(|(key, value)| action(r, &key.name, key.pos, value, branch))
        .collect()
}

fn action(r: &mut Report, id: &str, pos: Pos, node: &Node, branch: bool) -> Option<Action> {
    let o = reader::obj(r, node, &msg!("handlingen `{id}`", "the action `{id}`"))?;
    let (allowed, kind): (Vec<&str>, &str) = if branch {
        (ACTION_KEYS.iter().copied().filter(|k| !matches!(*k, "to" | "reserve")).collect(), "parallel")
    } else {
        (ACTION_KEYS.iter().copied().filter(|k| *k != "vote").collect(), "task")
    };
    o.check_keys(r, &allowed, Some((&ACTION_KEYS, kind, "wrong-state-kind")));
    let label = o.require(r, "label").and_then(|n| reader::text(r, n, &w("`label`", "`label`")));
    let target = if branch {
        let votes = [("yes", true), ("no", false), ("ja", true), ("nej", false)];
        o.require(r, "vote")
            .and_then(|n| reader::choice(r, n, &w("`vote`", "`vote`"), &votes))
            .map_or(ActionTarget::Missing, ActionTarget::Vote)
    } else if o.has("to") {
        ActionTarget::To(required_ref(r, &o, "to"))
    } else {
        o.require(r, "to");
        ActionTarget::Missing
    };
    let comments =
        [("required", CommentRule::Required), ("optional", CommentRule::Optional), ("none", CommentRule::None)];
    let fields = o.get("fields").and_then(|n| reader::list(r, n, &w("`fields`", "`fields`"))).map(|items| {
        items.iter().filter_map(|n| reader::reference(r, n, &w("ett fält i `fields`", "a field in `fields`"))).collect()
    });
    Some(Action {
        id: id.to_string(),
        pos,
        label: label.unwrap_or_else(|| Text::plain(id)),
        target,
        comment: o
            .get("comment")
            .and_then(|n| reader::choice(r, n, &w("`comment`", "`comment`"), &comments))
            .unwrap_or(CommentRule::Optional),
        fields,
        set: o.get("set").map(|n| reader::expr_map(r, n, &w("`set`", "`set`"))).unwrap_or_default(),
        reserve: o.get("reserve").and_then(|n| reserve(r, n)),
    })
}

fn reserve(r: &mut Report, node: &Node) -> Option<Reserve> {
    let o = reader::obj(r, node, &w("`reserve`", "`reserve`"))?;
    o.check_keys(r, &["ledger", "amount"], None);
    let ledger = o.require(r, "ledger").and_then(|n| reader::reference(r, n, &w("`ledger`", "`ledger`")));
    let amount = o.require(r, "amount").and_then(|n| reader::expr(r, n, &w("`amount`", "`amount`")));
    Some(Reserve { ledger: ledger?, amount: amount? })
}

fn timeout(r: &mut Report, node: &Node, branch: bool) -> Option<Timeout> {
    let o = reader::obj(r, node, &w("`on_timeout`", "`on_timeout`"))?;
    let all = ["escalate", "deadline", "action", "goto"];
    let allowed: Vec<&str> = all.iter().copied().filter(|k| !(branch && *k == "goto")).collect();
    o.check_keys(r, &allowed, Some((&all, "parallel", "wrong-state-kind")));
    let given: Vec<&str> =
        ["escalate", "action", "goto"].into_iter().filter(|k| allowed.contains(k) && o.has(k)).collect();
    if given.len() != 1 {
        r.error(
            o.pos,
            if given.is_empty() { "missing-key" } else { "invalid-value" },
            Msg::new(
                "ange precis en av `escalate`, `action` och `goto`",
                "give exactly one of `escalate`, `action` and `goto`",
            ),
            Some(Msg::new(
                "t.ex. `{escalate: {role: it-chef}, deadline: 2 working days}` eller `{action: avsla}`",
                "e.g. `{escalate: {role: it-chef}, deadline: 2 working days}` or `{action: reject}`",
            )),
        );
        return None;
    }
    if let Some(n) = o.get("escalate") {
        let deadline = o.get("deadline").and_then(|n| reader::duration(r, n, &w("`deadline`", "`deadline`")));
        return Some(Timeout::Escalate { to: assignee(r, n)?, deadline });
    }
    if let Some(action) = optional_ref(r, &o, "action") {
        return Some(Timeout::Action(action));
    }
    optional_ref(r, &o, "goto").map(Timeout::Goto)
}

fn parallel(r: &mut Report, o: &Obj) -> Parallel {
    let branches = o
        .require(r, "branches")
        .map(|n| {
            reader::entries(r, n, &w("`branches`", "`branches`"))
                .into_iter()
                .filter_map(|(key, value)| {
                    let b = reader::obj(r, value, &msg!("grenen `{k}`", "the branch `{k}`", k = &key.name))?;
                    let branch_keys: Vec<&str> = TASK_KEYS.iter().copied().chain(["label"]).collect();
                    let every: Vec<&str> =
                        branch_keys.iter().copied().chain(PARALLEL_KEYS).chain(["to", "type"]).collect();
                    b.check_keys(r, &branch_keys, Some((&every, "parallel", "wrong-state-kind")));
                    let label = b.require(r, "label").and_then(|n| reader::text(r, n, &w("`label`", "`label`")));
                    Some(Branch {
                        id: key.name.clone(),
                        pos: key.pos,
                        label: label.unwrap_or_default(),
                        task: task(r, &b, true),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Parallel {
        branches,
        join: o.require(r, "join").and_then(|n| join(r, n)),
        veto: o.get("veto").and_then(|n| reader::boolean(r, n, &w("`veto`", "`veto`"))).unwrap_or(false),
        on_approved: required_ref(r, o, "on_approved"),
        on_rejected: required_ref(r, o, "on_rejected"),
    }
}

fn join(r: &mut Report, node: &Node) -> Option<Join> {
    let text = reader::string(r, node, &w("`join`", "`join`"))?;
    let words: Vec<&str> = text.split_whitespace().collect();
    let rule = match words.as_slice() {
        ["all"] | ["alla"] => Some(JoinRule::All),
        ["any"] | ["någon"] => Some(JoinRule::Any),
        [n, "of" | "av", m] => match (n.parse(), m.parse()) {
            (Ok(needed), Ok(of)) => Some(JoinRule::AtLeast { needed, of }),
            _ => None,
        },
        _ => None,
    };
    if rule.is_none() {
        r.error(
            node.pos,
            "invalid-value",
            msg!("`{text}` är ingen regel för sammanvägning", "`{text}` is not a join rule"),
            Some(Msg::new(
                "skriv `all`, `any` eller `N of M`, t.ex. `2 of 3`",
                "write `all`, `any` or `N of M`, e.g. `2 of 3`",
            )),
        );
    }
    rule.map(|rule| Join { rule, pos: node.pos })
}

fn choice(r: &mut Report, o: &Obj) -> Choice {
    let when = o
        .require(r, "when")
        .and_then(|n| reader::list(r, n, &w("`when`", "`when`")))
        .map(|items| {
            items
                .iter()
                .filter_map(|item| {
                    let c = reader::obj(r, item, &w("ett villkor i `when`", "a condition in `when`"))?;
                    c.check_keys(r, &["if", "goto"], None);
                    let cond = c.require(r, "if").and_then(|n| reader::expr(r, n, &w("`if`", "`if`")));
                    let goto = c.require(r, "goto").and_then(|n| reader::reference(r, n, &w("`goto`", "`goto`")));
                    Some((cond?, goto?))
                })
                .collect()
        })
        .unwrap_or_default();
    let otherwise = optional_ref(r, o, "otherwise");
    if otherwise.is_none() {
        r.error(
            o.pos,
            "choice-without-otherwise",
            Msg::new("valet saknar `otherwise`", "the choice has no `otherwise`"),
            Some(Msg::new(
                "lägg till `otherwise: TILLSTÅND` för de fall där inget villkor gäller",
                "add `otherwise: STATE` for when no condition holds",
            )),
        );
    }
    Choice { when, otherwise }
}

fn auto(r: &mut Report, o: &Obj) -> Auto {
    let steps = o
        .get("do")
        .and_then(|n| reader::list(r, n, &w("`do`", "`do`")))
        .map(|items| items.iter().filter_map(|item| step(r, item)).collect())
        .unwrap_or_default();
    Auto { steps, next: required_ref(r, o, "next") }
}

fn step(r: &mut Report, node: &Node) -> Option<Step> {
    let o = reader::obj(r, node, &w("ett steg i `do`", "a step in `do`"))?;
    o.check_keys(r, &["set", "notify", "emit"], None);
    if o.entries.len() != 1 {
        r.error(
            o.pos,
            "invalid-value",
            Msg::new(
                "ett steg ska ha precis en av `set`, `notify` och `emit`",
                "a step must have exactly one of `set`, `notify` and `emit`",
            ),
            Some(Msg::new(
                "dela upp det på flera steg, var och ett med `- `",
                "split it into several steps, each starting with `- `",
            )),
        );
        return None;
    }
    if let Some(n) = o.get("set") {
        return Some(Step::Set(reader::expr_map(r, n, &w("`set`", "`set`"))));
    }
    if let Some(n) = o.get("notify") {
        let n = reader::obj(r, n, &w("`notify`", "`notify`"))?;
        n.check_keys(r, &["template", "to"], None);
        let template = n.require(r, "template").and_then(|t| reader::reference(r, t, &w("`template`", "`template`")));
        let to = n.require(r, "to").and_then(|t| assignee(r, t));
        let to = match to? {
            Assignee::Starter => Recipient::Starter,
            other => Recipient::Assignee(other),
        };
        return Some(Step::Notify { template: template?, to });
    }
    let n = reader::obj(r, o.get("emit")?, &w("`emit`", "`emit`"))?;
    n.check_keys(r, &["event", "data"], None);
    let event_node = n.require(r, "event")?;
    let event = reader::string(r, event_node, &w("`event`", "`event`"))?;
    let data = n.get("data").map(|d| reader::expr_map(r, d, &w("`data`", "`data`"))).unwrap_or_default();
    Some(Step::Emit { event, pos: event_node.pos, data })
}

fn call(r: &mut Report, o: &Obj) -> Option<Call> {
    let request_node = o.require(r, "request")?;
    let request = reader::obj(r, request_node, &w("`request`", "`request`"))?;
    request.check_keys(r, &["method", "url", "body"], None);
    let methods = [("POST", "POST"), ("PUT", "PUT"), ("GET", "GET"), ("PATCH", "PATCH")];
    let method = request
        .get("method")
        .and_then(|n| reader::choice(r, n, &w("`method`", "`method`"), &methods))
        .unwrap_or("POST");
    let url = request.require(r, "url").and_then(|n| reader::template(r, n, &w("`url`", "`url`")));
    Some(Call {
        method: method.to_string(),
        url: url?,
        body: request.get("body").map(|n| reader::expr_map(r, n, &w("`body`", "`body`"))).unwrap_or_default(),
        wait_for_callback: o
            .get("wait_for_callback")
            .and_then(|n| reader::boolean(r, n, &w("`wait_for_callback`", "`wait_for_callback`")))
            .unwrap_or(false),
        timeout: o.get("timeout").and_then(|n| reader::duration(r, n, &w("`timeout`", "`timeout`"))),
        retries: o.get("retries").and_then(|n| reader::whole_number(r, n, &w("`retries`", "`retries`"))).unwrap_or(5),
        store: o.get("store").map(|n| reader::expr_map(r, n, &w("`store`", "`store`"))).unwrap_or_default(),
        next: required_ref(r, o, "next"),
        on_failure: optional_ref(r, o, "on_failure"),
    })
}

fn wait(r: &mut Report, o: &Obj) -> Wait {
    let given: Vec<&str> = ["signal", "until", "for"].into_iter().filter(|k| o.has(k)).collect();
    if given.len() != 1 {
        r.error(
            o.pos,
            if given.is_empty() { "missing-key" } else { "invalid-value" },
            Msg::new(
                "ange precis en av `signal`, `until` och `for`",
                "give exactly one of `signal`, `until` and `for`",
            ),
            None,
        );
    }
    let wait_for = if let Some(n) = o.get("signal") {
        let name = reader::string(r, n, &w("`signal`", "`signal`")).unwrap_or_default();
        WaitFor::Signal { name, key: o.get("key").and_then(|n| reader::expr(r, n, &w("`key`", "`key`"))) }
    } else if let Some(n) = o.get("until") {
        WaitFor::Until(
            reader::expr(r, n, &w("`until`", "`until`")).unwrap_or(Expr { source: "\"\"".into(), pos: n.pos }),
        )
    } else {
        let d = o.get("for").and_then(|n| reader::duration(r, n, &w("`for`", "`for`")));
        WaitFor::For(d.unwrap_or(crate::duration::Duration { amount: 0, unit: crate::duration::Unit::Days }))
    };
    Wait {
        wait_for,
        store: o.get("store").map(|n| reader::expr_map(r, n, &w("`store`", "`store`"))).unwrap_or_default(),
        timeout: o.get("timeout").and_then(|n| reader::duration(r, n, &w("`timeout`", "`timeout`"))),
        on_timeout: optional_ref(r, o, "on_timeout"),
        next: required_ref(r, o, "next"),
    }
}

fn subworkflow(r: &mut Report, o: &Obj) -> Subworkflow {
    let outcomes = o
        .get("outcomes")
        .and_then(|n| reader::obj(r, n, &w("`outcomes`", "`outcomes`")))
        .map(|m| {
            m.entries
                .iter()
                .filter_map(|(k, v)| {
                    let outcome = outcome(r, &k.name, k.pos)?;
                    Some((outcome, reader::reference(r, v, &w("ett tillstånd", "a state"))?))
                })
                .collect()
        })
        .unwrap_or_default();
    Subworkflow {
        workflow: required_ref(r, o, "workflow"),
        data: o.get("data").map(|n| reader::expr_map(r, n, &w("`data`", "`data`"))).unwrap_or_default(),
        outcomes,
        otherwise: optional_ref(r, o, "otherwise"),
    }
}

fn outcome(r: &mut Report, text: &str, pos: Pos) -> Option<Outcome> {
    let found = Outcome::parse(text);
    if found.is_none() {
        let from_swedish = Outcome::ALL.into_iter().find(|o| o.label(crate::diagnostic::Lang::Sv) == text);
        let help = match from_swedish {
            Some(o) => msg!("utfall skrivs på engelska: `{o}`", "outcomes are written in English: `{o}`", o = o.id()),
            None => suggest(text, Outcome::ALL.iter().map(|o| o.id())),
        };
        r.error(pos, "invalid-value", msg!("`{text}` är inget utfall", "`{text}` is not an outcome"), Some(help));
    }
    found
}

fn end(r: &mut Report, o: &Obj) -> End {
    let outcome = o.require(r, "outcome").and_then(|n| {
        let text = reader::string(r, n, &w("`outcome`", "`outcome`"))?;
        outcome(r, &text, n.pos)
    });
    End {
        outcome,
        notify_starter: o
            .get("notify_starter")
            .and_then(|n| reader::boolean(r, n, &w("`notify_starter`", "`notify_starter`")))
            .unwrap_or(true),
    }
}
