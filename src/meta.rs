//! What every run records about itself: its id, the wall-clock time, the host, the build.

/// A run id: the start time and a suffix from the process id.
pub(crate) fn run_id() -> String {
    let now = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    format!("{now}-{:04x}", std::process::id() & 0xffff)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    jiff::Timestamp::now().as_millisecond().max(0) as u64
}

/// The host this runs on.
pub(crate) fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// The git revision stampede was built from, when the build saw one: `build.rs` sets it from
/// the checkout (`0123456789ab`, `-dirty` after it when tracked files were changed) or from
/// `STAMPEDE_GIT_REVISION` given to the build, and to nothing when it found neither.
pub(crate) fn git_revision() -> Option<String> {
    revision(option_env!("STAMPEDE_GIT_REVISION"))
}

/// The revision as recorded: none when the build left it unset or empty.
fn revision(built: Option<&str>) -> Option<String> {
    built.map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned)
}

/// `stampede --version`: the package version and, when known, the revision.
pub(crate) fn version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| match git_revision() {
        Some(r) => format!("{} ({r})", env!("CARGO_PKG_VERSION")),
        None => env!("CARGO_PKG_VERSION").to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unset_or_empty_revision_is_none() {
        assert_eq!(revision(None), None);
        assert_eq!(revision(Some("")), None);
        assert_eq!(revision(Some("  ")), None);
        assert_eq!(revision(Some("0123456789ab-dirty")).as_deref(), Some("0123456789ab-dirty"));
    }
}
