//! API tokens and scopes.
//!
//! A token is `bsl_` + 32 random bytes in hex, shown once by `beslut token create`; the
//! database keeps its SHA-256. Scopes: `read` (cases, tasks, audit, workflows), `start` (start
//! and withdraw cases), `decide` (decide and delegate tasks on behalf of the person named in
//! the request), `admin` (subscriptions, deliveries, and everything else).

use super::problem::Problem;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use beslut_engine::service::Engine;
use beslut_engine::store::{millis, tokens};
use sha2::Digest;

pub const SCOPES: [&str; 4] = ["read", "start", "decide", "admin"];

/// How stale a token's `last_used_at` may get before a request records its use.
const TOUCH_EVERY_MS: i64 = 60_000;

/// The token a request was made with.
#[derive(Clone, Debug)]
pub struct Caller {
    pub token_id: String,
    pub name: String,
    pub scopes: Vec<String>,
}

impl Caller {
    /// Refuses with 403 unless the token has `scope` (or `admin`).
    pub fn require(&self, scope: &str) -> Result<(), Problem> {
        if self.scopes.iter().any(|s| s == scope || s == "admin") {
            return Ok(());
        }
        Err(Problem::new(403, "insufficient-scope", "The token lacks the scope for this request")
            .detail(format!("this request needs the scope `{scope}`; the token `{}` has {:?}", self.name, self.scopes)))
    }

    /// What the audit trail records of the request's origin.
    pub fn origin(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut origin = serde_json::Map::new();
        origin.insert("api_token".into(), self.name.clone().into());
        origin
    }
}

fn hash(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

impl FromRequestParts<crate::web::AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &crate::web::AppState) -> Result<Caller, Problem> {
        let unauthorized = |detail: &str| {
            Problem::new(401, "unauthorized", "A valid API token is required").detail(format!(
                "{detail}; send `Authorization: Bearer <token>` (create one with `beslut token create`)"
            ))
        };
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim) else {
            return Err(unauthorized("no token was sent"));
        };
        let engine = &state.engine;
        let found = tokens::by_hash(&engine.store.pool, &hash(token)).await.map_err(Problem::store)?;
        let Some(found) = found else { return Err(unauthorized("the token is unknown or revoked")) };
        let now = millis(engine.now());
        // Written at most once a minute, decided here from what was just read: on SQLite even an
        // UPDATE that changes nothing waits for the one write lock.
        if found.last_used_at.is_none_or(|at| at < now - TOUCH_EVERY_MS) {
            let _ = touch(engine, &found.id, now).await;
        }
        Ok(Caller { token_id: found.id, name: found.name, scopes: found.scopes })
    }
}

/// Records a token's use; a failure only leaves `last_used_at` older.
async fn touch(engine: &Engine, id: &str, now: i64) -> Result<(), beslut_engine::store::StoreError> {
    let mut tx = engine.store.begin().await?;
    tokens::touch(&mut tx, id, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Creates a token and returns it; only its hash is stored.
pub async fn create_token(engine: &Engine, name: &str, scopes: &[String]) -> Result<String, String> {
    if let Some(bad) = scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
        return Err(format!("okänd behörighet {bad}; välj bland {}", SCOPES.join(", ")));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    let token = format!("bsl_{}", hex::encode(bytes));
    let record = tokens::ApiToken {
        id: format!("tok_{}", &hex::encode(sha2::Sha256::digest(token.as_bytes()))[..12]),
        name: name.into(),
        scopes: scopes.to_vec(),
        created_at: millis(engine.now()),
        last_used_at: None,
        revoked_at: None,
    };
    let mut tx = engine.store.begin().await.map_err(|e| e.to_string())?;
    tokens::insert(&mut tx, &record, &hash(&token)).await.map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(token)
}

pub async fn list_tokens(engine: &Engine) -> Result<Vec<tokens::ApiToken>, String> {
    tokens::list(&engine.store.pool).await.map_err(|e| e.to_string())
}

pub async fn revoke_token(engine: &Engine, id_or_name: &str) -> Result<bool, String> {
    let mut tx = engine.store.begin().await.map_err(|e| e.to_string())?;
    let done = tokens::revoke(&mut tx, id_or_name, millis(engine.now())).await.map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(done)
}
