//! The layers, checked: the workspace's crates depend only on crates of a lower layer,
//! no import cycle between sibling modules of any crate, and lab-workload's top-level
//! modules import only modules of a lower layer.
//!
//! Cargo refuses a cycle between crates, not an arrow that skips the intended order
//! (lab-cluster depending on lab-book, say), so the crates' own manifests are read for
//! that. Inside a crate nothing refuses a cycle, so this test reads the sources: a file's
//! `crate::a::b` and `super::a` paths are its imports, lifted to the modules that are
//! siblings under their common parent (`book/diagram.rs` → `book/render.rs` is an edge
//! between `diagram` and `render`; `load/worker.rs` → `cluster/pg.rs` one between `load`
//! and `cluster`). A module's use of its own parent or children is not an edge: Rust's
//! `mod.rs` declares and re-exports its children, and they use its types.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace's crates by layer (directory, package name, layer): each may depend
/// only on crates of a lower layer.
const CRATE_LAYERS: [(&str, &str, u8); 7] = [
    ("crates/lab-core", "lab-core", 0),
    ("crates/lab-book", "lab-book", 1),
    ("crates/lab-cluster", "lab-cluster", 1),
    ("crates/lab-engine", "lab-engine", 2),
    ("crates/lab-workload", "lab-workload", 2),
    ("preprocessor", "mdbook-lab", 3),
    ("runner", "runner", 3),
];

/// lab-workload's top-level modules by layer: each may import only lower layers.
const WORKLOAD_LAYERS: [(&str, u8); 6] = [
    ("load", 0),
    ("verify", 1),
    ("serve", 1),
    ("consistency", 1),
    ("chaos", 2),
    ("watch", 2),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `src` as (module path, text): `book/render.rs` → `["book",
/// "render"]`, `lab/mod.rs` → `["lab"]`, `lib.rs` → `[]`.
fn modules(src: &Path) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            out.push((parts, std::fs::read_to_string(&path).unwrap()));
        }
    }
    out
}

/// The module paths a file's code names: `crate::a::b…` as given, `super::a…` resolved
/// from the file's module. Comments are skipped.
fn imports(module: &[String], text: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (start, prefix) in [("crate::", None), ("super::", Some(()))] {
            let mut rest = code;
            while let Some(at) = rest.find(start) {
                let before = rest[..at].chars().last();
                rest = &rest[at + start.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let path: Vec<String> = rest
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .next()
                    .unwrap_or("")
                    .split("::")
                    .take_while(|p| {
                        !p.is_empty() && p.chars().next().is_some_and(|c| c.is_lowercase())
                    })
                    .map(str::to_string)
                    .collect();
                let base: Vec<String> = match prefix {
                    None => Vec::new(),
                    // In `a/b.rs`, `super` is `a`; in `a/b/mod.rs` (module a::b) it is `a` too.
                    Some(()) => module[..module.len().saturating_sub(1)].to_vec(),
                };
                found.push(base.into_iter().chain(path).collect());
            }
        }
    }
    found
}

/// The longest module of `known` that `path` starts with.
fn resolve<'a>(path: &[String], known: &'a BTreeSet<Vec<String>>) -> Option<&'a Vec<String>> {
    (0..=path.len())
        .rev()
        .find_map(|n| known.get(&path[..n].to_vec()))
}

/// Edges between sibling modules: (parent, from, to).
fn sibling_edges(src: &Path) -> BTreeSet<(Vec<String>, String, String)> {
    let files = modules(src);
    let known: BTreeSet<Vec<String>> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut edges = BTreeSet::new();
    for (module, text) in &files {
        for path in imports(module, text) {
            let Some(target) = resolve(&path, &known) else {
                continue;
            };
            let common = module
                .iter()
                .zip(target)
                .take_while(|(a, b)| a == b)
                .count();
            // A module and its own ancestor or descendant: not a sibling edge.
            if common == module.len() || common == target.len() {
                continue;
            }
            edges.insert((
                module[..common].to_vec(),
                module[common].clone(),
                target[common].clone(),
            ));
        }
    }
    edges
}

/// The cycles among siblings: each strongly connected set of two or more modules.
fn cycles(edges: &BTreeSet<(Vec<String>, String, String)>) -> Vec<String> {
    let mut by_parent: BTreeMap<&Vec<String>, BTreeMap<&str, BTreeSet<&str>>> = BTreeMap::new();
    for (parent, from, to) in edges {
        by_parent
            .entry(parent)
            .or_default()
            .entry(from)
            .or_default()
            .insert(to);
    }
    let mut found = Vec::new();
    for (parent, graph) in by_parent {
        // Two modules are in one cycle when each reaches the other.
        let reach = |from: &str| {
            let mut seen = BTreeSet::new();
            let mut todo = vec![from];
            while let Some(m) = todo.pop() {
                for next in graph.get(m).into_iter().flatten() {
                    if seen.insert(*next) {
                        todo.push(next);
                    }
                }
            }
            seen
        };
        let mut reported = BTreeSet::new();
        for &m in graph.keys() {
            let mine = reach(m);
            if !mine.contains(m) || reported.contains(m) {
                continue;
            }
            let members: Vec<&str> = mine
                .iter()
                .copied()
                .filter(|other| reach(other).contains(m))
                .collect();
            reported.extend(members.iter().copied());
            let place = if parent.is_empty() {
                "the crate root".to_string()
            } else {
                parent.join("/")
            };
            found.push(format!("{place}: {}", members.join(" ↔ ")));
        }
    }
    found
}

