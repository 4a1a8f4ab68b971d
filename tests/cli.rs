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
