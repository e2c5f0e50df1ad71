//! Signing in without passwords, sessions, and the language switch.
//!
//! A person enters their work address and gets a one-time link (`/logga-in/{token}`), signed
//! like a decision link and kept only as a hash. GET shows a button, so link scanners sign
//! nobody in; the POST starts a session. The session's token lives in an HttpOnly, SameSite
//! cookie (Secure when the public address is https); the database keeps its hash and a CSRF
//! token that every form of the session carries.
//!
//! The seam for municipal single sign-on (OIDC, SAML): a sign-in method proves an address and
//! calls [`establish`]; everything after that (the `Viewer`, the pages) is the same.

use super::view::{self, Frame, encode, local_path, see_other};
use super::{AppState, tr};
use axum::Router;
use axum::extract::{ConnectInfo, Form, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use beslut_engine::diagnostic::Lang;
use beslut_engine::directory::Person;
use beslut_engine::runtime::{Effect, NoticeKind};
use beslut_engine::store::{mail as mail_store, millis, web as web_store};
use beslut_notifications::links::{self, Claims, LinkError, Purpose};
use serde_json::json;
use sha2::Digest;
use std::collections::HashMap;
use std::net::SocketAddr;

const SESSION_COOKIE: &str = "beslut_session";
const LANG_COOKIE: &str = "beslut_lang";
/// A working day: long enough not to annoy, short enough that a forgotten session ends.
const SESSION_SECONDS: i64 = 12 * 3600;
/// How long a sign-in link works.
const LINK_SECONDS: i64 = 15 * 60;
/// How long the sign-in form may stay open.
const FORM_SECONDS: i64 = 24 * 3600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", axum::routing::get(|| async { see_other("/uppgifter") }))
        .route("/logga-in", axum::routing::get(sign_in_form).post(send_link))
        .route("/logga-in/{token}", axum::routing::get(show_link).post(use_link))
        .route("/logga-ut", axum::routing::post(sign_out))
        .route("/sprak/{lang}", axum::routing::get(switch_language))
}

/// The signed-in person a page is for.
#[derive(Clone, Debug)]
pub struct Viewer {
    /// A person id, or the address of someone not in the directory.
    pub who: String,
    pub email: String,
    pub name: String,
    pub person: Option<Person>,
    pub lang: Lang,
    /// The session's form token.
    pub csrf: String,
    /// Holds a viewing role: sees every case.
    pub sees_all: bool,
}

