//! The three seed workflows of `workflows/`, driven through the in-memory runtime from start to
//! every end state, with the people of the real `directory.yaml`.
//!
//! Each path is a function that drives one or more cases and returns them as they ended; the
//! tests run the paths one by one, and `every_end_state_is_reached` runs them all and fails if
//! an end state of a workflow is reached by none.

use beslut_engine::definition::model::{Definition, StateKind};
use beslut_engine::directory::Directory;
use beslut_engine::project::Project;
use beslut_engine::runtime::apply::task_def;
use beslut_engine::runtime::assign::party;
use beslut_engine::runtime::sim::Sim;
use beslut_engine::runtime::{
    Case, Channel, Closed, Command, Error, NoticeKind, OutcomeId, Status, Via, Waiting, World,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;

// --- Fixture ---------------------------------------------------------------------------------

struct Seeds {
    project: Project,
    definitions: Vec<Definition>,
}

fn seeds() -> Seeds {
    let project = Project::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows")).unwrap();
    assert!(project.is_valid(), "{}", project.render(beslut_engine::diagnostic::Lang::En));
    let definitions: Vec<Definition> = project.workflows.iter().filter_map(|w| w.definition.clone()).collect();
    assert_eq!(definitions.len(), 3, "the three seed workflows");
    Seeds { project, definitions }
}

impl Seeds {
    fn sim(&self, at: &str) -> Sim<'_> {
        let world = World { directory: &self.project.directory, frames: &self.project.frames };
        Sim::new(world, &self.definitions, at.parse().unwrap())
    }

    fn directory(&self) -> &Directory {
        &self.project.directory
    }
}

/// The id of the first person (in directory order) who holds `role`, for `scope` if given.
fn holder(directory: &Directory, role: &str, scope: Option<&str>) -> String {
    let holders = directory.holders(role, scope);
    let first = holders.first().unwrap_or_else(|| panic!("nobody holds {role} {scope:?}"));
    first.id.clone()
}

/// Everyone who holds `role`, sorted.
fn holders(directory: &Directory, role: &str) -> Vec<String> {
    sorted(directory.holders(role, None).iter().map(|p| p.id.clone()))
}

fn sorted(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = items.into_iter().collect();
    v.sort();
    v
}

// --- Driving -------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Step {
    /// `who` decides the open task of theirs that has `action`.
    Decide {
        who: String,
        action: &'static str,
        comment: Option<&'static str>,
        form: Value,
    },
    /// Moves the clock, firing the timers due on the way.
    Advance(&'static str),
    Signal {
        name: &'static str,
        payload: Value,
    },
    Withdraw(String),
}

fn decide(who: &str, action: &'static str, comment: Option<&'static str>, form: Value) -> Step {
    Step::Decide { who: who.to_string(), action, comment, form }
}

/// The starter of a seed case is the person in its first `person` field (the proposer, the
/// applicant, the requester): the one who gets completions back.
fn starter_of(sim: &Sim<'_>, workflow: &str, data: &Value) -> String {
    let def = sim.definitions.iter().find(|d| d.id == workflow).unwrap();
    let field = def.data.iter().find(|f| f.kind == beslut_engine::definition::model::FieldType::Person).unwrap();
    data[&field.id].as_str().unwrap().to_string()
}

fn start(sim: &mut Sim<'_>, workflow: &str, data: Value) -> String {
    let starter = starter_of(sim, workflow, &data);
    let person = sim.world.directory.person(&starter).unwrap();
    sim.start(workflow, data.as_object().unwrap().clone(), party(person)).unwrap()
}

/// The open task of `who` in the case whose definition has `action`; the first one when the
/// person holds several (the IT-chef after a whole review was escalated).
fn open_task_with(sim: &Sim<'_>, case_id: &str, who: &str, action: &str) -> Option<String> {
    let case = sim.case(case_id);
    let def = sim.definitions.iter().find(|d| d.id == case.workflow)?;
    case.open_tasks()
        .filter(|t| t.assignment_of(who).is_some())
        .find(|t| {
            let state = def.state(&t.state).unwrap();
            task_def(state, t.branch.as_deref()).is_some_and(|d| d.actions.iter().any(|a| a.id == action))
        })
        .map(|t| t.id.clone())
}

fn apply_step(sim: &mut Sim<'_>, case_id: &str, step: &Step) -> Result<(), Error> {
    match step {
        Step::Decide { who, action, comment, form } => {
            let task = open_task_with(sim, case_id, who, action).ok_or_else(|| Error::NotAssignee(who.clone()))?;
            let command = Command::Decide {
                task,
                actor: who.clone(),
                action: action.to_string(),
                comment: comment.map(str::to_string),
                form: form.as_object().cloned().unwrap_or_default(),
            };
            sim.send(case_id, command, Channel::Web)
        }
        Step::Advance(at) => sim.advance_to(at.parse().unwrap()),
        Step::Signal { name, payload } => {
            sim.send(case_id, Command::Signal { name: name.to_string(), payload: payload.clone() }, Channel::Webhook)
        }
        Step::Withdraw(who) => {
            let command = Command::Withdraw { actor: who.clone(), comment: Some("Behovet har upphört".into()) };
            sim.send(case_id, command, Channel::Web)
        }
    }
}

/// Applies the steps in order; any refused step fails the test, naming the step.
fn run(sim: &mut Sim<'_>, case_id: &str, steps: &[Step]) -> Case {
    for (i, step) in steps.iter().enumerate() {
        let state = sim.case(case_id).state.clone();
        if let Err(e) = apply_step(sim, case_id, step) {
            panic!("case {case_id}, step {i} {step:?} in state {state}: {e:?}");
        }
    }
    let case = sim.case(case_id).clone();
    check_trail(sim, &case);
    case
}

fn drive(sim: &mut Sim<'_>, workflow: &str, data: Value, steps: &[Step]) -> Case {
    let id = start(sim, workflow, data);
    run(sim, &id, steps)
}

// --- Checks every path makes -----------------------------------------------------------------

