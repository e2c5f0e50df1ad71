//! Tests of the core through the in-memory driver: one small workflow per construct.

use super::sim::Sim;
use super::*;
use crate::definition::check::{self, Context};
use crate::definition::model::Definition;
use crate::diagnostic::Report;
use crate::directory::{self, Directory};
use crate::portfolios::{self, Portfolios};
use crate::templates::Templates;
use serde_json::json;

const DIRECTORY: &str = r#"
forvaltningar:
  kf: { name: Kommunledningsförvaltningen }
  sbf: { name: Samhällsbyggnadsförvaltningen }
roles:
  it-chef: { label: IT-chef }
  samordnare: { label: IT-samordnare, scoped: true }
  specialist: { label: Specialist }
people:
  chef: { name: Karin Chef, email: chef@k.se, roles: [it-chef] }
  anna: { name: Anna Kf, email: anna@k.se, roles: [{ role: samordnare, scope: kf }], absences: [{ from: 2026-07-01, to: 2026-07-31, substitute: bo }] }
  bo: { name: Bo Sbf, email: bo@k.se, roles: [{ role: samordnare, scope: sbf }] }
  s1: { name: Sara Ett, email: s1@k.se, roles: [specialist] }
  s2: { name: Sven Två, email: s2@k.se, roles: [specialist] }
  s3: { name: Siv Tre, email: s3@k.se, language: en, roles: [specialist] }
  starter: { name: Stina Start, email: stina@k.se }
"#;

const FRAMES: &str = "portfolios:\n  a: { name: A, frames: { 2026: 1000 } }\n";

struct Fixture {
    directory: Directory,
    frames: Vec<(String, Portfolios)>,
    definitions: Vec<Definition>,
}

/// Parses and checks workflows against the fixture directory; any diagnostic fails the test.
fn fixture(workflows: &[(&str, &str)]) -> Fixture {
    let mut r = Report::new("directory.yaml");
    let directory = directory::parse(&mut r, &crate::yaml::parse(DIRECTORY).unwrap());
    let frames = vec![("portfolios.yaml".to_string(), portfolios::parse(&mut r, &crate::yaml::parse(FRAMES).unwrap()))];
    assert!(r.items.is_empty(), "{:?}", r.items);
    let ids: Vec<String> = workflows.iter().map(|(id, _)| id.to_string()).collect();
    let templates = Templates::default();
    let definitions = workflows
        .iter()
        .map(|(id, source)| {
            let mut r = Report::new(*id);
            let def = crate::definition::parse::definition(&mut r, id, &crate::yaml::parse(source).unwrap()).unwrap();
            let cx = Context { directory: &directory, frames: &frames, templates: &templates, workflows: &ids, source };
            check::check(&mut r, &def, &cx);
            assert!(r.items.iter().all(|d| !d.is_error()), "{id}: {:?}", r.items);
            def
        })
        .collect();
    Fixture { directory, frames, definitions }
}

impl Fixture {
    fn sim(&self, at: &str) -> Sim<'_> {
        Sim::new(World { directory: &self.directory, frames: &self.frames }, &self.definitions, at.parse().unwrap())
    }
}

fn starter() -> Party {
    Party {
        person: Some("starter".into()),
        email: "stina@k.se".into(),
        name: "Stina Start".into(),
        lang: Default::default(),
    }
}

fn data(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

const SIMPLE: &str = r#"
name: Enkel
series: EN
start: granskning
withdraw_to: aterkallad
data:
  rubrik: { type: text, label: Rubrik, required: true }
  forvaltning: { type: enum, label: Förvaltning, values_from: forvaltningar, required: true }
  kostnad: { type: money, label: Kostnad, required: true, min: 0 }
states:
  granskning:
    type: task
    label: Granskning
    assignee: { role: samordnare, scope: forvaltning }
    deadline: 5 working days
    reminders: [2 working days]
    on_timeout: { escalate: { role: it-chef }, deadline: 2 working days }
    form:
      bedomning: { type: text, label: Bedömning, required: true }
    actions:
      godkann: { label: Godkänn, to: dyr }
      avsla: { label: Avslå, to: avslagen, comment: required, fields: [] }
  dyr:
    type: choice
    label: Dyr?
    when:
      - { if: kostnad > 50000, goto: chefsbeslut }
    otherwise: godkand
  chefsbeslut:
    type: task
    label: Chefsbeslut
    assignee: { role: it-chef }
    deadline: 3 days
    on_timeout: { action: avsla }
    actions:
      godkann: { label: Godkänn, to: godkand }
      avsla: { label: Avslå, to: avslagen }
  godkand: { type: end, label: Godkänd, outcome: approved }
  avslagen: { type: end, label: Avslagen, outcome: rejected }
  aterkallad: { type: end, label: Återkallad, outcome: withdrawn }
"#;

fn start_simple<'a>(sim: &mut Sim<'a>, kostnad: i64, forvaltning: &str) -> String {
    sim.start(
        "enkel",
        data(json!({ "rubrik": "Ny server", "forvaltning": forvaltning, "kostnad": kostnad })),
        starter(),
    )
    .unwrap()
}

