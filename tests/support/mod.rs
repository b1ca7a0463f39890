//! Test helpers shared by the integration tests.

#![allow(dead_code)]

pub mod sshd;

use std::fs;
use std::path::Path;
use std::process::Command;

use egme_ord::demo::DemoFile;
use serde_json::Value;

/// The binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_egme-ord"))
}

/// Writes demo files under `root`.
pub fn write_all(root: &Path, files: &[DemoFile]) {
    for f in files {
        let p = root.join(&f.path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, &f.bytes).unwrap();
    }
}

/// Asserts that a cycle summary (`once --json`) wrote and delivered nothing.
pub fn assert_idle(summary: &Value, context: &str) {
    let ords = summary["ords"].as_array().expect("a cycle summary");
    assert!(
        ords.iter()
            .all(|o| o["files_written"] == 0 && o["files_delivered"] == 0),
        "{context}: a further cycle must send nothing: {summary}"
    );
}
