//! Random command sequences on the three seed workflows, with the invariants of a case checked
//! after every step: states exist, decisions happen once and only by assignees, closed cases
//! hold no open tasks, the audit trail agrees with the case, and refused commands change
//! nothing.

use beslut_engine::definition::model::{Definition, Field, FieldType, StateKind, ValuesFrom};
use beslut_engine::project::Project;
use beslut_engine::runtime::apply::task_def;
use beslut_engine::runtime::assign::party;
use beslut_engine::runtime::sim::Sim;
use beslut_engine::runtime::{Case, Channel, Closed, Command, Error, Waiting, World};
use jiff::{Timestamp, ToSpan};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

struct Seeds {
    project: Project,
    definitions: Vec<Definition>,
}

/// Loaded once: every generated case runs against the same folder.
static SEEDS: LazyLock<Seeds> = LazyLock::new(|| {
    let project = Project::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows")).unwrap();
    assert!(project.is_valid());
    let definitions = project.workflows.iter().filter_map(|w| w.definition.clone()).collect();
    Seeds { project, definitions }
});

/// A small deterministic generator for form values, seeded by proptest so that shrinking
/// replays the same values.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// True one time in `n`.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Decide the `task`-th task (open ones first) by its `who`-th assignee, with form data from
    /// `seed` and an action picked by `action` (see [`pick_action`]).
    Decide {
        task: usize,
        action: u8,
        who: usize,
        seed: u64,
    },
    Advance {
        days: i64,
        hours: i64,
    },
    Withdraw {
        by_starter: bool,
    },
    /// The signal the case waits for, or another one.
    Signal {
        right_name: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        24 => (any::<usize>(), any::<u8>(), any::<usize>(), any::<u64>())
            .prop_map(|(task, action, who, seed)| Op::Decide { task, action, who, seed }),
        8 => (0i64..=15, 0i64..24).prop_map(|(days, hours)| Op::Advance { days, hours }),
        1 => any::<bool>().prop_map(|by_starter| Op::Withdraw { by_starter }),
        4 => any::<bool>().prop_map(|right_name| Op::Signal { right_name }),
    ]
}

// --- Plausible data ------------------------------------------------------------------------

fn person(rng: &mut Rng) -> String {
    rng.pick(&SEEDS.project.directory.people).id.clone()
}

fn enum_values(field: &Field) -> Vec<String> {
    match field.values_from {
        Some(ValuesFrom::Forvaltningar) => SEEDS.project.directory.forvaltningar.iter().map(|f| f.id.clone()).collect(),
        Some(ValuesFrom::Portfolios) => {
            SEEDS.project.frames.iter().flat_map(|(_, p)| p.portfolios.iter().map(|p| p.id.clone())).collect()
        }
        None => field.values.iter().map(|v| v.id.clone()).collect(),
    }
}

