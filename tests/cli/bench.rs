//! `beslut bench` runs end to end on SQLite at a tiny size (the engine, HTTP approvals through a
//! real `beslut serve`, the scale run's database, lists and `check`) and writes its report; the
//! figures themselves are recorded in BENCHMARKS.md from a release build, not judged here.

#[test]
fn the_bench_command_measures_every_section_at_a_tiny_size_and_writes_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("BENCHMARKS.md");
    let data = dir.path().join("data");
    let run = crate::beslut(&[
        "bench",
        "--seconds",
        "0.2",
        "--decisions",
        "20",
        "--http-decisions",
        "200",
        "--closed-cases",
        "200",
        "--open-cases",
        "20",
        "--check-files",
        "10",
        "--emails",
        "20",
        "--dir",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    // Exit 1 means a target was missed, which a debug build on a busy machine may well do.
    assert!(matches!(run.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&run.stderr));
    let report = std::fs::read_to_string(&out).unwrap();
    for line in [
        "SQLite raw single-row commits",
        "engine decisions on SQLite, concurrency 1",
        "concurrency 32",
        "HTTP approvals on SQLite, 64 clients",
        "HTTP approval p99 at half the maximum",
        "scale: database of 200 closed and 20 open cases built",
        "scale: case list first page, GET /api/v1/cases",
        "scale: case list first page, /arenden, seeing every case",
        "scale: case list first page, /arenden, a participant",
        "scale: tasks first page, GET /api/v1/tasks",
        "scale: tasks first page, /uppgifter",
        "scale: server resident memory",
        "scale: beslut check on 10 workflow files",
        "emails rendered and sent to a local SMTP server",
        "cargo run --release -- bench",
    ] {
        assert!(report.contains(line), "{line} is missing from the report:\n{report}");
    }
    let table = String::from_utf8_lossy(&run.stdout);
    assert!(table.contains("| engine decisions on SQLite, concurrency 1 |"), "{table}");
}
