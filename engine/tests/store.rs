//! The store's conformance suite: every test runs on SQLite and on PostgreSQL, each on a fresh
//! database, through the service layer.
//!
//! PostgreSQL comes from `BESLUT_TEST_POSTGRES_URL` (default: the local server's `test`
//! database). If it cannot be reached the PostgreSQL half fails, unless
//! `BESLUT_TEST_SKIP_POSTGRES=1` says to skip it, so a missing database is never a silent pass.

use beslut_engine::project::Project;
use beslut_engine::runtime::{self, Channel, Command, OutcomeId, Party, Status};
use beslut_engine::service::{Engine, Error};
use beslut_engine::store::{Store, audit, cases, effects, hooks, tokens};
use serde_json::{Map, Value, json};
use std::path::Path;
use std::sync::Arc;

async fn sqlite() -> (Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(dir.path()).await.unwrap();
    (engine(store), dir)
}

async fn postgres() -> Option<Engine> {
    if std::env::var("BESLUT_TEST_SKIP_POSTGRES").as_deref() == Ok("1") {
        eprintln!("skipping PostgreSQL: BESLUT_TEST_SKIP_POSTGRES=1");
        return None;
    }
    let base =
        std::env::var("BESLUT_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&base)
        .await
        .expect("PostgreSQL for the conformance suite (set BESLUT_TEST_SKIP_POSTGRES=1 to skip)");
    let name = format!("beslut_test_{}_{}", std::process::id(), rand_suffix());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.unwrap();
    let url = match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("BESLUT_TEST_POSTGRES_URL must end with /DATABASE"),
    };
    Some(engine(Store::connect(&url).await.unwrap()))
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    h.finish() % 1_000_000_000
}

pub fn engine(store: Store) -> Engine {
    let project = Project::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")).unwrap();
    assert!(project.is_valid(), "{}", project.render(beslut_engine::diagnostic::Lang::En));
    Engine::new(store, project)
}

/// Runs a test body on both databases.
macro_rules! on_both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let (engine, _dir) = super::sqlite().await;
                ($body)(Arc::new(engine)).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if let Some(engine) = super::postgres().await {
                    ($body)(Arc::new(engine)).await;
                }
            }
        }
    };
}

fn stina() -> Party {
    Party {
        person: Some("stina".into()),
        email: "stina@k.se".into(),
        name: "Stina Start".into(),
        lang: Default::default(),
    }
}

fn grant(amount: i64) -> Map<String, Value> {
    json!({ "rubrik": "Ny tjänst", "portfolj": "a", "ar": 2026, "belopp": amount }).as_object().unwrap().clone()
}

fn decide(task: &str, actor: &str, action: &str, comment: Option<&str>) -> Command {
    Command::Decide {
        task: task.into(),
        actor: actor.into(),
        action: action.into(),
        comment: comment.map(str::to_string),
        form: Map::new(),
    }
}

async fn start(engine: &Engine, amount: i64) -> runtime::Case {
    engine.start("bidrag", grant(amount), stina(), Channel::Api, None).await.unwrap()
}

on_both!(case_numbers_have_no_gaps_under_concurrency, |engine: Arc<Engine>| async move {
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let e = engine.clone();
            tokio::spawn(async move { start(&e, 10).await.number })
        })
        .collect();
    let mut numbers = Vec::new();
    for h in handles {
        numbers.push(h.await.unwrap());
    }
    numbers.sort();
    let year = jiff::Zoned::now().year();
    let expected: Vec<String> = (1..=20).map(|n| format!("BI {year}/{n:04}")).collect();
    assert_eq!(numbers, expected);
});

