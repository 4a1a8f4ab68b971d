//! `stampede capacity`: the load stepped up until a target breaks, what each step measured,
//! the Universal Scalability Law fitted to the steps, and how many instances a user goal
//! needs. The stepping itself runs in crate `load`; this is its record and its arithmetic.
//!
//! The USL (Gunther): `X(N) = λN / (1 + σ(N−1) + κN(N−1))` — throughput `X` at concurrency
//! `N`, with `λ` the throughput of one unit of concurrency alone, `σ` contention (the
//! serialised share) and `κ` coherency (the cost of keeping shared state agreed; with κ > 0
//! throughput peaks at `N* = √((1−σ)/κ)` and falls beyond). [`fit`] finds λ by a search in
//! one dimension and, for each λ, σ and κ by least squares constrained to σ, κ ≥ 0 — the
//! model's physical range — so a noisy run never yields a negative contention.

use serde::{Deserialize, Serialize};

use crate::Latency;

/// How the load is stepped; a profile's `[capacity]` section, each field overridden by a
/// flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Stepping {
    /// The first step: requests per second (open model) or users (closed model).
    pub start: f64,
    /// Added at every step.
    pub step: f64,
    /// Seconds each step is held.
    pub hold_s: f64,
    /// No step goes beyond this.
    pub ceiling: f64,
    /// Seconds of quiet between steps, so one step's backlog does not land in the next.
    pub cooldown_s: f64,
    /// The users the plan is for (with `per_user_rate`).
    pub users_goal: Option<u64>,
    /// Requests per second one user sends on average, in the profile's mix.
    pub per_user_rate: Option<f64>,
    /// The share of an instance's sustainable rate the plan fills; the rest is room for
    /// spikes and for a lost instance.
    pub headroom: f64,
}

impl Default for Stepping {
    fn default() -> Self {
        Self {
            start: 50.0,
            step: 50.0,
            hold_s: 10.0,
            ceiling: 1000.0,
            cooldown_s: 2.0,
            users_goal: None,
            per_user_rate: None,
            headroom: 0.7,
        }
    }
}

/// More steps than this is a typo, not a plan.
pub(crate) const MAX_STEPS: usize = 200;

impl Stepping {
    /// Refuses what cannot be stepped or planned, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("{name} {v}: must be a finite number > 0"))
            }
        };
        positive("start", self.start)?;
        positive("step", self.step)?;
        positive("hold_s", self.hold_s)?;
        positive("ceiling", self.ceiling)?;
        if self.ceiling < self.start {
            return Err(format!("ceiling {} is below start {}", self.ceiling, self.start));
        }
        if !(self.cooldown_s.is_finite() && self.cooldown_s >= 0.0) {
            return Err(format!("cooldown_s {}: must be a finite number ≥ 0", self.cooldown_s));
        }
        if !(self.headroom.is_finite() && self.headroom > 0.0 && self.headroom <= 1.0) {
            return Err(format!("headroom {}: must be in (0, 1] (0.7 plans for 70 %)", self.headroom));
        }
        match (self.users_goal, self.per_user_rate) {
            (Some(0), _) => return Err("users_goal 0: plan for at least one user".into()),
            (Some(_), None) => {
                return Err("users_goal needs per_user_rate (requests per second per user)".into());
            }
            (None, Some(_)) => return Err("per_user_rate without users_goal: nothing to plan for".into()),
            (_, Some(r)) => positive("per_user_rate", r)?,
            (None, None) => {}
        }
        let steps = self.levels().len();
        if steps > MAX_STEPS {
            return Err(format!(
                "{steps} steps from {} to {} by {}: at most {MAX_STEPS}",
                self.start, self.ceiling, self.step
            ));
        }
        Ok(())
    }

    /// The steps' loads, from `start` by `step` up to `ceiling` (stops past `MAX_STEPS`, 200).
    pub fn levels(&self) -> Vec<f64> {
        let mut levels = Vec::new();
        let mut i = 0u32;
        loop {
            let level = self.start + f64::from(i) * self.step;
            // A ceiling reached by repeated addition is reached, rounding aside.
            if level > self.ceiling * (1.0 + 1e-9) || levels.len() > MAX_STEPS {
                return levels;
            }
            levels.push(level);
            i += 1;
        }
    }
}

