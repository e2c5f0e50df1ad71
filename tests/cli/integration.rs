//! The integrators' side over real HTTP on loopback: the JSON API, inbound webhooks signed
//! here by hand (HMAC over the spec's content), and outbound webhooks received by a real
//! HTTP server that checks every signature with the independent `standardwebhooks` crate.
//! The workers are driven by the test, on a clock it moves, so retries and dead letters after
//! a day are observed without waiting.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use beslut_engine::project::Project;
use beslut_engine::service::Engine;
use beslut_engine::store::{Store, audit, hooks};
use beslut_notifications::deliver::Deliverer;
use beslut_notifications::links::Secret;
use beslut_notifications::webhooks::WebhookSecret;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SOURCE_SECRET: &str = "whsec_c2VjcmV0LW9mLXRoZS1lLXRqYW5zdC1zb3VyY2UtMDE=";
const RECEIVER_SECRET: &str = "whsec_cmVjZWl2ZXItc2VjcmV0LWZvci10aGUtaXQtcGxhbg==";

/// The server under test (router only) and the workers the test drives.
struct Fixture {
    base: String,
    engine: Arc<Engine>,
    deliverer: Deliverer,
    /// Added to the real time, in ms.
    offset: Arc<AtomicI64>,
    http: reqwest::Client,
    admin: String,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn start() -> Fixture {
        Fixture::start_in(&crate::root().join("workflows")).await
    }

