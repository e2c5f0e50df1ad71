//! The real parts of the fault tests (`nodes.rs`): `beslut serve` nodes as processes sharing one
//! database, a webhook receiver that can go down and come back on its port, a PostgreSQL
//! cluster of the test's own that can be restarted, and clients that send decisions to the
//! nodes in turn and try the next node when one does not answer.

use crate::mail::SmtpServer;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The secret the receiver checks every signature with.
const RECEIVER_SECRET: &str = "whsec_cmVjZWl2ZXItb2YtdGhlLWZhdWx0LXRlc3RzLTAx";

/// The workflow of the load: each `notera` decides the open task and opens a new one in the same
/// state, so a case takes any number of real task decisions, each with a task email and events.
/// The deadline's timeout (`klar`) is what the timer test fires.
const WORKFLOW: &str = r#"name: Granskning
series: GR
title: "{{data.rubrik}}"
start: granska
data:
  rubrik: { type: text, label: Rubrik, required: true }
states:
  granska:
    type: task
    label: Granska
    assignee: { role: granskare }
    deadline: 1 working day
    on_timeout: { action: klar }
    actions:
      notera: { label: Notera, to: granska }
      klar: { label: Klar, to: klar }
  klar: { type: end, label: Klar, outcome: completed, notify_starter: false }
"#;

const DIRECTORY: &str = r#"forvaltningar:
  kf: { name: Kommunledningsförvaltningen }
roles:
  granskare: { label: Granskare }
people:
  gun: { name: Gun Granskare, email: gun@kommun.se, roles: [granskare] }
  stina: { name: Stina Start, email: stina@kommun.se }
"#;

/// Where the nodes keep their data.
pub enum Store {
    Postgres(String),
    Sqlite(PathBuf),
}

impl Store {
    /// A fresh database on the PostgreSQL server of `BESLUT_TEST_POSTGRES_URL`; `None` when
    /// `BESLUT_TEST_SKIP_POSTGRES=1`.
    pub async fn fresh_postgres(name: &str) -> Option<Store> {
        if std::env::var("BESLUT_TEST_SKIP_POSTGRES").as_deref() == Ok("1") {
            eprintln!("skipping PostgreSQL: BESLUT_TEST_SKIP_POSTGRES=1");
            return None;
        }
        let base = std::env::var("BESLUT_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        Some(Store::Postgres(fresh_database(&base, name).await))
    }

    fn env(&self) -> (&'static str, String) {
        match self {
            Store::Postgres(url) => ("BESLUT_DATABASE_URL", url.clone()),
            Store::Sqlite(dir) => ("BESLUT_DATA_DIR", dir.display().to_string()),
        }
    }

    /// A pool of the test's own, for checking what the nodes wrote.
    pub async fn pool(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        let url = match self {
            Store::Postgres(url) => url.clone(),
            Store::Sqlite(dir) => format!("sqlite://{}", dir.join("beslut.sqlite3").display()),
        };
        sqlx::AnyPool::connect(&url).await.unwrap_or_else(|e| panic!("the test cannot open {url}: {e}"))
    }
}

/// Creates a database named after `name` and the process on the server at `base` and returns
/// its URL.
pub async fn fresh_database(base: &str, name: &str) -> String {
    sqlx::any::install_default_drivers();
    let unique = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let name = format!("beslut_{name}_{}_{unique}", std::process::id());
    let admin = sqlx::AnyPool::connect(base).await.expect("PostgreSQL (set BESLUT_TEST_SKIP_POSTGRES=1 to skip)");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.unwrap();
    admin.close().await;
    format!("{}/{name}", base.rsplit_once('/').expect("the URL ends with /DATABASE").0)
}

/// The workflows folder, the configuration every node shares, the SMTP server and the webhook
/// receiver they deliver to.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub smtp: SmtpServer,
    pub receiver: Receiver,
    pub store: Store,
    env: Vec<(String, String)>,
}

impl Setup {
    /// Everything the nodes need, around `store` (`None`: a SQLite file in the folder).
    pub async fn new(store: Option<Store>) -> Setup {
        let mut dir = tempfile::tempdir().unwrap();
        if std::env::var_os("BESLUT_FAULT_KEEP").is_some() {
            // For reading the nodes' logs after a failure.
            dir.disable_cleanup(true);
            eprintln!("the nodes' folder is kept: {}", dir.path().display());
        }
        let workflows = dir.path().join("workflows");
        std::fs::create_dir_all(&workflows).unwrap();
        std::fs::write(workflows.join("directory.yaml"), DIRECTORY).unwrap();
        std::fs::write(workflows.join("granskning.yaml"), WORKFLOW).unwrap();
        let smtp = SmtpServer::start(dir.path());
        let receiver = Receiver::start().await;
        let config = dir.path().join("beslut.toml");
        std::fs::write(&config, config_file(smtp.port, &receiver.url)).unwrap();
        let store = store.unwrap_or_else(|| Store::Sqlite(dir.path().join("data")));
        let (key, value) = store.env();
        let env = vec![
            ("BESLUT_CONFIG".to_string(), config.display().to_string()),
            ("BESLUT_WORKFLOWS".to_string(), workflows.display().to_string()),
            ("BESLUT_PUBLIC_URL".to_string(), "http://beslut.test".to_string()),
            ("RUST_LOG".to_string(), "info,sqlx=warn".to_string()),
            (key.to_string(), value),
        ];
        Setup { dir, smtp, receiver, store, env }
    }

