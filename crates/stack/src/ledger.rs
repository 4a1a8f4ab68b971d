//! The import ledger: what the import pipeline must not lose when its broker does.
//!
//! The queue (#10) lives in Redis. A Redis restarted without persistence comes back empty: every
//! task queued or in flight is gone, and with only the broker to go by the imports it
//! acknowledged never end. So with the records in PostgreSQL ([`crate::Backends::durable`]),
//! each import's task is written to the ledger there before it is enqueued, and forgotten by the
//! worker that ends it. The broker's epoch is a marker key in Redis, set by the first beat that
//! finds it missing: a Redis that lost its data lost the marker too, and the instance that sets
//! it again re-enqueues every task the ledger holds whose video has not ended (a video ended,
//! gone or on another attempt only has its entry forgotten). A new stack over an empty Redis
//! does the same at its first beat, so imports left unfinished by an earlier stack are taken up.
//!
//! A task driven again may meet a copy the broker still held (enqueued after the restart,
//! before the beat): both run, the video's guarded transitions let one outcome through, and the
//! effect is recorded under the task's identity rather than the delivery's
//! ([`ImportTask::identity`]) in the same durable store, so it is applied once. (Keyed by the
//! delivery's id it could not be: a Redis that comes back empty numbers its tasks from 1 again,
//! and a new task would find an old task's effect under its id.) The statuses and the upstream
//! credential (whose refresh token rotates: the one in the settings is retired after the first
//! refresh) live in that store too.
//!
//! Without PostgreSQL beside Redis there is no ledger: the memory backend loses everything with
//! the process, one server holding both loses them together. The field's way — everything in
//! the broker — is kept as the mutant `task_queue::mutants::BrokerOnly`.

use std::time::Duration;

use reference::store::{Store, StoreResult};
use reference::task_queue::seed;
use reference::video::{Status, VideoRegistry};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::state::AppState;

/// The task a worker processes for an import.
#[derive(Debug, Clone, serde::Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ImportTask {
    pub user: u64,
    pub video: String,
    pub url: String,
    pub attempt: u32,
}

impl ImportTask {
    /// The task's own id — one per video and attempt, whichever delivery carries it: what its
    /// effect is recorded under, so a task enqueued again from the ledger is applied once.
    pub(crate) fn identity(&self) -> u64 {
        let digest = Sha256::new()
            .chain_update(self.user.to_string())
            .chain_update([0])
            .chain_update(&self.video)
            .chain_update([0])
            .chain_update(self.attempt.to_string())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first)
    }
}

/// The broker's epoch marker, in the broker's store.
const EPOCH: &str = "imports:epoch";
/// How long an instance may take to drive the ledger again before another may take over.
const LEASE: Duration = Duration::from_secs(30);
const PREFIX: &str = "import-task:";

fn entry(task: &ImportTask) -> String {
    format!("{PREFIX}{}:{}:{}", task.user, task.video, task.attempt)
}

/// Writes `task` (serialised as `payload`) to the ledger, before it is enqueued.
pub(crate) async fn record(state: &AppState, task: &ImportTask, payload: &[u8]) -> StoreResult<()> {
    if let Some(ledger) = &state.ledger {
        ledger.set(&entry(task), payload.to_vec(), Some(seed::EFFECT_TTL)).await?;
    }
    Ok(())
}

/// Forgets `task`: its video has ended (or the task is stale).
pub(crate) async fn forget(state: &AppState, task: &ImportTask) {
    if let Some(ledger) = &state.ledger
        && let Err(e) = ledger.del(&entry(task)).await
    {
        tracing::warn!(video = %task.video, error = %e, "forgetting an ended import in the ledger failed");
    }
}

/// One beat: when the broker has lost its data since the last one, the first instance to see it
/// enqueues again every import the ledger holds that has not ended. How many, when it did.
///
/// A store error fails the pass: the lease is given back and the next beat (of any instance)
/// drives the whole ledger again — tasks already enqueued are enqueued twice, which the effects
/// keyed by task make harmless — rather than marking the epoch with tasks left behind. An entry
/// whose video record is corrupt can never be processed; it is dropped with an error, not left to
/// fail every pass.
pub(crate) async fn redrive_if_lost(state: &AppState) -> StoreResult<Option<usize>> {
    let Some(ledger) = &state.ledger else { return Ok(None) };
    let kv = &state.backends.kv;
    if kv.get(EPOCH).await?.is_some() {
        return Ok(None);
    }
    let lease = format!("driving:{}", state.settings.instance).into_bytes();
    if !kv.compare_and_set(EPOCH, None, lease.clone(), Some(LEASE)).await? {
        return Ok(None);
    }
    let driven = match drive(state, ledger, &lease).await {
        Ok(driven) => driven,
        Err(e) => {
            if kv.get(EPOCH).await.ok().flatten().as_deref() == Some(lease.as_slice()) {
                let _ = kv.del(EPOCH).await;
            }
            return Err(e);
        }
    };
    let epoch = format!("since:{}", state.settings.instance).into_bytes();
    if !kv.compare_and_set(EPOCH, Some(&lease), epoch, None).await? {
        tracing::warn!(
            "driving the import ledger outlasted its lease: another instance may drive it again (duplicates are applied once)"
        );
    }
    if driven > 0 {
        tracing::warn!(
            driven,
            "the broker lost its data: imports not ended were enqueued again from the ledger"
        );
    }
    Ok(Some(driven))
}

/// Enqueues every ledger task whose video has not ended, forgets the others; renews `lease`
/// as it goes.
async fn drive(state: &AppState, ledger: &crate::backend::AnyStore, lease: &[u8]) -> StoreResult<usize> {
    let kv = &state.backends.kv;
    let mut driven = 0;
    for (i, key) in ledger.keys(&format!("{PREFIX}*")).await?.into_iter().enumerate() {
        if i % 100 == 99 && kv.get(EPOCH).await?.as_deref() == Some(lease) {
            kv.pexpire(EPOCH, LEASE).await?;
        }
        let Some(payload) = ledger.get(&key).await? else { continue };
        let task: ImportTask = match serde_json::from_slice(&payload) {
            Ok(task) => task,
            Err(e) => {
                tracing::error!(%key, error = %e, "dropping a malformed ledger entry");
                ledger.del(&key).await?;
                continue;
            }
        };
        let video = match state.videos.get(&task.user.to_string(), &task.url).await {
            Ok(video) => video,
            Err(reference::video::VideoError::Store(e)) => return Err(e),
            Err(e) => {
                tracing::error!(%key, error = %e, "dropping a ledger entry whose video cannot be read");
                ledger.del(&key).await?;
                continue;
            }
        };
        let open = video.is_some_and(|v| {
            v.attempt == task.attempt && !matches!(v.status, Status::Completed | Status::Failed)
        });
        if open {
            state.queue.enqueue(payload).await?;
            driven += 1;
        } else {
            ledger.del(&key).await?;
        }
    }
    Ok(driven)
}