/// Every decision is in the audit trail with its actor and on whose behalf; every assignee was
/// mailed about their task; the starter of a closed case is told the outcome.
fn check_trail(sim: &Sim<'_>, case: &Case) {
    let audit: Vec<_> = sim.audit.iter().filter(|(c, _)| c == &case.id).map(|(_, e)| e).collect();
    for task in &case.tasks {
        if let Some(d) = &task.decision {
            let entries: Vec<_> =
                audit.iter().filter(|e| e.what == "task.decided" && e.detail["task"] == task.id.as_str()).collect();
            assert_eq!(entries.len(), 1, "one audit entry for the decision of {}", task.id);
            let e = entries[0];
            assert_eq!(e.actor, d.by, "audit actor of {}", task.id);
            assert_eq!(e.detail["action"], d.action.as_str());
            assert_eq!(e.detail["on_behalf_of"], json!(d.on_behalf_of), "audit on_behalf_of of {}", task.id);
            let via = task.assignment_of(&d.by).map(|a| a.via);
            if via == Some(Via::Substitute) {
                assert!(d.on_behalf_of.is_some(), "a substitute's decision names the absent person");
            }
        }
        for a in &task.assignees {
            let mailed = sim.mails.iter().any(|m| {
                m.case == case.id
                    && m.task.as_deref() == Some(&task.id)
                    && m.to.email == a.party.email
                    && matches!(m.kind, NoticeKind::TaskAssigned | NoticeKind::Escalation)
            });
            assert!(mailed, "{} was never mailed about {} ({})", a.party.email, task.id, task.state);
        }
    }
    if !case.is_open() {
        assert!(case.open_tasks().next().is_none(), "a closed case has no open tasks");
        let told = sim
            .mails
            .iter()
            .any(|m| m.case == case.id && m.kind == NoticeKind::CaseDecided && m.to.email == case.started_by.email);
        assert!(told, "the starter of {} is told the outcome", case.number);
    }
}

fn assert_end(case: &Case, state: &str, outcome: OutcomeId) {
    assert_eq!(case.state, state, "{} ended in the wrong state", case.number);
    match case.status {
        Status::Closed { outcome: o, .. } => assert_eq!(o, outcome, "{} outcome", case.number),
        Status::Open => panic!("{} is still open in {}", case.number, case.state),
    }
}

/// The people (ids, or addresses) mailed about a task with a notice of `kind`, sorted.
fn mailed(sim: &Sim<'_>, case: &Case, task: &str, kind: NoticeKind) -> Vec<String> {
    sorted(
        sim.mails
            .iter()
            .filter(|m| m.case == case.id && m.task.as_deref() == Some(task) && m.kind == kind)
            .map(|m| m.to.person.clone().unwrap_or(m.to.email.clone())),
    )
}

/// The ids of the tasks a case had in `state` (all visits), in order.
fn tasks_in(case: &Case, state: &str) -> Vec<String> {
    case.tasks.iter().filter(|t| t.state == state).map(|t| t.id.clone()).collect()
}

/// The single task of a case in `state` and `branch`, on its last visit.
fn task_of<'c>(case: &'c Case, state: &str, branch: Option<&str>) -> &'c beslut_engine::runtime::Task {
    case.tasks.iter().rev().find(|t| t.state == state && t.branch.as_deref() == branch).unwrap()
}

fn strings(items: &[&str]) -> Vec<String> {
    sorted(items.iter().map(|s| s.to_string()))
}

// --- Ändring av IT -------------------------------------------------------------------------

fn andring_data(forvaltning: &str, proposer: &str, akut: bool) -> Value {
    json!({
        "rubrik": "Nytt ärendehanteringssystem",
        "beskrivning": "Ersätter det gamla systemet för bygglov.",
        "syfte": "Kortare handläggningstider.",
        "forvaltning": forvaltning,
        "forslagsstallare": proposer,
        "kostnad": 450000,
        "tidplan": "Införande under hösten.",
        "bruttonytta": 900000,
        "kostnader": "Licenser 120 000 kr per år.",
        "nyttostruktur": "Handläggare sparar tid.",
        "riskanalys": "Migrering av gamla ärenden.",
        "nyttoansvarig": "kristina-andersson",
        "akut": akut,
    })
}

fn klassa(who: &str, klassning: &str) -> Step {
    decide(who, "klassa", None, json!({ "klassning": klassning, "lokal_bedomning": "Berett i lokalt IT-forum." }))
}

/// The four votes of the central IT forum, all in favour, by the holders of the branch roles
/// (or by `by` for every branch, when the review was escalated to one person).
fn forum_votes(d: &Directory, by: Option<&str>) -> Vec<Step> {
    let who = |role: &str| by.map_or_else(|| holder(d, role, None), str::to_string);
    vec![
        decide(
            &who("sakerhetschef"),
            "tillstyrk",
            None,
            json!({ "informationssakerhet": "Ingen ny risk.", "personuppgifter": "Biträdesavtal finns." }),
        ),
        decide(&who("chefsarkivarie"), "tillstyrk", None, json!({ "arkivhantering": "Gallras efter 10 år." })),
        decide(&who("it-arkitekt"), "tillstyrk", None, arkitektur_form("foljer")),
        decide(&who("webbstrateg"), "tillstyrk", None, json!({ "webb_berord": false })),
    ]
}

fn arkitektur_form(ramverk: &str) -> Value {
    json!({
        "samordning": "Ingen.", "centrala_insatser": "Inga.", "konsekvenser_andra": "Inga.",
        "kapacitet_licenser": "Ryms.", "overlappning": "Ingen.", "ramverk": ramverk,
    })
}

fn rekommendera(d: &Directory) -> Step {
    decide(
        &holder(d, "it-chef", None),
        "rekommendera",
        None,
        json!({
            "klassning": "storre", "nytta_kostnad_risk": "God.", "tidplan_bedomning": "Rimlig.",
            "ramavtal": "Ryms i ramavtalet.", "prioritering_forslag": "Hösten 2026.",
            "rekommendation": "tillstyrks", "rekommendation_motivering": "Stor nytta.",
        }),
    )
}

fn ledningsgrupp_rad(who: &str) -> Step {
    decide(who, "rad", None, json!({ "prioritet": "hog", "ledningsgrupp_rad": "Genomför." }))
}