fn crate_sources() -> Vec<PathBuf> {
    CRATE_LAYERS
        .iter()
        .map(|(dir, _, _)| root().join(dir).join("src"))
        .collect()
}

/// The workspace crates `manifest` (a Cargo.toml's text) depends on, dev-dependencies
/// included: the `[…dependencies]` keys that name a crate of [`CRATE_LAYERS`].
fn workspace_dependencies(manifest: &str) -> Vec<String> {
    let mut in_dependencies = false;
    let mut found = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_dependencies = line.ends_with("dependencies]");
            continue;
        }
        let Some(key) = line.split(['=', '.', ' ']).next() else {
            continue;
        };
        if in_dependencies && CRATE_LAYERS.iter().any(|(_, name, _)| *name == key) {
            found.push(key.to_string());
        }
    }
    found
}

/// The dependencies of `CRATE_LAYERS` that do not go down.
fn upward_crate_dependencies(read: impl Fn(&str) -> String) -> Vec<String> {
    let layer: BTreeMap<&str, u8> = CRATE_LAYERS.iter().map(|(_, n, l)| (*n, *l)).collect();
    let mut upward = Vec::new();
    for (dir, name, mine) in CRATE_LAYERS {
        for dependency in workspace_dependencies(&read(dir)) {
            let theirs = layer[dependency.as_str()];
            if theirs >= mine {
                upward.push(format!(
                    "{name} (layer {mine}) depends on {dependency} (layer {theirs})"
                ));
            }
        }
    }
    upward
}

#[test]
fn the_crates_depend_only_on_lower_layers() {
    let upward = upward_crate_dependencies(|dir| {
        std::fs::read_to_string(root().join(dir).join("Cargo.toml")).unwrap()
    });
    assert!(
        upward.is_empty(),
        "dependencies that do not go down:\n  {}",
        upward.join("\n  ")
    );
}

#[test]
fn an_upward_crate_dependency_is_seen() {
    let found = upward_crate_dependencies(|dir| {
        let manifest = std::fs::read_to_string(root().join(dir).join("Cargo.toml")).unwrap();
        if dir == "crates/lab-cluster" {
            manifest.replace(
                "[dependencies]\n",
                "[dependencies]\nlab-engine.workspace = true\n",
            )
        } else {
            manifest
        }
    });
    assert_eq!(
        found,
        ["lab-cluster (layer 1) depends on lab-engine (layer 2)"]
    );
}

#[test]
fn no_module_imports_a_sibling_that_imports_it_back() {
    let mut all = Vec::new();
    for src in crate_sources() {
        for cycle in cycles(&sibling_edges(&src)) {
            all.push(format!(
                "{}: {cycle}",
                src.strip_prefix(root()).unwrap().display()
            ));
        }
    }
    assert!(all.is_empty(), "import cycles:\n  {}", all.join("\n  "));
}

#[test]
fn the_workloads_modules_import_only_lower_layers() {
    let layer: BTreeMap<&str, u8> = WORKLOAD_LAYERS.into_iter().collect();
    let mut upward = Vec::new();
    for (parent, from, to) in sibling_edges(&root().join("crates/lab-workload/src")) {
        if !parent.is_empty() {
            continue;
        }
        let (Some(a), Some(b)) = (layer.get(from.as_str()), layer.get(to.as_str())) else {
            panic!("{from} or {to} has no layer in WORKLOAD_LAYERS: give it one");
        };
        if b >= a {
            upward.push(format!("{from} (layer {a}) imports {to} (layer {b})"));
        }
    }
    assert!(
        upward.is_empty(),
        "imports that do not go down:\n  {}",
        upward.join("\n  ")
    );
}

#[test]
fn a_cycle_and_an_upward_import_are_seen() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("book")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod book;\n").unwrap();
    std::fs::write(
        src.join("book/mod.rs"),
        "pub mod render;\npub mod diagram;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("book/render.rs"),
        "use crate::book::diagram::svg;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("book/diagram.rs"),
        "use super::render::escape; // crate::x\n",
    )
    .unwrap();
    let found = cycles(&sibling_edges(src));
    assert_eq!(found, ["book: diagram ↔ render"]);
    std::fs::write(
        src.join("book/diagram.rs"),
        "// use super::render::escape;\n",
    )
    .unwrap();
    assert!(cycles(&sibling_edges(src)).is_empty());
}
