//! The signed-in pages over HTTP on loopback and in a real browser: signing in with a link from a
//! real email, who sees which case, the form token and the once-only rule on decisions from the
//! task list, the start form's errors, and a newcomer doing it all in Chromium with axe-core
//! checking every page (WCAG 2.1 AA) and screenshots at desktop and phone width.

use crate::browser::{Chromedriver, SIZES, screenshots, viewport};
use crate::harness::{Running, application, start, tomas};
use beslut_engine::runtime::Channel;
use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::json;
use std::time::{Duration, Instant};

const SOFIA: &str = "sofia.berg@exempelkommun.se";
const AHMED: &str = "ahmed.yusuf@exempelkommun.se";
const HELENA: &str = "helena.sjoberg@exempelkommun.se";
/// Holds `it-chef`, the harness's viewing role.
const PETER: &str = "peter.wallin@exempelkommun.se";

/// An HTTP client that follows no redirects and carries one session cookie.
struct Browser {
    base: String,
    http: reqwest::Client,
    cookie: Option<String>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    set_cookie: Option<String>,
    body: String,
}

impl Browser {
    fn new(running: &Running) -> Browser {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { base: running.base.clone(), http, cookie: None }
    }

    async fn read(response: reqwest::Response) -> Page {
        let header = |name| {
            response.headers().get(name).and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok()).map(String::from)
        };
        let (location, set_cookie) = (header(LOCATION), header(SET_COOKIE));
        Page { status: response.status(), location, set_cookie, body: response.text().await.unwrap() }
    }

    async fn get(&self, path: &str) -> Page {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            request = request.header("cookie", c);
        }
        Browser::read(request.send().await.unwrap()).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut request = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(c) = &self.cookie {
            request = request.header("cookie", c);
        }
        Browser::read(request.send().await.unwrap()).await
    }
}

/// A funding application started by Tomas; its first task is Sofia's group's.
async fn application_case(running: &Running) -> beslut_engine::runtime::Case {
    running
        .engine
        .start("finansieringsansokan", application(), tomas(&running.engine), Channel::Api, None)
        .await
        .unwrap()
}

/// The value of the hidden input `name` in the page's main content.
fn hidden(html: &str, name: &str) -> String {
    let main = &html[html.find("<main").unwrap_or(0)..];
    let marker = format!("name=\"{name}\" value=\"");
    let start = main.find(&marker).unwrap_or_else(|| panic!("no {name} in {main}")) + marker.len();
    main[start..].split('"').next().unwrap().to_string()
}

