//! `beslut check` on the seed workflows and on the corpus of broken files in `tests/check/`.

use crate::{beslut, root, stdout, yaml_files};

#[test]
fn seed_workflows_are_valid() {
    let output = beslut(&["check", "workflows/"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

#[test]
fn small_valid_workflow_has_no_diagnostics() {
    let output =
        beslut(&["check", "--workflows-dir", "tests/check", "--format", "json", "tests/check/valid/liten.yaml"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(stdout(&output), "", "no errors and no warnings expected");
}

/// The code a broken file announces in its first line: `# expect: CODE – …` or
/// `# expect: warning CODE – …`.
fn expected_code(source: &str) -> (String, bool) {
    let first = source.lines().next().unwrap_or_default();
    let rest = first.strip_prefix("# expect: ").expect("broken files start with `# expect: `");
    let (warning, rest) = match rest.strip_prefix("warning ") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    (rest.split_whitespace().next().unwrap_or_default().to_string(), warning)
}

/// Every broken file reports exactly its announced problem (and nothing else), with a line and
/// column, and the rendered report matches its snapshot.
#[test]
fn every_broken_file_reports_its_problem() {
    let files = yaml_files(&root().join("tests/check/broken"));
    assert!(files.len() >= 30, "the corpus has {} files", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        let (code, warning) = expected_code(&source);
        let relative = file.strip_prefix(root()).unwrap().to_str().unwrap();
        let json = beslut(&["check", "--workflows-dir", "tests/check", "--format", "json", "--lang", "en", relative]);
        let diagnostics: Vec<serde_json::Value> =
            stdout(&json).lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
        let codes: Vec<&str> = diagnostics.iter().map(|d| d["code"].as_str().unwrap()).collect();
        let exit = json.status.code();
        let expected_exit = if warning { Some(0) } else { Some(1) };
        if codes.is_empty() || codes.iter().any(|c| *c != code) || exit != expected_exit {
            failures
                .push(format!("{relative}: expected {code} (exit {expected_exit:?}), got {codes:?} (exit {exit:?})"));
        }
        assert!(
            diagnostics.iter().all(|d| d["line"].as_u64() > Some(0) && d["column"].as_u64() > Some(0)),
            "{relative}"
        );
        for lang in ["en", "sv"] {
            let text = beslut(&["check", "--workflows-dir", "tests/check", "--lang", lang, relative]);
            let name = format!("{}-{lang}", file.file_stem().unwrap().to_str().unwrap());
            insta::assert_snapshot!(name, stdout(&text));
        }
    }
    assert!(failures.is_empty(), "{} of {} files:\n{}", failures.len(), files.len(), failures.join("\n"));
}

#[test]
fn usage_errors_exit_with_2() {
    assert_eq!(beslut(&["check", "does/not/exist.yaml"]).status.code(), Some(2));
    assert_eq!(beslut(&["check", "--format", "xml"]).status.code(), Some(2));
}