fn form(value: Value) -> Map<String, Value> {
    data(value)
}

fn outcome(case: &Case) -> Option<OutcomeId> {
    match case.status {
        Status::Closed { outcome, .. } => Some(outcome),
        Status::Open => None,
    }
}

#[test]
fn task_choice_and_end_with_audit_and_mail() {
    let f = fixture(&[("enkel", SIMPLE)]);
    let mut sim = f.sim("2026-03-02T08:00:00Z");
    let id = start_simple(&mut sim, 1000, "kf");
    assert_eq!(sim.case(&id).number, "EN 2026/0001");
    assert_eq!(sim.mails.iter().map(|m| m.to.email.as_str()).collect::<Vec<_>>(), ["anna@k.se"]);
    sim.decide(&id, "anna", "godkann", None, form(json!({ "bedomning": "Bra" }))).unwrap();
    let case = sim.case(&id);
    assert_eq!(outcome(case), Some(OutcomeId::Approved));
    assert_eq!(case.data["bedomning"], "Bra");
    let whats: Vec<&str> = sim.audit.iter().map(|(_, a)| a.what.as_str()).collect();
    assert!(whats.contains(&"task.decided") && whats.contains(&"case.closed"), "{whats:?}");
    assert_eq!(sim.mails.last().unwrap().kind, NoticeKind::CaseDecided);
}

#[test]
fn decisions_are_bound_to_the_assignee_and_happen_once() {
    let f = fixture(&[("enkel", SIMPLE)]);
    let mut sim = f.sim("2026-03-02T08:00:00Z");
    let id = start_simple(&mut sim, 1000, "kf");
    let task = sim.case(&id).tasks[0].id.clone();
    let decide = |actor: &str, action: &str, comment: Option<&str>| Command::Decide {
        task: task.clone(),
        actor: actor.into(),
        action: action.into(),
        comment: comment.map(str::to_string),
        form: Map::new(),
    };
    assert_eq!(sim.send(&id, decide("bo", "avsla", Some("nej")), Channel::Api), Err(Error::NotAssignee("bo".into())));
    assert_eq!(sim.send(&id, decide("anna", "avsla", None), Channel::Api), Err(Error::CommentRequired));
    assert!(matches!(sim.send(&id, decide("anna", "godkann", None), Channel::Api), Err(Error::InvalidData(_))));
    sim.send(&id, decide("anna", "avsla", Some("För dyrt")), Channel::EmailLink).unwrap();
    let again = sim.send(&id, decide("anna", "avsla", Some("igen")), Channel::EmailLink);
    assert!(matches!(again, Err(Error::CaseClosed)), "{again:?}");
    assert_eq!(outcome(sim.case(&id)), Some(OutcomeId::Rejected));
}

#[test]
fn substitute_gets_the_task_of_an_absent_person() {
    let f = fixture(&[("enkel", SIMPLE)]);
    let mut sim = f.sim("2026-07-10T08:00:00Z");
    let id = start_simple(&mut sim, 1000, "kf");
    let assignment = &sim.case(&id).tasks[0].assignees[0];
    assert_eq!(assignment.party.person.as_deref(), Some("bo"));
    assert_eq!(assignment.on_behalf_of.as_deref(), Some("anna"));
    assert_eq!(assignment.via, Via::Substitute);
    sim.decide(&id, "bo", "godkann", None, form(json!({ "bedomning": "ok" }))).unwrap();
    let decision = sim.case(&id).tasks[0].decision.clone().unwrap();
    assert_eq!((decision.by.as_str(), decision.on_behalf_of.as_deref()), ("bo", Some("anna")));
}

