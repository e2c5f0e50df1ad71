//! Semantic checks of a parsed workflow: references, expressions, templates, quorum rules and
//! the shape of the state graph.

use super::model::*;
use crate::diagnostic::{Msg, Report, suggest};
use crate::directory::Directory;
use crate::expr::{self, Kind, Trial};
use crate::msg;
use crate::portfolios::Portfolios;
use crate::templates::{OBJECT_KEYS, ROOTS, Templates};
use crate::yaml::Pos;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Bfs, Reversed};
use std::collections::HashMap;

/// What a workflow may refer to outside its own file.
pub struct Context<'a> {
    pub directory: &'a Directory,
    /// Frame files by file name (e.g. `portfolios.yaml`).
    pub frames: &'a [(String, Portfolios)],
    pub templates: &'a Templates,
    /// Ids of every workflow in the folder, for sub-workflows.
    pub workflows: &'a [String],
    /// The text of the workflow file, to place expression errors inside quoted strings.
    pub source: &'a str,
}

/// Runs every check on `def`, adding to `r`.
pub fn check(r: &mut Report, def: &Definition, cx: &Context) {
    let fields = field_types(r, def);
    let checker = Checker { def, cx, fields };
    checker.references(r);
    checker.expressions(r);
    checker.templates(r);
    checker.parallel_rules(r);
    checker.graph(r);
    checker.warnings(r);
}

struct Checker<'a> {
    def: &'a Definition,
    cx: &'a Context<'a>,
    fields: Vec<&'a Field>,
}

/// Every field of the case, reporting a form field that reuses an id with another type.
fn field_types<'a>(r: &mut Report, def: &'a Definition) -> Vec<&'a Field> {
    let mut seen: Vec<&Field> = def.data.iter().collect();
    for task in def.states.iter().flat_map(State::tasks) {
        for field in &task.form {
            match seen.iter().find(|f| f.id == field.id) {
                Some(first) if first.kind != field.kind => {
                    let (id, a, b) = (&field.id, first.kind.name(), field.kind.name());
                    let line = first.pos.line;
                    r.error(
                        field.pos,
                        "duplicate-id",
                        msg!(
                            "fältet `{id}` finns redan (rad {line}) med typen `{a}`, här med `{b}`",
                            "the field `{id}` already exists (line {line}) with type `{a}`, here with `{b}`"
                        ),
                        Some(Msg::new(
                            "ge fältet ett eget id, eller samma typ om det är samma uppgift",
                            "give the field an id of its own, or the same type if it is the same information",
                        )),
                    );
                }
                Some(_) => {}
                None => seen.push(field),
            }
        }
    }
    seen
}

