//! The three seed workflows driven from start to every end state through the `beslut` binary on a
//! real SQLite file, as an operator would: `start`, `decide`, `withdraw`, `signal`, `timers run`
//! and `audit verify`, with `BESLUT_NOW` as the clock.
//!
//! The paths follow those of `engine/tests/seeds.rs`, which drives the same cases in memory. The
//! people are those of `workflows/directory.yaml`; where seeds.rs asks the directory for the first
//! holder of a role, the person is written out here (`holder` of it-avdelningen is per-holm, and
//! so on). Each workflow's test fails when an end state of its file is reached by no path.

use crate::root;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Output;

// --- People of directory.yaml, the first holder of each role as in seeds.rs --------------------

const IT_CHEF: &str = "peter-wallin";
const LEDNINGSGRUPP: &str = "anna-lindqvist";
const SAKERHETSCHEF: &str = "karin-lund";
const CHEFSARKIVARIE: &str = "gunnar-ahlberg";
const IT_ARKITEKT: &str = "erik-nystrom";
const WEBBSTRATEG: &str = "sofia-berg";
const KOMMUNSTYRELSEN: &str = "olof-magnusson";
const UTVECKLINGSRAD: &str = "anna-lindqvist";
const BEREDNING_INNOVATION: &str = "amira-haddad";
const IT_AVDELNINGEN: &str = "per-holm";

// --- Driving the binary ------------------------------------------------------------------------

/// One data folder, the workflow files of the repository and a fake clock.
struct Cli {
    dir: tempfile::TempDir,
    data: PathBuf,
    /// `BESLUT_NOW` of every command; moved on by `advance`.
    now: String,
    /// The path, for messages.
    path: &'static str,
    files: usize,
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

impl Cli {
    fn new(path: &'static str, now: &str) -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        Cli { dir, data, now: now.to_string(), path, files: 0 }
    }

    fn run(&self, args: &[&str]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_beslut"))
            .args(args)
            .current_dir(root())
            .env("BESLUT_DATA_DIR", &self.data)
            .env("BESLUT_NOW", &self.now)
            .env_remove("BESLUT_DATABASE_URL")
            .env_remove("BESLUT_WORKFLOWS")
            .output()
            .expect("beslut runs")
    }

    /// Runs a command that must succeed; returns its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "path {}: `beslut {}` at {} failed ({:?}):\n{}",
            self.path,
            args.join(" "),
            self.now,
            output.status.code(),
            text(&output)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs a command the workflow must refuse (exit 1); returns what it said.
    fn refused(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_eq!(
            output.status.code(),
            Some(1),
            "path {}: `beslut {}` at {} should be refused:\n{}",
            self.path,
            args.join(" "),
            self.now,
            text(&output)
        );
        text(&output)
    }

    /// Starts a case as `who`; returns its id, taken from the first line of the output
    /// (`IT 2026/0001 (it-2026-0001) – andring-av-it`).
    fn start(&mut self, workflow: &str, data: &Value, who: &str) -> String {
        self.files += 1;
        let file = self.dir.path().join(format!("start-{}.json", self.files));
        std::fs::write(&file, data.to_string()).unwrap();
        let out = self.ok(&["start", workflow, "--data", file.to_str().unwrap(), "--as", who]);
        let first = out.lines().next().unwrap_or_default();
        let id = first.split_once(" (").and_then(|(_, rest)| rest.split_once(") – ")).filter(|(_, w)| *w == workflow);
        let id = id.unwrap_or_else(|| panic!("path {}: no {workflow} case in the start output:\n{out}", self.path));
        id.0.to_string()
    }

