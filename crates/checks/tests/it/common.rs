//! Stacks started for one test, the reference profile with small bursts, and one check run.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use checks::{Check, Verdict};
use client::Target;
use profile::Profile;
use stack::{Mutant, RunningStack, StackConfig};

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Where the stack keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Each instance its own memory.
    Memory,
    /// Redis and PostgreSQL, shared by the instances.
    Shared,
}

/// How the check is run: the stack, and the burst sizes.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    pub backend: Backend,
    pub instances: usize,
    pub mutant: Option<&'static str>,
    pub concurrency: usize,
    pub rounds: usize,
}

impl Setup {
    /// One instance on memory, bursts of 16, two rounds.
    pub fn memory() -> Self {
        Self { backend: Backend::Memory, instances: 1, mutant: None, concurrency: 16, rounds: 2 }
    }

    /// Three instances on Redis and PostgreSQL.
    pub fn shared() -> Self {
        Self { backend: Backend::Shared, instances: 3, ..Self::memory() }
    }

    pub fn instances(self, instances: usize) -> Self {
        Self { instances, ..self }
    }

    pub fn mutant(self, mutant: &'static str) -> Self {
        Self { mutant: Some(mutant), ..self }
    }

    pub fn bursts(self, concurrency: usize, rounds: usize) -> Self {
        Self { concurrency, rounds, ..self }
    }
}

/// The reference profile as `stampede check` reads it.
pub fn reference_profile() -> Profile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/reference.toml");
    Profile::load(&path).expect("the reference profile loads")
}

/// The reference profile's checks, read as their kinds.
pub fn reference_checks(profile: &Profile) -> Vec<Check> {
    checks::read(profile).expect("the reference profile's checks read")
}

/// Runs the reference profile's check `name` under `setup`; `None` when the setup's services
/// cannot be reached outside CI.
pub async fn run(name: &str, setup: Setup) -> Option<Verdict> {
    // Unique per test: tests of one binary share the process and the services.
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let run = format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let stacks = start(&run, setup).await?;
    let mut profile = reference_profile();
    profile.defaults.concurrency = setup.concurrency;
    profile.defaults.rounds = setup.rounds;
    let check: Check = reference_checks(&profile)
        .into_iter()
        .find(|c| c.name() == name)
        .unwrap_or_else(|| panic!("no check {name} in the profile"));
    let urls = stacks.iter().map(RunningStack::url).collect();
    let target = Target::new(urls, profile, run).expect("an HTTP client");
    let verdict = check.run(&target).await.expect("the check runs");
    let backends = stacks.first().map(|s| s.state().backends.clone());
    for running in stacks {
        let _ = running.shutdown().await;
    }
    // Leave nothing behind on the shared servers: the run's keys and schema go with it.
    if let Some(backends) = backends {
        backends.purge().await.expect("remove the run's namespace");
    }
    println!("{name} {setup:?}: {} {}", if verdict.held() { "pass" } else { "FAIL" }, verdict.summary);
    Some(verdict)
}

async fn start(run: &str, setup: Setup) -> Option<Vec<RunningStack>> {
    let mutant = setup.mutant.map(|m| Mutant::parse(m).expect("a stack mutant"));
    let mut stacks = Vec::new();
    for i in 0..setup.instances {
        let mut config = StackConfig::default();
        if setup.backend == Backend::Shared {
            config.backends.redis = Some(redis_url());
            config.backends.database = Some(database_url());
        }
        config.backends.namespace = format!("checks-it-{run}");
        config.backends.application_name = format!("checks-it-{i}");
        config.settings.instance = format!("stack-{i}");
        config.settings.mutant = mutant;
        match stack::start(config).await {
            Ok(running) => stacks.push(running),
            Err(e) => {
                skip("redis and postgres", &format_args!("cannot start the stack: {e}"));
                return None;
            }
        }
    }
    Some(stacks)
}

/// Asserts the verdict passed, showing its violations when not.
pub fn assert_passed(verdict: &Verdict) {
    assert!(verdict.held(), "{}: {} {:#?}", verdict.check, verdict.summary, verdict.violations);
}

/// Asserts the verdict failed, `rule` among the rules it broke.
pub fn assert_broke(verdict: &Verdict, rule: &str) {
    assert!(!verdict.held(), "{} passed: {}", verdict.check, verdict.summary);
    assert!(verdict.rules().contains(&rule), "{} broke {:?}, not {rule}", verdict.check, verdict.rules());
}

/// A test that cannot run for want of `service`: under `CI=true`, a failure; otherwise a notice
/// and a line in the file `STAMPEDE_SKIPPED` names, which `ci/test` counts (and fails on).
pub fn skip(service: &str, why: &dyn std::fmt::Display) {
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let why = why.to_string().replace('\n', " ");
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{test}: {service}: {why} (CI=true: {service} is required; run ci/services)");
    }
    eprintln!("skipping {test}: {service}: {why} (run ci/services; CI=true fails instead)");
    if let Some(path) = std::env::var_os("STAMPEDE_SKIPPED") {
        use std::io::Write;
        let mut file =
            std::fs::OpenOptions::new().create(true).append(true).open(path).expect("open $STAMPEDE_SKIPPED");
        file.write_all(format!("{test}\t{service}: {why}\n").as_bytes())
            .expect("append to $STAMPEDE_SKIPPED");
    }
}