#[test]
fn deadline_in_working_days_reminds_then_escalates() {
    let f = fixture(&[("enkel", SIMPLE)]);
    // Thursday before Easter 2026: Good Friday and Easter Monday are not working days.
    let mut sim = f.sim("2026-04-02T08:00:00Z");
    let id = start_simple(&mut sim, 1000, "kf");
    let deadline = sim.case(&id).tasks[0].deadline.unwrap();
    assert_eq!(deadline.to_string(), "2026-04-13T08:00:00Z", "5 working days skip Easter");
    sim.advance_to("2026-04-09T08:00:00Z".parse().unwrap()).unwrap();
    assert!(sim.mails.iter().any(|m| m.kind == NoticeKind::Reminder && m.to.email == "anna@k.se"));
    sim.advance_to("2026-04-13T08:00:00Z".parse().unwrap()).unwrap();
    let task = &sim.case(&id).tasks[0];
    assert!(task.escalated);
    assert_eq!(task.assignees[0].party.person.as_deref(), Some("chef"));
    assert!(sim.mails.iter().any(|m| m.kind == NoticeKind::Escalation && m.to.email == "chef@k.se"));
    sim.decide(&id, "chef", "godkann", None, form(json!({ "bedomning": "Beslutat av chef" }))).unwrap();
    assert_eq!(outcome(sim.case(&id)), Some(OutcomeId::Approved));
}

#[test]
fn timeout_takes_the_named_action() {
    let f = fixture(&[("enkel", SIMPLE)]);
    let mut sim = f.sim("2026-03-02T08:00:00Z");
    let id = start_simple(&mut sim, 90000, "sbf");
    sim.decide(&id, "bo", "godkann", None, form(json!({ "bedomning": "ok" }))).unwrap();
    assert_eq!(sim.case(&id).state, "chefsbeslut");
    sim.advance_to("2026-03-06T08:00:00Z".parse().unwrap()).unwrap();
    assert_eq!(outcome(sim.case(&id)), Some(OutcomeId::Rejected));
    assert_eq!(sim.case(&id).tasks[1].decision.as_ref().unwrap().by, "system");
}

#[test]
fn starter_may_withdraw_others_may_not() {
    let f = fixture(&[("enkel", SIMPLE)]);
    let mut sim = f.sim("2026-03-02T08:00:00Z");
    let id = start_simple(&mut sim, 1000, "kf");
    let withdraw = |actor: &str| Command::Withdraw { actor: actor.into(), comment: None };
    assert!(matches!(sim.send(&id, withdraw("anna"), Channel::Api), Err(Error::NotAllowed(_))));
    sim.send(&id, withdraw("starter"), Channel::Api).unwrap();
    assert_eq!(outcome(sim.case(&id)), Some(OutcomeId::Withdrawn));
    assert!(sim.case(&id).tasks[0].closed == Some(Closed::Cancelled));
    assert!(sim.mails.iter().any(|m| m.kind == NoticeKind::TaskClosed && m.to.email == "anna@k.se"));
}

#[test]
fn delegation_moves_the_task_and_records_both() {
    let f = fixture(&[("enkel", SIMPLE)]);
    let mut sim = f.sim("2026-03-02T08:00:00Z");
    let id = start_simple(&mut sim, 1000, "kf");
    let task = sim.case(&id).tasks[0].id.clone();
    let command =
        Command::Delegate { task, actor: "anna".into(), to: "s1".into(), comment: Some("Du kan detta".into()) };
    sim.send(&id, command, Channel::Api).unwrap();
    assert!(matches!(
        sim.decide(&id, "anna", "godkann", None, form(json!({ "bedomning": "x" }))),
        Err(Error::NotAssignee(_))
    ));
    sim.decide(&id, "s1", "godkann", None, form(json!({ "bedomning": "x" }))).unwrap();
    let decision = sim.case(&id).tasks[0].decision.clone().unwrap();
    assert_eq!((decision.by.as_str(), decision.on_behalf_of.as_deref()), ("s1", Some("anna")));
}

#[test]
fn start_data_is_validated_with_every_problem() {
    let f = fixture(&[("enkel", SIMPLE)]);
    let mut sim = f.sim("2026-03-02T08:00:00Z");
    let result = sim.start("enkel", data(json!({ "forvaltning": "xx", "kostnad": -5, "okand": 1 })), starter());
    let Err(Error::InvalidData(problems)) = result else { panic!("{result:?}") };
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["okand", "rubrik", "forvaltning", "kostnad"]);
    assert!(sim.cases.is_empty());
}