    /// The whole case, from `show --format json`.
    fn show(&self, case: &str) -> Value {
        let out = self.ok(&["show", case, "--format", "json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("path {}: show is not JSON: {e}\n{out}", self.path))
    }

    /// Moves the clock to `at` and fires the timers due.
    fn advance(&mut self, at: &str) {
        self.now = at.to_string();
        self.ok(&["timers", "run"]);
    }

    /// The open task of `who` in `case` whose definition has `action`, in `branch` if given.
    fn task_of(&self, case: &str, who: &str, branch: Option<&str>, action: &str) -> String {
        let shown = self.show(case);
        let workflow = definition(shown["workflow"].as_str().unwrap());
        let candidates: Vec<&Value> = shown["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["closed"].is_null())
            .filter(|t| t["assignees"].as_array().unwrap().iter().any(|a| a["party"]["person"] == who))
            .filter(|t| branch.is_none_or(|b| t["branch"] == b))
            .filter(|t| has_action(&workflow, t, action))
            .collect();
        match candidates.as_slice() {
            [task] => task["id"].as_str().unwrap().to_string(),
            _ => panic!(
                "path {}: {who} should hold one open task with {action} in {case} (state {}), holds {}:\n{:#}",
                self.path,
                shown["state"],
                candidates.len(),
                shown["tasks"]
            ),
        }
    }

    fn decide(&self, case: &str, who: &str, action: &str, comment: Option<&str>, form: Value) {
        self.decide_in(case, who, None, action, comment, form);
    }

    /// `beslut decide` on the open task of `who` (in `branch`) that has `action`.
    fn decide_in(&self, case: &str, who: &str, branch: Option<&str>, action: &str, comment: Option<&str>, form: Value) {
        let task = self.task_of(case, who, branch, action);
        let form = form.to_string();
        let mut args = vec!["decide", case, &task, action, "--as", who, "--form", &form];
        if let Some(comment) = comment {
            args.extend(["--comment", comment]);
        }
        self.ok(&args);
    }

    fn withdraw(&self, case: &str, who: &str) {
        self.ok(&["withdraw", case, "--as", who, "--comment", "Behovet har upphört"]);
    }

    /// Asserts that `case` ended in `state` with `outcome` and that the audit trail is intact;
    /// returns the end state reached.
    fn ended(&self, case: &str, state: &str, outcome: &str) -> String {
        let shown = self.show(case);
        assert_eq!(shown["state"], state, "path {}: end state of {case}", self.path);
        assert_eq!(shown["status"]["status"], "closed", "path {}: {case}: {:#}", self.path, shown["status"]);
        assert_eq!(shown["status"]["outcome"], outcome, "path {}: outcome of {case}", self.path);
        let open: Vec<&Value> = shown["tasks"].as_array().unwrap().iter().filter(|t| t["closed"].is_null()).collect();
        assert!(open.is_empty(), "path {}: a closed case has no open tasks: {open:?}", self.path);
        self.audit_intact();
        state.to_string()
    }

    fn audit_intact(&self) {
        let verified = self.ok(&["audit", "verify"]);
        assert!(verified.contains("obruten"), "path {}: {verified}", self.path);
    }
}

/// A workflow file of the repository as JSON.
fn definition(workflow: &str) -> Value {
    let source = std::fs::read_to_string(root().join("workflows").join(format!("{workflow}.yaml"))).unwrap();
    serde_saphyr::from_str(&source).unwrap()
}

/// Whether the definition of `task` (its state, or its branch of a parallel state) has `action`.
fn has_action(workflow: &Value, task: &Value, action: &str) -> bool {
    let state = &workflow["states"][task["state"].as_str().unwrap()];
    let def = match task["branch"].as_str() {
        Some(branch) => &state["branches"][branch],
        None => state,
    };
    def["actions"].get(action).is_some()
}

/// The end states of a workflow file: those whose `type` is `end`.
fn end_states(workflow: &str) -> BTreeSet<String> {
    let def = definition(workflow);
    let states = def["states"].as_object().expect("states is a map");
    states.iter().filter(|(_, s)| s["type"] == "end").map(|(id, _)| id.clone()).collect()
}

/// Runs the paths of `workflow` side by side, each on a data folder of its own, and checks that
/// together they reach every end state of the workflow file.
fn reach_every_end_state(workflow: &str, paths: &[fn() -> String]) {
    let reached: BTreeSet<String> = std::thread::scope(|scope| {
        let running: Vec<_> = paths.iter().map(|path| scope.spawn(path)).collect();
        running.into_iter().map(|r| r.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });
    let ends = end_states(workflow);
    assert!(!ends.is_empty(), "{workflow} has end states");
    let missing: Vec<&String> = ends.difference(&reached).collect();
    assert!(missing.is_empty(), "{workflow}: end states no CLI path reaches: {missing:?}");
    assert_eq!(ends, reached, "{workflow}: every state reached is an end state of the file");
}

// --- Ändring av IT -----------------------------------------------------------------------------

fn andring_data(forvaltning: &str, proposer: &str, akut: bool) -> Value {
    json!({
        "rubrik": "Nytt ärendehanteringssystem",
        "beskrivning": "Ersätter det gamla systemet för bygglov.",
        "syfte": "Kortare handläggningstider.",
        "forvaltning": forvaltning,
        "forslagsstallare": proposer,
        "kostnad": 450000,
        "tidplan": "Införande under hösten.",
        "bruttonytta": 900000,
        "kostnader": "Licenser 120 000 kr per år.",
        "nyttostruktur": "Handläggare sparar tid.",
        "riskanalys": "Migrering av gamla ärenden.",
        "nyttoansvarig": "kristina-andersson",
        "akut": akut,
    })
}

fn klassa(cli: &Cli, case: &str, who: &str, klassning: &str) {
    let form = json!({ "klassning": klassning, "lokal_bedomning": "Berett i lokalt IT-forum." });
    cli.decide(case, who, "klassa", None, form);
}

fn arkitektur_form(ramverk: &str) -> Value {
    json!({
        "samordning": "Ingen.", "centrala_insatser": "Inga.", "konsekvenser_andra": "Inga.",
        "kapacitet_licenser": "Ryms.", "overlappning": "Ingen.", "ramverk": ramverk,
    })
}

/// The four votes of the central IT forum, all in favour, by the branch roles' first holders, or
/// by `by` for every branch when the review was escalated to one person.
fn forum_votes(cli: &Cli, case: &str, by: Option<&str>) {
    let votes = [
        (
            "sakerhet",
            SAKERHETSCHEF,
            json!({ "informationssakerhet": "Ingen ny risk.", "personuppgifter": "Biträdesavtal finns." }),
        ),
        ("arkiv", CHEFSARKIVARIE, json!({ "arkivhantering": "Gallras efter 10 år." })),
        ("arkitektur", IT_ARKITEKT, arkitektur_form("foljer")),
        ("webb", WEBBSTRATEG, json!({ "webb_berord": false })),
    ];
    for (branch, holder, form) in votes {
        cli.decide_in(case, by.unwrap_or(holder), Some(branch), "tillstyrk", None, form);
    }
}

fn rekommendera(cli: &Cli, case: &str) {
    let form = json!({
        "klassning": "storre", "nytta_kostnad_risk": "God.", "tidplan_bedomning": "Rimlig.",
        "ramavtal": "Ryms i ramavtalet.", "prioritering_forslag": "Hösten 2026.",
        "rekommendation": "tillstyrks", "rekommendation_motivering": "Stor nytta.",
    });
    cli.decide(case, IT_CHEF, "rekommendera", None, form);
}

fn ledningsgrupp_rad(cli: &Cli, case: &str, who: &str) {
    cli.decide(case, who, "rad", None, json!({ "prioritet": "hog", "ledningsgrupp_rad": "Genomför." }));
}

const PLAN_SIGNAL: &str = "it-verksamhetsplan-registrerad";

/// Routine, completed once, approved by the förvaltningschef; the plan never confirms, so after
/// 10 working days the IT-chef enters it by hand.
fn andring_rutin() -> String {
    let mut cli = Cli::new("andring rutin", "2026-03-02T08:00:00Z");
    let (samordnare, chef, proposer) = ("sara-holm", "mats-ekberg", "james-okafor");
    let case = cli.start("andring-av-it", &andring_data("kf", proposer, false), proposer);
    cli.decide(&case, samordnare, "komplettering", Some("Ange antal användare."), json!({}));
    cli.advance("2026-03-04T10:00:00Z");
    cli.decide(&case, proposer, "skicka_in", None, json!({ "komplettering": "Cirka 40 användare." }));
    klassa(&cli, &case, samordnare, "rutin");
    cli.decide(&case, chef, "godkann", Some("Ryms i budgeten."), json!({}));
    assert_eq!(cli.show(&case)["state"], "vanta_plan");
    cli.advance("2026-03-18T11:00:00Z");
    assert_eq!(cli.show(&case)["state"], "plan_manuell", "no confirmation within 10 working days");
    cli.decide(&case, IT_CHEF, "registrerad", None, json!({ "plan_id": "VP-2026-003" }));
    assert_eq!(cli.show(&case)["data"]["plan_id"], "VP-2026-003");
    cli.ended(&case, "beviljad", "approved")
}

/// Större: the central forum, a pre-study required by the management group, the forum again,
/// approval, and the IT operational plan confirms with a signal under the case number.
fn andring_storre() -> String {
    let mut cli = Cli::new("andring storre", "2026-03-02T08:00:00Z");
    let proposer = "elin-sandberg";
    let case = cli.start("andring-av-it", &andring_data("sbf", proposer, false), proposer);
    klassa(&cli, &case, "ahmed-yusuf", "storre");
    forum_votes(&cli, &case, None);
    rekommendera(&cli, &case);
    let form = json!({ "ledningsgrupp_rad": "Förstudie." });
    cli.decide(&case, LEDNINGSGRUPP, "forstudie", Some("Jämför med e-tjänsteplattformen."), form);
    cli.advance("2026-04-15T08:00:00Z");
    cli.decide(&case, proposer, "lamna_forstudie", None, json!({ "forstudie_resultat": "Rapport KS 2026/77." }));
    forum_votes(&cli, &case, None);
    rekommendera(&cli, &case);
    ledningsgrupp_rad(&cli, &case, LEDNINGSGRUPP);
    cli.decide(&case, "helena-sjoberg", "godkann", None, json!({}));
    let shown = cli.show(&case);
    assert_eq!(shown["state"], "vanta_plan");
    let number = shown["number"].as_str().unwrap().to_string();
    assert_eq!(number, "IT 2026/0001");
    // Another signal is not what the case waits for; nothing changes.
    let said = cli.refused(&["signal", "annan-signal", &number, "--payload", "{}"]);
    assert!(said.contains("inget öppet ärende väntar"), "{said}");
    assert_eq!(cli.show(&case), shown);
    cli.ok(&["signal", PLAN_SIGNAL, &number, "--payload", r#"{"id": "VP-2026-042"}"#]);
    assert_eq!(cli.show(&case)["data"]["plan_id"], "VP-2026-042");
    cli.ended(&case, "beviljad", "approved")
}

/// July, the IT architect on leave: his substitute assesses, the security head objects, the
/// chief executive does not answer in time, the IT-chef advises against, the decision maker
/// rejects.
fn andring_veto() -> String {
    // Tuesday 7 July 2026: erik-nystrom is away 6 July – 7 August, amira-haddad substitutes.
    let mut cli = Cli::new("andring veto", "2026-07-07T08:00:00Z");
    let case = cli.start("andring-av-it", &andring_data("kf", "tomas-lindberg", false), "tomas-lindberg");
    klassa(&cli, &case, "sara-holm", "strategisk");
    cli.decide_in(&case, "amira-haddad", Some("arkitektur"), "tillstyrk", None, arkitektur_form("avviker"));
    let form = json!({ "informationssakerhet": "Data lämnar EU.", "personuppgifter": "Otillåten överföring." });
    cli.decide(&case, SAKERHETSCHEF, "invandning", Some("Molntjänst utanför EU."), form);
    let shown = cli.show(&case);
    assert_eq!(shown["state"], "forum_invandning");
    let arkitektur = shown["tasks"].as_array().unwrap().iter().find(|t| t["branch"] == "arkitektur").unwrap();
    assert_eq!(arkitektur["decision"]["by"], "amira-haddad");
    assert_eq!(arkitektur["decision"]["on_behalf_of"], "erik-nystrom");
    let form = json!({ "undantag_fraga": "Tillfälligt undantag i ett år." });
    cli.decide(&case, IT_CHEF, "prova_undantag", None, form);
    assert_eq!(cli.show(&case)["state"], "samrad_kommundirektor");
    // The consultation has 5 working days: Tuesday 7 July to Tuesday 14 July 2026.
    cli.advance("2026-07-14T09:00:00Z");
    assert_eq!(cli.show(&case)["state"], "forum_invandning", "the timeout goes back to the IT-chef");
    cli.decide(&case, IT_CHEF, "avstyrk", None, json!({ "rekommendation_motivering": "Strider mot ramverken." }));
    ledningsgrupp_rad(&cli, &case, LEDNINGSGRUPP);
    cli.decide(&case, "mats-ekberg", "avsla", Some("Följer inte ramverken."), json!({}));
    assert_eq!(cli.show(&case)["data"]["rekommendation"], "avstyrks");
    cli.ended(&case, "avslagen", "rejected")
}

/// Akut: nobody in the forum assesses within 2 working days, the IT-chef takes over the four
/// branches; the decision maker refers to the executive board, which rejects.
fn andring_akut() -> String {
    let mut cli = Cli::new("andring akut", "2026-03-02T08:00:00Z");
    let case = cli.start("andring-av-it", &andring_data("ubf", "laura-schmidt", true), "laura-schmidt");
    klassa(&cli, &case, "linnea-forsberg", "storre");
    // The forum's deadline is Wednesday 4 March, 08:00 UTC; timers run on time, as the timer
    // loop of a running service would (a late run dates the escalation differently, see
    // `a_late_timer_run_escalates_as_of_the_deadline`).
    cli.advance("2026-03-04T08:00:00Z");
    cli.advance("2026-03-04T09:00:00Z");
    let shown = cli.show(&case);
    assert_eq!(shown["state"], "forum_akut");
    let forum: Vec<&Value> = shown["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == "forum_akut" && t["closed"].is_null())
        .collect();
    assert_eq!(forum.len(), 4, "{:#}", shown["tasks"]);
    for task in &forum {
        assert_eq!(task["escalated"], true);
        assert_eq!(task["deadline"], "2026-03-05T08:00:00Z");
        assert!(task["assignees"].as_array().unwrap().iter().any(|a| a["party"]["person"] == IT_CHEF));
    }
    forum_votes(&cli, &case, Some(IT_CHEF));
    rekommendera(&cli, &case);
    ledningsgrupp_rad(&cli, &case, "maria-karlsson");
    cli.decide(&case, "johan-bergstrom", "politiskt", Some("Principiellt viktigt."), json!({}));
    let form = json!({
        "politiskt_organ": "kommunstyrelsen", "protokollsparagraf": "KS § 45", "politiskt_beslutsdatum": "2026-03-25",
    });
    cli.decide(&case, KOMMUNSTYRELSEN, "avslag", Some("Ej prioriterat i budgeten."), form);
    cli.ended(&case, "avslagen", "rejected")
}

/// Only the starter withdraws; the proposer withdraws while the forum assesses.
fn andring_withdrawn() -> String {
    let mut cli = Cli::new("andring withdrawn", "2026-03-02T08:00:00Z");
    let proposer = "james-okafor";
    let case = cli.start("andring-av-it", &andring_data("kuf", proposer, false), proposer);
    let before = cli.show(&case);
    cli.refused(&["withdraw", &case, "--as", IT_CHEF, "--comment", "x"]);
    assert_eq!(cli.show(&case), before, "the refused withdrawal changes nothing");
    klassa(&cli, &case, "emma-nilsson", "storre");
    cli.decide(&case, CHEFSARKIVARIE, "tillstyrk", None, json!({ "arkivhantering": "Inget att bevara." }));
    cli.withdraw(&case, proposer);
    let shown = cli.show(&case);
    let forum = shown["tasks"].as_array().unwrap().iter().filter(|t| t["state"] == "forum_ordinarie");
    assert!(forum.clone().count() == 4 && forum.into_iter().all(|t| !t["closed"].is_null()));
    cli.ended(&case, "aterkallad", "withdrawn")
}

/// November, the proposer on leave: the completion goes to his substitute, who withdraws the
/// proposal on his behalf; the absent proposer cannot act.
fn andring_substitute() -> String {
    // tomas-lindberg is away 2–20 November 2026, elin-sandberg substitutes.
    let mut cli = Cli::new("andring substitute", "2026-11-05T08:00:00Z");
    let case = cli.start("andring-av-it", &andring_data("sof", "tomas-lindberg", false), "tomas-lindberg");
    cli.decide(&case, "jonas-eriksson", "komplettering", Some("Saknar kostnader."), json!({}));
    let task = cli.task_of(&case, "elin-sandberg", None, "dra_tillbaka");
    let said = cli.refused(&["decide", &case, &task, "skicka_in", "--as", "tomas-lindberg", "--form", "{}"]);
    assert!(said.contains("har inte den här uppgiften"), "{said}");
    cli.decide(&case, "elin-sandberg", "dra_tillbaka", Some("Tomas avstår."), json!({}));
    let shown = cli.show(&case);
    let decided = shown["tasks"].as_array().unwrap().iter().find(|t| t["id"] == task.as_str()).unwrap();
    assert_eq!(decided["assignees"][0]["via"], "substitute");
    assert_eq!(decided["decision"]["by"], "elin-sandberg");
    assert_eq!(decided["decision"]["on_behalf_of"], "tomas-lindberg");
    cli.ended(&case, "aterkallad", "withdrawn")
}

#[test]
fn andring_av_it_reaches_every_end_state_through_the_cli() {
    reach_every_end_state(
        "andring-av-it",
        &[andring_rutin, andring_storre, andring_veto, andring_akut, andring_withdrawn, andring_substitute],
    );
}

// --- Finansieringsansökan ------------------------------------------------------------------------

fn fin_data(kategori: &str, portfolj: &str, plan: &str, applicant: &str) -> Value {
    json!({
        "rubrik": "Chattbot för bygglovsfrågor",
        "projektagare": applicant,
        "forvaltning": "sbf",
        "malbidrag": "Bättre service till medborgarna.",
        "portfolj": portfolj,
        "belopp": 1200000,
        "budgetar": 2026,
        "kategori": kategori,
        "genomforandeplan": "Pilot under våren.",
        "nyttorealisering": "Färre telefonsamtal.",
        "systemagare": "Samhällsbyggnadsnämnden",
        "systemagare_accepterat": true,
        "avvecklings_eller_integrationsplan": plan,
        "lopttid_manader": 6,
    })
}

/// Through the innovation group and the council to the executive board's decision.
fn fin_to_ks(cli: &Cli, case: &str, belopp: i64) {
    let form = json!({ "angelagenhet": "hog", "beredning_bedomning": "Angeläget.", "foreslaget_belopp": belopp });
    cli.decide(case, BEREDNING_INNOVATION, "overlamna", None, form);
    let form = json!({ "utvecklingsradets_rad": "Bevilja.", "rekommenderat_belopp": belopp });
    cli.decide(case, UTVECKLINGSRAD, "lamna_rad", None, form);
    assert_eq!(cli.show(case)["state"], "ks_beslut");
}

fn bevilja_form(belopp: i64) -> Value {
    json!({ "beviljat_belopp": belopp, "ks_paragraf": "KS § 12, dnr KS 2026/101" })
}

/// Basic IT support is line-funded: the application ends at once, without a task.
fn fin_ej_berattigad() -> String {
    let mut cli = Cli::new("fin ej berattigad", "2026-03-02T08:00:00Z");
    let data = fin_data("grundlaggande", "information", "", "laura-schmidt");
    let case = cli.start("finansieringsansokan", &data, "laura-schmidt");
    assert_eq!(cli.show(&case)["tasks"], json!([]));
    cli.ended(&case, "ej_berattigad", "rejected")
}

/// Innovative without a decommissioning plan: the formal deficiency corrected, twice sent back
/// for completion, granted, and followed up after the budget year.
fn fin_beviljad() -> String {
    let mut cli = Cli::new("fin beviljad", "2026-03-02T08:00:00Z");
    let applicant = "james-okafor";
    let case = cli.start("finansieringsansokan", &fin_data("innovativt", "innovation", "", applicant), applicant);
    let form = json!({
        "portfolj": "innovation", "avvecklings_eller_integrationsplan": "Avvecklas efter piloten.",
        "lopttid_manader": 6, "systemagare": "Samhällsbyggnadsnämnden", "systemagare_accepterat": true,
    });
    cli.decide(&case, applicant, "skicka_in", None, form);
    cli.decide(&case, BEREDNING_INNOVATION, "komplettering", Some("Hur mäts nyttan?"), json!({}));
    cli.decide(&case, applicant, "skicka_in", None, json!({ "komplettering_svar": "Antal samtal före och efter." }));
    cli.advance("2026-03-16T08:00:00Z");
    cli.decide(&case, BEREDNING_INNOVATION, "komplettering", Some("Vem förvaltar chattboten?"), json!({}));
    cli.decide(&case, applicant, "skicka_in", None, json!({ "komplettering_svar": "Kundcenter." }));
    fin_to_ks(&cli, &case, 1_000_000);
    cli.decide(&case, KOMMUNSTYRELSEN, "bevilja", None, bevilja_form(1_000_000));
    assert_eq!(cli.show(&case)["state"], "vanta_arsskifte");
    cli.advance("2026-12-30T12:00:00Z");
    assert_eq!(cli.show(&case)["state"], "vanta_arsskifte", "still waiting the day before the last day of the year");
    // Timers run on time: at midnight, Stockholm time, as the year's last day begins.
    cli.advance("2026-12-30T23:00:00Z");
    cli.advance("2027-01-04T08:00:00Z");
    let shown = cli.show(&case);
    let uppfoljning = shown["tasks"].as_array().unwrap().iter().find(|t| t["state"] == "uppfoljning");
    let uppfoljning = uppfoljning.unwrap_or_else(|| panic!("no follow-up task: {shown:#}"));
    assert_eq!(uppfoljning["opened_at"], "2026-12-30T23:00:00Z", "31 December, Stockholm time");
    let form =
        json!({ "nytta_realiserad": "delvis", "forbrukat_belopp": 940000, "uppfoljning_kommentar": "Färre samtal." });
    cli.decide(&case, UTVECKLINGSRAD, "uppfoljd", None, form);
    cli.ended(&case, "beviljad", "approved")
}

/// Two applications to the innovation frame of 2026 (1 500 000 kr): the first is granted
/// 1 000 000; granting the second 600 000 would exceed the frame and is refused with nothing
/// changed; the board then rejects it.
fn fin_frame() -> String {
    let mut cli = Cli::new("fin frame", "2026-03-02T08:00:00Z");
    let data = fin_data("innovativt", "innovation", "Integreras i e-tjänsteplattformen.", "james-okafor");
    let granted = cli.start("finansieringsansokan", &data, "james-okafor");
    fin_to_ks(&cli, &granted, 1_000_000);
    cli.decide(&granted, KOMMUNSTYRELSEN, "bevilja", None, bevilja_form(1_000_000));
    assert_eq!(cli.show(&granted)["state"], "vanta_arsskifte");
    let second = cli.start("finansieringsansokan", &data, "james-okafor");
    assert_ne!(second, granted);
    fin_to_ks(&cli, &second, 600_000);
    let before = cli.show(&second);
    let task = cli.task_of(&second, KOMMUNSTYRELSEN, None, "bevilja");
    let form = bevilja_form(600_000).to_string();
    let said = cli.refused(&["decide", &second, &task, "bevilja", "--as", KOMMUNSTYRELSEN, "--form", &form]);
    assert!(said.contains("ramen för innovation 2026 räcker inte: 500000 kr återstår"), "{said}");
    assert_eq!(cli.show(&second), before, "the refused grant leaves the case unchanged");
    let form = json!({ "ks_paragraf": "KS § 13" });
    cli.decide(&second, KOMMUNSTYRELSEN, "avsla", Some("Portföljens ram räcker inte."), form);
    assert_eq!(cli.show(&granted)["state"], "vanta_arsskifte", "the granted one waits for the year's end");
    cli.ended(&second, "avslagen", "rejected")
}

/// A differentiating application whose applicant never corrects it: after 20 working days the
/// timeout withdraws it in the system's name.
fn fin_avskriven() -> String {
    let mut cli = Cli::new("fin avskriven", "2026-03-02T08:00:00Z");
    let data = fin_data("differentierande", "innovation", "", "elin-sandberg");
    let case = cli.start("finansieringsansokan", &data, "elin-sandberg");
    // 20 working days from Monday 2 March 2026 09:00 Stockholm time is Monday 30 March, 09:00
    // summer time (07:00 UTC).
    cli.advance("2026-03-30T09:00:00Z");
    let shown = cli.show(&case);
    let task = shown["tasks"].as_array().unwrap().iter().find(|t| t["state"] == "formell_komplettering").unwrap();
    assert_eq!(task["deadline"], "2026-03-30T07:00:00Z");
    assert_eq!(task["decision"]["by"], "system");
    assert_eq!(task["decision"]["channel"], "timer");
    cli.ended(&case, "aterkallad", "withdrawn")
}

#[test]
fn finansieringsansokan_reaches_every_end_state_through_the_cli() {
    reach_every_end_state("finansieringsansokan", &[fin_ej_berattigad, fin_beviljad, fin_frame, fin_avskriven]);
}

// --- Produktionssättning -------------------------------------------------------------------------

fn prod_data(starkt_beroende: bool, planerat_datum: &str) -> Value {
    json!({
        "system": "Procapita 5.2",
        "beskrivning": "Ny version av verksamhetssystemet.",
        "forvaltning": "sof",
        "bestallare": "kristina-andersson",
        "systemagare": "kristina-andersson",
        "systemforvaltare": "fredrik-olsson",
        "planerat_datum": planerat_datum,
        "starkt_beroende": starkt_beroende,
    })
}

fn start_prod(cli: &mut Cli, starkt_beroende: bool, planerat_datum: &str) -> String {
    cli.start("produktionssattning", &prod_data(starkt_beroende, planerat_datum), "kristina-andersson")
}

fn ata(cli: &Cli, case: &str) {
    cli.decide(case, IT_AVDELNINGEN, "ata", None, json!({ "driftansvar_bedomning": "Ryms i driftmiljön." }));
}

fn verify(cli: &Cli, case: &str, forvaltare: &str) {
    let form = json!({ "teknisk_verifiering": "Inga störningar." });
    cli.decide_in(case, IT_AVDELNINGEN, Some("teknik"), "godkann", None, form);
    let form = json!({ "funktionell_verifiering": "Acceptanstest godkänt." });
    cli.decide_in(case, forvaltare, Some("funktion"), "godkann", None, form);
}

/// The SLA written by the IT department and approved by the system owner; the IT-chef's
/// approval (the other branch) only when `both`.
fn sla(cli: &Cli, case: &str, both: bool) {
    let form = json!({
        "sla_omfattning": "Drift och backup.", "sla_tillganglighet": "99,5 % kontorstid.",
        "sla_ansvar": "IT drift, förvaltningen användarstöd.", "sla_support": "Servicedesk.",
        "sla_pris": "120 000", "sla_referens": "KS 2026/310",
    });
    cli.decide(case, IT_AVDELNINGEN, "for_godkannande", None, form);
    cli.decide_in(case, "kristina-andersson", Some("systemagare"), "godkann", None, json!({}));
    if both {
        cli.decide_in(case, IT_CHEF, Some("systemagare_it"), "godkann", None, json!({}));
    }
}

fn go_live(cli: &Cli, case: &str) {
    let form = json!({ "driftsatt_datum": "2026-05-04", "overenskommelse_referens": "KS 2026/311" });
    cli.decide(case, IT_AVDELNINGEN, "driftsatt", None, form);
}

/// The IT department takes operational responsibility; verification, SLA, continuity plan,
/// go-live, an incomplete handover completed, then acknowledged.
fn prod_genomford() -> String {
    let mut cli = Cli::new("prod genomford", "2026-04-06T08:00:00Z");
    let case = start_prod(&mut cli, true, "2026-05-04");
    ata(&cli, &case);
    verify(&cli, &case, "fredrik-olsson");
    sla(&cli, &case, true);
    let form = json!({
        "kontinuitetsplan_sammanfattning": "Pappersrutiner vid avbrott.", "kontinuitetsplan_referens": "SN 2026/12",
    });
    cli.decide(&case, "kristina-andersson", "faststalld", None, form);
    go_live(&cli, &case);
    cli.decide(&case, "fredrik-olsson", "ofullstandig", Some("Behörighetslistan saknas."), json!({}));
    let form = json!({ "overlamning_komplettering": "Listan bifogad." });
    cli.decide(&case, "kristina-andersson", "klar", None, form);
    cli.decide(&case, "fredrik-olsson", "kvittera", None, json!({ "overlamning_kvittens": "Allt mottaget." }));
    let shown = cli.show(&case);
    assert_eq!(shown["data"]["driftform"], "it-avdelningen");
    assert_eq!(shown["tasks"].as_array().unwrap().iter().filter(|t| t["state"] == "overlamning").count(), 2);
    cli.ended(&case, "genomford", "completed")
}

/// Summer 2027, the system manager on leave: the IT department declines, proposes a cloud
/// service, the requester objects, an external partner is agreed; the substitute verifies and
/// acknowledges; no continuity plan is needed.
fn prod_avbojd() -> String {
    // fredrik-olsson is away 28 June – 30 July 2027, malin-gustafsson substitutes.
    let mut cli = Cli::new("prod avbojd", "2027-06-29T08:00:00Z");
    let case = start_prod(&mut cli, false, "2027-08-16");
    let form = json!({ "driftansvar_bedomning": "Saknar kompetens." });
    cli.decide(&case, IT_AVDELNINGEN, "avboj", Some("Kräver specialkompetens."), form);
    let forslag = |driftform: &str| {
        let form = json!({
            "driftform": driftform, "driftpartner": "Leverantören AB", "it_delaktighet": "Nätverk och avtal.",
        });
        cli.decide(&case, IT_AVDELNINGEN, "foresla", None, form);
    };
    forslag("molntjanst");
    cli.decide(&case, "kristina-andersson", "invand", Some("Personuppgifter i molnet."), json!({}));
    forslag("extern_partner");
    cli.decide(&case, "kristina-andersson", "instam", None, json!({}));
    verify(&cli, &case, "malin-gustafsson");
    sla(&cli, &case, true);
    go_live(&cli, &case);
    cli.decide(&case, "malin-gustafsson", "kvittera", None, json!({ "overlamning_kvittens": "Mottaget." }));
    let shown = cli.show(&case);
    assert_eq!(shown["data"]["driftform"], "extern_partner");
    let tasks = shown["tasks"].as_array().unwrap();
    assert!(tasks.iter().all(|t| t["state"] != "kontinuitetsplan"), "no continuity plan without a strong dependency");
    for state in ["verifiering", "overlamning"] {
        let task = tasks.iter().find(|t| t["state"] == state && t["decision"]["by"] == "malin-gustafsson").unwrap();
        assert_eq!(task["decision"]["on_behalf_of"], "fredrik-olsson", "{state}");
    }
    cli.ended(&case, "genomford", "completed")
}

/// Verification fails and the requester cancels; and a request sent back for completion that the
/// requester cancels instead.
fn prod_avbruten() -> String {
    let mut cli = Cli::new("prod avbruten", "2026-04-06T08:00:00Z");
    let failed = start_prod(&mut cli, false, "2026-05-04");
    ata(&cli, &failed);
    let form = json!({ "funktionell_verifiering": "Test 14 fallerar." });
    cli.decide(&failed, "fredrik-olsson", "underkann", Some("Utskrifter fungerar inte."), form);
    cli.decide(&failed, "kristina-andersson", "avbryt", Some("Leverantören hinner inte rätta."), json!({}));
    let shown = cli.show(&failed);
    let teknik = shown["tasks"].as_array().unwrap().iter().find(|t| t["branch"] == "teknik").unwrap();
    assert_eq!(teknik["closed"]["reason"], "cancelled", "the veto closes the other branch");
    cli.ended(&failed, "avbruten", "cancelled");

    let cancelled = start_prod(&mut cli, false, "2026-05-04");
    cli.decide(&cancelled, IT_AVDELNINGEN, "komplettering", Some("Ange integrationerna."), json!({}));
    cli.decide(&cancelled, "kristina-andersson", "avbryt", Some("Projektet läggs ned."), json!({}));
    cli.ended(&cancelled, "avbruten", "cancelled")
}

/// The requester withdraws during the SLA approval; the open branch is closed.
fn prod_aterkallad() -> String {
    let mut cli = Cli::new("prod aterkallad", "2026-04-06T08:00:00Z");
    let case = start_prod(&mut cli, false, "2026-05-04");
    ata(&cli, &case);
    verify(&cli, &case, "fredrik-olsson");
    sla(&cli, &case, false);
    cli.withdraw(&case, "kristina-andersson");
    let shown = cli.show(&case);
    let open_branch = shown["tasks"].as_array().unwrap().iter().find(|t| t["branch"] == "systemagare_it").unwrap();
    assert_eq!(open_branch["closed"]["reason"], "cancelled");
    cli.ended(&case, "aterkallad", "withdrawn")
}

#[test]
fn produktionssattning_reaches_every_end_state_through_the_cli() {
    reach_every_end_state("produktionssattning", &[prod_genomford, prod_avbojd, prod_avbruten, prod_aterkallad]);
}

// --- Timers that run late ------------------------------------------------------------------------