impl Checker<'_> {
    fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().copied().find(|f| f.id == name)
    }

    fn state_ref(&self, r: &mut Report, reference: &Ref) {
        if reference.name.is_empty() || self.def.state(&reference.name).is_some() {
            return;
        }
        let name = &reference.name;
        r.error(
            reference.pos,
            "unknown-state",
            msg!("tillståndet `{name}` finns inte", "the state `{name}` does not exist"),
            Some(suggest(name, self.def.states.iter().map(|s| s.id.as_str()))),
        );
    }

    fn field_ref(&self, r: &mut Report, reference: &Ref, within: Option<&[Field]>) {
        let known = match within {
            Some(form) => form.iter().any(|f| f.id == reference.name),
            None => self.field(&reference.name).is_some(),
        };
        if known {
            return;
        }
        let name = &reference.name;
        let candidates: Vec<&str> = match within {
            Some(form) => form.iter().map(|f| f.id.as_str()).collect(),
            None => self.fields.iter().map(|f| f.id.as_str()).collect(),
        };
        r.error(
            reference.pos,
            "unknown-field",
            msg!("fältet `{name}` finns inte", "the field `{name}` does not exist"),
            Some(suggest(name, candidates.iter().copied())),
        );
    }

    fn references(&self, r: &mut Report) {
        self.state_ref(r, &self.def.start);
        if let Some(to) = &self.def.withdraw_to {
            self.state_ref(r, to);
            self.withdraw_target(r, to);
        }
        for state in &self.def.states {
            for (to, _) in state.successors() {
                self.state_ref(r, to);
            }
            for task in state.tasks() {
                self.task_refs(r, task);
            }
            self.step_refs(r, state);
        }
        for ledger in &self.def.ledgers {
            self.ledger_refs(r, ledger);
        }
        if let Some(hook) = &self.def.webhook {
            self.webhook_refs(r, hook);
        }
    }

    /// A webhook must give every required data field without a default, or every case it
    /// starts would be refused.
    fn webhook_refs(&self, r: &mut Report, hook: &Webhook) {
        hook.data.iter().for_each(|(f, _)| self.field_ref(r, f, Some(&self.def.data)));
        let missing: Vec<&str> = self
            .def
            .data
            .iter()
            .filter(|f| f.required && f.default.is_none() && !hook.data.iter().any(|(to, _)| to.name == f.id))
            .map(|f| f.id.as_str())
            .collect();
        if !missing.is_empty() {
            let list = missing.join("`, `");
            let first = missing[0];
            r.error(
                hook.pos,
                "webhook-missing-field",
                msg!(
                    "webhooken ger inte de obligatoriska fälten `{list}`",
                    "the webhook does not give the required fields `{list}`"
                ),
                Some(msg!(
                    "lägg till dem under `data`, t.ex. `{first}: payload.{first}`",
                    "add them under `data`, e.g. `{first}: payload.{first}`"
                )),
            );
        }
    }

    fn withdraw_target(&self, r: &mut Report, to: &Ref) {
        let Some(state) = self.def.state(&to.name) else { return };
        if !matches!(&state.kind, StateKind::End(End { outcome: Some(Outcome::Withdrawn), .. })) {
            let name = &to.name;
            r.error(
                to.pos,
                "withdraw-not-withdrawn",
                msg!(
                    "`withdraw_to` pekar på `{name}`, som inte är ett sluttillstånd med utfallet `withdrawn`",
                    "`withdraw_to` points at `{name}`, which is not an end state with outcome `withdrawn`"
                ),
                Some(Msg::new(
                    "peka på ett tillstånd med `type: end` och `outcome: withdrawn`",
                    "point at a state with `type: end` and `outcome: withdrawn`",
                )),
            );
        }
    }

    fn task_refs(&self, r: &mut Report, task: &Task) {
        if let Some(assignee) = &task.assignee {
            self.assignee_refs(r, assignee);
        }
        for action in &task.actions {
            for field in action.fields.iter().flatten() {
                self.field_ref(r, field, Some(&task.form));
            }
            for (field, _) in &action.set {
                self.field_ref(r, field, None);
            }
            if let Some(reserve) = &action.reserve
                && !self.def.ledgers.iter().any(|l| l.id == reserve.ledger.name)
            {
                let name = &reserve.ledger.name;
                r.error(
                    reserve.ledger.pos,
                    "unknown-ledger",
                    msg!(
                        "budgetramen `{name}` finns inte under `ledgers`",
                        "the ledger `{name}` is not declared under `ledgers`"
                    ),
                    Some(suggest(name, self.def.ledgers.iter().map(|l| l.id.as_str()))),
                );
            }
        }
        match &task.on_timeout {
            Some(Timeout::Escalate { to, .. }) => self.assignee_refs(r, to),
            Some(Timeout::Action(action)) if !task.actions.iter().any(|a| a.id == action.name) => {
                let name = &action.name;
                r.error(
                    action.pos,
                    "unknown-action",
                    msg!("uppgiften har ingen handling `{name}`", "the task has no action `{name}`"),
                    Some(suggest(name, task.actions.iter().map(|a| a.id.as_str()))),
                );
            }
            _ => {}
        }
        self.template_ref(r, &task.email);
    }

    fn assignee_refs(&self, r: &mut Report, assignee: &Assignee) {
        let directory = self.cx.directory;
        match assignee {
            Assignee::Role { role, scope } => {
                let Some(found) = directory.role(&role.name) else {
                    let name = &role.name;
                    r.error(
                        role.pos,
                        "unknown-role",
                        msg!("rollen `{name}` finns inte i katalogen", "the role `{name}` is not in the directory"),
                        Some(suggest(name, directory.roles.iter().map(|r| r.id.as_str()))),
                    );
                    return;
                };
                if let Some(scope) = scope {
                    self.scope_ref(r, found, scope);
                }
            }
            Assignee::Field(field) => {
                self.field_ref(r, field, None);
                if let Some(f) = self.field(&field.name)
                    && !matches!(f.kind, FieldType::Person | FieldType::Email)
                {
                    let (name, kind) = (&field.name, f.kind.name());
                    r.error(
                        field.pos,
                        "wrong-type",
                        msg!(
                            "fältet `{name}` är av typen `{kind}` och kan inte tilldelas uppgifter",
                            "the field `{name}` has type `{kind}` and cannot be assigned tasks"
                        ),
                        Some(Msg::new(
                            "använd ett fält av typen `person` eller `email`",
                            "use a field of type `person` or `email`",
                        )),
                    );
                }
            }
            Assignee::Person(person) if directory.person(&person.name).is_none() => {
                let name = &person.name;
                r.error(
                    person.pos,
                    "unknown-person",
                    msg!("personen `{name}` finns inte i katalogen", "the person `{name}` is not in the directory"),
                    Some(suggest(name, directory.people.iter().map(|p| p.id.as_str()))),
                );
            }
            _ => {}
        }
    }

    fn scope_ref(&self, r: &mut Report, role: &crate::directory::Role, scope: &Ref) {
        if !role.scoped {
            let name = &role.id;
            r.error(
                scope.pos,
                "invalid-value",
                msg!(
                    "rollen `{name}` gäller inte per förvaltning, så `scope` gör ingen skillnad",
                    "the role `{name}` is not held per förvaltning, so `scope` makes no difference"
                ),
                Some(Msg::new("ta bort `scope`", "remove `scope`")),
            );
        }
        self.field_ref(r, scope, None);
    }

    fn step_refs(&self, r: &mut Report, state: &State) {
        match &state.kind {
            StateKind::Auto(auto) => {
                for step in &auto.steps {
                    match step {
                        Step::Set(pairs) => pairs.iter().for_each(|(f, _)| self.field_ref(r, f, None)),
                        Step::Notify { template, to } => {
                            self.template_ref(r, template);
                            if let Recipient::Assignee(a) = to {
                                self.assignee_refs(r, a);
                            }
                        }
                        Step::Emit { .. } => {}
                    }
                }
            }
            StateKind::Call(call) => call.store.iter().for_each(|(f, _)| self.field_ref(r, f, None)),
            StateKind::Wait(wait) => wait.store.iter().for_each(|(f, _)| self.field_ref(r, f, None)),
            StateKind::Subworkflow(sub)
                if !sub.workflow.name.is_empty() && !self.cx.workflows.contains(&sub.workflow.name) =>
            {
                let name = &sub.workflow.name;
                r.error(
                    sub.workflow.pos,
                    "unknown-workflow",
                    msg!("arbetsflödet `{name}` finns inte i mappen", "the workflow `{name}` is not in the folder"),
                    Some(suggest(name, self.cx.workflows.iter().map(String::as_str))),
                );
            }
            _ => {}
        }
    }

    fn template_ref(&self, r: &mut Report, template: &Ref) {
        if self.cx.templates.exists(&template.name) {
            return;
        }
        let name = &template.name;
        r.error(
            template.pos,
            "unknown-template",
            msg!("e-postmallen `{name}` finns inte", "the email template `{name}` does not exist"),
            Some(match crate::diagnostic::closest(name, self.cx.templates.names()) {
                Some(best) => msg!("menade du `{best}`?", "did you mean `{best}`?"),
                None => msg!(
                    "skapa mappen `templates/{name}/` med subject.sv.hbs och text.sv.hbs",
                    "create the folder `templates/{name}/` with subject.sv.hbs and text.sv.hbs"
                ),
            }),
        );
    }

    fn ledger_refs(&self, r: &mut Report, ledger: &Ledger) {
        if !self.cx.frames.iter().any(|(name, _)| *name == ledger.frames.name) {
            let name = &ledger.frames.name;
            r.error(
                ledger.frames.pos,
                "unknown-file",
                msg!("ramfilen `{name}` finns inte i mappen", "the frames file `{name}` is not in the folder"),
                Some(Msg::new("skriv t.ex. `frames: portfolios.yaml`", "write e.g. `frames: portfolios.yaml`")),
            );
        }
        for key in &ledger.key {
            self.field_ref(r, key, None);
        }
        if ledger.key.len() != 2 {
            r.error(
                ledger.pos,
                "invalid-value",
                Msg::new(
                    "`key` ska ha två fält: portfölj och budgetår",
                    "`key` must have two fields: portfolio and budget year",
                ),
                Some(Msg::new("skriv t.ex. `key: [portfolj, budgetar]`", "write e.g. `key: [portfolj, budgetar]`")),
            );
        }
    }

    /// Where an expression's own column lands in the file: after the opening quote, if any.
    fn expr_pos(&self, e: &Expr, column: u32) -> Pos {
        let line = self.cx.source.lines().nth(e.pos.line.saturating_sub(1) as usize).unwrap_or("");
        let quoted = line.chars().nth(e.pos.column.saturating_sub(1) as usize).is_some_and(|c| c == '"' || c == '\'');
        let single_line = !e.source.contains('\n');
        if single_line {
            Pos { line: e.pos.line, column: e.pos.column + column - 1 + u32::from(quoted) }
        } else {
            e.pos
        }
    }

    /// Checks one expression; `expected` is the kind its value must have, if any; `extra` are
    /// names only this place offers (e.g. `response`), whose contents are not known.
    fn expression(&self, r: &mut Report, e: &Expr, expected: Option<Kind>, extra: &[&str]) {
        // Cached by source: the same guard in many files (or versions) compiles once.
        let program = match expr::cached(&e.source) {
            Ok(p) => p,
            Err(err) => {
                let (message, width) = (syntax_message(&err.problem), err.problem.width());
                r.error_span(
                    self.expr_pos(e, err.column),
                    width,
                    "expr-syntax",
                    message,
                    Some(Msg::new(
                        "uttryck skrivs i CEL, t.ex. `kostnad > 500000 && klassning == \"storre\"`; text inom dubbla citattecken",
                        "expressions are CEL, e.g. `kostnad > 500000 && klassning == \"storre\"`; texts in double quotes",
                    )),
                );
                return;
            }
        };
        let mut unknown = false;
        for name in expr::variables(&program) {
            if name == "case" || extra.contains(&name.as_str()) || self.field(&name).is_some() {
                continue;
            }
            unknown = true;
            let column = e.source.find(&name).map_or(1, |i| e.source[..i].chars().count() as u32 + 1);
            let names = self.fields.iter().map(|f| f.id.as_str()).chain(["case"]).chain(extra.iter().copied());
            r.error_span(
                self.expr_pos(e, column),
                name.chars().count(),
                "expr-unknown-name",
                msg!("`{name}` är inget fält i arbetsflödet", "`{name}` is not a field of the workflow"),
                Some(suggest(&name, names)),
            );
        }
        if unknown || !extra.is_empty() {
            return;
        }
        for flag in [true, false] {
            if !self.trial(r, e, &program, expected, flag) {
                return;
            }
        }
    }

    /// One trial evaluation; false when it reported a problem.
    fn trial(&self, r: &mut Report, e: &Expr, program: &cel::Program, expected: Option<Kind>, flag: bool) -> bool {
        match expr::trial(program, &self.fields, &[], flag) {
            Trial::Value(value) => {
                let got = expr::kind_of(&value);
                match expected {
                    Some(want) if got != want && got != Kind::Null => {
                        let (want, got) = (kind_name(want), kind_name(got));
                        r.error(
                            e.pos,
                            "expr-type",
                            Msg::new(
                                format!("uttrycket ska ge {}, men ger {}", want.sv, got.sv),
                                format!("the expression must give {}, but gives {}", want.en, got.en),
                            ),
                            Some(Msg::new(
                                "jämför t.ex. med `==`, `>` eller `in`",
                                "compare, e.g. with `==`, `>` or `in`",
                            )),
                        );
                        false
                    }
                    _ => true,
                }
            }
            Trial::TypeError(mismatch) => {
                r.error(
                    e.pos,
                    "expr-type",
                    mismatch_message(&mismatch),
                    Some(Msg::new(
                        "jämför text med text (\"…\") och tal med tal; se fältens `type`",
                        "compare text with text (\"…\") and numbers with numbers; see the fields' `type`",
                    )),
                );
                false
            }
            Trial::UnknownFunction(name) => {
                r.error(
                    e.pos,
                    "expr-unknown-name",
                    msg!("funktionen `{name}` finns inte", "the function `{name}` does not exist"),
                    None,
                );
                false
            }
            Trial::Inconclusive => true,
        }
    }

    fn expressions(&self, r: &mut Report) {
        if let Some(hook) = &self.def.webhook {
            self.expression(r, &hook.starter, Some(Kind::Text), &["payload"]);
            self.assignments(r, &hook.data, &["payload"]);
        }
        for state in &self.def.states {
            match &state.kind {
                StateKind::Choice(choice) => {
                    for (cond, _) in &choice.when {
                        self.expression(r, cond, Some(Kind::Bool), &[]);
                    }
                }
                StateKind::Auto(auto) => {
                    for step in &auto.steps {
                        match step {
                            Step::Set(pairs) => self.assignments(r, pairs, &[]),
                            Step::Emit { data, .. } => data.iter().for_each(|(_, e)| self.expression(r, e, None, &[])),
                            Step::Notify { .. } => {}
                        }
                    }
                }
                StateKind::Call(call) => {
                    call.body.iter().for_each(|(_, e)| self.expression(r, e, None, &[]));
                    self.assignments(r, &call.store, &["response"]);
                }
                StateKind::Wait(wait) => {
                    match &wait.wait_for {
                        WaitFor::Signal { key: Some(key), .. } => self.expression(r, key, Some(Kind::Text), &[]),
                        WaitFor::Until(until) => self.expression(r, until, Some(Kind::Text), &[]),
                        _ => {}
                    }
                    self.assignments(r, &wait.store, &["signal"]);
                }
                StateKind::Subworkflow(sub) => sub.data.iter().for_each(|(_, e)| self.expression(r, e, None, &[])),
                _ => {}
            }
            for task in state.tasks() {
                for action in &task.actions {
                    self.assignments(r, &action.set, &[]);
                    if let Some(reserve) = &action.reserve {
                        self.expression(r, &reserve.amount, Some(Kind::Number), &[]);
                    }
                }
            }
        }
    }

    /// `field: EXPRESSION` pairs: the value must fit the field.
    fn assignments(&self, r: &mut Report, pairs: &[(Ref, Expr)], extra: &[&str]) {
        for (field, e) in pairs {
            let expected = self.field(&field.name).map(|f| expr::field_kind(f.kind));
            self.expression(r, e, expected, extra);
        }
    }

    fn templates(&self, r: &mut Report) {
        let mut used: Vec<&Ref> = Vec::new();
        for state in &self.def.states {
            used.extend(state.tasks().iter().map(|t| &t.email));
            if let StateKind::Auto(auto) = &state.kind {
                for step in &auto.steps {
                    if let Step::Notify { template, .. } = step {
                        used.push(template);
                    }
                }
            }
        }
        let mut done: Vec<&str> = Vec::new();
        for reference in used {
            if done.contains(&reference.name.as_str()) {
                continue;
            }
            done.push(&reference.name);
            for (file, u) in self.cx.templates.uses(&reference.name) {
                self.template_use(r, reference.pos, &file.path, &u);
            }
        }
        if let Some(title) = &self.def.title {
            for u in crate::templates::template_uses(&title.source) {
                self.template_use(r, title.pos, "title", &u);
            }
        }
    }

    fn template_use(&self, r: &mut Report, at: Pos, file: &str, u: &crate::templates::Use) {
        let path = &u.path;
        let root = path.split('.').next().unwrap_or("");
        let bad = match path.strip_prefix("data.") {
            Some(rest) => self.field(rest.split('.').next().unwrap_or("")).is_none(),
            None => !ROOTS.contains(&root),
        };
        if !bad {
            self.template_object_key(r, at, file, u);
            return;
        }
        let (line, column) = (u.pos.line, u.pos.column);
        let wanted = path.strip_prefix("data.").unwrap_or(path);
        let candidates: Vec<&str> = self.fields.iter().map(|f| f.id.as_str()).collect();
        r.error(
            at,
            "template-unknown-field",
            msg!(
                "mallen använder `{path}` ({file}:{line}:{column}), som inte finns i det här arbetsflödet",
                "the template uses `{path}` ({file}:{line}:{column}), which this workflow does not have"
            ),
            Some(match crate::diagnostic::closest(wanted, candidates.iter().copied()) {
                Some(best) => msg!("menade du `data.{best}`?", "did you mean `data.{best}`?"),
                None => Msg::new(
                    "mallar kan läsa `data.FÄLT` för fälten i arbetsflödet samt case, task, recipient, actions och decision",
                    "templates can read `data.FIELD` for the workflow's fields and case, task, recipient, actions and decision",
                ),
            }),
        );
    }

    /// `case.workflow` where the context has `case.workflow_name`: strict rendering would
    /// fail when the email is sent, so it is an error now.
    fn template_object_key(&self, r: &mut Report, at: Pos, file: &str, u: &crate::templates::Use) {
        let mut parts = u.path.split('.');
        let (Some(root), Some(key)) = (parts.next(), parts.next()) else { return };
        let Some((_, keys)) = OBJECT_KEYS.iter().find(|(name, _)| *name == root) else { return };
        if keys.contains(&key) {
            return;
        }
        let (path, line, column) = (&u.path, u.pos.line, u.pos.column);
        r.error(
            at,
            "template-unknown-field",
            msg!(
                "mallen använder `{path}` ({file}:{line}:{column}), som e-postmeddelanden inte har",
                "the template uses `{path}` ({file}:{line}:{column}), which emails do not have"
            ),
            Some(match crate::diagnostic::closest(key, keys.iter().copied()) {
                Some(best) => msg!("menade du `{root}.{best}`?", "did you mean `{root}.{best}`?"),
                None => msg!("`{root}` har: {list}", "`{root}` has: {list}", list = keys.join(", ")),
            }),
        );
    }

    fn parallel_rules(&self, r: &mut Report) {
        for state in &self.def.states {
            let StateKind::Parallel(p) = &state.kind else { continue };
            let Some(join) = p.join else { continue };
            let branches = p.branches.len();
            let with_yes = p
                .branches
                .iter()
                .filter(|b| b.task.actions.iter().any(|a| matches!(a.target, ActionTarget::Vote(true))))
                .count();
            let needed = join.needed(branches);
            let problem = match join.rule {
                JoinRule::AtLeast { of, .. } if of != branches => Some(msg!(
                    "regeln räknar med {of} grenar, men det finns {branches}",
                    "the rule counts {of} branches, but there are {branches}"
                )),
                _ if needed == 0 => Some(Msg::new(
                    "regeln kräver inga ja-röster, så granskningen avgör ingenting",
                    "the rule needs no yes votes, so the review decides nothing",
                )),
                _ if needed > with_yes => Some(msg!(
                    "regeln kräver {needed} ja-röster, men bara {with_yes} grenar kan rösta ja",
                    "the rule needs {needed} yes votes, but only {with_yes} branches can vote yes"
                )),
                _ => None,
            };
            if let Some(message) = problem {
                r.error(
                    join.pos,
                    "quorum-impossible",
                    message,
                    Some(msg!(
                        "skriv `all`, `any` eller `N of {branches}` med N från 1 till {branches}",
                        "write `all`, `any` or `N of {branches}` with N from 1 to {branches}"
                    )),
                );
            }
        }
    }

    fn graph(&self, r: &mut Report) {
        let mut graph: DiGraph<usize, ()> = DiGraph::new();
        let nodes: HashMap<&str, NodeIndex> =
            self.def.states.iter().enumerate().map(|(i, s)| (s.id.as_str(), graph.add_node(i))).collect();
        for state in &self.def.states {
            for (to, _) in state.successors() {
                if let Some(&target) = nodes.get(to.name.as_str()) {
                    graph.add_edge(nodes[state.id.as_str()], target, ());
                }
            }
        }
        let Some(&start) = nodes.get(self.def.start.name.as_str()) else { return };
        let mut reachable = vec![false; graph.node_count()];
        let mut bfs = Bfs::new(&graph, start);
        while let Some(n) = bfs.next(&graph) {
            reachable[n.index()] = true;
        }
        // A withdrawal can happen from any state, so its target counts as reached.
        if let Some(&w) = self.def.withdraw_to.as_ref().and_then(|w| nodes.get(w.name.as_str())) {
            reachable[w.index()] = true;
        }
        let mut finishes = vec![false; graph.node_count()];
        let reversed = Reversed(&graph);
        for (i, state) in self.def.states.iter().enumerate() {
            if matches!(state.kind, StateKind::End(_)) {
                let mut bfs = Bfs::new(reversed, NodeIndex::new(i));
                while let Some(n) = bfs.next(reversed) {
                    finishes[n.index()] = true;
                }
            }
        }
        for (i, state) in self.def.states.iter().enumerate() {
            let id = &state.id;
            if !reachable[i] {
                r.error(
                    state.pos,
                    "unreachable-state",
                    msg!(
                        "tillståndet `{id}` kan aldrig nås från `start`",
                        "the state `{id}` can never be reached from `start`"
                    ),
                    Some(Msg::new(
                        "låt en handling eller ett val leda hit, eller ta bort tillståndet",
                        "let an action or a choice lead here, or remove the state",
                    )),
                );
            } else if !finishes[i] {
                r.error(
                    state.pos,
                    "no-terminal",
                    msg!(
                        "från `{id}` går det aldrig att nå ett sluttillstånd; ärenden fastnar här",
                        "from `{id}` no end state can ever be reached; cases get stuck here"
                    ),
                    Some(Msg::new(
                        "lägg till en väg till ett tillstånd med `type: end`",
                        "add a way to a state with `type: end`",
                    )),
                );
            }
        }
    }

    fn warnings(&self, r: &mut Report) {
        for state in &self.def.states {
            let id = &state.id;
            match &state.kind {
                StateKind::Task(task) => self.task_warnings(r, state.pos, id, task),
                StateKind::Parallel(p) => {
                    for b in &p.branches {
                        self.task_warnings(r, b.pos, &format!("{id}.{}", b.id), &b.task);
                    }
                }
                _ => {}
            }
        }
    }

    fn task_warnings(&self, r: &mut Report, pos: Pos, id: &str, task: &Task) {
        if task.on_timeout.is_none() {
            r.warning(
                pos,
                "task-without-timeout",
                msg!(
                    "uppgiften `{id}` säger inte vad som händer om ingen beslutar",
                    "the task `{id}` does not say what happens if nobody decides"
                ),
                Some(Msg::new(
                    "lägg till `deadline: 10 working days` och `on_timeout: {escalate: {role: …}}` eller `{action: …}`",
                    "add `deadline: 10 working days` and `on_timeout: {escalate: {role: …}}` or `{action: …}`",
                )),
            );
        } else if task.deadline.is_none() {
            r.error(
                pos,
                "missing-key",
                msg!(
                    "uppgiften `{id}` har `on_timeout` men ingen `deadline`",
                    "the task `{id}` has `on_timeout` but no `deadline`"
                ),
                Some(Msg::new("lägg till t.ex. `deadline: 10 working days`", "add e.g. `deadline: 10 working days`")),
            );
        }
        if !task.reminders.is_empty() && task.deadline.is_none() {
            r.error(
                pos,
                "missing-key",
                msg!(
                    "uppgiften `{id}` har påminnelser men ingen `deadline` att räkna från",
                    "the task `{id}` has reminders but no `deadline` to count from"
                ),
                None,
            );
        }
    }
}

