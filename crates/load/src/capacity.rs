//! Capacity: the profile's mix offered in steps — an arrival rate (open model) or a number
//! of users (closed model) raised by `step` from `start` to `ceiling`, each held `hold_s`
//! seconds — every step judged against the targets, stepping ended by the first step that
//! breaks one. The accounts are set up once, before the first step.
//!
//! A step is judged by the profile's targets with one change: an absolute throughput target
//! (`min_throughput`) says nothing about a step offered less than it, so in the open model it
//! is replaced by the step's own — the answers kept pace with the offered rate (at least
//! [`KEEP_PACE`] of it). The closed model has no rate to keep: its throughput is the result.
//! And an endpoint a short step did not draw at all is left out of that step's verdict (a
//! load run fails it: the run should cover the mix; a step at a low rate may simply not).

use std::sync::Arc;
use std::time::Duration;

use client::Target;
use profile::Objectives;
use profile::load::{Load, Model};
use report::capacity::{self, CapacityReport, Step, Stepping};
use report::{Latency, ObjectiveKind, ObjectiveVerdict};
use tokio::sync::watch;

use crate::{LoadError, Measured, Plan, Progress};

/// The share of the offered rate a step's answers must reach, open model.
pub const KEEP_PACE: f64 = 0.9;

/// What a capacity run reports while it runs.
#[derive(Debug, Clone)]
pub enum StepProgress<'a> {
    /// Within a step: what [`crate::run`] reports.
    Load(Progress<'a>),
    /// A step begins: its index, how many there are at most, its load.
    Begin { index: usize, of: usize, offered: f64 },
    /// A step ended.
    End(&'a Step),
}

/// A finished (or interrupted) capacity run.
#[derive(Debug)]
pub struct Capacity {
    pub report: CapacityReport,
    /// The highest sustainable step's load and verdicts (the first step's when none was).
    pub chosen: Measured,
    pub interrupted: bool,
}

/// Steps `spec`'s load as `stepping` says on `instances` instances behind `target`.
pub async fn run(
    target: Arc<Target>,
    spec: &Load,
    targets: &Objectives,
    stepping: &Stepping,
    instances: usize,
    stop: watch::Receiver<bool>,
    progress: impl Fn(StepProgress) + Send + Sync + 'static,
) -> Result<Capacity, LoadError> {
    stepping.validate().map_err(|e| LoadError::Configuration(format!("[capacity] {e}")))?;
    let progress = Arc::new(progress);
    let levels = stepping.levels();
    let accounts = {
        let progress = Arc::clone(&progress);
        crate::prepare(&target, spec, &move |p: Progress| progress(StepProgress::Load(p))).await?
    };
    let mut step_targets = targets.clone();
    step_targets.min_throughput = None;
    // Sessions open at once follow from the step's rate as the throughput does: an absolute
    // floor says nothing about a step offered less.
    step_targets.min_ws_sessions = None;
    let open = spec.model == Model::Open;
    let mut steps: Vec<Step> = Vec::new();
    let mut sustainable: Option<(usize, Measured)> = None;
    let mut first: Option<Measured> = None;
    let mut stopped =
        format!("the ceiling, {} {}, was reached with every target met", stepping.ceiling, unit(open));
    let mut limited_by_generator = false;
    let mut interrupted = false;
    for (index, &level) in levels.iter().enumerate() {
        if index > 0 && stepping.cooldown_s > 0.0 {
            let mut stop = stop.clone();
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs_f64(stepping.cooldown_s)) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        }
        if *stop.borrow() {
            interrupted = true;
            stopped = "interrupted between steps".to_owned();
            break;
        }
        progress(StepProgress::Begin { index, of: levels.len(), offered: level });
        let mut step_spec = spec.clone();
        step_spec.duration_s = stepping.hold_s;
        if open {
            step_spec.rate = Some(level);
            step_spec.ramp_to = None;
        } else {
            step_spec.users = Some(level.round().max(1.0) as usize);
        }
        let plan = Plan::new(step_spec);
        let mut outcomes = {
            let progress = Arc::clone(&progress);
            crate::offer(
                Arc::clone(&target),
                Arc::clone(&accounts),
                &plan,
                &step_targets,
                stop.clone(),
                None,
                move |p| progress(StepProgress::Load(p)),
            )
            .await?
        };
        // An endpoint a short step did not happen to draw has no figures to judge: its
        // targets are left out of the step's verdict rather than failed.
        let idle: Vec<&str> =
            outcomes.load.endpoints.iter().filter(|e| e.requests == 0).map(|e| e.name.as_str()).collect();
        let idle: Vec<String> = idle.into_iter().map(str::to_owned).collect();
        outcomes.targets.retain(|t| t.endpoint.as_ref().is_none_or(|e| !idle.contains(e)));
        if open {
            outcomes.targets.push(ObjectiveVerdict::judged(
                ObjectiveKind::Throughput,
                "throughput kept pace with the offered rate".to_owned(),
                None,
                ">=",
                KEEP_PACE * level,
                Some(outcomes.load.throughput),
                "req/s",
            ));
        }
        let step = step(level, &outcomes, open)?;
        progress(StepProgress::End(&step));
        let (passed, complete, unsent) = (step.passed, step.complete, step.unsent);
        let missed = step.missed.clone();
        steps.push(step);
        if first.is_none() {
            first = Some(Measured {
                load: outcomes.load.clone(),
                targets: outcomes.targets.clone(),
                interrupted: false,
                found_full: outcomes.found_full,
            });
        }
        if !complete {
            interrupted = true;
            stopped = format!("interrupted during the step at {level} {}", unit(open));
            break;
        }
        // Unsent requests with the house full are the stack's doing: it held every slot the
        // profile allows. Without, the generator fell behind on its own.
        let generator_behind = unsent > 0 && outcomes.found_full == 0;
        limited_by_generator |= generator_behind;
        if !passed {
            stopped = if generator_behind {
                format!(
                    "the generator fell behind at {level} {} ({unsent} requests never sent): the stack's \
                     capacity is at least the last sustainable step",
                    unit(open)
                )
            } else {
                format!("the step at {level} {} broke a target: {}", unit(open), summary(&missed))
            };
            break;
        }
        sustainable = Some((index, outcomes));
    }
    let points: Vec<(f64, f64)> =
        steps.iter().filter(|s| s.complete).map(|s| (s.concurrency, s.throughput)).collect();
    let fit = capacity::fit(&points);
    let fit_note = fit.is_none().then(|| no_fit(&points));
    let sustainable_index = sustainable.as_ref().map(|(i, _)| *i);
    let plan = capacity::plan(
        stepping,
        sustainable_index.map(|i| steps[i].throughput),
        instances,
        limited_by_generator,
    );
    let chosen = match (sustainable, first) {
        (Some((_, outcomes)), _) => outcomes,
        (None, Some(first)) => first,
        (None, None) => {
            return Err(LoadError::Configuration(
                "interrupted before the first step: nothing measured".into(),
            ));
        }
    };
    Ok(Capacity {
        report: CapacityReport {
            model: if open { "open" } else { "closed" }.to_owned(),
            unit: unit(open).to_owned(),
            stepping: stepping.clone(),
            instances,
            steps,
            sustainable: sustainable_index,
            stopped,
            limited_by_generator,
            fit,
            fit_note,
            plan,
        },
        chosen,
        interrupted,
    })
}

