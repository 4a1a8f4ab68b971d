//! What the end-to-end tests of `stampede check` share.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The reference profile as the tests run it. The one change: the bound on the latency of the
/// calls the open breaker refuses (5 ms, a figure for a release build on a quiet machine) is
/// lifted, because a debug build on a shared machine is no latency benchmark and a test must
/// not hang on timing; the `slow-rejection` rule is covered by the judge's tests.
pub fn test_profile() -> &'static Path {
    static PROFILE: OnceLock<PathBuf> = OnceLock::new();
    PROFILE.get_or_init(|| {
        let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/reference.toml");
        let text = std::fs::read_to_string(&reference).expect("read the reference profile");
        assert!(text.contains("max_rejection_ms = 5.0"), "the reference profile's latency bound moved");
        let text = text.replace("max_rejection_ms = 5.0", "max_rejection_ms = 1000.0");
        let path = std::env::temp_dir().join(format!("stampede-test-profile-{}.toml", std::process::id()));
        std::fs::write(&path, text).expect("write the test profile");
        path
    })
}
