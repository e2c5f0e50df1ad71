//! HTTP approvals through `beslut serve`: the real server as a child process on SQLite, and
//! 64 clients each on one keep-alive connection POSTing decisions to the JSON API.
//!
//! First a closed loop (each client sends its next decision when the last one is answered):
//! the most decisions per second the server gives. Then an open loop at half that rate, where
//! every request has a moment it is due and its latency counts from then, so a stalled server
//! cannot hide its queue by slowing the clients down (coordinated omission). The closed loop
//! leaves its decisions' emails queued, so a last open loop runs at half the rate the server
//! sustains with them: the closed loop's decisions over its time plus the time it then took to
//! send their emails. Before each loop the bench waits until the server has sent every queued
//! email, so that none measures another's backlog.
//!
//! The server runs on CPU 0 (`taskset`) and the load generator on a thread of its own pinned
//! to CPU 1, when the machine has both, so that the clients do not starve the server.

use super::server::{self, Server, Setup};
use super::{Figure, Target, application, round, step};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Concurrent clients, each with its own connection.
const CLIENTS: usize = 64;

/// An open task to decide: case id, task id and the person holding it.
struct Work {
    case: String,
    task: String,
    holder: String,
}

/// What one loop measured: how many decisions in how long, and each one's latency (ms).
struct Run {
    decisions: usize,
    elapsed: Duration,
    latencies: Vec<f64>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.decisions as f64 / self.elapsed.as_secs_f64().max(1e-6)
    }

    /// Its latency quantiles and size, for a note.
    fn describe(&self) -> String {
        let mut latencies = self.latencies.clone();
        let (p50, p99) = (server::quantile(&mut latencies, 0.5), server::quantile(&mut latencies, 0.99));
        format!("p50 {} ms, p99 {} ms; {} decisions", round(p50), round(p99), self.decisions)
    }
}

/// The server, its API token and the CPU the load generator runs on.
struct Endpoint {
    base: String,
    token: String,
    cpu: Option<usize>,
}

pub(super) async fn figures(options: &super::Options, raw_sqlite: f64) -> Result<Vec<Figure>, String> {
    let decisions = options.http_decisions.max(CLIENTS);
    let folder = options.data_dir.join("http");
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    let pins = server::pinning();
    // The task emails each decision makes go to an SMTP server, as in a real installation.
    let sink = super::email::sink::Sink::start().await?;
    let config = folder.join("beslut.toml");
    let smtp = format!("[smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n", sink.port);
    std::fs::write(&config, smtp).map_err(|e| format!("{}: {e}", config.display()))?;
    let setup =
        Setup { data_dir: &folder, workflows: &options.workflows, config: Some(&config), cpu: pins.map(|p| p.0) };
    let token = server::token(&setup, "start,decide")?;
    let server = Server::start(&setup)?;
    let target = Arc::new(Endpoint { base: server.base.clone(), token, cpu: pins.map(|p| p.1) });

    step(&format!("HTTP: starting {} cases through the API (not timed)", decisions * 2));
    let mut work = start_cases(&target, decisions * 2).await.map_err(|e| with_log(e, &server))?;
    let mut half_work = work.split_off(decisions);
    let sustained_work = half_work.split_off(decisions / 2);

    // Each phase starts with nothing queued: otherwise the emails of the cases just started (or
    // of the closed loop) are still being sent during the next phase, on the same CPU, and the
    // open loop would measure how the server drains a backlog rather than half of its load.
    step("HTTP: waiting until the server has sent the emails of the started cases");
    settle(&target).await.map_err(|e| with_log(e, &server))?;
    step(&format!("HTTP: {CLIENTS} clients deciding as fast as answered, {decisions} decisions"));
    let closed = closed_loop(&target, work).await.map_err(|e| with_log(e, &server))?;
    let queued_after_closed = outbox_depth(&target).await.map_err(|e| with_log(e, &server))?;
    step("HTTP: waiting until the server has sent the emails of those decisions");
    let drained = settle(&target).await.map_err(|e| with_log(e, &server))?;
    let half = open_phase(&target, half_work, closed.rate() / 2.0, "half that rate").await;
    let half = half.map_err(|e| with_log(e, &server))?;
    // The closed loop's rate leaves the decisions' emails queued; the rate the server keeps up
    // with, emails and all, counts the time it then took to send them.
    let sustained = closed.decisions as f64 / (closed.elapsed + drained).as_secs_f64().max(1e-6);
    settle(&target).await.map_err(|e| with_log(e, &server))?;
    let kept_up =
        open_phase(&target, sustained_work, sustained / 2.0, "half the rate sustained with their emails").await;
    let kept_up = kept_up.map_err(|e| with_log(e, &server))?;

    let pinned = match pins {
        Some((s, l)) => format!("server on CPU {s}, load generator on CPU {l}"),
        None => "not pinned (fewer than 2 CPUs or no taskset)".into(),
    };
    let closed_note = format!(
        "{}; {pinned}; the server's task emails ({} in all) go to the bench's SMTP server: \
         {queued_after_closed} emails and events were still queued at the end, sent in the {} s after it, so \
         the rate sustained with the emails is {}/s",
        closed.describe(),
        sink.read(|r| r.messages),
        round(drained.as_secs_f64()),
        round(sustained)
    );
    Ok(vec![
        Figure::new(
            format!("HTTP approvals on SQLite, {CLIENTS} clients (closed loop)"),
            closed.rate(),
            "/s",
            Target::Ratio { name: "SQLite raw".into(), limit: raw_sqlite, ratio: 0.3 },
        )
        .with_note(closed_note),
        half.figure("HTTP approval p99 at half the maximum", Target::AtMost(10.0)),
        kept_up.figure("HTTP approval p99 at half the rate sustained with emails", Target::None),
    ])
}

