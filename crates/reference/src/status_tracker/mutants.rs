//! The status merge as the field wrote it, or nearly.

use crate::store::Store;

use super::{Fields, StatusResult, StatusTracker, TTL, encode, key, merged, optimistic_merge};

/// Read, merge, write back, with no `WATCH` (no compare-and-set): two merges that read the
/// same status each write their own fields over it, and the first writer's fields are lost.
#[derive(Debug, Clone)]
pub struct ReadModifyWrite<S> {
    pub store: S,
}

impl<S: Store> StatusTracker for ReadModifyWrite<S> {
    type Store = S;

    fn store(&self) -> &S {
        &self.store
    }

    async fn merge(&self, video_id: &str, fields: Fields) -> StatusResult<Fields> {
        let key = key(video_id);
        let current = self.store.get(&key).await?;
        let merged = merged(&key, current.as_deref(), &fields)?;
        self.store.set(&key, encode(&merged), Some(TTL)).await?;
        Ok(merged)
    }
}

/// The optimistic merge with the write inside `MULTI` as a plain `SET`, which clears the key's
/// TTL: a status that was ever merged never expires.
#[derive(Debug, Clone)]
pub struct MergeWithoutTtl<S> {
    pub store: S,
}

impl<S: Store> StatusTracker for MergeWithoutTtl<S> {
    type Store = S;

    fn store(&self) -> &S {
        &self.store
    }

    async fn merge(&self, video_id: &str, fields: Fields) -> StatusResult<Fields> {
        optimistic_merge(&self.store, video_id, &fields, None).await
    }
}