impl Viewer {
    /// True when the posted form carries this session's token.
    pub fn csrf_ok(&self, form: &HashMap<String, String>) -> bool {
        form.get("csrf").is_some_and(|sent| constant_eq(sent.as_bytes(), self.csrf.as_bytes()))
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The language a page is shown in: the switch's cookie, else the person's, else Swedish.
pub fn language(headers: &HeaderMap, person: Option<&Person>) -> Lang {
    match cookie(headers, LANG_COOKIE) {
        Some("en") => Lang::En,
        Some("sv") => Lang::Sv,
        _ => person.map_or(Lang::Sv, |p| p.language),
    }
}

fn hash(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// The person with this address, if in the directory.
fn person_by_email(state: &AppState, email: &str) -> Option<Person> {
    state.engine.project().directory.people.iter().find(|p| p.email.eq_ignore_ascii_case(email)).cloned()
}

/// The signed-in person, `None` without a live session, or the page to answer when the sessions
/// cannot be read (then nobody can tell whether the cookie is good, so nobody is sent to sign in).
async fn viewer(state: &AppState, headers: &HeaderMap) -> Result<Option<Viewer>, Response> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else { return Ok(None) };
    let now = millis(state.engine.now());
    let found = web_store::session(&state.engine.store.pool, &hash(token), now).await;
    let Some(session) = found.map_err(|e| unreadable(language(headers, None), e))? else { return Ok(None) };
    let person = person_by_email(state, &session.email);
    let sees_all = person.as_ref().is_some_and(|p| p.roles.iter().any(|g| state.web.viewer_roles.contains(&g.role)));
    Ok(Some(Viewer {
        name: person.as_ref().map_or_else(|| session.email.clone(), |p| p.name.clone()),
        lang: language(headers, person.as_ref()),
        who: session.who,
        email: session.email,
        person,
        csrf: session.csrf,
        sees_all,
    }))
}

/// 503 while the database is out of reach, else a logged 500: never a page that shows an
/// empty list as if there were nothing.
pub(crate) fn unreadable(lang: Lang, e: beslut_engine::store::StoreError) -> Response {
    let e = beslut_engine::service::Error::from(e);
    if e.is_unavailable() {
        return super::unavailable(lang);
    }
    tracing::error!(error = %e, "sessions or sign-in links cannot be read");
    super::page(
        StatusCode::INTERNAL_SERVER_ERROR,
        lang,
        tr(lang, "Något gick fel", "Something went wrong"),
        "<h1>Något gick fel</h1>",
    )
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    /// Signed in, or sent to the sign-in page and back here afterwards.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Viewer, Response> {
        if let Some(v) = viewer(state, &parts.headers).await? {
            return Ok(v);
        }
        let here = parts.uri.path_and_query().map_or("/uppgifter", |p| p.as_str());
        let back = if parts.method == axum::http::Method::GET { here } else { "/uppgifter" };
        Err(see_other(&format!("/logga-in?nasta={}", encode(back))))
    }
}

/// Starts a session for an address that a sign-in method has proved, and returns the cookie
/// that carries it. Every sign-in method (the email link today, OIDC or SAML later) ends here.
pub async fn establish(state: &AppState, email: &str, method: &str) -> Result<HeaderValue, String> {
    let who = person_by_email(state, email).map_or_else(|| email.to_lowercase(), |p| p.id);
    let token = view::random_hex(32);
    let now = millis(state.engine.now());
    let session = web_store::Session {
        who,
        email: email.to_string(),
        method: method.into(),
        csrf: view::random_hex(32),
        expires_at: now + SESSION_SECONDS * 1000,
    };
    let mut tx = state.engine.store.begin().await.map_err(|e| e.to_string())?;
    web_store::insert_session(&mut tx, &hash(&token), &session, now).await.map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    session_cookie(state, &token, SESSION_SECONDS)
}

fn session_cookie(state: &AppState, token: &str, max_age: i64) -> Result<HeaderValue, String> {
    let secure = if state.base_url.starts_with("https://") { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .map_err(|e| e.to_string())
}

/// Whether `email` may sign in: an address in an allowed domain (by default, the domains of
/// the directory's people).
fn allowed(state: &AppState, email: &str) -> Result<(), Vec<String>> {
    let mut domains = state.web.allowed_domains.clone();
    if domains.is_empty() {
        domains = state
            .engine
            .project()
            .directory
            .people
            .iter()
            .filter_map(|p| p.email.split_once('@'))
            .map(|(_, d)| d.to_lowercase())
            .collect();
        domains.sort();
        domains.dedup();
    }
    let domain = email.rsplit_once('@').map(|(_, d)| d.to_lowercase()).unwrap_or_default();
    if domains.iter().any(|d| d.eq_ignore_ascii_case(&domain)) { Ok(()) } else { Err(domains) }
}

#[derive(serde::Deserialize)]
struct Next {
    nasta: Option<String>,
    utloggad: Option<String>,
}

async fn sign_in_form(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<Next>) -> Response {
    let lang = language(&headers, None);
    let next = local_path(q.nasta.as_deref());
    form_page(&state, lang, &next, "", None, q.utloggad.is_some())
}

fn form_page(
    state: &AppState,
    lang: Lang,
    next: &str,
    email: &str,
    error: Option<String>,
    signed_out: bool,
) -> Response {
    let issued = state.engine.now().as_second();
    let csrf = links::csrf(&state.secret, "sign-in", next, issued);
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let data = json!({ "sent": false, "csrf": csrf, "issued": issued, "next": next, "email": email,
        "error": error, "signed_out": signed_out });
    let path = format!("/logga-in?nasta={}", encode(next));
    let frame = Frame { lang, path: &path, viewer: None };
    view::render(status, &frame, tr(lang, "Logga in", "Sign in"), "sign_in", data)
}

async fn send_link(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let lang = language(&headers, None);
    let get = |k: &str| form.get(k).map(|v| v.trim()).unwrap_or_default();
    let next = local_path(Some(get("nasta")));
    let email = get("email").to_string();
    let now = state.engine.now().as_second();
    let issued = get("issued").parse().unwrap_or(0);
    if !links::verify_csrf(&state.secret, get("csrf"), "sign-in", &next, issued, now, FORM_SECONDS) {
        let message = tr(lang, "Sidan var för gammal. Försök igen.", "The page was too old. Try again.");
        return form_page(&state, lang, &next, &email, Some(message.into()), false);
    }
    let well_formed = email
        .split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !email.contains(char::is_whitespace));
    if !well_formed {
        let message = tr(
            lang,
            "Skriv en hel e-postadress, t.ex. anna.berg@kommun.se.",
            "Enter a whole email address, e.g. anna.berg@kommun.se.",
        );
        return form_page(&state, lang, &next, &email, Some(message.into()), false);
    }
    if let Err(domains) = allowed(&state, &email) {
        let list = domains.iter().map(|d| format!("@{d}")).collect::<Vec<_>>().join(", ");
        let message = format!("{} {list}.", tr(lang, "Bara adresser som slutar på", "Only addresses ending in"));
        return form_page(&state, lang, &next, &email, Some(message), false);
    }
    // Counted per client and per address, so that nobody's mailbox can be flooded.
    let key = format!("{}|{}", addr.ip(), email.to_lowercase());
    if !state.limiter.fail(&key, now) {
        let message = tr(lang, "För många försök. Vänta en minut.", "Too many attempts. Wait a minute.");
        return form_page(&state, lang, &next, &email, Some(message.into()), false);
    }
    match queue_link(&state, &email, &next).await {
        Ok(()) => {
            let frame = Frame { lang, path: "/logga-in", viewer: None };
            let data = json!({ "sent": true, "email": email });
            view::render(StatusCode::OK, &frame, tr(lang, "Kolla din e-post", "Check your email"), "sign_in", data)
        }
        Err(e) => {
            tracing::error!(error = %e, "a sign-in link could not be queued");
            let message =
                tr(lang, "Något gick fel. Försök igen om en stund.", "Something went wrong. Try again shortly.");
            form_page(&state, lang, &next, &email, Some(message.into()), false)
        }
    }
}

/// Mints a sign-in link and queues its email in one transaction: the email goes out through
/// the outbox like every other, with retries.
async fn queue_link(state: &AppState, email: &str, next: &str) -> Result<(), String> {
    let now = state.engine.now().as_second();
    let claims = Claims {
        purpose: Purpose::SignIn,
        case: String::new(),
        task: String::new(),
        recipient: email.to_string(),
        action: next.to_string(),
        expires: now + LINK_SECONDS,
        nonce: links::nonce(),
    };
    let token = links::sign(&state.secret, &claims);
    let person = person_by_email(state, email);
    let lang = person.as_ref().map_or(Lang::Sv, |p| p.language);
    let url = format!("{}/logga-in/{token}", state.base_url);
    let (subject, text) = sign_in_mail(lang, &url);
    let stored = mail_store::StoredLink {
        purpose: "sign_in".into(),
        case_id: String::new(),
        task_id: String::new(),
        recipient: email.to_string(),
        action: next.to_string(),
        expires_at: claims.expires * 1000,
        used_at: None,
    };
    let host =
        state.base_url.split("://").nth(1).unwrap_or("localhost").split([':', '/']).next().unwrap_or("localhost");
    let mail = mail_store::LoggedMail {
        outbox_id: 0,
        case_id: String::new(),
        message_id: format!("<inloggning-{}@{host}>", claims.nonce),
        recipient: email.to_string(),
        subject,
        text,
        html: None,
        links: json!([{ "label": tr(lang, "Logga in", "Sign in"), "url": url }]).to_string(),
        sent_at: None,
    };
    let party = state.engine.party(email).ok_or("not an address")?;
    let effect = Effect::Notify { kind: NoticeKind::Custom, template: "inloggning".into(), to: party, task: None };
    let ms = millis(state.engine.now());
    let mut tx = state.engine.store.begin().await.map_err(|e| e.to_string())?;
    let outbox = web_store::queue_prepared(&mut tx, &effect, &mail, ms).await.map_err(|e| e.to_string())?;
    mail_store::insert_link(&mut tx, &links::token_hash(&token), &stored, ms, Some(outbox))
        .await
        .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())
}

