//! [`RedisBus`]: the [`InvalidationBus`] between processes, over Redis pub/sub.
//!
//! Each bus (one per process) keeps one subscription, to `{namespace}:invalidate` and to its
//! own acknowledgement channel `{namespace}:ack:{bus id}`, confirmed before `connect` returns.
//! `publish(pattern)` sends `{origin}\n{id}\n{pattern}` on the invalidation channel; `PUBLISH`
//! answers how many subscriptions received it. Every receiving bus, its own included, applies
//! the pattern to its local subscribers and then publishes `{id} {dropped}` on the origin's
//! acknowledgement channel. The publisher returns once it heard as many acknowledgements as
//! there were receivers, or fails with [`StoreError::Unacknowledged`] after `ack_timeout`;
//! it never hangs. Pub/sub writes no keys, so there is no TTL to keep.
//!
//! A process that subscribed and then stalls is caught by the timeout; one that was not yet
//! subscribed when `PUBLISH` ran is not counted and holds nothing to drop it could have cached
//! from the shared layers before the deletion.
//!
//! When the server drops the subscription (a restart, `CLIENT KILL`, a reset), invalidations
//! published until it is back are missed: the bus drops every local entry at once, subscribes
//! again with backoff (50 ms doubling, at most 2 s apart), and drops every local entry again
//! once subscribed, since an entry filled meanwhile may predate an invalidation it missed.
//! What it cannot close is the moment between the drop and its notice: a read served from the
//! local cache then may be stale. Publishing goes through a connection opened again on its own
//! (`crate::reconnecting`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_core::Stream;
use redis::aio::{ConnectionManager, PubSub};
use reference::l1_cache::{Applied, InvalidationBus, Subscriber};
use reference::store::{StoreError, StoreResult};
use tokio::sync::mpsc;

use crate::RedisStoreError;

/// How a [`RedisBus`] connects and waits.
#[derive(Debug, Clone)]
pub struct BusOptions {
    pub connect_timeout: Duration,
    /// How long `publish` waits for every receiving process to acknowledge.
    pub ack_timeout: Duration,
}

impl Default for BusOptions {
    fn default() -> Self {
        Self { connect_timeout: Duration::from_secs(2), ack_timeout: Duration::from_secs(2) }
    }
}

/// One process's end of the invalidation bus. Cloning shares the subscription.
#[derive(Clone)]
pub struct RedisBus {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    conn: ConnectionManager,
    channel: String,
    id: String,
    ack_timeout: Duration,
    next: AtomicU64,
    shared: Arc<Shared>,
}

/// What the listener task and the publishers share.
#[derive(Default)]
struct Shared {
    subscribers: Mutex<Vec<Weak<dyn Subscriber>>>,
    /// Publications waiting for acknowledgements, by id: each acknowledgement's drop count.
    pending: Mutex<HashMap<u64, mpsc::UnboundedSender<u64>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn apply(&self, pattern: &str) -> u64 {
        let live: Vec<Arc<dyn Subscriber>> = {
            let mut subscribers = lock(&self.subscribers);
            subscribers.retain(|s| s.strong_count() > 0);
            subscribers.iter().filter_map(Weak::upgrade).collect()
        };
        live.iter().map(|s| s.apply(pattern)).sum()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus").field("channel", &self.inner.channel).field("id", &self.inner.id).finish()
    }
}

impl RedisBus {
    /// Subscribes to the bus `namespace` on the server at `url`.
    pub fn connect(url: &str, namespace: &str, options: &BusOptions) -> Result<Self, RedisStoreError> {
        static BUSES: AtomicU64 = AtomicU64::new(0);
        let shown = reference::store::shown_url(url);
        let client = redis::Client::open(url)
            .map_err(|e| RedisStoreError::InvalidUrl { url: shown.clone(), reason: e.to_string() })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("redis-bus")
            .enable_all()
            .build()
            .map_err(RedisStoreError::Runtime)?;
        let id = format!("{}-{}", std::process::id(), BUSES.fetch_add(1, Ordering::Relaxed));
        let channel = format!("{namespace}:invalidate");
        let ack_channel = format!("{namespace}:ack:{id}");
        let unreachable = |reason: String| RedisStoreError::Unreachable { url: shown.clone(), reason };
        let (conn, pubsub) = runtime.block_on(async {
            let connect = async {
                let config = crate::reconnecting(options.connect_timeout, options.ack_timeout);
                let conn = ConnectionManager::new_with_config(client.clone(), config).await?;
                let pubsub = subscription(&client, &channel, &ack_channel).await?;
                Ok::<_, redis::RedisError>((conn, pubsub))
            };
            tokio::time::timeout(options.connect_timeout, connect)
                .await
                .map_err(|_| unreachable(format!("no subscription within {:?}", options.connect_timeout)))?
                .map_err(|e| unreachable(e.to_string()))
        })?;
        let shared = Arc::new(Shared::default());
        let listener = Listener {
            shared: Arc::clone(&shared),
            conn: conn.clone(),
            channel: channel.clone(),
            ack_channel,
            ack_prefix: format!("{namespace}:ack:"),
            client,
        };
        runtime.spawn(listener.run(pubsub));
        Ok(Self {
            inner: Arc::new(Inner {
                handle: runtime.handle().clone(),
                runtime: Some(runtime),
                conn,
                channel,
                id,
                ack_timeout: options.ack_timeout,
                next: AtomicU64::new(0),
                shared,
            }),
        })
    }
}

