//! The HTTP side of Beslut: pages for staff who decide from email, and the development mailbox.
//! Handlers extract, call the engine, and map the result to a page; every page works without
//! JavaScript.
//!
//! - [`decide`]: `/d/{token}`: GET shows a confirmation page, only POST decides.
//! - [`dev`]: `/dev/mail` and `/dev/mail.json`, when email goes to files.
//! - [`hooks`]: inbound webhooks (`/hooks/…`).
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`crate::api`]: the JSON API (`/api/v1`).

pub mod cases;
pub mod decide;
pub mod dev;
pub mod hooks;
pub mod ops;
pub mod processes;
pub mod session;
pub mod start;
pub mod tasks;
pub mod view;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use beslut_engine::diagnostic::Lang;
use beslut_engine::service::Engine;
use beslut_notifications::links::Secret;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What every handler may use; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub secret: Secret,
    /// The public address, e.g. `https://beslut.kommun.se`.
    pub base_url: String,
    /// True when email goes to `.eml` files: then `/dev/mail` lists them.
    pub dev_mail: bool,
    pub limiter: Arc<Limiter>,
    /// Inbound webhook sources and their secrets.
    pub sources: Arc<std::collections::BTreeMap<String, beslut_notifications::webhooks::WebhookSecret>>,
    /// The folder the workflows were loaded from.
    pub workflows_dir: std::path::PathBuf,
    /// Who may sign in to the pages, and who sees every case.
    pub web: Arc<WebConfig>,
}

/// The settings of the signed-in pages (`[web]` in beslut.toml).
#[derive(Clone, Debug, Default)]
pub struct WebConfig {
    /// Email domains whose addresses may sign in, e.g. `exempelkommun.se`. Empty: the domains of
    /// the people in directory.yaml.
    pub allowed_domains: Vec<String>,
    /// Roles whose holders see every case (registrars, the IT forum); everyone else sees the
    /// cases they started or were given a task in.
    pub viewer_roles: Vec<String>,
}

/// The router of all pages.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(ops::router())
        .merge(decide::router())
        .merge(session::router())
        .merge(tasks::router())
        .merge(cases::router())
        .merge(start::router())
        .merge(processes::router())
        .merge(dev::router())
        .merge(hooks::router())
        .merge(crate::api::router())
        .layer(axum::middleware::from_fn(ops::measure))
        .with_state(state)
}

/// Counts failed link attempts per client address, so that guessing tokens is slow.
#[derive(Default)]
pub struct Limiter {
    failures: Mutex<HashMap<String, (i64, u32)>>,
}

impl Limiter {
    /// Attempts allowed per minute and address before requests are refused.
    const PER_MINUTE: u32 = 20;

    /// Records a failed attempt; true while the address is under the limit.
    pub fn fail(&self, address: &str, now_s: i64) -> bool {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let entry = failures.entry(address.to_string()).or_insert((now_s / 60, 0));
        if entry.0 != now_s / 60 {
            *entry = (now_s / 60, 0);
        }
        entry.1 += 1;
        entry.1 <= Self::PER_MINUTE
    }

    /// True when the address has failed too often this minute.
    pub fn blocked(&self, address: &str, now_s: i64) -> bool {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.get(address).is_some_and(|(minute, n)| *minute == now_s / 60 && *n > Self::PER_MINUTE)
    }
}

