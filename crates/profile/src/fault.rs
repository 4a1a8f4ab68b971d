//! `[[fault]]`: what is done to the stack while the load runs — on a *link* between the stack
//! and a dependency (through a TCP proxy speaking Toxiproxy's API), on an *instance* of a stack
//! stampede started, or by a *command* of the user's (`docker kill redis`) — when, for how
//! long, and the bounds the run is judged by around it.
//!
//! The same fields are accepted on the command line (`--fault`) as a TOML inline table's
//! contents: `--fault 'name = "redis-down", link = "redis", action = "down", at_s = 10,
//! duration_s = 5'`.

use serde::Deserialize;

use crate::error::{Located, Step};

/// One `[[fault]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Names the fault in the report.
    pub name: String,
    /// Seconds into the load it begins (into the check, with `check`).
    pub at_s: f64,
    /// How long it lasts. For `kill`, the longest the instance may take to answer again.
    pub duration_s: f64,
    /// A link: `redis`, `postgres` or `upstream` for the stack stampede starts; for a user's
    /// stack, the name of a proxy in the Toxiproxy `--toxiproxy` names.
    #[serde(default)]
    pub link: Option<String>,
    /// An instance of the stack stampede starts (0-based).
    #[serde(default)]
    pub instance: Option<usize>,
    /// Run when the fault begins; a non-zero exit is the fault failing. `{redis}`,
    /// `{database}` and `{run}` are replaced by the run's.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// With `command`: run when the fault ends (`docker start redis`).
    #[serde(default)]
    pub end_command: Option<Vec<String>>,
    /// What is done to a link or an instance: [`Action`].
    #[serde(default)]
    pub action: Option<Action>,
    /// `latency`: the delay added to each chunk of data, and its random spread (±).
    #[serde(default)]
    pub latency_ms: Option<u64>,
    #[serde(default)]
    pub jitter_ms: Option<u64>,
    /// `bandwidth`: kilobytes per second.
    #[serde(default)]
    pub rate_kbps: Option<u64>,
    /// `slicer`: the average size of the slices data is cut into.
    #[serde(default)]
    pub slice_bytes: Option<u64>,
    /// Which way the link fault acts: `both` (default), `to-dependency` (what the stack sends)
    /// or `to-stack` (the answers).
    #[serde(default)]
    pub direction: Direction,
    /// Run the fault while this check runs, `at_s` counted from the check's start, instead of
    /// during the load: the check judges its invariant across the fault (nothing lost), and is
    /// inconclusive when the fault did not happen, whole, while it ran.
    #[serde(default)]
    pub check: Option<String>,
    /// Overrides `[targets] recover_within_s` for this fault.
    #[serde(default)]
    pub recover_within_s: Option<f64>,
    /// Overrides `[targets] max_errors_during` for this fault.
    #[serde(default)]
    pub max_errors_during: Option<u64>,
}

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Link: connections refused and every open one closed (a dependency killed).
    Down,
    /// Link: `latency_ms` (± `jitter_ms`) added to every chunk of data.
    Latency,
    /// Link: at most `rate_kbps` kilobytes per second.
    Bandwidth,
    /// Link: connections reset (TCP RST) as data arrives.
    Reset,
    /// Link: connections accepted and data swallowed, nothing answered (a partition).
    Blackhole,
    /// Link: data cut into slices of about `slice_bytes`.
    Slicer,
    /// Instance: killed (SIGKILL); its supervisor is expected to start it again.
    Kill,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Self::Down => "down",
            Self::Latency => "latency",
            Self::Bandwidth => "bandwidth",
            Self::Reset => "reset",
            Self::Blackhole => "blackhole",
            Self::Slicer => "slicer",
            Self::Kill => "kill",
        }
    }

    fn on_link(self) -> bool {
        !matches!(self, Self::Kill)
    }
}

/// Which way a link fault acts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    #[default]
    Both,
    ToDependency,
    ToStack,
}

/// What a fault acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On<'a> {
    Link(&'a str),
    Instance(usize),
    Command,
}

/// The longest `at_s` or `duration_s` a fault may give: a day.
pub const MAX_S: f64 = 86_400.0;

/// The links of a stack stampede starts.
pub const LINKS: &[&str] = &["redis", "postgres", "upstream"];

/// The placeholders a `command` may use.
pub const COMMAND_PLACEHOLDERS: &[&str] = &["redis", "database", "run"];

