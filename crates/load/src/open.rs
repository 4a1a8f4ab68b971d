//! The open model: requests due at a rate (constant, or ramping linearly), each sent at its
//! due time whatever happened to the ones before, and timed from its due time. A stalled stack
//! cannot slow the arrivals down, and a request the generator could not send on time (no free
//! slot, a late timer) carries that delay in its latency: coordinated omission cannot hide a
//! stall (wrk2's correction, applied by construction rather than by back-filling).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use client::Target;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::conn::Client;
use crate::mix::{Account, Mix};
use crate::record::Recorder;

/// How late past the schedule's end a due request may still be sent.
const GRACE: Duration = Duration::from_secs(1);

/// When the `i`-th request is due: the rate goes linearly from `from` to `to` (requests per
/// second) over `duration`.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub from: f64,
    pub to: f64,
    pub duration: Duration,
}

impl Schedule {
    /// Requests due over the whole schedule.
    pub fn total(&self) -> u64 {
        (self.duration.as_secs_f64() * (self.from + self.to) / 2.0).ceil() as u64
    }

    /// The offset of request `i` from the start, or none when it falls after the end. The
    /// number due by `t` is `from·t + (to − from)·t²/(2·d)`; this solves it for `t`.
    pub fn due(&self, i: u64) -> Option<Duration> {
        let i = i as f64;
        let d = self.duration.as_secs_f64();
        let a = (self.to - self.from) / (2.0 * d);
        let t = if a.abs() < 1e-12 {
            i / self.from
        } else {
            (-self.from + (self.from * self.from + 4.0 * a * i).sqrt()) / (2.0 * a)
        };
        (t.is_finite() && t >= 0.0 && t < d).then(|| Duration::from_secs_f64(t))
    }
}

/// What the open model sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    pub sent: u64,
    /// Requests that fell due with every slot (`max_in_flight`) taken: the stack held that
    /// many, and the rest waited.
    pub found_full: u64,
}

/// Runs the open model until the schedule ends or `stop` turns true, sending with `client`;
/// then waits for the requests in flight, at most the target's timeout and a second past the
/// end (or the stop) — and a WebSocket entry's `hold_ms` more — and abandons the rest.
///
/// `max_in_flight` workers share the schedule: a free worker claims the next request (in
/// order), waits for its due time and sends it. A request claimed after its due time found
/// every worker busy: it is sent at once, and timed from its due time all the same. No task is
/// spawned per request and no request changes hands between tasks; each worker drives the
/// connection it sends on ([`crate::conn`]).
#[allow(clippy::too_many_arguments)]
pub async fn run(
    target: &Arc<Target>,
    client: &Arc<Client>,
    mix: &Mix,
    accounts: &[Account],
    schedule: Schedule,
    max_in_flight: usize,
    recorder: &Arc<Recorder>,
    mut stop: watch::Receiver<bool>,
) -> Sent {
    let start = Instant::from_std(recorder.start());
    // A generator that cannot keep up stops at the end all the same, after a grace of a tenth
    // of the run (a second at most): what it could not send by then is reported as unsent,
    // not sent late into a longer run. Within the grace a late request is sent, its lateness
    // in its latency (it is timed from when it was due).
    let end = start + schedule.duration + GRACE.min(schedule.duration / 10);
    let shared = Arc::new(Shared {
        target: Arc::clone(target),
        mix: mix.clone(),
        accounts: accounts.to_vec(),
        client: Arc::clone(client),
        recorder: Arc::clone(recorder),
        schedule,
        start,
        end,
        next: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        found_full: AtomicU64::new(0),
    });
    let workers = max_in_flight.max(1).min(usize::try_from(schedule.total()).unwrap_or(usize::MAX)).max(1);
    let mut seeds = rand::rngs::StdRng::from_os_rng();
    let mut set = JoinSet::new();
    for _ in 0..workers {
        let rng = rand::rngs::StdRng::seed_from_u64(seeds.random());
        set.spawn(worker(Arc::clone(&shared), rng, stop.clone()));
    }
    // Every worker done, or the end (or the stop) and then the timeout for those in flight.
    let deadline = async {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => {}
            () = tokio::time::sleep_until(end) => {}
        }
        let hold = mix.entries.iter().filter_map(|e| e.websocket.as_ref()).map(|ws| ws.hold_ms).max();
        tokio::time::sleep(
            target.timeout + Duration::from_secs(1) + Duration::from_millis(hold.unwrap_or(0)),
        )
        .await;
    };
    tokio::select! {
        () = async { while set.join_next().await.is_some() {} } => {}
        () = deadline => set.abort_all(),
    }
    Sent { sent: shared.sent.load(Ordering::Relaxed), found_full: shared.found_full.load(Ordering::Relaxed) }
}

