//! #5 Video get-or-create (seeds 002, 003).
//!
//! One record per (user, external URL), stored as JSON at `video:{user}:{url}`, moving through
//! `pending → processing → completed | failed`, and `failed → pending` when a retry claims it.
//! Creation is one `compare_and_set(key, None, …)` (`INSERT … ON CONFLICT DO NOTHING`); every
//! transition is a `compare_and_set` on the value it was decided from (a conditional
//! `UPDATE … WHERE status = … RETURNING`), retried after re-reading when it loses. So:
//!
//! - of C concurrent requests for a new URL exactly one gets `created` and exactly one gets
//!   `should_process`;
//! - a failed video is re-claimed by exactly one of C concurrent retries;
//! - a completed video is never handed out for processing again;
//! - a transition outside the state machine is refused.

pub mod invariant;
pub mod mutants;
#[cfg(all(feature = "testing", not(loom)))]
pub mod suite;

use std::fmt;
use std::future::Future;

use crate::store::{Store, StoreError};

pub const COMPONENT: &str = "video";

/// Where a video is in its processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Pending,
    Processing,
    Completed,
    Failed,
}

impl Status {
    pub const ALL: [Status; 4] = [Status::Pending, Status::Processing, Status::Completed, Status::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Processing => "processing",
            Status::Completed => "completed",
            Status::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the state machine has an edge from `self` to `to`. `failed → pending` is taken
    /// only by the retry that [`VideoRegistry::get_or_create`] claims.
    pub fn can_become(self, to: Status) -> bool {
        matches!(
            (self, to),
            (Status::Pending, Status::Processing)
                | (Status::Processing, Status::Completed | Status::Failed)
                | (Status::Failed, Status::Pending)
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Video {
    pub user: String,
    pub url: String,
    pub status: Status,
    /// Processing claims so far: 1 at creation, one more per claimed retry.
    pub attempt: u32,
}

impl Video {
    /// A record as created: pending, first attempt.
    pub fn new(user: &str, url: &str) -> Self {
        Self { user: user.to_owned(), url: url.to_owned(), status: Status::Pending, attempt: 1 }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::json!({
            "user": self.user,
            "url": self.url,
            "status": self.status.as_str(),
            "attempt": self.attempt,
        })
        .to_string()
        .into_bytes()
    }

    pub fn decode(key: &str, bytes: &[u8]) -> VideoResult<Self> {
        let corrupt = |reason: String| VideoError::Corrupt { key: key.to_owned(), reason };
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        let text = |field: &str| {
            value.get(field).and_then(|v| v.as_str()).ok_or_else(|| corrupt(format!("no text field {field}")))
        };
        let status = text("status")?;
        let attempt = value.get("attempt").and_then(|v| v.as_u64()).and_then(|n| u32::try_from(n).ok());
        Ok(Self {
            user: text("user")?.to_owned(),
            url: text("url")?.to_owned(),
            status: Status::parse(status).ok_or_else(|| corrupt(format!("unknown status {status}")))?,
            attempt: attempt.ok_or_else(|| corrupt("no attempt count".to_owned()))?,
        })
    }
}

/// The answer to one get-or-create request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetOrCreate {
    pub video: Video,
    /// This request inserted the record.
    pub created: bool,
    /// This request holds the claim to process the video (a new record or a claimed retry).
    pub should_process: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VideoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no video of user {user} for {url}; create it with get_or_create first")]
    NotFound { user: String, url: String },
    #[error("video {key} is {from} and cannot become {to}")]
    IllegalTransition { key: String, from: Status, to: Status },
    #[error("video record {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
}

pub type VideoResult<T> = Result<T, VideoError>;

/// The videos of every user; the correct registry and its mutants all implement it. The
/// mutants differ only in `get_or_create`: transitions are shared.
pub trait VideoRegistry: Send + Sync {
    type Store: Store;

    fn store(&self) -> &Self::Store;

    /// The video of `user` for `url`, created if missing, with whether this caller created it
    /// and whether it holds the claim to process it.
    fn get_or_create(&self, user: &str, url: &str) -> impl Future<Output = VideoResult<GetOrCreate>> + Send;

    fn get(&self, user: &str, url: &str) -> impl Future<Output = VideoResult<Option<Video>>> + Send {
        async move {
            let key = key(user, url);
            match self.store().get(&key).await? {
                None => Ok(None),
                Some(bytes) => Video::decode(&key, &bytes).map(Some),
            }
        }
    }

    /// `pending → processing`.
    fn start(&self, user: &str, url: &str) -> impl Future<Output = VideoResult<Video>> + Send {
        transition(self.store(), user, url, Status::Processing)
    }

    /// `processing → completed`.
    fn complete(&self, user: &str, url: &str) -> impl Future<Output = VideoResult<Video>> + Send {
        transition(self.store(), user, url, Status::Completed)
    }

    /// `processing → failed`.
    fn fail(&self, user: &str, url: &str) -> impl Future<Output = VideoResult<Video>> + Send {
        transition(self.store(), user, url, Status::Failed)
    }
}

/// The correct registry.
#[derive(Debug, Clone)]
pub struct Registry<S> {
    store: S,
}

impl<S: Store> Registry<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }
}

impl<S: Store> VideoRegistry for Registry<S> {
    type Store = S;

