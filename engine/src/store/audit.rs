//! The audit trail: append-only, one SHA-256 hash chain per case. Each entry's hash covers its
//! own fields and the previous entry's hash, so an edited, inserted or deleted entry breaks
//! every hash after it.

use super::{StoreError, Tx, millis, to_json};
use crate::runtime::AuditEntry;
use sha2::{Digest, Sha256};
use sqlx::Row;

/// The hash before a case's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One stored entry.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Stored {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub channel: String,
    pub what: String,
    pub detail: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The fields an entry's hash covers, as stored.
pub struct Hashed<'a> {
    pub case_id: &'a str,
    pub seq: i64,
    pub at: i64,
    pub actor: &'a str,
    pub channel: &'a str,
    pub what: &'a str,
    pub detail: &'a str,
    pub prev: &'a str,
}

/// The hash of an entry: every field, each length-prefixed so fields cannot run together.
pub fn hash(e: &Hashed) -> String {
    let mut h = Sha256::new();
    for part in [e.case_id, &e.seq.to_string(), &e.at.to_string(), e.actor, e.channel, e.what, e.detail, e.prev] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The end of a case's chain, as kept with the case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub seq: i64,
    pub head: String,
}

impl Chain {
    /// Before a case's first entry.
    pub fn start() -> Chain {
        Chain { seq: 0, head: GENESIS.into() }
    }
}

/// An entry ready to store: its fields as stored, and its place in the chain.
pub struct Linked {
    pub(crate) seq: i64,
    pub(crate) at: i64,
    pub(crate) actor: String,
    pub(crate) channel: String,
    pub(crate) what: String,
    pub(crate) detail: String,
    pub(crate) prev: String,
    pub(crate) hash: String,
}

/// Hashes `entries` onto the end of `chain`: the rows to store and the chain's new end.
pub fn link(case_id: &str, chain: &Chain, entries: &[AuditEntry]) -> (Vec<Linked>, Chain) {
    let mut end = chain.clone();
    let mut rows = Vec::with_capacity(entries.len());
    for entry in entries {
        let seq = end.seq + 1;
        let at = millis(entry.at);
        let channel = to_json(&entry.channel).trim_matches('"').to_string();
        let detail = to_json(&entry.detail);
        let fields = Hashed {
            case_id,
            seq,
            at,
            actor: &entry.actor,
            channel: &channel,
            what: &entry.what,
            detail: &detail,
            prev: &end.head,
        };
        let hash = hash(&fields);
        let prev = std::mem::replace(&mut end.head, hash.clone());
        end.seq = seq;
        rows.push(Linked {
            seq,
            at,
            actor: entry.actor.clone(),
            channel,
            what: entry.what.clone(),
            detail,
            prev,
            hash,
        });
    }
    (rows, end)
}

/// Stores linked entries in one statement. The caller moves the chain's end kept with the case
/// in the same transaction, conditional on the end it linked to.
pub async fn insert(tx: &mut Tx, case_id: &str, rows: Vec<Linked>) -> Result<(), StoreError> {
    insert_of_cases(tx, rows.into_iter().map(|r| (case_id.to_string(), r)).collect()).await
}

/// Entries of several cases, a statement per thousand entries.
pub async fn insert_of_cases(tx: &mut Tx, rows: Vec<(String, Linked)>) -> Result<(), StoreError> {
    // Nine values an entry stays well below either database's limit on bound parameters.
    const PER_STATEMENT: usize = 1000;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(PER_STATEMENT).collect();
        let sql = super::insert_many(
            "INSERT INTO audit (case_id, seq, at, actor, channel, what, detail, prev_hash, hash)",
            chunk.len(),
            9,
            "",
        );
        let mut query = sqlx::query(sql);
        for (case_id, r) in chunk {
            query = query
                .bind(case_id)
                .bind(r.seq)
                .bind(r.at)
                .bind(r.actor)
                .bind(r.channel)
                .bind(r.what)
                .bind(r.detail)
                .bind(r.prev)
                .bind(r.hash);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Moves the chain's end kept with the case from `from` to `to`; a conflict when someone else
/// appended in between.
pub async fn advance(tx: &mut Tx, case_id: &str, from: &Chain, to: &Chain) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE cases SET audit_head = $1, audit_seq = $2 WHERE id = $3 AND audit_seq = $4")
        .bind(&to.head)
        .bind(to.seq)
        .bind(case_id)
        .bind(from.seq)
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Conflict);
    }
    Ok(())
}

pub async fn entries(pool: &sqlx::AnyPool, case_id: &str) -> Result<Vec<Stored>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, at, actor, channel, what, detail, prev_hash, hash FROM audit WHERE case_id = $1 ORDER BY seq",
    )
    .bind(case_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Stored {
                seq: r.get(0),
                at: r.get(1),
                actor: r.get(2),
                channel: r.get(3),
                what: r.get(4),
                detail: super::from_json(&r.get::<String, _>(5))?,
                prev_hash: r.get(6),
                hash: r.get(7),
            })
        })
        .collect()
}

/// What is wrong with a chain, at which entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Break {
    pub seq: i64,
    pub problem: String,
}

/// Recomputes a case's chain from its rows; finds edited, reordered, inserted and deleted
/// entries (deleted newest entries are found by comparing with `expected_last`, the head
/// remembered with the case).
pub async fn verify(
    pool: &sqlx::AnyPool,
    case_id: &str,
    expected_last: Option<&str>,
) -> Result<Vec<Break>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, at, actor, channel, what, detail, prev_hash, hash FROM audit WHERE case_id = $1 ORDER BY seq",
    )
    .bind(case_id)
    .fetch_all(pool)
    .await?;
    let mut breaks = Vec::new();
    let mut prev = GENESIS.to_string();
    for (i, r) in rows.iter().enumerate() {
        let seq: i64 = r.get(0);
        let (at, actor, channel, what, detail): (i64, String, String, String, String) =
            (r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
        let (stored_prev, stored_hash): (String, String) = (r.get(6), r.get(7));
        if seq != i as i64 + 1 {
            breaks.push(Break { seq, problem: format!("entry {} is missing", i + 1) });
        }
        if stored_prev != prev {
            breaks.push(Break { seq, problem: "does not follow the entry before it".into() });
        }
        let fields = Hashed {
            case_id,
            seq,
            at,
            actor: &actor,
            channel: &channel,
            what: &what,
            detail: &detail,
            prev: &stored_prev,
        };
        if hash(&fields) != stored_hash {
            breaks.push(Break { seq, problem: "was changed after it was written".into() });
        }
        prev = stored_hash;
    }
    if let Some(expected) = expected_last
        && expected != prev
    {
        breaks.push(Break { seq: rows.len() as i64, problem: "the last entries are missing".into() });
    }
    Ok(breaks)
}

/// The newest hash remembered with the case.
pub async fn remembered_head(pool: &sqlx::AnyPool, case_id: &str) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT audit_head FROM cases WHERE id = $1").bind(case_id).fetch_optional(pool).await?;
    Ok(row.map(|r| r.get(0)))
}