/// The sign-in link in the newest sign-in email to `to`.
async fn sign_in_link(running: &Running, to: &str, seen: usize) -> String {
    for _ in 0..100 {
        let mails: Vec<String> = running
            .smtp
            .messages()
            .into_iter()
            .filter(|m| m.contains(&format!("To: {to}")) && m.contains("/logga-in/"))
            .collect();
        if mails.len() > seen {
            let text = crate::mail::decoded(mails.last().unwrap());
            let start = text.find("http").unwrap();
            let link: String = text[start..].chars().take_while(|c| !c.is_whitespace()).collect();
            assert!(link.contains("/logga-in/"), "{link}");
            return link;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no sign-in email to {to}");
}

fn sign_in_mails(running: &Running, to: &str) -> usize {
    running.smtp.messages().iter().filter(|m| m.contains(&format!("To: {to}")) && m.contains("/logga-in/")).count()
}

/// Signs `email` in the way a person does, and keeps the session cookie.
async fn signed_in(running: &Running, email: &str) -> Browser {
    let mut browser = Browser::new(running);
    let seen = sign_in_mails(running, email);
    let form = browser.get("/logga-in").await;
    let (csrf, issued) = (hidden(&form.body, "csrf"), hidden(&form.body, "issued"));
    let sent = browser
        .post("/logga-in", &[("csrf", &csrf), ("issued", &issued), ("nasta", "/uppgifter"), ("email", email)])
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let link = sign_in_link(running, email, seen).await;
    let path = link.strip_prefix(&running.base).unwrap().to_string();
    let page = browser.get(&path).await;
    let done =
        browser.post(&path, &[("csrf", &hidden(&page.body, "csrf")), ("issued", &hidden(&page.body, "issued"))]).await;
    let cookie = done.set_cookie.expect("signing in sets the session cookie");
    browser.cookie = Some(cookie.split(';').next().unwrap().to_string());
    browser
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_in_takes_a_link_from_email_and_a_button_and_the_link_works_once() {
    let running = start().await;
    let browser = Browser::new(&running);

    let away = browser.get("/uppgifter").await;
    assert_eq!(away.status, StatusCode::SEE_OTHER);
    assert_eq!(away.location.as_deref(), Some("/logga-in?nasta=/uppgifter"));

    let form = browser.get("/logga-in?nasta=/arenden").await;
    let (csrf, issued) = (hidden(&form.body, "csrf"), hidden(&form.body, "issued"));
    let foreign = browser
        .post("/logga-in", &[("csrf", &csrf), ("issued", &issued), ("nasta", "/arenden"), ("email", "x@annan.se")])
        .await;
    assert_eq!(foreign.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(foreign.body.contains("@exempelkommun.se"), "the error names the allowed domain: {}", foreign.body);
    assert!(foreign.body.contains("value=\"x@annan.se\""), "the address is kept");
    let forged =
        browser.post("/logga-in", &[("csrf", "x"), ("issued", &issued), ("nasta", "/arenden"), ("email", SOFIA)]).await;
    assert_eq!(forged.status, StatusCode::UNPROCESSABLE_ENTITY, "no form token, no email");

    let sent = browser
        .post("/logga-in", &[("csrf", &csrf), ("issued", &issued), ("nasta", "/arenden"), ("email", SOFIA)])
        .await;
    assert_eq!(sent.status, StatusCode::OK);
    assert!(sent.body.contains("Kolla din e-post"));
    let link = sign_in_link(&running, SOFIA, 0).await;
    assert_eq!(sign_in_mails(&running, SOFIA), 1, "one email for one request, none for the forged one");
    let path = link.strip_prefix(&running.base).unwrap().to_string();

    // Opening the link (as a link scanner does) signs nobody in.
    let shown = browser.get(&path).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.set_cookie.is_none());
    assert!(shown.body.contains(SOFIA));
    let no_token = browser.post(&path, &[("csrf", "fel"), ("issued", &hidden(&shown.body, "issued"))]).await;
    assert!(no_token.set_cookie.is_none(), "a POST without the page's token signs nobody in");

    let form = [("csrf", hidden(&shown.body, "csrf")), ("issued", hidden(&shown.body, "issued"))];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = browser.post(&path, &form).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location.as_deref(), Some("/arenden"), "back to where the person was going");
    let cookie = done.set_cookie.unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    let again = browser.post(&path, &form).await;
    assert_eq!(again.status, StatusCode::GONE, "a sign-in link works once");
    assert!(again.set_cookie.is_none());

    let mut sofia = Browser::new(&running);
    sofia.cookie = Some(cookie.split(';').next().unwrap().to_string());
    let tasks = sofia.get("/uppgifter").await;
    assert_eq!(tasks.status, StatusCode::OK);
    assert!(tasks.body.contains("<h1>Mina uppgifter</h1>") && tasks.body.contains("Sofia Berg"));
    // The sign-out form is in the page's header, outside <main>.
    let csrf = hidden(&tasks.body.replace("<main", "<div"), "csrf");
    assert_eq!(sofia.post("/logga-ut", &[("csrf", "fel")]).await.location.as_deref(), Some("/uppgifter"));
    assert_eq!(sofia.get("/uppgifter").await.status, StatusCode::OK, "a forged sign-out does nothing");
    let out = sofia.post("/logga-ut", &[("csrf", &csrf)]).await;
    assert!(out.set_cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(sofia.get("/uppgifter").await.status, StatusCode::SEE_OTHER, "the session has ended");
}

#[tokio::test(flavor = "multi_thread")]
async fn people_see_only_their_own_cases_unless_they_hold_a_viewing_role() {
    let running = start().await;
    let case = application_case(&running).await;
    let page = format!("/arenden/{}", case.id);
    for (who, sees) in [(SOFIA, true), (PETER, true), (HELENA, false)] {
        let browser = signed_in(&running, who).await;
        let shown = browser.get(&page).await;
        let listed = browser.get("/arenden").await;
        assert_eq!(shown.status == StatusCode::OK, sees, "{who} on the case page: {}", shown.status);
        assert_eq!(listed.body.contains(&case.number), sees, "{who} in the case list");
        let graph = browser.get(&format!("{page}/graf.svg")).await;
        assert_eq!(graph.status == StatusCode::OK, sees, "{who} on the graph");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decision_from_the_task_list_needs_the_form_token_and_counts_once() {
    let running = start().await;
    let case = application_case(&running).await;
    let task = case.tasks[0].id.clone();
    let sofia = signed_in(&running, SOFIA).await;
    let tasks = sofia.get("/uppgifter").await;
    let confirm = format!("/uppgifter/{}/{task}/komplettering", case.id);
    assert!(tasks.body.contains(&case.number) && tasks.body.contains(&confirm), "{}", tasks.body);

    let page = sofia.get(&confirm).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Bekräfta ditt beslut"));
    let before = running.engine.case(&case.id).await.unwrap().version;
    let once = hidden(&page.body, "once");
    let forged = sofia.post(&confirm, &[("csrf", "fel"), ("once", &once), ("comment", "Ange kostnaden")]).await;
    assert_eq!(forged.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(running.engine.case(&case.id).await.unwrap().version, before, "nothing decided without the token");

    let csrf = hidden(&page.body, "csrf");
    let missing = sofia.post(&confirm, &[("csrf", &csrf), ("once", &once), ("comment", "")]).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(missing.body.contains("id=\"e-comment\""), "the error sits at the comment");

    let form = [("csrf", csrf.as_str()), ("once", once.as_str()), ("comment", "Ange kostnaden per år, tack.")];
    let first = sofia.post(&confirm, &form).await;
    let second = sofia.post(&confirm, &form).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert_eq!(first.location, Some(format!("/arenden/{}?beslutat={task}", case.id)));
    assert!(second.status == StatusCode::SEE_OTHER || second.status == StatusCode::OK, "{}", second.body);
    let stored = running.engine.case(&case.id).await.unwrap();
    let decided: Vec<_> = stored.tasks.iter().filter_map(|t| t.decision.as_ref()).collect();
    assert_eq!(decided.len(), 1, "a double click decides once");
    assert_eq!((decided[0].by.as_str(), decided[0].channel), ("sofia-berg", Channel::Web));
    let shown = sofia.get(&format!("/arenden/{}?beslutat={task}", case.id)).await;
    assert!(
        shown.body.contains("Tack, ditt beslut är registrerat.") && shown.body.contains("Ange kostnaden per år, tack.")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_start_form_keeps_values_escapes_them_and_shows_errors_at_each_field() {
    let running = start().await;
    let sofia = signed_in(&running, SOFIA).await;
    let form = sofia.get("/starta/andring-av-it").await;
    assert!(form.body.contains(r#"<option value="sofia-berg" selected>"#), "the proposer is the person signed in");
    let (csrf, once) = (hidden(&form.body, "csrf"), hidden(&form.body, "once"));
    let title = "<script>alert(1)</script> Ny e-tjänst";
    let wrong = sofia
        .post(
            "/starta/andring-av-it",
            &[("csrf", &csrf), ("once", &once), ("f_rubrik", title), ("f_kostnad", "mycket")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!wrong.body.contains("<script>alert"), "typed text is escaped");
    assert!(wrong.body.contains("&lt;script&gt;alert(1)&lt;/script&gt; Ny e-tjänst"), "and kept");
    for field in ["beskrivning", "kostnad", "forvaltning"] {
        assert!(wrong.body.contains(&format!("id=\"e-{field}\"")), "an error at {field}");
        assert!(wrong.body.contains(&format!("href=\"#f_{field}\"")), "and in the summary");
    }
    assert!(count_cases(&running).await == 0, "no case from a wrong form");

    let once = hidden(&wrong.body, "once");
    let mut fields =
        vec![("csrf", csrf.as_str()), ("once", once.as_str()), ("f_rubrik", title), ("f_forvaltning", "sbf")];
    fields.extend([
        ("f_beskrivning", "Ett ärendesystem för bygglov"),
        ("f_syfte", "Kortare handläggning"),
        ("f_forslagsstallare", "sofia-berg"),
        ("f_kostnad", "150 000"),
        ("f_tidplan", "Hösten 2027"),
        ("f_bruttonytta", "400000"),
        ("f_kostnader", "Licens 50 000 kr/år"),
        ("f_nyttostruktur", "Kortare väntan"),
        ("f_riskanalys", "Låg"),
        ("f_nyttoansvarig", "sofia-berg"),
        ("f_akut", "false"),
    ]);
    let started = sofia.post("/starta/andring-av-it", &fields).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let again = sofia.post("/starta/andring-av-it", &fields).await;
    assert_eq!(again.location, started.location, "a second click starts no second case");
    assert_eq!(count_cases(&running).await, 1);
    let page = sofia.get(started.location.as_deref().unwrap()).await;
    assert!(page.body.contains("Ärendet är startat.") && page.body.contains("150\u{a0}000 kr"), "{}", page.body);
}

async fn count_cases(running: &Running) -> usize {
    beslut_engine::store::cases::ids(&running.engine.store.pool).await.unwrap().len()
}

// ---------------------------------------------------------------------------------------------
// In Chromium

/// Runs axe-core (from npm, tests/browser) in the page; fails on any serious or critical
/// violation of WCAG 2.1 A or AA.
async fn axe(client: &Client, page: &str) {
    let path = crate::root().join("tests/browser/node_modules/axe-core/axe.min.js");
    let script = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{}: {e}; run `npm ci --prefix tests/browser` (scripts/test.sh does)", path.display())
    });
    client.execute(&script, vec![]).await.unwrap();
    let check = r#"const done = arguments[arguments.length - 1];
        axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
          .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')) }))))
          .catch(e => done('axe failed: ' + e));"#;
    let found = client.execute_async(check, vec![]).await.unwrap();
    assert_eq!(found, json!([]), "{page}: accessibility problems (axe-core): {found:#}");
}

/// Waits until the page's heading is `text`.
async fn wait_heading(client: &Client, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let shown = match client.find(Locator::Css("h1")).await {
            Ok(h1) => h1.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if shown.contains(text) {
            return;
        }
        assert!(Instant::now() < deadline, "no heading {text:?}; the page shows: {}", client.source().await.unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn click(client: &Client, css: &str) {
    client.find(Locator::Css(css)).await.unwrap_or_else(|_| panic!("no {css}")).click().await.unwrap();
}

async fn click_link(client: &Client, text: &str) {
    client.find(Locator::LinkText(text)).await.unwrap_or_else(|_| panic!("no link {text}")).click().await.unwrap();
}

async fn type_into(client: &Client, id: &str, text: &str) {
    client.find(Locator::Id(id)).await.unwrap_or_else(|_| panic!("no #{id}")).send_keys(text).await.unwrap();
}

/// Checks a page, then keeps it as screenshots.
async fn look(client: &Client, name: &str) {
    axe(client, name).await;
    screenshots(client, name).await;
}

/// Signs `email` in through the pages, as a person does.
async fn sign_in(client: &Client, running: &Running, email: &str) {
    let seen = sign_in_mails(running, email);
    client.goto(&format!("{}/uppgifter", running.base)).await.unwrap();
    wait_heading(client, "Logga in").await;
    type_into(client, "email", email).await;
    click(client, "main form button[type=submit]").await;
    wait_heading(client, "Kolla din e-post").await;
    let link = sign_in_link(running, email, seen).await;
    client.goto(&link).await.unwrap();
    wait_heading(client, "Logga in").await;
    click(client, "main form button[type=submit]").await;
    wait_heading(client, "Mina uppgifter").await;
}

/// The case's graph as the signed-in browser would load it.
async fn graph(client: &Client, running: &Running, case_id: &str) -> String {
    let cookie = client.get_named_cookie("beslut_session").await.unwrap();
    reqwest::Client::new()
        .get(format!("{}/arenden/{case_id}/graf.svg", running.base))
        .header("cookie", format!("beslut_session={}", cookie.value()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The fill of the state's box in the SVG.
fn fill_of(svg: &str, state: &str) -> String {
    let at = svg.find(&format!("data-state=\"{state}\"")).unwrap_or_else(|| panic!("no {state} in the graph"));
    let rest = &svg[at..];
    let fill = rest.find("fill=\"").unwrap() + 6;
    // The SVG writes colours with their alpha (`#f5a623ff`).
    rest[fill..].split('"').next().unwrap().chars().take(7).collect()
}

async fn newcomer(client: Client, running: &Running) {
    let (_, width, height) = SIZES[0];
    viewport(&client, width, height).await;

    // Sofia proposes a change.
    client.goto(&format!("{}/uppgifter", running.base)).await.unwrap();
    wait_heading(&client, "Logga in").await;
    look(&client, "sign-in").await;
    sign_in(&client, running, SOFIA).await;
    look(&client, "my-tasks-empty").await;
    click_link(&client, "Starta ärende").await;
    wait_heading(&client, "Starta ärende").await;
    look(&client, "start-choose").await;
    click_link(&client, "Ändring av IT").await;
    wait_heading(&client, "Ändring av IT").await;
    look(&client, "start-form").await;
    type_into(&client, "f_rubrik", "Ärendesystem för bygglov").await;
    click(&client, "main form button[type=submit]").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    wait_heading(&client, "Ändring av IT").await;
    client.find(Locator::Css("[role=alert]")).await.expect("the errors are summed up");
    let kept = client.find(Locator::Id("f_rubrik")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(kept.as_deref(), Some("Ärendesystem för bygglov"), "typed values are kept");
    look(&client, "start-form-errors").await;
    for (id, text) in [
        ("f_beskrivning", "Ett ärendesystem som ersätter pappersflödet."),
        ("f_syfte", "Kortare handläggningstid för bygglov."),
        ("f_kostnad", "150 000"),
        ("f_tidplan", "Hösten 2027"),
        ("f_bruttonytta", "400 000"),
        ("f_kostnader", "Licens 50 000 kr per år"),
        ("f_nyttostruktur", "Kortare väntan för sökande."),
        ("f_riskanalys", "Låg risk; beprövad produkt."),
    ] {
        type_into(&client, id, text).await;
    }
    click(&client, "#f_forvaltning option[value=sbf]").await;
    click(&client, "#f_nyttoansvarig option[value=sofia-berg]").await;
    click(&client, "main form button[type=submit]").await;
    wait_heading(&client, "IT 2026/0001").await;
    let source = client.source().await.unwrap();
    assert!(
        source.contains("Ärendet är startat.") && source.contains("Ahmed Yusuf"),
        "the task is with the IT coordinator"
    );
    let loaded = client.execute("return document.querySelector('figure img').naturalWidth", vec![]).await.unwrap();
    assert!(loaded.as_u64().unwrap_or(0) > 0, "the graph is drawn in the page");
    look(&client, "case-started").await;
    let case_id = client.current_url().await.unwrap().path().trim_start_matches("/arenden/").to_string();
    let before = graph(&client, running, &case_id).await;
    assert_eq!(fill_of(&before, "lokal_beredning"), "#f5a623", "the current state is highlighted");
    click(&client, ".top form button").await;
    wait_heading(&client, "Logga in").await;

    // Ahmed, the IT coordinator, decides from his task list.
    sign_in(&client, running, AHMED).await;
    assert!(client.source().await.unwrap().contains("IT 2026/0001"));
    look(&client, "my-tasks").await;
    click_link(&client, "Klassa och gå vidare").await;
    wait_heading(&client, "Bekräfta ditt beslut").await;
    look(&client, "decide-from-list").await;
    click(&client, "#f_klassning option[value=rutin]").await;
    type_into(&client, "f_lokal_bedomning", "Rutinärende: ersätter ett befintligt system.").await;
    click(&client, "main form button[type=submit]").await;
    wait_heading(&client, "IT 2026/0001").await;
    let source = client.source().await.unwrap();
    assert!(source.contains("Tack, ditt beslut är registrerat.") && source.contains("Klassa och gå vidare"));
    look(&client, "case-decided").await;
    let after = graph(&client, running, &case_id).await;
    assert_eq!(fill_of(&after, "lokalt_beslut"), "#f5a623", "the graph moved on");
    assert_eq!(fill_of(&after, "lokal_beredning"), "#dcecfb", "the state passed is marked");
    assert!(after.contains("#1d4ed8"), "the path taken is drawn");

    // The lists and the process pages.
    client.goto(&format!("{}/arenden?forvaltning=sbf", running.base)).await.unwrap();
    wait_heading(&client, "Ärenden").await;
    assert!(client.source().await.unwrap().contains("IT 2026/0001"));
    look(&client, "cases").await;
    client.goto(&format!("{}/processer", running.base)).await.unwrap();
    wait_heading(&client, "Processer").await;
    look(&client, "processes").await;
    click_link(&client, "Ändring av IT").await;
    wait_heading(&client, "Ändring av IT").await;
    look(&client, "process").await;
    click_link(&client, "English").await;
    wait_heading(&client, "Change").await;
    assert!(client.source().await.unwrap().contains("My tasks"), "the pages switch to English");
    look(&client, "process-english").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newcomer_starts_follows_and_decides_a_case_in_chromium() {
    let running = start().await;
    let driver = Chromedriver::start();
    let profile = tempfile::tempdir().unwrap();
    let client = driver.session(profile.path()).await;
    let running = std::sync::Arc::new(running);
    let steps = {
        let (client, running) = (client.clone(), running.clone());
        tokio::spawn(async move { newcomer(client, &running).await }).await
    };
    let _ = client.close().await;
    drop(driver);
    if let Err(failure) = steps {
        std::panic::resume_unwind(failure.into_panic());
    }
    let cases = beslut_engine::store::cases::ids(&running.engine.store.pool).await.unwrap();
    let case = running.engine.case(&cases[0]).await.unwrap();
    let decision = case.tasks[0].decision.as_ref().expect("decided in the browser");
    assert_eq!((decision.by.as_str(), decision.channel), ("ahmed-yusuf", Channel::Web));
    assert_eq!(case.state, "lokalt_beslut");
}

/// Copies the folder `from` into `to`, recursively.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_page_shows_time_per_state_and_what_changed_between_versions() {
    let running = start().await;
    let first = application_case(&running).await;
    // The process owner renames a state; the next case runs on the new version.
    let folder = tempfile::tempdir().unwrap();
    copy_dir(&crate::root().join("workflows"), folder.path());
    let file = folder.path().join("finansieringsansokan.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("Komplettera ansökan"));
    std::fs::write(&file, text.replace("Komplettera ansökan", "Komplettera din ansökan")).unwrap();
    let project = beslut_engine::project::Project::load(folder.path()).unwrap();
    assert_eq!(running.engine.reload(project), Some(Vec::new()), "the edited folder is valid");
    let second = application_case(&running).await;
    assert_ne!(first.definition_hash, second.definition_hash);

    let owner = signed_in(&running, PETER).await;
    let list = owner.get("/processer").await;
    assert!(list.body.contains("/processer/finansieringsansokan") && list.body.contains("Giltig"), "{}", list.body);
    let page = owner.get("/processer/finansieringsansokan").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(&first.definition_hash[..10]) && page.body.contains(&second.definition_hash[..10]),
        "both versions are listed"
    );
    let stays = page.body.split("<tbody>").nth(1).unwrap();
    assert!(stays.contains("<td class=\"num\">2</td>"), "two cases have stayed in the first state: {stays}");
    let diff = owner
        .get(&format!("/processer/finansieringsansokan?fran={}&till={}", first.definition_hash, second.definition_hash))
        .await;
    assert!(diff.body.contains("<del>– ") && diff.body.contains("Komplettera ansökan"), "{}", diff.body);
    assert!(diff.body.contains("<ins>+ ") && diff.body.contains("Komplettera din ansökan"));
    let graph = owner.get("/processer/finansieringsansokan/graf.svg").await;
    assert!(graph.body.contains("median"), "the time per state is drawn");
}
