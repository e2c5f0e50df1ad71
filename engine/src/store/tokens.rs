//! API tokens. Only the SHA-256 of a token is stored; the token itself is shown once, when it
//! is created.

use super::{StoreError, Tx, from_json, to_json};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// A token as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

fn token(r: &sqlx::any::AnyRow) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        id: r.get(0),
        name: r.get(1),
        scopes: from_json(&r.get::<String, _>(2))?,
        created_at: r.get(3),
        last_used_at: r.get(4),
        revoked_at: r.get(5),
    })
}

pub async fn insert(tx: &mut Tx, t: &ApiToken, hash: &str) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO api_tokens (id, name, hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&t.id)
        .bind(&t.name)
        .bind(hash)
        .bind(to_json(&t.scopes))
        .bind(t.created_at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The live (not revoked) token with this hash.
pub async fn by_hash(pool: &sqlx::AnyPool, hash: &str) -> Result<Option<ApiToken>, StoreError> {
    let row = sqlx::query(
        "SELECT id, name, scopes, created_at, last_used_at, revoked_at FROM api_tokens WHERE hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(token).transpose()
}

/// Notes when a token was last used; at most once a minute per token, to spare the database.
pub async fn touch(tx: &mut Tx, id: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
    )
    .bind(now)
    .bind(id)
    .bind(now - 60_000)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn list(pool: &sqlx::AnyPool) -> Result<Vec<ApiToken>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, name, scopes, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY created_at, id",
    )
    .fetch_all(pool)
    .await?;
    rows.iter().map(token).collect()
}

/// Revokes a token by id or name; false when no live token matched.
pub async fn revoke(tx: &mut Tx, id_or_name: &str, now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE (id = $2 OR name = $3) AND revoked_at IS NULL")
        .bind(now)
        .bind(id_or_name)
        .bind(id_or_name)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}
