//! Outbound webhooks: subscriptions, the events the engine emitted, one delivery per event and
//! subscriber, and the log of every attempt.
//!
//! An `Emit` effect becomes an outbox row in the case's transaction. The fan-out turns that row,
//! in one transaction, into an `events` row (the body every subscriber receives, with a stable
//! id) and a `deliveries` row per matching subscription. Deliveries to one subscriber about one
//! case go out in order: a delivery waits while an older one of the same pair is pending.

use super::{Backend, StoreError, Tx, from_json, to_json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;

/// A webhook subscriber.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub url: String,
    /// `whsec_…`; shown once when created through the API, never listed.
    #[serde(skip_serializing)]
    pub secret: String,
    /// Event types: exact (`task.decided`), a prefix (`task.*`) or everything (`*`).
    pub events: Vec<String>,
    /// Workflow ids; empty is every workflow.
    pub workflows: Vec<String>,
    /// `config` (from beslut.toml) or `api`.
    pub origin: String,
    pub active: bool,
    pub created_at: i64,
}

impl Subscription {
    /// True when this subscriber wants `event` of `workflow`.
    pub fn wants(&self, event: &str, workflow: Option<&str>) -> bool {
        let type_ok = self
            .events
            .iter()
            .any(|p| p == "*" || p == event || p.strip_suffix('*').is_some_and(|prefix| event.starts_with(prefix)));
        let workflow_ok = self.workflows.is_empty() || workflow.is_some_and(|w| self.workflows.iter().any(|x| x == w));
        type_ok && workflow_ok
    }
}

fn subscription(r: &sqlx::any::AnyRow) -> Result<Subscription, StoreError> {
    Ok(Subscription {
        id: r.get(0),
        url: r.get(1),
        secret: r.get(2),
        events: from_json(&r.get::<String, _>(3))?,
        workflows: from_json(&r.get::<String, _>(4))?,
        origin: r.get(5),
        active: r.get::<i64, _>(6) != 0,
        created_at: r.get(7),
    })
}

macro_rules! subscription_columns {
    () => {
        "id, url, secret, events, workflows, origin, active, created_at"
    };
}

pub async fn subscriptions(pool: &sqlx::AnyPool) -> Result<Vec<Subscription>, StoreError> {
    let sql =
        concat!("SELECT ", subscription_columns!(), " FROM subscriptions WHERE active = 1 ORDER BY created_at, id");
    sqlx::query(sql).fetch_all(pool).await?.iter().map(subscription).collect()
}

pub async fn subscription_by_id(pool: &sqlx::AnyPool, id: &str) -> Result<Option<Subscription>, StoreError> {
    let sql = concat!("SELECT ", subscription_columns!(), " FROM subscriptions WHERE id = $1");
    sqlx::query(sql).bind(id).fetch_optional(pool).await?.as_ref().map(subscription).transpose()
}

/// Inserts or replaces a subscription.
pub async fn save_subscription(tx: &mut Tx, s: &Subscription) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO subscriptions (id, url, secret, events, workflows, origin, active, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET url = excluded.url, \
         secret = excluded.secret, events = excluded.events, workflows = excluded.workflows, active = excluded.active",
    )
    .bind(&s.id)
    .bind(&s.url)
    .bind(&s.secret)
    .bind(to_json(&s.events))
    .bind(to_json(&s.workflows))
    .bind(&s.origin)
    .bind(i64::from(s.active))
    .bind(s.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Makes the configured subscriptions exactly `configured`: new ones are added, changed ones
/// updated, and those removed from the file deactivated (their log is kept).
pub async fn sync_configured(tx: &mut Tx, configured: &[Subscription]) -> Result<(), StoreError> {
    sqlx::query("UPDATE subscriptions SET active = 0 WHERE origin = 'config'").execute(&mut **tx).await?;
    for s in configured {
        save_subscription(tx, s).await?;
    }
    cancel_inactive(tx).await
}

/// Deactivates a subscription; its pending deliveries are cancelled, its log kept. False when
/// there is no such active subscription.
pub async fn deactivate(tx: &mut Tx, id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE subscriptions SET active = 0 WHERE id = $1 AND active = 1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    cancel_inactive(tx).await?;
    Ok(done.rows_affected() == 1)
}

async fn cancel_inactive(tx: &mut Tx) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE deliveries SET status = 'cancelled' WHERE status = 'pending' \
         AND subscription_id IN (SELECT id FROM subscriptions WHERE active = 0)",
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An event as every subscriber receives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// RFC 3339.
    pub timestamp: String,
    pub data: Value,
}

