//! The usage tracker as seed 003 shipped it.

use crate::store::{Store, StoreResult};

use super::{Admission, Grant, Period, Usage, UsageTracker, UsageTracking, periods, read_count};

/// `can_make_request()` then `record_request()`: read the day and hour counters, compare, then
/// increment them (and the stats total) in a second step, as the seed's Redis pipeline did.
/// Callers that read the same counts all pass the check, so a period admits more than its
/// limit under contention; one caller at a time never notices.
pub struct CheckThenRecord<S> {
    pub inner: UsageTracker<S>,
}

impl<S: Store> UsageTracking for CheckThenRecord<S> {
    async fn acquire(&self) -> StoreResult<Admission> {
        let UsageTracker { store, clock, prefix, limits } = &self.inner;
        let now = clock.now();
        let (day, hour) = periods(prefix, now);
        let day_count = read_count(store, &day.counter).await?;
        if day_count >= limits.per_day {
            return Ok(Admission::Refused { period: Period::Day, used: day_count, limit: limits.per_day });
        }
        let hour_count = read_count(store, &hour.counter).await?;
        if hour_count >= limits.per_hour {
            return Ok(Admission::Refused { period: Period::Hour, used: hour_count, limit: limits.per_hour });
        }
        let (day_ttl, hour_ttl) = (day.ttl(now), hour.ttl(now));
        let day_used = store.incr_by(&day.counter, 1).await?;
        store.pexpire(&day.counter, day_ttl).await?;
        let hour_used = store.incr_by(&hour.counter, 1).await?;
        store.pexpire(&hour.counter, hour_ttl).await?;
        store.incr_by(&day.total, 1).await?;
        store.pexpire(&day.total, day_ttl).await?;
        Ok(Admission::Granted(Grant {
            day: day.index,
            day_used: super::count(day_used),
            hour_used: super::count(hour_used),
        }))
    }

    async fn finish(&self, grant: &Grant, success: bool) -> StoreResult<()> {
        self.inner.finish(grant, success).await
    }

    async fn usage(&self) -> StoreResult<Usage> {
        self.inner.usage().await
    }
}