impl Inner {
    async fn publish(&self, pattern: String) -> StoreResult<Applied> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, mut acks) = mpsc::unbounded_channel();
        // Registered before PUBLISH: an acknowledgement may arrive before PUBLISH's reply.
        lock(&self.shared.pending).insert(id, tx);
        let outcome = async {
            let message = format!("{}\n{id}\n{pattern}", self.id);
            let receivers: usize = redis::cmd("PUBLISH")
                .arg(&self.channel)
                .arg(message)
                .query_async(&mut self.conn.clone())
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            let deadline = tokio::time::Instant::now() + self.ack_timeout;
            let mut applied = Applied::default();
            while applied.instances < receivers {
                match tokio::time::timeout_at(deadline, acks.recv()).await {
                    Ok(Some(dropped)) => {
                        applied.instances += 1;
                        applied.dropped += dropped;
                    }
                    Ok(None) | Err(_) => {
                        return Err(StoreError::Unacknowledged {
                            pattern: pattern.clone(),
                            acked: applied.instances,
                            expected: receivers,
                            waited_ms: self.ack_timeout.as_millis() as u64,
                        });
                    }
                }
            }
            Ok(applied)
        }
        .await;
        lock(&self.shared.pending).remove(&id);
        outcome
    }
}

impl InvalidationBus for RedisBus {
    fn subscribe(&self, subscriber: Weak<dyn Subscriber>) {
        lock(&self.inner.shared.subscribers).push(subscriber);
    }

    /// `instances` counts the processes (buses) that acknowledged, not their caches.
    async fn publish(&self, pattern: &str) -> StoreResult<Applied> {
        let (inner, pattern) = (Arc::clone(&self.inner), pattern.to_owned());
        self.inner
            .handle
            .spawn(async move { inner.publish(pattern).await })
            .await
            .map_err(|e| StoreError::Backend(format!("invalidation task failed: {e}")))?
    }
}

/// A pub/sub connection subscribed to the invalidation and acknowledgement channels.
async fn subscription(
    client: &redis::Client,
    channel: &str,
    ack_channel: &str,
) -> redis::RedisResult<PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    pubsub.subscribe(ack_channel).await?;
    Ok(pubsub)
}

/// The task that applies received invalidations and routes acknowledgements, and subscribes
/// again when the subscription is dropped.
struct Listener {
    shared: Arc<Shared>,
    conn: ConnectionManager,
    channel: String,
    ack_channel: String,
    ack_prefix: String,
    client: redis::Client,
}

/// The first and the longest wait between two attempts to subscribe again.
const RESUBSCRIBE_FIRST: Duration = Duration::from_millis(50);
const RESUBSCRIBE_MAX: Duration = Duration::from_secs(2);

impl Listener {
    /// Runs until the bus's runtime shuts down.
    async fn run(mut self, mut pubsub: PubSub) {
        loop {
            let mut messages = Box::pin(pubsub.into_on_message());
            while let Some(msg) = std::future::poll_fn(|cx| messages.as_mut().poll_next(cx)).await {
                let Ok(payload) = msg.get_payload::<String>() else { continue };
                let channel = msg.get_channel_name();
                if channel == self.channel {
                    self.apply(&payload).await;
                } else if channel == self.ack_channel {
                    self.route_ack(&payload);
                }
            }
            // Deaf until subscribed again: nothing held locally can be trusted.
            self.shared.apply("*");
            pubsub = self.resubscribe().await;
            self.shared.apply("*");
        }
    }

    /// Subscribes again, backing off between attempts, until it succeeds.
    async fn resubscribe(&self) -> PubSub {
        let mut wait = RESUBSCRIBE_FIRST;
        loop {
            // Bounded: a server that accepts and never answers is tried again too.
            let attempt = subscription(&self.client, &self.channel, &self.ack_channel);
            if let Ok(Ok(pubsub)) = tokio::time::timeout(RESUBSCRIBE_MAX, attempt).await {
                return pubsub;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(RESUBSCRIBE_MAX);
        }
    }

    async fn apply(&mut self, payload: &str) {
        let mut parts = payload.splitn(3, '\n');
        let (Some(origin), Some(id), Some(pattern)) = (parts.next(), parts.next(), parts.next()) else {
            return;
        };
        let dropped = self.shared.apply(pattern);
        // A lost acknowledgement shows as the publisher's timeout, never as a hang.
        let _: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(format!("{}{origin}", self.ack_prefix))
            .arg(format!("{id} {dropped}"))
            .query_async(&mut self.conn)
            .await;
    }

    fn route_ack(&self, payload: &str) {
        let Some((id, dropped)) = payload.split_once(' ') else { return };
        let (Ok(id), Ok(dropped)) = (id.parse::<u64>(), dropped.parse::<u64>()) else { return };
        if let Some(tx) = lock(&self.shared.pending).get(&id) {
            let _ = tx.send(dropped);
        }
    }
}
