//! #3 daily quota.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, date};
use jiff::tz::{Offset, TimeZone};
use proptest::prelude::*;
use reference::clock::{Clock, ManualClock, Millis};
use reference::daily_quota::{
    Consumption, DailyQuota, LocalDay, Quota, QuotaPolicy, SEED, invariant, mutants, suite,
};
use reference::store::MemoryStore;
use reference::sync::block_on;

use crate::common::model_rejects;

fn new_york() -> TimeZone {
    TimeZone::get("America/New_York").unwrap()
}

/// Cuba changes its clocks at midnight: 2026-03-08 has no 00:00 and 2025-11-02 has two.
fn havana() -> TimeZone {
    TimeZone::get("America/Havana").unwrap()
}

fn fixed(seconds: i32) -> TimeZone {
    TimeZone::fixed(Offset::from_seconds(seconds).unwrap())
}

fn rig(zone: &TimeZone, at: DateTime) -> (Arc<ManualClock>, MemoryStore) {
    let start = at.to_zoned_datetime(zone.clone()).unwrap().timestamp().as_millisecond();
    let clock = Arc::new(ManualClock::new(Millis::try_from(start).unwrap()));
    let store = MemoryStore::new(clock.clone());
    (clock, store)
}

/// A clock that `resets_at_local_midnight` can move to any later day of 2025 or 2026.
fn early_rig() -> (Arc<ManualClock>, MemoryStore) {
    rig(&TimeZone::UTC, date(2025, 1, 1).at(0, 0, 0, 0))
}

type Make<Q> = fn(&MemoryStore, &Arc<ManualClock>, &TimeZone, QuotaPolicy) -> Q;

fn correct(
    store: &MemoryStore,
    clock: &Arc<ManualClock>,
    zone: &TimeZone,
    policy: QuotaPolicy,
) -> DailyQuota<MemoryStore> {
    DailyQuota::new(store.clone(), clock.clone(), "quota", zone.clone(), policy)
}

fn incr_or_set(
    store: &MemoryStore,
    clock: &Arc<ManualClock>,
    zone: &TimeZone,
    policy: QuotaPolicy,
) -> mutants::IncrOrSet<MemoryStore> {
    mutants::IncrOrSet {
        store: store.clone(),
        clock: clock.clone(),
        prefix: "quota".into(),
        zone: zone.clone(),
        policy,
    }
}

fn utc_midnight(
    store: &MemoryStore,
    clock: &Arc<ManualClock>,
    zone: &TimeZone,
    policy: QuotaPolicy,
) -> mutants::UtcMidnight<MemoryStore> {
    mutants::UtcMidnight {
        store: store.clone(),
        clock: clock.clone(),
        prefix: "quota".into(),
        zone: zone.clone(),
        policy,
    }
}

fn twenty_four_hour_day(
    store: &MemoryStore,
    clock: &Arc<ManualClock>,
    zone: &TimeZone,
    policy: QuotaPolicy,
) -> mutants::TwentyFourHourDay<MemoryStore> {
    mutants::TwentyFourHourDay {
        store: store.clone(),
        clock: clock.clone(),
        prefix: "quota".into(),
        zone: zone.clone(),
        policy,
    }
}

/// A limit a burst of 16 imports passes: 10 fit.
const TIGHT: QuotaPolicy = QuotaPolicy { limit: 30, units_per_import: 3, warn_percent: 80 };

// --- contention: real threads -------------------------------------------------------------

#[test]
fn daily_quota_contention_loses_no_units() {
    let (clock, store) = rig(&new_york(), date(2026, 6, 15).at(9, 0, 0, 0));
    let quota = Arc::new(correct(&store, &clock, &new_york(), SEED));
    suite::contention(quota, SEED.limit, SEED.units_per_import, 16, 300).unwrap();
}

#[test]
fn daily_quota_contention_admits_exactly_up_to_the_limit() {
    let (clock, store) = rig(&new_york(), date(2026, 6, 15).at(9, 0, 0, 0));
    let quota = Arc::new(correct(&store, &clock, &new_york(), TIGHT));
    suite::contention(quota, TIGHT.limit, TIGHT.units_per_import, 16, 300).unwrap();
}

