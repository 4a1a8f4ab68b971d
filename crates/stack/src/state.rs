//! The state every handler, worker and middleware reaches: the components over the configured
//! backends, built once per process from its settings.

use std::sync::Arc;
use std::time::Instant;

use reference::circuit_breaker::{Breaker, Phase};
use reference::l1_cache::L1Cache;
use reference::l1_cache::multi_layer::Layered;
use reference::l1_cache::multi_layer::MultiLayer;
use reference::task_queue::TaskQueue;

use crate::backend::{AnyStore, Backends};
use crate::chat::Chat;
use crate::components::{
    CompressionSlot, DailyQuotaSlot, DashboardCache, ListingSlot, Publish, Statuses, UpstreamBreaker,
    UsageSlot, Videos,
};
use crate::metrics::{LayerLabels, Metrics, QueueLabels};
use crate::settings::{IMPORT_QUEUE, Settings};
use crate::uploads::Uploads;

/// Everything a handler can reach; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub settings: Settings,
    pub backends: Backends,
    pub publish: Publish,
    pub quota: DailyQuotaSlot,
    pub usage: UsageSlot,
    pub videos: Videos,
    pub statuses: Statuses,
    pub cache: DashboardCache,
    pub queue: TaskQueue<AnyStore>,
    /// The import ledger's store ([`crate::ledger`]): PostgreSQL beside a Redis, none when the
    /// broker's store is as durable as anything the stack has.
    pub ledger: Option<AnyStore>,
    /// Where the statuses, the imports' effects and the upstream credential live: the ledger's
    /// store, else the hot store.
    pub durable: AnyStore,
    pub breaker: UpstreamBreaker,
    /// #16 how responses are encoded.
    pub compression: CompressionSlot,
    /// #18 how the feed's list endpoint reads a page.
    pub listing: ListingSlot,
    pub metrics: Metrics,
    pub started: Instant,
    pub uploads: Uploads,
    pub chat: Chat,
    /// Registrations per client address: what makes the per-user limits bound anything.
    pub registrations: reference::sliding_window::SlidingWindow<AnyStore>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("instance", &self.settings.instance).finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(settings: Settings, backends: Backends) -> Self {
        let clock = Arc::clone(&backends.clock);
        let kv = backends.kv.clone();
        let l1 = L1Cache::new(settings.l1_capacity, Arc::clone(&clock), backends.bus.clone());
        let metrics = Metrics::new();
        if let Some(pool) = &backends.pool {
            metrics.pool_max.set(pool.policy().max_connections() as i64);
        }
        let mutant = settings.mutant;
        if let Some(mutant) = mutant {
            tracing::warn!(mutant = mutant.name(), "running a mutant instead of its reference component");
        }
        let ledger = match mutant {
            Some(crate::Mutant::BrokerOnly) => None,
            _ => backends.durable().cloned(),
        };
        let durable = ledger.clone().unwrap_or_else(|| kv.clone());
        Self(Arc::new(Inner {
            publish: Publish::new(kv.clone(), "publish", settings.publish_limit, mutant),
            quota: DailyQuotaSlot::new(
                kv.clone(),
                Arc::clone(&clock),
                "quota",
                settings.quota_zone.clone(),
                settings.quota,
                mutant,
            ),
            usage: UsageSlot::new(kv.clone(), Arc::clone(&clock), settings.usage, mutant),
            videos: Videos::new(backends.records.clone(), mutant),
            statuses: Statuses::new(durable.clone(), mutant),
            cache: DashboardCache::new(MultiLayer::new(l1, backends.l2.clone(), backends.l3.clone()), mutant),
            queue: TaskQueue::new(kv.clone(), IMPORT_QUEUE, settings.task_visibility)
                .with_effects(durable.clone()),
            ledger,
            durable,
            breaker: UpstreamBreaker::new(kv, clock, settings.breaker, mutant),
            compression: CompressionSlot::new(mutant),
            listing: ListingSlot::new(mutant),
            metrics,
            started: Instant::now(),
            uploads: Uploads::new(&settings, &backends),
            chat: Chat::new(&settings, &backends),
            registrations: reference::sliding_window::SlidingWindow::new(
                backends.kv.clone(),
                Arc::clone(&backends.clock),
                "register",
                settings.registration_limit,
            ),
            settings,
            backends,
        }))
    }

    /// Refreshes the gauges that mirror state held in the components and backends.
    pub(crate) async fn sample(&self) {
        let stats = self.cache.layer_stats();
        for (layer, value) in
            [("l1", stats.l1_hits), ("l2", stats.l2_hits), ("l3", stats.l3_hits), ("miss", stats.misses)]
        {
            Metrics::mirror(&self.metrics.cache_gets.get_or_create(&LayerLabels { layer }), value);
        }
        let meter = self.uploads.meter();
        self.metrics.upload_held_bytes.set(meter.held() as i64);
        self.metrics.upload_held_bytes_peak.set(meter.peak() as i64);
        if let Some(pool) = &self.backends.pool {
            self.metrics.pool_connections.set(pool.open_connections() as i64);
        }
        if let Ok(state) = self.breaker.state().await {
            let now = self.backends.clock.now();
            let value = match state.phase(now) {
                Phase::Closed => 0,
                Phase::Open => 1,
                Phase::HalfOpen => 2,
            };
            self.metrics.breaker_state.set(value);
        }
        if let Ok(depth) = self.queue.depth().await {
            let queue = IMPORT_QUEUE.to_owned();
            for (state, value) in [("ready", depth.ready), ("in_flight", depth.in_flight)] {
                self.metrics
                    .queue_depth
                    .get_or_create(&QueueLabels { queue: queue.clone(), state })
                    .set(value as i64);
            }
        }
    }
}
