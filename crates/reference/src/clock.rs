//! The injected clock. No component reads the system clock: each takes a [`Clock`], so tests
//! move time by hand (window edges, midnight, TTL expiry, half-open timers) and never sleep.

use std::time::Duration;

use crate::sync::{AtomicU64, Ordering};

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// A source of wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Millis;
}

/// The real clock, for production wiring only.
///
/// The wall clock is read through the CPU's time-stamp counter (`quanta`, the clock `governor`
/// reads): about a third of the cost of a `SystemTime` read, which was a quarter of a memory-store
/// limiter decision. Each thread anchors the counter to `SystemTime` and anchors it again every
/// 10 ms of counter time, so the reading follows the system clock (its NTP slews and steps) to
/// within the counter's drift over that span, well under a millisecond. Within a thread the
/// reading never goes back by the millisecond such a re-anchoring could cost at a millisecond's
/// edge; a larger step back of the system clock is followed, as `SystemTime` would. Threads share
/// nothing: no lock, no atomic, so nothing for loom to model (the models run `ManualClock`).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        // A thread whose locals are being torn down reads the system clock itself.
        WALL.try_with(Wall::now).unwrap_or_else(|_| read_anchor(None).1 / NANOS_PER_MILLI)
    }
}

/// How long a thread reads the time-stamp counter before it anchors it to `SystemTime` again.
const REANCHOR_EVERY_NS: u64 = 10_000_000;

/// A backward step of the reading that is the anchoring's rounding, not the system clock's.
const ROUNDING_MS: Millis = 1;

thread_local! {
    static WALL: Wall = Wall::new();
}

/// One thread's wall clock: the counter, and where it was anchored.
struct Wall {
    counter: quanta::Clock,
    anchor: std::cell::Cell<Anchor>,
}

#[derive(Debug, Clone, Copy)]
struct Anchor {
    /// The raw counter at the anchoring.
    raw: u64,
    /// `SystemTime` at the anchoring, in nanoseconds since the epoch.
    epoch_ns: u64,
    /// The latest reading this thread returned.
    latest: Millis,
}

impl Wall {
    fn new() -> Self {
        let counter = quanta::Clock::new();
        let (raw, epoch_ns) = read_anchor(Some(&counter));
        Self { counter, anchor: std::cell::Cell::new(Anchor { raw, epoch_ns, latest: 0 }) }
    }

    fn now(&self) -> Millis {
        let mut anchor = self.anchor.get();
        let raw = self.counter.raw();
        let since = self.counter.delta_as_nanos(anchor.raw, raw);
        let epoch_ns = if raw >= anchor.raw && since < REANCHOR_EVERY_NS {
            anchor.epoch_ns.saturating_add(since)
        } else {
            (anchor.raw, anchor.epoch_ns) = read_anchor(Some(&self.counter));
            anchor.epoch_ns
        };
        let now = epoch_ns / NANOS_PER_MILLI;
        let now = if now < anchor.latest && anchor.latest - now <= ROUNDING_MS { anchor.latest } else { now };
        anchor.latest = now;
        self.anchor.set(anchor);
        now
    }
}

const NANOS_PER_MILLI: u64 = 1_000_000;

/// The raw counter (0 without one) and `SystemTime` (nanoseconds since the epoch), read together.
#[allow(clippy::disallowed_methods, reason = "the one place the system clock is read")]
fn read_anchor(counter: Option<&quanta::Clock>) -> (u64, u64) {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let raw = counter.map_or(0, quanta::Clock::raw);
    (raw, u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX))
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    pub fn new(start: Millis) -> Self {
        Self { now: AtomicU64::new(start) }
    }

    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(millis(by), Ordering::SeqCst);
    }

    /// Moves the clock to `at`; time never goes backwards, so an earlier `at` is ignored.
    pub fn set(&self, at: Millis) {
        self.now.fetch_max(at, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.now.load(Ordering::SeqCst)
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Millis {
        (**self).now()
    }
}

/// A duration in whole milliseconds, saturating.
pub fn millis(duration: Duration) -> Millis {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{Clock, Millis, SystemClock};

    #[allow(clippy::disallowed_methods, reason = "compares SystemClock with the system clock")]
    fn system_time() -> Millis {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        since_epoch.as_millis() as Millis
    }

    /// Read through the time-stamp counter, the clock stays on the system clock, re-anchored
    /// or not, and never goes back within a thread.
    #[test]
    fn system_clock_follows_the_system_clock_and_never_goes_back() {
        let mut previous = SystemClock.now();
        let started = system_time();
        while system_time() < started + 50 {
            let (before, now, after) = (system_time(), SystemClock.now(), system_time());
            assert!(now >= previous, "went back from {previous} to {now}");
            assert!(before <= now + 1 && now <= after + 1, "{now} outside [{before}, {after}]");
            previous = now;
        }
    }

    #[test]
    fn system_clock_agrees_across_threads() {
        let here = SystemClock.now();
        let there = std::thread::spawn(|| SystemClock.now()).join().unwrap();
        let back = SystemClock.now();
        assert!(
            here <= there + 1 && there <= back + 1,
            "{here}, then {there} on another thread, then {back}"
        );
    }
}