/// Records an event and queues a delivery to every active subscriber that wants it. `id_seed`
/// makes the id stable: the same seed gives the same event, recorded once. It waits for any
/// fan-out in progress, so that a case's deliveries become visible in the order of their ids.
pub async fn publish(
    tx: &mut Tx,
    id_seed: &str,
    kind: &str,
    case_id: Option<&str>,
    workflow: Option<&str>,
    data: Value,
    now: i64,
) -> Result<Event, StoreError> {
    let backend =
        if tx.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME { Backend::Postgres } else { Backend::Sqlite };
    hold_fan_out(tx, backend).await?;
    let new = NewEvent { seed: id_seed.into(), kind, case_id, workflow, data };
    Ok(record_events(tx, vec![new], now).await?.remove(0))
}

/// An event to record: [`publish`]'s arguments.
struct NewEvent<'a> {
    seed: String,
    kind: &'a str,
    case_id: Option<&'a str>,
    workflow: Option<&'a str>,
    data: Value,
}

/// Records `events` and queues their deliveries, for a caller that holds the fan-out lock; an
/// event whose id is already recorded is left as it is, with no new deliveries. Three
/// statements however many events: on SQLite each statement is a round trip to the one
/// writer's thread, and the fan-out of a busy minute holds that writer while decisions wait.
async fn record_events(tx: &mut Tx, events: Vec<NewEvent<'_>>, now: i64) -> Result<Vec<Event>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let timestamp = super::from_millis(now)?.to_string();
    let recorded: Vec<Event> = events
        .iter()
        .map(|e| Event {
            id: format!("evt_{}", &hex::encode(Sha256::digest(e.seed.as_bytes()))[..24]),
            kind: e.kind.into(),
            timestamp: timestamp.clone(),
            data: e.data.clone(),
        })
        .collect();
    let sql = super::insert_many(
        "INSERT INTO events (id, type, case_id, workflow, body, created_at)",
        events.len(),
        6,
        "ON CONFLICT (id) DO NOTHING RETURNING id",
    );
    let mut query = sqlx::query(sql);
    for (new, event) in events.iter().zip(&recorded) {
        query =
            query.bind(&event.id).bind(new.kind).bind(new.case_id).bind(new.workflow).bind(to_json(event)).bind(now);
    }
    let inserted: std::collections::HashSet<String> =
        query.fetch_all(&mut **tx).await?.iter().map(|r| r.get(0)).collect();
    if inserted.is_empty() {
        return Ok(recorded);
    }
    let sql = concat!("SELECT ", subscription_columns!(), " FROM subscriptions WHERE active = 1 ORDER BY id");
    let subscribers: Vec<Subscription> =
        sqlx::query(sql).fetch_all(&mut **tx).await?.iter().map(subscription).collect::<Result<_, _>>()?;
    // In the order of the events, so that a case's deliveries get ids in the order it made them.
    let deliveries: Vec<(&str, &str, Option<&str>)> = events
        .iter()
        .zip(&recorded)
        .filter(|(_, event)| inserted.contains(&event.id))
        .flat_map(|(new, event)| {
            let wanting = subscribers.iter().filter(|s| s.wants(new.kind, new.workflow));
            wanting.map(|s| (event.id.as_str(), s.id.as_str(), new.case_id))
        })
        .collect();
    queue_deliveries(tx, &deliveries, now).await?;
    Ok(recorded)
}

/// One `deliveries` row per (event id, subscription id, case id), [`super::ROWS_PER_INSERT`]
/// rows per statement.
async fn queue_deliveries(tx: &mut Tx, rows: &[(&str, &str, Option<&str>)], now: i64) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    // Events times subscribers can be thousands of rows, past the databases' parameter limits.
    let insert = "INSERT INTO deliveries (event_id, subscription_id, case_id, next_attempt_at, created_at)";
    super::insert_chunked(tx, insert, 5, "ON CONFLICT (event_id, subscription_id) DO NOTHING", rows, |query, row| {
        let (event, subscription, case_id) = *row;
        query.bind(event).bind(subscription).bind(case_id).bind(now).bind(now)
    })
    .await
}

/// A delivery claimed for sending, with what is needed to send it.
#[derive(Clone, Debug)]
pub struct DueDelivery {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    pub subscription_id: String,
    pub case_id: Option<String>,
    /// The workflow the event is about, so a report of its failure reaches the same filters.
    pub workflow: Option<String>,
    pub attempts: i64,
    pub created_at: i64,
    pub body: String,
    pub url: String,
    pub secret: String,
}

/// The advisory lock key of the fan-out: "beslut" in ASCII, so that it is recognisable in
/// `pg_locks`.
const FAN_OUT_LOCK: i64 = 0x6265_736c_7574;

