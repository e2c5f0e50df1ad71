//! The `beslut` command: parses arguments and hands over to [`beslut::cli`].

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // One TLS provider for SMTP and outbound HTTP alike; without it rustls cannot choose.
    let _ = rustls::crypto::ring::default_provider().install_default();
    beslut::cli::run()
}