#[test]
fn daily_quota_mutant_incr_or_set_caught_by_contention() {
    let (clock, store) = rig(&new_york(), date(2026, 6, 15).at(9, 0, 0, 0));
    let quota = Arc::new(incr_or_set(&store, &clock, &new_york(), SEED));
    // Races are probabilistic on real threads; many rounds make a miss vanishingly unlikely.
    let violation = suite::contention(quota, SEED.limit, SEED.units_per_import, 16, 2_000).unwrap_err();
    assert_eq!(violation.rule, "lost-units", "{violation}");
}

// --- the seed's policy ---------------------------------------------------------------------

#[test]
fn daily_quota_seed_policy_warns_at_eighty_percent_and_stops_at_the_limit() {
    let (clock, store) = rig(&new_york(), date(2026, 6, 15).at(9, 0, 0, 0));
    let quota = correct(&store, &clock, &new_york(), SEED);
    let imports: Vec<Consumption> = (0..3_334).map(|_| block_on(quota.import("u1")).unwrap()).collect();
    // 2,666 imports are 7,998 units, under 80 %; the next one reaches 8,001.
    assert!(!imports[2_665].warn && imports[2_665].used == 7_998, "{:?}", imports[2_665]);
    assert!(imports[2_666].warn && imports[2_666].used == 8_001, "{:?}", imports[2_666]);
    // 3,333 imports are 9,999 units; the next would pass 10,000.
    assert!(imports[3_332].accepted && imports[3_332].used == 9_999, "{:?}", imports[3_332]);
    assert!(!imports[3_333].accepted && imports[3_333].used == 9_999, "{:?}", imports[3_333]);
    assert_eq!(block_on(quota.used("u1")).unwrap(), 9_999);
    invariant::day_total(SEED.limit, &imports, 9_999).unwrap();
}

// --- local midnight ------------------------------------------------------------------------

fn days() -> Vec<(&'static str, TimeZone, Date)> {
    vec![
        ("new york, ordinary day", new_york(), date(2026, 6, 15)),
        ("new york, eve of the 23 h day", new_york(), date(2026, 3, 7)),
        ("new york, 23 h day", new_york(), date(2026, 3, 8)),
        ("new york, 25 h day", new_york(), date(2026, 11, 1)),
        ("havana, day whose midnight is skipped", havana(), date(2026, 3, 8)),
        ("havana, eve of the skipped midnight", havana(), date(2026, 3, 7)),
        ("havana, day with two midnights", havana(), date(2025, 11, 2)),
        ("havana, eve of the day with two midnights", havana(), date(2025, 11, 1)),
        ("fixed +05:45", fixed(5 * 3600 + 45 * 60), date(2026, 6, 15)),
        ("fixed -03:00", fixed(-3 * 3600), date(2026, 11, 1)),
    ]
}

#[test]
fn daily_quota_local_days_follow_the_clock_changes() {
    let length = |zone: &TimeZone, day: Date| {
        let (start, end) =
            (suite::start_of(zone, day), suite::next_local_midnight(zone, suite::start_of(zone, day)));
        let local_day = LocalDay::at(zone, start).unwrap();
        assert_eq!((local_day.date, local_day.left), (day, Duration::from_millis(end - start)));
        Duration::from_millis(end - start).as_secs() / 3600
    };
    assert_eq!(length(&new_york(), date(2026, 3, 8)), 23);
    assert_eq!(length(&new_york(), date(2026, 11, 1)), 25);
    assert_eq!(length(&new_york(), date(2026, 6, 15)), 24);
    assert_eq!(length(&havana(), date(2026, 3, 8)), 23);
    assert_eq!(length(&havana(), date(2025, 11, 2)), 25);
    // Havana's 2026-03-08 begins at 01:00: there is no midnight that day.
    let first = Timestamp::from_millisecond(suite::start_of(&havana(), date(2026, 3, 8)) as i64).unwrap();
    assert_eq!(first.to_zoned_datetime(havana()).datetime(), date(2026, 3, 8).at(1, 0, 0, 0));
    // Havana's 2025-11-02 begins at the first of its two midnights.
    let first = Timestamp::from_millisecond(suite::start_of(&havana(), date(2025, 11, 2)) as i64).unwrap();
    assert_eq!(first.to_zoned_datetime(havana()).offset(), Offset::from_seconds(-4 * 3600).unwrap());
}

