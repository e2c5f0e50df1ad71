//! Driving the seed workflows through the command line on a real SQLite file: start, refuse,
//! decide, withdraw, show and verify, as an operator would.

use crate::root;
use std::path::Path;
use std::process::Output;

/// Runs `beslut` against a data folder of its own.
fn run(data: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_beslut"))
        .args(args)
        .current_dir(root())
        .env("BESLUT_DATA_DIR", data)
        .env_remove("BESLUT_DATABASE_URL")
        .output()
        .expect("beslut runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn write(dir: &Path, name: &str, json: serde_json::Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, json.to_string()).unwrap();
    path.to_str().unwrap().to_string()
}

fn andring(dir: &Path) -> String {
    write(
        dir,
        "andring.json",
        serde_json::json!({
            "rubrik": "Nytt ärendehanteringssystem", "beskrivning": "Ersätter gammalt system", "syfte": "Effektivare handläggning",
            "forvaltning": "sbf", "forslagsstallare": "tomas-lindberg", "kostnad": 250000, "tidplan": "2027",
            "bruttonytta": 400000, "kostnader": "Licens 50 000 kr/år", "nyttostruktur": "Tidsbesparing",
            "riskanalys": "Låg", "nyttoansvarig": "tomas-lindberg"
        }),
    )
}

#[test]
fn andring_av_it_from_start_to_withdrawn_with_refusals_on_the_way() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let started = run(&data, &["start", "andring-av-it", "--data", &andring(dir.path()), "--as", "tomas-lindberg"]);
    assert!(started.status.success(), "{}", text(&started));
    let year = jiff::Zoned::now().year();
    let id = format!("it-{year}-0001");
    assert!(text(&started).contains(&format!("IT {year}/0001")), "{}", text(&started));
    assert!(text(&started).contains("lokal_beredning"), "{}", text(&started));

    // Someone who does not hold the task is refused, and nothing changes.
    let refused = run(&data, &["decide", &id, "t1", "avskriv", "--as", "peter-wallin", "--comment", "x"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused).contains("har inte den här uppgiften"), "{}", text(&refused));

    // Only the starter may withdraw.
    let not_starter = run(&data, &["withdraw", &id, "--as", "peter-wallin"]);
    assert_eq!(not_starter.status.code(), Some(1), "{}", text(&not_starter));
    let withdrawn = run(&data, &["withdraw", &id, "--as", "tomas-lindberg", "--comment", "Behovet har upphört"]);
    assert!(withdrawn.status.success(), "{}", text(&withdrawn));
    assert!(text(&withdrawn).contains("avslutat: återtagen"), "{}", text(&withdrawn));

    let listed = run(&data, &["cases", "--workflow", "andring-av-it"]);
    assert!(text(&listed).contains("aterkallad"), "{}", text(&listed));
    let verified = run(&data, &["audit", "verify"]);
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(text(&verified).contains("obruten"));
}

#[test]
fn finansiering_of_a_basic_category_is_not_eligible() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = write(
        dir.path(),
        "ans.json",
        serde_json::json!({
            "rubrik": "Ny e-posttjänst", "projektagare": "tomas-lindberg", "forvaltning": "kf", "malbidrag": "Drift",
            "portfolj": "tillganglighet", "belopp": "500 000", "budgetar": 2026, "kategori": "grundlaggande",
            "genomforandeplan": "Q1", "nyttorealisering": "Ingen", "systemagare": "KS", "systemagare_accepterat": true,
            "lopttid_manader": 6
        }),
    );
    let started = run(&data, &["start", "finansieringsansokan", "--data", &file, "--as", "tomas-lindberg"]);
    assert!(started.status.success(), "{}", text(&started));
    assert!(
        text(&started).contains("avslutat: avslagen"),
        "grundläggande it-stöd finansieras i linjen: {}",
        text(&started)
    );
}

#[test]
fn invalid_start_data_lists_every_problem_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file =
        write(dir.path(), "bad.json", serde_json::json!({ "rubrik": "x", "forvaltning": "nej", "kostnad": "mycket" }));
    let refused = run(&data, &["start", "andring-av-it", "--data", &file, "--as", "tomas-lindberg"]);
    assert_eq!(refused.status.code(), Some(1));
    let message = text(&refused);
    for field in ["forvaltning", "kostnad", "beskrivning", "forslagsstallare"] {
        assert!(message.contains(field), "{field} missing from: {message}");
    }
    assert!(!message.contains("panicked") && !message.to_lowercase().contains("sqlx"), "{message}");
    assert_eq!(text(&run(&data, &["cases"])).trim(), "");
}

#[test]
fn produktionssattning_is_withdrawn_by_its_starter() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = write(
        dir.path(),
        "prod.json",
        serde_json::json!({
            "system": "Bygglov 2.0", "beskrivning": "Ny version", "forvaltning": "sbf", "bestallare": "kristina-andersson",
            "systemagare": "kristina-andersson", "systemforvaltare": "fredrik-olsson", "planerat_datum": "2027-02-01"
        }),
    );
    let started = run(&data, &["start", "produktionssattning", "--data", &file, "--as", "kristina-andersson"]);
    assert!(started.status.success(), "{}", text(&started));
    let year = jiff::Zoned::now().year();
    let shown = run(&data, &["show", &format!("PROD {year}/0001")]);
    assert!(text(&shown).contains("driftansvar"), "{}", text(&shown));
    let withdrawn = run(&data, &["withdraw", &format!("prod-{year}-0001"), "--as", "kristina-andersson"]);
    assert!(text(&withdrawn).contains("avslutat: återtagen"), "{}", text(&withdrawn));
}

/// `beslut show … | head -1` must end quietly when the reader goes away, not panic.
#[test]
fn a_closed_pipe_ends_output_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let started = run(&data, &["start", "andring-av-it", "--data", &andring(dir.path()), "--as", "tomas-lindberg"]);
    assert!(started.status.success(), "{}", text(&started));
    let year = jiff::Zoned::now().year();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_beslut"))
        .args(["show", &format!("it-{year}-0001")])
        .current_dir(root())
        .env("BESLUT_DATA_DIR", &data)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