const PLAN_SIGNAL: &str = "it-verksamhetsplan-registrerad";

/// Routine: classified locally after one round of completion, approved by the förvaltningschef;
/// the IT operational plan never confirms, so the IT-chef enters it by hand.
fn andring_rutin(s: &Seeds) -> Vec<Case> {
    let d = s.directory();
    let mut sim = s.sim("2026-03-02T08:00:00Z");
    let samordnare = holder(d, "it-samordnare", Some("kf"));
    let chef = holder(d, "forvaltningschef", Some("kf"));
    let proposer = "james-okafor";
    let steps = [
        decide(&samordnare, "komplettering", Some("Ange antal användare."), json!({})),
        Step::Advance("2026-03-04T10:00:00Z"),
        decide(proposer, "skicka_in", None, json!({ "komplettering": "Cirka 40 användare." })),
        klassa(&samordnare, "rutin"),
        decide(&chef, "godkann", Some("Ryms i budgeten."), json!({})),
    ];
    let case = drive(&mut sim, "andring-av-it", andring_data("kf", proposer, false), &steps);
    assert_eq!(case.state, "vanta_plan");
    assert_eq!(
        mailed(&sim, &case, &tasks_in(&case, "lokal_beredning")[0], NoticeKind::TaskAssigned),
        [samordnare.as_str()]
    );
    assert_eq!(mailed(&sim, &case, &tasks_in(&case, "komplettera_lokalt")[0], NoticeKind::TaskAssigned), [proposer]);
    assert_eq!(mailed(&sim, &case, &tasks_in(&case, "lokalt_beslut")[0], NoticeKind::TaskAssigned), [chef.as_str()]);
    let event = sim.events.iter().find(|(e, _)| e == "it-verksamhetsplan.ny-insats").expect("plan event");
    assert_eq!(event.1["data"]["klassning"], "rutin");
    let beviljad: Vec<String> =
        sorted(sim.mails.iter().filter(|m| m.template == "andring-beviljad").map(|m| m.to.person.clone().unwrap()));
    assert_eq!(beviljad, strings(&[proposer, "kristina-andersson"]), "starter and nyttoansvarig");
    // 10 working days from Wednesday 4 March 2026 without a signal.
    let it_chef = holder(d, "it-chef", None);
    let rest = [
        Step::Advance("2026-03-18T11:00:00Z"),
        decide(&it_chef, "registrerad", None, json!({ "plan_id": "VP-2026-003" })),
    ];
    let case = run(&mut sim, &case.id, &rest);
    assert_eq!(case.data["plan_id"], "VP-2026-003");
    assert_end(&case, "beviljad", OutcomeId::Approved);
    vec![case]
}

/// Större: through the central forum, the management group requires a pre-study, the forum
/// assesses again, then the decision maker approves and the IT operational plan confirms.
fn andring_storre(s: &Seeds) -> Vec<Case> {
    let d = s.directory();
    let mut sim = s.sim("2026-03-02T08:00:00Z");
    let proposer = "elin-sandberg";
    let lg = holder(d, "ledningsgrupp", None);
    let mut steps = vec![klassa(&holder(d, "it-samordnare", Some("sbf")), "storre")];
    steps.extend(forum_votes(d, None));
    steps.push(rekommendera(d));
    steps.push(decide(
        &lg,
        "forstudie",
        Some("Jämför med e-tjänsteplattformen."),
        json!({ "ledningsgrupp_rad": "Förstudie." }),
    ));
    steps.push(Step::Advance("2026-04-15T08:00:00Z"));
    steps.push(decide(proposer, "lamna_forstudie", None, json!({ "forstudie_resultat": "Rapport KS 2026/77." })));
    steps.extend(forum_votes(d, None));
    steps.push(rekommendera(d));
    steps.push(ledningsgrupp_rad(&lg));
    let case = drive(&mut sim, "andring-av-it", andring_data("sbf", proposer, false), &steps);
    assert_eq!(case.state, "beslut");
    // Two full forum rounds, each with all four specialists.
    assert_eq!(tasks_in(&case, "forum_ordinarie").len(), 8);
    let forum = tasks_in(&case, "forum_ordinarie");
    let forum_mailed = sorted(forum[..4].iter().flat_map(|t| mailed(&sim, &case, t, NoticeKind::TaskAssigned)));
    let specialists = ["sakerhetschef", "chefsarkivarie", "it-arkitekt", "webbstrateg"];
    // Both IT architects get the architecture branch; either may assess.
    assert_eq!(forum_mailed, sorted(specialists.iter().flat_map(|r| holders(d, r))));
    // The management group's task goes to every member.
    let lg_task = &tasks_in(&case, "ledningsgrupp")[0];
    assert_eq!(mailed(&sim, &case, lg_task, NoticeKind::TaskAssigned), holders(d, "ledningsgrupp"));
    assert_eq!(mailed(&sim, &case, &tasks_in(&case, "forstudie")[0], NoticeKind::TaskAssigned), [proposer]);
    let beslutsfattare = holder(d, "beslutsfattare", Some("sbf"));
    assert_eq!(mailed(&sim, &case, &tasks_in(&case, "beslut")[0], NoticeKind::TaskAssigned), [beslutsfattare.as_str()]);
    let case = run(&mut sim, &case.id, &[decide(&beslutsfattare, "godkann", None, json!({}))]);
    // The plan confirms under the case number; another signal is not what the case waits for.
    let key = Some(Waiting::Signal { name: PLAN_SIGNAL.into(), key: case.number.clone() });
    assert_eq!(case.waiting, key);
    let wrong = Step::Signal { name: "annan-signal", payload: json!({}) };
    assert_eq!(apply_step(&mut sim, &case.id, &wrong), Err(Error::NotWaiting));
    assert_eq!(sim.case(&case.id), &case);
    let signal = Step::Signal { name: PLAN_SIGNAL, payload: json!({ "id": "VP-2026-042" }) };
    let case = run(&mut sim, &case.id, &[signal]);
    assert_eq!(case.data["plan_id"], "VP-2026-042");
    assert_end(&case, "beviljad", OutcomeId::Approved);
    vec![case]
}

