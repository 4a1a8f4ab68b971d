//! End-to-end tests of the `stampede` binary.

use std::process::Command;

fn stampede(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stampede")).args(args).output().expect("run stampede")
}

#[test]
fn components_lists_the_catalogue() {
    let out = stampede(&["components"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for component in reference::catalog::COMPONENTS {
        assert!(text.contains(component.name), "{} missing from:\n{text}", component.name);
        for mutant in component.mutants {
            assert!(text.contains(mutant), "{mutant} missing from:\n{text}");
        }
    }
}

#[test]
fn bad_usage_exits_2() {
    let out = stampede(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-command"));
}

#[test]
fn serve_with_an_unknown_mutant_exits_2_naming_the_ones_it_can_run() {
    let out = stampede(&["serve", "--listen", "127.0.0.1:0", "--mutant", "no_such"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no_such"), "{stderr}");
    for (_, name) in stack::Mutant::ALL {
        assert!(stderr.contains(name), "{name} missing from:\n{stderr}");
    }
}

#[test]
fn help_names_every_exit_code_of_the_commands_that_judge() {
    let help = |command: &str| {
        let out = stampede(&[command, "--help"]);
        assert!(out.status.success(), "{out:?}");
        // Words, whatever the terminal width wrapped.
        String::from_utf8(out.stdout).unwrap().split_whitespace().collect::<Vec<_>>().join(" ")
    };
    for command in ["check", "run"] {
        let text = help(command);
        for code in ["0 every check held", "1 a check", "2 bad usage", "3 a", "4 a check inconclusive"] {
            assert!(text.contains(code), "{command} --help does not say {code:?}:\n{text}");
        }
    }
    for command in ["load", "capacity"] {
        let text = help(command);
        for code in ["0 every target was met", "1 a target missed", "2 bad usage", "3 a target unreachable"] {
            assert!(text.contains(code), "{command} --help does not say {code:?}:\n{text}");
        }
        assert!(!text.contains("inconclusive"), "{command} runs no check:\n{text}");
    }
    let text = String::from_utf8(stampede(&["check", "--help"]).stdout).unwrap();
    assert!(text.contains("--allow-inconclusive") && text.contains("--max-wait"), "{text}");
}

#[test]
fn components_lists_eighteen_numbered_components() {
    let text = String::from_utf8(stampede(&["components"]).stdout).unwrap();
    let mut numbers: Vec<u8> = reference::catalog::COMPONENTS.iter().map(|c| c.number).collect();
    numbers.dedup();
    assert_eq!(numbers, (1..=18).collect::<Vec<u8>>());
    for n in 1..=18 {
        assert!(text.lines().any(|l| l.starts_with(&format!("#{n:<2} "))), "#{n} missing:\n{text}");
    }
}

/// Values are checked when parsed, each said in words a person reads, exit 2 before anything
/// runs: a URL without its scheme, a rate or duration that is negative, zero, infinite or
/// absurd (`--rate -5` and `--rate=-5` alike), a profile that cannot be read (its OS error said
/// once), a profile field of the wrong type.
#[test]
fn bad_values_exit_2_in_words_before_anything_runs() {
    let said = |args: &[&str]| {
        let out = stampede(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(
        said(&["load", "--target", "127.0.0.1:1"])
            .contains("has no scheme: add http:// (http://127.0.0.1:1)")
    );
    assert!(said(&["check", "--target", "ftp://host"]).contains("not ftp://"));
    let spaced = said(&["load", "--rate", "-5"]);
    assert!(spaced.contains("the rate must be a number of requests per second above 0, not -5"), "{spaced}");
    assert_eq!(said(&["load", "--rate=-5"]), spaced);
    for (flag, value) in
        [("--rate", "inf"), ("--rate", "NaN"), ("--rate", "1e12"), ("--ramp-to", "0"), ("--duration", "-1")]
    {
        let text = said(&["load", flag, value]);
        assert!(text.contains(&format!("invalid value '{value}'")), "{flag} {value}: {text}");
    }
    let missing = said(&["load", "--profile", "/nonexistent/profile.toml"]);
    assert_eq!(missing.matches("No such file or directory").count(), 1, "{missing}");
    let reference =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/reference.toml")).unwrap();
    let line = reference.lines().find(|l| l.starts_with("accounts = ")).expect("the load's accounts");
    let path = std::env::temp_dir().join(format!("stampede-cli-types-{}.toml", std::process::id()));
    std::fs::write(&path, reference.replace(line, "accounts = 2.5")).unwrap();
    let typed = said(&["load", "--profile", path.to_str().unwrap(), "--duration", "1"]);
    let _ = std::fs::remove_file(&path);
    assert!(
        typed.contains("accounts: invalid type: the number `2.5`, expected a whole number (0 or more)"),
        "{typed}"
    );
}

/// `--version` names the revision the binary was built from (`build.rs`): in a git checkout of
/// stampede built without `STAMPEDE_GIT_REVISION`, this checkout's `HEAD`, 12 hex digits.
#[test]
fn version_names_the_revision_it_was_built_from() {
    let out = stampede(&["--version"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let built = option_env!("STAMPEDE_GIT_REVISION").unwrap_or_default();
    if built.is_empty() {
        assert_eq!(text.trim(), concat!("stampede ", env!("CARGO_PKG_VERSION")));
    } else {
        assert_eq!(text.trim(), format!("stampede {} ({built})", env!("CARGO_PKG_VERSION")));
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    if std::env::var_os("STAMPEDE_GIT_REVISION").is_none()
        && let Some(head) = git(&["rev-parse", "--short=12", "HEAD"])
    {
        assert_eq!(head.len(), 12, "{head}");
        assert!(
            built == head || built == format!("{head}-dirty"),
            "built from {built:?}, the checkout is at {head}"
        );
    }
}
