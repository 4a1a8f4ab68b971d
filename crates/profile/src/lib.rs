//! The profile: one TOML file (`scenarios/*.toml`, format in `docs/profile.md`) that maps one
//! stack — how to get users and tokens, the checks to run (`[[check]]`), the load to offer
//! (`[load]`), the objectives a load run must meet (`[targets]`), what counts as a regression
//! against a baseline (`[compare]`) and how a capacity run steps (`[capacity]`).
//!
//! - [`template`] — the request template language and its placeholders, and recognisers;
//! - [`check`] — `[[check]]` tables as an open set: a name, a kind, a table the kind reads;
//! - [`load`] — `[load]`; [`objectives`] — `[targets]`; [`prometheus`] — series selectors and
//!   the text exposition they select from;
//! - [`error`] — errors that name the file, the line and the field.
//!
//! A malformed file is refused with its path, the line and column, and the source line: every
//! table refuses fields it does not know, so a typo is an error, never a silently ignored
//! setting. Why these dependencies: toml parses the file and keeps every key's span
//! (`toml::de::DeTable`), which is how an error inside the fifth `[[check]]` names its own
//! line; `[compare]` and `[capacity]` are the report crate's types, read here as they are.

pub mod check;
pub mod error;
pub mod fault;
pub mod load;
pub mod objectives;
pub mod prometheus;
pub mod template;

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

pub use check::CheckTable;
pub use error::ProfileError;
use error::{Source, Step};
pub use fault::Fault;
pub use load::Load;
pub use objectives::Objectives;
pub use template::{Recognise, RequestTemplate};

/// A whole profile. Its checks are tables their kinds read (the `checks` crate).
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub description: Option<String>,
    pub users: UserSetup,
    pub defaults: Defaults,
    pub checks: Vec<CheckTable>,
    /// What `stampede load` offers the stack (`[load]`).
    pub load: Option<Load>,
    /// What is done to the stack while the load runs (`[[fault]]`).
    pub faults: Vec<Fault>,
    /// What a load run must meet (`[targets]`; seed 004's defaults without it).
    pub objectives: Objectives,
    /// What `stampede report compare` counts as a regression against a baseline (`[compare]`).
    pub compare: Option<report::Tolerance>,
    /// How `stampede capacity` steps the load, and the users it plans for (`[capacity]`).
    pub capacity: Option<report::capacity::Stepping>,
    /// The settings a stack served for this profile runs with beyond what its checks need
    /// (`[stack]`): `stampede serve --profile` applies them.
    pub stack: StackTable,
}

/// `[stack]`: `stampede serve` options by name (`publish_limit = "5/3s"`, `workers = 32`),
/// each a value as the option's flag takes it. Which names exist and what their values mean is
/// `serve`'s to say, so they are checked where `serve` reads them; an error names its line here.
#[derive(Debug, Clone, Default)]
pub struct StackTable {
    /// `(name, value)` in the file's order, the value as text (`true` for a bare flag).
    pub settings: Vec<(String, String)>,
    source: Option<Arc<Source>>,
}

impl StackTable {
    fn read(source: &Arc<Source>, root: &DeTable<'_>) -> Result<Self, ProfileError> {
        let Some(table) = root.get("stack") else { return Ok(Self::default()) };
        let DeValue::Table(table) = table.get_ref() else {
            return Err(source.error_at(&[Step::Key("stack")], "[stack] must be a table"));
        };
        let mut settings = Vec::new();
        for (key, value) in table.iter() {
            let key = key.get_ref().to_string();
            let text = match value.get_ref() {
                DeValue::String(text) => text.to_string(),
                // In its own base (`0x40`), as the decimal a flag reads.
                DeValue::Integer(n) => i128::from_str_radix(&n.as_str().replace('_', ""), n.radix())
                    .map_err(|e| {
                        source.error_at(&[Step::Key("stack"), Step::Key(&key)], format!("stack.{key}: {e}"))
                    })?
                    .to_string(),
                DeValue::Boolean(b) => b.to_string(),
                _ => {
                    return Err(source.error_at(
                        &[Step::Key("stack"), Step::Key(&key)],
                        format!("stack.{key}: a string, a whole number or a boolean, as the option's flag takes it"),
                    ));
                }
            };
            settings.push((key, text));
        }
        Ok(Self { settings, source: Some(source.clone()) })
    }

    /// `message` about the setting `key`, at its line.
    pub fn invalid(&self, key: &str, message: impl Into<String>) -> ProfileError {
        match &self.source {
            Some(source) => source.error_at(&[Step::Key("stack"), Step::Key(key)], message),
            None => ProfileError::Invalid(Box::new(error::Invalid {
                path: std::path::PathBuf::new(),
                line: None,
                column: None,
                message: message.into(),
                source_line: None,
            })),
        }
    }
}