/// What the workers of a run share.
struct Shared {
    target: Arc<Target>,
    mix: Mix,
    accounts: Vec<Account>,
    client: Arc<Client>,
    recorder: Arc<Recorder>,
    schedule: Schedule,
    start: Instant,
    end: Instant,
    /// The next request to claim.
    next: AtomicU64,
    sent: AtomicU64,
    found_full: AtomicU64,
}

/// Claims requests in order and sends each at its due time, until the schedule ends, its end
/// passes, or `stop` turns true.
async fn worker(shared: Arc<Shared>, mut rng: rand::rngs::StdRng, mut stop: watch::Receiver<bool>) {
    let Shared { target, mix, accounts, client, recorder, schedule, .. } = &*shared;
    let mut busy = false;
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        let Some(offset) = schedule.due(i) else { break };
        let due = shared.start + offset;
        let now = Instant::now();
        if now >= shared.end || *stop.borrow() {
            break;
        }
        if now > due {
            // Late: this worker was busy when the request fell due, and so was every other
            // (a free one would have claimed it first). Its first claim is not late for that.
            if busy {
                shared.found_full.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => break,
                () = tokio::time::sleep_until(due) => {}
            }
        }
        busy = true;
        shared.sent.fetch_add(1, Ordering::Relaxed);
        let entry = mix.pick(&mut rng);
        let account = &accounts[(i as usize) % accounts.len()];
        let instance = (i as usize) % target.instances();
        let vars = mix.vars(&target.run, account, &mut rng);
        let mix_entry = &mix.entries[entry];
        if let Some(ws) = &mix_entry.websocket {
            let (outcome, answered) =
                Box::pin(crate::ws::session(target, instance, account, mix_entry, ws, &vars, recorder)).await;
            recorder.record(&mix_entry.name, due.into_std(), answered, outcome);
        } else {
            let outcome = Box::pin(client.send(target, instance, account, entry, mix_entry, &vars)).await;
            recorder.record(&mix_entry.name, due.into_std(), std::time::Instant::now(), outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_rate_spaces_requests_evenly() {
        let s = Schedule { from: 100.0, to: 100.0, duration: Duration::from_secs(2) };
        assert_eq!(s.due(0), Some(Duration::ZERO));
        assert_eq!(s.due(50), Some(Duration::from_millis(500)));
        assert!(s.due(199).is_some());
        assert_eq!(s.due(200), None, "200 requests in 2 s at 100/s");
        assert_eq!(s.total(), 200);
    }

    #[test]
    fn a_ramp_offers_the_area_under_its_rate() {
        // 10/s to 30/s over 10 s: 200 requests, denser at the end.
        let s = Schedule { from: 10.0, to: 30.0, duration: Duration::from_secs(10) };
        let count = (0..).take_while(|&i| s.due(i).is_some()).count();
        assert!((199..=201).contains(&count), "{count}");
        let first = s.due(1).unwrap() - s.due(0).unwrap();
        let last = s.due(199).unwrap() - s.due(198).unwrap();
        assert!((first.as_secs_f64() - 0.1).abs() < 0.01, "{first:?}");
        assert!(last < first / 2, "{last:?} vs {first:?}");
        // Ramping down too.
        let down = Schedule { from: 30.0, to: 10.0, duration: Duration::from_secs(10) };
        assert!((199..=201).contains(&(0..).take_while(|&i| down.due(i).is_some()).count()));
    }
}
