//! The profile a command runs: `--profile FILE` or the built-in reference one, its checks as
//! `--only`/`--skip` select them, and the command line's overrides of bursts and load.

use std::path::Path;

use checks::Check;
use profile::Profile;
use profile::load::Model;

/// The reference stack's profile, used when `--profile` is not given.
pub(crate) const REFERENCE_PROFILE: &str = include_str!("../scenarios/reference.toml");

/// The profile at `path`, or the built-in reference one; its checks are read as their kinds
/// too, so a command that runs none (`load`, `capacity`, `report compare`) still refuses a
/// profile with a mistake in one.
pub(crate) fn read(path: Option<&Path>) -> anyhow::Result<Profile> {
    let profile = match path {
        Some(path) => Profile::load(path)?,
        None => Profile::parse(Path::new("scenarios/reference.toml (built in)"), REFERENCE_PROFILE)?,
    };
    checks::read(&profile)?;
    Ok(profile)
}

/// Which checks run, and their bursts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selection {
    pub(crate) only: Vec<String>,
    pub(crate) skip: Vec<String>,
    /// Checks that may end inconclusive without failing the run.
    pub(crate) allow_inconclusive: Vec<String>,
    pub(crate) concurrency: Option<usize>,
    pub(crate) rounds: Option<usize>,
    /// The longest a check waits for a phase (overrides the profile's `max_wait_ms`).
    pub(crate) max_wait: Option<std::time::Duration>,
    /// Processes behind each target URL (overrides the profile's `processes`).
    pub(crate) processes: Option<usize>,
    /// The answer header naming the process (overrides the profile's `instance_header`).
    pub(crate) instance_header: Option<String>,
}

/// `profile`'s checks read as their kinds (every one, so a mistake in a check left out is
/// still an error), narrowed to `selection`, the profile's defaults overridden; a name the
/// profile does not have is an error that lists those it has.
pub(crate) fn checks(profile: &mut Profile, selection: &Selection) -> anyhow::Result<Vec<Check>> {
    let mut checks = checks::read(profile)?;
    for (flag, names) in [
        ("--only", &selection.only),
        ("--skip", &selection.skip),
        ("--allow-inconclusive", &selection.allow_inconclusive),
    ] {
        for name in names {
            if profile.check(name).is_none() {
                let known: Vec<&str> = profile.checks.iter().map(|c| c.name.as_str()).collect();
                anyhow::bail!("{flag} {name:?}: the profile has no such check; it has {}", known.join(", "));
            }
        }
    }
    let selected = |name: &str| {
        (selection.only.is_empty() || selection.only.iter().any(|n| n == name))
            && !selection.skip.iter().any(|n| n == name)
    };
    checks.retain(|c| selected(c.name()));
    profile.checks.retain(|c| selected(&c.name));
    if let Some(c) = selection.concurrency {
        anyhow::ensure!(c >= 1, "--concurrency must be at least 1");
        profile.defaults.concurrency = c;
    }
    if let Some(r) = selection.rounds {
        anyhow::ensure!(r >= 1, "--rounds must be at least 1");
        profile.defaults.rounds = r;
    }
    if let Some(wait) = selection.max_wait {
        profile.defaults.max_wait_ms = wait.as_millis() as u64;
    }
    if let Some(p) = selection.processes {
        profile.defaults.processes = p;
    }
    if let Some(header) = &selection.instance_header {
        // `''` clears the profile's.
        profile.defaults.instance_header = Some(header.clone()).filter(|h| !h.is_empty());
    }
    if let Some(header) = &profile.defaults.instance_header {
        anyhow::ensure!(
            !header.is_empty()
                && header.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)),
            "instance_header {header:?} is not a header name"
        );
    }
    anyhow::ensure!(
        (1..=64).contains(&profile.defaults.processes),
        "processes (behind each target URL) must be 1 to 64, not {}",
        profile.defaults.processes
    );
    Ok(checks)
}

/// The command line's overrides of `[load]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoadOverrides {
    /// `open` or `closed`.
    pub(crate) model: Option<String>,
    pub(crate) duration: Option<f64>,
    pub(crate) rate: Option<f64>,
    pub(crate) ramp_to: Option<f64>,
    pub(crate) users: Option<usize>,
}

/// `profile`'s `[load]` with `overrides` over it, checked again; an error when it has none.
pub(crate) fn load(profile: &mut Profile, overrides: &LoadOverrides) -> anyhow::Result<()> {
    let Some(load) = profile.load.as_mut() else {
        anyhow::bail!("the profile {:?} has no [load] section: nothing to offer", profile.name);
    };
    match overrides.model.as_deref() {
        Some("open") if load.model == Model::Closed => {
            load.model = Model::Open;
            load.users = None;
            load.users_per_s = None;
            load.think_ms = None;
            load.rate = load.rate.or(Some(50.0));
        }
        Some("closed") if load.model == Model::Open => {
            load.model = Model::Closed;
            load.rate = None;
            load.ramp_to = None;
            load.users = load.users.or(Some(10));
        }
        _ => {}
    }
    if let Some(d) = overrides.duration {
        load.duration_s = d;
    }
    if let Some(r) = overrides.rate {
        anyhow::ensure!(load.model == Model::Open, "--rate is for the open model");
        load.rate = Some(r);
        load.ramp_to = None;
    }
    if let Some(r) = overrides.ramp_to {
        anyhow::ensure!(load.model == Model::Open, "--ramp-to is for the open model");
        load.ramp_to = Some(r);
    }
    if let Some(u) = overrides.users {
        anyhow::ensure!(load.model == Model::Closed, "--users is for the closed model");
        load.users = Some(u);
    }
    load.validate(&profile.objectives)
        .map_err(|(_, e)| anyhow::anyhow!("{e} (after the command line's overrides)"))?;
    let held = match load.model {
        Model::Open => load.max_in_flight,
        Model::Closed => load.users.unwrap_or_default(),
    };
    if let Some(said) = crate::descriptors::short_of(held as u64, "the load") {
        eprintln!("stampede: warning: {said}");
    }
    Ok(())
}