/// Turns up to `limit` due `webhook` outbox rows, oldest first, into events and deliveries, and
/// marks them done; returns how many. On PostgreSQL one fan-out runs at a time across all
/// nodes: two at once, each skipping the rows the other holds, could commit a case's later
/// event before its earlier one, and the later one would be sent first.
pub async fn fan_out(tx: &mut Tx, backend: Backend, now: i64, limit: i64) -> Result<usize, StoreError> {
    hold_fan_out(tx, backend).await?;
    // Not leased: they are done when this transaction commits, and no one sees them before.
    let rows = super::effects::due(tx, backend, "webhook", now, limit).await?;
    let events = rows
        .iter()
        .filter_map(|row| match &row.effect {
            crate::runtime::Effect::Emit { event, data } => Some(NewEvent {
                seed: format!("outbox/{}/{}", row.id, row.case_id),
                kind: event,
                case_id: Some(&row.case_id),
                workflow: data.get("workflow").and_then(Value::as_str),
                data: data.clone(),
            }),
            _ => None,
        })
        .collect();
    record_events(tx, events, now).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    super::effects::mark_all_done(tx, &ids).await?;
    Ok(rows.len())
}

/// Waits until no other transaction fans out, and keeps others waiting until this one ends.
async fn hold_fan_out(tx: &mut Tx, backend: Backend) -> Result<(), StoreError> {
    if backend == Backend::Postgres {
        // Released at commit or rollback; SQLite's single writer already serialises this.
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(FAN_OUT_LOCK).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Claims the oldest due delivery whose older siblings (same subscriber, same case) are all
/// settled, and leases it until `lease_until`.
pub async fn claim_delivery(
    tx: &mut Tx,
    backend: Backend,
    now: i64,
    lease_until: i64,
) -> Result<Option<DueDelivery>, StoreError> {
    Ok(claim_deliveries(tx, backend, now, lease_until, 1).await?.pop())
}

/// Claims up to `limit` due deliveries, oldest first, each the oldest unsettled one of its
/// subscriber and case, and leases them until `lease_until`. No two are of the same subscriber
/// and case, so they can be sent at once without breaking the order within a case; and one
/// query serves many sends, since with a backlog it reads every pending row.
pub async fn claim_deliveries(
    tx: &mut Tx,
    backend: Backend,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<DueDelivery>, StoreError> {
    macro_rules! due {
        ($lock:literal) => {
            concat!(
                "SELECT d.id, d.event_id, e.type, d.subscription_id, d.case_id, d.attempts, d.created_at, e.body, s.url, s.secret, e.workflow \
                 FROM deliveries d JOIN events e ON e.id = d.event_id JOIN subscriptions s ON s.id = d.subscription_id \
                 WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND (d.locked_until IS NULL OR d.locked_until < $2) \
                 AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.subscription_id = d.subscription_id \
                 AND o.case_id = d.case_id AND o.status = 'pending' AND o.id < d.id) ORDER BY d.id LIMIT $3",
                $lock
            )
        };
    }
    // SQLite has one writer at a time; PostgreSQL workers skip each other's rows.
    let sql = match backend {
        Backend::Postgres => due!(" FOR UPDATE OF d SKIP LOCKED"),
        Backend::Sqlite => due!(""),
    };
    let rows = sqlx::query(sql).bind(now).bind(now).bind(limit).fetch_all(&mut **tx).await?;
    let claimed: Vec<DueDelivery> = rows
        .iter()
        .map(|r| DueDelivery {
            id: r.get(0),
            event_id: r.get(1),
            event_type: r.get(2),
            subscription_id: r.get(3),
            case_id: r.get(4),
            workflow: r.get(10),
            attempts: r.get(5),
            created_at: r.get(6),
            body: r.get(7),
            url: r.get(8),
            secret: r.get(9),
        })
        .collect();
    if claimed.is_empty() {
        return Ok(claimed);
    }
    let sql = format!(
        "UPDATE deliveries SET locked_until = $1 WHERE id IN ({})",
        super::effects::placeholders(2, claimed.len())
    );
    let mut update = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(lease_until);
    for due in &claimed {
        update = update.bind(due.id);
    }
    update.execute(&mut **tx).await?;
    Ok(claimed)
}

/// What one attempt got back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub attempt: i64,
    pub at: i64,
    pub status_code: Option<i64>,
    /// The first kilobytes of the response body.
    pub response: Option<String>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// How an attempt ends the delivery's current round.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    Delivered,
    RetryAt(i64),
    Dead,
}

/// Logs an attempt and settles the delivery accordingly.
pub async fn record_attempt(tx: &mut Tx, id: i64, attempt: &Attempt, outcome: Outcome) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO delivery_attempts (delivery_id, attempt, at, status_code, response, error, duration_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(attempt.attempt)
    .bind(attempt.at)
    .bind(attempt.status_code)
    .bind(&attempt.response)
    .bind(&attempt.error)
    .bind(attempt.duration_ms)
    .execute(&mut **tx)
    .await?;
    let (status, next) = match outcome {
        Outcome::Delivered => ("done", None),
        Outcome::RetryAt(at) => ("pending", Some(at)),
        Outcome::Dead => ("dead", None),
    };
    let error = attempt.error.clone().or_else(|| attempt.status_code.map(|c| format!("HTTP {c}")));
    sqlx::query(
        "UPDATE deliveries SET status = $1, attempts = $2, next_attempt_at = COALESCE($3, next_attempt_at), \
         locked_until = NULL, last_error = $4 WHERE id = $5",
    )
    .bind(status)
    .bind(attempt.attempt)
    .bind(next)
    .bind(if outcome == Outcome::Delivered { None } else { error })
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A delivery as listed by the API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    pub subscription_id: String,
    pub case_id: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
}

macro_rules! delivery_columns {
    () => {
        "d.id, d.event_id, e.type, d.subscription_id, d.case_id, d.status, d.attempts, d.next_attempt_at, d.last_error, d.created_at"
    };
}

fn delivery_row(r: &sqlx::any::AnyRow) -> Delivery {
    Delivery {
        id: r.get(0),
        event_id: r.get(1),
        event_type: r.get(2),
        subscription_id: r.get(3),
        case_id: r.get(4),
        status: r.get(5),
        attempts: r.get(6),
        next_attempt_at: r.get(7),
        last_error: r.get(8),
        created_at: r.get(9),
    }
}

/// Deliveries, newest first, optionally of one subscription, case or status; `before` pages.
pub async fn deliveries(
    pool: &sqlx::AnyPool,
    subscription: Option<&str>,
    status: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Delivery>, StoreError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM deliveries d JOIN events e ON e.id = d.event_id \
         WHERE (CAST($1 AS TEXT) IS NULL OR d.subscription_id = $2) AND (CAST($3 AS TEXT) IS NULL OR d.status = $4) \
         AND (CAST($5 AS BIGINT) IS NULL OR d.id < $6) \
         ORDER BY d.id DESC LIMIT $7"
    ))
    .bind(subscription)
    .bind(subscription)
    .bind(status)
    .bind(status)
    .bind(before)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(delivery_row).collect())
}

