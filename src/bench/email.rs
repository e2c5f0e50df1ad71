//! Email throughput: real task emails (cases started through the engine, each email rendered
//! with signed decision links and logged under its outbox row) delivered by the mailer's own
//! SMTP transport, pooled connections, to a local SMTP server over TCP. The figure is
//! messages per second from the first claim to the last message the server accepted.

pub(super) mod sink;

use super::{Figure, Options, Target, application, fresh_sqlite, step};
use crate::mail::{Mailer, SmtpConfig, SmtpTransport};
use beslut_engine::project::Project;
use beslut_engine::runtime::Channel;
use beslut_engine::service::Engine;
use beslut_engine::store::effects;
use beslut_notifications::links::Secret;
use sink::Sink;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Issue 9: at least this many messages a second handed to a local SMTP server.
const TARGET: f64 = 1000.0;

/// The email figure, on SQLite; `raw_sqlite` (the raw commit rate of the same run) is noted
/// beside it, since each batch of emails costs two commits.
pub(crate) async fn figures(options: &Options, raw_sqlite: f64) -> Result<Vec<Figure>, String> {
    step(&format!("email: starting cases until {} task emails wait in the outbox", options.emails));
    let store = fresh_sqlite(&options.data_dir, "email").await?;
    let project = Project::load(&options.workflows).map_err(|e| e.to_string())?;
    let engine = Arc::new(Engine::new(store, project));
    let (cases, queued) = fill_outbox(&engine, options.emails).await?;
    step(&format!("email: sending {queued} emails to a local SMTP server"));
    let sink = Sink::start().await?;
    let rate = deliver(&engine, &sink, queued).await?;
    left_undone(&engine, &cases).await?;
    let connections = sink.read(|r| r.connections);
    let figure = Figure::new("emails rendered and sent to a local SMTP server", rate, "/s", Target::AtLeast(TARGET))
        .with_note(format!(
            "{queued} task emails with signed links from {} cases, SQLite (raw commits {raw_sqlite:.0}/s); lettre's \
             pooled SMTP transport, {connections} connections; the bench's own SMTP server (tokio) on loopback",
            cases.len()
        ));
    Ok(vec![figure])
}

/// Starts funding applications until at least `emails` emails are queued (not timed);
/// returns the case ids and how many emails wait.
async fn fill_outbox(engine: &Engine, emails: usize) -> Result<(Vec<String>, usize), String> {
    let starter = engine.party("tomas-lindberg").ok_or("tomas-lindberg is not in the directory")?;
    let (mut cases, mut queued) = (Vec::new(), 0);
    while queued < emails {
        let case = engine
            .start("finansieringsansokan", application(), starter.clone(), Channel::Api, None)
            .await
            .map_err(|e| e.to_string())?;
        let rows = effects::outbox_of(&engine.store.pool, &case.id).await.map_err(|e| e.to_string())?;
        let new = rows.iter().filter(|(_, kind, _, _)| kind == "email").count();
        if new == 0 {
            return Err(format!("starting {} queued no email, so there is nothing to measure", case.id));
        }
        queued += new;
        cases.push(case.id);
    }
    Ok((cases, queued))
}

/// Runs the mailer until the outbox is empty; returns messages per second, after checking
/// that the server received every message once, each with its Message-ID.
async fn deliver(engine: &Arc<Engine>, sink: &Sink, queued: usize) -> Result<f64, String> {
    let config = SmtpConfig {
        host: "127.0.0.1".into(),
        port: sink.port,
        security: "none".into(),
        username: None,
        password: None,
    };
    let transport = Box::new(SmtpTransport::new(&config)?);
    let mailer = Mailer::new(engine.clone(), Secret::generate(), "https://beslut.example.se", transport)?;
    let started = Instant::now();
    let sent = mailer.run_once().await.map_err(|e| format!("the mailer failed: {e}"))?;
    let (messages, distinct, without_id, last) =
        sink.read(|r| (r.messages, r.ids.len(), r.without_id, r.last.unwrap_or(started)));
    if sent != queued || messages != queued {
        return Err(format!("{queued} emails were queued, the mailer sent {sent} and the server accepted {messages}"));
    }
    if without_id > 0 || distinct != queued {
        return Err(format!(
            "of {messages} messages {without_id} had no Message-ID and {distinct} Message-IDs were distinct"
        ));
    }
    let elapsed = last.duration_since(started).max(Duration::from_micros(1));
    Ok(queued as f64 / elapsed.as_secs_f64())
}

/// Fails unless every email row of `cases` is done.
async fn left_undone(engine: &Engine, cases: &[String]) -> Result<(), String> {
    for case in cases {
        let rows = effects::outbox_of(&engine.store.pool, case).await.map_err(|e| e.to_string())?;
        if let Some((id, _, status, _)) = rows.iter().find(|(_, kind, status, _)| kind == "email" && status != "done") {
            return Err(format!("email row {id} of {case} is {status} after the run"));
        }
    }
    Ok(())
}