    async fn start_in(workflows: &std::path::Path) -> Fixture {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("data")).await.unwrap();
        let project = Project::load(workflows).unwrap();
        assert!(project.is_valid(), "{}", project.render(beslut_engine::diagnostic::Lang::En));
        let offset = Arc::new(AtomicI64::new(0));
        let shift = offset.clone();
        let clock = Arc::new(move || {
            let now = jiff::Timestamp::now();
            now.checked_add(jiff::SignedDuration::from_millis(shift.load(Ordering::SeqCst))).unwrap_or(now)
        });
        let engine = Arc::new(Engine::new(store, project).with_clock(clock));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let secret = Secret::generate();
        let mut sources = std::collections::BTreeMap::new();
        sources.insert("e-tjanst".to_string(), WebhookSecret::parse(SOURCE_SECRET).unwrap());
        let state = crate::harness::state(&engine, &secret, &base, sources);
        let app = beslut::web::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let deliverer =
            Deliverer::new(engine.clone(), secret, &base).unwrap().with_timeout(Duration::from_millis(700)).unwrap();
        let admin = beslut::api::auth::create_token(&engine, "test-admin", &["admin".into()]).await.unwrap();
        Fixture { base, engine, deliverer, offset, http: reqwest::Client::new(), admin, _dir: dir }
    }

    fn advance(&self, by: Duration) {
        self.offset.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    async fn subscribe(&self, id: &str, url: &str, events: &[&str]) {
        let s = hooks::Subscription {
            id: id.into(),
            url: url.into(),
            secret: RECEIVER_SECRET.into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            workflows: vec![],
            origin: "config".into(),
            active: true,
            created_at: 0,
        };
        let mut tx = self.engine.store.begin().await.unwrap();
        hooks::save_subscription(&mut tx, &s).await.unwrap();
        tx.commit().await.unwrap();
    }

    async fn api(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// POSTs `body` to `path` signed with `secret` as Standard Webhooks says.
    async fn hook(&self, path: &str, id: &str, timestamp: i64, body: &str, secret: &str) -> (u16, Value) {
        let key = base64::engine::general_purpose::STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
        let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", format!("v1,{signature}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn deliver(&self) -> usize {
        self.deliverer.run_once().await.unwrap()
    }
}

fn now_s() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// What the e-service sends for a new proposal.
fn proposal(title: &str) -> String {
    json!({
        "titel": title, "beskrivning": "Ersätter det gamla systemet.", "syfte": "Kortare handläggning.",
        "forvaltning": "kf", "forslagsstallare": "james-okafor", "kostnad": 450000, "tidplan": "Hösten 2027",
        "bruttonytta": 900000, "kostnader": "Licenser", "nyttostruktur": "Tid", "riskanalys": "Migrering",
        "nyttoansvarig": "kristina-andersson", "inskickad_av": "james-okafor"
    })
    .to_string()
}

/// How the receiver answers its next requests.
#[derive(Clone, Copy, Debug)]
enum Reply {
    Ok,
    Fail,
    Slow,
}

/// A real HTTP receiver that verifies every request with the `standardwebhooks` crate.
#[derive(Default)]
struct Inbox {
    script: VecDeque<Reply>,
    /// (webhook-id, event type, data) of each verified request, in arrival order.
    got: Vec<(String, String, Value)>,
    bad_signatures: usize,
}

async fn receiver() -> (String, Arc<Mutex<Inbox>>) {
    let inbox = Arc::new(Mutex::new(Inbox::default()));
    let shared = inbox.clone();
    let handler = move |headers: HeaderMap, body: Bytes| {
        let inbox = shared.clone();
        async move {
            let verifier = standardwebhooks::Webhook::new(RECEIVER_SECRET).unwrap();
            if verifier.verify(&body, &headers).is_err() {
                inbox.lock().unwrap().bad_signatures += 1;
                return StatusCode::UNAUTHORIZED;
            }
            let reply = inbox.lock().unwrap().script.pop_front().unwrap_or(Reply::Ok);
            match reply {
                Reply::Fail => return StatusCode::INTERNAL_SERVER_ERROR,
                Reply::Slow => tokio::time::sleep(Duration::from_millis(1500)).await,
                Reply::Ok => {}
            }
            let event: Value = serde_json::from_slice(&body).unwrap();
            let id = headers["webhook-id"].to_str().unwrap().to_string();
            assert_eq!(event["id"], id, "the body carries the same id as the header");
            let kind = event["type"].as_str().unwrap().to_string();
            inbox.lock().unwrap().got.push((id, kind, event["data"].clone()));
            StatusCode::NO_CONTENT
        }
    };
    let app = axum::Router::new().route("/hook", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, inbox)
}

fn types(inbox: &Arc<Mutex<Inbox>>) -> Vec<String> {
    inbox.lock().unwrap().got.iter().map(|(_, t, _)| t.clone()).collect()
}

/// The README's promise: an Ändring av IT case started by webhook, followed by signed events,
/// decided through the API, confirmed by a signal webhook, and seen completed.
#[tokio::test]
async fn an_integrator_starts_follows_and_completes_a_case() {
    let f = Fixture::start().await;
    let (url, inbox) = receiver().await;
    f.subscribe("config:plan", &url, &["*"]).await;
    let (status, started) =
        f.hook("/hooks/start/andring-av-it", "msg_1", now_s(), &proposal("Nytt diarium"), SOURCE_SECRET).await;
    assert_eq!(status, 201, "{started}");
    let case = started["case_id"].as_str().unwrap().to_string();
    let number = started["number"].as_str().unwrap().to_string();
    f.deliver().await;
    assert_eq!(types(&inbox)[..2], ["case.started", "task.assigned"]);

    let token = beslut::api::auth::create_token(&f.engine, "it-plan", &["read".into(), "decide".into()]).await.unwrap();
    let (_, shown) = f.api("GET", &format!("/api/v1/cases/{case}"), Some(&token), None).await;
    let task = shown["open_tasks"][0]["task_id"].as_str().unwrap().to_string();
    let form = json!({ "klassning": "rutin", "lokal_bedomning": "Berett lokalt." });
    let body = json!({ "as": "sara-holm", "action": "klassa", "form": form });
    let (status, after) =
        f.api("POST", &format!("/api/v1/cases/{case}/tasks/{task}/decide"), Some(&token), Some(body)).await;
    assert_eq!(status, 200, "{after}");
    let task = after["open_tasks"][0]["task_id"].as_str().unwrap().to_string();
    let body = json!({ "as": "mats-ekberg", "action": "godkann", "comment": "Ryms i budgeten." });
    let (status, after) =
        f.api("POST", &format!("/api/v1/cases/{case}/tasks/{task}/decide"), Some(&token), Some(body)).await;
    assert_eq!((status, after["state"].as_str()), (200, Some("vanta_plan")), "{after}");

    let signal = json!({ "signal": "it-verksamhetsplan-registrerad", "data": { "id": "VP-2027-001" } }).to_string();
    let key = number.replace(' ', "%20").replace('/', "%2F");
    let (status, answer) = f.hook(&format!("/hooks/signal/{key}"), "msg_2", now_s(), &signal, SOURCE_SECRET).await;
    assert_eq!(status, 200, "{answer}");
    let (_, done) = f.api("GET", &format!("/api/v1/cases/{case}"), Some(&token), None).await;
    assert_eq!((done["status"].as_str(), done["outcome"].as_str()), (Some("closed"), Some("approved")), "{done}");
    assert_eq!(done["data"]["plan_id"], "VP-2027-001");

    f.deliver().await;
    let got = types(&inbox);
    assert_eq!(got.last().map(String::as_str), Some("case.completed"), "{got:?}");
    assert!(got.iter().filter(|t| *t == "task.decided").count() >= 2, "{got:?}");
    assert_eq!(inbox.lock().unwrap().bad_signatures, 0);
    let (status, package) = f.api("GET", &format!("/api/v1/cases/{case}/export"), Some(&token), None).await;
    assert_eq!(status, 200);
    assert_eq!(package["audit"]["chain_intact"], true);
    assert!(package["decisions"].as_array().unwrap().len() >= 2);
}

#[tokio::test]
async fn deliveries_are_retried_in_order_with_the_same_id_then_dead_lettered() {
    let f = Fixture::start().await;
    let (url, inbox) = receiver().await;
    f.subscribe("config:plan", &url, &["case.started", "task.assigned"]).await;
    inbox.lock().unwrap().script.extend([Reply::Fail, Reply::Slow]);
    let (status, _) = f.hook("/hooks/start/andring-av-it", "msg_a", now_s(), &proposal("Ordning"), SOURCE_SECRET).await;
    assert_eq!(status, 201);
    f.deliver().await;
    assert!(types(&inbox).is_empty(), "the first attempt got a 500, and the second event waits behind it");
    f.advance(Duration::from_secs(8));
    f.deliver().await;
    assert!(types(&inbox).is_empty(), "the second attempt timed out");
    f.advance(Duration::from_secs(60));
    f.deliver().await;
    assert_eq!(types(&inbox), ["case.started", "task.assigned"], "in order, once each");
    let log = hooks::deliveries(&f.engine.store.pool, Some("config:plan"), None, None, 10).await.unwrap();
    let first = log.iter().find(|d| d.event_type == "case.started").unwrap();
    let attempts = hooks::attempts(&f.engine.store.pool, first.id).await.unwrap();
    assert_eq!(attempts.iter().map(|a| a.status_code).collect::<Vec<_>>(), [Some(500), None, Some(204)]);
    assert!(attempts[1].error.as_deref().unwrap().contains("no answer"), "{attempts:?}");
    let first_id = inbox.lock().unwrap().got[0].0.clone();
    assert_eq!(first_id, first.event_id, "the retry carried the event's id");

    // A receiver that is gone: retried for a day, then dead, and reported to the others.
    f.subscribe("config:gone", "http://127.0.0.1:9/hook", &["case.started"]).await;
    f.subscribe("config:ops", &url, &["delivery.failed"]).await;
    let (status, _) = f.hook("/hooks/start/andring-av-it", "msg_b", now_s(), &proposal("Borta"), SOURCE_SECRET).await;
    assert_eq!(status, 201);
    for _ in 0..12 {
        f.deliver().await;
        f.advance(Duration::from_secs(6 * 3600));
    }
    f.deliver().await;
    let dead = hooks::deliveries(&f.engine.store.pool, Some("config:gone"), Some("dead"), None, 10).await.unwrap();
    assert_eq!(dead.len(), 1, "dead after a day of retries");
    let tries = hooks::attempts(&f.engine.store.pool, dead[0].id).await.unwrap();
    let span = tries.last().unwrap().at - tries[0].at;
    assert!(span >= 24 * 3_600_000, "retried for at least a day: {tries:?}");
    assert!(tries.iter().all(|t| t.error.as_deref() == Some("could not connect")), "{tries:?}");
    let failed: Vec<Value> = inbox
        .lock()
        .unwrap()
        .got
        .iter()
        .filter(|(_, t, _)| t == "delivery.failed")
        .map(|(_, _, d)| d.clone())
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["subscription_id"], "config:gone");

    // Redelivery through the API sends the same event again.
    let path = format!("/api/v1/deliveries/{}/redeliver", first.id);
    let (status, _) = f.api("POST", &path, Some(&f.admin), None).await;
    assert_eq!(status, 202);
    f.deliver().await;
    let again = inbox.lock().unwrap().got.iter().filter(|(id, _, _)| *id == first.event_id).count();
    assert_eq!(again, 2, "redelivered with the same webhook-id");
}

#[tokio::test]
async fn inbound_webhooks_refuse_expired_replayed_and_tampered_requests() {
    let f = Fixture::start().await;
    let body = proposal("Säkerhet");
    let path = "/hooks/start/andring-av-it";
    let (status, problem) = f.hook(path, "msg_old", now_s() - 301, &body, SOURCE_SECRET).await;
    assert_eq!((status, problem["code"].as_str()), (401, Some("invalid-signature")), "expired: {problem}");
    let other = "whsec_b3RoZXItc291cmNlLXNlY3JldC10aGF0LWlzLXdyb25n";
    let (status, _) = f.hook(path, "msg_x", now_s(), &body, other).await;
    assert_eq!(status, 401, "signed with another secret");
    let signed = |id: &str| {
        let key = base64::engine::general_purpose::STANDARD.decode(SOURCE_SECRET.trim_start_matches("whsec_")).unwrap();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{}.{body}", now_s()).as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    };
    let tampered = f
        .http
        .post(format!("{}{path}", f.base))
        .header("webhook-id", "msg_t")
        .header("webhook-timestamp", now_s().to_string())
        .header("webhook-signature", format!("v1,{}", signed("msg_t")))
        .body(body.replace("Säkerhet", "Säkerhet!"))
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 401, "a changed body");

    let (first, a) = f.hook(path, "msg_once", now_s(), &body, SOURCE_SECRET).await;
    let (second, b) = f.hook(path, "msg_once", now_s(), &body, SOURCE_SECRET).await;
    assert_eq!((first, second), (201, 201));
    assert_eq!(a, b, "a replay is answered with the first result");
    let listed = beslut_engine::store::cases::ids(&f.engine.store.pool).await.unwrap();
    assert_eq!(listed.len(), 1, "and starts nothing more");

    let missing = json!({ "titel": "Utan fält", "inskickad_av": "james-okafor" }).to_string();
    let (status, problem) = f.hook(path, "msg_missing", now_s(), &missing, SOURCE_SECRET).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("bad-payload")), "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("payload.beskrivning"), "{problem}");

    // The signal is delivered once, whatever the retries.
    let case = a["case_id"].as_str().unwrap().to_string();
    let before = audit::entries(&f.engine.store.pool, &case).await.unwrap().len();
    let signal = json!({ "signal": "nothing-waits", "data": {} }).to_string();
    let (status, problem) = f.hook(&format!("/hooks/signal/{case}"), "msg_s", now_s(), &signal, SOURCE_SECRET).await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("not-waiting")));
    assert_eq!(audit::entries(&f.engine.store.pool, &case).await.unwrap().len(), before);
}

