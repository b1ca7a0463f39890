//! Benchmark data: N mainland CPEs for one day (ORD files), 1–3 CEMEs each with OCPI CDRs, and the registry.
//!
//! `cargo run --release --example bench-generate -- N OUT_DIR [RECEIVE SEND]` writes what
//! `egme_ord_core::demo::at_scale` makes: `OUT_DIR/remote/from-ord/` (N ORD files),
//! `OUT_DIR/mobility/cdrs.json`, `OUT_DIR/registry/*.csv`, and an empty `OUT_DIR/remote/to-ord/`;
//! given the two endpoints (TOML inline tables), also `OUT_DIR/egme-ord.toml`.
//! The day is Monday 4 November 2024 (96 quarter-hours); the files are dated the 5th.

use std::fs;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(n), Some(out)) = (args.get(1).and_then(|s| s.parse::<u64>().ok()), args.get(2))
    else {
        return Err("usage: bench-generate N OUT_DIR [RECEIVE SEND]".into());
    };
    let out = Path::new(out);
    let scale = egme_ord_core::demo::at_scale(n);
    for f in &scale.files {
        let path = out.join(&f.path);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        fs::write(path, &f.bytes)?;
    }
    fs::create_dir_all(out.join("remote/to-ord"))?;
    if let (Some(receive), Some(send)) = (args.get(3), args.get(4)) {
        fs::write(
            out.join("egme-ord.toml"),
            egme_ord_core::demo::at_scale_config(receive, send),
        )?;
    }
    println!(
        "{n} ORD files, {} CDRs, {} expected outputs",
        scale.cdrs, scale.outputs
    );
    Ok(())
}
