//! Checked habits (as rust-analyzer's `tidy`): every module says what it is for, unsafe code stays in its one room, files are touched only where ARCHITECTURE.md allows, every source file is on its code map.

use std::path::{Path, PathBuf};

/// The workspace's root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The one file where unsafe code may be (ARCHITECTURE.md: "Unsafe code has one room").
const UNSAFE_ROOM: &str = "src/store/page_sums.rs";

/// Every `.rs` file under `src/` and `core/src/`, as a path from the root with `/`, sorted.
fn sources() -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(base).unwrap();
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    for dir in ["src", "core/src"] {
        walk(&root().join(dir), &root(), &mut out);
    }
    out
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap()
}

/// The code of a Rust file with its comments removed and its string and char literals emptied, so
/// that a word in a doc or a message is not taken for code.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&chars, i) {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            out.push_str("' '");
            i += 3;
        } else if c == '\'' && next == Some('\\') {
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// A module whose first line is not its `//!` line.
fn lacks_module_doc(text: &str) -> bool {
    !text.starts_with("//! ")
}

/// Whether the code (not its comments or strings) holds unsafe code.
fn has_unsafe(text: &str) -> bool {
    let code = code_only(text);
    let words: Vec<&str> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .collect();
    words.contains(&"unsafe")
}

/// Whether the code touches files through `std::fs`.
fn uses_std_fs(text: &str) -> bool {
    let code = code_only(text);
    code.contains("std::fs")
        || code.match_indices("fs::").any(|(at, _)| {
            at == 0 || {
                let before = code[..at].chars().next_back().unwrap_or(' ');
                !(before.is_alphanumeric() || before == '_' || before == ':')
            }
        })
        || code.split("use std::{").skip(1).any(|rest| {
            rest.split('}')
                .next()
                .is_some_and(|l| l.split([',', ' ', '\n']).any(|w| w == "fs"))
        })
}

/// Whether the code re-exports a module of the core (`pub use egme_ord_core…`).
fn re_exports_core(text: &str) -> bool {
    let code = code_only(text);
    let words: Vec<&str> = code.split_whitespace().collect();
    words
        .windows(3)
        .any(|w| w[0].starts_with("pub") && w[1] == "use" && w[2].starts_with("egme_ord_core"))
}

/// The places ARCHITECTURE.md lets touch files: the backticked paths of the sentence "Files
/// (`std::fs`) are touched only in …;" of its invariants.
fn allowed_to_touch_files(architecture: &str) -> Vec<String> {
    let architecture = architecture
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let at = architecture
        .find("Files (`std::fs`) are touched only in")
        .expect("ARCHITECTURE.md says where files are touched");
    let sentence = architecture[at..].split(';').next().unwrap();
    sentence
        .split('`')
        .skip(3)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// What the code map covers: exact paths, and folders (a path ending in `/`). A bare file name
/// after a path in the same cell is in that path's folder (`src/store/sent.rs`, `received.rs`).
fn code_map(architecture: &str) -> (Vec<String>, Vec<String>) {
    let section = architecture
        .split("## Code map")
        .nth(1)
        .expect("ARCHITECTURE.md has a code map")
        .split("\n## ")
        .next()
        .unwrap();
    let (mut files, mut folders) = (Vec::new(), Vec::new());
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cell = row.split('|').nth(1).unwrap_or("");
        let mut folder = String::new();
        for token in cell.split('`').skip(1).step_by(2) {
            if token.ends_with('/') {
                folders.push(token.to_string());
            } else if let Some((dir, _)) = token.rsplit_once('/') {
                folder = format!("{dir}/");
                files.push(token.to_string());
            } else {
                files.push(format!("{folder}{token}"));
            }
        }
    }
    (files, folders)
}

fn on_code_map(path: &str, (files, folders): &(Vec<String>, Vec<String>)) -> bool {
    files.iter().any(|f| f == path) || folders.iter().any(|f| path.starts_with(f.as_str()))
}

fn in_places(path: &str, places: &[String]) -> bool {
    places
        .iter()
        .any(|p| path == p || (p.ends_with('/') && path.starts_with(p.as_str())))
}

#[test]
fn every_module_starts_with_its_one_line_doc() {
    let bad: Vec<String> = sources()
        .into_iter()
        .filter(|f| lacks_module_doc(&read(f)))
        .collect();
    assert!(bad.is_empty(), "modules without their `//!` line: {bad:?}");
}

#[test]
fn unsafe_code_appears_only_in_its_one_room() {
    let bad: Vec<String> = sources()
        .into_iter()
        .filter(|f| f != UNSAFE_ROOM && has_unsafe(&read(f)))
        .collect();
    assert!(bad.is_empty(), "unsafe code outside {UNSAFE_ROOM}: {bad:?}");
    assert!(
        has_unsafe(&read(UNSAFE_ROOM)),
        "the room still holds the shim"
    );
}

#[test]
fn files_are_touched_only_where_architecture_md_allows() {
    let places = allowed_to_touch_files(&read("ARCHITECTURE.md"));
    assert!(places.len() > 3, "{places:?}");
    let bad: Vec<String> = sources()
        .into_iter()
        .filter(|f| uses_std_fs(&read(f)) && !in_places(f, &places))
        .collect();
    assert!(
        bad.is_empty(),
        "std::fs used outside the places ARCHITECTURE.md allows ({places:?}): {bad:?}"
    );
}

#[test]
fn no_shell_re_exports_the_core_so_a_reader_sees_which_crate_a_module_is_in() {
    let bad: Vec<String> = sources()
        .into_iter()
        .filter(|f| f.starts_with("src/") && re_exports_core(&read(f)))
        .collect();
    assert!(bad.is_empty(), "`pub use egme_ord_core` in: {bad:?}");
}

#[test]
fn every_source_file_is_on_the_code_map() {
    let map = code_map(&read("ARCHITECTURE.md"));
    let bad: Vec<String> = sources()
        .into_iter()
        .filter(|f| !on_code_map(f, &map))
        .collect();
    assert!(
        bad.is_empty(),
        "source files missing from ARCHITECTURE.md's code map: {bad:?}"
    );
}

/// The most lines `src/store/mod.rs` may have: it keeps the `Store` itself (open, checks, batches,
/// errors, query helpers); each table family has its own file (issue #33).
const STORE_MOD_MAX_LINES: usize = 500;

#[test]
fn the_stores_mod_rs_keeps_to_the_store_itself() {
    let lines = read("src/store/mod.rs").lines().count();
    assert!(
        lines <= STORE_MOD_MAX_LINES,
        "src/store/mod.rs has {lines} lines, more than {STORE_MOD_MAX_LINES}: move a table family's methods to its own file"
    );
}

#[test]
fn each_rule_catches_what_it_is_for_and_not_its_words_in_docs_or_messages() {
    assert!(lacks_module_doc("use std::io;\n"));
    assert!(lacks_module_doc("/// An item's doc.\nfn f() {}\n"));
    assert!(!lacks_module_doc("//! What this is for.\n"));

    assert!(has_unsafe("fn f() { unsafe { g() } }"));
    assert!(has_unsafe("unsafe fn f() {}"));
    assert!(has_unsafe("unsafe extern \"C\" fn f() {}"));
    assert!(!has_unsafe("// unsafe { g() }\nfn f() {}"));
    assert!(!has_unsafe("fn f() { let e = \"unsafe file name\"; }"));
    assert!(!has_unsafe("fn f() { let e = r#\"unsafe { }\"#; }"));
    assert!(!has_unsafe("fn unsafe_names_are_refused() {}"));

    assert!(uses_std_fs("fn f() { std::fs::read(p); }"));
    assert!(uses_std_fs("use std::fs;\n"));
    assert!(uses_std_fs("use std::{fs, io};\n"));
    assert!(uses_std_fs("fn f() { fs::write(p, b); }"));
    assert!(!uses_std_fs("fn f() { tokio::fs::write(p, b); }"));
    assert!(!uses_std_fs("/// see std::fs::rename\nfn f() {}"));
    assert!(!uses_std_fs("fn f() { let m = \"std::fs failed\"; }"));

    assert!(re_exports_core("pub use egme_ord_core::{cpe, sgl};\n"));
    assert!(re_exports_core("pub(crate) use egme_ord_core::sgl;\n"));
    assert!(!re_exports_core("use egme_ord_core::sgl;\n"));

    let arch = "## Code map\n\n| `src/a.rs` | A. |\n| `src/b/x.rs`, `y.rs` | B. |\n| `src/c/` | C. |\n\n## Invariants\n\n- Files (`std::fs`) are touched only in `src/a.rs` and `src/c/`; the rest never.\n";
    let map = code_map(arch);
    for covered in ["src/a.rs", "src/b/x.rs", "src/b/y.rs", "src/c/d/e.rs"] {
        assert!(on_code_map(covered, &map), "{covered}");
    }
    assert!(!on_code_map("src/b/z.rs", &map));
    assert!(!on_code_map("src/d.rs", &map));
    let places = allowed_to_touch_files(arch);
    assert_eq!(places, ["src/a.rs", "src/c/"]);
    assert!(in_places("src/c/k.rs", &places) && !in_places("src/b/x.rs", &places));
}
