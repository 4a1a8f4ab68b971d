//! #11 single-flight periodic token refresh.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use reference::clock::{Clock, ManualClock};
use reference::store::MemoryStore;
use reference::sync::block_on;
use reference::token_refresh::suite::{self, FakeOAuth};
use reference::token_refresh::{
    Grant, InvalidPolicy, Policy, RefreshError, RefreshScheduler, Refresher, Scheduler, TickOutcome,
    credential, mutants, seed,
};

use crate::common::model_rejects;

type Correct = RefreshScheduler<MemoryStore, Arc<FakeOAuth>>;

struct Rig {
    clock: Arc<ManualClock>,
    store: MemoryStore,
    oauth: Arc<FakeOAuth>,
    policy: Policy,
}

impl Rig {
    fn new(policy: Policy) -> Self {
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        let store = MemoryStore::new(clock.clone());
        let oauth = Arc::new(FakeOAuth::new(clock.clone(), policy.lifetime()));
        Self { clock, store, oauth, policy }
    }

    fn correct(&self, instance: usize) -> Correct {
        let clock = self.clock.clone();
        RefreshScheduler::new(
            self.store.clone(),
            clock,
            self.oauth.clone(),
            format!("beat-{instance}"),
            self.policy,
        )
    }

    fn no_lease(&self, instance: usize) -> mutants::NoLease<MemoryStore, Arc<FakeOAuth>> {
        mutants::NoLease { scheduler: self.correct(instance) }
    }

    /// Connects `count` tokens `t0`, `t1`, … through the consent flow; their ids.
    fn connect(&self, count: usize) -> Vec<String> {
        let connector = self.correct(usize::MAX);
        (0..count)
            .map(|i| {
                let id = format!("t{i}");
                block_on(connector.connect(&id, self.oauth.authorize(&id))).unwrap();
                id
            })
            .collect()
    }
}

// --- contention: real threads -------------------------------------------------------------

#[test]
fn token_refresh_contention_one_refresh_per_period() {
    let rig = Rig::new(seed::POLICY);
    let tokens = rig.connect(16);
    let instances = (0..8).map(|i| rig.correct(i)).collect();
    suite::contention(instances, &rig.store, &rig.oauth, &rig.clock, rig.policy, &tokens, (40, 2)).unwrap();
}

#[test]
fn token_refresh_mutant_no_lease_caught_by_contention() {
    let rig = Rig::new(seed::POLICY);
    let tokens = rig.connect(16);
    let instances = (0..8).map(|i| rig.no_lease(i)).collect();
    let violation =
        suite::contention(instances, &rig.store, &rig.oauth, &rig.clock, rig.policy, &tokens, (40, 2))
            .unwrap_err();
    assert_eq!(violation.rule, "duplicate-refresh", "{violation}");
}

// --- schedule and freshness ------------------------------------------------------------------

#[test]
fn token_refresh_policy_needs_two_periods_of_lifetime() {
    let (period, lifetime) = (seed::POLICY.period(), seed::POLICY.lifetime());
    assert_eq!(Policy::new(period, lifetime), Ok(seed::POLICY));
    let short = lifetime - Duration::from_millis(1);
    assert_eq!(Policy::new(period, short), Err(InvalidPolicy::LifetimeTooShort { period, lifetime: short }));
    assert_eq!(Policy::new(Duration::ZERO, lifetime), Err(InvalidPolicy::ZeroPeriod));
}

#[test]
fn token_refresh_expired_token_detected_when_beats_stop() {
    // The freshness check has teeth: with no beat for a whole lifetime the stored token expires
    // and the upstream call is flagged.
    let rig = Rig::new(seed::POLICY);
    let tokens = rig.connect(1);
    rig.clock.advance(seed::POLICY.lifetime());
    let current = block_on(credential(&rig.store, &tokens[0])).unwrap().unwrap();
    let violation = rig.oauth.api_call(&tokens[0], &current.access_token).unwrap_err();
    assert_eq!(violation.rule, "expired-token-used", "{violation}");
}

/// A refresher that, on its first call, runs `during` before answering: the call stalls while
/// the world moves on.
struct Stalling<F> {
    inner: Arc<FakeOAuth>,
    during: F,
    stalled: AtomicBool,
}

impl<F: Fn() + Send + Sync> Refresher for Stalling<F> {
    async fn refresh(&self, token_id: &str, refresh_token: &str) -> Result<Grant, RefreshError> {
        if !self.stalled.swap(true, Ordering::SeqCst) {
            (self.during)();
        }
        self.inner.refresh(token_id, refresh_token).await
    }
}

#[test]
fn token_refresh_stalled_winner_does_not_overwrite_newer_credential() {
    let rig = Rig::new(seed::POLICY);
    let tokens = rig.connect(1);
    rig.clock.advance(seed::POLICY.period());
    let (clock, other) = (rig.clock.clone(), rig.correct(1));
    let during = move || {
        clock.advance(seed::POLICY.period());
        let outcomes = block_on(other.tick()).unwrap();
        assert!(matches!(outcomes[0].1, TickOutcome::Refreshed { .. }), "{outcomes:?}");
    };
    let stalling = Stalling { inner: rig.oauth.clone(), during, stalled: AtomicBool::new(false) };
    let slow = RefreshScheduler::new(rig.store.clone(), rig.clock.clone(), stalling, "slow", rig.policy);
    let outcomes = block_on(slow.tick()).unwrap();
    assert_eq!(outcomes, vec![(tokens[0].clone(), TickOutcome::Superseded)]);
    let stored = block_on(credential(&rig.store, &tokens[0])).unwrap().unwrap();
    assert_eq!(stored.access_token, "t0#2", "the stalled winner's older token replaced the newer one");
}