#[tokio::test]
async fn the_api_checks_tokens_scopes_and_input_and_pages_with_a_cursor() {
    let f = Fixture::start().await;
    let (status, problem) = f.api("GET", "/api/v1/cases", None, None).await;
    assert_eq!((status, problem["code"].as_str()), (401, Some("unauthorized")));
    let reader = beslut::api::auth::create_token(&f.engine, "reader", &["read".into()]).await.unwrap();
    let starter =
        beslut::api::auth::create_token(&f.engine, "starter", &["start".into(), "read".into()]).await.unwrap();
    let data: Value = serde_json::from_str(&proposal("x")).unwrap();
    let mut data = data.as_object().unwrap().clone();
    data.insert("rubrik".into(), data["titel"].clone());
    for k in ["titel", "inskickad_av"] {
        data.remove(k);
    }
    let start = json!({ "workflow": "andring-av-it", "started_by": "james-okafor", "data": data });
    let (status, problem) = f.api("POST", "/api/v1/cases", Some(&reader), Some(start.clone())).await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("insufficient-scope")));

    let keyed = |key: &str| {
        f.http
            .post(format!("{}/api/v1/cases", f.base))
            .bearer_auth(&starter)
            .header("idempotency-key", key.to_string())
            .json(&start)
    };
    let a: Value = keyed("k1").send().await.unwrap().json().await.unwrap();
    let b: Value = keyed("k1").send().await.unwrap().json().await.unwrap();
    assert_eq!(a["id"], b["id"], "the same key gives the same case");
    for key in ["k2", "k3", "k4"] {
        assert_eq!(keyed(key).send().await.unwrap().status(), 201);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = cursor.as_ref().map_or(String::new(), |c| format!("&cursor={c}"));
        let (status, page) = f.api("GET", &format!("/api/v1/cases?limit=3{query}"), Some(&reader), None).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(page["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4, "every case once across pages: {seen:?}");
    seen.dedup();
    assert_eq!(seen.len(), 4);
    let forvaltning = data["forvaltning"].as_str().unwrap().to_string();
    for (filter, expected) in [(forvaltning.as_str(), 4), ("finns-inte", 0)] {
        let (_, page) = f.api("GET", &format!("/api/v1/cases?forvaltning={filter}"), Some(&reader), None).await;
        assert_eq!(page["items"].as_array().unwrap().len(), expected, "by förvaltning {filter}: {page}");
    }

    let bad = [
        ("GET", "/api/v1/cases?limit=0", None),
        ("GET", "/api/v1/cases?from=igår", None),
        ("GET", "/api/v1/cases?cursor=%%%", None),
        ("POST", "/api/v1/cases", Some(json!({ "workflow": 5 }))),
        ("POST", "/api/v1/cases", Some(json!({ "workflow": "finns-inte", "started_by": "x@y.se", "data": {} }))),
        ("GET", "/api/v1/cases/finns-inte", None),
        ("GET", "/api/v1/nowhere", None),
    ];
    for (method, path, body) in bad {
        let (status, problem) = f.api(method, path, Some(&f.admin), body).await;
        assert!((400..500).contains(&status), "{method} {path}: {status} {problem}");
        assert!(problem["code"].is_string(), "{method} {path}: a problem document: {problem}");
    }
    let (status, problem) =
        f.api("GET", &format!("/api/v1/cases/{}/export", a["id"].as_str().unwrap()), Some(&reader), None).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("case-open")));
    let (status, doc) = f.api("GET", "/api/openapi.json", None, None).await;
    assert_eq!((status, doc["openapi"].as_str().map(|v| v.starts_with("3.1"))), (200, Some(true)));
}