on_both!(racing_decisions_on_one_task_record_exactly_one, |engine: Arc<Engine>| async move {
    let case = start(&engine, 10).await;
    let task = case.tasks[0].id.clone();
    let (a, b) = tokio::join!(
        engine.execute(&case.id, decide(&task, "g1", "bevilja", None), Channel::EmailLink, Map::new(), None),
        engine.execute(&case.id, decide(&task, "g2", "avsla", Some("nej")), Channel::EmailLink, Map::new(), None),
    );
    let wins = [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count();
    assert_eq!(wins, 1, "{a:?} {b:?}");
    let loser = if a.is_ok() { b } else { a };
    assert!(
        matches!(loser, Err(Error::Rejected(runtime::Error::CaseClosed | runtime::Error::AlreadyDecided { .. }))),
        "{loser:?}"
    );
    let stored = engine.case(&case.id).await.unwrap();
    assert_eq!(stored.tasks.iter().filter(|t| t.decision.is_some()).count(), 1);
    let decided = audit::entries(&engine.store.pool, &case.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.what == "task.decided")
        .count();
    assert_eq!(decided, 1);
});

on_both!(racing_decisions_from_two_nodes_record_exactly_one, |engine: Arc<Engine>| async move {
    // A second engine on the same database is a second node: its commits are not grouped with
    // the first's, so a race shows as a conflict on the case row, to be retried on the new state.
    let other = super::engine(engine.store.clone());
    for _ in 0..10 {
        let case = start(&engine, 10).await;
        let task = case.tasks[0].id.clone();
        let (a, b) = tokio::join!(
            engine.execute(&case.id, decide(&task, "g1", "bevilja", None), Channel::Api, Map::new(), None),
            other.execute(&case.id, decide(&task, "g2", "avsla", Some("nej")), Channel::Api, Map::new(), None),
        );
        assert_eq!([a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(), 1, "{a:?} {b:?}");
        let pool = &engine.store.pool;
        let head = audit::remembered_head(pool, &case.id).await.unwrap();
        assert!(audit::verify(pool, &case.id, head.as_deref()).await.unwrap().is_empty());
        let decided = audit::entries(pool, &case.id).await.unwrap().into_iter().filter(|e| e.what == "task.decided");
        assert_eq!(decided.count(), 1);
    }
});

on_both!(many_decisions_at_once_are_each_committed_once_with_intact_chains, |engine: Arc<Engine>| async move {
    // 64 decisions at once share commits; each must be answered with its own case, be stored,
    // and leave its case's audit chain whole, with the chain's end kept on the case.
    let mut cases = Vec::new();
    for _ in 0..64 {
        cases.push(start(&engine, 1).await);
    }
    let handles: Vec<_> = cases
        .iter()
        .map(|case| {
            let (e, id, task) = (engine.clone(), case.id.clone(), case.tasks[0].id.clone());
            tokio::spawn(async move {
                e.execute(&id, decide(&task, "g1", "avsla", Some("nej")), Channel::Api, Map::new(), None).await
            })
        })
        .collect();
    for (case, h) in cases.iter().zip(handles) {
        let done = h.await.unwrap().unwrap();
        assert_eq!(done.id, case.id);
        let stored = engine.case(&case.id).await.unwrap();
        assert_eq!(stored.version, done.version);
        let pool = &engine.store.pool;
        let head = audit::remembered_head(pool, &case.id).await.unwrap();
        assert!(audit::verify(pool, &case.id, head.as_deref()).await.unwrap().is_empty(), "{}", case.id);
    }
});

/// What a decision left of a case: its audit entries' kinds, outbox rows' kinds, timers and
/// assignments, all of which a shared commit writes gathered for many cases.
async fn left_of(engine: &Engine, case_id: &str) -> (Vec<String>, Vec<String>, i64, i64) {
    let pool = &engine.store.pool;
    let audit = audit::entries(pool, case_id).await.unwrap().into_iter().map(|e| e.what).collect();
    let outbox =
        beslut_engine::store::effects::outbox_of(pool, case_id).await.unwrap().into_iter().map(|r| r.1).collect();
    let count = |table: &str| {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE case_id = $1");
        async move { sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).bind(case_id).fetch_one(pool).await.unwrap() }
    };
    (audit, outbox, count("timers").await, count("assignments").await)
}

on_both!(prepared_writes_leave_what_the_decisions_would_leave, |engine: Arc<Engine>| async move {
    // The bench's floor commits only the rows of decisions applied beforehand; it measures the
    // database's share of a decision only if those are the rows the decision itself writes.
    let executed = start(&engine, 1).await;
    let command = decide(&executed.tasks[0].id, "g1", "avsla", Some("nej"));
    engine.execute(&executed.id, command, Channel::Api, Map::new(), None).await.unwrap();
    let expected = left_of(&engine, &executed.id).await;
    let mut cases = Vec::new();
    for _ in 0..3 {
        cases.push(start(&engine, 1).await);
    }
    let commands = cases.iter().map(|c| (c.id.clone(), decide(&c.tasks[0].id, "g1", "avsla", Some("nej")))).collect();
    let prepared = engine.prepare_writes(commands).await.unwrap();
    for case in &cases {
        assert_eq!(engine.case(&case.id).await.unwrap().version, case.version, "preparing wrote nothing");
    }
    engine.commit_prepared(prepared).await.unwrap();
    let pool = &engine.store.pool;
    for case in &cases {
        assert_eq!(left_of(&engine, &case.id).await, expected, "{}", case.id);
        let stored = engine.case(&case.id).await.unwrap();
        assert!(matches!(stored.status, Status::Closed { outcome: OutcomeId::Rejected, .. }), "{}", case.id);
        let head = audit::remembered_head(pool, &case.id).await.unwrap();
        assert!(audit::verify(pool, &case.id, head.as_deref()).await.unwrap().is_empty(), "{}", case.id);
    }
});

/// The rows the task lists read for a case: its assignments, sorted, and who takes part.
async fn held_rows(engine: &Engine, case_id: &str) -> (Vec<cases::Holder>, Vec<String>) {
    let pool = &engine.store.pool;
    let assignments = sqlx::query_as::<_, (String, String, Option<String>, Option<i64>)>(
        "SELECT task_id, email, person, deadline FROM assignments WHERE case_id = $1 ORDER BY task_id, email",
    )
    .bind(case_id)
    .fetch_all(pool)
    .await
    .unwrap();
    let people = sqlx::query_scalar("SELECT who FROM case_people WHERE case_id = $1 ORDER BY who")
        .bind(case_id)
        .fetch_all(pool)
        .await
        .unwrap();
    (assignments, people)
}

on_both!(shared_commits_keep_assignments_in_step_with_the_open_tasks, |engine: Arc<Engine>| async move {
    // Decisions that hand a task on, open a new one and close the last, sharing commits: a
    // batch's assignments are upserted and the released ones deleted in one statement, which
    // must leave exactly the holders of the open tasks, each taking part in the case.
    let mut cases = Vec::new();
    for _ in 0..12 {
        cases.push(start(&engine, 1).await);
    }
    let commands: Vec<Command> = cases
        .iter()
        .enumerate()
        .map(|(i, case)| {
            let task = case.tasks[0].id.clone();
            match i % 3 {
                0 => Command::Delegate { task, actor: "g1".into(), to: "chef".into(), comment: None },
                1 => Command::Override { admin: "chef".into(), reason: "omtag".into(), to: "granskning".into() },
                _ => decide(&task, "g2", "avsla", Some("nej")),
            }
        })
        .collect();
    let handles: Vec<_> = cases
        .iter()
        .zip(commands)
        .map(|(case, command)| {
            let (e, id) = (engine.clone(), case.id.clone());
            tokio::spawn(async move { e.execute(&id, command, Channel::Api, Map::new(), None).await.unwrap() })
        })
        .collect();
    for (i, (case, h)) in cases.iter().zip(handles).enumerate() {
        let done = h.await.unwrap();
        let mut expected = cases::holders(&done);
        expected.sort();
        let (assignments, people) = held_rows(&engine, &case.id).await;
        assert_eq!(assignments, expected, "case {i}");
        assert_eq!(expected.is_empty(), i % 3 == 2, "case {i}: only the rejected ones hold no task");
        for (_, email, person, _) in &expected {
            let who = person.clone().unwrap_or_else(|| email.clone());
            assert!(people.contains(&who), "case {i}: {who} takes part, {people:?}");
        }
        // Those who held the task before still take part: the trail names them.
        assert!(people.contains(&"g1".to_string()), "case {i}: {people:?}");
    }
});

on_both!(commands_sharing_a_commit_leave_what_each_would_leave_alone, |engine: Arc<Engine>| async move {
    let alone = start(&engine, 1).await;
    let task = alone.tasks[0].id.clone();
    let command = decide(&task, "g1", "avsla", Some("nej"));
    engine.execute(&alone.id, command, Channel::Api, Map::new(), Some("alone")).await.unwrap();
    let expected = left_of(&engine, &alone.id).await;
    assert_eq!(expected.2, 0, "a closed case keeps no timer");
    // Sixteen cases, each sent the same decision three times under one key, all at once: most
    // share commits, and within one commit the repeats follow the first.
    let mut cases = Vec::new();
    for _ in 0..16 {
        cases.push(start(&engine, 1).await);
    }
    let mut handles = Vec::new();
    for case in &cases {
        for _ in 0..3 {
            let (e, id, task) = (engine.clone(), case.id.clone(), case.tasks[0].id.clone());
            handles.push(tokio::spawn(async move {
                let command = decide(&task, "g1", "avsla", Some("nej"));
                e.execute(&id, command, Channel::Api, Map::new(), Some(&format!("{id}-avsla"))).await.unwrap()
            }));
        }
    }
    let mut answers = Vec::new();
    for h in handles {
        answers.push(h.await.unwrap());
    }
    for (case, three) in cases.iter().zip(answers.chunks(3)) {
        assert!(three.iter().all(|c| c.id == case.id && c.version == three[0].version), "{}", case.id);
        assert_eq!(engine.case(&case.id).await.unwrap().version, three[0].version);
        assert_eq!(left_of(&engine, &case.id).await, expected, "{}", case.id);
        let pool = &engine.store.pool;
        let head = audit::remembered_head(pool, &case.id).await.unwrap();
        assert!(audit::verify(pool, &case.id, head.as_deref()).await.unwrap().is_empty(), "{}", case.id);
    }
});

on_both!(a_write_the_database_refuses_fails_only_its_own_command, |engine: Arc<Engine>| async move {
    // A trigger refuses the outbox rows of one case. Its decision shares a commit with the
    // others; the gathered writes fail, and written one by one only that decision is refused.
    let mut cases = Vec::new();
    for _ in 0..10 {
        cases.push(start(&engine, 1).await);
    }
    let refused = cases[4].id.clone();
    let trigger = match engine.store.backend {
        beslut_engine::store::Backend::Sqlite => format!(
            "CREATE TRIGGER refuse_one BEFORE INSERT ON outbox WHEN NEW.case_id = '{refused}' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        ),
        beslut_engine::store::Backend::Postgres => format!(
            "CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.case_id = '{refused}' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER refuse_one BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION refuse_one()"
        ),
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(trigger)).execute(&engine.store.pool).await.unwrap();
    let handles: Vec<_> = cases
        .iter()
        .map(|case| {
            let (e, id, task) = (engine.clone(), case.id.clone(), case.tasks[0].id.clone());
            tokio::spawn(async move {
                e.execute(&id, decide(&task, "g1", "avsla", Some("nej")), Channel::Api, Map::new(), None).await
            })
        })
        .collect();
    for (case, h) in cases.iter().zip(handles) {
        let answer = h.await.unwrap();
        let stored = engine.case(&case.id).await.unwrap();
        if case.id == refused {
            assert!(matches!(answer, Err(Error::Store(_))), "{answer:?}");
            assert_eq!(stored.version, case.version, "nothing of the refused decision is kept");
        } else {
            let done = answer.unwrap();
            assert_eq!(stored.version, done.version);
            assert!(matches!(stored.status, Status::Closed { outcome: OutcomeId::Rejected, .. }));
        }
    }
});

on_both!(a_repeated_idempotency_key_has_one_effect, |engine: Arc<Engine>| async move {
    let first = engine.start("bidrag", grant(10), stina(), Channel::Api, Some("k-start")).await.unwrap();
    let again = engine.start("bidrag", grant(10), stina(), Channel::Api, Some("k-start")).await.unwrap();
    assert_eq!(first.id, again.id);
    let task = first.tasks[0].id.clone();
    let one = engine
        .execute(&first.id, decide(&task, "g1", "bevilja", None), Channel::Api, Map::new(), Some("k-dec"))
        .await
        .unwrap();
    let two = engine
        .execute(&first.id, decide(&task, "g1", "bevilja", None), Channel::Api, Map::new(), Some("k-dec"))
        .await
        .unwrap();
    assert_eq!(one.version, two.version);
    assert_eq!(beslut_engine::store::cases::list(&engine.store.pool, None, None, 100).await.unwrap().len(), 1);
});

on_both!(concurrent_grants_never_exceed_the_frame, |engine: Arc<Engine>| async move {
    // The frame is 1000 kr; 100 cases of 100 kr are approved at once: exactly 10 fit.
    let mut cases = Vec::new();
    for _ in 0..100 {
        cases.push(start(&engine, 100).await);
    }
    let handles: Vec<_> = cases
        .into_iter()
        .map(|case| {
            let e = engine.clone();
            tokio::spawn(async move {
                let task = case.tasks[0].id.clone();
                e.execute(&case.id, decide(&task, "g1", "bevilja", None), Channel::Api, Map::new(), None).await
            })
        })
        .collect();
    let mut granted = 0;
    let mut refused = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(case) => {
                assert!(matches!(case.status, Status::Closed { outcome: OutcomeId::Approved, .. }));
                granted += 1;
            }
            Err(Error::Rejected(runtime::Error::FrameExceeded { .. })) => refused += 1,
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!((granted, refused), (10, 90));
});

on_both!(audit_verify_finds_edited_and_deleted_entries, |engine: Arc<Engine>| async move {
    let case = start(&engine, 10).await;
    let task = case.tasks[0].id.clone();
    engine
        .execute(&case.id, decide(&task, "g1", "avsla", Some("För dyrt")), Channel::Api, Map::new(), None)
        .await
        .unwrap();
    let pool = &engine.store.pool;
    let head = audit::remembered_head(pool, &case.id).await.unwrap();
    assert!(audit::verify(pool, &case.id, head.as_deref()).await.unwrap().is_empty());
    // The application cannot change the trail …
    let refused = sqlx::query("UPDATE audit SET actor = 'x' WHERE case_id = $1").bind(&case.id).execute(pool).await;
    assert!(refused.is_err(), "the audit trail must refuse updates");
    // … and an edit made around that is found.
    tamper(&engine, "UPDATE audit SET detail = REPLACE(detail, 'För dyrt', 'Bra') WHERE case_id = $1")
        .await
        .bind(&case.id)
        .execute(pool)
        .await
        .unwrap();
    let breaks = audit::verify(pool, &case.id, head.as_deref()).await.unwrap();
    assert!(breaks.iter().any(|b| b.problem.contains("changed")), "{breaks:?}");
    let last = audit::entries(pool, &case.id).await.unwrap().len() as i64;
    sqlx::query("DELETE FROM audit WHERE case_id = $1 AND seq = $2")
        .bind(&case.id)
        .bind(last)
        .execute(pool)
        .await
        .unwrap();
    let breaks = audit::verify(pool, &case.id, head.as_deref()).await.unwrap();
    assert!(breaks.iter().any(|b| b.problem.contains("missing")), "{breaks:?}");
});

/// Removes the append-only guard, as someone with direct database access could.
async fn tamper(engine: &Engine, sql: &'static str) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    let statements: &[&str] = match engine.store.backend {
        beslut_engine::store::Backend::Sqlite => &["DROP TRIGGER audit_no_update", "DROP TRIGGER audit_no_delete"],
        beslut_engine::store::Backend::Postgres => &["DROP TRIGGER audit_no_change ON audit"],
    };
    for statement in statements {
        sqlx::query(*statement).execute(&engine.store.pool).await.unwrap();
    }
    sqlx::query(sql)
}

on_both!(deadlines_escalate_once_when_timers_fire, |engine: Arc<Engine>| async move {
    let case = start(&engine, 10).await;
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 10);
    let fired = engine.fire_due_timers(later).await.unwrap();
    assert!(fired >= 1);
    let case = engine.case(&case.id).await.unwrap();
    assert!(case.tasks[0].escalated);
    assert_eq!(case.tasks[0].assignees[0].party.person.as_deref(), Some("chef"));
    // The escalated deadline fires later and changes nothing more.
    let much_later = later + jiff::SignedDuration::from_hours(24 * 10);
    engine.fire_due_timers(much_later).await.unwrap();
    assert_eq!(engine.fire_due_timers(much_later).await.unwrap(), 0, "no timer fires twice");
});

