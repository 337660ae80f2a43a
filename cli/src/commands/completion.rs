//! `crtask completion bash|zsh|fish`: shell completion scripts (clap_complete).

use anyhow::Result;
use clap::{Args, CommandFactory, ValueEnum};

/// The shells completion scripts are generated for.
#[derive(Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Args)]
pub struct CompletionArgs {
    /// The shell to print the script for.
    #[arg(value_enum)]
    shell: Shell,
}

/// The completion script for `shell`.
pub fn script<C: CommandFactory>(shell: Shell) -> Vec<u8> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut without_hidden(C::command()), "crtask", &mut out);
    out
}

/// The command tree without its hidden subcommands (`exec`): clap_complete
/// would offer them (it skips hidden flags, not hidden subcommands).
fn without_hidden(cmd: clap::Command) -> clap::Command {
    // clap takes command names as &'static str (without its `string`
    // feature); this runs once per process, which prints and exits.
    let name: &'static str = Box::leak(cmd.get_name().to_string().into_boxed_str());
    let mut out = clap::Command::new(name)
        .args(cmd.get_arguments().cloned())
        .subcommands(
            cmd.get_subcommands()
                .filter(|s| !s.is_hide_set())
                .cloned()
                .map(without_hidden),
        );
    if cmd.get_version().is_some() {
        out = out.version(env!("CARGO_PKG_VERSION"));
    }
    out
}

pub fn run<C: CommandFactory>(a: CompletionArgs) -> Result<i32> {
    use std::io::Write;
    std::io::stdout().write_all(&script::<C>(a.shell))?;
    Ok(0)
}