/// A veto in the forum in July, while the IT architect is on leave: his substitute assesses for
/// him, the security head objects, the exception is tried but the chief executive does not
/// answer in time, the IT-chef advises against and the decision maker rejects.
fn andring_veto(s: &Seeds) -> Vec<Case> {
    let d = s.directory();
    // Tuesday 7 July 2026: erik-nystrom is away 6 July – 7 August, amira-haddad substitutes.
    let mut sim = s.sim("2026-07-07T08:00:00Z");
    let it_chef = holder(d, "it-chef", None);
    let steps = vec![
        klassa(&holder(d, "it-samordnare", Some("kf")), "strategisk"),
        decide("amira-haddad", "tillstyrk", None, arkitektur_form("avviker")),
        decide(
            &holder(d, "sakerhetschef", None),
            "invandning",
            Some("Molntjänst utanför EU."),
            json!({ "informationssakerhet": "Data lämnar EU.", "personuppgifter": "Otillåten överföring." }),
        ),
    ];
    let case = drive(&mut sim, "andring-av-it", andring_data("kf", "tomas-lindberg", false), &steps);
    let arkitektur = task_of(&case, "forum_ordinarie", Some("arkitektur"));
    assert_eq!(mailed(&sim, &case, &arkitektur.id, NoticeKind::TaskAssigned), ["amira-haddad"]);
    let decision = arkitektur.decision.as_ref().unwrap();
    assert_eq!((decision.by.as_str(), decision.on_behalf_of.as_deref()), ("amira-haddad", Some("erik-nystrom")));
    // The veto settles the review: the two branches still open are closed and their people told.
    for branch in ["arkiv", "webb"] {
        let task = task_of(&case, "forum_ordinarie", Some(branch));
        assert_eq!(task.closed, Some(Closed::Cancelled), "{branch}");
        let told = mailed(&sim, &case, &task.id, NoticeKind::TaskClosed);
        assert_eq!(told, mailed(&sim, &case, &task.id, NoticeKind::TaskAssigned), "{branch}");
    }
    assert_eq!(case.state, "forum_invandning");
    let kd = holder(d, "kommundirektor", None);
    let rest = [
        decide(&it_chef, "prova_undantag", None, json!({ "undantag_fraga": "Tillfälligt undantag i ett år." })),
        // The consultation has 5 working days: Tuesday 7 July to Tuesday 14 July 2026.
        Step::Advance("2026-07-14T09:00:00Z"),
        decide(&it_chef, "avstyrk", None, json!({ "rekommendation_motivering": "Strider mot ramverken." })),
        ledningsgrupp_rad(&holder(d, "ledningsgrupp", None)),
        decide(&holder(d, "beslutsfattare", Some("kf")), "avsla", Some("Följer inte ramverken."), json!({})),
    ];
    let case = run(&mut sim, &case.id, &rest);
    let samrad = task_of(&case, "samrad_kommundirektor", None);
    assert_eq!(mailed(&sim, &case, &samrad.id, NoticeKind::TaskAssigned), [kd.as_str()]);
    assert_eq!(samrad.closed, Some(Closed::TimedOut));
    assert_eq!(tasks_in(&case, "forum_invandning").len(), 2, "the timeout goes back to the IT-chef");
    assert_eq!(case.data["rekommendation"], "avstyrks");
    assert_end(&case, "avslagen", OutcomeId::Rejected);
    vec![case]
}

/// Akut: no specialist assesses within 2 working days, the IT-chef takes over the four branches
/// and decides them; the decision maker refers the matter to the executive board, which rejects.
fn andring_akut(s: &Seeds) -> Vec<Case> {
    let d = s.directory();
    // Monday 2 March 2026; the forum's deadline is Wednesday 4 March, 08:00 UTC.
    let mut sim = s.sim("2026-03-02T08:00:00Z");
    let it_chef = holder(d, "it-chef", None);
    let steps = [klassa(&holder(d, "it-samordnare", Some("ubf")), "storre"), Step::Advance("2026-03-04T09:00:00Z")];
    let case = drive(&mut sim, "andring-av-it", andring_data("ubf", "laura-schmidt", true), &steps);
    assert_eq!(case.state, "forum_akut");
    let forum = tasks_in(&case, "forum_akut");
    assert_eq!(forum.len(), 4);
    for id in &forum {
        let task = case.task(id).unwrap();
        // Escalated on Wednesday with a new deadline of 1 working day.
        assert_eq!(task.deadline.unwrap().to_string(), "2026-03-05T08:00:00Z");
        assert!(task.escalated);
        assert_eq!(mailed(&sim, &case, id, NoticeKind::Escalation), [it_chef.as_str()]);
        let first = mailed(&sim, &case, id, NoticeKind::TaskAssigned);
        assert_eq!(mailed(&sim, &case, id, NoticeKind::Reminder), first, "reminded a working day before");
        assert_eq!(mailed(&sim, &case, id, NoticeKind::TaskClosed), first, "told the task was taken over");
    }
    let mut rest = forum_votes(d, Some(&it_chef));
    rest.push(rekommendera(d));
    rest.push(ledningsgrupp_rad("maria-karlsson"));
    rest.push(decide(&holder(d, "beslutsfattare", Some("ubf")), "politiskt", Some("Principiellt viktigt."), json!({})));
    rest.push(decide(
        &holder(d, "kommunstyrelsen", None),
        "avslag",
        Some("Ej prioriterat i budgeten."),
        json!({ "politiskt_organ": "kommunstyrelsen", "protokollsparagraf": "KS § 45", "politiskt_beslutsdatum": "2026-03-25" }),
    ));
    let case = run(&mut sim, &case.id, &rest);
    for id in &forum {
        let decision = case.task(id).unwrap().decision.as_ref().unwrap();
        assert_eq!((decision.by.as_str(), decision.on_behalf_of.as_deref()), (it_chef.as_str(), None));
    }
    assert_end(&case, "avslagen", OutcomeId::Rejected);
    vec![case]
}