/// A workflow folder with one `call` state that posts to `url`.
fn call_workflow(url: &str, wait_for_callback: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(crate::root().join("workflows/directory.yaml"), dir.path().join("directory.yaml")).unwrap();
    let yaml = format!(
        "name: Registrering\nseries: REG\nstart: registrera\ndata:\n  rubrik: {{ type: text, label: Rubrik, required: true }}\n  \
         diarienummer: {{ type: text, label: Diarienummer }}\nstates:\n  registrera:\n    type: call\n    label: Registrera i diariet\n    \
         request:\n      method: POST\n      url: \"{url}\"\n      body: {{ rubrik: rubrik }}\n    wait_for_callback: {wait_for_callback}\n    \
         retries: 2\n    timeout: 2 days\n    store: {{ diarienummer: response.id }}\n    next: klar\n    on_failure: manuell\n  \
         klar: {{ type: end, label: Registrerad, outcome: completed }}\n  manuell: {{ type: end, label: Manuell registrering, outcome: cancelled }}\n"
    );
    std::fs::write(dir.path().join("registrering.yaml"), yaml).unwrap();
    dir
}

/// A diarium on loopback: answers the scripted statuses, then 200 with an id; records the
/// requests' idempotency keys, callback addresses and bodies.
async fn diarium(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<(String, Option<String>, Value)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(VecDeque::from(statuses)));
    let log = seen.clone();
    let handler = move |headers: HeaderMap, body: Bytes| {
        let (log, script) = (log.clone(), script.clone());
        async move {
            let key = headers["idempotency-key"].to_str().unwrap().to_string();
            let callback = headers.get("beslut-callback").map(|v| v.to_str().unwrap().to_string());
            log.lock().unwrap().push((key, callback, serde_json::from_slice(&body).unwrap()));
            let status = script.lock().unwrap().pop_front().unwrap_or(200);
            (StatusCode::from_u16(status).unwrap(), axum::Json(json!({ "id": "D-2026-17" })))
        }
    };
    let app = axum::Router::new().route("/arenden", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/arenden", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn audit_count(entries: &[audit::Stored], what: &str) -> usize {
    entries.iter().filter(|e| e.what == what).count()
}

