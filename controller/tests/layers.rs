//! The controller's modules depend one way: each may use the modules below it in
//! [`LAYERS`], never one above it, so there is no import cycle and a change in a lower
//! module never needs an upper one. This test reads every `crate::x` path in `src/`.

use std::path::{Path, PathBuf};

/// From the top (the command line) to the bottom (time). A module may use any module
/// after it in this list, and itself.
const LAYERS: &[&str] = &[
    "cli",
    "serve",
    "actions",
    "alerts",
    "auth",
    "exec",
    "output",
    "transfer",
    "engine",
    "collect",
    "transport",
    "pki",
    "webhook",
    "mail",
    "archive",
    "project",
    "store",
    "clock",
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