    fn store(&self) -> &S {
        &self.store
    }

    async fn get_or_create(&self, user: &str, url: &str) -> VideoResult<GetOrCreate> {
        get_or_create(&self.store, user, url).await
    }
}

/// The store key of `user`'s video for `url`. The user part is escaped so that no two
/// (user, url) pairs share a key.
pub fn key(user: &str, url: &str) -> String {
    format!("video:{}:{url}", user.replace('%', "%25").replace(':', "%3A"))
}

/// Inserts the record unless it exists (`INSERT … ON CONFLICT DO NOTHING`), else answers for
/// the existing one.
pub(crate) async fn get_or_create<S: Store>(store: &S, user: &str, url: &str) -> VideoResult<GetOrCreate> {
    let key = key(user, url);
    let fresh = Video::new(user, url);
    loop {
        if store.compare_and_set(&key, None, fresh.encode(), None).await? {
            return Ok(GetOrCreate { video: fresh, created: true, should_process: true });
        }
        let Some(bytes) = store.get(&key).await? else { continue };
        if let Some(found) = existing(store, &key, &bytes).await? {
            return Ok(found);
        }
    }
}

/// The answer for an existing record read as `bytes`: a failed video is claimed for a retry by
/// a compare-and-set on exactly what was read, anything else is returned as it is. `None` when
/// the claim lost to another writer and the record must be read again.
pub(crate) async fn existing<S: Store>(
    store: &S,
    key: &str,
    bytes: &[u8],
) -> VideoResult<Option<GetOrCreate>> {
    let video = Video::decode(key, bytes)?;
    if video.status != Status::Failed {
        return Ok(Some(GetOrCreate { video, created: false, should_process: false }));
    }
    let claimed = Video { status: Status::Pending, attempt: video.attempt.saturating_add(1), ..video };
    if store.compare_and_set(key, Some(bytes), claimed.encode(), None).await? {
        return Ok(Some(GetOrCreate { video: claimed, created: false, should_process: true }));
    }
    Ok(None)
}

/// Moves the record to `to` if the state machine allows it from its current status; a lost
/// compare-and-set re-reads and decides again.
pub(crate) async fn transition<S: Store>(store: &S, user: &str, url: &str, to: Status) -> VideoResult<Video> {
    let key = key(user, url);
    loop {
        let Some(bytes) = store.get(&key).await? else {
            return Err(VideoError::NotFound { user: user.to_owned(), url: url.to_owned() });
        };
        let current = Video::decode(&key, &bytes)?;
        if !current.status.can_become(to) {
            return Err(VideoError::IllegalTransition { key, from: current.status, to });
        }
        let next = Video { status: to, ..current };
        if store.compare_and_set(&key, Some(&bytes), next.encode(), None).await? {
            return Ok(next);
        }
    }
}
