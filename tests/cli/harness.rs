//! The server under test: `beslut serve` in-process on an ephemeral port, with its workers,
//! mailing a real SMTP server; shared by the HTTP, link and browser tests.

use crate::mail::SmtpServer;
use beslut::mail::{Mailer, SmtpTransport};
use beslut::serve::Workers;
use beslut::web::AppState;
use beslut_engine::project::Project;
use beslut_engine::runtime::Party;
use beslut_engine::service::Engine;
use beslut_engine::store::Store;
use beslut_notifications::deliver::Deliverer;
use beslut_notifications::links::Secret;
use std::sync::Arc;

/// A running server; stopped when dropped.
pub struct Running {
    pub base: String,
    pub engine: Arc<Engine>,
    pub secret: Secret,
    pub smtp: SmtpServer,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts the server on the sample workflows with a fresh SQLite file and SMTP server.
pub async fn start() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path());
    let store = Store::open_sqlite(&dir.path().join("data")).await.unwrap();
    let project = Project::load(&crate::root().join("workflows")).unwrap();
    let engine = Arc::new(Engine::new(store, project));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let secret = Secret::generate();
    let transport = Box::new(SmtpTransport::new(&smtp.config()).unwrap());
    let mailer = Mailer::new(engine.clone(), secret.clone(), &base, transport).unwrap();
    let deliverer = Deliverer::new(engine.clone(), secret.clone(), &base).unwrap();
    let state = state(&engine, &secret, &base, Default::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let workers = Workers { mailer, deliverer };
    tokio::spawn(beslut::serve::serve(listener, state, workers, async move {
        let _ = stopped.await;
    }));
    Running { base, engine, secret, smtp, stop: Some(stop), _dir: dir }
}

/// The server's state for the sample workflows, with the given inbound webhook sources.
pub fn state(
    engine: &Arc<Engine>,
    secret: &Secret,
    base: &str,
    sources: std::collections::BTreeMap<String, beslut_notifications::webhooks::WebhookSecret>,
) -> AppState {
    AppState {
        engine: engine.clone(),
        secret: secret.clone(),
        base_url: base.to_string(),
        dev_mail: false,
        limiter: Default::default(),
        sources: Arc::new(sources),
        workflows_dir: crate::root().join("workflows"),
        web: Arc::new(beslut::web::WebConfig { allowed_domains: Vec::new(), viewer_roles: vec!["it-chef".into()] }),
    }
}

impl Running {
    /// Waits until the SMTP server holds at least `n` messages, and returns them all.
    pub async fn messages(&self, n: usize) -> Vec<String> {
        for _ in 0..100 {
            let found = self.smtp.messages();
            if found.len() >= n {
                return found;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("expected {n} messages, got {}", self.smtp.messages().len());
    }
}

/// A funding application that goes to the Tillgänglighet preparatory group.
pub fn application() -> serde_json::Map<String, serde_json::Value> {
    serde_json::json!({
        "rubrik": "E-tjänst för bygglov", "projektagare": "tomas-lindberg", "forvaltning": "sbf", "malbidrag": "Snabbare",
        "portfolj": "tillganglighet", "belopp": 1200000, "budgetar": 2026, "kategori": "differentierande",
        "genomforandeplan": "Q1", "nyttorealisering": "Halverad tid", "systemagare": "Byggnadsnämnden",
        "systemagare_accepterat": true, "lopttid_manader": 9
    })
    .as_object()
    .unwrap()
    .clone()
}

pub fn tomas(engine: &Engine) -> Party {
    beslut_engine::runtime::assign::party(engine.project().directory.person("tomas-lindberg").unwrap())
}