on_both!(withdrawal_and_unknown_cases_give_clear_errors, |engine: Arc<Engine>| async move {
    let case = start(&engine, 10).await;
    let other = engine
        .execute(&case.id, Command::Withdraw { actor: "g1".into(), comment: None }, Channel::Api, Map::new(), None)
        .await;
    assert!(matches!(other, Err(Error::Rejected(runtime::Error::NotAllowed(_)))));
    let done = engine
        .execute(
            &case.number,
            Command::Withdraw { actor: "stina".into(), comment: None },
            Channel::Api,
            Map::new(),
            None,
        )
        .await
        .unwrap();
    assert!(matches!(done.status, Status::Closed { outcome: OutcomeId::Withdrawn, .. }));
    assert!(matches!(engine.case("bi-1999-0001").await, Err(Error::NoSuchCase(_))));
});

on_both!(sub_cases_start_and_report_back_exactly_once, |engine: Arc<Engine>| async move {
    let rubrik = json!({ "rubrik": "Bygglov 2.0" }).as_object().unwrap().clone();
    let parent = engine.start("huvud", rubrik, stina(), Channel::Api, None).await.unwrap();
    assert!(matches!(parent.waiting, Some(runtime::Waiting::Subcase { .. })));
    // Two workers racing over the same queue start the child once.
    let (a, b) = tokio::join!(engine.process_internal(), engine.process_internal());
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    let child = engine.case(&format!("{}-1", parent.id)).await.unwrap();
    assert_eq!(child.data["rubrik"], "Bygglov 2.0");
    let task = child.tasks[0].id.clone();
    engine.execute(&child.id, decide(&task, "chef", "ja", None), Channel::Api, Map::new(), None).await.unwrap();
    assert_eq!(engine.process_internal().await.unwrap(), 1);
    let parent = engine.case(&parent.id).await.unwrap();
    assert!(matches!(parent.status, Status::Closed { outcome: OutcomeId::Completed, .. }), "{:?}", parent.status);
    assert_eq!(engine.process_internal().await.unwrap(), 0);
});