/// The document as serde reads it; the checks are read apart, table by table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    name: String,
    #[serde(default)]
    description: Option<String>,
    users: UserSetup,
    #[serde(default)]
    defaults: Defaults,
    #[serde(rename = "check", default)]
    _checks: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    load: Option<Load>,
    #[serde(rename = "fault", default)]
    faults: Vec<Fault>,
    #[serde(default)]
    targets: Objectives,
    #[serde(default)]
    compare: Option<report::Tolerance>,
    #[serde(default)]
    capacity: Option<report::capacity::Stepping>,
    #[serde(rename = "stack", default)]
    _stack: Option<serde::de::IgnoredAny>,
}

/// How a check obtains a user and its token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSetup {
    /// The request that creates a user; `{name}` is a fresh name, `{run}` the run's id.
    pub create: RequestTemplate,
    /// JSON pointer to the token in its answer.
    pub token: String,
    /// A request that succeeds (2xx) only with a valid token. When given, a token is checked
    /// on every instance, and where it is unknown (instances that share no state) a user of
    /// the same name is created there: the logical user is then one account per instance.
    #[serde(default)]
    pub verify: Option<RequestTemplate>,
    /// The header the token goes in, and what precedes it there.
    #[serde(default = "default_auth_header")]
    pub header: String,
    #[serde(default = "default_auth_prefix")]
    pub prefix: String,
}

/// The placeholders of `[users]`' requests.
pub(crate) const USER_PLACEHOLDERS: &[&str] = &["name", "run"];

fn default_auth_header() -> String {
    "authorization".to_owned()
}

fn default_auth_prefix() -> String {
    "Bearer ".to_owned()
}

/// Burst sizes and timeouts, unless a check says otherwise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Requests released together per burst.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Bursts per check.
    #[serde(default = "default_rounds")]
    pub rounds: usize,
    /// A request unanswered after this long is recorded as `unknown`.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The longest a check waits for a phase to come (a rate-limit window's end, say); a phase
    /// further off leaves the check inconclusive.
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
    /// Processes behind each target URL (gunicorn's or uvicorn's workers, a load balancer's
    /// backends): above 1, the checks reach a URL through fresh connections, enough that every
    /// process answers (`client::reads_to_reach`).
    #[serde(default = "default_processes")]
    pub processes: usize,
    /// An answer header naming the process that gave it (`X-Served-By`, `X-Instance`): with it,
    /// the invalidation check sees which processes it reached, reads on until each has
    /// answered, and is inconclusive when one never did (or more answered than declared).
    #[serde(default)]
    pub instance_header: Option<String>,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            concurrency: default_concurrency(),
            rounds: default_rounds(),
            timeout_ms: default_timeout_ms(),
            max_wait_ms: default_max_wait_ms(),
            processes: default_processes(),
            instance_header: None,
        }
    }
}

fn default_concurrency() -> usize {
    32
}

fn default_rounds() -> usize {
    3
}

fn default_timeout_ms() -> u64 {
    10_000
}

fn default_processes() -> usize {
    1
}

fn default_max_wait_ms() -> u64 {
    120_000
}

