//! `egme-ord sql`: one read-only SQL statement on the ledger, through egme-ord's own store (page checksums checked, nothing written): the safe way to look inside, never the `sqlite3` shell.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::{exit, workspace};

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// One JSON object per row ({column: value}) instead of tab-separated lines with a header.
    #[arg(long)]
    json: bool,
    /// One statement that reads, e.g. "SELECT ord, count(*) FROM sent_files GROUP BY ord".
    query: String,
}

pub fn run(args: &SqlArgs) -> Result<u8> {
    // No lock: safe beside a running daemon, as `status` is.
    let ws = workspace::Workspace::open_read_only(&args.config)?;
    let result = ws.store.read_query(&args.query)?;
    if args.json {
        for row in &result.rows {
            let object: serde_json::Map<String, serde_json::Value> = result
                .columns
                .iter()
                .cloned()
                .zip(row.iter().cloned())
                .collect();
            println!("{}", serde_json::Value::Object(object));
        }
    } else {
        println!("{}", result.columns.join("\t"));
        for row in &result.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => s.replace(['\t', '\n'], " "),
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                })
                .collect();
            println!("{}", cells.join("\t"));
        }
    }
    Ok(exit::OK)
}