/// The pages' only style sheet, allowed by its hash: no inline style or script of anyone
/// else's can run. Colours meet WCAG 2.1 AA contrast (4.5:1 for text) on their backgrounds.
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f3f4f6;color:#111827;line-height:1.5}\
main{max-width:40rem;margin:0 auto;padding:1.5rem 1rem;background:#fff;min-height:100vh;box-sizing:border-box}\
main.wide{max-width:72rem}\
h1{font-size:1.5rem;margin-top:0}h2{font-size:1.2rem;margin-top:2rem}dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}\
dt{font-weight:600}dd{margin:0}label{display:block;font-weight:600;margin-top:1rem}\
textarea,input,select{width:100%;box-sizing:border-box;font:inherit;padding:.5rem;border:1px solid #4b5563;border-radius:4px}\
button,.button{display:inline-block;margin-top:1.25rem;font:inherit;font-weight:600;padding:.75rem 1.5rem;background:#1d4ed8;color:#fff;border:0;border-radius:4px;cursor:pointer;text-decoration:none}\
button:focus,a:focus,textarea:focus,input:focus,select:focus,.scroll:focus{outline:3px solid #b45309;outline-offset:2px}\
.error{color:#b91c1c;font-weight:600}.note{color:#374151;font-size:.95rem}.action{font-size:1.25rem;font-weight:700}\
a{color:#1d4ed8}.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem;z-index:2}\
.top{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1.5rem;padding:.5rem 1rem;background:#1e3a8a;color:#fff}\
.top a{color:#fff}.top a:focus,.top button:focus{outline-color:#fbbf24}.brand{margin:0;font-weight:700;font-size:1.2rem}\
.top nav ul{display:flex;flex-wrap:wrap;gap:.25rem 1rem;list-style:none;margin:0;padding:0}\
.top nav a[aria-current]{font-weight:700;text-decoration-thickness:3px}\
.who{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;margin-left:auto}\
form.inline{display:inline;margin:0}button.link{background:none;border:0;padding:0;margin:0;color:#fff;text-decoration:underline;font-weight:400}\
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;margin:1rem 0}\
th,td{text-align:left;vertical-align:top;padding:.4rem .6rem;border-bottom:1px solid #d1d5db}th{background:#f3f4f6}\
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\
.late{color:#991b1b;font-weight:700}.soon{color:#92400e;font-weight:700}\
.filters{display:grid;grid-template-columns:repeat(auto-fit,minmax(12rem,1fr));gap:0 1rem;align-items:end}\
.actions{display:flex;flex-wrap:wrap;gap:.5rem}.actions .button{margin-top:.25rem;padding:.4rem .9rem}\
.secondary{background:#fff;color:#1d4ed8;border:2px solid #1d4ed8}\
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #d1d5db}\
ol.history{padding-left:1.25rem}ol.history li{margin-bottom:.75rem}\
pre.diff{white-space:pre-wrap;font-size:.9rem;background:#f9fafb;padding:.5rem;border:1px solid #d1d5db}\
pre.diff ins{background:#dcfce7;text-decoration:none}pre.diff del{background:#fee2e2}\
.ok{color:#166534;font-weight:700}.pager{display:flex;gap:1rem;margin-top:1rem}\
main{overflow-wrap:break-word}dd{min-width:0}\
@media (max-width:40rem){dl{grid-template-columns:1fr}dd{margin-bottom:.5rem}.top{padding:.5rem}.who{margin-left:0}\
table.cards thead{position:absolute;left:-9999px}table.cards tr{display:block;border-bottom:2px solid #9ca3af;padding:.5rem 0}\
table.cards td{display:block;border:0;padding:.2rem 0}table.cards td::before{content:attr(data-label);display:block;font-weight:600}}";

static CSP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    use base64::Engine as _;
    use sha2::Digest;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(STYLE.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
});

/// Escapes text for HTML.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A complete page: semantic, readable at 200% zoom and on a phone, no scripts, no external
/// resources, and a strict Content-Security-Policy.
pub fn page(status: axum::http::StatusCode, lang: Lang, title: &str, body: &str) -> Response {
    let code = if lang == Lang::En { "en" } else { "sv" };
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"{code}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex\">\n<title>{title} – Beslut</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n",
        title = esc(title),
    );
    secure((status, Html(html)).into_response())
}

/// The page for a request the database could not take just now: 503 with `Retry-After`, so
/// that a browser, a proxy or a person tries again instead of taking it for a refusal.
pub fn unavailable(lang: Lang) -> Response {
    let body = tr(
        lang,
        "<h1>Försök igen om en stund</h1><p>Tjänsten är inte tillgänglig just nu. Inget har sparats; ladda om sidan om en liten stund.</p>",
        "<h1>Try again in a moment</h1><p>The service is unavailable just now. Nothing was saved; reload the page in a little while.</p>",
    );
    let mut response = page(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        lang,
        tr(lang, "Försök igen om en stund", "Try again in a moment"),
        body,
    );
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(crate::api::problem::RETRY_AFTER_SECONDS));
    response
}

/// The headers every page carries: the Content-Security-Policy, no referrer (links carry
/// tokens), no sniffing, no caching of personal pages.
pub fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&CSP).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'")),
    );
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Picks the Swedish or English text.
pub fn tr<'a>(lang: Lang, sv: &'a str, en: &'a str) -> &'a str {
    if lang == Lang::En { en } else { sv }
}
