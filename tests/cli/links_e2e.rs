//! The three seed workflows from start to an end state purely by following the decision links
//! of real task emails: the real server on loopback mails a real SMTP server, and every decision
//! is made as a person makes it, by opening the link in their email and confirming the page.
//! Only starting the case uses the engine directly; reading a case tells the test whose email to
//! expect, never decides anything.
//!
//! The engine runs on the system clock, so the actors are chosen at run time from
//! `directory.yaml`: the first holder of the role, or whoever substitutes for them today.

use crate::harness::{Running, start};
use crate::mail::decoded;
use beslut_engine::diagnostic::Lang;
use beslut_engine::directory::Person;
use beslut_engine::runtime::{Channel, OutcomeId, Status};
use beslut_notifications::links;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// How long a task email may take: the server's workers send mail every 2 seconds.
const MAIL_WAIT: Duration = Duration::from_secs(20);

struct Server {
    running: Running,
    client: reqwest::Client,
    /// The messages whose links were followed; each email is used once.
    used: HashSet<String>,
    /// Every decision made, as (person id, action id).
    decided: Vec<(String, String)>,
}

/// `beslut serve` in-process on an ephemeral port, with its workers, mailing a real SMTP server.
async fn serve() -> Server {
    Server { running: start().await, client: reqwest::Client::new(), used: HashSet::new(), decided: Vec::new() }
}

impl Server {
    /// Who acts today for the person with `id`: them, or their substitute while they are away.
    fn acting(&self, id: &str) -> Person {
        let directory = &self.running.engine.project().directory;
        let person = directory.person(id).unwrap_or_else(|| panic!("{id} is in directory.yaml"));
        let tz = jiff::tz::TimeZone::get("Europe/Stockholm").unwrap();
        directory.acting_for(person, self.running.engine.now().to_zoned(tz).date()).clone()
    }

    /// Who acts today for the first holder (in directory order) of `role`, for `scope` if given.
    fn by_role(&self, role: &str, scope: Option<&str>) -> Person {
        let project = self.running.engine.project();
        let holders = project.directory.holders(role, scope);
        let first = holders.first().unwrap_or_else(|| panic!("nobody holds {role} {scope:?}"));
        self.acting(&first.id)
    }

    async fn start(&self, workflow: &str, data: Value, starter: &str) -> String {
        let project = self.running.engine.project();
        let person = project.directory.person(starter).unwrap();
        let party = beslut_engine::runtime::assign::party(person);
        let data = data.as_object().unwrap().clone();
        self.running.engine.start(workflow, data, party, Channel::Api, None).await.unwrap().id
    }

    /// `who` decides `action` on their open task in the case, from the task email: waits for
    /// the email, opens the action's link, and confirms the page with `form` and `comment`.
    async fn decide(&mut self, case_id: &str, who: &Person, action: &str, form: &[(&str, &str)], comment: &str) {
        // Reading the case only tells whose email to expect, and for which task.
        let case = self.running.engine.case(case_id).await.unwrap();
        let def = self.running.engine.definition_of(&case).await.unwrap();
        let found = case.tasks.iter().filter(|t| t.is_open() && t.assignment_of(&who.id).is_some()).find_map(|t| {
            let state = def.state(&t.state)?;
            let task_def = beslut_engine::runtime::apply::task_def(state, t.branch.as_deref())?;
            task_def.actions.iter().find(|a| a.id == action).map(|a| (t.clone(), a.label.get(who.language).to_string()))
        });
        let Some((task, label)) = found else {
            let open: Vec<String> = case
                .tasks
                .iter()
                .filter(|t| t.is_open())
                .map(|t| {
                    let to: Vec<&str> = t.assignees.iter().map(|a| a.party.email.as_str()).collect();
                    format!("{} {:?} → {to:?}", t.state, t.branch)
                })
                .collect();
            panic!("{} has no open task with {action} in {} {}; open: {open:?}", who.id, case.number, case.state);
        };
        let url = self.link(&who.email, &task.id, action, &label).await;
        let (confirm, thanks) = match who.language {
            Lang::Sv => ("Bekräfta ditt beslut", "Tack, ditt beslut är registrerat"),
            Lang::En => ("Confirm your decision", "Thank you, your decision is recorded"),
        };
        // Opening the link shows the confirmation page and decides nothing.
        let response = self.client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let page = response.text().await.unwrap();
        assert!(page.contains(confirm) && page.contains(&beslut::web::esc(&label)), "{page}");
        assert_eq!(
            self.running.engine.case(case_id).await.unwrap().version,
            case.version,
            "GET changed {}",
            case.number
        );
        // The person fills in the page's form and confirms.
        let mut fields = hidden_fields(&page);
        assert!(fields.contains_key("csrf"), "{page}");
        for (name, value) in form {
            assert!(page.contains(&format!("name=\"{name}\"")), "the page for {action} asks for {name}: {page}");
            fields.insert(name.to_string(), value.to_string());
        }
        if page.contains("name=\"comment\"") {
            fields.insert("comment".into(), comment.into());
        }
        let response = self.client.post(&url).form(&fields).send().await.unwrap();
        let status = response.status();
        let receipt = response.text().await.unwrap();
        assert!(status == 200 && receipt.contains(thanks), "{} {action} on {}: {status} {receipt}", who.id, task.state);
        let after = self.running.engine.case(case_id).await.unwrap();
        let decision = after.task(&task.id).and_then(|t| t.decision.clone()).expect("the task is decided");
        assert_eq!((decision.by.as_str(), decision.action.as_str()), (who.id.as_str(), action));
        assert_eq!(decision.channel, Channel::EmailLink);
        self.decided.push((who.id.clone(), action.to_string()));
    }