    /// Starts node number `n`, acting at `now` when given (`BESLUT_NOW`), else on the real clock,
    /// and waits until it listens.
    pub async fn node(&self, n: usize, now: Option<jiff::Timestamp>) -> Node {
        let mut node = self.spawn(n, now);
        node.listening().await;
        node
    }

    /// Starts node number `n` without waiting for it, so that several start at the same moment.
    pub fn spawn(&self, n: usize, now: Option<jiff::Timestamp>) -> Node {
        let mut env = self.env.clone();
        if let Some(now) = now {
            env.push(("BESLUT_NOW".into(), now.to_string()));
        }
        Node::spawn(&env, &self.dir.path().join(format!("node-{n}.log")))
    }

    /// Runs `beslut ARGS` with the nodes' settings, and returns its standard output.
    pub fn beslut(&self, args: &[&str], now: Option<jiff::Timestamp>) -> String {
        let mut command = Command::new(env!("CARGO_BIN_EXE_beslut"));
        command.args(args).envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(now) = now {
            command.env("BESLUT_NOW", now.to_string());
        }
        let output = command.output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "beslut {args:?}: {text}{}", String::from_utf8_lossy(&output.stderr));
        text
    }

    /// An API token with the scopes the clients need.
    pub fn token(&self) -> String {
        self.beslut(&["token", "create", "fault-tests", "--scopes", "start,decide,read"], None).trim().to_string()
    }
}

fn config_file(smtp_port: u16, receiver: &str) -> String {
    let secret = "7f".repeat(32);
    format!(
        "link_secret = \"{secret}\"\nmail_from = \"beslut@kommun.se\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\n\
         security = \"none\"\n\n[subscriptions.plan]\nurl = \"{receiver}\"\nsecret = \"{RECEIVER_SECRET}\"\n\
         events = [\"task.decided\"]\n"
    )
}

/// A `beslut serve` process on a port of its own choosing; killed when dropped.
pub struct Node {
    child: Child,
    /// `http://127.0.0.1:PORT` once listening.
    pub base: String,
    pub log: PathBuf,
    /// Where this run's lines start in the log, which earlier runs of the node share.
    from: usize,
}

