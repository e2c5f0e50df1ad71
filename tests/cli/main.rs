//! Tests of the `beslut` command line, run as a real process on real files.

mod bench;
mod browser;
mod check;
mod cluster;
mod crash;
mod drive;
mod graph;
mod harness;
mod integration;
mod links_e2e;
mod mail;
mod nodes;
mod pages;
mod scenarios;
mod seeds_cli;
mod web;

use std::path::{Path, PathBuf};
use std::process::Output;

/// The repository root, so tests find `workflows/` and `tests/check/`.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `beslut` with `args` in the repository root.
pub fn beslut(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_beslut"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the beslut binary runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The workflow files directly in `dir`, sorted.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("folder exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}