#[tokio::test]
async fn a_call_is_retried_with_one_key_and_its_answer_applied_once() {
    let (url, seen) = diarium(vec![503]).await;
    let folder = call_workflow(&url, false);
    let f = Fixture::start_in(folder.path()).await;
    let data = json!({ "rubrik": "Nytt avtal" }).as_object().unwrap().clone();
    let starter = beslut_engine::runtime::assign::party(f.engine.project().directory.person("james-okafor").unwrap());
    let case = f.engine.start("registrering", data, starter, beslut_engine::runtime::Channel::Api, None).await.unwrap();
    f.deliver().await;
    assert_eq!(f.engine.case(&case.id).await.unwrap().state, "registrera", "a 503 is retried later");
    f.advance(Duration::from_secs(120));
    f.deliver().await;
    let done = f.engine.case(&case.id).await.unwrap();
    assert!(!done.is_open());
    assert_eq!((done.state.as_str(), done.data["diarienummer"].as_str()), ("klar", Some("D-2026-17")));
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].0, requests[1].0, "both attempts carry the same Idempotency-Key");
    assert_eq!(requests[0].2, json!({ "rubrik": "Nytt avtal" }));
    let entries = audit::entries(&f.engine.store.pool, &case.id).await.unwrap();
    assert_eq!(audit_count(&entries, "call.answered"), 1);
}