/// A value of the field's type, now and then out of range or missing, so that refusals are
/// exercised too.
fn value(rng: &mut Rng, field: &Field) -> Option<Value> {
    if !field.required && rng.one_in(3) {
        return None;
    }
    Some(match field.kind {
        FieldType::Text if rng.one_in(12) => json!(""),
        FieldType::Text => json!(format!("Bedömning {}", rng.below(100))),
        FieldType::Number => {
            let low = field.min.unwrap_or(0.0) as i64 - 1;
            let n = low + rng.below(13) as i64;
            json!(field.max.map_or(n, |max| n.min(max as i64 + 1)))
        }
        FieldType::Money if rng.one_in(16) => json!(-100),
        FieldType::Money => json!(rng.below(21) * 100_000),
        FieldType::Date => json!(format!("2026-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28))),
        FieldType::Boolean => json!(rng.one_in(2)),
        FieldType::Enum if rng.one_in(16) => json!("okand"),
        FieldType::Enum => json!(rng.pick(&enum_values(field))),
        FieldType::Email => json!("extern@leverantoren.se"),
        FieldType::Person => json!(person(rng)),
        FieldType::List => json!([]),
    })
}

/// Valid start data for a seed workflow, with the choices that steer its paths drawn at random.
fn start_data(workflow: &str, rng: &mut Rng) -> Value {
    let forvaltning = rng.pick(&["kf", "sbf", "ubf", "sof", "kuf"]).to_string();
    match workflow {
        "andring-av-it" => json!({
            "rubrik": "Förslag", "beskrivning": "B", "syfte": "S", "forvaltning": forvaltning,
            "forslagsstallare": person(rng), "kostnad": rng.below(10) * 50_000, "tidplan": "T",
            "bruttonytta": 100000, "kostnader": "K", "nyttostruktur": "N", "riskanalys": "R",
            "nyttoansvarig": person(rng), "akut": rng.one_in(2),
        }),
        "finansieringsansokan" => json!({
            "rubrik": "Projekt", "projektagare": person(rng), "forvaltning": forvaltning, "malbidrag": "M",
            "portfolj": rng.pick(&["tillganglighet", "information", "anvandning", "samverkan", "innovation"]).to_string(),
            "belopp": rng.below(20) * 100_000, "budgetar": 2025 + rng.below(4),
            "kategori": rng.pick(&["innovativt", "differentierande", "grundlaggande"]).to_string(),
            "genomforandeplan": "G", "nyttorealisering": "N", "systemagare": "Nämnden",
            "systemagare_accepterat": !rng.one_in(3),
            "avvecklings_eller_integrationsplan": if rng.one_in(2) { "Avvecklas" } else { "" },
            "lopttid_manader": 1 + rng.below(12),
        }),
        _ => json!({
            "system": "System", "beskrivning": "B", "forvaltning": forvaltning, "bestallare": person(rng),
            "systemagare": person(rng), "systemforvaltare": person(rng), "planerat_datum": "2026-09-01",
            "starkt_beroende": rng.one_in(2),
        }),
    }
}

/// The starter is the person in the workflow's first person field (the one completions go to).
fn starter_field(def: &Definition) -> &str {
    &def.data.iter().find(|f| f.kind == FieldType::Person).unwrap().id
}

// --- Commands ------------------------------------------------------------------------------

/// Mostly the first action (the seeds list the way forward first), otherwise any: uniform
/// choice ends most cases early through "withdraw" and "cancel" buttons and never gets deep.
fn pick_action(action: u8, actions: usize) -> usize {
    if action < 128 { 0 } else { action as usize % actions }
}

/// Turns an op into a command on the case as it is now; `None` for a plain clock move.
fn command(def: &Definition, case: &Case, op: &Op) -> Option<Command> {
    match op {
        Op::Decide { task, action, who, seed } => {
            // Open tasks first, so that most decisions land; a closed one exercises refusal.
            let mut tasks: Vec<_> = case.open_tasks().collect();
            if tasks.is_empty() {
                tasks = case.tasks.iter().collect();
            }
            let task = *tasks.get(task % tasks.len().max(1))?;
            let state = def.state(&task.state).unwrap();
            let task_def = task_def(state, task.branch.as_deref()).unwrap();
            let action = &task_def.actions[pick_action(*action, task_def.actions.len())];
            let assignee = &task.assignees[who % task.assignees.len()];
            let mut rng = Rng(*seed);
            let mut form = Map::new();
            for field in &task_def.form {
                let shown = action.fields.as_ref().is_none_or(|only| only.iter().any(|r| r.name == field.id));
                if let Some(v) = value(&mut rng, field).filter(|_| shown) {
                    form.insert(field.id.clone(), v);
                }
            }
            Some(Command::Decide {
                task: task.id.clone(),
                actor: assignee.party.person.clone().unwrap_or(assignee.party.email.clone()),
                action: action.id.clone(),
                comment: Some("Kommentar".into()),
                form,
            })
        }
        Op::Advance { .. } => None,
        Op::Withdraw { by_starter } => {
            let starter = case.started_by.person.clone().unwrap();
            let actor = if *by_starter { starter } else { "peter-wallin".into() };
            Some(Command::Withdraw { actor, comment: Some("Återtas".into()) })
        }
        Op::Signal { right_name } => {
            let name = match &case.waiting {
                Some(Waiting::Signal { name, .. }) if *right_name => name.clone(),
                _ => "okand-signal".into(),
            };
            Some(Command::Signal { name, payload: json!({ "id": "VP-1" }) })
        }
    }
}

// --- Invariants ----------------------------------------------------------------------------

fn check(sim: &Sim<'_>, def: &Definition, case: &Case) -> Result<(), TestCaseError> {
    let state = def.state(&case.state);
    prop_assert!(state.is_some(), "state {} is not in {}", case.state, def.id);
    for task in &case.tasks {
        let decided = task.closed == Some(Closed::Decided);
        prop_assert_eq!(task.decision.is_some(), decided, "task {} decision vs closed {:?}", task.id, task.closed);
        if let Some(d) = &task.decision {
            let by_timer = d.by == "system" && d.channel == Channel::Timer;
            prop_assert!(by_timer || task.assignment_of(&d.by).is_some(), "{} decided {} unassigned", d.by, task.id);
        }
    }
    if case.is_open() {
        let waits = case.waiting.is_some() || case.open_tasks().next().is_some();
        prop_assert!(waits, "open case {} in {} waits for nobody", case.number, case.state);
    } else {
        prop_assert!(case.open_tasks().next().is_none(), "closed case with open tasks");
        prop_assert!(matches!(state.unwrap().kind, StateKind::End(_)), "closed outside an end state: {}", case.state);
    }
    let mut last: Option<Timestamp> = None;
    let mut decided_entries: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, entry) in sim.audit.iter().filter(|(c, _)| c == &case.id) {
        prop_assert!(last.is_none_or(|l| l <= entry.at), "audit goes back in time at {}", entry.what);
        last = Some(entry.at);
        if entry.what == "task.decided" {
            let task_id = entry.detail["task"].as_str().unwrap_or_default();
            *decided_entries.entry(task_id).or_default() += 1;
            let decision = case.task(task_id).and_then(|t| t.decision.as_ref());
            prop_assert!(decision.is_some(), "audit decides {} which the case has not decided", task_id);
            let d = decision.unwrap();
            prop_assert_eq!(&entry.actor, &d.by);
            prop_assert_eq!(entry.detail["action"].as_str(), Some(d.action.as_str()));
            prop_assert_eq!(&entry.detail["on_behalf_of"], &json!(d.on_behalf_of));
        }
    }
    for (task, n) in decided_entries {
        prop_assert_eq!(n, 1, "task {} decided {} times", task, n);
    }
    Ok(())
}

fn run(workflow: usize, start_day: i64, seed: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let def = &SEEDS.definitions[workflow];
    let world = World { directory: &SEEDS.project.directory, frames: &SEEDS.project.frames };
    let at: Timestamp = "2026-01-05T07:30:00Z".parse().unwrap();
    let mut sim = Sim::new(world, &SEEDS.definitions, at.checked_add((start_day * 24).hours()).unwrap());
    let data = start_data(&def.id, &mut Rng(seed));
    let starter = data[starter_field(def)].as_str().unwrap().to_string();
    let starter = party(sim.world.directory.person(&starter).unwrap());
    let id = sim.start(&def.id, data.as_object().unwrap().clone(), starter).unwrap();
    check(&sim, def, sim.case(&id))?;
    for (i, op) in ops.iter().enumerate() {
        let before = sim.case(&id).clone();
        let (audit, mails) = (sim.audit.len(), sim.mails.len());
        let result = match (op, command(def, &before, op)) {
            (Op::Advance { days, hours }, _) => {
                let to = sim.now.checked_add((days * 24 + hours).hours()).unwrap();
                let moved = sim.advance_to(to);
                prop_assert!(moved.is_ok(), "step {}: timers failed: {:?}", i, moved);
                Ok(())
            }
            (_, Some(command)) => sim.send(&id, command, Channel::Api),
            (_, None) => Ok(()),
        };
        if let Err(e) = &result {
            prop_assert_eq!(sim.case(&id), &before, "step {} {:?} refused with {:?} but changed the case", i, op, e);
            prop_assert_eq!((sim.audit.len(), sim.mails.len()), (audit, mails), "refused step {} left traces", i);
            if !before.is_open() {
                prop_assert_eq!(e, &Error::CaseClosed);
            }
        }
        check(&sim, def, sim.case(&id))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_commands_keep_cases_consistent(
        workflow in 0usize..3,
        start_day in 0i64..540,
        seed in any::<u64>(),
        ops in prop::collection::vec(op(), 0..=40),
    ) {
        run(workflow, start_day, seed, &ops)?;
    }
}

/// Many decisions land: the generator is not just producing refusals. A fixed seed drives each
/// workflow a long way and must close at least one case per workflow.
#[test]
fn random_walks_reach_end_states() {
    for def in &SEEDS.definitions {
        let mut closed = 0;
        for seed in 0..40u64 {
            let ops: Vec<Op> = (0..60)
                .map(|i| Op::Decide {
                    task: i,
                    action: (seed as usize * 31 + i * 17) as u8,
                    who: i,
                    seed: seed * 100 + i as u64,
                })
                .collect();
            let world = World { directory: &SEEDS.project.directory, frames: &SEEDS.project.frames };
            let mut sim = Sim::new(world, &SEEDS.definitions, "2026-03-02T08:00:00Z".parse().unwrap());
            let data = start_data(&def.id, &mut Rng(seed));
            let starter = party(sim.world.directory.person(data[starter_field(def)].as_str().unwrap()).unwrap());
            let id = sim.start(&def.id, data.as_object().unwrap().clone(), starter).unwrap();
            for op in &ops {
                if let Some(c) = command(def, sim.case(&id), op) {
                    let _ = sim.send(&id, c, Channel::Api);
                }
            }
            closed += usize::from(!sim.case(&id).is_open());
        }
        assert!(closed > 0, "no random walk closed a case of {}", def.id);
    }
}

// --- The same random commands through the durable store ------------------------------------

/// Runs ops through the service layer on a fresh SQLite file, checking after every step that
/// the case's audit chain is intact and that a refused command changed nothing stored.
fn run_stored(workflow: usize, seed: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    use beslut_engine::service::Engine;
    use beslut_engine::store::{Store, audit};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(dir.path()).await.unwrap();
        let project = Project::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows")).unwrap();
        let clock = Arc::new(AtomicI64::new("2026-03-02T08:00:00Z".parse::<Timestamp>().unwrap().as_millisecond()));
        let read = clock.clone();
        let engine = Engine::new(store, project)
            .with_clock(Arc::new(move || Timestamp::from_millisecond(read.load(Ordering::SeqCst)).unwrap()));
        let def = &SEEDS.definitions[workflow];
        let data = start_data(&def.id, &mut Rng(seed));
        let starter = party(SEEDS.project.directory.person(data[starter_field(def)].as_str().unwrap()).unwrap());
        let id =
            engine.start(&def.id, data.as_object().unwrap().clone(), starter, Channel::Api, None).await.unwrap().id;
        let pool = engine.store.pool.clone();
        for (i, op) in ops.iter().enumerate() {
            let before = engine.case(&id).await.unwrap();
            let entries = audit::entries(&pool, &id).await.unwrap().len();
            let result = match (op, command(def, &before, op)) {
                (Op::Advance { days, hours }, _) => {
                    clock.fetch_add((days * 24 + hours) * 3_600_000, Ordering::SeqCst);
                    engine.fire_due_timers(engine.now()).await.map(|_| ())
                }
                (_, Some(command)) => engine.execute(&id, command, Channel::Api, Map::new(), None).await.map(|_| ()),
                (_, None) => Ok(()),
            };
            if let Err(e) = &result {
                prop_assert!(
                    matches!(e, beslut_engine::service::Error::Rejected(_)),
                    "step {} failed in the store: {}",
                    i,
                    e
                );
                prop_assert_eq!(&engine.case(&id).await.unwrap(), &before, "refused step {} changed the case", i);
                prop_assert_eq!(
                    audit::entries(&pool, &id).await.unwrap().len(),
                    entries,
                    "refused step {} left audit entries",
                    i
                );
            }
            let head = audit::remembered_head(&pool, &id).await.unwrap();
            let breaks = audit::verify(&pool, &id, head.as_deref()).await.unwrap();
            prop_assert!(breaks.is_empty(), "step {}: audit chain broken: {:?}", i, breaks);
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_commands_keep_the_stored_audit_chain_valid(
        workflow in 0usize..3,
        seed in any::<u64>(),
        ops in prop::collection::vec(op(), 0..=20),
    ) {
        run_stored(workflow, seed, &ops)?;
    }
}
