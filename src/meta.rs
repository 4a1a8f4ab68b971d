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

/// The git revision stampede was built from, when the build saw one.
pub(crate) fn git_revision() -> Option<String> {
    option_env!("STAMPEDE_GIT_REVISION").map(str::to_owned)
}
