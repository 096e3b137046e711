//! README's Architecture table holds: it lists every top-level module of
//! `src/` (a folder or a file), from the ground up, and each module imports
//! only modules listed before it (above it, or earlier in its own row), so
//! there is no import loop between modules.
//!
//! The imports are read from the sources themselves: every `crate::X` path
//! outside comments and test code (`tests.rs`, `*_tests.rs`, `src/**/tests/`
//! files, and an inline `#[cfg(test)] mod`), `use crate::{X, Y}` groups
//! included.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The modules of README's Architecture table, row by row.
fn table_rows(readme: &str) -> Vec<Vec<String>> {
    let section = readme
        .split("\n## Architecture\n")
        .nth(1)
        .expect("README has an Architecture section");
    let table = section
        .split("| module | what it holds |")
        .nth(1)
        .expect("the Architecture section has its table");
    let mut rows = Vec::new();
    for line in table.lines().skip(2) {
        if !line.starts_with('|') {
            break;
        }
        let cell = line.split('|').nth(1).unwrap_or_default();
        let names = cell
            .split('`')
            .skip(1)
            .step_by(2)
            .map(|n| n.trim_end_matches('/').to_string())
            .collect();
        rows.push(names);
    }
    rows
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("read src/").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether a file under `src/` is test code as a whole.
fn is_test_file(relative: &Path) -> bool {
    let name = relative.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    name == "tests" || name.ends_with("_tests") || relative.iter().any(|c| c == "tests")
}

/// The text of a source file without its comment lines and without an
/// inline test module (`#[cfg(test)]` followed by `mod`) and what follows.
fn code_of(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect();
    let mut code = String::new();
    for (i, line) in lines.iter().enumerate() {
        let next = lines[i + 1..].iter().find(|l| !l.trim().is_empty());
        if line.trim() == "#[cfg(test)]" && next.is_some_and(|n| n.trim_start().starts_with("mod "))
        {
            break;
        }
        code.push_str(line);
        code.push('\n');
    }
    code
}

/// The leading identifier of `s`.
fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules a piece of code names through `crate::`.
fn imported_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::b, c}`: the first identifier of each item at the
            // group's own depth.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_ascii_alphabetic() || c == '_') => {
                        out.insert(ident(&group[i..]).to_string());
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name.to_string());
            }
        }
    }
    out
}

#[test]
fn readme_architecture_table_lists_every_module_in_import_order() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).expect("read README.md");
    let rows = table_rows(&readme);
    assert!(rows.len() > 5, "README's Architecture table: {rows:?}");
    // Place of each module: (row, position in the row).
    let mut place = BTreeMap::new();
    for (r, row) in rows.iter().enumerate() {
        for (p, name) in row.iter().enumerate() {
            place.insert(name.clone(), (r, p));
        }
    }

    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut modules = BTreeSet::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src/");
        let first = relative
            .iter()
            .next()
            .and_then(|c| c.to_str())
            .unwrap_or("");
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" {
            continue;
        }
        modules.insert(module.clone());
        if is_test_file(relative) {
            continue;
        }
        let text = fs::read_to_string(file).expect("read a source file");
        let Some(&from) = place.get(&module) else {
            continue;
        };
        for imported in imported_modules(&code_of(&text)) {
            if imported == module {
                continue;
            }
            match place.get(&imported) {
                None => problems.push(format!(
                    "src/{}: imports `{imported}`, which the table does not list",
                    relative.display()
                )),
                Some(&to) if to >= from => problems.push(format!(
                    "src/{}: `{module}` imports `{imported}`, listed after it",
                    relative.display()
                )),
                Some(_) => {}
            }
        }
    }
    for module in &modules {
        if !place.contains_key(module) {
            problems.push(format!(
                "`{module}` is a module of src/ that README's Architecture table does not list"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "README's Architecture table and the imports disagree:\n{}",
        problems.join("\n")
    );
}

/// The reader of imports sees both forms of a path, and nothing in test
/// code.
#[test]
fn imports_are_read_from_paths_and_groups_outside_tests() {
    let code = code_of(
        "//! see crate::events\n\
         use crate::{zone::wire, store::{Store, StoreError}, serial};\n\
         fn f() { crate::metrics::count(); }\n\
         #[cfg(test)]\n\
         mod tests {\n    use crate::server;\n}\n",
    );
    let found: Vec<String> = imported_modules(&code).into_iter().collect();
    assert_eq!(found, ["metrics", "serial", "store", "zone"]);
}