fn sign_in_mail(lang: Lang, url: &str) -> (String, String) {
    let subject = tr(lang, "Din inloggningslänk till Beslut", "Your sign-in link to Beslut").to_string();
    let text = format!(
        "{}\n\n{}: {url}\n\n{}\n",
        tr(
            lang,
            "Hej! Någon (förhoppningsvis du) bad om att få logga in i Beslut.",
            "Hello! Someone (hopefully you) asked to sign in to Beslut."
        ),
        tr(lang, "Logga in", "Sign in"),
        tr(
            lang,
            "Länken gäller i 15 minuter och kan användas en gång. Bad du inte om den kan du bortse från meddelandet.",
            "The link works for 15 minutes, once. If you did not ask for it, ignore this message."
        ),
    );
    (subject, text)
}

/// A valid, unused sign-in link, or the page saying why not.
async fn check_link(state: &AppState, token: &str, lang: Lang, client: &str) -> Result<Claims, Response> {
    let now = state.engine.now().as_second();
    let frame = Frame { lang, path: "/logga-in", viewer: None };
    let again = Some(("/logga-in", tr(lang, "Begär en ny länk", "Ask for a new link")));
    let invalid = || {
        eprintln!("beslut: ogiltig inloggningslänk från {client}");
        let _ = state.limiter.fail(client, now);
        view::message(
            StatusCode::NOT_FOUND,
            &frame,
            tr(lang, "Länken är inte giltig", "The link is not valid"),
            tr(lang, "Kontrollera att hela länken kom med.", "Check that the whole link came through."),
            again,
        )
    };
    if state.limiter.blocked(client, now) {
        return Err(view::message(
            StatusCode::TOO_MANY_REQUESTS,
            &frame,
            tr(lang, "För många försök", "Too many attempts"),
            tr(lang, "Vänta en minut och försök igen.", "Wait a minute and try again."),
            None,
        ));
    }
    let claims = match links::verify(&state.secret, token, now) {
        Ok(c) if c.purpose == Purpose::SignIn => c,
        Err(LinkError::Expired(c)) if c.purpose == Purpose::SignIn => {
            return Err(view::message(
                StatusCode::GONE,
                &frame,
                tr(lang, "Länken har gått ut", "The link has expired"),
                tr(lang, "Inloggningslänkar gäller i 15 minuter.", "Sign-in links work for 15 minutes."),
                again,
            ));
        }
        _ => return Err(invalid()),
    };
    match mail_store::link(&state.engine.store.pool, &links::token_hash(token)).await {
        Ok(Some(stored)) if stored.used_at.is_none() => Ok(claims),
        Ok(Some(_)) => Err(view::message(
            StatusCode::GONE,
            &frame,
            tr(lang, "Länken är redan använd", "The link has been used"),
            tr(lang, "Varje inloggningslänk fungerar en gång.", "Each sign-in link works once."),
            again,
        )),
        Ok(None) => Err(invalid()),
        Err(e) => Err(unreadable(lang, e)),
    }
}