#[tokio::test]
async fn a_call_that_keeps_failing_takes_the_failure_path_and_a_callback_answers_once() {
    let (url, _) = diarium(vec![500, 500, 500]).await;
    let folder = call_workflow(&url, false);
    let f = Fixture::start_in(folder.path()).await;
    let starter = beslut_engine::runtime::assign::party(f.engine.project().directory.person("james-okafor").unwrap());
    let data = json!({ "rubrik": "Trasigt" }).as_object().unwrap().clone();
    let case = f
        .engine
        .start("registrering", data, starter.clone(), beslut_engine::runtime::Channel::Api, None)
        .await
        .unwrap();
    for _ in 0..4 {
        f.deliver().await;
        f.advance(Duration::from_secs(3600));
    }
    let failed = f.engine.case(&case.id).await.unwrap();
    assert_eq!(failed.state, "manuell", "after 1 + 2 retries the call failed");
    let entries = audit::entries(&f.engine.store.pool, &case.id).await.unwrap();
    assert_eq!(audit_count(&entries, "call.failed"), 1);

    let (url, seen) = diarium(vec![]).await;
    let folder = call_workflow(&url, true);
    let f = Fixture::start_in(folder.path()).await;
    let data = json!({ "rubrik": "Med återkoppling" }).as_object().unwrap().clone();
    let case = f.engine.start("registrering", data, starter, beslut_engine::runtime::Channel::Api, None).await.unwrap();
    f.deliver().await;
    assert_eq!(f.engine.case(&case.id).await.unwrap().state, "registrera", "waits for the callback");
    let callback = seen.lock().unwrap()[0].1.clone().expect("a Beslut-Callback address");
    let answer = f.http.post(&callback).json(&json!({ "id": "D-9" })).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let again = f.http.post(&callback).json(&json!({ "id": "D-10" })).send().await.unwrap();
    assert_eq!(again.status(), 409, "a second answer changes nothing");
    let forged = f.http.post(callback.replace("/hooks/call/", "/hooks/call/x")).json(&json!({})).send().await.unwrap();
    assert_eq!(forged.status(), 404);
    let done = f.engine.case(&case.id).await.unwrap();
    assert_eq!((done.state.as_str(), done.data["diarienummer"].as_str()), ("klar", Some("D-9")));
}