const REVIEW: &str = r#"
name: Granskning
series: GR
start: forum
data:
  rubrik: { type: text, label: Rubrik }
states:
  forum:
    type: parallel
    label: Forum
    join: JOIN
    veto: VETO
    branches:
      b1: { label: Ett, assignee: { person: s1 }, deadline: 2 days, on_timeout: { action: nej }, actions: { ja: { label: Ja, vote: yes }, nej: { label: Nej, vote: no } } }
      b2: { label: Två, assignee: { person: s2 }, deadline: 2 days, on_timeout: { action: nej }, actions: { ja: { label: Ja, vote: yes }, nej: { label: Nej, vote: no } } }
      b3: { label: Tre, assignee: { person: s3 }, deadline: 2 days, on_timeout: { action: nej }, actions: { ja: { label: Ja, vote: yes }, nej: { label: Nej, vote: no } } }
    on_approved: ja
    on_rejected: nej
  ja: { type: end, label: Tillstyrkt, outcome: approved }
  nej: { type: end, label: Avstyrkt, outcome: rejected }
"#;

/// Runs a review with the given rule and votes (in order) and returns the outcome and how
/// many branches were still open when it settled.
fn review(join: &str, veto: bool, votes: &[(&str, &str)]) -> (Option<OutcomeId>, usize) {
    let source = REVIEW.replace("JOIN", join).replace("VETO", &veto.to_string());
    let f = fixture(&[("granskning", &source)]);
    let mut sim = f.sim("2026-03-02T08:00:00Z");
    let id = sim.start("granskning", Map::new(), starter()).unwrap();
    for (who, vote) in votes {
        if sim.case(&id).is_open() {
            sim.decide(&id, who, vote, None, Map::new()).unwrap();
        }
    }
    let case = sim.case(&id);
    let cancelled = case.tasks.iter().filter(|t| t.closed == Some(Closed::Cancelled)).count();
    (outcome(case), cancelled)
}

#[test]
fn parallel_review_rules() {
    assert_eq!(review("all", false, &[("s1", "ja"), ("s2", "ja"), ("s3", "ja")]), (Some(OutcomeId::Approved), 0));
    assert_eq!(
        review("all", true, &[("s1", "ja"), ("s2", "nej")]),
        (Some(OutcomeId::Rejected), 1),
        "veto ends at once"
    );
    assert_eq!(review("any", false, &[("s1", "nej"), ("s2", "ja")]), (Some(OutcomeId::Approved), 1));
    assert_eq!(review("2 of 3", false, &[("s1", "ja"), ("s2", "ja")]), (Some(OutcomeId::Approved), 1));
    assert_eq!(
        review("2 of 3", false, &[("s1", "nej"), ("s2", "nej")]),
        (Some(OutcomeId::Rejected), 1),
        "early failure"
    );
    assert_eq!(review("2 of 3", false, &[("s1", "nej"), ("s2", "ja")]), (None, 0), "still open");
}

const GRANT: &str = r#"
name: Bidrag
series: BI
start: beslut
ledgers:
  ram: { label: Ram, frames: portfolios.yaml, key: [portfolj, ar] }
data:
  portfolj: { type: enum, label: Portfölj, values_from: portfolios, required: true }
  ar: { type: number, label: År, required: true }
  belopp: { type: money, label: Belopp, required: true }
states:
  beslut:
    type: task
    label: Beslut
    assignee: { role: it-chef }
    deadline: 5 working days
    on_timeout: { action: avsla }
    actions:
      bevilja: { label: Bevilja, to: beviljad, reserve: { ledger: ram, amount: belopp } }
      avsla: { label: Avslå, to: avslagen }
  beviljad: { type: end, label: Beviljad, outcome: approved }
  avslagen: { type: end, label: Avslagen, outcome: rejected }
"#;

#[test]
fn reservations_never_exceed_the_frame() {
    let f = fixture(&[("bidrag", GRANT)]);
    let mut sim = f.sim("2026-03-02T08:00:00Z");
    let ids: Vec<String> = (0..5)
        .map(|_| sim.start("bidrag", data(json!({ "portfolj": "a", "ar": 2026, "belopp": 300 })), starter()).unwrap())
        .collect();
    let results: Vec<bool> = ids.iter().map(|id| sim.decide(id, "chef", "bevilja", None, Map::new()).is_ok()).collect();
    assert_eq!(results, [true, true, true, false, false], "a frame of 1000 fits three grants of 300");
    assert_eq!(sim.reserved.values().sum::<i64>(), 90000);
    assert!(sim.case(&ids[3]).is_open(), "a refused reservation leaves the case as it was");
}