async fn show_link(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let lang = language(&headers, None);
    let claims = match check_link(&state, &token, lang, &addr.ip().to_string()).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let lang = language(&headers, person_by_email(&state, &claims.recipient).as_ref());
    let issued = state.engine.now().as_second();
    let csrf = links::csrf(&state.secret, &links::token_hash(&token), "sign-in", issued);
    let data = json!({ "email": claims.recipient, "token": token, "csrf": csrf, "issued": issued });
    let frame = Frame { lang, path: "/logga-in", viewer: None };
    view::render(StatusCode::OK, &frame, tr(lang, "Logga in", "Sign in"), "sign_in_link", data)
}

async fn use_link(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let lang = language(&headers, None);
    let claims = match check_link(&state, &token, lang, &addr.ip().to_string()).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let now = state.engine.now().as_second();
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let issued = get("issued").parse().unwrap_or(0);
    let hash = links::token_hash(&token);
    if !links::verify_csrf(&state.secret, get("csrf"), &hash, "sign-in", issued, now, LINK_SECONDS) {
        return see_other(&format!("/logga-in/{token}"));
    }
    // Marking the link used and starting the session are one step for the person: a second
    // click finds the link used.
    let first = async {
        let mut tx = state.engine.store.begin().await.map_err(|e| e.to_string())?;
        let first =
            mail_store::use_link(&mut tx, &hash, millis(state.engine.now())).await.map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok::<bool, String>(first)
    };
    let frame = Frame { lang, path: "/logga-in", viewer: None };
    match first.await {
        Ok(true) => {}
        Ok(false) => {
            return view::message(
                StatusCode::GONE,
                &frame,
                tr(lang, "Länken är redan använd", "The link has been used"),
                tr(lang, "Varje inloggningslänk fungerar en gång.", "Each sign-in link works once."),
                Some(("/logga-in", tr(lang, "Begär en ny länk", "Ask for a new link"))),
            );
        }
        Err(e) => return broken(&frame, &e),
    }
    match establish(&state, &claims.recipient, "email-link").await {
        Ok(cookie) => {
            let mut response = see_other(&local_path(Some(&claims.action)));
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
        }
        Err(e) => broken(&frame, &e),
    }
}