#[test]
fn daily_quota_resets_exactly_at_local_midnight() {
    for (case, zone, day) in days() {
        let (clock, store) = early_rig();
        let quota = correct(&store, &clock, &zone, SEED);
        let verdict = suite::resets_at_local_midnight(&quota, &clock, &zone, day, 3);
        assert_eq!(verdict, Ok(()), "{case}");
        let now = clock.now();
        assert_eq!(suite::keys_expire_at_local_midnight(&store, "quota:*", &zone, now), Ok(()), "{case}");
    }
}

#[test]
fn daily_quota_mutant_utc_midnight_caught_by_midnight_reset() {
    let (clock, store) = early_rig();
    let zone = new_york();
    let quota = utc_midnight(&store, &clock, &zone, SEED);
    let violation = suite::resets_at_local_midnight(&quota, &clock, &zone, date(2026, 6, 15), 3).unwrap_err();
    assert_eq!(violation.rule, "early-reset", "{violation}");
}

#[test]
fn daily_quota_mutant_twenty_four_hour_day_caught_by_midnight_reset() {
    let (clock, store) = early_rig();
    let zone = new_york();
    let quota = twenty_four_hour_day(&store, &clock, &zone, SEED);
    let violation = suite::resets_at_local_midnight(&quota, &clock, &zone, date(2026, 11, 1), 3).unwrap_err();
    assert_eq!(violation.rule, "early-reset", "{violation}");
}

#[test]
fn daily_quota_mutant_twenty_four_hour_day_caught_by_ttl_check() {
    // On the 23 h day the counter created at 00:30 outlives its day by an hour.
    let zone = new_york();
    let (clock, store) = rig(&zone, date(2026, 3, 8).at(0, 30, 0, 0));
    let quota = twenty_four_hour_day(&store, &clock, &zone, SEED);
    block_on(quota.consume("u1", 3)).unwrap();
    let violation = suite::keys_expire_at_local_midnight(&store, "quota:*", &zone, clock.now()).unwrap_err();
    assert_eq!(violation.rule, "ttl-past-midnight", "{violation}");
}

// --- model-based ---------------------------------------------------------------------------

/// One step of a generated history.
#[derive(Debug, Clone, Copy)]
enum Step {
    Consume {
        user: u8,
        units: u64,
    },
    Used(u8),
    Advance(u64),
    /// Jump to this many ms before the next local midnight (0: exactly at it).
    BeforeMidnight(u64),
}

#[derive(Debug, Clone)]
struct History {
    zone: usize,
    start: usize,
    steps: Vec<Step>,
}

fn zones() -> [TimeZone; 4] {
    [new_york(), havana(), fixed(5 * 3600 + 45 * 60), fixed(-3 * 3600)]
}

/// Local starting points around clock changes in New York and Havana, and an ordinary evening.
const STARTS: [(i16, i8, i8, i8, i8); 7] = [
    (2025, 11, 1, 21, 0),
    (2026, 3, 7, 21, 0),
    (2026, 3, 8, 0, 30),
    (2026, 10, 31, 21, 0),
    (2026, 11, 1, 0, 30),
    (2026, 11, 1, 22, 30),
    (2026, 6, 15, 18, 0),
];

const HOUR: u64 = 60 * 60 * 1_000;

