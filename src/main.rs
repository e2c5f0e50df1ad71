//! The `beslut` command: parses arguments and hands over to [`beslut::cli`].

fn main() -> std::process::ExitCode {
    beslut::cli::run()
}