/// The proposer withdraws while the forum assesses; the open branches are closed.
fn andring_withdrawn(s: &Seeds) -> Vec<Case> {
    let d = s.directory();
    let mut sim = s.sim("2026-03-02T08:00:00Z");
    let proposer = "james-okafor";
    let steps = [
        klassa(&holder(d, "it-samordnare", Some("kuf")), "storre"),
        decide(&holder(d, "chefsarkivarie", None), "tillstyrk", None, json!({ "arkivhantering": "Inget att bevara." })),
        Step::Withdraw(holder(d, "it-chef", None)),
    ];
    let start_data = andring_data("kuf", proposer, false);
    let id = start(&mut sim, "andring-av-it", start_data);
    let before = sim.case(&id).clone();
    let refused = apply_step(&mut sim, &id, &steps[2]);
    assert!(matches!(refused, Err(Error::NotAllowed(_))), "only the starter withdraws: {refused:?}");
    assert_eq!(sim.case(&id), &before);
    let case = run(&mut sim, &id, &[steps[0].clone(), steps[1].clone(), Step::Withdraw(proposer.into())]);
    assert!(case.tasks.iter().filter(|t| t.state == "forum_ordinarie").all(|t| t.closed.is_some()));
    let withdrawn = sim.audit.iter().find(|(c, e)| c == &id && e.what == "case.withdrawn").unwrap();
    assert_eq!(withdrawn.1.actor, proposer);
    assert_end(&case, "aterkallad", OutcomeId::Withdrawn);
    vec![case]
}

/// November 2026, the proposer is on leave: the completion goes to his substitute, who withdraws
/// the proposal on his behalf.
fn andring_substitute(s: &Seeds) -> Vec<Case> {
    let d = s.directory();
    // tomas-lindberg is away 2–20 November 2026, elin-sandberg substitutes.
    let mut sim = s.sim("2026-11-05T08:00:00Z");
    let steps = [
        decide(&holder(d, "it-samordnare", Some("sof")), "komplettering", Some("Saknar kostnader."), json!({})),
        decide("tomas-lindberg", "skicka_in", None, json!({ "komplettering": "x" })),
    ];
    let id = start(&mut sim, "andring-av-it", andring_data("sof", "tomas-lindberg", false));
    run(&mut sim, &id, &steps[..1]);
    assert!(matches!(apply_step(&mut sim, &id, &steps[1]), Err(Error::NotAssignee(_))), "the absent one cannot act");
    let case = run(&mut sim, &id, &[decide("elin-sandberg", "dra_tillbaka", Some("Tomas avstår."), json!({}))]);
    let task = task_of(&case, "komplettera_lokalt", None);
    assert_eq!(mailed(&sim, &case, &task.id, NoticeKind::TaskAssigned), ["elin-sandberg"]);
    assert_eq!(task.assignees[0].via, Via::Substitute);
    let decision = task.decision.as_ref().unwrap();
    assert_eq!((decision.by.as_str(), decision.on_behalf_of.as_deref()), ("elin-sandberg", Some("tomas-lindberg")));
    assert_end(&case, "aterkallad", OutcomeId::Withdrawn);
    vec![case]
}

// --- Finansieringsansökan ----------------------------------------------------------------------

fn fin_data(kategori: &str, portfolj: &str, plan: &str, applicant: &str) -> Value {
    json!({
        "rubrik": "Chattbot för bygglovsfrågor",
        "projektagare": applicant,
        "forvaltning": "sbf",
        "malbidrag": "Bättre service till medborgarna.",
        "portfolj": portfolj,
        "belopp": 1200000,
        "budgetar": 2026,
        "kategori": kategori,
        "genomforandeplan": "Pilot under våren.",
        "nyttorealisering": "Färre telefonsamtal.",
        "systemagare": "Samhällsbyggnadsnämnden",
        "systemagare_accepterat": true,
        "avvecklings_eller_integrationsplan": plan,
        "lopttid_manader": 6,
    })
}

fn bereda(who: &str, belopp: i64) -> Step {
    decide(
        who,
        "overlamna",
        None,
        json!({ "angelagenhet": "hog", "beredning_bedomning": "Angeläget.", "foreslaget_belopp": belopp }),
    )
}

fn bevilja(who: &str, belopp: i64) -> Step {
    decide(who, "bevilja", None, json!({ "beviljat_belopp": belopp, "ks_paragraf": "KS § 12, dnr KS 2026/101" }))
}

/// Through the innovation group and the council to the executive board's decision.
fn fin_to_ks(d: &Directory, belopp: i64) -> Vec<Step> {
    vec![
        bereda(&holder(d, "beredning-innovation", None), belopp),
        decide(
            &holder(d, "utvecklingsrad", None),
            "lamna_rad",
            None,
            json!({ "utvecklingsradets_rad": "Bevilja.", "rekommenderat_belopp": belopp }),
        ),
    ]
}

/// Basic IT support is line-funded: the application ends at once, without a task.
fn fin_ej_berattigad(s: &Seeds) -> Vec<Case> {
    let mut sim = s.sim("2026-03-02T08:00:00Z");
    let case =
        drive(&mut sim, "finansieringsansokan", fin_data("grundlaggande", "information", "", "laura-schmidt"), &[]);
    assert!(case.tasks.is_empty());
    assert_end(&case, "ej_berattigad", OutcomeId::Rejected);
    vec![case]
}