on_both!(a_changed_workflow_file_affects_only_new_cases, |engine: Arc<Engine>| async move {
    let old = start(&engine, 10).await;
    // The same database, now with a workflow file whose approve action is renamed.
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = if path.ends_with("bidrag.yaml") { text.replace("bevilja:", "godkann:") } else { text };
        std::fs::write(dir.path().join(path.file_name().unwrap()), text).unwrap();
    }
    let project = Project::load(dir.path()).unwrap();
    assert!(project.is_valid());
    let changed = Engine::new(engine.store.clone(), project);
    let new = changed.start("bidrag", grant(10), stina(), Channel::Api, None).await.unwrap();
    assert_ne!(old.definition_hash, new.definition_hash);
    // The old case still runs on the version it started on …
    let task = old.tasks[0].id.clone();
    changed.execute(&old.id, decide(&task, "g1", "bevilja", None), Channel::Api, Map::new(), None).await.unwrap();
    // … and the new case on the new one.
    let task = new.tasks[0].id.clone();
    let refused = changed.execute(&new.id, decide(&task, "g1", "bevilja", None), Channel::Api, Map::new(), None).await;
    assert!(matches!(refused, Err(Error::Rejected(runtime::Error::NoSuchAction(_)))), "{refused:?}");
    changed.execute(&new.id, decide(&task, "g1", "godkann", None), Channel::Api, Map::new(), None).await.unwrap();
});