fn histories() -> impl Strategy<Value = History> {
    let step = prop_oneof![
        4 => (0..3u8, 1..=12u64).prop_map(|(user, units)| Step::Consume { user, units }),
        1 => (0..3u8).prop_map(Step::Used),
        2 => (0..=60_000u64).prop_map(Step::Advance),
        2 => (0..=4 * HOUR).prop_map(Step::Advance),
        2 => prop::sample::select(vec![0, 1, 60_000, HOUR / 2, 3 * HOUR / 2]).prop_map(Step::BeforeMidnight),
    ];
    (0..zones().len(), 0..STARTS.len(), proptest::collection::vec(step, 1..60))
        .prop_map(|(zone, start, steps)| History { zone, start, steps })
}

/// The trivially correct model: units per (user, local date).
struct Model {
    zone: TimeZone,
    policy: QuotaPolicy,
    used: BTreeMap<(u8, Date), u64>,
}

impl Model {
    fn today(&self, now: Millis) -> Date {
        Timestamp::from_millisecond(now as i64).unwrap().to_zoned_datetime(self.zone.clone()).date()
    }

    fn consume(&mut self, user: u8, units: u64, now: Millis) -> (bool, u64, bool) {
        let today = self.today(now);
        let used = self.used.entry((user, today)).or_default();
        let accepted = *used + units <= self.policy.limit;
        if accepted {
            *used += units;
        }
        let warn = *used * 100 >= self.policy.limit * self.policy.warn_percent;
        (accepted, *used, warn)
    }

    fn used(&self, user: u8, now: Millis) -> u64 {
        self.used.get(&(user, self.today(now))).copied().unwrap_or(0)
    }
}

/// Runs `history` against a quota and the model; the first disagreement, if any. After every
/// step each live counter must expire exactly at the next local midnight.
fn against_model<Q: Quota>(make: Make<Q>, history: &History) -> Result<(), String> {
    let zone = zones()[history.zone].clone();
    let (y, m, d, h, min) = STARTS[history.start];
    let (clock, store) = rig(&zone, date(y, m, d).at(h, min, 0, 0));
    let quota = make(&store, &clock, &zone, TIGHT);
    let mut model = Model { zone: zone.clone(), policy: TIGHT, used: BTreeMap::new() };
    for (n, step) in history.steps.iter().enumerate() {
        let now = clock.now();
        let at = Timestamp::from_millisecond(now as i64).unwrap().to_zoned_datetime(zone.clone());
        match *step {
            Step::Advance(ms) => clock.advance(Duration::from_millis(ms)),
            Step::BeforeMidnight(ms) => clock.set(suite::next_local_midnight(&zone, now) - ms),
            Step::Consume { user, units } => {
                let got = block_on(quota.consume(&format!("u{user}"), units)).map_err(|e| e.to_string())?;
                let want = model.consume(user, units, now);
                if (got.accepted, got.used, got.warn) != want {
                    return Err(format!("step {n} {step:?} at {at}: got {got:?}, model says {want:?}"));
                }
            }
            Step::Used(user) => {
                let got = block_on(quota.used(&format!("u{user}"))).map_err(|e| e.to_string())?;
                let want = model.used(user, now);
                if got != want {
                    return Err(format!("step {n} {step:?} at {at}: got {got}, model says {want}"));
                }
            }
        }
        suite::keys_expire_at_local_midnight(&store, "quota:*", &zone, clock.now())
            .map_err(|v| format!("after step {n} {step:?} at {at}: {v}"))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn daily_quota_matches_model(history in histories()) {
        prop_assert_eq!(against_model(correct, &history), Ok(()));
    }
}

#[test]
fn daily_quota_mutant_incr_or_set_rejected_by_model() {
    assert!(model_rejects(histories(), |h| against_model(incr_or_set, h)));
}

#[test]
fn daily_quota_mutant_utc_midnight_rejected_by_model() {
    assert!(model_rejects(histories(), |h| against_model(utc_midnight, h)));
}

#[test]
fn daily_quota_mutant_twenty_four_hour_day_rejected_by_model() {
    assert!(model_rejects(histories(), |h| against_model(twenty_four_hour_day, h)));
}