/// An open loop and what was left queued after it.
struct OpenPhase {
    /// The rate asked for.
    rate: f64,
    run: Run,
    queued_after: u64,
}

impl OpenPhase {
    fn figure(mut self, what: &str, target: Target) -> Figure {
        let what = format!("{what} ({}/s, open loop)", round(self.rate));
        let p99 = server::quantile(&mut self.run.latencies, 0.99);
        let note = format!(
            "p50 {} ms; {} decisions at {}/s achieved; latency from when each was due; {} emails and events \
             queued at the end",
            round(server::quantile(&mut self.run.latencies, 0.5)),
            self.run.decisions,
            round(self.run.rate()),
            self.queued_after
        );
        Figure::new(what, p99, "ms", target).with_note(note)
    }
}

/// Runs `work` as an open loop at `rate` decisions per second.
async fn open_phase(target: &Arc<Endpoint>, work: Vec<Work>, rate: f64, called: &str) -> Result<OpenPhase, String> {
    step(&format!("HTTP: {} decisions at {called}, {}/s", work.len(), round(rate)));
    let run = open_loop(target, work, rate).await?;
    let queued_after = outbox_depth(target).await?;
    Ok(OpenPhase { rate, run, queued_after })
}

/// How long a server may take to send what is queued before a phase.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Waits until the server has nothing left in its outbox; returns how long that took.
async fn settle(target: &Endpoint) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let depth = outbox_depth(target).await?;
        if depth == 0 {
            return Ok(started.elapsed());
        }
        if started.elapsed() > SETTLE_TIMEOUT {
            return Err(format!("the server still had {depth} emails and events queued after {SETTLE_TIMEOUT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Emails and events the server has yet to send or fan out, from its `/metrics`.
async fn outbox_depth(target: &Endpoint) -> Result<u64, String> {
    let url = format!("{}/metrics", target.base);
    let text = reqwest::get(&url)
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("GET {url}: {e}"))?
        .text()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("beslut_outbox_depth{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

/// An error with the end of the server's log, which usually says why.
fn with_log(error: String, server: &Server) -> String {
    format!("{error}\nthe server's log ends:\n{}", server.log_tail())
}

/// A client with one keep-alive HTTP/1.1 connection.
fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// [`CLIENTS`] clients, each with its connection open, made before a loop's clock starts:
/// building a client and opening its connection take the load generator a few milliseconds
/// each, and in the open loop that time was counted as the server's (measured: the first
/// 0.4 s of decisions answered 150–325 ms late, 7% of the loop, hence its p99).
async fn connect(target: &Endpoint) -> Result<Vec<reqwest::Client>, String> {
    let url = format!("{}/healthz", target.base);
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let client = client()?;
        client.get(&url).send().await.and_then(|r| r.error_for_status()).map_err(|e| format!("GET {url}: {e}"))?;
        clients.push(client);
    }
    Ok(clients)
}

/// POSTs `body` as JSON with the token; the answer's JSON when the status is `expected`.
async fn post(
    client: &reqwest::Client,
    target: &Endpoint,
    path: &str,
    body: &Value,
    expected: u16,
) -> Result<Value, String> {
    let url = format!("{}{path}", target.base);
    let response = client
        .post(&url)
        .bearer_auth(&target.token)
        .json(body)
        .send()
        .await
        .map_err(|e| format!("POST {path}: {e}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| format!("POST {path}: reading the answer: {e}"))?;
    if status != expected {
        return Err(format!("POST {path} answered {status}, not {expected}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("POST {path}: the answer is not JSON ({e}): {text}"))
}

/// Starts `count` funding applications from `CLIENTS` clients; returns each one's first task.
async fn start_cases(target: &Arc<Endpoint>, count: usize) -> Result<Vec<Work>, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let endpoint = target.clone();
    server::on_cpu(target.cpu, async move {
        let body = json!({ "workflow": "finansieringsansokan", "started_by": "tomas-lindberg", "data": application() });
        let body = Arc::new(body);
        let mut clients = tokio::task::JoinSet::new();
        for _ in 0..CLIENTS {
            let (target, next, body, client) = (endpoint.clone(), next.clone(), body.clone(), client()?);
            clients.spawn(async move {
                let mut started = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    let case = post(&client, &target, "/api/v1/cases", &body, 201).await?;
                    started.push(first_task(&case)?);
                }
                Ok::<_, String>(started)
            });
        }
        let mut all = Vec::with_capacity(count);
        while let Some(done) = clients.join_next().await {
            all.extend(done.map_err(|e| e.to_string())??);
        }
        Ok(all)
    })
    .await
}

/// The first open task of a case as the API shows it, and its first holder.
fn first_task(case: &Value) -> Result<Work, String> {
    let task = &case["open_tasks"][0];
    let holder = task["assignees"][0]["party"]["person"].as_str();
    match (case["id"].as_str(), task["task_id"].as_str(), holder) {
        (Some(case), Some(task), Some(holder)) => {
            Ok(Work { case: case.into(), task: task.into(), holder: holder.into() })
        }
        _ => Err(format!("the started case has no open task held by a person: {case}")),
    }
}

/// Sends one decision; returns its latency in ms counted from `since`.
async fn decide(client: &reqwest::Client, target: &Endpoint, work: &Work, since: Instant) -> Result<f64, String> {
    let path = format!("/api/v1/cases/{}/tasks/{}/decide", work.case, work.task);
    let body = json!({ "as": work.holder, "action": "komplettering", "comment": "Ange kostnaden per år." });
    post(client, target, &path, &body, 200).await?;
    Ok(since.elapsed().as_secs_f64() * 1000.0)
}

/// Every client decides the next task as soon as its last decision is answered.
async fn closed_loop(target: &Arc<Endpoint>, work: Vec<Work>) -> Result<Run, String> {
    let (work, next, endpoint) = (Arc::new(work), Arc::new(AtomicUsize::new(0)), target.clone());
    server::on_cpu(target.cpu, async move {
        let connected = connect(&endpoint).await?;
        let started = Instant::now();
        let mut clients = tokio::task::JoinSet::new();
        for client in connected {
            let (target, work, next) = (endpoint.clone(), work.clone(), next.clone());
            clients.spawn(async move {
                let mut latencies = Vec::new();
                while let Some(w) = work.get(next.fetch_add(1, Ordering::Relaxed)) {
                    latencies.push(decide(&client, &target, w, Instant::now()).await?);
                }
                Ok::<_, String>(latencies)
            });
        }
        collect(clients, work.len(), started).await
    })
    .await
}

/// Decision `i` is due at `i / rate` seconds from the start; client `c` sends decisions c,
/// c + 64, …, each when due (or at once if it is late), and its latency counts from when due.
async fn open_loop(target: &Arc<Endpoint>, work: Vec<Work>, rate: f64) -> Result<Run, String> {
    let (work, endpoint) = (Arc::new(work), target.clone());
    server::on_cpu(target.cpu, async move {
        let connected = connect(&endpoint).await?;
        let started = Instant::now();
        let mut clients = tokio::task::JoinSet::new();
        for (c, client) in connected.into_iter().enumerate() {
            let (target, work) = (endpoint.clone(), work.clone());
            clients.spawn(async move {
                let mut latencies = Vec::new();
                for i in (c..work.len()).step_by(CLIENTS) {
                    let due = started + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                    latencies.push(decide(&client, &target, &work[i], due).await?);
                }
                Ok::<_, String>(latencies)
            });
        }
        collect(clients, work.len(), started).await
    })
    .await
}

/// Every client's latencies, and the time since `started`.
async fn collect(
    mut clients: tokio::task::JoinSet<Result<Vec<f64>, String>>,
    decisions: usize,
    started: Instant,
) -> Result<Run, String> {
    let mut latencies = Vec::with_capacity(decisions);
    while let Some(done) = clients.join_next().await {
        latencies.extend(done.map_err(|e| e.to_string())??);
    }
    Ok(Run { decisions, elapsed: started.elapsed(), latencies })
}