/// Innovative without a decommissioning plan: sent back for the formal deficiency, then twice
/// for completion by the innovation group, granted, and followed up after the budget year.
fn fin_beviljad(s: &Seeds) -> Vec<Case> {
    let d = s.directory();
    let mut sim = s.sim("2026-03-02T08:00:00Z");
    let applicant = "james-okafor";
    let group = holder(d, "beredning-innovation", None);
    let complete = |n: &'static str| decide(applicant, "skicka_in", None, json!({ "komplettering_svar": n }));
    let mut steps = vec![
        decide(
            applicant,
            "skicka_in",
            None,
            json!({
                "portfolj": "innovation", "avvecklings_eller_integrationsplan": "Avvecklas efter piloten.",
                "lopttid_manader": 6, "systemagare": "Samhällsbyggnadsnämnden", "systemagare_accepterat": true,
            }),
        ),
        decide(&group, "komplettering", Some("Hur mäts nyttan?"), json!({})),
        complete("Antal samtal före och efter."),
        Step::Advance("2026-03-16T08:00:00Z"),
        decide(&group, "komplettering", Some("Vem förvaltar chattboten?"), json!({})),
        complete("Kundcenter."),
    ];
    steps.extend(fin_to_ks(d, 1_000_000));
    steps.push(bevilja(&holder(d, "kommunstyrelsen", None), 1_000_000));
    let case = drive(&mut sim, "finansieringsansokan", fin_data("innovativt", "innovation", "", applicant), &steps);
    let formell = &tasks_in(&case, "formell_komplettering")[0];
    assert_eq!(mailed(&sim, &case, formell, NoticeKind::TaskAssigned), [applicant]);
    assert_eq!(tasks_in(&case, "beredning_innovation").len(), 3);
    assert_eq!(tasks_in(&case, "komplettering").len(), 2);
    let group_task = &tasks_in(&case, "beredning_innovation")[0];
    assert_eq!(mailed(&sim, &case, group_task, NoticeKind::TaskAssigned), holders(d, "beredning-innovation"));
    assert_eq!(case.state, "vanta_arsskifte");
    let frame = ("portfolios.yaml".to_string(), "innovation".to_string(), 2026);
    assert_eq!(sim.reserved.get(&frame), Some(&100_000_000), "1 000 000 kr in öre");
    assert!(
        sim.events
            .iter()
            .any(|(e, data)| e == "portfolj.medel-beviljade" && data["data"]["beviljat_belopp"] == 1_000_000)
    );
    let rad = holder(d, "utvecklingsrad", None);
    let rest = [
        Step::Advance("2026-12-30T12:00:00Z"),
        Step::Advance("2027-01-04T08:00:00Z"),
        decide(
            &rad,
            "uppfoljd",
            None,
            json!({ "nytta_realiserad": "delvis", "forbrukat_belopp": 940000, "uppfoljning_kommentar": "Färre samtal." }),
        ),
    ];
    let waiting = run(&mut sim, &case.id, &rest[..1]);
    assert_eq!(waiting.state, "vanta_arsskifte", "still waiting the day before the last day of the year");
    let case = run(&mut sim, &case.id, &rest[1..]);
    let uppfoljning = task_of(&case, "uppfoljning", None);
    assert_eq!(uppfoljning.opened_at.to_string(), "2026-12-30T23:00:00Z", "31 December, Stockholm time");
    assert_end(&case, "beviljad", OutcomeId::Approved);
    vec![case]
}

/// Two applications to the innovation frame of 2026 (1 500 000 kr): the first is granted
/// 1 000 000; granting the second 600 000 would exceed the frame and is refused with nothing
/// changed; the board then rejects it.
fn fin_frame(s: &Seeds) -> Vec<Case> {
    let d = s.directory();
    let mut sim = s.sim("2026-03-02T08:00:00Z");
    let ks = holder(d, "kommunstyrelsen", None);
    let mut first = fin_to_ks(d, 1_000_000);
    first.push(bevilja(&ks, 1_000_000));
    let data = fin_data("innovativt", "innovation", "Integreras i e-tjänsteplattformen.", "james-okafor");
    let granted = drive(&mut sim, "finansieringsansokan", data.clone(), &first);
    assert_eq!(granted.state, "vanta_arsskifte");
    let second = drive(&mut sim, "finansieringsansokan", data, &fin_to_ks(d, 600_000));
    assert_eq!(second.state, "ks_beslut");
    let (mails, audit, events, reserved) = (sim.mails.len(), sim.audit.len(), sim.events.len(), sim.reserved.clone());
    let refused = apply_step(&mut sim, &second.id, &bevilja(&ks, 600_000));
    let left = 50_000_000;
    assert_eq!(refused, Err(Error::FrameExceeded { portfolio: "innovation".into(), year: 2026, left }));
    assert_eq!(sim.case(&second.id), &second, "the refused grant leaves the case unchanged");
    assert_eq!((sim.mails.len(), sim.audit.len(), sim.events.len()), (mails, audit, events));
    assert_eq!(sim.reserved, reserved);
    let rest = [decide(&ks, "avsla", Some("Portföljens ram räcker inte."), json!({ "ks_paragraf": "KS § 13" }))];
    let second = run(&mut sim, &second.id, &rest);
    assert_end(&second, "avslagen", OutcomeId::Rejected);
    assert_eq!(sim.reserved, reserved, "a rejection reserves nothing");
    assert_eq!(sim.case(&granted.id).state, "vanta_arsskifte", "the granted one waits for the year's end");
    vec![second]
}

/// A differentiating application in the innovation portfolio whose applicant never corrects
/// it: after 20 working days the timeout withdraws it in the system's name.
fn fin_avskriven(s: &Seeds) -> Vec<Case> {
    let mut sim = s.sim("2026-03-02T08:00:00Z");
    let data = fin_data("differentierande", "innovation", "", "elin-sandberg");
    // 20 working days from Monday 2 March 2026 09:00 Stockholm time is Monday 30 March, 09:00
    // summer time (07:00 UTC): the wall clock keeps the time of day across the change.
    let case = drive(&mut sim, "finansieringsansokan", data, &[Step::Advance("2026-03-30T09:00:00Z")]);
    let task = task_of(&case, "formell_komplettering", None);
    assert_eq!(task.deadline.unwrap().to_string(), "2026-03-30T07:00:00Z");
    let decision = task.decision.as_ref().unwrap();
    assert_eq!((decision.by.as_str(), decision.channel), ("system", Channel::Timer));
    assert!(!mailed(&sim, &case, &task.id, NoticeKind::Reminder).is_empty());
    assert_end(&case, "aterkallad", OutcomeId::Withdrawn);
    vec![case]
}

// --- Produktionssättning ---------------------------------------------------------------------

fn prod_data(starkt_beroende: bool) -> Value {
    json!({
        "system": "Procapita 5.2",
        "beskrivning": "Ny version av verksamhetssystemet.",
        "forvaltning": "sof",
        "bestallare": "kristina-andersson",
        "systemagare": "kristina-andersson",
        "systemforvaltare": "fredrik-olsson",
        "planerat_datum": "2026-05-04",
        "starkt_beroende": starkt_beroende,
    })
}

