//! The daily-quota suites, run against any implementation and store.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::clock::{ManualClock, Millis, millis};
use crate::invariant::Judgement;
use crate::store::Store;
use crate::sync::block_on;
use crate::testing::burst;

use super::{Quota, invariant};

/// `rounds` bursts of `threads` concurrent consumes of `units`, each round for a fresh user (an
/// empty day): the day's count equals the accepted units and stays within `limit`.
pub fn contention<Q: Quota + 'static>(
    quota: Arc<Q>,
    limit: u64,
    units: u64,
    threads: usize,
    rounds: usize,
) -> Judgement {
    for round in 0..rounds {
        let user = format!("user-{round}");
        let shared = Arc::clone(&quota);
        let name = user.clone();
        let consumptions =
            burst(threads, move |_| block_on(shared.consume(&name, units)).expect("quota call"));
        let used = block_on(quota.used(&user)).expect("quota call");
        invariant::day_total(limit, &consumptions, used)?;
    }
    Ok(())
}

/// The first instant of `day` in `zone`, in ms since the epoch.
pub fn start_of(zone: &TimeZone, day: Date) -> Millis {
    let start = day.to_zoned_datetime(zone.clone()).expect("a date jiff can place in the zone");
    Millis::try_from(start.timestamp().as_millisecond()).expect("a date after the epoch")
}

/// The first instant of the local date after the one `now` falls in.
pub fn next_local_midnight(zone: &TimeZone, now: Millis) -> Millis {
    let instant =
        Timestamp::from_millisecond(i64::try_from(now).expect("clock in range")).expect("clock in range");
    let today = instant.to_zoned_datetime(zone.clone()).date();
    start_of(zone, today.tomorrow().expect("a date jiff can place"))
}

/// One user's consumes around the end of local `day`: the first of the day, one 1 ms before
/// the next local midnight (still the same day), and one exactly at it (a fresh day). The clock
/// must not be past `day`'s start + 30 min.
pub fn resets_at_local_midnight<Q: Quota>(
    quota: &Q,
    clock: &ManualClock,
    zone: &TimeZone,
    day: Date,
    units: u64,
) -> Judgement {
    let user = "midnight-user";
    clock.set(start_of(zone, day) + millis(Duration::from_secs(30 * 60)));
    let first = block_on(quota.consume(user, units)).expect("quota call");
    invariant::fresh_day(&first)?;
    let midnight = start_of(zone, day.tomorrow().expect("a date jiff can place"));
    clock.set(midnight - 1);
    let before = block_on(quota.consume(user, units)).expect("quota call");
    invariant::same_day(first.used, &before)?;
    clock.set(midnight);
    let after = block_on(quota.consume(user, units)).expect("quota call");
    invariant::fresh_day(&after)
}

/// Every live key matching `pattern` expires exactly at the next local midnight in `zone`.
pub fn keys_expire_at_local_midnight<S: Store>(
    store: &S,
    pattern: &str,
    zone: &TimeZone,
    now: Millis,
) -> Judgement {
    let left = Duration::from_millis(next_local_midnight(zone, now) - now);
    for key in block_on(store.keys(pattern)).expect("store call") {
        let ttl = block_on(store.pttl(&key)).expect("store call");
        invariant::expires_at_local_midnight(&key, ttl, left)?;
    }
    Ok(())
}