/// A capacity run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityReport {
    /// "open" (steps are arrival rates) or "closed" (steps are users).
    pub model: String,
    /// What a step's `offered` counts: "requests/s" or "users".
    pub unit: String,
    pub stepping: Stepping,
    /// How many instances of the stack the steps were offered to.
    pub instances: usize,
    pub steps: Vec<Step>,
    /// Index into `steps` of the highest step that met every target; none when the first
    /// step broke one.
    pub sustainable: Option<usize>,
    /// Why stepping ended.
    pub stopped: String,
    /// A step could not be offered in full (requests fell due and were never sent): the
    /// generator, not the stack, set the limit, and the stack's capacity is at least the
    /// sustainable step.
    pub limited_by_generator: bool,
    /// The USL fitted to the complete steps' (concurrency, throughput); none below three.
    pub fit: Option<UslFit>,
    /// Why there is no fit, when there is none.
    pub fit_note: Option<String>,
    /// Instances for `users_goal`, when asked.
    pub plan: Option<InstancePlan>,
}

/// One step's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Requests per second or users offered.
    pub offered: f64,
    /// Milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    pub duration_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub unsent: u64,
    /// Answers per second.
    pub throughput: f64,
    /// Requests in flight on average: users (closed model), or throughput × mean latency
    /// (Little's law, open model).
    pub concurrency: f64,
    /// Every endpoint's samples together.
    pub latency_ms: Latency,
    /// Their histogram (V2, base64), so steps of several generators merge exactly.
    pub histogram: String,
    /// Held for its whole `hold_s` (false for the step Ctrl-C cut short).
    pub complete: bool,
    pub passed: bool,
    /// The targets it missed, each with what was measured.
    pub missed: Vec<String>,
}

/// The USL's parameters and how well they describe the steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UslFit {
    /// Throughput of one unit of concurrency (per second).
    pub lambda: f64,
    /// Contention.
    pub sigma: f64,
    /// Coherency.
    pub kappa: f64,
    /// 1 − SSE/SST of throughput: the share of its variation the curve explains.
    pub r_squared: f64,
    pub points: usize,
    /// `N* = √((1−σ)/κ)`; none when κ = 0 (throughput only levels off, toward λ/σ).
    pub peak_concurrency: Option<f64>,
    /// `X(N*)`.
    pub peak_throughput: Option<f64>,
}

impl UslFit {
    /// The fitted throughput at concurrency `n`.
    pub(crate) fn throughput(&self, n: f64) -> f64 {
        usl(self.lambda, self.sigma, self.kappa, n)
    }
}

fn usl(lambda: f64, sigma: f64, kappa: f64, n: f64) -> f64 {
    lambda * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))
}

