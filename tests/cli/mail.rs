//! Email delivery against a real SMTP server over TCP (Debian's python3-aiosmtpd): task emails
//! with personal decision links, retries that resend the identical message, and nothing sent
//! twice.

use beslut::mail::{FileTransport, Mailer, SmtpConfig, SmtpTransport, Transport};
use beslut_engine::project::Project;
use beslut_engine::runtime::{Channel, Party};
use beslut_engine::service::Engine;
use beslut_engine::store::Store;
use beslut_notifications::links::{self, Secret};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

/// A running aiosmtpd; killed when dropped.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub maildir: PathBuf,
}

impl SmtpServer {
    pub fn start(dir: &Path) -> SmtpServer {
        SmtpServer::refusing(dir, &[])
    }

    /// A server that refuses `refused` recipients with a permanent 550, like an unknown mailbox.
    pub fn refusing(dir: &Path, refused: &[&str]) -> SmtpServer {
        let maildir = dir.join("maildir");
        let mut child = Command::new("/usr/bin/python3")
            .arg(crate::root().join("tests/support/smtp_server.py"))
            .arg(&maildir)
            .args(refused)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with aiosmtpd (apt-get install python3-aiosmtpd; scripts/test.sh installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the SMTP server printed {line:?}"));
        SmtpServer { child, port, maildir }
    }

    /// How Beslut reaches this server: plain SMTP on loopback.
    pub fn config(&self) -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".into(),
            port: self.port,
            security: "none".into(),
            username: None,
            password: None,
        }
    }

    /// A server on `port`, storing into the same Maildir as a stopped one there: the relay
    /// coming back after an outage.
    pub fn start_on(dir: &Path, port: u16) -> SmtpServer {
        let maildir = dir.join("maildir");
        let mut child = Command::new("/usr/bin/python3")
            .arg(crate::root().join("tests/support/smtp_server.py"))
            .arg(&maildir)
            .env("SMTP_PORT", port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with aiosmtpd");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), port.to_string(), "the SMTP server could not listen on {port} again");
        SmtpServer { child, port, maildir }
    }

    /// Stops the server: connections to its port are refused until one starts there again.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Every received message, as raw text.
    pub fn messages(&self) -> Vec<String> {
        let new = self.maildir.join("new");
        let Ok(entries) = std::fs::read_dir(&new) else { return Vec::new() };
        let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        files.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn engine(dir: &Path) -> Arc<Engine> {
    let store = Store::open_sqlite(&dir.join("data")).await.unwrap();
    let project = Project::load(&crate::root().join("workflows")).unwrap();
    let now: jiff::Timestamp = "2026-11-23T08:00:00Z".parse().unwrap();
    Arc::new(Engine::new(store, project).with_clock(Arc::new(move || now)))
}

fn andring() -> serde_json::Map<String, serde_json::Value> {
    serde_json::json!({
        "rubrik": "Nytt ärendehanteringssystem", "beskrivning": "Ersätter gammalt system", "syfte": "Effektivare handläggning",
        "forvaltning": "sbf", "forslagsstallare": "tomas-lindberg", "kostnad": 250000, "tidplan": "2027",
        "bruttonytta": 400000, "kostnader": "Licens 50 000 kr/år", "nyttostruktur": "Tidsbesparing",
        "riskanalys": "Låg", "nyttoansvarig": "tomas-lindberg"
    })
    .as_object()
    .unwrap()
    .clone()
}

fn tomas(engine: &Engine) -> Party {
    beslut_engine::runtime::assign::party(engine.project().directory.person("tomas-lindberg").unwrap())
}

/// A raw message with its quoted-printable parts decoded (`=C3=A4` → `ä`, soft breaks joined).
pub fn decoded(message: &str) -> String {
    let joined = message.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The distinct `/d/…` links in a message (text and HTML parts).
pub fn decision_links(message: &str) -> Vec<String> {
    let text = decoded(message);
    let mut found: Vec<String> = Vec::new();
    for (start, _) in text.match_indices("http") {
        let url: String =
            text[start..].chars().take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '<' | '>' | '\'')).collect();
        if url.contains("/d/") && !found.contains(&url) {
            found.push(url);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn task_emails_reach_a_real_smtp_server_with_personal_links() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(dir.path());
    let engine = engine(dir.path()).await;
    let case = engine.start("andring-av-it", andring(), tomas(&engine), Channel::Api, None).await.unwrap();
    let secret = Secret::generate();
    let transport: Box<dyn Transport> = Box::new(SmtpTransport::new(&smtp.config()).unwrap());
    let mailer = Mailer::new(engine.clone(), secret.clone(), "http://127.0.0.1:8080", transport).unwrap();
    let sent = mailer.run_once().await.unwrap();
    assert!(sent >= 1);
    assert_eq!(mailer.run_once().await.unwrap(), 0, "nothing is sent twice");
    let messages = smtp.messages();
    assert_eq!(messages.len(), sent);
    let task_mail = messages.iter().find(|m| m.contains("Subject: Uppgift")).expect("a task email");
    let assignee = &case.tasks[0].assignees[0].party.email;
    assert!(task_mail.contains(&format!("To: {assignee}")), "{task_mail}");
    assert!(task_mail.contains("Message-ID: <outbox-"), "{task_mail}");
    let urls = decision_links(task_mail);
    assert_eq!(urls.len(), 4, "one link per action, and one to hand the task over: {urls:?}");
    let token = urls[0].rsplit("/d/").next().unwrap();
    let claims = links::verify(&secret, token, jiff::Timestamp::now().as_second()).unwrap();
    assert_eq!((claims.case.as_str(), claims.recipient.as_str()), (case.id.as_str(), assignee.as_str()));
    let stored = beslut_engine::store::mail::link(&engine.store.pool, &links::token_hash(token)).await.unwrap();
    assert!(stored.is_some(), "the token's hash is stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mailer_told_to_stop_gives_back_the_batch_it_has_not_sent() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    // More task emails than one batch holds, so a second batch is claimed while the first is sent.
    for _ in 0..70 {
        engine.start("andring-av-it", andring(), tomas(&engine), Channel::Api, None).await.unwrap();
    }
    let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'email'")
        .fetch_one(&engine.store.pool)
        .await
        .unwrap();
    let files = || Box::new(FileTransport { dir: dir.path().join("mail") });
    let stopping = Mailer::new(engine.clone(), Secret::generate(), "http://localhost:8080", files()).unwrap();
    let first = stopping.run_until(&|| true).await.unwrap();
    assert!(first > 0 && (first as i64) < waiting, "one batch of {waiting} went out before the stop: {first}");
    // At the same instant, so no lease has run out: the rest is free for another worker at once.
    let other = Mailer::new(engine.clone(), Secret::generate(), "http://localhost:8080", files()).unwrap();
    let rest = other.run_once().await.unwrap();
    assert_eq!((first + rest) as i64, waiting, "every email went out once, the rest from the other worker");
}

/// A transport that fails the first time, then writes files.
struct Flaky {
    failed: std::sync::Mutex<bool>,
    files: FileTransport,
}

#[async_trait::async_trait]
impl Transport for Flaky {
    async fn send(&self, from: &str, message: &beslut::mail::Outgoing) -> Result<(), beslut::mail::SendError> {
        let first_attempt = !std::mem::replace(&mut *self.failed.lock().unwrap(), true);
        if first_attempt {
            return Err(beslut::mail::SendError { permanent: false, message: "421 try again later".into() });
        }
        self.files.send(from, message).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_delivery_is_retried_with_the_identical_message() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    engine.start("andring-av-it", andring(), tomas(&engine), Channel::Api, None).await.unwrap();
    let files = dir.path().join("mail");
    let transport =
        Box::new(Flaky { failed: std::sync::Mutex::new(false), files: FileTransport { dir: files.clone() } });
    let mailer = Mailer::new(engine.clone(), Secret::generate(), "http://localhost:8080", transport).unwrap();
    mailer.run_once().await.unwrap();
    let first = beslut_engine::store::mail::recent(&engine.store.pool, None, 10).await.unwrap();
    let failed: Vec<_> = first.iter().filter(|m| m.sent_at.is_none()).collect();
    assert_eq!(failed.len(), 1, "one message waits for its retry");
    // The retry is due after the backoff.
    let later: jiff::Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
    let engine = Arc::new(
        Engine::new(engine.store.clone(), Project::load(&crate::root().join("workflows")).unwrap())
            .with_clock(Arc::new(move || later)),
    );
    let transport = Box::new(FileTransport { dir: files.clone() });
    let mailer = Mailer::new(engine.clone(), Secret::generate(), "http://localhost:8080", transport).unwrap();
    assert_eq!(mailer.run_once().await.unwrap(), 1);
    let after = beslut_engine::store::mail::recent(&engine.store.pool, None, 10).await.unwrap();
    let retried = after.iter().find(|m| m.outbox_id == failed[0].outbox_id).unwrap();
    assert_eq!(
        (retried.message_id.as_str(), retried.text.as_str()),
        (failed[0].message_id.as_str(), failed[0].text.as_str())
    );
    assert!(retried.sent_at.is_some());
    let written = std::fs::read_dir(&files).unwrap().count();
    assert_eq!(written, after.len(), "one file per message, none twice");
}

/// Every email row with its recipient, status and last error.
async fn email_rows(engine: &Engine) -> Vec<(String, String, Option<String>)> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT m.recipient, o.status, o.last_error FROM outbox o JOIN mail_log m ON m.outbox_id = o.id \
         WHERE o.kind = 'email' ORDER BY o.id",
    )
    .fetch_all(&engine.store.pool)
    .await
    .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()
}

/// The mailer works in batches: one recipient refused by the server must not hold back, nor
/// resend, the emails around it.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_recipient_is_dead_with_the_reply_and_the_rest_of_the_batch_goes_out_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    // Funding applications go to every member of a preparatory group, so the batch holds
    // emails to several people, one of whom the server does not know.
    let mut refused = String::new();
    for _ in 0..3 {
        let application = crate::harness::application();
        let case = engine.start("finansieringsansokan", application, tomas(&engine), Channel::Api, None).await.unwrap();
        refused = case.tasks[0].assignees[0].party.email.clone();
    }
    engine.start("andring-av-it", andring(), tomas(&engine), Channel::Api, None).await.unwrap();
    let smtp = SmtpServer::refusing(dir.path(), &[&refused]);
    let transport: Box<dyn Transport> = Box::new(SmtpTransport::new(&smtp.config()).unwrap());
    let mailer = Mailer::new(engine.clone(), Secret::generate(), "http://127.0.0.1:8080", transport).unwrap();
    let sent = mailer.run_once().await.unwrap();

    let rows = email_rows(&engine).await;
    let (to_refused, others): (Vec<_>, Vec<_>) = rows.iter().partition(|(to, _, _)| to == &refused);
    assert_eq!(to_refused.len(), 3, "each application mails its first task to {refused}: {rows:?}");
    assert!(!others.is_empty(), "the batch holds other recipients too: {rows:?}");
    for (to, status, error) in &to_refused {
        assert_eq!(status, "dead", "a permanent refusal is not retried: {to}");
        let error = error.as_deref().unwrap_or_default();
        assert!(error.contains("550") && error.contains("Recipient address rejected"), "the server's reply: {error}");
    }
    assert!(others.iter().all(|(_, status, _)| status == "done"), "{others:?}");
    let messages = smtp.messages();
    assert_eq!((sent, messages.len()), (others.len(), others.len()), "each other email is sent once");
    assert!(messages.iter().all(|m| !m.contains(&format!("To: {refused}"))));
    let mut ids: Vec<&str> = messages.iter().filter_map(|m| m.lines().find(|l| l.starts_with("Message-ID:"))).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), messages.len(), "every message has its own Message-ID");

    // Nothing goes out again, not even after every backoff has passed.
    assert_eq!(mailer.run_once().await.unwrap(), 0);
    let next_week: jiff::Timestamp = "2026-11-30T08:00:00Z".parse().unwrap();
    let later = Arc::new(
        Engine::new(engine.store.clone(), Project::load(&crate::root().join("workflows")).unwrap())
            .with_clock(Arc::new(move || next_week)),
    );
    let transport: Box<dyn Transport> = Box::new(SmtpTransport::new(&smtp.config()).unwrap());
    let mailer = Mailer::new(later, Secret::generate(), "http://127.0.0.1:8080", transport).unwrap();
    assert_eq!(mailer.run_once().await.unwrap(), 0);
    assert_eq!(smtp.messages().len(), others.len(), "nothing was sent twice");
}
