//! Test helpers shared by the integration tests.

#![allow(dead_code)]

pub mod sshd;

use std::fs;
use std::path::Path;
use std::process::Command;

use egme_ord::demo::DemoFile;

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
