//! Delivery of outbound webhooks and external calls from the outbox.
//!
//! - Events: each `webhook` outbox row is fanned out, in one transaction, into an event and
//!   one delivery per subscriber ([`beslut_engine::store::hooks`]). A delivery is leased, sent
//!   outside any transaction, and its attempt logged; failures are retried with exponential
//!   backoff and jitter for at least 24 hours, then the delivery is `dead` and a
//!   `delivery.failed` event goes to the other subscribers. A crash between sending and logging
//!   sends the same event (same `webhook-id`) again: delivery is at least once, and receivers
//!   deduplicate by id.
//! - Calls: each `call` outbox row is sent with `Idempotency-Key: <request id>`; the answer
//!   is applied to the case as `CallAnswered`, which the core accepts once per request.

use crate::links::{self, Secret};
use crate::webhooks::WebhookSecret;
use beslut_engine::runtime::{Channel, Command, Effect};
use beslut_engine::service::{Engine, Error};
use beslut_engine::store::hooks::{self, Attempt, DueDelivery, Outcome};
use beslut_engine::store::{StoreError, effects, millis};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one HTTP attempt may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a worker holds a delivery while sending it.
const LEASE_MS: i64 = 60_000;
/// Deliveries claimed together and sent at once, each to a different subscriber or about a
/// different case.
const SENDING_AT_ONCE: i64 = 16;
/// `webhook` outbox rows turned into events in one transaction.
const FAN_OUT_BATCH: i64 = 64;
/// Deliveries are retried at least this long after the event.
const RETRY_FOR_MS: i64 = 24 * 3_600_000;
/// How much of a response body the log keeps.
const LOGGED_BODY: usize = 2_000;

/// Sends events to subscribers and calls to external systems.
pub struct Deliverer {
    engine: Arc<Engine>,
    client: reqwest::Client,
    secret: Secret,
    base_url: String,
}

/// Why a round of delivery stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error(transparent)]
    Engine(#[from] Error),
    #[error("the HTTP client cannot be built: {0}")]
    Client(String),
}

impl From<StoreError> for DeliverError {
    fn from(e: StoreError) -> DeliverError {
        DeliverError::Engine(e.into())
    }
}

impl Deliverer {
    /// `secret` signs the callback addresses of calls; `base_url` is the server's public address.
    pub fn new(engine: Arc<Engine>, secret: Secret, base_url: &str) -> Result<Deliverer, DeliverError> {
        let client = client(REQUEST_TIMEOUT)?;
        Ok(Deliverer { engine, client, secret, base_url: base_url.trim_end_matches('/').into() })
    }

    /// The same deliverer giving up on an attempt after `timeout` instead of 15 s.
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Deliverer, DeliverError> {
        self.client = client(timeout)?;
        Ok(self)
    }

    /// Fans out new events, sends every due delivery and call; returns how many were settled.
    pub async fn run_once(&self) -> Result<usize, DeliverError> {
        self.run_until(&|| false).await
    }

    /// As [`Deliverer::run_once`], but stops after the delivery or call in hand when `stop`
    /// says so: a node shutting down does not work through a backlog first.
    pub async fn run_until(&self, stop: &(dyn Fn() -> bool + Sync)) -> Result<usize, DeliverError> {
        let mut settled = self.fan_out().await?;
        while !stop() {
            let claimed = self.claim().await?;
            if claimed.is_empty() {
                break;
            }
            // Each of a different subscriber or case: their order does not matter.
            let sent = futures_util::future::join_all(claimed.into_iter().map(|due| self.send(due))).await;
            for result in sent {
                result?;
                settled += 1;
            }
        }
        while !stop() && self.call_next().await? {
            settled += 1;
        }
        Ok(settled)
    }

    fn now(&self) -> i64 {
        millis(self.engine.now())
    }

    /// Turns every `webhook` outbox row into an event and its deliveries, a batch of rows per
    /// transaction: one commit per row made the fan-out of a mass of decisions the slowest part
    /// of delivering them.
    async fn fan_out(&self) -> Result<usize, DeliverError> {
        let store = &self.engine.store;
        let mut done = 0;
        loop {
            let mut tx = store.begin_background().await?;
            let now = self.now();
            let n = hooks::fan_out(&mut tx, store.backend, now, FAN_OUT_BATCH).await?;
            if n == 0 {
                break;
            }
            tx.commit().await.map_err(StoreError::from)?;
            done += n;
        }
        Ok(done)
    }

