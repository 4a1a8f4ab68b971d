//! #6 Processing-status tracker (seed 003, "In-Memory Processing Status → Distributed State").
//!
//! A video's processing status is a JSON object at `processing_status:{video_id}` that lives
//! 24 h after its last write. `update` replaces it; `merge` sets some of its fields and keeps
//! the others, with optimistic locking (Redis `WATCH`/`MULTI`): read, merge, then
//! `compare_and_set` against exactly what was read, retrying when another writer got in
//! between. Every write gives the key a fresh 24 h TTL. So:
//!
//! - concurrent merges of disjoint fields all survive;
//! - the key always carries a TTL of at most 24 h;
//! - an entry disappears 24 h after its last write.
//!
//! The seed's other variant, a per-process dict behind a lock, is correct inside one process
//! and wrong across instances; it is caught by the network-layer checks against several stack
//! instances, not here.

pub mod invariant;
pub mod mutants;
#[cfg(all(feature = "testing", not(loom)))]
pub mod suite;

use std::future::Future;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::store::{Store, StoreError};

pub const COMPONENT: &str = "status-tracker";

/// How long a status lives after its last write.
pub const TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// A status: a JSON object.
pub type Fields = Map<String, Value>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("status {key} is not a JSON object: {reason}")]
    Corrupt { key: String, reason: String },
}

pub type StatusResult<T> = Result<T, StatusError>;

/// Processing statuses shared by every instance; the correct tracker and its mutants all
/// implement it. The mutants differ only in `merge`.
pub trait StatusTracker: Send + Sync {
    type Store: Store;

    fn store(&self) -> &Self::Store;

    /// Replaces the status of `video_id`.
    fn update(&self, video_id: &str, status: Fields) -> impl Future<Output = StatusResult<()>> + Send {
        async move { Ok(self.store().set(&key(video_id), encode(&status), Some(TTL)).await?) }
    }

    /// Sets `fields` in the status of `video_id` (creating it if missing), keeping its other
    /// fields; the status after the merge.
    fn merge(&self, video_id: &str, fields: Fields) -> impl Future<Output = StatusResult<Fields>> + Send;

    fn get(&self, video_id: &str) -> impl Future<Output = StatusResult<Option<Fields>>> + Send {
        async move {
            let key = key(video_id);
            match self.store().get(&key).await? {
                None => Ok(None),
                Some(bytes) => decode(&key, &bytes).map(Some),
            }
        }
    }
}

/// The correct tracker.
#[derive(Debug, Clone)]
pub struct Tracker<S> {
    store: S,
}

impl<S: Store> Tracker<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }
}

impl<S: Store> StatusTracker for Tracker<S> {
    type Store = S;

    fn store(&self) -> &S {
        &self.store
    }

    async fn merge(&self, video_id: &str, fields: Fields) -> StatusResult<Fields> {
        optimistic_merge(&self.store, video_id, &fields, Some(TTL)).await
    }
}

pub fn key(video_id: &str) -> String {
    format!("processing_status:{video_id}")
}

/// Merges `fields` into the status of `video_id` with a compare-and-set retry loop (WATCH/MULTI
/// on Redis), writing it with `ttl`; the merged status.
pub(crate) async fn optimistic_merge<S: Store>(
    store: &S,
    video_id: &str,
    fields: &Fields,
    ttl: Option<Duration>,
) -> StatusResult<Fields> {
    let key = key(video_id);
    loop {
        let current = store.get(&key).await?;
        let merged = merged(&key, current.as_deref(), fields)?;
        if store.compare_and_set(&key, current.as_deref(), encode(&merged), ttl).await? {
            return Ok(merged);
        }
    }
}

/// The stored status `current` (`None`: missing) with `fields` set over it.
pub(crate) fn merged(key: &str, current: Option<&[u8]>, fields: &Fields) -> StatusResult<Fields> {
    let mut status = current.map(|bytes| decode(key, bytes)).transpose()?.unwrap_or_default();
    status.extend(fields.iter().map(|(name, value)| (name.clone(), value.clone())));
    Ok(status)
}

pub(crate) fn encode(status: &Fields) -> Vec<u8> {
    serde_json::to_vec(status).expect("a JSON map always serializes")
}

pub(crate) fn decode(key: &str, bytes: &[u8]) -> StatusResult<Fields> {
    serde_json::from_slice(bytes)
        .map_err(|e| StatusError::Corrupt { key: key.to_owned(), reason: e.to_string() })
}