fn broken(frame: &Frame, why: &str) -> Response {
    tracing::error!(error = %why, "sign-in failed");
    let lang = frame.lang;
    view::message(
        StatusCode::INTERNAL_SERVER_ERROR,
        frame,
        tr(lang, "Något gick fel", "Something went wrong"),
        tr(lang, "Försök igen om en stund.", "Try again shortly."),
        None,
    )
}

async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let viewer = match viewer(&state, &headers).await {
        Ok(Some(viewer)) => viewer,
        Ok(None) => return see_other("/logga-in"),
        Err(page) => return page,
    };
    if !viewer.csrf_ok(&form) {
        return see_other("/uppgifter");
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let now = millis(state.engine.now());
        if let Ok(mut tx) = state.engine.store.begin().await
            && web_store::end_session(&mut tx, &hash(token), now).await.is_ok()
        {
            let _ = tx.commit().await;
        }
    }
    let mut response = see_other("/logga-in?utloggad=1");
    if let Ok(cookie) = session_cookie(&state, "", 0) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(serde::Deserialize)]
struct Back {
    tillbaka: Option<String>,
}

/// `/sprak/en?tillbaka=/arenden`: remembers the choice in a cookie and goes back. Only a
/// preference changes, so a link (GET) is enough.
async fn switch_language(Path(lang): Path<String>, Query(q): Query<Back>) -> Response {
    let code = if lang == "en" { "en" } else { "sv" };
    let mut response = see_other(&local_path(q.tillbaka.as_deref()));
    if let Ok(value) = HeaderValue::from_str(&format!("{LANG_COOKIE}={code}; Path=/; SameSite=Lax; Max-Age=31536000")) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response.into_response()
}
