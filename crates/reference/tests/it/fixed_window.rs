//! #1 fixed-window limiter.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use reference::clock::{Clock, ManualClock};
use reference::fixed_window::{FixedWindow, mutants, suite};
use reference::limit::{Limit, RateLimiter, seed};
use reference::store::{MemoryStore, Store, Ttl};
use reference::sync::block_on;

use crate::common::{Op, model_rejects};

fn rig() -> (Arc<ManualClock>, MemoryStore) {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = MemoryStore::new(clock.clone());
    (clock, store)
}

fn correct(store: &MemoryStore, limit: Limit) -> FixedWindow<MemoryStore> {
    FixedWindow::new(store.clone(), "rl", limit)
}

fn get_then_set(store: &MemoryStore, limit: Limit) -> mutants::GetThenSet<MemoryStore> {
    mutants::GetThenSet { store: store.clone(), prefix: "rl".into(), limit }
}

fn incr_without_ttl(store: &MemoryStore, limit: Limit) -> mutants::IncrWithoutTtl<MemoryStore> {
    mutants::IncrWithoutTtl { store: store.clone(), prefix: "rl".into(), limit }
}

fn expire_every_hit(store: &MemoryStore, limit: Limit) -> mutants::ExpireEveryHit<MemoryStore> {
    mutants::ExpireEveryHit { store: store.clone(), prefix: "rl".into(), limit }
}

// --- contention: real threads -------------------------------------------------------------

#[test]
fn fixed_window_contention_admits_exactly_the_limit() {
    let (_, store) = rig();
    let limiter = Arc::new(correct(&store, seed::USER_TOKEN));
    suite::contention(limiter, seed::USER_TOKEN.max, 16, 300).unwrap();
}

#[test]
fn fixed_window_contention_at_endpoint_scale() {
    let (_, store) = rig();
    let limit = seed::ENDPOINT;
    let limiter = Arc::new(correct(&store, limit));
    // 800 callers on 8 threads against the 600/min endpoint limit.
    let decisions = reference::testing::burst(8, move |_| {
        (0..100).map(|_| block_on(limiter.check("endpoint")).unwrap()).collect::<Vec<_>>()
    });
    let all: Vec<_> = decisions.into_iter().flatten().collect();
    reference::fixed_window::invariant::exactly_min_allowed(limit.max, &all).unwrap();
}

#[test]
fn fixed_window_keys_isolated_under_contention() {
    let (_, store) = rig();
    suite::keys_isolated(Arc::new(correct(&store, seed::UPLOADS)), seed::UPLOADS.max, 4, 20).unwrap();
}

#[test]
fn fixed_window_mutant_get_then_set_caught_by_contention() {
    let (_, store) = rig();
    let limit = Limit::new(1, Duration::from_secs(60));
    // Races are probabilistic on real threads; many rounds make a miss vanishingly unlikely.
    let violation = suite::contention(Arc::new(get_then_set(&store, limit)), 1, 16, 2_000).unwrap_err();
    assert_eq!(violation.rule, "over-admission", "{violation}");
}

// --- TTL and window end ------------------------------------------------------------------

#[test]
fn fixed_window_key_always_carries_ttl() {
    let (_, store) = rig();
    let limit = seed::USER_TOKEN;
    suite::ttl_always_set(&correct(&store, limit), &store, "rl:u1", "u1", limit).unwrap();
}

#[test]
fn fixed_window_mutant_incr_without_ttl_caught_by_ttl_check() {
    let (_, store) = rig();
    let limit = seed::USER_TOKEN;
    let violation =
        suite::ttl_always_set(&incr_without_ttl(&store, limit), &store, "rl:u1", "u1", limit).unwrap_err();
    assert_eq!(violation.rule, "key-without-ttl", "{violation}");
}

#[test]
fn fixed_window_window_ends_under_steady_traffic() {
    let (clock, store) = rig();
    suite::window_ends(&correct(&store, seed::USER_TOKEN), &clock, seed::USER_TOKEN).unwrap();
}

#[test]
fn fixed_window_mutant_expire_every_hit_caught_by_window_end() {
    let (clock, store) = rig();
    let limit = seed::USER_TOKEN;
    let violation = suite::window_ends(&expire_every_hit(&store, limit), &clock, limit).unwrap_err();
    assert_eq!(violation.rule, "window-never-ends", "{violation}");
}

#[test]
fn fixed_window_mutant_incr_without_ttl_caught_by_window_end() {
    let (clock, store) = rig();
    let limit = seed::USER_TOKEN;
    let violation = suite::window_ends(&incr_without_ttl(&store, limit), &clock, limit).unwrap_err();
    assert_eq!(violation.rule, "window-never-ends", "{violation}");
}

// --- model-based ---------------------------------------------------------------------------

/// The trivially correct model: per key, the window's start and its count.
#[derive(Default)]
struct Model {
    windows: HashMap<String, (u64, u64)>,
}

impl Model {
    fn check(&mut self, id: &str, now: u64, limit: Limit) -> (bool, u64, u64) {
        let window = limit.window.as_millis() as u64;
        let (start, count) = self.windows.entry(id.to_owned()).or_insert((now, 0));
        if now >= *start + window {
            (*start, *count) = (now, 0);
        }
        *count += 1;
        (*count <= limit.max, limit.max.saturating_sub(*count), *start + window - now)
    }
}

/// Runs `ops` against a limiter and the model; the first disagreement, if any.
fn against_model<L: RateLimiter>(
    make: impl Fn(&MemoryStore, Limit) -> L,
    limit: Limit,
    ops: &[Op],
) -> Result<(), String> {
    let (clock, store) = rig();
    let limiter = make(&store, limit);
    let mut model = Model::default();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Advance(ms) => clock.advance(Duration::from_millis(*ms)),
            Op::Call(id) => {
                let id = format!("k{id}");
                let got = block_on(limiter.check(&id)).map_err(|e| e.to_string())?;
                let want = model.check(&id, clock.now(), limit);
                let got = (got.allowed, got.remaining, got.reset_after.as_millis() as u64);
                if got != want {
                    return Err(format!("step {step} {op:?}: got {got:?}, model says {want:?}"));
                }
                let ttl = block_on(store.pttl(&format!("rl:{id}"))).map_err(|e| e.to_string())?;
                if !matches!(ttl, Ttl::Remaining(_)) {
                    return Err(format!("step {step}: key rl:{id} has TTL {ttl:?}"));
                }
            }
        }
    }
    Ok(())
}

const SMALL: Limit = Limit::new(3, Duration::from_millis(1_000));

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fixed_window_matches_model(ops in crate::common::ops(3, 1_500)) {
        prop_assert_eq!(against_model(correct, SMALL, &ops), Ok(()));
    }
}

#[test]
fn fixed_window_mutant_incr_without_ttl_rejected_by_model() {
    assert!(model_rejects(crate::common::ops(3, 1_500), |ops| against_model(incr_without_ttl, SMALL, ops)));
}

#[test]
fn fixed_window_mutant_expire_every_hit_rejected_by_model() {
    assert!(model_rejects(crate::common::ops(3, 1_500), |ops| against_model(expire_every_hit, SMALL, ops)));
}
