//! Decision links, `/d/{token}`.
//!
//! Link scanners (Safe Links, Mimecast, Proofpoint) open every link in an email, and some submit
//! forms with JavaScript. So GET never changes anything: it shows the case, the action, a comment
//! field and the action's form, and a button. Only a POST carrying the page's own form token
//! decides, and the decision records the address the link was sent to, the client's address and
//! agent, and the hash of the text the person was shown.

use super::{AppState, esc, page, tr};
use axum::Router;
use axum::extract::{ConnectInfo, Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use beslut_engine::definition::model::{Action, CommentRule, Definition, Field, FieldType, ValuesFrom};
use beslut_engine::diagnostic::Lang;
use beslut_engine::runtime::{self, Case, Channel, Command, Task};
use beslut_engine::service::Error;
use beslut_engine::store::mail as mail_store;
use beslut_notifications::links::{self, Claims, LinkError};
use serde_json::{Map, Value};
use sha2::Digest;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// How long a confirmation page may be left open before its form token expires.
const PAGE_SECONDS: i64 = 24 * 3600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/d/{token}", axum::routing::get(show).post(decide))
        .route("/d/{token}/ny-lank", axum::routing::post(renew))
}

/// A valid link, and what it is about.
struct Found {
    claims: Claims,
    hash: String,
    case: Case,
    def: Arc<Definition>,
    task: Task,
    lang: Lang,
}

/// Why a link shows something other than the confirmation page.
enum Refusal {
    /// Forged, altered, truncated, or never issued: nothing is revealed.
    Invalid,
    TooMany,
    Expired(Box<Claims>),
    AlreadyDecided {
        by: String,
        at: String,
        action: String,
        lang: Lang,
    },
    Closed(Lang),
    NotYours(Lang),
    /// The database is out of reach for a moment: nothing is known or decided yet.
    Unavailable(Lang),
    Broken,
}

fn lang_of(state: &AppState, email: &str) -> Lang {
    state
        .engine
        .project()
        .directory
        .people
        .iter()
        .find(|p| p.email.eq_ignore_ascii_case(email))
        .map_or(Lang::Sv, |p| p.language)
}

async fn find(state: &AppState, token: &str, client: &str) -> Result<Found, Refusal> {
    let now = state.engine.now().as_second();
    if state.limiter.blocked(client, now) {
        return Err(Refusal::TooMany);
    }
    let claims = match links::verify(&state.secret, token, now) {
        Ok(claims) => claims,
        Err(LinkError::Expired(claims)) => return Err(Refusal::Expired(claims)),
        Err(LinkError::Invalid) => return Err(invalid(state, client, now)),
    };
    let hash = links::token_hash(token);
    let stored = mail_store::link(&state.engine.store.pool, &hash).await;
    let failed = |e: Error| failure(state, &claims, &e);
    let Some(_stored) = stored.map_err(|e| failed(e.into()))? else {
        return Err(invalid(state, client, now));
    };
    let case = state.engine.case(&claims.case).await.map_err(failed)?;
    let def = state.engine.definition_of(&case).await.map_err(failed)?;
    let task = case.task(&claims.task).cloned().ok_or(Refusal::Broken)?;
    let lang = lang_of(state, &claims.recipient);
    if let Some(d) = &task.decision {
        let at = crate::mail::swedish_time(d.at, lang);
        return Err(Refusal::AlreadyDecided { by: d.by_name.clone(), at, action: d.action_label.clone(), lang });
    }
    if !task.is_open() {
        return Err(Refusal::Closed(lang));
    }
    if task.assignment_of(&claims.recipient).is_none() {
        return Err(Refusal::NotYours(lang));
    }
    Ok(Found { claims, hash, case, def, task, lang })
}

/// What a failed read means for the person: wait a moment when the database is out of reach,
/// else something is broken. Never "invalid": a good link must not count as a guess.
fn failure(state: &AppState, claims: &Claims, e: &Error) -> Refusal {
    if e.is_unavailable() { Refusal::Unavailable(lang_of(state, &claims.recipient)) } else { Refusal::Broken }
}

fn invalid(state: &AppState, client: &str, now: i64) -> Refusal {
    // Logged without the token: the attempt, not the secret, is of interest.
    eprintln!("beslut: ogiltig beslutslänk från {client}");
    if state.limiter.fail(client, now) { Refusal::Invalid } else { Refusal::TooMany }
}