    /// The link for `label` in a task email to `to` not used before, whose link is for `task`
    /// and `action`; waits for the email to arrive.
    async fn link(&mut self, to: &str, task: &str, action: &str, label: &str) -> String {
        let started = Instant::now();
        loop {
            for message in self.running.smtp.messages() {
                let id = header(&message, "Message-ID").unwrap_or_default().to_string();
                let addressed = header(&message, "To").is_some_and(|h| h.contains(to));
                if !addressed || self.used.contains(&id) {
                    continue;
                }
                let Some(url) = labelled_link(&decoded(&message), label) else { continue };
                let token = url.rsplit("/d/").next().unwrap_or_default();
                let now = self.running.engine.now().as_second();
                let Ok(claims) = links::verify(&self.running.secret, token, now) else { continue };
                if claims.task == task && claims.action == action && claims.recipient == to {
                    self.used.insert(id);
                    return url;
                }
            }
            if started.elapsed() > MAIL_WAIT {
                let subjects: Vec<String> = self
                    .running
                    .smtp
                    .messages()
                    .iter()
                    .map(|m| format!("{} | {}", header(m, "To").unwrap_or("?"), header(m, "Subject").unwrap_or("?")))
                    .collect();
                panic!("no new email to {to} with a link to {label:?} for {task}; received: {subjects:#?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asserts the case ended in `state` with `outcome`, and that every decision in its audit
    /// trail was made through an email link, by the people who followed the links.
    async fn assert_closed(&self, case_id: &str, state: &str, outcome: OutcomeId) {
        let case = self.running.engine.case(case_id).await.unwrap();
        assert_eq!(case.state, state, "{} ended in the wrong state", case.number);
        match case.status {
            Status::Closed { outcome: o, .. } => assert_eq!(o, outcome, "{}", case.number),
            Status::Open => panic!("{} is still open in {}", case.number, case.state),
        }
        assert!(case.tasks.iter().all(|t| !t.is_open()), "a closed case has no open tasks");
        let audit = beslut_engine::store::audit::entries(&self.running.engine.store.pool, case_id).await.unwrap();
        let decisions: Vec<_> = audit.iter().filter(|e| e.what == "task.decided").collect();
        let made: Vec<(String, String)> = decisions
            .iter()
            .map(|e| (e.actor.clone(), e.detail["action"].as_str().unwrap_or_default().to_string()))
            .collect();
        assert_eq!(made, self.decided, "the audit trail holds exactly the decisions made from the emails");
        for entry in decisions {
            assert_eq!(entry.channel, "email_link", "{entry:?}");
            let project = self.running.engine.project();
            let person = project.directory.person(&entry.actor).unwrap();
            assert_eq!(entry.detail["origin"]["address"], person.email.as_str(), "{entry:?}");
        }
    }
}

/// The value of a message header.
fn header<'m>(message: &'m str, name: &str) -> Option<&'m str> {
    let head = message.split("\r\n\r\n").next().unwrap_or(message);
    head.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':'))).map(str::trim)
}

