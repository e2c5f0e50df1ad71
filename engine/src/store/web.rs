//! Sessions of the web pages, and the figures the process pages show.

use super::{StoreError, Tx};
use sqlx::Row;

/// A signed-in session, as stored (without its token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// A person id, or the address of someone not in the directory.
    pub who: String,
    pub email: String,
    /// How the person signed in: `email-link`, later `oidc` or `saml`.
    pub method: String,
    /// The token every form of this session must carry.
    pub csrf: String,
    pub expires_at: i64,
}

pub async fn insert_session(tx: &mut Tx, hash: &str, s: &Session, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO web_sessions (hash, who, email, method, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(hash)
    .bind(&s.who)
    .bind(&s.email)
    .bind(&s.method)
    .bind(&s.csrf)
    .bind(now)
    .bind(s.expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The live session with this token hash: not ended, not expired.
pub async fn session(pool: &sqlx::AnyPool, hash: &str, now: i64) -> Result<Option<Session>, StoreError> {
    let row = sqlx::query(
        "SELECT who, email, method, csrf, expires_at FROM web_sessions WHERE hash = $1 AND ended_at IS NULL AND expires_at > $2",
    )
    .bind(hash)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| Session { who: r.get(0), email: r.get(1), method: r.get(2), csrf: r.get(3), expires_at: r.get(4) }))
}

/// Ends a session (signing out); the row stays as a record of when.
pub async fn end_session(tx: &mut Tx, hash: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE web_sessions SET ended_at = $1 WHERE hash = $2 AND ended_at IS NULL")
        .bind(now)
        .bind(hash)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Queues an email that is already rendered and archived, such as a sign-in link: the mailer
/// finds it in `mail_log` and sends exactly that, with retries like any other email.
pub async fn queue_prepared(
    tx: &mut Tx,
    effect: &crate::runtime::Effect,
    mail: &super::mail::LoggedMail,
    now: i64,
) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "INSERT INTO outbox (case_id, kind, payload, created_at, next_attempt_at) VALUES ($1, 'email', $2, $3, $4) RETURNING id",
    )
    .bind(&mail.case_id)
    .bind(super::to_json(effect))
    .bind(now)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    let id: i64 = row.get(0);
    let logged = super::mail::LoggedMail { outbox_id: id, ..mail.clone() };
    super::mail::log_mail(tx, &logged, now).await?;
    Ok(id)
}

/// When each case entered each state, oldest first per case: `(case_id, state, at)` for the
/// cases of `workflow`, read from the audit trail. The process pages turn it into time spent.
pub async fn state_entries(pool: &sqlx::AnyPool, workflow: &str) -> Result<Vec<(String, String, i64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT a.case_id, a.detail, a.at FROM audit a JOIN cases c ON c.id = a.case_id \
         WHERE c.workflow = $1 AND a.what = 'state.entered' ORDER BY a.case_id, a.seq",
    )
    .bind(workflow)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let detail: String = r.get(1);
            let value: serde_json::Value = serde_json::from_str(&detail).ok()?;
            let state = value.get("state")?.as_str()?.to_string();
            Some((r.get(0), state, r.get(2)))
        })
        .collect())
}

/// True when `who` (a person id or address) started the case or was given one of its tasks.
pub async fn involved(pool: &sqlx::AnyPool, case_id: &str, who: &str) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT 1 FROM case_people WHERE case_id = $1 AND who = $2")
        .bind(case_id)
        .bind(who.to_lowercase())
        .fetch_optional(pool)
        .await?;
    Ok(row.is_some())
}

/// The text of a stored workflow version.
pub async fn version_source(pool: &sqlx::AnyPool, workflow: &str, hash: &str) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT source FROM workflow_versions WHERE workflow = $1 AND hash = $2")
        .bind(workflow)
        .bind(hash)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// How many cases of `workflow` run on each version: (hash, cases).
pub async fn cases_per_version(pool: &sqlx::AnyPool, workflow: &str) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = sqlx::query("SELECT definition_hash, COUNT(*) FROM cases WHERE workflow = $1 GROUP BY definition_hash")
        .bind(workflow)
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