fn client(addr: &SocketAddr) -> String {
    addr.ip().to_string()
}

async fn show(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
) -> Response {
    match find(&state, &token, &client(&addr)).await {
        Ok(found) if found.claims.action == crate::mail::DELEGATE => handover(&state, &found, &token, "", &[]),
        Ok(found) => confirmation(&state, &found, &token, &Map::new(), "", &[]),
        Err(refusal) => refused(&token, refusal),
    }
}

/// The hidden fields that tie a form to this page: the hash of the text shown, when the page
/// was made, and the HMAC over both and the link.
fn form_token(state: &AppState, found: &Found, text: &str) -> String {
    let shown = hex::encode(sha2::Sha256::digest(text.as_bytes()));
    let issued = state.engine.now().as_second();
    let csrf = links::csrf(&state.secret, &found.hash, &shown, issued);
    format!(
        r#"<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="issued" value="{issued}">
<input type="hidden" name="shown" value="{shown}">"#
    )
}

/// The page for handing a task to a colleague: who, and why.
fn handover(state: &AppState, found: &Found, token: &str, comment: &str, errors: &[(String, String)]) -> Response {
    let lang = found.lang;
    let text = format!(
        "{}\n{}\n{}",
        found.case.number,
        beslut_engine::service::title(&found.def, &found.case),
        crate::mail::DELEGATE
    );
    let hidden = form_token(state, found, &text);
    let holders: Vec<String> = found.task.assignees.iter().filter_map(|a| a.party.person.clone()).collect();
    let options: String = state
        .engine
        .project()
        .directory
        .people
        .iter()
        .filter(|p| !holders.contains(&p.id))
        .map(|p| format!(r#"<option value="{}">{}</option>"#, esc(&p.id), esc(&p.name)))
        .collect();
    let error =
        errors.first().map(|(_, m)| format!(r#"<p class="error" id="e-to">{}</p>"#, esc(m))).unwrap_or_default();
    let invalid = if errors.is_empty() { "" } else { r#" aria-invalid="true" aria-describedby="e-to""# };
    let body = format!(
        r#"<h1>{heading}</h1>
<p>{intro}</p>
<dl><dt>{case_l}</dt><dd>{number} {title}</dd></dl>
<form method="post" action="/d/{token}">
{hidden}
<label for="to">{to_l}</label>{error}<select id="to" name="to" required{invalid}><option value="">–</option>{options}</select>
<label for="comment">{comment_l}</label><textarea id="comment" name="comment" rows="3">{comment}</textarea>
<button type="submit">{button}</button>
</form>
<p class="note">{note}</p>"#,
        heading = tr(lang, "Lämna över uppgiften", "Hand over the task"),
        intro = tr(
            lang,
            "Välj den kollega som ska ta uppgiften. Hen får egna länkar; dina slutar gälla.",
            "Choose the colleague who takes the task. They get links of their own; yours stop working."
        ),
        case_l = tr(lang, "Ärende", "Case"),
        number = esc(&found.case.number),
        title = esc(&beslut_engine::service::title(&found.def, &found.case)),
        token = esc(token),
        to_l = tr(lang, "Kollega", "Colleague"),
        comment_l = tr(lang, "Meddelande till kollegan", "Message to the colleague"),
        comment = esc(comment),
        button = tr(lang, "Lämna över", "Hand over"),
        note = tr(
            lang,
            "Överlämningen registreras i ärendets historik med båda era namn.",
            "The handover is recorded in the case history with both your names."
        ),
    );
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    page(status, lang, tr(lang, "Lämna över uppgiften", "Hand over the task"), &body)
}

/// Hands the task over, as asked on the handover page.
async fn delegate(
    state: &AppState,
    found: &Found,
    token: &str,
    form: &HashMap<String, String>,
    origin: Map<String, Value>,
) -> Response {
    let lang = found.lang;
    let to = form.get("to").map(|s| s.trim()).unwrap_or_default().to_string();
    let comment = form.get("comment").map(|s| s.trim().to_string()).filter(|c| !c.is_empty());
    if to.is_empty() {
        let message = tr(lang, "Välj en kollega.", "Choose a colleague.");
        return handover(state, found, token, comment.as_deref().unwrap_or_default(), &[("to".into(), message.into())]);
    }
    let command = Command::Delegate {
        task: found.task.id.clone(),
        actor: found.claims.recipient.clone(),
        to: to.clone(),
        comment,
    };
    let key = format!("link:{}", found.hash);
    match state.engine.execute(&found.case.id, command, Channel::EmailLink, origin, Some(&key)).await {
        Ok(_) => {
            mark_used(state, &found.hash).await;
            let name = state.engine.project().directory.person(&to).map_or(to.clone(), |p| p.name.clone());
            let body = format!(
                "<h1>{}</h1><p>{} <strong>{}</strong>.</p>",
                tr(lang, "Uppgiften är överlämnad", "The task is handed over"),
                tr(lang, "Uppgiften ligger nu hos", "The task is now with"),
                esc(&name)
            );
            page(StatusCode::OK, lang, tr(lang, "Uppgiften är överlämnad", "The task is handed over"), &body)
        }
        Err(Error::Rejected(runtime::Error::NotAllowed(reason))) => {
            handover(state, found, token, "", &[("to".into(), reason)])
        }
        Err(e) => refused(token, failure(state, &found.claims, &e)),
    }
}

/// The action the link is for.
fn action(found: &Found) -> Option<&Action> {
    let state = found.def.state(&found.task.state)?;
    let task_def = runtime::apply::task_def(state, found.task.branch.as_deref())?;
    task_def.actions.iter().find(|a| a.id == found.claims.action)
}

/// The form fields the action asks for.
fn fields<'a>(found: &'a Found, action: &Action) -> Vec<&'a Field> {
    action_fields(&found.def, &found.task, action)
}

/// The fields of `task`'s form that `action` asks for (all of them unless it names some).
pub fn action_fields<'a>(def: &'a Definition, task: &Task, action: &Action) -> Vec<&'a Field> {
    let Some(state) = def.state(&task.state) else { return Vec::new() };
    let Some(task_def) = runtime::apply::task_def(state, task.branch.as_deref()) else { return Vec::new() };
    task_def
        .form
        .iter()
        .filter(|f| action.fields.as_ref().is_none_or(|only| only.iter().any(|r| r.name == f.id)))
        .collect()
}

/// The text of what is being decided; its hash is recorded with the decision.
fn summary(found: &Found, action: &Action) -> String {
    let lang = found.lang;
    let state_label = found.def.state(&found.task.state).map(|s| s.label.get(lang).to_string()).unwrap_or_default();
    let title = beslut_engine::service::title(&found.def, &found.case);
    format!(
        "{}\n{}\n{}\n{}\n{}",
        found.case.number,
        found.def.name.get(lang),
        title,
        state_label,
        action.label.get(lang)
    )
}

fn confirmation(
    state: &AppState,
    found: &Found,
    token: &str,
    values: &Map<String, Value>,
    comment: &str,
    errors: &[(String, String)],
) -> Response {
    let lang = found.lang;
    let Some(action) = action(found) else { return refused(token, Refusal::Broken) };
    let text = summary(found, action);
    let hidden = form_token(state, found, &text);
    let lines: Vec<&str> = text.lines().collect();
    let error_for = |field: &str| {
        errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| format!(r#"<p class="error" id="e-{}">{}</p>"#, esc(field), esc(m)))
    };
    let mut form_html = String::new();
    for field in fields(found, action) {
        form_html.push_str(&input(state, field, values.get(&field.id), lang, error_for(&field.id)));
    }
    let comment_required = action.comment == CommentRule::Required;
    let comment_html = if action.comment == CommentRule::None {
        String::new()
    } else {
        let label = if comment_required {
            tr(lang, "Kommentar (krävs)", "Comment (required)")
        } else {
            tr(lang, "Kommentar", "Comment")
        };
        format!(
            r#"<label for="comment">{label}</label>{err}<textarea id="comment" name="comment" rows="4"{req}>{value}</textarea>"#,
            err = error_for("comment").unwrap_or_default(),
            req = if comment_required { " required" } else { "" },
            value = esc(comment),
        )
    };
    let general = error_for("").unwrap_or_default();
    let body = format!(
        r#"<h1>{heading}</h1>
<p>{intro}</p>
<dl>
<dt>{case_l}</dt><dd>{number} {title}</dd>
<dt>{kind_l}</dt><dd>{workflow}</dd>
<dt>{task_l}</dt><dd>{task}</dd>
</dl>
<p>{decision_l}</p>
<p class="action">{action}</p>
{general}
<form method="post" action="/d/{token}">
{hidden}
{form_html}
{comment_html}
<button type="submit">{confirm} {action}</button>
</form>
<p class="note">{note}</p>"#,
        heading = tr(lang, "Bekräfta ditt beslut", "Confirm your decision"),
        intro = tr(
            lang,
            "Inget är beslutat ännu. Kontrollera uppgifterna och bekräfta med knappen.",
            "Nothing has been decided yet. Check the details and confirm with the button."
        ),
        case_l = tr(lang, "Ärende", "Case"),
        kind_l = tr(lang, "Ärendetyp", "Type"),
        task_l = tr(lang, "Uppgift", "Task"),
        decision_l = tr(lang, "Ditt beslut:", "Your decision:"),
        number = esc(lines.first().copied().unwrap_or_default()),
        workflow = esc(lines.get(1).copied().unwrap_or_default()),
        title = esc(lines.get(2).copied().unwrap_or_default()),
        task = esc(lines.get(3).copied().unwrap_or_default()),
        action = esc(action.label.get(lang)),
        token = esc(token),
        confirm = tr(lang, "Bekräfta:", "Confirm:"),
        note = tr(
            lang,
            "Beslutet registreras i ärendets historik med ditt namn och tidpunkt.",
            "The decision is recorded in the case history with your name and the time."
        ),
    );
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    page(status, lang, tr(lang, "Bekräfta ditt beslut", "Confirm your decision"), &body)
}

/// One form field, labelled, with its error next to it and its value kept.
pub fn input(state: &AppState, field: &Field, value: Option<&Value>, lang: Lang, error: Option<String>) -> String {
    let id = format!("f_{}", field.id);
    let label = if field.required {
        format!("{} {}", esc(field.label.get(lang)), tr(lang, "(krävs)", "(required)"))
    } else {
        esc(field.label.get(lang))
    };
    let required = if field.required { " required" } else { "" };
    let text = value.map(|v| match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            items.iter().map(|i| i.as_str().map_or(i.to_string(), str::to_string)).collect::<Vec<_>>().join("\n")
        }
        other => other.to_string(),
    });
    let current = esc(text.as_deref().unwrap_or_default());
    let help = field
        .help
        .as_ref()
        .map(|h| format!(r#"<p class="note" id="h-{id}">{}</p>"#, esc(h.get(lang))))
        .unwrap_or_default();
    // The help text and the error, if any, are read out with the field.
    let mut ids: Vec<String> = Vec::new();
    if field.help.is_some() {
        ids.push(format!("h-{id}"));
    }
    if error.is_some() {
        ids.push(format!("e-{}", field.id));
    }
    let invalid = if error.is_some() { r#" aria-invalid="true""# } else { "" };
    let described =
        if ids.is_empty() { invalid.to_string() } else { format!(r#" aria-describedby="{}"{invalid}"#, ids.join(" ")) };
    let control = match field.kind {
        FieldType::Enum | FieldType::Boolean | FieldType::Person => {
            let options: Vec<(String, String)> = choices(state, field, lang);
            let opts: String = options
                .iter()
                .map(|(v, l)| {
                    format!(
                        r#"<option value="{}"{}>{}</option>"#,
                        esc(v),
                        if Some(v.as_str()) == text.as_deref() { " selected" } else { "" },
                        esc(l)
                    )
                })
                .collect();
            format!(r#"<select id="{id}" name="{id}"{required}{described}><option value="">–</option>{opts}</select>"#)
        }
        FieldType::Text if field.multiline => {
            format!(r#"<textarea id="{id}" name="{id}" rows="5"{required}{described}>{current}</textarea>"#)
        }
        FieldType::List => {
            format!(r#"<textarea id="{id}" name="{id}" rows="4"{required}{described}>{current}</textarea>"#)
        }
        FieldType::Date => {
            format!(r#"<input type="date" id="{id}" name="{id}" value="{current}"{required}{described}>"#)
        }
        FieldType::Email => {
            format!(r#"<input type="email" id="{id}" name="{id}" value="{current}"{required}{described}>"#)
        }
        FieldType::Number | FieldType::Money => format!(
            r#"<input type="text" inputmode="decimal" id="{id}" name="{id}" value="{current}"{required}{described}>"#
        ),
        FieldType::Text => {
            format!(r#"<input type="text" id="{id}" name="{id}" value="{current}"{required}{described}>"#)
        }
    };
    format!(r#"<label for="{id}">{label}</label>{help}{}{control}"#, error.unwrap_or_default())
}

fn choices(state: &AppState, field: &Field, lang: Lang) -> Vec<(String, String)> {
    let directory = &state.engine.project().directory;
    match (field.kind, field.values_from) {
        (FieldType::Boolean, _) => {
            vec![("true".into(), tr(lang, "Ja", "Yes").into()), ("false".into(), tr(lang, "Nej", "No").into())]
        }
        (FieldType::Person, _) => directory.people.iter().map(|p| (p.id.clone(), p.name.clone())).collect(),
        (_, Some(ValuesFrom::Forvaltningar)) => {
            directory.forvaltningar.iter().map(|f| (f.id.clone(), f.name.get(lang).to_string())).collect()
        }
        (_, Some(ValuesFrom::Portfolios)) => state
            .engine
            .project()
            .frames
            .iter()
            .flat_map(|(_, p)| p.portfolios.iter().map(|x| (x.id.clone(), x.name.get(lang).to_string())))
            .collect(),
        _ => field.values.iter().map(|v| (v.id.clone(), v.label.get(lang).to_string())).collect(),
    }
}

async fn decide(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let found = match find(&state, &token, &client(&addr)).await {
        Ok(found) => found,
        Err(refusal) => return refused(&token, refusal),
    };
    let lang = found.lang;
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let issued: i64 = get("issued").parse().unwrap_or(0);
    let now = state.engine.now().as_second();
    if !links::verify_csrf(&state.secret, get("csrf"), &found.hash, get("shown"), issued, now, PAGE_SECONDS) {
        if found.claims.action == crate::mail::DELEGATE {
            let message = tr(
                lang,
                "Sidan var för gammal eller kom inte härifrån. Försök igen.",
                "The page was too old or did not come from here. Try again.",
            );
            return handover(&state, &found, &token, "", &[("to".into(), message.into())]);
        }
        let message = tr(
            lang,
            "Sidan var för gammal eller kom inte härifrån. Kontrollera och bekräfta igen.",
            "The page was too old or did not come from here. Check and confirm again.",
        );
        return confirmation(&state, &found, &token, &Map::new(), get("comment"), &[(String::new(), message.into())]);
    }
    let mut origin = Map::new();
    origin.insert("ip".into(), client(&addr).into());
    origin.insert(
        "user_agent".into(),
        headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default().into(),
    );
    origin.insert("address".into(), found.claims.recipient.clone().into());
    origin.insert("page_sha256".into(), get("shown").into());
    if found.claims.action == crate::mail::DELEGATE {
        return delegate(&state, &found, &token, &form, origin).await;
    }
    let Some(action) = action(&found) else { return refused(&token, Refusal::Broken) };
    let values = form_values(&found, action, &form);
    let comment = get("comment").trim();
    let command = Command::Decide {
        task: found.task.id.clone(),
        actor: found.claims.recipient.clone(),
        action: found.claims.action.clone(),
        comment: (!comment.is_empty()).then(|| comment.to_string()),
        form: values.clone(),
    };
    // The link's hash is the idempotency key: a double click or a retried POST returns the first
    // result and decides nothing twice.
    let key = format!("link:{}", found.hash);
    match state.engine.execute(&found.case.id, command, Channel::EmailLink, origin, Some(&key)).await {
        Ok(_) => {
            mark_used(&state, &found.hash).await;
            receipt(&found, action)
        }
        Err(Error::Rejected(runtime::Error::FrameExceeded { left, .. })) => {
            let heading = tr(lang, "Ramen räcker inte", "The frame is not enough");
            let body = format!("<h1>{heading}</h1><p>{}</p>", esc(&frame_exceeded(left, lang)));
            page(StatusCode::CONFLICT, lang, heading, &body)
        }
        Err(Error::Rejected(e)) if let Some(errors) = field_errors(&e, lang) => {
            confirmation(&state, &found, &token, &values, comment, &errors)
        }
        Err(e) if e.is_unavailable() => refused(&token, Refusal::Unavailable(lang)),
        Err(_) => match find(&state, &token, &client(&addr)).await {
            // Someone else decided at the same moment, or the task moved on.
            Err(refusal) => refused(&token, refusal),
            Ok(_) => refused(&token, Refusal::Broken),
        },
    }
}

/// The messages a refused decision or start shows next to its fields (`""` is the form as a
/// whole), in the reader's language; None for refusals that need a page of their own.
pub fn field_errors(error: &runtime::Error, lang: Lang) -> Option<Vec<(String, String)>> {
    match error {
        runtime::Error::InvalidData(problems) => Some(
            problems
                .iter()
                .map(|p| (p.field.clone(), if lang == Lang::En { p.message.en.clone() } else { p.message.sv.clone() }))
                .collect(),
        ),
        runtime::Error::CommentRequired => Some(vec![(
            "comment".into(),
            tr(
                lang,
                "Skriv en kommentar: den krävs för det här beslutet.",
                "Write a comment: this decision requires one.",
            )
            .into(),
        )]),
        runtime::Error::FrameExceeded { left, .. } => Some(vec![(String::new(), frame_exceeded(*left, lang))]),
        _ => None,
    }
}

/// Why a grant does not fit, with what is left of the frame.
pub fn frame_exceeded(left: i64, lang: Lang) -> String {
    format!(
        "{} {} kr.",
        tr(
            lang,
            "Beslutet ryms inte i portföljens ram. Kvar av ramen:",
            "The decision does not fit the portfolio's frame. Left:"
        ),
        crate::mail::group_thousands(left as f64 / 100.0)
    )
}

/// The posted form fields of the action, as the engine takes them.
fn form_values(found: &Found, action: &Action, form: &HashMap<String, String>) -> Map<String, Value> {
    posted_values(&fields(found, action), form)
}

/// The values of `fields` in a posted form (inputs named `f_<field>`), as the engine takes
/// them: text as typed, lists one item per line. Empty inputs are left out.
pub fn posted_values(fields: &[&Field], form: &HashMap<String, String>) -> Map<String, Value> {
    let mut values = Map::new();
    for field in fields {
        let Some(raw) = form.get(&format!("f_{}", field.id)).map(|v| v.trim()).filter(|v| !v.is_empty()) else {
            continue;
        };
        let value = match field.kind {
            FieldType::List => Value::Array(
                raw.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| Value::String(l.into())).collect(),
            ),
            _ => Value::String(raw.to_string()),
        };
        values.insert(field.id.clone(), value);
    }
    values
}

async fn mark_used(state: &AppState, hash: &str) {
    let Ok(mut tx) = state.engine.store.begin().await else { return };
    let now = beslut_engine::store::millis(state.engine.now());
    if mail_store::use_link(&mut tx, hash, now).await.is_ok() {
        let _ = tx.commit().await;
    }
}

fn receipt(found: &Found, action: &Action) -> Response {
    let lang = found.lang;
    let body = format!(
        "<h1>{}</h1><p>{}</p><p class=\"action\">{}</p><p>{} {}</p>",
        tr(lang, "Tack, ditt beslut är registrerat", "Thank you, your decision is recorded"),
        tr(lang, "Du har beslutat:", "You decided:"),
        esc(action.label.get(lang)),
        tr(lang, "Ärende", "Case"),
        esc(&found.case.number),
    );
    page(StatusCode::OK, lang, tr(lang, "Beslutet är registrerat", "Decision recorded"), &body)
}

/// Sends a fresh link (a new task email) to the address an expired link was sent to.
async fn renew(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
) -> Response {
    let now = state.engine.now().as_second();
    let claims = match links::verify(&state.secret, &token, now) {
        Err(LinkError::Expired(claims)) => *claims,
        Ok(_) => return refused(&token, Refusal::Invalid),
        Err(LinkError::Invalid) => return refused(&token, invalid(&state, &client(&addr), now)),
    };
    let lang = lang_of(&state, &claims.recipient);
    match state.engine.resend_task_email(&claims.case, &claims.task, &claims.recipient).await {
        Ok(true) => {
            let body = format!(
                "<h1>{}</h1><p>{} {}</p>",
                tr(lang, "En ny länk är på väg", "A new link is on its way"),
                tr(lang, "Vi har skickat ett nytt e-postmeddelande till", "We have sent a new email to"),
                esc(&mask(&claims.recipient))
            );
            page(StatusCode::OK, lang, tr(lang, "En ny länk är på väg", "A new link is on its way"), &body)
        }
        Err(e) if e.is_unavailable() => refused(&token, Refusal::Unavailable(lang)),
        _ => refused(&token, Refusal::Closed(lang)),
    }
}

/// `anna.berg@kommun.se` → `a…@kommun.se`: enough to recognise, not to harvest.
fn mask(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => format!("{}…@{domain}", local.chars().next().unwrap_or('?')),
        None => "…".into(),
    }
}

fn refused(token: &str, refusal: Refusal) -> Response {
    match refusal {
        Refusal::Invalid => page(
            StatusCode::NOT_FOUND,
            Lang::Sv,
            "Sidan finns inte",
            "<h1>Sidan finns inte</h1><p>Länken är inte giltig. Kontrollera att hela länken kom med, eller öppna den senaste e-posten om ärendet.</p><p lang=\"en\">This link is not valid.</p>",
        ),
        Refusal::TooMany => page(
            StatusCode::TOO_MANY_REQUESTS,
            Lang::Sv,
            "För många försök",
            "<h1>För många försök</h1><p>Vänta en minut och försök igen.</p><p lang=\"en\">Too many attempts; wait a minute.</p>",
        ),
        Refusal::Expired(claims) => {
            let lang = Lang::Sv;
            let body = format!(
                r#"<h1>Länken har gått ut</h1><p>Om uppgiften fortfarande är din kan du få en ny länk till {}.</p>
<form method="post" action="/d/{}/ny-lank"><button type="submit">Skicka en ny länk</button></form><p lang="en" class="note">This link has expired; the button sends a new one to the same address.</p>"#,
                esc(&mask(&claims.recipient)),
                esc(token),
            );
            page(StatusCode::GONE, lang, "Länken har gått ut", &body)
        }
        Refusal::AlreadyDecided { by, at, action, lang } => {
            let body = format!(
                "<h1>{}</h1><p>{} <strong>{}</strong> {} {}: <strong>{}</strong>.</p><p>{}</p>",
                tr(lang, "Uppgiften är redan avgjord", "The task has already been decided"),
                tr(lang, "Beslutad av", "Decided by"),
                esc(&by),
                tr(lang, "den", "on"),
                esc(&at),
                esc(&action),
                tr(lang, "Du behöver inte göra något mer.", "Nothing more is needed from you."),
            );
            page(StatusCode::OK, lang, tr(lang, "Redan avgjord", "Already decided"), &body)
        }
        Refusal::Closed(lang) => page(
            StatusCode::OK,
            lang,
            tr(lang, "Uppgiften är stängd", "The task is closed"),
            tr(
                lang,
                "<h1>Uppgiften är stängd</h1><p>Ärendet har gått vidare, så uppgiften behövs inte längre. Du behöver inte göra något.</p>",
                "<h1>The task is closed</h1><p>The case has moved on, so the task is no longer needed. Nothing is required from you.</p>",
            ),
        ),
        Refusal::NotYours(lang) => page(
            StatusCode::OK,
            lang,
            tr(lang, "Uppgiften har lämnats över", "The task was handed over"),
            tr(
                lang,
                "<h1>Uppgiften har lämnats över</h1><p>Uppgiften ligger nu hos någon annan, så den här länken gäller inte längre.</p>",
                "<h1>The task was handed over</h1><p>The task is now with someone else, so this link no longer applies.</p>",
            ),
        ),
        Refusal::Unavailable(lang) => super::unavailable(lang),
        Refusal::Broken => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            Lang::Sv,
            "Något gick fel",
            "<h1>Något gick fel</h1><p>Försök igen om en stund. Inget beslut har registrerats.</p><p lang=\"en\">Something went wrong; nothing was decided. Try again shortly.</p>",
        ),
    }
}