fn subscriber(id: &str, events: &[&str]) -> hooks::Subscription {
    hooks::Subscription {
        id: id.into(),
        url: "http://127.0.0.1:9/".into(),
        secret: "whsec_x".into(),
        events: events.iter().map(|e| e.to_string()).collect(),
        workflows: vec![],
        origin: "api".into(),
        active: true,
        created_at: 0,
    }
}

on_both!(events_fan_out_once_and_go_out_in_order_per_case, |engine: Arc<Engine>| async move {
    let store = &engine.store;
    let mut tx = store.begin().await.unwrap();
    hooks::save_subscription(&mut tx, &subscriber("all", &["*"])).await.unwrap();
    hooks::save_subscription(&mut tx, &subscriber("tasks", &["task.*"])).await.unwrap();
    for (seed, kind) in [("1", "case.started"), ("2", "task.assigned"), ("1", "case.started")] {
        hooks::publish(&mut tx, seed, kind, Some("c1"), Some("bidrag"), json!({}), 1000).await.unwrap();
    }
    tx.commit().await.unwrap();
    let all = hooks::deliveries(&store.pool, None, Some("pending"), None, 10).await.unwrap();
    assert_eq!(all.len(), 3, "two events (one seed repeated), to 2 + 1 subscribers: {all:?}");

    // Claimed one at a time: the second event to `all` waits while the first is pending.
    let mut claimed = Vec::new();
    loop {
        let mut tx = store.begin().await.unwrap();
        let due = hooks::claim_delivery(&mut tx, store.backend, 2000, 60_000).await.unwrap();
        tx.commit().await.unwrap();
        let Some(due) = due else { break };
        claimed.push((due.subscription_id.clone(), due.event_type.clone()));
    }
    claimed.sort();
    assert_eq!(claimed, [("all".to_string(), "case.started".to_string()), ("tasks".into(), "task.assigned".into())]);

    let first = all.iter().find(|d| d.subscription_id == "all" && d.event_type == "case.started").unwrap();
    let attempt =
        hooks::Attempt { attempt: 1, at: 2000, status_code: Some(200), response: None, error: None, duration_ms: 3 };
    let mut tx = store.begin().await.unwrap();
    hooks::record_attempt(&mut tx, first.id, &attempt, hooks::Outcome::Delivered).await.unwrap();
    let next = hooks::claim_delivery(&mut tx, store.backend, 3000, 60_000).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(next.map(|d| d.event_type), Some("task.assigned".to_string()), "then the next one of the case");

    let mut tx = store.begin().await.unwrap();
    assert!(hooks::redeliver(&mut tx, first.id, 4000).await.unwrap());
    assert!(hooks::deactivate(&mut tx, "tasks").await.unwrap());
    tx.commit().await.unwrap();
    let cancelled = hooks::deliveries(&store.pool, Some("tasks"), Some("cancelled"), None, 10).await.unwrap();
    assert_eq!(cancelled.len(), 1, "a removed subscriber's pending delivery is cancelled, not lost from the log");
});