/// The first few misses, and how many more (every one is in the step's `missed`).
fn summary(missed: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut text = missed.iter().take(SHOWN).cloned().collect::<Vec<_>>().join("; ");
    if missed.len() > SHOWN {
        text.push_str(&format!("; and {} more", missed.len() - SHOWN));
    }
    text
}

/// Why the USL was not fitted to `points` (concurrency, throughput): too few usable steps.
fn no_fit(points: &[(f64, f64)]) -> String {
    let usable = points.iter().filter(|(n, x)| *n > 0.0 && *x > 0.0).count();
    format!(
        "{} with a positive concurrency and throughput: the USL's three parameters need three",
        report::plural(usable as u64, "complete step", "complete steps")
    )
}

fn unit(open: bool) -> &'static str {
    if open { "requests/s" } else { "users" }
}

/// A step's figures from its load run: every endpoint's histogram added into one.
fn step(offered: f64, outcomes: &Measured, open: bool) -> Result<Step, LoadError> {
    let load = &outcomes.load;
    let mut all = crate::record::histogram();
    for e in &load.endpoints {
        if e.requests > 0 {
            let h = report::decode_histogram(&e.histogram)
                .map_err(|e| LoadError::Configuration(format!("a step's histogram: {e}")))?;
            all.add(&h).map_err(|e| LoadError::Configuration(format!("a step's histogram: {e:?}")))?;
        }
    }
    let latency_ms = if all.is_empty() { Latency::ZERO } else { Latency::of(&all) };
    let concurrency = if open {
        // Little's law: requests in flight = arrival (here, answer) rate × time in the system.
        load.throughput * latency_ms.mean / 1000.0
    } else {
        offered
    };
    let missed: Vec<String> =
        outcomes.targets.iter().filter(|t| !t.passed).map(|t| format!("{}: {}", t.name, t.detail)).collect();
    Ok(Step {
        offered,
        started_at_ms: load.started_at_ms,
        duration_s: load.duration_s,
        requests: load.requests,
        errors: load.errors,
        unsent: load.unsent,
        throughput: load.throughput,
        concurrency,
        latency_ms,
        histogram: report::encode_histogram(&all)
            .map_err(|e| LoadError::Configuration(format!("a step's histogram: {e}")))?,
        complete: !outcomes.interrupted,
        passed: !outcomes.interrupted && missed.is_empty(),
        missed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_without_a_fit_counts_the_usable_steps_in_agreement() {
        assert!(no_fit(&[(0.0, 0.0), (2.0, 10.0)]).starts_with("1 complete step with"), "{}", no_fit(&[]));
        assert!(no_fit(&[(1.0, 5.0), (2.0, 10.0)]).starts_with("2 complete steps with"));
        assert!(no_fit(&[(1.0, 0.0)]).starts_with("0 complete steps with"));
    }
}
