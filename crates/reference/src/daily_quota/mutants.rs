//! The daily quota as the field wrote it (seed 002, "Fix #5"), one bug per type.

use std::sync::Arc;

use jiff::civil::Time;
use jiff::tz::TimeZone;

use crate::clock::Clock;
use crate::store::Store;

use super::{
    Consumption, LocalDay, Quota, QuotaError, QuotaPolicy, QuotaResult, bounded_consume, consumption,
    instant, key, positive, read_used, to_i64,
};

/// The seed's "atomic" increment: `cache.incr()` — which checks that the key exists and raises
/// on a missing one — and, on a missing key, `cache.set(key, units, timeout=ttl)`. Two first
/// consumes of a day both find the key missing and both `set`: one of them loses its units.
/// The seed's increment has no limit check either (it only logs above 80 %), so every consume
/// is accepted. Key and TTL are the correct ones; only the increment is the seed's.
#[derive(Clone)]
pub struct IncrOrSet<S> {
    pub store: S,
    pub clock: Arc<dyn Clock>,
    pub prefix: String,
    pub zone: TimeZone,
    pub policy: QuotaPolicy,
}

impl<S: Store> Quota for IncrOrSet<S> {
    async fn consume(&self, user: &str, units: u64) -> QuotaResult<Consumption> {
        let day = LocalDay::at(&self.zone, self.clock.now())?;
        let key = key(&self.prefix, user, day.date);
        let used = if self.store.get(&key).await?.is_some() {
            self.store.incr_by(&key, to_i64(units)).await?
        } else {
            self.store.set(&key, units.to_string().into_bytes(), Some(day.left)).await?;
            to_i64(units)
        };
        Ok(consumption(self.policy, true, units, used))
    }

    async fn used(&self, user: &str) -> QuotaResult<u64> {
        let day = LocalDay::at(&self.zone, self.clock.now())?;
        read_used(&self.store, &key(&self.prefix, user, day.date)).await
    }
}

/// The seed's midnight: `timezone.now().replace(hour=0, …) + timedelta(days=1)` with Django's
/// `USE_TZ`, i.e. the day and its midnight taken in UTC instead of the configured zone. Users
/// east or west of UTC get their quota reset in the middle of their day. A key naming the UTC
/// date, as here, behaves like the seed's undated key that expires at UTC midnight.
#[derive(Clone)]
pub struct UtcMidnight<S> {
    pub store: S,
    pub clock: Arc<dyn Clock>,
    pub prefix: String,
    pub zone: TimeZone,
    pub policy: QuotaPolicy,
}

impl<S: Store> Quota for UtcMidnight<S> {
    async fn consume(&self, user: &str, units: u64) -> QuotaResult<Consumption> {
        let day = LocalDay::at(&TimeZone::UTC, self.clock.now())?;
        bounded_consume(&self.store, self.policy, &key(&self.prefix, user, day.date), units, day.left).await
    }

    async fn used(&self, user: &str) -> QuotaResult<u64> {
        let day = LocalDay::at(&TimeZone::UTC, self.clock.now())?;
        read_used(&self.store, &key(&self.prefix, user, day.date)).await
    }
}

/// Midnight in the right zone, but the TTL computed as naive wall-clock arithmetic
/// (`tomorrow_midnight - now` on datetimes of one zone, as Python does): every day is taken to
/// be 24 h long. On the 25-hour day the key expires an hour before midnight and the day's
/// usage is forgotten; on the 23-hour day it outlives its day by an hour.
#[derive(Clone)]
pub struct TwentyFourHourDay<S> {
    pub store: S,
    pub clock: Arc<dyn Clock>,
    pub prefix: String,
    pub zone: TimeZone,
    pub policy: QuotaPolicy,
}

impl<S: Store> TwentyFourHourDay<S> {
    fn day(&self) -> QuotaResult<LocalDay> {
        let now = self.clock.now();
        let day = LocalDay::at(&self.zone, now)?;
        let here = instant(now)?.to_zoned_datetime(self.zone.clone()).datetime();
        let tomorrow = day.date.tomorrow().map_err(|_| QuotaError::ClockOutOfRange(now))?;
        let midnight = tomorrow.to_datetime(Time::midnight());
        Ok(LocalDay { date: day.date, left: positive(here.duration_until(midnight)) })
    }
}

impl<S: Store> Quota for TwentyFourHourDay<S> {
    async fn consume(&self, user: &str, units: u64) -> QuotaResult<Consumption> {
        let day = self.day()?;
        bounded_consume(&self.store, self.policy, &key(&self.prefix, user, day.date), units, day.left).await
    }

    async fn used(&self, user: &str) -> QuotaResult<u64> {
        read_used(&self.store, &key(&self.prefix, user, self.day()?.date)).await
    }
}
