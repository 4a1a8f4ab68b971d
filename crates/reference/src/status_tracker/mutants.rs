//! The status merge as the field wrote it, or nearly.

use crate::store::Store;

use super::{
    Caps, Fields, StatusResult, StatusTracker, TTL, check_request, check_status, encode, key, merged,
    optimistic_merge,
};

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
        read_modify_write(&self.store, video_id, &fields, Caps::None).await
    }

    async fn merge_capped(&self, video_id: &str, fields: Fields) -> StatusResult<Fields> {
        check_request(&fields)?;
        read_modify_write(&self.store, video_id, &fields, Caps::Enforced).await
    }
}

/// [`ReadModifyWrite`]'s merge: the caps, when enforced, are checked on what it read.
async fn read_modify_write<S: Store>(
    store: &S,
    video_id: &str,
    fields: &Fields,
    caps: Caps,
) -> StatusResult<Fields> {
    let key = key(video_id);
    let current = store.get(&key).await?;
    let merged = merged(&key, current.as_deref(), fields)?;
    let encoded = encode(&merged);
    if caps == Caps::Enforced {
        check_status(&merged, &encoded)?;
    }
    store.set(&key, encoded, Some(TTL)).await?;
    Ok(merged)
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
        optimistic_merge(&self.store, video_id, &fields, None, Caps::None).await
    }

    async fn merge_capped(&self, video_id: &str, fields: Fields) -> StatusResult<Fields> {
        check_request(&fields)?;
        optimistic_merge(&self.store, video_id, &fields, None, Caps::Enforced).await
    }
}

/// The optimistic merge with no cap: a client's merge takes any number of fields of any size,
/// and one status grows without bound (the seed's status took 30 merges of 1.5 MB fields,
/// 45 MB in one key).
#[derive(Debug, Clone)]
pub struct UnboundedStatus<S> {
    pub store: S,
}

impl<S: Store> StatusTracker for UnboundedStatus<S> {
    type Store = S;

    fn store(&self) -> &S {
        &self.store
    }

    async fn merge(&self, video_id: &str, fields: Fields) -> StatusResult<Fields> {
        optimistic_merge(&self.store, video_id, &fields, Some(TTL), Caps::None).await
    }

    async fn merge_capped(&self, video_id: &str, fields: Fields) -> StatusResult<Fields> {
        optimistic_merge(&self.store, video_id, &fields, Some(TTL), Caps::None).await
    }
}
