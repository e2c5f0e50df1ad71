//! Link tokens and the log of rendered emails.

use super::{StoreError, Tx};
use sqlx::Row;

/// A link token as stored (without the token itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredLink {
    pub purpose: String,
    pub case_id: String,
    pub task_id: String,
    pub recipient: String,
    pub action: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

pub async fn insert_link(
    tx: &mut Tx,
    hash: &str,
    link: &StoredLink,
    created_at: i64,
    outbox_id: Option<i64>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO link_tokens (hash, purpose, case_id, task_id, recipient, action, expires_at, created_at, outbox_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(hash)
    .bind(&link.purpose)
    .bind(&link.case_id)
    .bind(&link.task_id)
    .bind(&link.recipient)
    .bind(&link.action)
    .bind(link.expires_at)
    .bind(created_at)
    .bind(outbox_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn link(pool: &sqlx::AnyPool, hash: &str) -> Result<Option<StoredLink>, StoreError> {
    let row = sqlx::query(
        "SELECT purpose, case_id, task_id, recipient, action, expires_at, used_at FROM link_tokens WHERE hash = $1",
    )
    .bind(hash)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| StoredLink {
        purpose: r.get(0),
        case_id: r.get(1),
        task_id: r.get(2),
        recipient: r.get(3),
        action: r.get(4),
        expires_at: r.get(5),
        used_at: r.get(6),
    }))
}

/// Marks a token used; false when it was used already (a second click, another tab).
pub async fn use_link(tx: &mut Tx, hash: &str, at: i64) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE link_tokens SET used_at = $1 WHERE hash = $2 AND used_at IS NULL")
        .bind(at)
        .bind(hash)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A rendered email.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LoggedMail {
    pub outbox_id: i64,
    pub case_id: String,
    pub message_id: String,
    pub recipient: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// The decision links in the email, as JSON `[{"label": …, "url": …}]`.
    pub links: String,
    pub sent_at: Option<i64>,
}

pub async fn log_mail(tx: &mut Tx, mail: &LoggedMail, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO mail_log (outbox_id, case_id, message_id, recipient, subject, text_body, html_body, links, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(mail.outbox_id)
    .bind(&mail.case_id)
    .bind(&mail.message_id)
    .bind(&mail.recipient)
    .bind(&mail.subject)
    .bind(&mail.text)
    .bind(mail.html.as_deref())
    .bind(&mail.links)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn logged(r: &sqlx::any::AnyRow) -> LoggedMail {
    LoggedMail {
        outbox_id: r.get(0),
        case_id: r.get(1),
        message_id: r.get(2),
        recipient: r.get(3),
        subject: r.get(4),
        text: r.get(5),
        html: r.get(6),
        links: r.get(7),
        sent_at: r.get(8),
    }
}

/// The columns [`logged`] reads, from [`MAIL_FROM`].
const MAIL_COLUMNS: &str =
    "m.outbox_id, m.case_id, m.message_id, m.recipient, m.subject, m.text_body, m.html_body, m.links, s.sent_at";
/// An archived email and, once it has gone, when.
const MAIL_FROM: &str = "mail_log m LEFT JOIN mail_sent s ON s.outbox_id = m.outbox_id";

pub async fn logged_mail(tx: &mut Tx, outbox_id: i64) -> Result<Option<LoggedMail>, StoreError> {
    let row =
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {MAIL_COLUMNS} FROM {MAIL_FROM} WHERE m.outbox_id = $1")))
            .bind(outbox_id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row.as_ref().map(logged))
}

/// The newest emails, for the development mailbox page and for case pages.
pub async fn recent(pool: &sqlx::AnyPool, case_id: Option<&str>, limit: i64) -> Result<Vec<LoggedMail>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MAIL_COLUMNS} FROM {MAIL_FROM} WHERE ($1 = '' OR m.case_id = $1) ORDER BY m.outbox_id DESC LIMIT $2"
    )))
    .bind(case_id.unwrap_or(""))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(logged).collect())
}

/// The archived messages of a batch of outbox rows, by row id; rows not rendered yet are
/// missing.
pub async fn logged_mails(
    tx: &mut Tx,
    outbox_ids: &[i64],
) -> Result<std::collections::HashMap<i64, LoggedMail>, StoreError> {
    if outbox_ids.is_empty() {
        return Ok(Default::default());
    }
    let sql = format!(
        "SELECT {MAIL_COLUMNS} FROM {MAIL_FROM} WHERE m.outbox_id IN ({})",
        super::effects::placeholders(1, outbox_ids.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in outbox_ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(&mut **tx).await?;
    Ok(rows.iter().map(logged).map(|m| (m.outbox_id, m)).collect())
}

/// Marks every message of `outbox_ids` sent at `at`. A message sent again (after a crash
/// between sending and marking) keeps the later time.
pub async fn mark_all_sent(tx: &mut Tx, outbox_ids: &[i64], at: i64) -> Result<(), StoreError> {
    let rows: Vec<(i64, i64)> = outbox_ids.iter().map(|id| (*id, at)).collect();
    super::insert_chunked(
        tx,
        "INSERT INTO mail_sent (outbox_id, sent_at)",
        2,
        "ON CONFLICT (outbox_id) DO UPDATE SET sent_at = excluded.sent_at",
        &rows,
        |query, (id, at)| query.bind(*id).bind(*at),
    )
    .await
}

/// A link token to store with [`insert_links`]: the hash of the token, what it allows, and
/// the outbox row of the email it goes out in.
#[derive(Clone, Debug)]
pub struct NewLink {
    pub hash: String,
    pub link: StoredLink,
    pub created_at: i64,
    pub outbox_id: Option<i64>,
}

/// Stores many link tokens with one statement per [`super::ROWS_PER_INSERT`]: a batch of
/// emails costs a few statements rather than one per link.
pub async fn insert_links(tx: &mut Tx, links: &[NewLink]) -> Result<(), StoreError> {
    let insert = "INSERT INTO link_tokens (hash, purpose, case_id, task_id, recipient, action, expires_at, created_at, outbox_id)";
    super::insert_chunked(tx, insert, 9, "", links, |query, l| {
        query
            .bind(l.hash.as_str())
            .bind(l.link.purpose.as_str())
            .bind(l.link.case_id.as_str())
            .bind(l.link.task_id.as_str())
            .bind(l.link.recipient.as_str())
            .bind(l.link.action.as_str())
            .bind(l.link.expires_at)
            .bind(l.created_at)
            .bind(l.outbox_id)
    })
    .await
}

/// Archives many rendered emails, one statement per [`super::ROWS_PER_INSERT`].
pub async fn log_mails(tx: &mut Tx, mails: &[LoggedMail], now: i64) -> Result<(), StoreError> {
    let insert = "INSERT INTO mail_log (outbox_id, case_id, message_id, recipient, subject, text_body, html_body, links, created_at)";
    super::insert_chunked(tx, insert, 9, "", mails, |query, m| {
        query
            .bind(m.outbox_id)
            .bind(m.case_id.as_str())
            .bind(m.message_id.as_str())
            .bind(m.recipient.as_str())
            .bind(m.subject.as_str())
            .bind(m.text.as_str())
            .bind(m.html.as_deref())
            .bind(m.links.as_str())
            .bind(now)
    })
    .await
}