/// The URL on the text part's line `{label}: {url}` (with "(kommentar krävs)" or "(comment
/// required)" after the label when the action needs a comment).
fn labelled_link(text: &str, label: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (prefix, rest) = line.split_once(": http")?;
        let prefix = prefix.trim_end_matches(" (kommentar krävs)").trim_end_matches(" (comment required)");
        let url = format!("http{}", rest.split_whitespace().next()?);
        (prefix == label && url.contains("/d/")).then_some(url)
    })
}

/// The hidden inputs of the confirmation page's form, by name.
fn hidden_fields(page: &str) -> HashMap<String, String> {
    let attr = |input: &str, name: &str| -> String {
        let start = format!("{name}=\"");
        input.split(&start).nth(1).and_then(|r| r.split('"').next()).unwrap_or_default().to_string()
    };
    page.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|input| input.split('>').next().unwrap_or_default())
        .map(|input| (attr(input, "name"), attr(input, "value")))
        .collect()
}

/// Finansieringsansökan: the portfolio's preparatory group hands its assessment to the
/// development council, which advises the executive board; the board rejects.
#[tokio::test(flavor = "multi_thread")]
async fn finansieringsansokan_is_rejected_by_the_board_from_emails() {
    let mut s = serve().await;
    let data = json!({
        "rubrik": "Chattbot för bygglovsfrågor", "projektagare": "tomas-lindberg", "forvaltning": "sbf",
        "malbidrag": "Bättre service till medborgarna.", "portfolj": "tillganglighet", "belopp": 1200000,
        "budgetar": 2026, "kategori": "differentierande", "genomforandeplan": "Pilot under våren.",
        "nyttorealisering": "Färre telefonsamtal.", "systemagare": "Samhällsbyggnadsnämnden",
        "systemagare_accepterat": true, "avvecklings_eller_integrationsplan": "", "lopttid_manader": 6,
    });
    let case = s.start("finansieringsansokan", data, "tomas-lindberg").await;
    let group = s.by_role("beredning-tillganglighet", None);
    let assess = [
        ("f_angelagenhet", "hog"),
        ("f_beredning_bedomning", "Angeläget för medborgarservicen."),
        ("f_foreslaget_belopp", "1 000 000"),
    ];
    s.decide(&case, &group, "overlamna", &assess, "Beredd i gruppen.").await;
    let council = s.by_role("utvecklingsrad", None);
    let advice = [("f_utvecklingsradets_rad", "Bevilja med sänkt belopp."), ("f_rekommenderat_belopp", "1 000 000")];
    s.decide(&case, &council, "lamna_rad", &advice, "").await;
    let board = s.by_role("kommunstyrelsen", None);
    s.decide(&case, &board, "avsla", &[("f_ks_paragraf", "KS § 13, dnr KS 2026/102")], "Ryms inte i år.").await;
    s.assert_closed(&case, "avslagen", OutcomeId::Rejected).await;
}

/// Ändring av IT: the IT coordinator sends the proposal back, the proposer completes it, the
/// coordinator classifies it as routine and the head of department rejects it.
#[tokio::test(flavor = "multi_thread")]
async fn andring_av_it_routine_is_rejected_in_the_department_from_emails() {
    let mut s = serve().await;
    let data = json!({
        "rubrik": "Nytt ärendehanteringssystem", "beskrivning": "Ersätter det gamla systemet.",
        "syfte": "Kortare handläggningstider.", "forvaltning": "kf", "forslagsstallare": "james-okafor",
        "kostnad": 450000, "tidplan": "Införande under hösten.", "bruttonytta": 900000,
        "kostnader": "Licenser 120 000 kr per år.", "nyttostruktur": "Handläggare sparar tid.",
        "riskanalys": "Migrering av gamla ärenden.", "nyttoansvarig": "kristina-andersson", "akut": false,
    });
    let case = s.start("andring-av-it", data, "james-okafor").await;
    let coordinator = s.by_role("it-samordnare", Some("kf"));
    s.decide(&case, &coordinator, "komplettering", &[], "Ange antal användare.").await;
    let proposer = s.acting("james-okafor");
    s.decide(&case, &proposer, "skicka_in", &[("f_komplettering", "Cirka 40 användare.")], "").await;
    let classify = [("f_klassning", "rutin"), ("f_lokal_bedomning", "Berett i lokalt IT-forum.")];
    s.decide(&case, &coordinator, "klassa", &classify, "").await;
    let head = s.by_role("forvaltningschef", Some("kf"));
    s.decide(&case, &head, "avsla", &[], "Ryms inte i förvaltningens budget.").await;
    s.assert_closed(&case, "avslagen", OutcomeId::Rejected).await;
}