fn syntax_message(problem: &expr::Problem) -> Msg {
    use expr::Problem;
    match problem {
        Problem::Unexpected(text) => msg!(
            "uttrycket går inte att läsa: `{text}` hör inte hemma här",
            "the expression cannot be read: `{text}` does not belong here"
        ),
        Problem::EndsEarly => Msg::new(
            "uttrycket tar slut för tidigt; något fattas på slutet",
            "the expression ends too early; something is missing at the end",
        ),
        Problem::BadCharacter(text) => msg!(
            "uttrycket går inte att läsa: tecknet `{text}` finns inte i språket (eller en text saknar avslutande citattecken)",
            "the expression cannot be read: `{text}` is not part of the language (or a text lacks its closing quote)"
        ),
        Problem::Other(text) => msg!("uttrycket går inte att läsa: {text}", "the expression cannot be read: {text}"),
    }
}

/// "`>` kan inte användas på text och tal" – what went wrong, in the writer's terms.
fn mismatch_message(m: &expr::Mismatch) -> Msg {
    let names: Vec<Msg> = m.kinds.iter().map(|k| kind_name(*k)).collect();
    let join = |sv: bool| {
        let words: Vec<&str> = names.iter().map(|n| if sv { n.sv.as_str() } else { n.en.as_str() }).collect();
        words.join(if sv { " och " } else { " and " })
    };
    let op = &m.operator;
    match (op.is_empty(), names.is_empty()) {
        (false, false) => Msg::new(
            format!("`{op}` kan inte användas på {}", join(true)),
            format!("`{op}` cannot be used on {}", join(false)),
        ),
        _ => Msg::new("typerna passar inte ihop i uttrycket", "the types do not match in the expression"),
    }
}

fn kind_name(kind: Kind) -> Msg {
    match kind {
        Kind::Text => Msg::new("en text", "a text"),
        Kind::Number => Msg::new("ett tal", "a number"),
        Kind::Bool => Msg::new("sant eller falskt", "true or false"),
        Kind::List => Msg::new("en lista", "a list"),
        Kind::Map => Msg::new("en mappning", "a mapping"),
        Kind::Null => Msg::new("inget värde", "no value"),
        Kind::Other => Msg::new("något annat", "something else"),
    }
}