fn verify(d: &Directory, forvaltare: &str) -> Vec<Step> {
    vec![
        decide(
            &holder(d, "it-avdelningen", None),
            "godkann",
            None,
            json!({ "teknisk_verifiering": "Inga störningar." }),
        ),
        decide(forvaltare, "godkann", None, json!({ "funktionell_verifiering": "Acceptanstest godkänt." })),
    ]
}

/// From the SLA to the go-live, by the IT department and the system owner.
fn sla_to_live(d: &Directory) -> Vec<Step> {
    let it = holder(d, "it-avdelningen", None);
    vec![
        decide(
            &it,
            "for_godkannande",
            None,
            json!({
                "sla_omfattning": "Drift och backup.", "sla_tillganglighet": "99,5 % kontorstid.",
                "sla_ansvar": "IT drift, förvaltningen användarstöd.", "sla_support": "Servicedesk.",
                "sla_pris": "120 000", "sla_referens": "KS 2026/310",
            }),
        ),
        decide("kristina-andersson", "godkann", None, json!({})),
        decide(&holder(d, "it-chef", None), "godkann", None, json!({})),
    ]
}

fn go_live(d: &Directory) -> Step {
    decide(
        &holder(d, "it-avdelningen", None),
        "driftsatt",
        None,
        json!({ "driftsatt_datum": "2026-05-04", "overenskommelse_referens": "KS 2026/311" }),
    )
}

/// The IT department takes operational responsibility; verification, SLA, continuity plan,
/// go-live, an incomplete handover completed, then acknowledged.
fn prod_genomford(s: &Seeds) -> Vec<Case> {
    let d = s.directory();
    let mut sim = s.sim("2026-04-06T08:00:00Z");
    let it = holder(d, "it-avdelningen", None);
    let mut steps = vec![decide(&it, "ata", None, json!({ "driftansvar_bedomning": "Ryms i driftmiljön." }))];
    steps.extend(verify(d, "fredrik-olsson"));
    steps.extend(sla_to_live(d));
    steps.push(decide(
        "kristina-andersson",
        "faststalld",
        None,
        json!({ "kontinuitetsplan_sammanfattning": "Pappersrutiner vid avbrott.", "kontinuitetsplan_referens": "SN 2026/12" }),
    ));
    steps.push(go_live(d));
    steps.push(decide("fredrik-olsson", "ofullstandig", Some("Behörighetslistan saknas."), json!({})));
    steps.push(decide("kristina-andersson", "klar", None, json!({ "overlamning_komplettering": "Listan bifogad." })));
    steps.push(decide("fredrik-olsson", "kvittera", None, json!({ "overlamning_kvittens": "Allt mottaget." })));
    let case = drive(&mut sim, "produktionssattning", prod_data(true), &steps);
    assert_eq!(case.data["driftform"], "it-avdelningen");
    let driftansvar = &tasks_in(&case, "driftansvar")[0];
    assert_eq!(mailed(&sim, &case, driftansvar, NoticeKind::TaskAssigned), holders(d, "it-avdelningen"));
    let sla = task_of(&case, "sla_godkannande", Some("systemagare_it"));
    assert_eq!(mailed(&sim, &case, &sla.id, NoticeKind::TaskAssigned), [holder(d, "it-chef", None)]);
    let plan = task_of(&case, "kontinuitetsplan", None);
    assert_eq!(mailed(&sim, &case, &plan.id, NoticeKind::TaskAssigned), ["kristina-andersson"]);
    assert_eq!(tasks_in(&case, "overlamning").len(), 2);
    let live = sim.events.iter().find(|(e, _)| e == "produktion.driftsatt").expect("go-live event");
    assert_eq!(live.1["data"]["sla_referens"], "KS 2026/310");
    let told: Vec<String> =
        sorted(sim.mails.iter().filter(|m| m.template == "produktion-genomford").map(|m| m.to.person.clone().unwrap()));
    let mut expected = holders(d, "it-avdelningen");
    expected.push("kristina-andersson".into());
    assert_eq!(told, sorted(expected));
    assert_end(&case, "genomford", OutcomeId::Completed);
    vec![case]
}

/// Summer 2027, the system manager is on leave: the IT department declines, proposes a cloud
/// service, the requester objects, an external partner is agreed; the substitute verifies and
/// acknowledges; no continuity plan is needed.
fn prod_avbojd(s: &Seeds) -> Vec<Case> {
    let d = s.directory();
    // fredrik-olsson is away 28 June – 30 July 2027, malin-gustafsson substitutes.
    let mut sim = s.sim("2027-06-29T08:00:00Z");
    let it = holder(d, "it-avdelningen", None);
    let forslag = |driftform: &str| {
        decide(
            &it,
            "foresla",
            None,
            json!({ "driftform": driftform, "driftpartner": "Leverantören AB", "it_delaktighet": "Nätverk och avtal." }),
        )
    };
    let mut steps = vec![
        decide(&it, "avboj", Some("Kräver specialkompetens."), json!({ "driftansvar_bedomning": "Saknar kompetens." })),
        forslag("molntjanst"),
        decide("kristina-andersson", "invand", Some("Personuppgifter i molnet."), json!({})),
        forslag("extern_partner"),
        decide("kristina-andersson", "instam", None, json!({})),
    ];
    steps.extend(verify(d, "malin-gustafsson"));
    steps.extend(sla_to_live(d));
    steps.push(go_live(d));
    steps.push(decide("malin-gustafsson", "kvittera", None, json!({ "overlamning_kvittens": "Mottaget." })));
    let mut data = prod_data(false);
    data["planerat_datum"] = json!("2027-08-16");
    let case = drive(&mut sim, "produktionssattning", data, &steps);
    assert_eq!(case.data["driftform"], "extern_partner");
    assert_eq!(tasks_in(&case, "driftform_forslag").len(), 2);
    assert!(tasks_in(&case, "kontinuitetsplan").is_empty());
    for (state, branch) in [("verifiering", Some("funktion")), ("overlamning", None)] {
        let task = task_of(&case, state, branch);
        assert_eq!(mailed(&sim, &case, &task.id, NoticeKind::TaskAssigned), ["malin-gustafsson"], "{state}");
        let decision = task.decision.as_ref().unwrap();
        assert_eq!(decision.on_behalf_of.as_deref(), Some("fredrik-olsson"), "{state}");
    }
    assert_end(&case, "genomford", OutcomeId::Completed);
    vec![case]
}