impl Fault {
    /// What it acts on (valid once [`Fault::validate`] passed).
    pub fn on(&self) -> On<'_> {
        match (&self.link, self.instance) {
            (Some(link), _) => On::Link(link),
            (None, Some(i)) => On::Instance(i),
            (None, None) => On::Command,
        }
    }

    /// The target in words, as the report names it.
    pub fn target(&self) -> String {
        match self.on() {
            On::Link(link) => format!("link {link}"),
            On::Instance(i) => format!("instance {i}"),
            On::Command => "command".to_owned(),
        }
    }

    /// The action in words: `down`, `latency 200 ms ± 20 ms`, `kill`, `docker kill redis`.
    pub fn action_text(&self) -> String {
        let way = match self.direction {
            Direction::Both => "",
            Direction::ToDependency => " (to the dependency)",
            Direction::ToStack => " (to the stack)",
        };
        match (self.action, &self.command) {
            (Some(Action::Latency), _) => format!(
                "latency {} ms ± {} ms{way}",
                self.latency_ms.unwrap_or(0),
                self.jitter_ms.unwrap_or(0)
            ),
            (Some(Action::Bandwidth), _) => format!("bandwidth {} KB/s{way}", self.rate_kbps.unwrap_or(0)),
            (Some(Action::Slicer), _) => format!("slices of {} bytes{way}", self.slice_bytes.unwrap_or(0)),
            (Some(Action::Kill), _) => "kill (restart expected)".to_owned(),
            (Some(a), _) => format!("{}{way}", a.name()),
            (None, Some(command)) => {
                let mut text = command.join(" ");
                if let Some(end) = &self.end_command {
                    text = format!("{text}; at the end: {}", end.join(" "));
                }
                text
            }
            (None, None) => "?".to_owned(),
        }
    }

    /// The mistakes no type refuses, at the field they are about; `path` is the fault's own
    /// table (`[[fault]]` number i, or a `--fault`).
    pub fn validate(&self, path: &[Step<'static>]) -> Result<(), Located> {
        let field = |key: &'static str| {
            let mut p = path.to_vec();
            p.push(Step::Key(key));
            p
        };
        let name = &self.name;
        let err =
            |key: &'static str, message: String| Err((field(key), format!("fault {name:?}: {message}")));
        if name.trim().is_empty() {
            return Err((field("name"), "fault: name must not be empty".to_owned()));
        }
        if !(0.0..=MAX_S).contains(&self.at_s) {
            return err("at_s", format!("at_s must be 0 to {MAX_S} s"));
        }
        if !(self.duration_s > 0.0 && self.duration_s <= MAX_S) {
            return err("duration_s", format!("duration_s must be above 0 and at most {MAX_S} s"));
        }
        let targets = [self.link.is_some(), self.instance.is_some(), self.command.is_some()];
        if targets.iter().filter(|t| **t).count() != 1 {
            return err("name", "give exactly one of link, instance and command".to_owned());
        }
        match (self.on(), self.action) {
            (On::Link(link), action) => {
                if link.is_empty() {
                    return err("link", "link must name a link".to_owned());
                }
                let Some(action) = action else {
                    return err(
                        "link",
                        "a link fault needs an action: down, latency, bandwidth, reset, blackhole or slicer"
                            .to_owned(),
                    );
                };
                if !action.on_link() {
                    return err("action", format!("{} is an instance's fault, not a link's", action.name()));
                }
            }
            (On::Instance(_), action) => {
                if action != Some(Action::Kill) {
                    return err("action", "an instance fault's action is kill".to_owned());
                }
            }
            (On::Command, action) => {
                if action.is_some() {
                    return err(
                        "action",
                        "a command fault does what its command does; leave action out".to_owned(),
                    );
                }
                if self.command.as_ref().is_some_and(Vec::is_empty) {
                    return err("command", "command must name a program".to_owned());
                }
                if self.end_command.as_ref().is_some_and(Vec::is_empty) {
                    return err("end_command", "end_command must name a program".to_owned());
                }
                for (key, command) in [("command", &self.command), ("end_command", &self.end_command)] {
                    for word in command.iter().flatten() {
                        check_placeholders(word).map_err(|m| (field(key), format!("fault {name:?}: {m}")))?;
                    }
                }
            }
        }
        if self.end_command.is_some() && self.command.is_none() {
            return err("end_command", "end_command goes with command".to_owned());
        }
        let action = self.action;
        for (key, value, wanted) in [
            ("latency_ms", self.latency_ms.is_some(), Action::Latency),
            ("jitter_ms", self.jitter_ms.is_some(), Action::Latency),
            ("rate_kbps", self.rate_kbps.is_some(), Action::Bandwidth),
            ("slice_bytes", self.slice_bytes.is_some(), Action::Slicer),
        ] {
            if value && action != Some(wanted) {
                return err(key, format!("{key} is for action {}", wanted.name()));
            }
        }
        for (key, missing) in [
            ("latency_ms", action == Some(Action::Latency) && self.latency_ms.is_none()),
            ("rate_kbps", action == Some(Action::Bandwidth) && self.rate_kbps.is_none()),
            ("slice_bytes", action == Some(Action::Slicer) && self.slice_bytes.is_none()),
        ] {
            if missing {
                return err("action", format!("action {} needs {key}", action.map_or("?", Action::name)));
            }
        }
        if self.rate_kbps == Some(0) || self.slice_bytes == Some(0) {
            return err(
                if self.rate_kbps == Some(0) { "rate_kbps" } else { "slice_bytes" },
                "must be above 0".into(),
            );
        }
        if self.direction != Direction::Both && (self.link.is_none() || action == Some(Action::Down)) {
            return err(
                "direction",
                "direction is for link faults other than down (a link is down both ways)".to_owned(),
            );
        }
        if let Some(r) = self.recover_within_s
            && !(r > 0.0 && r.is_finite())
        {
            return err("recover_within_s", "recover_within_s must be above 0".to_owned());
        }
        if self.check.is_some() {
            for (key, set) in [
                ("recover_within_s", self.recover_within_s.is_some()),
                ("max_errors_during", self.max_errors_during.is_some()),
            ] {
                if set {
                    return err(
                        key,
                        format!(
                            "{key} judges the load around a fault; a check's fault is judged by its check"
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// The fault's recovery bound: its own, else `[targets]`'.
    pub fn recover_within(&self, default: Option<f64>) -> Option<f64> {
        self.recover_within_s.or(default)
    }

    /// Refuses a fault the load does not outlast by its recovery bound: its recovery could not
    /// be seen. `recover_within` is the bound that applies to it.
    pub fn fits(&self, load_duration_s: f64, recover_within: Option<f64>) -> Result<(), String> {
        let end = self.at_s + self.duration_s;
        let needed = end + room(recover_within);
        if needed > load_duration_s {
            return Err(format!(
                "fault {:?} ends {end} s into the load and needs {} s after it ({}), past the load's \
                 {load_duration_s} s: lengthen the load (duration_s) or move the fault",
                self.name,
                room(recover_within),
                match recover_within {
                    Some(r) => format!("its recovery judged for {r} s, and a second's margin"),
                    None => "a second's margin to remove it".to_owned(),
                }
            ));
        }
        Ok(())
    }

    /// Parses a `--fault` value: a TOML inline table's contents.
    pub fn parse_flag(text: &str) -> Result<Self, String> {
        let wrapped = format!("fault = {{ {text} }}");
        #[derive(Deserialize)]
        struct One {
            fault: Fault,
        }
        let one: One = toml::from_str(&wrapped).map_err(|e| {
            let message = crate::error::readable(e.message().trim_end());
            match e.span() {
                // The span in `text`: past the `fault = { ` prefix.
                Some(span) if span.start >= 10 => {
                    let at = (span.start - 10).min(text.len());
                    format!("--fault {text:?}, at character {}: {message}", text[..at].chars().count() + 1)
                }
                _ => format!("--fault {text:?}: {message}"),
            }
        })?;
        one.fault.validate(&[]).map_err(|(_, message)| format!("--fault {text:?}: {message}"))?;
        Ok(one.fault)
    }
}

/// The seconds after a fault's end before the load's end or the next fault: its recovery
/// bound, and a second more (the judge's resolution, and the moments applying and removing a
/// fault take, so that it is not cut short).
pub fn room(recover_within: Option<f64>) -> f64 {
    recover_within.unwrap_or(0.0) + 1.0
}

/// A command word's `{placeholder}`s must be known ones.
fn check_placeholders(word: &str) -> Result<(), String> {
    let mut rest = word;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!("{word:?}: an unclosed {{"));
        };
        let name = &after[..close];
        if !COMMAND_PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "{word:?}: unknown placeholder {{{name}}}; a command may use {}",
                COMMAND_PLACEHOLDERS.iter().map(|p| format!("{{{p}}}")).collect::<Vec<_>>().join(", ")
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// `word` with its placeholders replaced by `values` (`(name, value)`).
pub fn fill(word: &str, values: &[(&str, &str)]) -> String {
    let mut out = word.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(text: &str) -> Result<Fault, String> {
        Fault::parse_flag(text)
    }

    #[test]
    fn a_link_fault_parses_from_the_command_line() {
        let f = flag(r#"name = "redis-down", link = "redis", action = "down", at_s = 10, duration_s = 5"#)
            .unwrap();
        assert_eq!(f.on(), On::Link("redis"));
        assert_eq!(f.action, Some(Action::Down));
        assert_eq!(f.target(), "link redis");
        assert_eq!(f.action_text(), "down");
        let f = flag(
            r#"name = "slow", link = "upstream", action = "latency", latency_ms = 200, jitter_ms = 20, at_s = 1, duration_s = 2, direction = "to-stack""#,
        )
        .unwrap();
        assert_eq!(f.action_text(), "latency 200 ms ± 20 ms (to the stack)");
    }

    #[test]
    fn mistakes_are_named() {
        for (text, wanted) in [
            (r#"name = "x", at_s = 1, duration_s = 1"#, "exactly one of link, instance and command"),
            (r#"name = "x", link = "redis", at_s = 1, duration_s = 1"#, "needs an action"),
            (
                r#"name = "x", link = "redis", action = "latency", at_s = 1, duration_s = 1"#,
                "needs latency_ms",
            ),
            (
                r#"name = "x", link = "redis", action = "down", latency_ms = 5, at_s = 1, duration_s = 1"#,
                "latency_ms is for action latency",
            ),
            (
                r#"name = "x", link = "redis", action = "kill", at_s = 1, duration_s = 1"#,
                "an instance's fault",
            ),
            (r#"name = "x", instance = 1, action = "down", at_s = 1, duration_s = 1"#, "action is kill"),
            (
                r#"name = "x", instance = 1, action = "kill", at_s = 1, duration_s = 0"#,
                "duration_s must be above 0",
            ),
            (
                r#"name = "x", command = ["kill", "{pid}"], at_s = 1, duration_s = 1"#,
                "unknown placeholder {pid}",
            ),
            (r#"name = "x", command = [], at_s = 1, duration_s = 1"#, "must name a program"),
            (
                r#"name = "x", link = "redis", action = "down", at_s = 1, duration_s = 1, colour = 3"#,
                "unknown field `colour`",
            ),
            (
                r#"name = "x", link = "redis", action = "sideways", at_s = 1, duration_s = 1"#,
                "unknown variant `sideways`",
            ),
        ] {
            let e = flag(text).unwrap_err();
            assert!(e.contains(wanted), "{text}: {e}");
        }
        let e = flag(r#"name = "x", link = "redis", action = "down", at_s = "soon", duration_s = 1"#)
            .unwrap_err();
        assert!(e.contains("at character"), "{e}");
    }

    #[test]
    fn a_fault_must_end_before_the_load_with_room_to_see_recovery() {
        let f = flag(r#"name = "r", link = "redis", action = "down", at_s = 10, duration_s = 5"#).unwrap();
        assert!(f.fits(16.0, None).is_ok());
        assert!(f.fits(15.5, None).unwrap_err().contains("ends 15 s into the load"));
        let e = f.fits(21.0, Some(6.0)).unwrap_err();
        assert!(e.contains("judged for 6 s"), "{e}");
        assert!(f.fits(22.0, Some(6.0)).is_ok());
    }

    #[test]
    fn commands_are_filled() {
        let f = flag(r#"name = "k", command = ["redis-cli", "-u", "{redis}", "shutdown", "nosave"], end_command = ["true"], at_s = 1, duration_s = 1"#).unwrap();
        assert_eq!(f.on(), On::Command);
        let words: Vec<String> =
            f.command.unwrap().iter().map(|w| fill(w, &[("redis", "redis://127.0.0.1:7000")])).collect();
        assert_eq!(words[2], "redis://127.0.0.1:7000");
    }
}
