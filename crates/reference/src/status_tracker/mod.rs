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
//! - an entry disappears 24 h after its last write;
//! - a status merged with [`StatusTracker::merge_capped`] (what a client asks for) stays within
//!   [`MAX_FIELDS`] fields, [`MAX_FIELD_BYTES`] a value and [`MAX_STATUS_BYTES`] in all: the
//!   caps are checked on the merged status inside the compare-and-set loop, so the status
//!   written is exactly the one checked, whatever merges run beside it; a merge that would break
//!   one writes nothing. (The seed's merge took anything: one status once grew to 45 MB.)
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

/// The most fields a capped merge leaves in a status. A processing status is a handful of
/// fields (state, attempt, progress, title, …); 64 leave room for a client's own without
/// letting one status become a store of its own.
pub const MAX_FIELDS: usize = 64;

/// The largest one field's value may be in a capped merge, as JSON: a title, an error message
/// or a small object fit many times over; anything larger is content, not a status.
pub const MAX_FIELD_BYTES: usize = 16 * 1024;

/// The largest a status may be after a capped merge, as stored (its JSON, names included):
/// what one status can cost the store, and every reader of it.
pub const MAX_STATUS_BYTES: usize = 64 * 1024;

/// A status: a JSON object.
pub type Fields = Map<String, Value>;

/// One of the caps of a capped merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// [`MAX_FIELDS`].
    Fields,
    /// [`MAX_FIELD_BYTES`].
    FieldBytes,
    /// [`MAX_STATUS_BYTES`].
    StatusBytes,
}

impl Cap {
    /// The cap's name, as an API reports it.
    pub fn name(self) -> &'static str {
        match self {
            Cap::Fields => "max_fields",
            Cap::FieldBytes => "max_field_bytes",
            Cap::StatusBytes => "max_status_bytes",
        }
    }

    /// The cap's value: fields for [`Cap::Fields`], bytes of JSON for the others.
    pub fn limit(self) -> usize {
        match self {
            Cap::Fields => MAX_FIELDS,
            Cap::FieldBytes => MAX_FIELD_BYTES,
            Cap::StatusBytes => MAX_STATUS_BYTES,
        }
    }

    /// What the cap counts.
    fn unit(self) -> &'static str {
        match self {
            Cap::Fields => "fields",
            Cap::FieldBytes | Cap::StatusBytes => "bytes of JSON",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("status {key} is not a JSON object: {reason}")]
    Corrupt { key: String, reason: String },
    /// A capped merge refused, nothing written: `found` is what the status (or, for
    /// [`Cap::FieldBytes`], the field `what` names) would have been.
    #[error("{what} would be {found} {}, over the cap {} of {}; nothing was merged", .cap.unit(), .cap.name(), .cap.limit())]
    OverCap { cap: Cap, what: String, found: usize },
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
    /// fields; the status after the merge. Not capped: for the fields a service writes itself
    /// (a state, an attempt, a result), whose sizes it chooses.
    fn merge(&self, video_id: &str, fields: Fields) -> impl Future<Output = StatusResult<Fields>> + Send;

    /// [`StatusTracker::merge`] of fields a client chose, within the caps: refused with
    /// [`StatusError::OverCap`], nothing written, when a value is over [`MAX_FIELD_BYTES`] or
    /// the status after the merge would hold more than [`MAX_FIELDS`] fields or
    /// [`MAX_STATUS_BYTES`] bytes.
    fn merge_capped(
        &self,
        video_id: &str,
        fields: Fields,
    ) -> impl Future<Output = StatusResult<Fields>> + Send;

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
        optimistic_merge(&self.store, video_id, &fields, Some(TTL), Caps::None).await
    }

    async fn merge_capped(&self, video_id: &str, fields: Fields) -> StatusResult<Fields> {
        check_request(&fields)?;
        optimistic_merge(&self.store, video_id, &fields, Some(TTL), Caps::Enforced).await
    }
}

pub fn key(video_id: &str) -> String {
    format!("processing_status:{video_id}")
}

/// Whether a merge checks the merged status against the caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caps {
    None,
    Enforced,
}

/// Merges `fields` into the status of `video_id` with a compare-and-set retry loop (WATCH/MULTI
/// on Redis), writing it with `ttl`; the merged status. With [`Caps::Enforced`] each merged
/// status is checked before its compare-and-set, so what is written is exactly what was
/// checked.
pub(crate) async fn optimistic_merge<S: Store>(
    store: &S,
    video_id: &str,
    fields: &Fields,
    ttl: Option<Duration>,
    caps: Caps,
) -> StatusResult<Fields> {
    let key = key(video_id);
    loop {
        let current = store.get(&key).await?;
        let merged = merged(&key, current.as_deref(), fields)?;
        let encoded = encode(&merged);
        if caps == Caps::Enforced {
            check_status(&merged, &encoded)?;
        }
        if store.compare_and_set(&key, current.as_deref(), encoded, ttl).await? {
            return Ok(merged);
        }
    }
}

/// The caps `fields` break whatever status they are merged into, checked before the status
/// is read: a value over [`MAX_FIELD_BYTES`], more fields than a status holds, more bytes than
/// a status holds (the merged status holds every field of `fields`, so its JSON is at least as
/// long as theirs).
pub fn check_request(fields: &Fields) -> StatusResult<()> {
    for (name, value) in fields {
        let bytes = json_len(value);
        if bytes > MAX_FIELD_BYTES {
            return Err(StatusError::OverCap {
                cap: Cap::FieldBytes,
                what: format!("field {name:?}"),
                found: bytes,
            });
        }
    }
    if fields.len() > MAX_FIELDS {
        return Err(over(Cap::Fields, fields.len()));
    }
    let bytes = encode(fields).len();
    if bytes > MAX_STATUS_BYTES {
        return Err(over(Cap::StatusBytes, bytes));
    }
    Ok(())
}

/// The caps the status `merged`, encoded as `encoded`, breaks.
pub(crate) fn check_status(merged: &Fields, encoded: &[u8]) -> StatusResult<()> {
    if merged.len() > MAX_FIELDS {
        return Err(over(Cap::Fields, merged.len()));
    }
    if encoded.len() > MAX_STATUS_BYTES {
        return Err(over(Cap::StatusBytes, encoded.len()));
    }
    Ok(())
}

fn over(cap: Cap, found: usize) -> StatusError {
    StatusError::OverCap { cap, what: "the status".to_owned(), found }
}

/// The length of `value` as JSON.
fn json_len(value: &Value) -> usize {
    serde_json::to_vec(value).map(|bytes| bytes.len()).unwrap_or(usize::MAX)
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