/// Verification fails, the requester cancels; and a request sent back for completion that the
/// requester cancels instead.
fn prod_avbruten(s: &Seeds) -> Vec<Case> {
    let d = s.directory();
    let mut sim = s.sim("2026-04-06T08:00:00Z");
    let it = holder(d, "it-avdelningen", None);
    let steps = [
        decide(&it, "ata", None, json!({ "driftansvar_bedomning": "Ok." })),
        decide(
            "fredrik-olsson",
            "underkann",
            Some("Utskrifter fungerar inte."),
            json!({ "funktionell_verifiering": "Test 14 fallerar." }),
        ),
        decide("kristina-andersson", "avbryt", Some("Leverantören hinner inte rätta."), json!({})),
    ];
    let failed = drive(&mut sim, "produktionssattning", prod_data(false), &steps);
    let teknik = task_of(&failed, "verifiering", Some("teknik"));
    assert_eq!(teknik.closed, Some(Closed::Cancelled), "the veto closes the other branch");
    assert_end(&failed, "avbruten", OutcomeId::Cancelled);
    let steps = [
        decide(&it, "komplettering", Some("Ange integrationerna."), json!({})),
        decide("kristina-andersson", "avbryt", Some("Projektet läggs ned."), json!({})),
    ];
    let cancelled = drive(&mut sim, "produktionssattning", prod_data(false), &steps);
    assert_end(&cancelled, "avbruten", OutcomeId::Cancelled);
    vec![failed, cancelled]
}

/// The requester withdraws during the SLA approval.
fn prod_aterkallad(s: &Seeds) -> Vec<Case> {
    let d = s.directory();
    let mut sim = s.sim("2026-04-06T08:00:00Z");
    let mut steps =
        vec![decide(&holder(d, "it-avdelningen", None), "ata", None, json!({ "driftansvar_bedomning": "Ok." }))];
    steps.extend(verify(d, "fredrik-olsson"));
    steps.extend(sla_to_live(d).into_iter().take(2));
    steps.push(Step::Withdraw("kristina-andersson".into()));
    let case = drive(&mut sim, "produktionssattning", prod_data(false), &steps);
    let open_branch = task_of(&case, "sla_godkannande", Some("systemagare_it"));
    assert_eq!(open_branch.closed, Some(Closed::Cancelled));
    assert_end(&case, "aterkallad", OutcomeId::Withdrawn);
    vec![case]
}

// --- The tests -------------------------------------------------------------------------------

type PathFn = fn(&Seeds) -> Vec<Case>;

const PATHS: &[(&str, PathFn)] = &[
    ("andring rutin", andring_rutin),
    ("andring storre", andring_storre),
    ("andring veto", andring_veto),
    ("andring akut", andring_akut),
    ("andring withdrawn", andring_withdrawn),
    ("andring substitute", andring_substitute),
    ("fin ej berattigad", fin_ej_berattigad),
    ("fin beviljad", fin_beviljad),
    ("fin frame", fin_frame),
    ("fin avskriven", fin_avskriven),
    ("prod genomford", prod_genomford),
    ("prod avbojd", prod_avbojd),
    ("prod avbruten", prod_avbruten),
    ("prod aterkallad", prod_aterkallad),
];

#[test]
fn the_workflows_folder_is_valid() {
    let s = seeds();
    let ids: Vec<&str> = s.definitions.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["andring-av-it", "finansieringsansokan", "produktionssattning"]);
}

#[test]
fn every_end_state_is_reached() {
    let s = seeds();
    let mut reached: BTreeSet<(String, String)> = BTreeSet::new();
    for (name, path) in PATHS {
        for case in path(&s) {
            assert!(!case.is_open(), "path {name} left {} open in {}", case.number, case.state);
            reached.insert((case.workflow.clone(), case.state.clone()));
        }
    }
    let mut missing = Vec::new();
    for def in &s.definitions {
        for state in def.states.iter().filter(|st| matches!(st.kind, StateKind::End(_))) {
            if !reached.contains(&(def.id.clone(), state.id.clone())) {
                missing.push(format!("{}/{}", def.id, state.id));
            }
        }
    }
    assert!(missing.is_empty(), "end states no path reaches: {missing:?}");
}

#[test]
fn andring_routine_decided_locally() {
    andring_rutin(&seeds());
}

#[test]
fn andring_larger_through_forum_prestudy_and_plan_signal() {
    andring_storre(&seeds());
}

#[test]
fn andring_veto_in_forum_with_substitute_architect() {
    andring_veto(&seeds());
}

#[test]
fn andring_akut_deadline_passes_and_it_chef_decides() {
    andring_akut(&seeds());
}

#[test]
fn andring_withdrawn_by_starter() {
    andring_withdrawn(&seeds());
}

#[test]
fn andring_completion_goes_to_substitute() {
    andring_substitute(&seeds());
}

#[test]
fn finansiering_basic_support_not_eligible() {
    fin_ej_berattigad(&seeds());
}

#[test]
fn finansiering_sent_back_completed_twice_granted_and_followed_up() {
    fin_beviljad(&seeds());
}

#[test]
fn finansiering_grant_beyond_frame_is_refused() {
    fin_frame(&seeds());
}

#[test]
fn finansiering_uncorrected_application_is_closed_by_timeout() {
    fin_avskriven(&seeds());
}

#[test]
fn produktion_it_department_takes_responsibility() {
    prod_genomford(&seeds());
}

#[test]
fn produktion_declined_responsibility_with_substitute() {
    prod_avbojd(&seeds());
}

#[test]
fn produktion_cancelled() {
    prod_avbruten(&seeds());
}

#[test]
fn produktion_withdrawn_by_starter() {
    prod_aterkallad(&seeds());
}