on_both!(a_batch_claim_takes_the_oldest_delivery_of_each_case_only, |engine: Arc<Engine>| async move {
    let store = &engine.store;
    let mut tx = store.begin().await.unwrap();
    hooks::save_subscription(&mut tx, &subscriber("all", &["*"])).await.unwrap();
    for (seed, case) in [("1", "c1"), ("2", "c2"), ("3", "c1"), ("4", "c1"), ("5", "c2")] {
        hooks::publish(&mut tx, seed, "task.decided", Some(case), Some("bidrag"), json!({}), 1000).await.unwrap();
    }
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let claimed = hooks::claim_deliveries(&mut tx, store.backend, 2000, 60_000, 10).await.unwrap();
    tx.commit().await.unwrap();
    let cases: Vec<&str> = claimed.iter().filter_map(|d| d.case_id.as_deref()).collect();
    assert_eq!(cases, ["c1", "c2"], "one per case, the oldest, so that sending them at once keeps each case's order");
    let mut tx = store.begin().await.unwrap();
    let again = hooks::claim_deliveries(&mut tx, store.backend, 2000, 60_000, 10).await.unwrap();
    tx.commit().await.unwrap();
    assert!(again.is_empty(), "the rest wait for the leased ones: {again:?}");
});

on_both!(two_fan_outs_at_once_keep_the_order_of_a_case, |engine: Arc<Engine>| async move {
    // Regression: two nodes fanned out at once, each skipping the other's locked outbox rows,
    // so a case's later event became visible before its earlier one and both were sent.
    let store = &engine.store;
    let mut tx = store.begin().await.unwrap();
    hooks::save_subscription(&mut tx, &subscriber("all", &["*"])).await.unwrap();
    for event in ["task.assigned", "task.decided"] {
        let emit = runtime::Effect::Emit { event: event.into(), data: json!({"workflow": "bidrag"}) };
        beslut_engine::store::effects::enqueue(&mut tx, "c1", "webhook", &emit, 1000).await.unwrap();
    }
    tx.commit().await.unwrap();

    let mut first = store.begin().await.unwrap();
    assert_eq!(hooks::fan_out(&mut first, store.backend, 2000, 1).await.unwrap(), 1);
    let other = engine.clone();
    let second = tokio::spawn(async move {
        let mut tx = other.store.begin().await.unwrap();
        let n = hooks::fan_out(&mut tx, other.store.backend, 2000, 1).await.unwrap();
        tx.commit().await.unwrap();
        n
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let visible = hooks::deliveries(&store.pool, None, Some("pending"), None, 10).await.unwrap();
    assert!(visible.is_empty(), "the later event waits for the earlier fan-out to commit: {visible:?}");
    first.commit().await.unwrap();
    assert_eq!(second.await.unwrap(), 1);

    let mut sent = Vec::new();
    for at in [3000, 4000] {
        let mut tx = store.begin().await.unwrap();
        let due = hooks::claim_deliveries(&mut tx, store.backend, at, at + 60_000, 10).await.unwrap();
        assert_eq!(due.len(), 1, "one delivery of the case at a time: {due:?}");
        let attempt =
            hooks::Attempt { attempt: 1, at, status_code: Some(200), response: None, error: None, duration_ms: 1 };
        hooks::record_attempt(&mut tx, due[0].id, &attempt, hooks::Outcome::Delivered).await.unwrap();
        tx.commit().await.unwrap();
        sent.push(due[0].event_type.clone());
    }
    assert_eq!(sent, ["task.assigned", "task.decided"]);
});

on_both!(cases_are_searched_and_paged_and_tokens_kept_hashed, |engine: Arc<Engine>| async move {
    for amount in [10, 20, 30] {
        start(&engine, amount).await;
    }
    let pool = &engine.store.pool;
    let mut filter = cases::Filter { workflow: Some("bidrag".into()), limit: 2, ..Default::default() };
    let page = cases::search(pool, &filter).await.unwrap();
    assert_eq!(page.len(), 2);
    let last = page.last().unwrap();
    filter.after = Some((last.started_at, last.summary.id.clone()));
    let rest = cases::search(pool, &filter).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert!(page.iter().all(|c| c.summary.id != rest[0].summary.id));
    let by_text =
        cases::Filter {
            text: Some("NY TJÄNST".into()), person: Some("stina".into()), limit: 10, ..Default::default()
        };
    assert_eq!(cases::search(pool, &by_text).await.unwrap().len(), 3, "case-insensitive title search by starter");
    let nobody = cases::Filter { person: Some("okand".into()), limit: 10, ..Default::default() };
    assert!(cases::search(pool, &nobody).await.unwrap().is_empty());

    let token = tokens::ApiToken {
        id: "tok_1".into(),
        name: "diariet".into(),
        scopes: vec!["read".into()],
        created_at: 1,
        last_used_at: None,
        revoked_at: None,
    };
    let mut tx = engine.store.begin().await.unwrap();
    tokens::insert(&mut tx, &token, "hash-of-token").await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(tokens::by_hash(pool, "hash-of-token").await.unwrap().map(|t| t.name), Some("diariet".into()));
    let mut tx = engine.store.begin().await.unwrap();
    assert!(tokens::revoke(&mut tx, "diariet", 5).await.unwrap());
    tx.commit().await.unwrap();
    assert!(tokens::by_hash(pool, "hash-of-token").await.unwrap().is_none(), "a revoked token no longer works");
});

/// A copy of the fixtures folder whose `bidrag` workflow has `name` as its name, so that its
/// content (and hash) differs from the others'.
fn folder_with_bidrag_named(name: &str) -> (Project, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = if path.ends_with("bidrag.yaml") {
            text.replacen("name: Bidrag", &format!("name: {name}"), 1)
        } else {
            text
        };
        std::fs::write(dir.path().join(path.file_name().unwrap()), text).unwrap();
    }
    let project = Project::load(dir.path()).unwrap();
    assert!(project.is_valid(), "{}", project.render(beslut_engine::diagnostic::Lang::En));
    (project, dir)
}

fn hash_of(project: &Project, workflow: &str) -> String {
    project.workflow(workflow).unwrap().hash.clone()
}

on_both!(every_node_starts_new_cases_on_the_published_version, |engine: Arc<Engine>| async move {
    // Node A runs the fixtures; node B was deployed with an edited `bidrag`.
    let a = engine;
    let (edited, _b_dir) = folder_with_bidrag_named("Bidrag v2");
    let v2 = hash_of(&edited, "bidrag");
    let b = Engine::new(a.store.clone(), edited);
    a.sync_versions().await.unwrap();
    b.sync_versions().await.unwrap();
    a.sync_versions().await.unwrap();
    // B's content was new, so it is published, and A follows it.
    assert_eq!(start(&a, 1).await.definition_hash, v2);
    assert_eq!(start(&b, 1).await.definition_hash, v2);

    // A node started later with the old folder does not roll the others back.
    let stale = super::engine(a.store.clone());
    stale.sync_versions().await.unwrap();
    assert_eq!(start(&stale, 1).await.definition_hash, v2);
    b.sync_versions().await.unwrap();
    assert_eq!(start(&b, 1).await.definition_hash, v2);

    // An edit on a running node is published and reaches the others.
    let (third, _a_dir) = folder_with_bidrag_named("Bidrag v3");
    let v3 = hash_of(&third, "bidrag");
    a.reload(third).unwrap();
    a.sync_versions().await.unwrap();
    b.sync_versions().await.unwrap();
    stale.sync_versions().await.unwrap();
    for node in [&*a, &b, &stale] {
        assert_eq!(start(node, 1).await.definition_hash, v3);
        assert_eq!(node.current("bidrag").unwrap().name.sv, "Bidrag v3");
    }
});

on_both!(a_claimed_batch_is_leased_until_its_lease_runs_out, |engine: Arc<Engine>| async move {
    use beslut_engine::store::effects;
    let mut cases = Vec::new();
    for _ in 0..3 {
        cases.push(start(&engine, 10).await.id);
    }
    let mut emails = Vec::new();
    for case in &cases {
        let rows = effects::outbox_of(&engine.store.pool, case).await.unwrap();
        emails.extend(rows.into_iter().filter(|(_, kind, _, _)| kind == "email").map(|(id, ..)| id));
    }
    assert!(emails.len() >= 3, "each start queues a task email: {emails:?}");
    let (store, now, lease) = (&engine.store, jiff::Timestamp::now().as_millisecond(), 60_000_i64);
    let claim = |limit: i64, at: i64| async move {
        let mut tx = store.begin().await.unwrap();
        let rows = effects::claim_due(&mut tx, store.backend, "email", at, at + lease, limit).await.unwrap();
        tx.commit().await.unwrap();
        rows.iter().map(|r| r.id).collect::<Vec<_>>()
    };
    let first = claim(2, now).await;
    assert_eq!(first, emails[..2], "the oldest rows first, at most the limit");
    let rest = claim(100, now + 1).await;
    assert_eq!(rest, emails[2..], "leased rows are skipped");
    assert!(claim(100, now + lease).await.is_empty(), "nothing is claimed twice within its lease");
    assert_eq!(claim(100, now + lease + 2).await, emails, "rows whose worker died are taken over");
});

on_both!(a_fan_out_to_many_subscribers_stays_within_the_bound_parameters, |engine: Arc<Engine>| async move {
    // 64 events to 120 subscribers are 7,680 deliveries: 38,400 values in one INSERT, over
    // SQLite's limit of 32,766, and the fan-out would fail on every attempt.
    let store = &engine.store;
    let mut tx = store.begin().await.unwrap();
    for n in 0..120 {
        hooks::save_subscription(&mut tx, &subscriber(&format!("s{n:03}"), &["*"])).await.unwrap();
    }
    let emit = runtime::Effect::Emit { event: "task.decided".into(), data: json!({ "workflow": "bidrag" }) };
    for n in 0..64 {
        effects::enqueue(&mut tx, &format!("c{n}"), "webhook", &emit, 1000).await.unwrap();
    }
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert_eq!(hooks::fan_out(&mut tx, store.backend, 2000, 64).await.unwrap(), 64);
    tx.commit().await.unwrap();
    let queued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries").fetch_one(&store.pool).await.unwrap();
    assert_eq!(queued, 64 * 120);
});

/// SQLite's own checkpoint runs inside a commit, and decisions wait behind it; the store's
/// background checkpoint copies the WAL into the database file shortly after writes instead.
/// 1 MB of writes stays under both of SQLite's thresholds (4 MB by default, 32 MB on the
/// write connection here), so only the background checkpoint can have copied it.
#[tokio::test]
async fn the_wal_is_copied_into_the_database_file_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(dir.path()).await.unwrap();
    let file = dir.path().join(beslut_engine::store::SQLITE_FILE);
    let mut tx = store.begin().await.unwrap();
    sqlx::query("CREATE TABLE scratch (b BLOB)").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = std::fs::metadata(&file).unwrap().len();

    let mut tx = store.begin().await.unwrap();
    sqlx::query("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 256) INSERT INTO scratch SELECT zeroblob(4000) FROM n")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::fs::metadata(&file).unwrap().len() < before + 1_000_000 {
        assert!(std::time::Instant::now() < deadline, "the WAL was not copied into the database file within 5 s");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    store.close().await;
}