const PARENT: &str = r#"
name: Förälder
series: FO
start: vanta
data:
  rubrik: { type: text, label: Rubrik }
  plan_id: { type: text, label: Plan }
states:
  vanta:
    type: wait
    label: Väntar på plan
    signal: plan
    store: { plan_id: signal.id }
    timeout: 10 days
    on_timeout: avbruten
    next: barn
  barn:
    type: subworkflow
    label: Delflöde
    workflow: barn
    data: { rubrik: rubrik }
    outcomes: { approved: klar }
    otherwise: avbruten
  klar: { type: end, label: Klar, outcome: completed }
  avbruten: { type: end, label: Avbruten, outcome: cancelled }
"#;

const CHILD: &str = r#"
name: Barn
series: BA
start: ok
data:
  rubrik: { type: text, label: Rubrik }
states:
  ok:
    type: task
    label: Godkänn
    assignee: { role: it-chef }
    deadline: 1 day
    on_timeout: { goto: nej }
    actions: { ja: { label: Ja, to: ja } }
  ja: { type: end, label: Ja, outcome: approved }
  nej: { type: end, label: Nej, outcome: rejected }
"#;

#[test]
fn signal_then_subworkflow_then_end() {
    let f = fixture(&[("foralder", PARENT), ("barn", CHILD)]);
    let mut sim = f.sim("2026-03-02T08:00:00Z");
    let id = sim.start("foralder", data(json!({ "rubrik": "R" })), starter()).unwrap();
    let wrong = sim.send(&id, Command::Signal { name: "annan".into(), payload: json!({}) }, Channel::Webhook);
    assert_eq!(wrong, Err(Error::NotWaiting));
    sim.send(&id, Command::Signal { name: "plan".into(), payload: json!({ "id": "P-7" }) }, Channel::Webhook).unwrap();
    assert_eq!(sim.case(&id).data["plan_id"], "P-7");
    let child = format!("{id}-2");
    assert_eq!(sim.case(&child).data["rubrik"], "R");
    sim.decide(&child, "chef", "ja", None, Map::new()).unwrap();
    assert_eq!(outcome(sim.case(&id)), Some(OutcomeId::Completed));
}

#[test]
fn wait_times_out() {
    let f = fixture(&[("foralder", PARENT), ("barn", CHILD)]);
    let mut sim = f.sim("2026-03-02T08:00:00Z");
    let id = sim.start("foralder", Map::new(), starter()).unwrap();
    sim.advance_to("2026-03-12T08:00:00Z".parse().unwrap()).unwrap();
    assert_eq!(outcome(sim.case(&id)), Some(OutcomeId::Cancelled));
}

#[test]
fn stale_timers_change_nothing() {
    let f = fixture(&[("enkel", SIMPLE)]);
    let mut sim = f.sim("2026-03-02T08:00:00Z");
    let id = start_simple(&mut sim, 1000, "kf");
    let task = sim.case(&id).tasks[0].id.clone();
    sim.decide(&id, "anna", "godkann", None, form(json!({ "bedomning": "ok" }))).unwrap();
    let before = sim.case(&id).clone();
    let timer = Command::Timer { timer: Timer::Deadline { task } };
    assert_eq!(sim.send(&id, timer, Channel::Timer), Err(Error::CaseClosed));
    assert_eq!(sim.case(&id), &before);
}