/// Fits the USL to `(concurrency, throughput)` points; none with fewer than three distinct
/// concurrencies (three parameters) or none positive.
pub fn fit(points: &[(f64, f64)]) -> Option<UslFit> {
    let points: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(n, x)| n.is_finite() && x.is_finite() && *n > 0.0 && *x > 0.0)
        .collect();
    let mut distinct: Vec<f64> = points.iter().map(|p| p.0).collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup_by(|a, b| (*a - *b).abs() <= 1e-12 * b.abs().max(1.0));
    if distinct.len() < 3 {
        return None;
    }
    // λ is near the best throughput per unit of concurrency; search a wide band around it
    // on a log scale, then refine by golden section around the best grid point.
    let ratios: Vec<f64> = points.iter().map(|(n, x)| x / n).collect();
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min) / 4.0;
    let hi = ratios.iter().copied().fold(0.0, f64::max) * 4.0;
    let sse_at = |lambda: f64| {
        let (sigma, kappa) = contention_coherency(&points, lambda);
        (points.iter().map(|(n, x)| (usl(lambda, sigma, kappa, *n) - x).powi(2)).sum::<f64>(), sigma, kappa)
    };
    const GRID: usize = 400;
    let at = |i: usize| lo * (hi / lo).powf(i as f64 / GRID as f64);
    let best = (0..=GRID).min_by(|a, b| sse_at(at(*a)).0.total_cmp(&sse_at(at(*b)).0))?;
    let (mut a, mut b) = (at(best.saturating_sub(1)), at((best + 1).min(GRID)));
    let golden = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..100 {
        let (c, d) = (b - golden * (b - a), a + golden * (b - a));
        if sse_at(c).0 < sse_at(d).0 {
            b = d;
        } else {
            a = c;
        }
    }
    let lambda = (a + b) / 2.0;
    let (sse, sigma, kappa) = sse_at(lambda);
    let mean = points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64;
    let sst: f64 = points.iter().map(|p| (p.1 - mean).powi(2)).sum();
    let r_squared = if sst > 0.0 {
        1.0 - sse / sst
    } else if sse <= 1e-12 {
        1.0
    } else {
        0.0
    };
    let peak_concurrency = (kappa > 0.0 && sigma < 1.0).then(|| ((1.0 - sigma) / kappa).sqrt());
    Some(UslFit {
        lambda,
        sigma,
        kappa,
        r_squared,
        points: points.len(),
        peak_concurrency,
        peak_throughput: peak_concurrency.map(|n| usl(lambda, sigma, kappa, n)),
    })
}

/// For a given λ the USL is linear in σ and κ: `λN/X − 1 = σ(N−1) + κN(N−1)`. Least squares
/// with σ, κ ≥ 0: the unconstrained solution when it is feasible, else the best of the
/// boundary solutions (one of them zero).
fn contention_coherency(points: &[(f64, f64)], lambda: f64) -> (f64, f64) {
    let rows: Vec<(f64, f64, f64)> =
        points.iter().map(|(n, x)| (n - 1.0, n * (n - 1.0), lambda * n / x - 1.0)).collect();
    let sse = |s: f64, k: f64| rows.iter().map(|(a, b, y)| (y - s * a - k * b).powi(2)).sum::<f64>();
    let (saa, sbb, sab) =
        rows.iter().fold((0.0, 0.0, 0.0), |(aa, bb, ab), (a, b, _)| (aa + a * a, bb + b * b, ab + a * b));
    let (say, sby) = rows.iter().fold((0.0, 0.0), |(ay, by), (a, b, y)| (ay + a * y, by + b * y));
    let mut candidates = vec![(0.0, 0.0)];
    let det = saa * sbb - sab * sab;
    if det.abs() > 1e-12 * (saa * sbb).max(1e-300) {
        let (s, k) = ((say * sbb - sby * sab) / det, (sby * saa - say * sab) / det);
        if s >= 0.0 && k >= 0.0 {
            candidates.push((s, k));
        }
    }
    if saa > 0.0 {
        candidates.push(((say / saa).max(0.0), 0.0));
    }
    if sbb > 0.0 {
        candidates.push((0.0, (sby / sbb).max(0.0)));
    }
    candidates.into_iter().min_by(|p, q| sse(p.0, p.1).total_cmp(&sse(q.0, q.1))).unwrap_or((0.0, 0.0))
}

/// Instances needed for a goal of users, from what one measured instance sustained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstancePlan {
    pub users_goal: u64,
    pub per_user_rate: f64,
    /// `users_goal × per_user_rate`, requests per second.
    pub required_rate: f64,
    /// The sustainable step's throughput divided by the instances it was measured on.
    pub per_instance_rate: f64,
    pub headroom: f64,
    /// `⌈required_rate / (per_instance_rate × headroom)⌉`.
    pub instances: u64,
    /// What the number rests on, in words, printed beside it.
    pub assumptions: Vec<String>,
}

