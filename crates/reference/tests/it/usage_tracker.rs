//! #4 API usage tracker.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use reference::clock::{Clock, ManualClock, Millis};
use reference::store::{MemoryStore, Store, Ttl};
use reference::sync::block_on;
use reference::usage_tracker::suite::{self, Load};
use reference::usage_tracker::{
    Admission, DAY_GRACE, Grant, HOUR_GRACE, Period, Usage, UsageLimits, UsageTracker, UsageTracking, mutants,
};

use crate::common::{Op, model_rejects};

/// 2023-11-14T22:13:20Z: the first hour and day rollovers come early.
const START: Millis = 1_700_000_000_000;
const HOUR_MS: Millis = 3_600_000;
const DAY_MS: Millis = 24 * HOUR_MS;

fn rig() -> (Arc<ManualClock>, MemoryStore) {
    let clock = Arc::new(ManualClock::new(START));
    let store = MemoryStore::new(clock.clone());
    (clock, store)
}

fn correct(store: &MemoryStore, clock: &Arc<ManualClock>, limits: UsageLimits) -> UsageTracker<MemoryStore> {
    UsageTracker::new(store.clone(), clock.clone(), "api", limits)
}

fn check_then_record(
    store: &MemoryStore,
    clock: &Arc<ManualClock>,
    limits: UsageLimits,
) -> mutants::CheckThenRecord<MemoryStore> {
    mutants::CheckThenRecord { inner: correct(store, clock, limits) }
}

// --- contention: real threads -------------------------------------------------------------

/// 16 threads making 4 requests each per burst, an hour between bursts: the hour's limit
/// binds every burst, the day's from the fifth hour of each day.
fn contention<T: UsageTracking + 'static>(
    tracker: T,
    store: &MemoryStore,
    clock: &ManualClock,
    limits: UsageLimits,
    rounds: usize,
) -> reference::invariant::Judgement {
    let load = Load { threads: 16, calls_per_thread: 4, rounds, step: Duration::from_secs(60 * 60) };
    suite::contention(Arc::new(tracker), store, clock, limits, "api", load)
}

#[test]
fn usage_tracker_contention_grants_exactly_the_remaining_quota() {
    let (clock, store) = rig();
    let limits = UsageLimits::SEED;
    contention(correct(&store, &clock, limits), &store, &clock, limits, 150).unwrap();
}

#[test]
fn usage_tracker_mutant_check_then_record_caught_by_contention() {
    let (clock, store) = rig();
    let limits = UsageLimits::SEED;
    // Races are probabilistic on real threads; many rounds make a miss vanishingly unlikely.
    let violation =
        contention(check_then_record(&store, &clock, limits), &store, &clock, limits, 2_000).unwrap_err();
    assert_eq!(violation.rule, "over-admission", "{violation}");
}

// --- model-based ---------------------------------------------------------------------------

fn utc(at: Millis, format: &str) -> String {
    jiff::Timestamp::from_millisecond(at as i64).unwrap().strftime(format).to_string()
}

/// The trivially correct model: counts per UTC day and hour, outcomes per day.
#[derive(Default)]
struct Model {
    days: BTreeMap<u64, u64>,
    hours: BTreeMap<u64, u64>,
    succeeded: BTreeMap<u64, u64>,
    failed: BTreeMap<u64, u64>,
}

impl Model {
    fn acquire(&mut self, now: Millis, limits: UsageLimits) -> Admission {
        let (day, hour) = (now / DAY_MS, now / HOUR_MS);
        let day_used = self.days.get(&day).copied().unwrap_or(0);
        let hour_used = self.hours.get(&hour).copied().unwrap_or(0);
        if day_used >= limits.per_day {
            return Admission::Refused { period: Period::Day, used: day_used, limit: limits.per_day };
        }
        if hour_used >= limits.per_hour {
            return Admission::Refused { period: Period::Hour, used: hour_used, limit: limits.per_hour };
        }
        self.days.insert(day, day_used + 1);
        self.hours.insert(hour, hour_used + 1);
        Admission::Granted(Grant { day, day_used: day_used + 1, hour_used: hour_used + 1 })
    }

    fn finish(&mut self, grant: &Grant, success: bool) {
        *(if success { &mut self.succeeded } else { &mut self.failed }).entry(grant.day).or_default() += 1;
    }