/// One data-driven helper for every construct: start a case of `workflow` with `data`, apply
/// `steps` written as short sentences, and compare the outcome with `expected`
/// (`state=… outcome=…`, plus `refused=N` when N steps must be refused).
///
/// Steps: `decide PERSON ACTION [comment | {form JSON}]`, `delegate PERSON TO`,
/// `advance TIMESTAMP`, `withdraw PERSON`, `signal NAME JSON`.
fn check(workflows: &[(&str, &str)], workflow: &str, at: &str, data: Value, steps: &[&str], expected: &str) {
    let f = fixture(workflows);
    let mut sim = f.sim(at);
    let id = sim.start(workflow, data.as_object().cloned().unwrap_or_default(), starter()).unwrap();
    let mut refused = 0;
    for step in steps {
        // A signal's payload and a decision's form are JSON with spaces: keep them whole.
        let words: Vec<&str> = step.splitn(if step.starts_with("signal") { 3 } else { 4 }, ' ').collect();
        let result = match words.as_slice() {
            ["decide", who, action] => sim.decide(&holder(&sim, &id, who), who, action, None, Map::new()),
            ["decide", who, action, form] if form.starts_with('{') => {
                sim.decide(&holder(&sim, &id, who), who, action, None, serde_json::from_str(form).unwrap())
            }
            ["decide", who, action, comment] => {
                sim.decide(&holder(&sim, &id, who), who, action, Some(comment), Map::new())
            }
            ["delegate", who, to] => {
                let task = sim.tasks_for(&id, who).first().map(|t| t.id.clone()).unwrap_or_default();
                sim.send(
                    &id,
                    Command::Delegate { task, actor: who.to_string(), to: to.to_string(), comment: None },
                    Channel::Api,
                )
            }
            ["advance", to] => sim.advance_to(to.parse().unwrap()),
            ["withdraw", who] => {
                sim.send(&id, Command::Withdraw { actor: who.to_string(), comment: None }, Channel::Api)
            }
            ["signal", name, payload] => {
                let command =
                    Command::Signal { name: name.to_string(), payload: serde_json::from_str(payload).unwrap() };
                sim.send(&id, command, Channel::Webhook)
            }
            _ => panic!("unknown step: {step}"),
        };
        refused += usize::from(result.is_err());
    }
    let case = sim.case(&id);
    let outcome =
        outcome(case).map_or("open".to_string(), |o| serde_json::to_value(o).unwrap().as_str().unwrap().to_string());
    let actual = format!("state={} outcome={outcome} refused={refused}", case.state);
    let wanted = if expected.contains("refused=") { expected.to_string() } else { format!("{expected} refused=0") };
    assert_eq!(actual, wanted, "steps: {steps:?}");
}

/// The case of `id`'s family (itself or a sub-case) where `who` holds an open task.
fn holder(sim: &Sim<'_>, id: &str, who: &str) -> String {
    let family = sim.cases.keys().filter(|k| *k == id || k.starts_with(&format!("{id}-")));
    family.clone().find(|k| !sim.tasks_for(k, who).is_empty()).unwrap_or(&id.to_string()).clone()
}