/// Produktionssättning: the IT department takes operational responsibility, both branches of the
/// parallel verification approve from their own emails, the SLA is drawn up and approved by both
/// parties, the system goes live and the system manager acknowledges the handover.
#[tokio::test(flavor = "multi_thread")]
async fn produktionssattning_goes_live_through_both_verifications_from_emails() {
    let mut s = serve().await;
    let data = json!({
        "system": "Procapita 5.2", "beskrivning": "Ny version av verksamhetssystemet.", "forvaltning": "sof",
        "bestallare": "kristina-andersson", "systemagare": "kristina-andersson",
        "systemforvaltare": "fredrik-olsson", "planerat_datum": "2026-05-04", "starkt_beroende": false,
    });
    let case = s.start("produktionssattning", data, "kristina-andersson").await;
    let it = s.by_role("it-avdelningen", None);
    let manager = s.acting("fredrik-olsson");
    let owner = s.acting("kristina-andersson");
    let head_of_it = s.by_role("it-chef", None);
    s.decide(&case, &it, "ata", &[("f_driftansvar_bedomning", "Ryms i driftmiljön.")], "").await;
    s.decide(&case, &it, "godkann", &[("f_teknisk_verifiering", "Inga störningar.")], "").await;
    s.decide(&case, &manager, "godkann", &[("f_funktionell_verifiering", "Acceptanstest godkänt.")], "").await;
    let sla = [
        ("f_sla_omfattning", "Drift och backup."),
        ("f_sla_tillganglighet", "99,5 % kontorstid."),
        ("f_sla_ansvar", "IT drift, förvaltningen användarstöd."),
        ("f_sla_support", "Servicedesk."),
        ("f_sla_pris", "120 000"),
        ("f_sla_referens", "KS 2026/310"),
    ];
    s.decide(&case, &it, "for_godkannande", &sla, "").await;
    s.decide(&case, &owner, "godkann", &[], "Godkänt för socialnämnden.").await;
    s.decide(&case, &head_of_it, "godkann", &[], "").await;
    let live = [("f_driftsatt_datum", "2026-05-04"), ("f_overenskommelse_referens", "KS 2026/311")];
    s.decide(&case, &it, "driftsatt", &live, "").await;
    s.decide(&case, &manager, "kvittera", &[("f_overlamning_kvittens", "Allt mottaget.")], "").await;
    s.assert_closed(&case, "genomford", OutcomeId::Completed).await;
    let stored = s.running.engine.case(&case).await.unwrap();
    for branch in ["teknik", "funktion"] {
        let task = stored.tasks.iter().find(|t| t.state == "verifiering" && t.branch.as_deref() == Some(branch));
        let vote = task.and_then(|t| t.decision.as_ref()).and_then(|d| d.vote);
        assert_eq!(vote, Some(true), "the {branch} branch approved from its own email");
    }
}

#[test]
fn a_labelled_link_is_found_on_its_own_line() {
    let text = "Godkänn SLA: http://h/d/a\nGodkänn: http://h/d/b\nUnderkänn (kommentar krävs): http://h/d/c\n";
    assert_eq!(labelled_link(text, "Godkänn").as_deref(), Some("http://h/d/b"));
    assert_eq!(labelled_link(text, "Underkänn").as_deref(), Some("http://h/d/c"));
    assert_eq!(labelled_link(text, "Avslå"), None);
}
