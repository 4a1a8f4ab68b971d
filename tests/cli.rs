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