#[tokio::test]
async fn a_changed_workflow_file_is_reloaded_and_a_broken_one_keeps_its_last_good_version() {
    let (url, _) = diarium(vec![]).await;
    let folder = call_workflow(&url, false);
    let f = Fixture::start_in(folder.path()).await;
    let file = folder.path().join("registrering.yaml");
    let first = f.engine.current("registrering").unwrap();
    let mut seen = 0;
    assert!(beslut::serve::reload_if_changed(&f.engine, folder.path(), &mut seen), "the first look loads");
    assert!(!beslut::serve::reload_if_changed(&f.engine, folder.path(), &mut seen), "nothing changed");

    let changed = std::fs::read_to_string(&file).unwrap().replace("Registrera i diariet", "Registrera i e-arkivet");
    std::fs::write(&file, &changed).unwrap();
    assert!(beslut::serve::reload_if_changed(&f.engine, folder.path(), &mut seen));
    let second = f.engine.current("registrering").unwrap();
    assert_eq!(second.state("registrera").unwrap().label.sv, "Registrera i e-arkivet");
    assert!(!Arc::ptr_eq(&first, &second));

    std::fs::write(&file, changed.replace("next: klar", "next: klr")).unwrap();
    beslut::serve::reload_if_changed(&f.engine, folder.path(), &mut seen);
    let kept = f.engine.current("registrering").expect("the last good version stays in force");
    assert_eq!(kept.state("registrera").unwrap().label.sv, "Registrera i e-arkivet");
    assert!(f.engine.project().kept_reports.iter().any(|r| r.has_errors()), "and the problem is kept to be shown");

    std::fs::write(folder.path().join("directory.yaml"), "people: [").unwrap();
    std::fs::write(&file, changed.replace("e-arkivet", "arkivet")).unwrap();
    beslut::serve::reload_if_changed(&f.engine, folder.path(), &mut seen);
    let label = f.engine.current("registrering").unwrap().state("registrera").unwrap().label.sv.clone();
    assert_eq!(label, "Registrera i e-arkivet", "a broken directory keeps the whole folder as it was");
    let data = json!({ "rubrik": "Efter omladdning" }).as_object().unwrap().clone();
    let starter = beslut_engine::runtime::assign::party(f.engine.project().directory.person("james-okafor").unwrap());
    assert!(f.engine.start("registrering", data, starter, beslut_engine::runtime::Channel::Api, None).await.is_ok());
}
