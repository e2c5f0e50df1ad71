//! `beslut test`: the seed scenarios, the report of a failure and of a broken scenario file,
//! JUnit, the email and coverage files, and the mutation test that shows the scenarios notice
//! a broken transition.

use crate::{beslut, root, stdout};
use std::path::{Path, PathBuf};
use std::process::Output;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A copy of `workflows/` to break or add to, with only the scenario folders given.
fn workflows_copy(keep_tests: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("workflows");
    copy_dir(&root().join("workflows"), &copy);
    for entry in std::fs::read_dir(copy.join("tests")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() && !keep_tests.contains(&name.as_str()) {
            std::fs::remove_dir_all(&path).unwrap();
        }
    }
    (dir, copy)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

fn run(args: &[&str], dir: &Path) -> Output {
    let mut all: Vec<&str> = vec!["test"];
    all.extend(args);
    let path = dir.display().to_string();
    all.push(&path);
    beslut(&all)
}

/// The coverage table's row for a workflow: (states, actions, transitions) as "done/all".
fn coverage_row(report: &str, workflow: &str) -> Vec<String> {
    let line = report.lines().find(|l| l.starts_with(&format!("{workflow} "))).expect("a coverage row");
    line.split_whitespace().filter(|w| w.contains('/')).map(str::to_string).collect()
}

#[test]
fn the_seed_scenarios_pass_with_every_state_and_transition_covered() {
    let output = beslut(&["test", "workflows/", "--min-coverage", "100"]);
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{report}{}", stderr(&output));
    for workflow in ["andring-av-it", "finansieringsansokan", "produktionssattning"] {
        let row = coverage_row(&report, workflow);
        for ratio in [&row[0], &row[2]] {
            let (done, all) = ratio.split_once('/').unwrap();
            assert_eq!(done, all, "{workflow}: {row:?}");
        }
    }
    assert!(report.contains(" 0 underkända"), "{report}");
}

#[test]
fn junit_lists_every_scenario() {
    let output = beslut(&["test", "workflows/", "--format", "junit"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let xml = stdout(&output);
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let cases = doc.descendants().filter(|n| n.has_tag_name("testcase")).count();
    let files = ["andring-av-it", "finansieringsansokan", "produktionssattning"]
        .iter()
        .map(|w| std::fs::read_dir(root().join("workflows/tests").join(w)).unwrap().count())
        .sum::<usize>();
    assert_eq!(cases, files);
    assert_eq!(doc.root_element().attribute("failures"), Some("0"));
}

#[test]
fn a_failed_expectation_names_its_line_what_was_expected_and_where_the_case_was() {
    let (_dir, copy) = workflows_copy(&[]);
    let folder = copy.join("tests/produktionssattning");
    std::fs::create_dir_all(&folder).unwrap();
    let scenario = "name: Fel förväntan\nstart:\n  by: tomas-lindberg\n  data:\n    system: Procapita\n    \
                    beskrivning: Ny version.\n    forvaltning: sof\n    bestallare: tomas-lindberg\n    \
                    systemagare: tomas-lindberg\n    systemforvaltare: fredrik-olsson\n    planerat_datum: 2026-05-04\n\
                    steps:\n  - expect:\n      state: verifiering\n";
    std::fs::write(folder.join("fel.yaml"), scenario).unwrap();
    let output = run(&[], &copy);
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{report}{}", stderr(&output));
    assert!(report.contains("FEL   produktionssattning/fel.yaml — Fel förväntan"), "{report}");
    assert!(report.contains("tests/produktionssattning/fel.yaml:14:7"), "{report}");
    assert!(report.contains("förväntat: state: verifiering"), "{report}");
    assert!(report.contains("faktiskt:  state: driftansvar"), "{report}");
    assert!(report.contains("ärendet: PROD 2026/0001 var i driftansvar"), "{report}");
}

#[test]
fn mistakes_in_a_scenario_file_are_reported_like_workflow_errors() {
    let (_dir, copy) = workflows_copy(&[]);
    let folder = copy.join("tests/andring-av-it");
    std::fs::create_dir_all(&folder).unwrap();
    let scenario = "name: Stavfel\nstart:\n  by: sara-hol\n  data: {}\nsteps:\n  - expect:\n      stat: lokal_beredning\n  \
                    - decide: klasa\n    by: sara-holm\n  - advance: 3 veckr\n";
    std::fs::write(folder.join("stavfel.yaml"), scenario).unwrap();
    let output = run(&[], &copy);
    let errors = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{errors}");
    let path = "tests/andring-av-it/stavfel.yaml";
    for (code, at, help) in [
        ("unknown-person", "3:7", "sara-holm"),
        ("unknown-key", "7:7", "state"),
        ("unknown-action", "8:13", "klassa"),
        ("invalid-duration", "10:14", "veckor"),
    ] {
        let found = errors.split("\n\n").find(|d| d.contains(&format!("[{code}]")));
        let diagnostic = found.unwrap_or_else(|| panic!("no {code} in {errors}"));
        assert!(diagnostic.contains(&format!("{path}:{at}")), "{code} at {at}: {diagnostic}");
        assert!(diagnostic.contains(help), "{code} suggests {help}: {diagnostic}");
    }
    assert_eq!(errors.matches("fel[").count(), 4, "one diagnostic per mistake, nothing more: {errors}");
}

/// One transition of each seed workflow pointed elsewhere by hand: the file still passes
/// `beslut check`, and a scenario fails.
#[test]
fn breaking_a_transition_of_a_seed_workflow_makes_a_scenario_fail() {
    let breaks = [
        (
            "andring-av-it",
            "      avsla:\n        label: { sv: Avslå, en: Reject }\n        to: avslagen",
            "to: avslagen",
            "to: aterkallad",
        ),
        (
            "finansieringsansokan",
            "        label: { sv: Skicka in rättad ansökan, en: Submit corrected application }\n        to: kategori_val",
            "to: kategori_val",
            "to: beredning_val",
        ),
        (
            "produktionssattning",
            "    otherwise: produktionssattning",
            "otherwise: produktionssattning",
            "otherwise: kontinuitetsplan",
        ),
    ];
    for (workflow, context, from, to) in breaks {
        let (_dir, copy) = workflows_copy(&[workflow]);
        let file = copy.join(format!("{workflow}.yaml"));
        let source = std::fs::read_to_string(&file).unwrap();
        let at = source.find(context).unwrap_or_else(|| panic!("{workflow}: {context}"));
        let broken = format!("{}{}{}", &source[..at], context.replacen(from, to, 1), &source[at + context.len()..]);
        std::fs::write(&file, broken).unwrap();
        let check = beslut(&["check", &file.display().to_string()]);
        assert_eq!(check.status.code(), Some(0), "{workflow}: the break passes check: {}", stdout(&check));
        let output = run(&[], &copy);
        assert_eq!(output.status.code(), Some(1), "{workflow}: {}", stdout(&output));
        assert!(stdout(&output).contains(&format!("FEL   {workflow}/")), "{}", stdout(&output));
    }
}

#[test]
fn every_transition_broken_in_turn_is_noticed() {
    let output = beslut(&["test", "--lang", "en", "workflows/", "--mutations"]);
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    let line = report.lines().find(|l| l.starts_with("mutations: ")).expect("a mutation summary");
    let transitions: usize = ["andring-av-it", "finansieringsansokan", "produktionssattning"]
        .iter()
        .map(|w| coverage_row(&report, w)[2].split_once('/').unwrap().1.parse::<usize>().unwrap())
        .sum();
    assert!(line.starts_with(&format!("mutations: {transitions} transitions broken")), "{line}");
    assert!(line.ends_with(", 0 not caught"), "{line}");
}

#[test]
fn the_example_in_the_scenario_guide_runs() {
    let guide = std::fs::read_to_string(root().join("workflows/tests/README.md")).unwrap();
    let start = guide.find("```yaml\n").unwrap() + "```yaml\n".len();
    let example = &guide[start..start + guide[start..].find("```").unwrap()];
    let (_dir, copy) = workflows_copy(&[]);
    let folder = copy.join("tests/andring-av-it");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("guide.yaml"), example).unwrap();
    let output = run(&[], &copy);
    assert_eq!(output.status.code(), Some(0), "{}{}", stdout(&output), stderr(&output));
}

#[test]
fn emails_and_coverage_graphs_are_written_for_reading() {
    let out = tempfile::tempdir().unwrap();
    let (emails, graphs) = (out.path().join("emails"), out.path().join("graphs"));
    let args = [
        "test",
        "workflows/tests/produktionssattning/",
        "--emails",
        &emails.display().to_string(),
        "--coverage-dir",
        &graphs.display().to_string(),
    ];
    let output = beslut(&args);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let text = std::fs::read_to_string(emails.join("produktionssattning/genomford-med-kontinuitetsplan.txt")).unwrap();
    assert!(text.contains("Ämne: Uppgift: Tar IT-avdelningen driftansvaret? – PROD 2026/0001"), "{text}");
    assert!(text.contains("[åtgärder: "), "{text}");
    // Staff read names, not ids: the department and the requester as the directory names them.
    assert!(text.contains("- Mottagande förvaltning: Socialförvaltningen"), "{text}");
    assert!(text.contains("- Beställare (systemägarrepresentant eller projektledare): Tomas Lindberg"), "{text}");
    // The completion email of an automatic state names who made the decision that led there.
    assert!(!text.contains("av ."), "an empty decision maker: {text}");
    let svg = std::fs::read_to_string(graphs.join("produktionssattning.svg")).unwrap();
    roxmltree::Document::parse(&svg).expect("well-formed SVG");
    assert!(!svg.contains("stroke-dasharray"), "full coverage marks nothing as missed");

    // One scenario alone leaves parts unreached, and the graph marks them.
    let one = "workflows/tests/produktionssattning/verifiering-underkanns-avbryts.yaml";
    let output = beslut(&["test", one, "--coverage-dir", &graphs.display().to_string()]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let svg = std::fs::read_to_string(graphs.join("produktionssattning.svg")).unwrap();
    assert!(svg.contains("data-state=\"genomford\" stroke-dasharray"), "the unreached end is marked");
}

/// An email that cannot be rendered would fail in production, so it fails the scenario even
/// when no expectation looks at it. (`beslut check` cannot know that an email sent from an
/// automatic state has no task.)
#[test]
fn an_email_that_cannot_be_rendered_fails_the_step_that_sends_it() {
    // The guide's example reaches the grant but expects nothing of its emails.
    let guide = std::fs::read_to_string(root().join("workflows/tests/README.md")).unwrap();
    let start = guide.find("```yaml\n").unwrap() + "```yaml\n".len();
    let example = &guide[start..start + guide[start..].find("```").unwrap()];
    assert!(!example.contains("Insatsen har beviljats"));
    let (_dir, copy) = workflows_copy(&[]);
    std::fs::create_dir_all(copy.join("tests/andring-av-it")).unwrap();
    std::fs::write(copy.join("tests/andring-av-it/guide.yaml"), example).unwrap();
    let template = copy.join("templates/andring-beviljad/text.sv.hbs");
    let source = std::fs::read_to_string(&template).unwrap();
    std::fs::write(&template, format!("{source}\nUppgift: {{{{task.label}}}}\n")).unwrap();
    let output = run(&[], &copy);
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{report}{}", stderr(&output));
    assert!(report.contains("andring-beviljad"), "the report names the template: {report}");
}