#[test]
fn every_construct_through_one_helper() {
    let simple = [("enkel", SIMPLE)];
    let data = json!({ "rubrik": "R", "forvaltning": "kf", "kostnad": 90000 });
    let cheap = json!({ "rubrik": "R", "forvaltning": "kf", "kostnad": 10 });
    let t0 = "2026-03-02T08:00:00Z";
    // A task whose form is required, a choice on money, a second task, an end.
    let approve = r#"decide anna godkann {"bedomning": "Bra"}"#;
    check(
        &simple,
        "enkel",
        t0,
        data.clone(),
        &["decide anna godkann", approve, "decide chef godkann"],
        "state=godkand outcome=approved refused=1",
    );
    check(&simple, "enkel", t0, cheap.clone(), &[approve], "state=godkand outcome=approved");
    check(&simple, "enkel", t0, cheap.clone(), &["decide anna avsla För dyrt"], "state=avslagen outcome=rejected");
    // Refusals: wrong person, missing comment.
    check(
        &simple,
        "enkel",
        t0,
        cheap.clone(),
        &["decide bo avsla x", "decide anna avsla"],
        "state=granskning outcome=open refused=2",
    );
    // Escalation after 5 working days, then the escalated person decides.
    check(
        &simple,
        "enkel",
        t0,
        cheap.clone(),
        &["advance 2026-03-09T08:00:00Z", "decide chef avsla Nej"],
        "state=avslagen outcome=rejected",
    );
    // A timeout that takes a named action (the chief's 3 days pass).
    check(
        &simple,
        "enkel",
        t0,
        data.clone(),
        &[approve, "advance 2026-03-06T08:00:00Z"],
        "state=avslagen outcome=rejected",
    );
    // A substitute decides for the absent IT-samordnare.
    check(
        &simple,
        "enkel",
        "2026-07-10T08:00:00Z",
        cheap.clone(),
        &["decide anna avsla Nej", "decide bo avsla Nej"],
        "state=avslagen outcome=rejected refused=1",
    );
    // Withdrawal by the starter only; delegation.
    check(
        &simple,
        "enkel",
        t0,
        cheap.clone(),
        &["withdraw anna", "withdraw starter"],
        "state=aterkallad outcome=withdrawn refused=1",
    );
    check(
        &simple,
        "enkel",
        t0,
        cheap.clone(),
        &["delegate anna s1", "decide s1 avsla Nej"],
        "state=avslagen outcome=rejected",
    );
    // Parallel reviews: all with veto, 2 of 3 with early failure, any.
    let veto = REVIEW.replace("JOIN", "all").replace("VETO", "true");
    check(
        &[("granskning", &veto)],
        "granskning",
        t0,
        json!({}),
        &["decide s1 ja", "decide s2 nej"],
        "state=nej outcome=rejected",
    );
    let two = REVIEW.replace("JOIN", "2 of 3").replace("VETO", "false");
    check(
        &[("granskning", &two)],
        "granskning",
        t0,
        json!({}),
        &["decide s1 nej", "decide s2 nej"],
        "state=nej outcome=rejected",
    );
    check(
        &[("granskning", &two)],
        "granskning",
        t0,
        json!({}),
        &["decide s1 ja", "decide s3 ja"],
        "state=ja outcome=approved",
    );
    let any = REVIEW.replace("JOIN", "any").replace("VETO", "false");
    check(&[("granskning", &any)], "granskning", t0, json!({}), &["decide s2 ja"], "state=ja outcome=approved");
    // Review branches time out into a no vote.
    check(
        &[("granskning", &two)],
        "granskning",
        t0,
        json!({}),
        &["decide s1 ja", "advance 2026-03-05T08:00:00Z"],
        "state=nej outcome=rejected",
    );
    // A ledger: the fourth grant of 300 does not fit a frame of 1000.
    let grant = json!({ "portfolj": "a", "ar": 2026, "belopp": 300 });
    check(&[("bidrag", GRANT)], "bidrag", t0, grant, &["decide chef bevilja"], "state=beviljad outcome=approved");
    // A signal with stored data, then a sub-workflow whose approval completes the parent.
    let family = [("foralder", PARENT), ("barn", CHILD)];
    check(
        &family,
        "foralder",
        t0,
        json!({}),
        &["signal annan {}", "signal plan {\"id\": \"P\"}", "decide chef ja"],
        "state=klar outcome=completed refused=1",
    );
    // The child's timeout ends it as rejected, and the parent takes `otherwise`.
    check(
        &family,
        "foralder",
        t0,
        json!({}),
        &["signal plan {}", r#"signal plan {"id": "P"}"#, "advance 2026-03-04T08:00:00Z"],
        "state=avbruten outcome=cancelled refused=1",
    );
    // A wait that times out.
    check(&family, "foralder", t0, json!({}), &["advance 2026-03-13T08:00:00Z"], "state=avbruten outcome=cancelled");
}

/// A correction form whose fields share ids with the case data: what the person leaves out
/// keeps its value in the case instead of being reset to the field's default.
#[test]
fn a_correction_keeps_the_case_values_it_does_not_change() {
    const RATTELSE: &str = r#"
name: Rättelse
series: RA
start: rattelse
data:
  plan: { type: text, label: Plan, default: "" }
  accepterat: { type: boolean, label: Accepterat, default: false }
  manader: { type: number, label: Månader, required: true }
states:
  rattelse:
    type: task
    label: Rätta
    assignee: { person: starter }
    form:
      plan: { type: text, label: Plan, default: "" }
      accepterat: { type: boolean, label: Accepterat, default: false }
      manader: { type: number, label: Månader, required: true }
    actions:
      skicka_in: { label: Skicka in, to: klar }
  klar: { type: end, label: Klar, outcome: completed }
"#;
    let f = fixture(&[("rattelse", RATTELSE)]);
    let mut sim = f.sim("2026-03-02T08:00:00Z");
    let start = json!({ "plan": "Integreras i plattformen", "accepterat": true, "manader": 9 });
    let id = sim.start("rattelse", data(start), starter()).unwrap();
    sim.decide(&id, "starter", "skicka_in", None, form(json!({ "manader": 6 }))).unwrap();
    let case = sim.case(&id);
    assert_eq!(case.data["manader"], json!(6));
    assert_eq!(case.data["plan"], json!("Integreras i plattformen"), "not reset to the default");
    assert_eq!(case.data["accepterat"], json!(true), "not reset to the default");
}
