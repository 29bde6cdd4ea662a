//! The controller's modules depend one way: each may use the modules below it in
//! [`LAYERS`], never one above it, so there is no import cycle and a change in a lower
//! module never needs an upper one. This test reads every `crate::x` path in `src/`.

use std::path::{Path, PathBuf};

/// From the top (`serve`) to the bottom (the history and time, `ordo-store`). A module
/// may use any module after it in this list, and itself.
const LAYERS: &[&str] = &[
    "serve", "actions", "alerts", "auth", "exec", "terminal", "transfer", "fanout", "collect",
    "session", "pki", "webhook", "mail", "archive", "project", "process", "store", "clock",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top module a file of `src/` belongs to (`exec/plan.rs` -> `exec`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Every module named by a `crate::` path in `text`, with its line.
fn uses(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '{')
                .collect();
            found.push((n + 1, name));
        }
    }
    found
}

#[test]
fn modules_depend_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut wrong = Vec::new();
    for file in &files {
        let from = module_of(&src, file);
        if from == "lib" || from == "bin" {
            continue;
        }
        let Some(from_rank) = rank(&from) else {
            wrong.push(format!(
                "{}: module `{from}` is not in LAYERS: place it",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (line, to) in uses(&text) {
            if to.starts_with('{') {
                wrong.push(format!(
                    "{}:{line}: `crate::{{...}}`: name each module in its own `use`",
                    file.display()
                ));
                continue;
            }
            match rank(&to) {
                Some(r) if r >= from_rank => {}
                Some(_) => wrong.push(format!(
                    "{}:{line}: `{from}` uses `{to}`, a module above it",
                    file.display()
                )),
                None => wrong.push(format!(
                    "{}:{line}: `crate::{to}` is not a module in LAYERS",
                    file.display()
                )),
            }
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn every_module_of_lib_rs_is_placed() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(name) = line.strip_prefix("pub mod ").or(line.strip_prefix("mod ")) {
            let name = name.trim_end_matches(';');
            assert!(
                LAYERS.contains(&name),
                "lib.rs: module `{name}` is not in LAYERS"
            );
        }
    }
}

/// The file `crate::<path>` names, if it is one (`a/b.rs` or `a/b/mod.rs`; the crate's
/// `lib.rs`, and a folder's `mod.rs`, hold what a folder shares and are left out).
fn file_of(src: &Path, path: &[String]) -> Option<PathBuf> {
    for n in (1..=path.len()).rev() {
        let rel: PathBuf = path[..n].iter().collect();
        let file = src.join(&rel).with_extension("rs");
        if file.is_file() {
            return Some(file);
        }
        if src.join(&rel).join("mod.rs").is_file() {
            return None;
        }
    }
    None
}

/// The module path of a file (`a/b.rs` and `a/b/mod.rs` are `a::b`).
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
        parts.pop();
    }
    parts
}

/// The files of the same crate that `file` names (`crate::a::b`, `super::x`, `self::x`).
fn file_edges(src: &Path, file: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(file).unwrap();
    let here = module_path(src, file);
    let mut out = Vec::new();
    for (prefix, base) in [
        ("crate::", Vec::new()),
        ("super::", here[..here.len().saturating_sub(1)].to_vec()),
        ("self::", here.clone()),
    ] {
        let mut rest = text.as_str();
        while let Some(i) = rest.find(prefix) {
            // `super::super::x` and `a::super::x` are not followed (none are written).
            let before = rest[..i].chars().last();
            rest = &rest[i + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let words: Vec<String> = rest
                .split("::")
                .map(|w| {
                    w.chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .take_while(|w| !w.is_empty())
                .collect();
            let mut path = base.clone();
            path.extend(words);
            if let Some(f) = file_of(src, &path)
                && f != file
            {
                out.push(f);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A circle of files that name each other, if there is one.
fn a_circle(edges: &std::collections::BTreeMap<PathBuf, Vec<PathBuf>>) -> Option<Vec<PathBuf>> {
    fn visit(
        f: &PathBuf,
        edges: &std::collections::BTreeMap<PathBuf, Vec<PathBuf>>,
        path: &mut Vec<PathBuf>,
        done: &mut std::collections::BTreeSet<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        if let Some(i) = path.iter().position(|p| p == f) {
            return Some(path[i..].to_vec());
        }
        if done.contains(f) {
            return None;
        }
        path.push(f.clone());
        for g in edges.get(f).into_iter().flatten() {
            if let Some(c) = visit(g, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(f.clone());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    for f in edges.keys() {
        if let Some(c) = visit(f, edges, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

/// No two files of a crate name each other, even through others: a shared type lives in
/// its folder's `mod.rs` or a file of its own (files are cut by concept, not by size).
#[test]
fn no_file_circles_in_any_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut circles = Vec::new();
    for krate in [
        "controller/src",
        "controller/web/src",
        "controller/cli/src",
        "controller/store/src",
        "agent/src",
        "jobs/src",
        "inventory/src",
        "proto/src",
    ] {
        let src = root.join(krate);
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let edges: std::collections::BTreeMap<PathBuf, Vec<PathBuf>> = files
            .iter()
            .map(|f| (f.clone(), file_edges(&src, f)))
            .collect();
        if let Some(c) = a_circle(&edges) {
            let names: Vec<String> = c
                .iter()
                .map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string())
                .collect();
            circles.push(names.join(" -> "));
        }
    }
    assert!(
        circles.is_empty(),
        "files in a circle:\n{}",
        circles.join("\n")
    );
}