impl Node {
    fn spawn(env: &[(String, String)], log: &Path) -> Node {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let from = file.metadata().unwrap().len() as usize;
        let child = Command::new(env!("CARGO_BIN_EXE_beslut"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("the beslut binary starts");
        Node { child, base: String::new(), log: log.to_path_buf(), from }
    }

    /// Waits for the line in which the node says where it listens.
    pub async fn listening(&mut self) {
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let new = text.get(self.from..).unwrap_or_default();
            if let Some(rest) = new.split("lyssnar på ").nth(1) {
                self.base = rest.split_whitespace().next().unwrap().to_string();
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the node exited ({status}) before listening:\n{new}");
            }
            assert!(started.elapsed() < Duration::from_secs(60), "the node did not listen within a minute:\n{new}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown, no finishing of requests or deliveries in flight.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A webhook receiver over real HTTP that checks every signature and records each request's
/// `webhook-id`; it can be stopped and started again on the same port.
pub struct Receiver {
    pub url: String,
    port: u16,
    /// The `webhook-id` of every verified request, repeats included, in arrival order.
    pub got: Arc<Mutex<Vec<String>>>,
    pub bad_signatures: Arc<AtomicUsize>,
    running: Option<(tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut receiver = Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            port,
            got: Arc::default(),
            bad_signatures: Arc::default(),
            running: None,
        };
        receiver.serve(listener);
        receiver
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let (got, bad) = (self.got.clone(), self.bad_signatures.clone());
        let handler = move |headers: HeaderMap, body: Bytes| {
            let (got, bad) = (got.clone(), bad.clone());
            async move {
                let verifier = standardwebhooks::Webhook::new(RECEIVER_SECRET).unwrap();
                if verifier.verify(&body, &headers).is_err() {
                    bad.fetch_add(1, Ordering::SeqCst);
                    return StatusCode::UNAUTHORIZED;
                }
                let id = headers["webhook-id"].to_str().unwrap().to_string();
                got.lock().unwrap().push(id);
                StatusCode::NO_CONTENT
            }
        };
        let app = axum::Router::new().route("/hook", axum::routing::post(handler));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
        });
        self.running = Some((stop, task));
    }

    /// Stops listening and closes every connection: deliveries now fail to connect.
    pub async fn stop(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(());
            task.await.unwrap();
        }
    }

    /// Listens again on the port it had.
    pub async fn restart(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap_or_else(|e| panic!("the receiver cannot listen on {} again: {e}", self.port));
        self.serve(listener);
    }

    /// Each `webhook-id` received, with how many times.
    pub fn received(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for id in self.got.lock().unwrap().iter() {
            *counts.entry(id.clone()).or_insert(0) += 1;
        }
        counts
    }
}

/// A case as a client follows it: its id and the task open now.
#[derive(Clone, Debug)]
pub struct Followed {
    pub id: String,
    pub task: String,
}

/// What the clients saw while deciding.
#[derive(Default)]
pub struct Seen {
    pub acknowledged: AtomicUsize,
    /// Requests that found no node (refused, reset, or cut off by a kill).
    pub unreachable: AtomicUsize,
    /// 503 answers, and how many of them lacked `Retry-After`.
    pub unavailable: AtomicUsize,
    pub without_retry_after: AtomicUsize,
    /// Any other answer than 200 or 503, with its body: each is a failure of the test.
    pub unexpected: Mutex<Vec<String>>,
    /// The slowest answer of all, 503s included.
    pub slowest_ms: AtomicUsize,
}

/// Clients over HTTP: each request goes to the next node in turn, and a request that gets no
/// answer or a 503 goes to the next node with the same idempotency key.
pub struct Clients {
    pub nodes: RwLock<Vec<String>>,
    token: String,
    http: reqwest::Client,
    turn: AtomicUsize,
    pub seen: Seen,
}

/// How long one decision may keep failing before the test gives up on it.
const GIVE_UP: Duration = Duration::from_secs(180);

enum Answer {
    Ok(Value),
    Unavailable,
    Unreachable,
}

impl Clients {
    pub fn new(nodes: Vec<String>, token: String) -> Arc<Clients> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Longer than the pool's acquire timeout (30 s): a node that hangs longer is a failure.
        let http = reqwest::Client::builder().timeout(Duration::from_secs(45)).build().unwrap();
        Arc::new(Clients { nodes: RwLock::new(nodes), token, http, turn: AtomicUsize::new(0), seen: Seen::default() })
    }

    /// Points the clients at a restarted node's new address.
    pub fn replace(&self, old: &str, new: &str) {
        for base in self.nodes.write().unwrap().iter_mut().filter(|b| *b == old) {
            *base = new.to_string();
        }
    }

    /// Starts `n` cases, 16 at a time, and returns them with their first task.
    pub async fn start_cases(self: &Arc<Self>, n: usize) -> Vec<Followed> {
        let mut started = Vec::new();
        for chunk in (0..n).collect::<Vec<_>>().chunks(16) {
            let requests: Vec<_> = chunk
                .iter()
                .map(|i| {
                    let me = self.clone();
                    let data = json!({ "rubrik": format!("Ärende {i}") });
                    let body = json!({ "workflow": "granskning", "started_by": "stina", "data": data });
                    let key = format!("start-{i}");
                    tokio::spawn(async move { me.send("/api/v1/cases".into(), body, key).await })
                })
                .collect();
            for request in requests {
                let case = request.await.unwrap();
                started.push(Followed { id: text(&case["id"]), task: text(&case["open_tasks"][0]["task_id"]) });
            }
        }
        started
    }

    /// `gun` decides `notera` on the case's open task, with the key as comment (so the audit
    /// trail names it); returns the case with its new open task once a node acknowledged.
    pub async fn decide(&self, case: &Followed, key: &str) -> Followed {
        let path = format!("/api/v1/cases/{}/tasks/{}/decide", case.id, case.task);
        let body = json!({ "as": "gun", "action": "notera", "comment": key });
        let after = self.send(path, body, key.to_string()).await;
        self.seen.acknowledged.fetch_add(1, Ordering::SeqCst);
        Followed { id: case.id.clone(), task: text(&after["open_tasks"][0]["task_id"]) }
    }