    async fn claim(&self) -> Result<Vec<DueDelivery>, DeliverError> {
        let store = &self.engine.store;
        let mut tx = store.begin_background().await?;
        let now = self.now();
        let due = hooks::claim_deliveries(&mut tx, store.backend, now, now + LEASE_MS, SENDING_AT_ONCE).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(due)
    }

    /// Sends one delivery and settles it: delivered, retried later, or dead.
    async fn send(&self, due: DueDelivery) -> Result<(), DeliverError> {
        let attempt = self.post(&due).await;
        let now = self.now();
        let outcome = if attempt.status_code.is_some_and(|c| (200..300).contains(&c)) {
            Outcome::Delivered
        } else if now - due.created_at >= RETRY_FOR_MS {
            Outcome::Dead
        } else {
            Outcome::RetryAt(now + backoff_ms(due.id, attempt.attempt))
        };
        let mut tx = self.engine.store.begin_background().await?;
        hooks::record_attempt(&mut tx, due.id, &attempt, outcome).await?;
        if outcome == Outcome::Dead && due.event_type != "delivery.failed" {
            let data = json!({
                "delivery_id": due.id, "subscription_id": due.subscription_id, "event_id": due.event_id,
                "event_type": due.event_type, "case_id": due.case_id, "attempts": attempt.attempt,
                "last_error": attempt.error.clone().or(attempt.status_code.map(|c| format!("HTTP {c}"))),
            });
            let seed = format!("failed/{}", due.id);
            let (case, workflow) = (due.case_id.as_deref(), due.workflow.as_deref());
            let failed = hooks::publish(&mut tx, &seed, "delivery.failed", case, workflow, data, now);
            failed.await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    async fn post(&self, due: &DueDelivery) -> Attempt {
        let started = Instant::now();
        let at = self.now();
        let number = due.attempts + 1;
        // The signature's timestamp is the real time: the receiver compares it with its clock.
        let timestamp = jiff::Timestamp::now().as_second();
        let signature = match WebhookSecret::parse(&due.secret) {
            Ok(secret) => secret.sign(&due.event_id, timestamp, due.body.as_bytes()),
            Err(e) => return failed_attempt(number, at, started, format!("subscription secret: {e}")),
        };
        let request = self
            .client
            .post(&due.url)
            .header("content-type", "application/json")
            .header("webhook-id", &due.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(due.body.clone());
        match request.send().await {
            Ok(response) => {
                let status = i64::from(response.status().as_u16());
                let body = response.text().await.unwrap_or_default();
                Attempt {
                    attempt: number,
                    at,
                    status_code: Some(status),
                    response: Some(truncate(&body)),
                    error: None,
                    duration_ms: elapsed_ms(started),
                }
            }
            Err(e) => failed_attempt(number, at, started, describe(&e)),
        }
    }

    /// Carries out the oldest due call; false when there is none.
    async fn call_next(&self) -> Result<bool, DeliverError> {
        let store = &self.engine.store;
        let mut tx = store.begin_background().await?;
        let now = self.now();
        let Some(row) = effects::next_due(&mut tx, store.backend, "call", now).await? else { return Ok(false) };
        effects::lease(&mut tx, row.id, now + LEASE_MS).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let Effect::Call { request_id, method, url, body, retries, wait_for_callback } = &row.effect else {
            self.settle_call(row.id, None).await?;
            return Ok(true);
        };
        let answer = self.request(request_id, method, url, body, *wait_for_callback).await;
        let failed = answer.is_err();
        let attempts_left = i64::from(*retries) > row.attempts;
        let command = match answer {
            Ok(_) if *wait_for_callback => None,
            Ok(response) => Some(Command::CallAnswered { request_id: request_id.clone(), ok: true, response }),
            Err(error) if attempts_left => {
                self.retry_call(row.id, row.attempts, &error).await?;
                return Ok(true);
            }
            Err(error) => Some(Command::CallAnswered {
                request_id: request_id.clone(),
                ok: false,
                response: json!({ "error": error }),
            }),
        };
        if let Some(command) = command {
            self.answer(&row.case_id, command).await?;
        }
        self.settle_call(row.id, failed.then_some("failed after all retries")).await?;
        Ok(true)
    }

    async fn request(
        &self,
        request_id: &str,
        method: &str,
        url: &str,
        body: &Value,
        wait_for_callback: bool,
    ) -> Result<Value, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut request = self.client.request(method, url).header("idempotency-key", request_id).json(body);
        if wait_for_callback {
            let token = links::callback_token(&self.secret, request_id);
            request = request.header("beslut-callback", format!("{}/hooks/call/{token}", self.base_url));
        }
        let response = request.send().await.map_err(|e| describe(&e))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!("HTTP {}: {}", status.as_u16(), truncate(&text)));
        }
        // A body that is not JSON is kept as text, so `store` can still read it.
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Applies a call's answer; an answer the case no longer waits for (already applied
    /// before a crash, or timed out) changes nothing.
    async fn answer(&self, case_id: &str, command: Command) -> Result<(), DeliverError> {
        let origin = serde_json::Map::new();
        match self.engine.execute(case_id, command, Channel::System, origin, None).await {
            Ok(_) | Err(Error::Rejected(_)) | Err(Error::NoSuchCase(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn retry_call(&self, id: i64, attempts: i64, error: &str) -> Result<(), DeliverError> {
        let mut tx = self.engine.store.begin_background().await?;
        let at = self.now() + effects::backoff_ms(attempts);
        effects::mark_failed(&mut tx, id, error, at, false).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    async fn settle_call(&self, id: i64, error: Option<&str>) -> Result<(), DeliverError> {
        let mut tx = self.engine.store.begin_background().await?;
        match error {
            None => effects::mark_done(&mut tx, id).await?,
            Some(error) => effects::mark_failed(&mut tx, id, error, self.now(), true).await?,
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }
}

/// The wait before attempt `attempt + 1`: 5 s, then ×6 per attempt up to 10 hours (5 s, 30 s,
/// 3 min, 18 min, 1.8 h, 10 h, …), with ±20 % jitter so that a receiver coming back is not
/// hit by every retry at once. The jitter is drawn from the delivery id and attempt, so a
/// replay of the same history schedules the same retries.
pub fn backoff_ms(delivery: i64, attempt: i64) -> i64 {
    let exponent = u32::try_from(attempt.clamp(1, 8) - 1).unwrap_or(0);
    let base = (5_000_i64 * 6_i64.pow(exponent)).min(10 * 3_600_000);
    let spread = (delivery.wrapping_mul(2_654_435_761).wrapping_add(attempt * 40_503)).rem_euclid(401) - 200;
    base + base * spread / 1000
}

fn client(timeout: Duration) -> Result<reqwest::Client, DeliverError> {
    // reqwest is built without a TLS provider of its own; use ring, as lettre does. Installing
    // twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("Beslut/", env!("CARGO_PKG_VERSION")))
        // A receiver that redirects is misconfigured; following would resend signed content
        // to an address nobody subscribed.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| DeliverError::Client(e.to_string()))
}

fn failed_attempt(attempt: i64, at: i64, started: Instant, error: String) -> Attempt {
    Attempt { attempt, at, status_code: None, response: None, error: Some(error), duration_ms: elapsed_ms(started) }
}

fn elapsed_ms(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(LOGGED_BODY) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// A sentence for the delivery log.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "no answer in time".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_grows_with_jitter_and_retries_for_a_day() {
        for delivery in [1, 2, 77, 123_456] {
            let mut total = 0;
            let mut attempt = 1;
            while total < 24 * 3_600_000 {
                let wait = backoff_ms(delivery, attempt);
                let base = (5_000_i64 * 6_i64.pow(u32::try_from(attempt.min(8) - 1).unwrap())).min(36_000_000);
                assert!(wait >= base * 8 / 10 && wait <= base * 12 / 10, "attempt {attempt}: {wait} vs {base}");
                total += wait;
                attempt += 1;
            }
            assert!((7..=10).contains(&attempt), "{attempt} attempts to pass a day");
        }
        assert_ne!(backoff_ms(1, 3), backoff_ms(2, 3), "jitter differs between deliveries");
    }
}