pub async fn attempts(pool: &sqlx::AnyPool, delivery: i64) -> Result<Vec<Attempt>, StoreError> {
    let rows = sqlx::query(
        "SELECT attempt, at, status_code, response, error, duration_ms FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt",
    )
    .bind(delivery)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| Attempt {
            attempt: r.get(0),
            at: r.get(1),
            status_code: r.get(2),
            response: r.get(3),
            error: r.get(4),
            duration_ms: r.get(5),
        })
        .collect())
}

/// Queues a settled (done or dead) delivery to go out again now, with the same event id;
/// false when there is no such delivery or it is still pending.
pub async fn redeliver(tx: &mut Tx, id: i64, now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = $1, locked_until = NULL, created_at = $2 \
         WHERE id = $3 AND status IN ('done', 'dead') \
         AND subscription_id IN (SELECT id FROM subscriptions WHERE active = 1)",
    )
    .bind(now)
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The events of a case, oldest first.
pub async fn events_of(pool: &sqlx::AnyPool, case_id: &str) -> Result<Vec<Event>, StoreError> {
    let rows =
        sqlx::query("SELECT body FROM events WHERE case_id = $1 ORDER BY seq").bind(case_id).fetch_all(pool).await?;
    rows.iter().map(|r| from_json(&r.get::<String, _>(0))).collect()
}

/// Pending deliveries: how many, and the creation time of the oldest (for metrics).
pub async fn backlog(pool: &sqlx::AnyPool) -> Result<(i64, Option<i64>), StoreError> {
    let r = sqlx::query("SELECT COUNT(*), MIN(created_at) FROM deliveries WHERE status = 'pending'")
        .fetch_one(pool)
        .await?;
    Ok((r.get(0), r.get(1)))
}

/// One delivery by id.
pub async fn delivery(pool: &sqlx::AnyPool, id: i64) -> Result<Option<Delivery>, StoreError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.as_ref().map(delivery_row))
}
