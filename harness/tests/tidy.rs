//! A ratchet, not a rule (TigerBeetle's `tidy.zig`; ../shared/design/architecture.md,
//! habit 6): no function in production code may pass [`MAX_FN_LINES`] lines and no
//! file [`MAX_FILE_LINES`] production lines, except today's offenders listed in
//! `tests/tidy_allow.txt`, and those may only shrink: an offender that grew fails,
//! and one that got under the limit must leave the list.
//!
//! The scan relies on rustfmt's layout (the workspace is kept formatted): an item
//! that opens at indent `k` closes at the first later line that is `k` spaces and
//! `}`. `#[cfg(test)]` modules and the `tests/`, `examples/` and `benches/` folders
//! are not production code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Longest production function, in lines (signature to closing brace).
const MAX_FN_LINES: usize = 70;
/// Most production lines in one file.
const MAX_FILE_LINES: usize = 800;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every production `.rs` file under `src/` of every crate (relative paths).
fn sources(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                let skip = name.starts_with('.')
                    || name.starts_with("target")
                    || ["tests", "examples", "benches", "store"].contains(&name.as_str());
                if !skip {
                    stack.push(p);
                }
            } else if name.ends_with(".rs") && name != "tests.rs" {
                // `tests.rs` beside production code is a `#[cfg(test)] mod tests;`.
                let rel = p.strip_prefix(root).unwrap_or(&p).to_path_buf();
                if rel.components().any(|c| c.as_os_str() == "src") {
                    out.push(rel);
                }
            }
        }
    }
    out.sort();
    out
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The line (index) that closes the item opening at `start` with indent `k`.
fn closing(lines: &[&str], start: usize, k: usize) -> usize {
    let close = format!("{}}}", " ".repeat(k));
    (start + 1..lines.len())
        .find(|&i| lines[i].trim_end() == close)
        .unwrap_or(lines.len() - 1)
}

/// The name of a function defined on this line, if it opens one with a body.
fn fn_name(lines: &[&str], i: usize) -> Option<String> {
    let t = lines[i].trim_start();
    let mut rest = t;
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    // A signature that ends in `;` before any `{` has no body (a trait method).
    for l in &lines[i..] {
        if l.contains('{') {
            return Some(name);
        }
        if l.trim_end().ends_with(';') {
            return None;
        }
    }
    None
}

/// (production line count, functions over the limit with their lengths).
fn measure(text: &str) -> (usize, Vec<(String, usize)>) {
    let lines: Vec<&str> = text.lines().collect();
    let mut prod = 0;
    let mut long = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim();
        if t == "#[cfg(test)]"
            && lines
                .get(i + 1)
                .is_some_and(|l| l.trim_start().starts_with("mod "))
        {
            i = closing(&lines, i + 1, indent(lines[i + 1])) + 1;
            continue;
        }
        if let Some(name) = fn_name(&lines, i) {
            let end = closing(&lines, i, indent(lines[i]));
            let len = end - i + 1;
            if len > MAX_FN_LINES {
                long.push((name, len));
            }
        }
        if !t.is_empty() {
            prod += 1;
        }
        i += 1;
    }
    (prod, long)
}

/// Everything over a limit now: "file PATH" or "fn PATH::NAME" -> lines.
fn offenders() -> BTreeMap<String, usize> {
    let root = workspace();
    let mut out = BTreeMap::new();
    for rel in sources(&root) {
        let text = std::fs::read_to_string(root.join(&rel)).unwrap_or_default();
        let (prod, long) = measure(&text);
        let path = rel.display().to_string();
        if prod > MAX_FILE_LINES {
            out.insert(format!("file {path}"), prod);
        }
        for (name, len) in long {
            let key = format!("fn {path}::{name}");
            let e = out.entry(key).or_insert(0);
            *e = (*e).max(len);
        }
    }
    out
}

fn allowed() -> BTreeMap<String, usize> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tidy_allow.txt");
    let text = std::fs::read_to_string(&p).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (k, n) = l.rsplit_once(' ')?;
            Some((k.to_string(), n.parse().ok()?))
        })
        .collect()
}

#[test]
fn functions_and_files_only_shrink() {
    let now = offenders();
    if std::env::var_os("ROLLCALL_TIDY_BLESS").is_some() {
        let mut body = String::from(
            "# Offenders of harness/tests/tidy.rs, with their size when listed; may only shrink.\n",
        );
        for (k, n) in &now {
            body.push_str(&format!("{k} {n}\n"));
        }
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tidy_allow.txt");
        std::fs::write(p, body).unwrap();
        return;
    }
    let allow = allowed();
    let mut errors = Vec::new();
    for (k, n) in &now {
        match allow.get(k) {
            None => errors.push(format!(
                "{k} is {n} lines (limits: fn {MAX_FN_LINES}, file {MAX_FILE_LINES})"
            )),
            Some(&was) if *n > was => errors.push(format!("{k} grew from {was} to {n} lines")),
            _ => {}
        }
    }
    for k in allow.keys().filter(|k| !now.contains_key(*k)) {
        errors.push(format!(
            "{k} is within the limits now: remove it from tests/tidy_allow.txt"
        ));
    }
    assert!(
        errors.is_empty(),
        "tidy ratchet:\n  {}",
        errors.join("\n  ")
    );
}

#[test]
fn the_scanner_sees_long_functions_and_skips_test_modules() {
    let body: String = (0..80).map(|i| format!("    let x{i} = {i};\n")).collect();
    let text = format!(
        "pub fn long() {{\n{body}}}\n\nfn short() {{\n    1;\n}}\n\ntrait T {{\n    fn sig(&self);\n}}\n\n#[cfg(test)]\nmod tests {{\n    fn also_long() {{\n{body}    }}\n}}\n"
    );
    let (prod, long) = measure(&text);
    assert_eq!(long, vec![("long".to_string(), 82)]);
    assert_eq!(prod, 82 + 3 + 3);
}