impl Profile {
    /// Reads and checks the profile at `path`.
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ProfileError::Read { path: path.to_owned(), error })?;
        Self::parse(path, &text)
    }

    /// Parses `text` as the profile at `path` (named in errors). The checks' tables are
    /// checked to have a name and a kind; what is in them, their kind checks.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ProfileError> {
        let source = Arc::new(Source::new(path, text));
        let root = DeTable::parse(text).map_err(|e| source.toml_error(&e))?;
        let document = toml::de::Deserializer::parse(text)
            .and_then(Document::deserialize)
            .map_err(|e| source.toml_error(&e))?;
        let count = match root.get_ref().get("check").map(|c| c.get_ref()) {
            Some(DeValue::Array(items)) => items.len(),
            _ => 0,
        };
        let checks = (0..count)
            .map(|i| CheckTable::read(&source, root.get_ref(), i))
            .collect::<Result<Vec<_>, _>>()?;
        let profile = Profile {
            name: document.name,
            description: document.description,
            users: document.users,
            defaults: document.defaults,
            checks,
            load: document.load,
            faults: document.faults,
            objectives: document.targets,
            compare: document.compare,
            capacity: document.capacity,
            stack: StackTable::read(&source, root.get_ref())?,
        };
        profile.validate(&source)?;
        Ok(profile)
    }

    /// What no type refuses: placeholders, pointers, bounds, names used twice.
    fn validate(&self, source: &Source) -> Result<(), ProfileError> {
        let users = |key: &'static str| [Step::Key("users"), Step::Key(key)];
        self.users
            .create
            .validate(USER_PLACEHOLDERS)
            .map_err(|e| source.error_at(&users("create"), format!("users.create: {e}")))?;
        if let Some(verify) = &self.users.verify {
            verify
                .validate(USER_PLACEHOLDERS)
                .map_err(|e| source.error_at(&users("verify"), format!("users.verify: {e}")))?;
        }
        template::validate_pointer(&self.users.token)
            .map_err(|e| source.error_at(&users("token"), format!("users.token: {e}")))?;
        let mut names = std::collections::HashSet::new();
        for (i, check) in self.checks.iter().enumerate() {
            if !names.insert(check.name.as_str()) {
                return Err(source.error_at(
                    &[Step::Key("check"), Step::Index(i), Step::Key("name")],
                    format!("check name {:?} is used twice; names must be unique", check.name),
                ));
            }
        }
        self.objectives.validate().map_err(|(path, message)| source.error_at(&path, message))?;
        if let Some(compare) = &self.compare {
            compare
                .validate()
                .map_err(|e| source.error_at(&[Step::Key("compare")], format!("[compare] {e}")))?;
        }
        if let Some(capacity) = &self.capacity {
            capacity
                .validate()
                .map_err(|e| source.error_at(&[Step::Key("capacity")], format!("[capacity] {e}")))?;
        }
        if let Some(load) = &self.load {
            load.validate(&self.objectives).map_err(|(path, message)| source.error_at(&path, message))?;
        }
        self.validate_faults().map_err(|(path, message)| source.error_at(&path, message))?;
        // The recovery bounds of [targets] judge the load's faults: without one, they would judge
        // nothing (a profile's own mistake; `--no-faults` may leave them idle).
        if self.faults.iter().all(|f| f.check.is_some()) {
            for (key, set) in [
                ("recover_within_s", self.objectives.recover_within_s.is_some()),
                ("max_errors_during", self.objectives.max_errors_during.is_some()),
            ] {
                if set {
                    return Err(source.error_at(
                        &[Step::Key("targets"), Step::Key(key)],
                        format!(
                            "targets.{key} is judged around the load's faults; the profile has no [[fault]] \
                             during the load"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Each fault's own mistakes, names used twice, faults the load does not outlast, and
    /// fault targets without a fault.
    pub fn validate_faults(&self) -> Result<(), error::Located> {
        let mut names = std::collections::HashSet::new();
        for (i, fault) in self.faults.iter().enumerate() {
            let path = [Step::Key("fault"), Step::Index(i)];
            fault.validate(&path)?;
            let field = |key: &'static str| vec![Step::Key("fault"), Step::Index(i), Step::Key(key)];
            if !names.insert(fault.name.as_str()) {
                return Err((
                    field("name"),
                    format!("fault name {:?} is used twice; names must be unique", fault.name),
                ));
            }
            if let Some(check) = &fault.check {
                if self.check(check).is_none() {
                    let known: Vec<&str> = self.checks.iter().map(|c| c.name.as_str()).collect();
                    return Err((
                        field("check"),
                        format!(
                            "fault {:?}: the profile has no check {check:?}; it has {}",
                            fault.name,
                            known.join(", ")
                        ),
                    ));
                }
                continue;
            }
            let Some(load) = &self.load else {
                return Err((
                    field("name"),
                    format!("fault {:?}: faults run during the load; the profile has no [load]", fault.name),
                ));
            };
            fault
                .fits(load.duration_s, fault.recover_within(self.objectives.recover_within_s))
                .map_err(|message| (field("at_s"), message))?;
        }
        // A fault's recovery is judged up to the next one's start: room for it to be seen.
        for (i, fault) in self.faults.iter().enumerate() {
            let end = fault.at_s + fault.duration_s;
            // A check's fault is judged by its check, not by the recovery bounds.
            let bound = if fault.check.is_some() {
                None
            } else {
                fault.recover_within(self.objectives.recover_within_s)
            };
            let needed = end + fault::room(bound);
            for (j, other) in self.faults.iter().enumerate() {
                // One timeline each: the load's, and each check's.
                if j != i && other.check == fault.check && other.at_s >= fault.at_s && other.at_s < needed {
                    return Err((
                        vec![Step::Key("fault"), Step::Index(j), Step::Key("at_s")],
                        format!(
                            "fault {:?} begins at {} s, before fault {:?} has ended and shown its recovery ({needed} \
                             s): faults are judged one at a time, so space them",
                            other.name, other.at_s, fault.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The check named `name`.
    pub fn check(&self, name: &str) -> Option<&CheckTable> {
        self.checks.iter().find(|c| c.name == name)
    }
}
