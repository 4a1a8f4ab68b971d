//! The open model: requests due at a rate (constant, or ramping linearly), each sent at its
//! due time whatever happened to the ones before, and timed from its due time. A stalled stack
//! cannot slow the arrivals down, and a request the generator could not send on time (no free
//! slot, a late timer) carries that delay in its latency: coordinated omission cannot hide a
//! stall (wrk2's correction, applied by construction rather than by back-filling).

use std::sync::Arc;
use std::time::Duration;

use client::Target;
use rand::SeedableRng;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

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

/// Runs the open model until the schedule ends or `stop` turns true; waits (at most the
/// target's timeout) for the requests in flight.
pub async fn run(
    target: &Arc<Target>,
    mix: &Mix,
    accounts: &[Account],
    schedule: Schedule,
    max_in_flight: usize,
    recorder: &Arc<Recorder>,
    mut stop: watch::Receiver<bool>,
) -> Sent {
    let start = Instant::from_std(recorder.start());
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut offered = 0u64;
    let mut found_full = 0u64;
    // A generator that cannot keep up stops at the end all the same, after a grace of a tenth
    // of the run (a second at most): what it could not send by then is reported as unsent,
    // not sent late into a longer run. Within the grace a late request is sent, its lateness
    // in its latency (it is timed from when it was due).
    let end = start + schedule.duration + GRACE.min(schedule.duration / 10);
    while let Some(offset) = schedule.due(offered) {
        let due = start + offset;
        if Instant::now() >= end {
            break;
        }
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            () = tokio::time::sleep_until(due) => {}
        }
        // A full house delays the request, and the delay is in its latency.
        if slots.available_permits() == 0 {
            found_full += 1;
        }
        let slot = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("never closed"),
        };
        let entry = mix.pick(&mut rng);
        let account = &accounts[(offered as usize) % accounts.len()];
        let instance = (offered as usize) % target.instances();
        let vars = mix.vars(&target.run, account, &mut rng);
        let recorder = Arc::clone(recorder);
        let mix_entry = mix.entries[entry].clone();
        if let Some(ws) = mix_entry.websocket.clone() {
            let (target, account) = (Arc::clone(target), account.clone());
            tokio::spawn(async move {
                let (outcome, answered) =
                    crate::ws::session(&target, instance, &account, &mix_entry, &ws, &vars, &recorder).await;
                recorder.record(&mix_entry.name, due.into_std(), answered, outcome);
                drop(slot);
            });
        } else {
            let request = crate::request(target, instance, account, &mix_entry, &vars);
            tokio::spawn(async move {
                let outcome = crate::send(request, &mix_entry).await;
                recorder.record(&mix_entry.name, due.into_std(), std::time::Instant::now(), outcome);
                drop(slot);
            });
        }
        offered += 1;
    }
    // The ones in flight: every slot back, or the timeout.
    let all = u32::try_from(max_in_flight).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(target.timeout + Duration::from_secs(1), slots.acquire_many(all)).await;
    Sent { sent: offered, found_full }
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
