//! Records the revision stampede is built from, for `run.git_revision` in the reports and
//! `stampede --version`: `STAMPEDE_GIT_REVISION` when the build is given one (the Dockerfile's
//! build argument: its context has no `.git`), else the git checkout's `HEAD` as 12 hex digits,
//! `-dirty` when tracked files differ from it; none outside a git checkout of this package (a
//! source tarball, `cargo install`, a copy inside some other repository).
//!
//! Cargo runs this again when what it read changes: the variable, `HEAD`, the branch `HEAD`
//! names (its loose ref or `packed-refs`), the index, and the sources compiled into the binary
//! (an edit there flips `-dirty`; the binary is rebuilt for it anyway). Edits elsewhere (docs,
//! tests) leave the flag as the last run found it. In a linked worktree `.git` is a file: the
//! paths come from `git rev-parse --git-dir` (its own `HEAD` and index) and `--git-common-dir`
//! (the refs every worktree shares).

use std::path::{Path, PathBuf};
use std::process::Command;

const VARIABLE: &str = "STAMPEDE_GIT_REVISION";

fn main() {
    println!("cargo:rerun-if-env-changed={VARIABLE}");
    println!("cargo:rerun-if-changed=build.rs");
    let given = std::env::var(VARIABLE).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let revision = match given {
        Some(given) => Some(given),
        None => {
            let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
            from_git(&root)
        }
    };
    // Always set, so an empty variable in the environment never reaches the binary as a
    // revision (`meta::git_revision` reads an empty one as none).
    println!("cargo:rustc-env={VARIABLE}={}", revision.unwrap_or_default());
}

/// The revision of the git checkout at `root`, watching what it was read from; none when
/// `root` is not the top of a work tree or git cannot say.
fn from_git(root: &Path) -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").arg("-C").arg(root).args(args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let top = git(&["rev-parse", "--show-toplevel"])?;
    if !same_dir(Path::new(&top), root) {
        // The package was unpacked inside another repository: that one's HEAD is not ours.
        return None;
    }
    let absolute = |p: String| if Path::new(&p).is_absolute() { PathBuf::from(p) } else { root.join(p) };
    let git_dir = absolute(git(&["rev-parse", "--git-dir"])?);
    let common_dir = absolute(git(&["rev-parse", "--git-common-dir"])?);
    let mut watched = vec![git_dir.join("HEAD"), git_dir.join("index")];
    // The branch HEAD names, loose or packed (detached: HEAD itself holds the commit).
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(common_dir.join(&branch));
        watched.push(common_dir.join("packed-refs"));
    }
    // What is compiled in: the root package's and every workspace crate's sources.
    for file in ["src", "Cargo.toml", "Cargo.lock", "scenarios"] {
        watched.push(root.join(file));
    }
    if let Ok(crates) = std::fs::read_dir(root.join("crates")) {
        for krate in crates.filter_map(Result::ok) {
            watched.push(krate.path().join("src"));
            watched.push(krate.path().join("Cargo.toml"));
        }
    }
    // A path that does not exist would make cargo run this on every build.
    for path in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let head = git(&["rev-parse", "--short=12", "HEAD"])?;
    // Tracked files only (untracked ones are not built from); no optional locks, so a build
    // never writes the index.
    let changes = git(&["--no-optional-locks", "status", "--porcelain", "--untracked-files=no"])?;
    Some(if changes.is_empty() { head } else { format!("{head}-dirty") })
}

/// Whether `a` and `b` name the same directory (symlinks resolved).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
