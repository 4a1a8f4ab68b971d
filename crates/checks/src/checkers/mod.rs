//! The check kinds, one file each: its configuration (a `[[check]]` table), its [`Kind`]
//! implementation, a `run` that drives the target and records a history, and a pure `judge`
//! over that history — the same function the tests feed with histories of the correct stack
//! and of its mutants. [`kinds!`] below is the one list of them: the [`Check`] enum, reading a
//! table as its kind, and every dispatch come from it.
//!
//! Adding a kind: a file here (configuration, `impl Kind`, `run`, `judge`, the judge's tests),
//! its `mod` line and one line in the list, its section in `docs/profile.md`, and a check of it
//! in `scenarios/reference.toml`. (The modules are declared outside the macro so that rustfmt,
//! cargo-mutants and editors, which follow `mod` items, see their files.)

use client::{Target, TargetError};
use profile::{CheckTable, Defaults, Profile, ProfileError};
use report::checks::Verdict;

use crate::kind::{Kind, Need, Tuning};

pub mod breaker;
pub mod counter;
pub mod cursor_walk;
pub mod growth;
pub mod invalidation;
pub mod lifecycle;
pub mod merge;
pub mod query_budget;
pub mod rate_limit;
pub mod secrets;
pub mod slow_clients;
pub mod support;
pub mod token_refresh;
pub mod unique;
pub mod upload;
pub mod upstream_pool;
pub mod usage_plan;
pub mod vary;
pub mod ws_connections;

macro_rules! kinds {
    ($($variant:ident => $module:ident :: $config:ident,)*) => {

        /// One check of a profile, read as its kind's configuration.
        #[derive(Debug, Clone)]
        pub enum Check {
            $($variant($module::$config),)*
        }

        /// Every kind, as profiles name it.
        pub const KINDS: &[&str] = &[$(<$module::$config as Kind>::KIND,)*];

        impl Check {
            /// Reads `table` as the kind it names.
            pub fn read(table: &CheckTable) -> Result<Self, ProfileError> {
                $(
                    if table.kind == <$module::$config as Kind>::KIND {
                        return crate::kind::read(table).map(Check::$variant);
                    }
                )*
                Err(table.invalid_at(
                    &["kind"],
                    format!("unknown kind {:?}; known: {}", table.kind, KINDS.join(", ")),
                ))
            }

            /// Its request templates, by field.
            pub fn requests(&self) -> Vec<(&'static str, &profile::template::RequestTemplate)> {
                match self { $(Check::$variant(c) => c.requests(),)* }
            }

            /// Its JSON pointers, by field.
            pub fn pointers(&self) -> Vec<(&'static str, &str)> {
                match self { $(Check::$variant(c) => c.pointers(),)* }
            }

            /// Its recognisers of answers, by field.
            pub fn recognisers(&self) -> Vec<(&'static str, &profile::template::Recognise)> {
                match self { $(Check::$variant(c) => c.recognisers(),)* }
            }

            pub fn name(&self) -> &str {
                match self { $(Check::$variant(c) => c.name(),)* }
            }

            pub fn kind(&self) -> &'static str {
                match self { $(Check::$variant(_) => <$module::$config as Kind>::KIND,)* }
            }

            /// Whether it drives the fake upstream the target calls.
            pub fn drives_upstream(&self) -> bool {
                match self { $(Check::$variant(_) => <$module::$config as Kind>::DRIVES_UPSTREAM,)* }
            }

            /// Whether it spends the upstream's plan for the rest of its period.
            pub fn spends_plan(&self) -> bool {
                match self { $(Check::$variant(_) => <$module::$config as Kind>::SPENDS_PLAN,)* }
            }

            /// About how many upstream calls it makes.
            pub fn upstream_calls(&self, defaults: &Defaults) -> u64 {
                match self { $(Check::$variant(c) => c.upstream_calls(defaults),)* }
            }

            /// What it needs of a reference stack stampede starts.
            pub fn needs(&self) -> Vec<Need> {
                match self { $(Check::$variant(c) => c.needs(),)* }
            }

            /// Drives the target and judges what it recorded.
            pub async fn run(&self, target: &Target) -> Result<Verdict, TargetError> {
                match self { $(Check::$variant(c) => c.run(target).await,)* }
            }
        }
    };
}

kinds! {
    RateLimit => rate_limit::RateLimitCheck,
    UniqueCreation => unique::UniqueCreationCheck,
    Counter => counter::CounterCheck,
    Merge => merge::MergeCheck,
    Invalidation => invalidation::InvalidationCheck,
    CursorWalk => cursor_walk::CursorWalkCheck,
    QueryBudget => query_budget::QueryBudgetCheck,
    Vary => vary::VaryCheck,
    Upload => upload::UploadCheck,
    Breaker => breaker::BreakerCheck,
    TokenRefresh => token_refresh::TokenRefreshCheck,
    WsConnections => ws_connections::WsConnectionsCheck,
    ImportLifecycle => lifecycle::ImportLifecycleCheck,
    UpstreamPool => upstream_pool::UpstreamPoolCheck,
    UsagePlan => usage_plan::UsagePlanCheck,
    Secrets => secrets::SecretsCheck,
    SlowClients => slow_clients::SlowClientsCheck,
    Growth => growth::GrowthCheck,
}

/// The profile's checks, each read as its kind, in order.
pub fn read(profile: &Profile) -> Result<Vec<Check>, ProfileError> {
    let checks = profile.checks.iter().map(Check::read).collect::<Result<Vec<_>, _>>()?;
    plan_last(&checks, &profile.checks)?;
    Ok(checks)
}

/// A check that spends the upstream plan exhausts it for the rest of its period, so no check
/// that drives the upstream may run after it, and there is at most one.
fn plan_last(checks: &[Check], tables: &[CheckTable]) -> Result<(), ProfileError> {
    let plans: Vec<usize> = (0..checks.len()).filter(|&i| checks[i].spends_plan()).collect();
    if let [first, second, ..] = plans[..] {
        return Err(tables[second].invalid(format!(
            "checks {:?} and {:?} both exhaust the upstream plan; keep one",
            checks[first].name(),
            checks[second].name()
        )));
    }
    let Some(&plan) = plans.first() else { return Ok(()) };
    match (plan + 1..checks.len()).find(|&i| checks[i].drives_upstream()) {
        Some(after) => Err(tables[plan].invalid(format!(
            "it exhausts the upstream plan, and {:?} after it needs upstream calls: move {:?} to the \
             end of the profile",
            checks[after].name(),
            checks[plan].name()
        ))),
        None => Ok(()),
    }
}

/// What a reference stack stampede starts needs for `checks`: each kind's settings, and, with
/// a check that spends the upstream plan, a plan sized from the calls of the checks before it
/// (half as many again, for a slow machine's longer phases) and its own: enough that no check
/// before it is refused, little enough that it spends the rest within seconds. Two checks that
/// need one setting at different values cannot both be judged on one stack: an error naming
/// them, as is a visibility timeout shorter than an upstream call a check holds.
pub fn tuning(checks: &[Check], defaults: &Defaults) -> Result<Tuning, String> {
    let needs: Vec<(&str, Need)> =
        checks.iter().flat_map(|c| c.needs().into_iter().map(move |n| (c.name(), n))).collect();
    let mut stack = Tuning::with(&needs)?;
    if let Some(plan) = checks.iter().position(Check::spends_plan) {
        let before: u64 = checks[..plan].iter().map(|c| c.upstream_calls(defaults)).sum();
        stack.upstream_plan = Some(before * 3 / 2 + checks[plan].upstream_calls(defaults));
    }
    Ok(stack)
}
