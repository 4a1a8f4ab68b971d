//! The source tree's shape: no import cycles between files. A file depends on another when it
//! names it by a `crate::` or `super::` path (in a `use`, or inline); a module naming its own
//! submodules is containment, not a dependency. Two files that depend on each other are one
//! idea split in two, or two ideas tangled: either way the next change to one breaks the other.
//! (The axum router does not need one: `stack`'s handlers take the state from `state.rs`, and
//! only `app.rs`, the router, names them.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path in its crate (`["checkers", "support"]`) and its file.
type Modules = BTreeMap<Vec<String>, PathBuf>;

/// Dependencies between modules: (from, to).
type Edges = BTreeSet<(Vec<String>, Vec<String>)>;

/// Every `.rs` file under `src`, by module path.
fn modules(src: &Path) -> Modules {
    let mut out = Modules::new();
    let mut stack = vec![src.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: Vec<String> =
                relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                module.pop();
            }
            out.insert(module, path);
        }
    }
    out
}

/// The `crate::…` and `super::…` paths in `text` (comments left out), each as its segments;
/// `crate::{a::b, c}` gives `a::b` and `c`.
fn paths(text: &str) -> Vec<(String, Vec<String>)> {
    let code: String =
        text.lines().filter(|l| !l.trim_start().starts_with("//")).map(|l| format!("{l}\n")).collect();
    let mut out = Vec::new();
    for anchor in ["crate::", "super::"] {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(anchor) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + anchor.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let kind = anchor.trim_end_matches("::").to_owned();
            if let Some(group) = rest.strip_prefix('{') {
                let end = closing(group);
                for item in split_top(&group[..end]) {
                    out.push((kind.clone(), segments(item)));
                }
            } else {
                out.push((kind, segments(rest)));
            }
        }
    }
    out
}

/// The index of the `}` closing a group whose `{` came just before `text`.
fn closing(text: &str) -> usize {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    text.len()
}

/// The items of a `{…}` group, split at its own commas.
fn split_top(text: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(text[start..].trim());
    out.into_iter().filter(|s| !s.is_empty()).collect()
}

/// The identifiers of a path, up to whatever ends it.
fn segments(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        out.push(rest[..end].to_owned());
        match rest[end..].strip_prefix("::") {
            Some(next) if !next.starts_with('{') => rest = next,
            _ => break,
        }
    }
    out
}

/// The module a path names: the longest prefix of it that is a module of the crate.
fn resolve(modules: &Modules, path: &[String]) -> Option<Vec<String>> {
    (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|m| modules.contains_key(m))
}

/// The dependencies between the files of the crate at `src`: (from, to) module paths, a
/// module's own submodules left out.
fn edges(src: &Path) -> (Modules, Edges) {
    let modules = modules(src);
    let mut edges = BTreeSet::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        // A file that is not `mod.rs` (`a/b.rs`) is its module; `super` is its parent.
        for (anchor, path) in paths(&text) {
            let absolute = match anchor.as_str() {
                "crate" => path,
                _ => {
                    let mut base = module.clone();
                    let mut path = path.as_slice();
                    base.pop();
                    while path.first().is_some_and(|s| s == "super") {
                        base.pop();
                        path = &path[1..];
                    }
                    base.extend(path.iter().cloned());
                    base
                }
            };
            let Some(to) = resolve(&modules, &absolute) else { continue };
            if to != *module && !to.starts_with(module) {
                edges.insert((module.clone(), to));
            }
        }
    }
    (modules, edges)
}

/// Every cycle's files, as `a → b → a`, found by depth-first search.
fn cycles(modules: &Modules, edges: &Edges, allowed: &dyn Fn(&Path, &Path) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    let next = |m: &Vec<String>| -> Vec<Vec<String>> {
        edges
            .iter()
            .filter(|(from, to)| from == m && !allowed(&modules[from], &modules[to]))
            .map(|(_, to)| to.clone())
            .collect()
    };
    for start in modules.keys() {
        // Paths from `start` back to it, through modules after it in order only (each cycle once).
        let mut stack = vec![vec![start.clone()]];
        while let Some(path) = stack.pop() {
            for to in next(path.last().unwrap()) {
                if to == *start {
                    let names: Vec<String> =
                        path.iter().chain([start]).map(|m| modules[m].display().to_string()).collect();
                    found.push(names.join(" → "));
                } else if to > *start && !path.contains(&to) && path.len() < 8 {
                    let mut longer = path.clone();
                    longer.push(to);
                    stack.push(longer);
                }
            }
        }
    }
    found
}

fn sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = vec![root.join("src")];
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        let src = entry.unwrap().path().join("src");
        if src.is_dir() {
            all.push(src);
        }
    }
    all.sort();
    all
}

#[test]
fn no_import_cycles_between_files() {
    let mut found = Vec::new();
    for src in sources() {
        let (modules, edges) = edges(&src);
        found.extend(cycles(&modules, &edges, &|_, _| false));
    }
    assert!(found.is_empty(), "files that depend on each other:\n{}", found.join("\n"));
}

#[test]
fn a_cycle_is_found_and_containment_is_not_one() {
    let dir = std::env::temp_dir().join(format!("stampede-layout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("outer")).unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    write("lib.rs", "mod a; mod b; mod outer;\nuse crate::a::x;\n");
    write("a.rs", "use crate::{b::y, outer};\n");
    write("b.rs", "pub fn y() { crate::a::x() }\n");
    write("outer.rs", "mod inner;\nuse self::inner::z;\nfn f() { inner::z() }\n");
    write("outer/inner.rs", "use super::f;\n// crate::a::x in a comment is no dependency\n");
    let (modules, edges) = edges(&dir);
    let found = cycles(&modules, &edges, &|_, _| false);
    std::fs::remove_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a.rs").display().to_string(), dir.join("b.rs").display().to_string());
    assert_eq!(found, [format!("{a} → {b} → {a}")]);
    let module = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    assert!(edges.contains(&(module(&["outer", "inner"]), module(&["outer"]))), "{edges:?}");
    assert!(!edges.contains(&(module(&["outer"]), module(&["outer", "inner"]))), "{edges:?}");
    assert!(!edges.iter().any(|(from, _)| from.is_empty()), "the crate root contains every module");
}
