//! `egme-ord man` and `egme-ord completions SHELL`: the man page (clap_mangen) and shell completions (clap_complete) generated from the command line itself, so they never drift from it.

use std::io::Write;

use anyhow::Result;
use clap::{Args, CommandFactory};

use super::{exit, Cli};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

/// The man page (roff) on standard output: `egme-ord man > egme-ord.1`.
pub fn run_man() -> Result<u8> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    std::io::stdout().write_all(&page)?;
    Ok(exit::OK)
}

/// Completions for a shell on standard output, e.g.
/// `egme-ord completions bash > /usr/share/bash-completion/completions/egme-ord`.
pub fn run_completions(args: &CompletionsArgs) -> Result<u8> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "egme-ord", &mut std::io::stdout());
    Ok(exit::OK)
}
