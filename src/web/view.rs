//! Rendering the signed-in pages: Handlebars templates (escaping every value by default) inside
//! one layout with the navigation, the language switch and sign-out.
//!
//! Texts are in the templates, in both languages: `{{tr "Mina uppgifter" "My tasks"}}` picks
//! by the page's `lang`. Dates and amounts are formatted in Rust, the Swedish way, before they
//! reach a template.

use super::session::Viewer;
use super::{secure, tr};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use beslut_engine::diagnostic::Lang;
use handlebars::{Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason};
use serde_json::{Value, json};
use std::sync::LazyLock;

/// The templates, compiled once; a template that does not compile fails the first test that
/// renders any page.
static TEMPLATES: LazyLock<Handlebars<'static>> = LazyLock::new(|| {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_helper("tr", Box::new(translate));
    for (name, text) in SOURCES {
        if let Err(e) = hb.register_template_string(name, *text) {
            panic!("template {name}: {e}");
        }
    }
    hb
});

const SOURCES: &[(&str, &str)] = &[
    ("layout", include_str!("templates/layout.hbs")),
    ("sign_in", include_str!("templates/sign_in.hbs")),
    ("sign_in_link", include_str!("templates/sign_in_link.hbs")),
    ("message", include_str!("templates/message.hbs")),
    ("tasks", include_str!("templates/tasks.hbs")),
    ("decide", include_str!("templates/decide.hbs")),
    ("cases", include_str!("templates/cases.hbs")),
    ("case", include_str!("templates/case.hbs")),
    ("start_list", include_str!("templates/start_list.hbs")),
    ("start", include_str!("templates/start.hbs")),
    ("processes", include_str!("templates/processes.hbs")),
    ("process", include_str!("templates/process.hbs")),
];

/// `{{tr "svenska" "english"}}`: the text in the page's language, escaped.
fn translate(h: &Helper, _: &Handlebars, ctx: &Context, _: &mut RenderContext, out: &mut dyn Output) -> HelperResult {
    let english = ctx.data().get("lang").and_then(Value::as_str) == Some("en");
    let text = h.param(usize::from(english)).and_then(|p| p.value().as_str());
    let text = text.ok_or_else(|| RenderErrorReason::ParamNotFoundForIndex("tr", usize::from(english)))?;
    out.write(&handlebars::html_escape(text))?;
    Ok(())
}

/// The sections of the navigation, by path prefix.
const SECTIONS: [(&str, &str, &str); 4] = [
    ("/uppgifter", "Mina uppgifter", "My tasks"),
    ("/arenden", "Ärenden", "Cases"),
    ("/starta", "Starta ärende", "Start a case"),
    ("/processer", "Processer", "Processes"),
];

/// What every page needs to draw its frame.
pub struct Frame<'a> {
    pub lang: Lang,
    /// The path and query of this page, for the language switch to come back to.
    pub path: &'a str,
    pub viewer: Option<&'a Viewer>,
}

impl<'a> Frame<'a> {
    pub fn of(viewer: &'a Viewer, path: &'a str) -> Frame<'a> {
        Frame { lang: viewer.lang, path, viewer: Some(viewer) }
    }
}

pub fn lang_code(lang: Lang) -> &'static str {
    if lang == Lang::En { "en" } else { "sv" }
}

/// Renders `template` with `data` (which gets `lang`) inside the layout.
pub fn render(status: StatusCode, frame: &Frame, title: &str, template: &str, mut data: Value) -> Response {
    let lang = lang_code(frame.lang);
    if let Value::Object(map) = &mut data {
        map.insert("lang".into(), lang.into());
    }
    let body = match TEMPLATES.render(template, &data) {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(template, error = %e, "a page could not be rendered");
            return super::page(StatusCode::INTERNAL_SERVER_ERROR, frame.lang, "Fel", "<h1>Något gick fel</h1>");
        }
    };
    let (other, other_name) = if frame.lang == Lang::En { ("sv", "Svenska") } else { ("en", "English") };
    let nav: Vec<Value> = SECTIONS
        .iter()
        .map(|(href, sv, en)| {
            json!({ "href": href, "label": tr(frame.lang, sv, en), "current": frame.path.starts_with(href) })
        })
        .collect();
    let layout = json!({
        "lang": lang,
        "title": title,
        "style": super::STYLE,
        "body": body,
        "nav": if frame.viewer.is_some() { nav } else { Vec::new() },
        "viewer": frame.viewer.map(|v| json!({ "name": v.name, "email": v.email, "csrf": v.csrf })),
        "switch": { "href": format!("/sprak/{other}?tillbaka={}", encode(frame.path)), "label": other_name, "lang": other },
    });
    match TEMPLATES.render("layout", &layout) {
        Ok(html) => secure((status, Html(html)).into_response()),
        Err(e) => {
            tracing::error!(error = %e, "the layout could not be rendered");
            super::page(StatusCode::INTERNAL_SERVER_ERROR, frame.lang, "Fel", "<h1>Något gick fel</h1>")
        }
    }
}

/// A page with a heading and a paragraph, such as a receipt or a refusal.
pub fn message(status: StatusCode, frame: &Frame, heading: &str, text: &str, link: Option<(&str, &str)>) -> Response {
    let data = json!({ "heading": heading, "text": text, "link": link.map(|(href, label)| json!({ "href": href, "label": label })) });
    render(status, frame, heading, "message", data)
}

/// Percent-encodes a query value.
pub fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A redirect after a POST, so that reloading the page does not post again.
pub fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = axum::http::HeaderValue::from_str(to) {
        response.headers_mut().insert(axum::http::header::LOCATION, value);
    }
    response
}

/// A local path to go back to, from a query value: only paths on this site, never `//evil`.
pub fn local_path(path: Option<&str>) -> String {
    match path {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_string(),
        _ => "/uppgifter".into(),
    }
}

/// Swedish (or English) date and time of a stored moment in milliseconds.
pub fn when(ms: i64, lang: Lang) -> String {
    beslut_engine::store::from_millis(ms).map(|t| crate::mail::swedish_time(t, lang)).unwrap_or_default()
}

/// A random key for one rendering of a form: posting it twice does the thing once.
pub fn once() -> String {
    random_hex(16)
}

/// `bytes` random bytes from the operating system, in hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("the operating system's random source");
    hex::encode(buffer)
}

/// The error message for `field`, as the paragraph placed above it (`e-<field>` is what the
/// field's `aria-describedby` names).
pub fn field_error(errors: &[(String, String)], field: &str) -> Option<String> {
    errors
        .iter()
        .find(|(f, _)| f == field)
        .map(|(_, m)| format!(r#"<p class="error" id="e-{}">{}</p>"#, super::esc(field), super::esc(m)))
}