    fn usage(&self, now: Millis) -> Usage {
        let day = now / DAY_MS;
        let get = |map: &BTreeMap<u64, u64>, index| map.get(&index).copied().unwrap_or(0);
        Usage {
            day: get(&self.days, day),
            hour: get(&self.hours, now / HOUR_MS),
            total: get(&self.days, day),
            succeeded: get(&self.succeeded, day),
            failed: get(&self.failed, day),
        }
    }

    /// Every key that should be live at `now`, with its TTL: a period's keys live until the
    /// period ends plus its grace.
    fn keys(&self, now: Millis) -> BTreeMap<String, Ttl> {
        let mut keys = BTreeMap::new();
        let mut add = |name: String, deadline: Millis| {
            if deadline > now {
                keys.insert(name, Ttl::Remaining(Duration::from_millis(deadline - now)));
            }
        };
        let day_grace = DAY_GRACE.as_millis() as u64;
        for day in self.days.keys() {
            let (date, deadline) = (utc(day * DAY_MS, "%Y-%m-%d"), (day + 1) * DAY_MS + day_grace);
            add(format!("api:day:{date}"), deadline);
            add(format!("api:stats:{date}:total"), deadline);
        }
        for (outcomes, name) in [(&self.succeeded, "succeeded"), (&self.failed, "failed")] {
            for day in outcomes.keys() {
                let deadline = (day + 1) * DAY_MS + day_grace;
                add(format!("api:stats:{}:{name}", utc(day * DAY_MS, "%Y-%m-%d")), deadline);
            }
        }
        for hour in self.hours.keys() {
            let deadline = (hour + 1) * HOUR_MS + HOUR_GRACE.as_millis() as u64;
            add(format!("api:hour:{}", utc(hour * HOUR_MS, "%Y-%m-%dT%H")), deadline);
        }
        keys
    }
}

/// Runs `ops` against a tracker and the model: `Call(0)` is a request that succeeds, any other
/// call one that fails. The first disagreement, if any.
fn against_model<T: UsageTracking>(
    make: impl Fn(&MemoryStore, &Arc<ManualClock>, UsageLimits) -> T,
    limits: UsageLimits,
    ops: &[Op],
) -> Result<(), String> {
    let (clock, store) = rig();
    let tracker = make(&store, &clock, limits);
    let mut model = Model::default();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Advance(ms) => clock.advance(Duration::from_millis(*ms)),
            Op::Call(kind) => {
                let now = clock.now();
                let got = block_on(tracker.acquire()).map_err(|e| e.to_string())?;
                let want = model.acquire(now, limits);
                if got != want {
                    return Err(format!("step {step} {op:?}: got {got:?}, model says {want:?}"));
                }
                if let Admission::Granted(grant) = got {
                    block_on(tracker.finish(&grant, *kind == 0)).map_err(|e| e.to_string())?;
                    model.finish(&grant, *kind == 0);
                }
            }
        }
        let now = clock.now();
        let usage = block_on(tracker.usage()).map_err(|e| e.to_string())?;
        if usage != model.usage(now) {
            return Err(format!("step {step}: usage {usage:?}, model says {:?}", model.usage(now)));
        }
        let mut keys = BTreeMap::new();
        for key in block_on(store.keys("api:*")).map_err(|e| e.to_string())? {
            let ttl = block_on(store.pttl(&key)).map_err(|e| e.to_string())?;
            keys.insert(key, ttl);
        }
        if keys != model.keys(now) {
            return Err(format!("step {step}: live keys {keys:?}, model says {:?}", model.keys(now)));
        }
    }
    Ok(())
}

/// Small limits so both bind often; clock moves of up to 45 minutes cross hours and midnight.
const SMALL: UsageLimits = UsageLimits { per_day: 7, per_hour: 3 };

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn usage_tracker_matches_model(ops in crate::common::ops(2, 45 * 60 * 1_000)) {
        prop_assert_eq!(against_model(correct, SMALL, &ops), Ok(()));
    }
}

/// The mutant's flaw is a race: one caller at a time sees the same answers as the model.
#[test]
fn usage_tracker_check_then_record_is_sequentially_indistinguishable() {
    assert!(!model_rejects(crate::common::ops(2, 45 * 60 * 1_000), |ops| {
        against_model(check_then_record, SMALL, ops)
    }));
}