/// The plan for `stepping`'s goal, given the sustainable throughput measured on `instances`
/// instances; none without a goal or without a sustainable step.
pub fn plan(
    stepping: &Stepping,
    sustainable_throughput: Option<f64>,
    instances: usize,
    limited_by_generator: bool,
) -> Option<InstancePlan> {
    let (users_goal, per_user_rate) = (stepping.users_goal?, stepping.per_user_rate?);
    let measured = sustainable_throughput.filter(|x| *x > 0.0)?;
    let per_instance_rate = measured / instances.max(1) as f64;
    let required_rate = users_goal as f64 * per_user_rate;
    let instances_needed = (required_rate / (per_instance_rate * stepping.headroom)).ceil().max(1.0) as u64;
    let mut assumptions = vec![
        format!(
            "{users_goal} users at {per_user_rate} requests/s each on average, in the profile's mix: \
             {required_rate:.1} requests/s"
        ),
        format!(
            "one instance sustains {per_instance_rate:.1} requests/s with every target met \
             ({measured:.1} requests/s measured on {})",
            crate::plural(instances as u64, "instance", "instances")
        ),
        format!(
            "each instance is planned at {:.0} % of that; the rest is headroom for spikes and a lost instance",
            stepping.headroom * 100.0
        ),
        format!(
            "instances add capacity linearly: Redis and PostgreSQL were measured behind {} only \
             and must keep up with {instances_needed}",
            crate::plural(instances as u64, "instance", "instances")
        ),
    ];
    if limited_by_generator {
        assumptions.push(
            "the generator, not the stack, limited the steps: the per-instance rate is a lower bound"
                .to_owned(),
        );
    }
    Some(InstancePlan {
        users_goal,
        per_user_rate,
        required_rate,
        per_instance_rate,
        headroom: stepping.headroom,
        instances: instances_needed,
        assumptions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_recovers_the_parameters_of_an_exact_curve() {
        let (lambda, sigma, kappa) = (1000.0, 0.05, 0.002);
        let points: Vec<(f64, f64)> = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
            .iter()
            .map(|n| (*n, usl(lambda, sigma, kappa, *n)))
            .collect();
        let f = fit(&points).unwrap();
        assert!((f.lambda - lambda).abs() / lambda < 1e-3, "{f:?}");
        assert!((f.sigma - sigma).abs() < 1e-3, "{f:?}");
        assert!((f.kappa - kappa).abs() < 1e-4, "{f:?}");
        assert!(f.r_squared > 0.999_999, "{f:?}");
        let peak = ((1.0 - sigma) / kappa).sqrt();
        assert!((f.peak_concurrency.unwrap() - peak).abs() / peak < 1e-2, "{f:?}");
        assert!((f.throughput(peak) - f.peak_throughput.unwrap()).abs() < 1e-6);
    }

    #[test]
    fn linear_scaling_has_no_peak_and_contention_only_levels_off() {
        let linear: Vec<(f64, f64)> = (1..=6).map(|n| (f64::from(n), 250.0 * f64::from(n))).collect();
        let f = fit(&linear).unwrap();
        assert!((f.lambda - 250.0).abs() < 0.5 && f.sigma < 1e-3 && f.kappa < 1e-6, "{f:?}");
        let levelling: Vec<(f64, f64)> =
            (1..=8).map(|n| (f64::from(n), usl(100.0, 0.3, 0.0, f64::from(n)))).collect();
        let f = fit(&levelling).unwrap();
        assert!((f.sigma - 0.3).abs() < 1e-3 && f.kappa < 1e-6, "{f:?}");
        assert_eq!(f.peak_concurrency, None, "κ = 0: no retrograde region, no peak");
    }

    #[test]
    fn noise_never_yields_negative_parameters_and_lowers_r_squared() {
        // Superlinear-looking noise would want σ < 0; the constraint holds it at zero.
        let points = [(1.0, 100.0), (2.0, 215.0), (3.0, 290.0), (4.0, 430.0), (5.0, 470.0)];
        let f = fit(&points).unwrap();
        assert!(f.sigma >= 0.0 && f.kappa >= 0.0, "{f:?}");
        assert!(f.r_squared < 1.0 && f.r_squared > 0.9, "{f:?}");
    }

    #[test]
    fn fewer_than_three_distinct_concurrencies_are_not_fitted() {
        assert_eq!(fit(&[(1.0, 10.0), (2.0, 19.0)]), None);
        assert_eq!(fit(&[(1.0, 10.0), (2.0, 19.0), (2.0, 19.5), (0.0, 3.0)]), None);
        assert!(fit(&[(1.0, 10.0), (2.0, 19.0), (3.0, 27.0)]).is_some());
    }

    #[test]
    fn the_plan_divides_the_goal_by_what_one_instance_sustains_with_headroom() {
        let stepping =
            Stepping { users_goal: Some(100_000), per_user_rate: Some(0.02), ..Stepping::default() };
        // 2,000 requests/s needed; 700 measured on 2 instances: 350 each, 245 planned each.
        let p = plan(&stepping, Some(700.0), 2, false).unwrap();
        assert_eq!(p.required_rate, 2000.0);
        assert_eq!(p.per_instance_rate, 350.0);
        assert_eq!(p.instances, 9, "⌈2000 / 245⌉");
        assert!(p.assumptions.iter().any(|a| a.contains("70 %")), "{:?}", p.assumptions);
        assert!(plan(&Stepping::default(), Some(700.0), 1, false).is_none(), "no goal, no plan");
        assert!(plan(&stepping, None, 1, false).is_none(), "nothing sustainable, nothing to plan from");
        assert!(p.assumptions.iter().any(|a| a.contains("measured on 2 instances)")), "{:?}", p.assumptions);
        let one = plan(&stepping, Some(350.0), 1, false).unwrap();
        assert!(
            one.assumptions.iter().any(|a| a.contains("measured on 1 instance)")),
            "{:?}",
            one.assumptions
        );
        assert!(
            one.assumptions.iter().any(|a| a.contains("behind 1 instance only")),
            "{:?}",
            one.assumptions
        );
        let bound = plan(&stepping, Some(700.0), 2, true).unwrap();
        assert!(bound.assumptions.iter().any(|a| a.contains("lower bound")));
    }

    #[test]
    fn stepping_refuses_what_it_cannot_step_naming_the_field() {
        let ok = Stepping::default();
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ok.levels().first(), Some(&50.0));
        assert_eq!(ok.levels().last(), Some(&1000.0));
        assert_eq!(ok.levels().len(), 20);
        let thirds = Stepping { start: 0.1, step: 0.1, ceiling: 0.3, ..ok.clone() };
        assert_eq!(thirds.levels().len(), 3, "a ceiling reached by repeated addition is reached");
        for (bad, field) in [
            (Stepping { step: 0.0, ..ok.clone() }, "step"),
            (Stepping { ceiling: 10.0, ..ok.clone() }, "ceiling"),
            (Stepping { headroom: 1.5, ..ok.clone() }, "headroom"),
            (Stepping { cooldown_s: f64::NAN, ..ok.clone() }, "cooldown_s"),
            (Stepping { users_goal: Some(10), ..ok.clone() }, "users_goal needs per_user_rate"),
            (Stepping { step: 0.001, ..ok.clone() }, "at most"),
        ] {
            let e = bad.validate().unwrap_err();
            assert!(e.contains(field), "{field}: {e}");
        }
    }
}
