//! `egme-ord probe URL`: GET a local health URL (for the container's HEALTHCHECK, where no curl is installed); exit 0 on 200.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::Args;

use super::exit;

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// `http://HOST:PORT/PATH`, e.g. http://127.0.0.1:9464/healthz.
    url: String,
}

pub fn run(args: &ProbeArgs) -> Result<u8> {
    let rest = args
        .url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("{}: expected http://HOST:PORT/PATH", args.url))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = TcpStream::connect(host).with_context(|| format!("cannot connect to {host}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    let status = answer.lines().next().unwrap_or("");
    println!("{status}");
    Ok(if status.split(' ').nth(1) == Some("200") {
        exit::OK
    } else {
        exit::INVALID
    })
}
