//! The development mailbox: with no SMTP server configured, `/dev/mail` lists the emails that
//! were written as files (recipient, subject, text and links), so a first run on a fresh
//! machine shows the whole flow. It answers 404 whenever email goes to a real server.

use super::{AppState, esc, page};
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use beslut_engine::diagnostic::Lang;
use beslut_engine::store::mail as mail_store;

pub fn router() -> Router<AppState> {
    Router::new().route("/dev/mail", axum::routing::get(html)).route("/dev/mail.json", axum::routing::get(json))
}

async fn mails(state: &AppState) -> Result<Vec<mail_store::LoggedMail>, Response> {
    if !state.dev_mail {
        return Err(page(StatusCode::NOT_FOUND, Lang::Sv, "Sidan finns inte", "<h1>Sidan finns inte</h1>"));
    }
    mail_store::recent(&state.engine.store.pool, None, 200).await.map_err(|_| {
        page(StatusCode::SERVICE_UNAVAILABLE, Lang::Sv, "Databasen svarar inte", "<h1>Databasen svarar inte</h1>")
    })
}

async fn json(State(state): State<AppState>) -> Response {
    match mails(&state).await {
        Ok(mails) => {
            let list: Vec<serde_json::Value> = mails
                .iter()
                .map(|m| {
                    let links: serde_json::Value = serde_json::from_str(&m.links).unwrap_or_default();
                    serde_json::json!({ "to": m.recipient, "subject": m.subject, "text": m.text, "links": links, "message_id": m.message_id, "case": m.case_id, "sent": m.sent_at.is_some() })
                })
                .collect();
            Json(list).into_response()
        }
        Err(response) => response,
    }
}

async fn html(State(state): State<AppState>) -> Response {
    let mails = match mails(&state).await {
        Ok(mails) => mails,
        Err(response) => return response,
    };
    let mut body = String::from(
        "<h1>Utvecklingsbrevlåda</h1><p class=\"note\">Ingen SMTP-server är inställd, så e-post sparas här och som .eml-filer.</p>",
    );
    for m in &mails {
        let links: Vec<serde_json::Value> = serde_json::from_str(&m.links).unwrap_or_default();
        let items: String = links
            .iter()
            .map(|l| {
                format!(
                    "<li><a href=\"{}\">{}</a></li>",
                    esc(l["url"].as_str().unwrap_or_default()),
                    esc(l["label"].as_str().unwrap_or_default())
                )
            })
            .collect();
        body.push_str(&format!(
            "<article><h2>{}</h2><p>Till: {}</p><ul>{items}</ul><details><summary>Text</summary><pre>{}</pre></details></article>",
            esc(&m.subject),
            esc(&m.recipient),
            esc(&m.text)
        ));
    }
    page(StatusCode::OK, Lang::Sv, "Utvecklingsbrevlåda", &body)
}