// --- model-based ---------------------------------------------------------------------------

/// One step of a history: instance `instance` ticks while the upstream is `up` or down, an
/// API call with token `t{n}`, or the beat: the clock moves by at most a period and an instance
/// ticks — if `flaky`, first while the upstream is down and then, through the next instance,
/// while it is up — so no period passes without a refresh.
#[derive(Debug, Clone, Copy)]
enum Op {
    Tick { instance: usize, up: bool },
    Use(usize),
    Beat { advance: u64, instance: usize, flaky: bool },
}

const INSTANCES: usize = 3;
const TOKENS: usize = 2;

fn small() -> Policy {
    Policy::new(Duration::from_millis(1_000), Duration::from_millis(2_000)).unwrap()
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        3 => (0..INSTANCES, prop::bool::weighted(0.8)).prop_map(|(instance, up)| Op::Tick { instance, up }),
        2 => (0..TOKENS).prop_map(Op::Use),
        3 => (0..=1_000u64, 0..INSTANCES, prop::bool::weighted(0.3))
            .prop_map(|(advance, instance, flaky)| Op::Beat { advance, instance, flaky }),
    ];
    proptest::collection::vec(op, 1..60)
}

/// What a tick did, as the model can predict it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Did {
    Refreshed(u64),
    AlreadyTaken,
    Failed,
    Other(String),
}

fn did(outcome: &TickOutcome) -> Did {
    match outcome {
        TickOutcome::Refreshed { expires_at } => Did::Refreshed(*expires_at),
        TickOutcome::AlreadyTaken => Did::AlreadyTaken,
        TickOutcome::Failed(_) => Did::Failed,
        other => Did::Other(format!("{other:?}")),
    }
}

/// The trivially correct model: per token, how many access tokens were issued and when the
/// last expires; the set of (token, period) refreshes already done.
#[derive(Debug, Default)]
struct Model {
    serial: HashMap<String, u64>,
    expires: HashMap<String, u64>,
    done: HashSet<(String, u64)>,
}

impl Model {
    fn issue(&mut self, token: &str, now: u64, policy: Policy) {
        *self.serial.entry(token.to_owned()).or_default() += 1;
        self.expires.insert(token.to_owned(), now + policy.lifetime().as_millis() as u64);
    }

    fn tick(&mut self, tokens: &[String], now: u64, up: bool, policy: Policy) -> Vec<(String, Did)> {
        let period = policy.period_of(now);
        let mut did = Vec::new();
        for token in tokens {
            let outcome = if self.done.contains(&(token.clone(), period)) {
                Did::AlreadyTaken
            } else if up {
                self.done.insert((token.clone(), period));
                self.issue(token, now, policy);
                Did::Refreshed(self.expires[token])
            } else {
                Did::Failed
            };
            did.push((token.clone(), outcome));
        }
        did
    }
}

/// Runs `ops` against `INSTANCES` scheduler instances and the model; the first disagreement or
/// broken invariant, if any.
fn against_model<T: Scheduler>(make: impl Fn(&Rig, usize) -> T, ops: &[Op]) -> Result<(), String> {
    let policy = small();
    let rig = Rig::new(policy);
    let instances: Vec<T> = (0..INSTANCES).map(|i| make(&rig, i)).collect();
    let start = rig.clock.now();
    let tokens = rig.connect(TOKENS);
    let mut model = Model::default();
    for token in &tokens {
        model.issue(token, start, policy);
        model.done.insert((token.clone(), policy.period_of(start)));
    }
    for (step, op) in ops.iter().enumerate() {
        let ticks = match *op {
            Op::Use(n) => {
                let token = &tokens[n];
                let current = block_on(credential(&rig.store, token)).map_err(|e| e.to_string())?;
                let access = current.map(|c| c.access_token).unwrap_or_default();
                let want = format!("{token}#{}", model.serial[token]);
                if access != want {
                    return Err(format!("step {step} {op:?}: stored token {access}, model says {want}"));
                }
                rig.oauth.api_call(token, &access).map_err(|v| format!("step {step} {op:?}: {v}"))?;
                continue;
            }
            Op::Tick { instance, up } => vec![(instance, up)],
            Op::Beat { advance, instance, flaky } => {
                rig.clock.advance(Duration::from_millis(advance));
                if flaky {
                    vec![(instance, false), ((instance + 1) % INSTANCES, true)]
                } else {
                    vec![(instance, true)]
                }
            }
        };
        for (instance, up) in ticks {
            let now = rig.clock.now();
            rig.oauth.set_down(!up);
            let got = block_on(instances[instance].tick()).map_err(|e| e.to_string())?;
            rig.oauth.set_down(false);
            let got: Vec<_> = got.iter().map(|(id, outcome)| (id.clone(), did(outcome))).collect();
            let want = model.tick(&tokens, now, up, policy);
            if got != want {
                return Err(format!(
                    "step {step} {op:?} instance {instance}: got {got:?}, model says {want:?}"
                ));
            }
            let period = policy.period_of(now);
            if period > policy.period_of(start) {
                for token in &tokens {
                    let granted = rig.oauth.granted_in(token, policy, period);
                    if granted > 0 || up {
                        reference::token_refresh::invariant::one_refresh_per_period(token, period, granted)
                            .map_err(|v| format!("step {step} {op:?}: {v}"))?;
                    }
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn token_refresh_matches_model(ops in ops()) {
        prop_assert_eq!(against_model(Rig::correct, &ops), Ok(()));
    }
}

#[test]
fn token_refresh_mutant_no_lease_rejected_by_model() {
    assert!(model_rejects(ops(), |ops| against_model(Rig::no_lease, ops)));
}