    /// POSTs until a node answers 200, each attempt to the next node.
    async fn send(&self, path: String, body: Value, key: String) -> Value {
        let started = Instant::now();
        loop {
            let base = {
                let nodes = self.nodes.read().unwrap();
                nodes[self.turn.fetch_add(1, Ordering::SeqCst) % nodes.len()].clone()
            };
            match self.post(&base, &path, &body, &key).await {
                Answer::Ok(value) => return value,
                Answer::Unavailable | Answer::Unreachable => {}
            }
            assert!(started.elapsed() < GIVE_UP, "no node took {path} (key {key}) within {GIVE_UP:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn post(&self, base: &str, path: &str, body: &Value, key: &str) -> Answer {
        let request = self.http.post(format!("{base}{path}")).bearer_auth(&self.token).header("idempotency-key", key);
        let started = Instant::now();
        let response = request.json(body).send().await;
        let took = started.elapsed().as_millis() as usize;
        self.seen.slowest_ms.fetch_max(took, Ordering::SeqCst);
        let Ok(response) = response else {
            self.seen.unreachable.fetch_add(1, Ordering::SeqCst);
            return Answer::Unreachable;
        };
        let status = response.status().as_u16();
        let retry_after = response.headers().contains_key("retry-after");
        let Ok(text) = response.text().await else {
            self.seen.unreachable.fetch_add(1, Ordering::SeqCst);
            return Answer::Unreachable;
        };
        match status {
            200 | 201 => Answer::Ok(serde_json::from_str(&text).unwrap()),
            503 => {
                self.seen.unavailable.fetch_add(1, Ordering::SeqCst);
                if !retry_after {
                    self.seen.without_retry_after.fetch_add(1, Ordering::SeqCst);
                }
                Answer::Unavailable
            }
            _ => {
                self.seen
                    .unexpected
                    .lock()
                    .unwrap()
                    .push(format!("{status} from {base}{path} after {took} ms: {text}"));
                Answer::Unavailable
            }
        }
    }

    /// Makes `per_case` decisions on every case, with `clients` cases decided at a time; returns
    /// the key of every acknowledged decision.
    pub async fn decide_all(self: &Arc<Self>, cases: Vec<Followed>, per_case: usize, clients: usize) -> Vec<String> {
        let mut shares: Vec<Vec<Followed>> = vec![Vec::new(); clients];
        for (i, case) in cases.into_iter().enumerate() {
            shares[i % clients].push(case);
        }
        let tasks: Vec<_> = shares
            .into_iter()
            .map(|share| {
                let me = self.clone();
                tokio::spawn(async move { me.decide_share(share, per_case).await })
            })
            .collect();
        let mut keys = Vec::new();
        for task in tasks {
            keys.extend(task.await.unwrap());
        }
        keys
    }

    async fn decide_share(&self, mut cases: Vec<Followed>, per_case: usize) -> Vec<String> {
        let mut keys = Vec::new();
        for round in 0..per_case {
            for case in cases.iter_mut() {
                let key = format!("{}/{round}", case.id);
                *case = self.decide(case, &key).await;
                keys.push(key);
            }
        }
        keys
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("expected a string, got {value}")).to_string()
}

/// A PostgreSQL cluster of the test's own, in a temporary folder on a free port, so that it can
/// be stopped and started without disturbing the machine's server.
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl PrivatePostgres {
    /// `initdb` and start; as the `postgres` user when the test runs as root (initdb refuses
    /// root). `None` when no PostgreSQL binaries are installed.
    pub fn start() -> Option<PrivatePostgres> {
        let bin = postgres_bin()?;
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status().unwrap();
            assert!(status.success(), "chown of the cluster's folder");
        }
        let data = dir.path().join("data");
        let init = as_postgres(&bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(init.status.success(), "initdb: {}", String::from_utf8_lossy(&init.stderr));
        let port = free_port();
        let cluster = PrivatePostgres { dir, bin, port };
        cluster.pg_ctl(&["start", "-w", "-t", "60"]);
        Some(cluster)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server as an operator restarting it would: fast, aborting every session.
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast", "-w"]);
    }

    pub fn start_again(&self) {
        self.pg_ctl(&["start", "-w", "-t", "60"]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("postgres.log");
        let options = format!("-p {} -c listen_addresses=127.0.0.1 -k {}", self.port, self.dir.path().display());
        let output = as_postgres(&self.bin.join("pg_ctl"))
            .args(args)
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-o", &options])
            .output()
            .unwrap();
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(output.status.success(), "pg_ctl {args:?}: {}\n{log}", String::from_utf8_lossy(&output.stderr));
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_postgres(&self.bin.join("pg_ctl")).args(["stop", "-m", "immediate", "-D"]).arg(&data).output();
    }
}

/// The newest `/usr/lib/postgresql/*/bin` holding `initdb`.
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A port nobody listens on now. PostgreSQL takes a port number, not a listening socket, so the
/// port is found by binding and releasing it.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
