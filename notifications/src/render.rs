//! Emails rendered from Handlebars templates: a subject, a text part and an HTML part, in
//! Swedish or English, from a typed context.
//!
//! The default templates are compiled into the binary; a folder of the same name under
//! `workflows/templates/` overrides one, and workflows' own templates (for `notify` steps) are
//! added the same way. Strict mode: a template reading a variable the context lacks fails to
//! render instead of sending an email with a hole in it.

use beslut_engine::diagnostic::Lang;
use beslut_engine::templates::Templates;
use handlebars::Handlebars;
use serde::Serialize;

/// The built-in templates: (name, part, language, source).
const BUILTIN: &[(&str, &str, &str, &str)] = &include!("../templates/builtin.rs.in");

/// Who asks, what the case is, what the recipient can do.
#[derive(Clone, Debug, Serialize)]
pub struct EmailContext {
    pub sender: Sender,
    pub recipient: Recipient,
    pub case: CaseInfo,
    /// The case's data by field id, formatted for reading: what workflow templates use as
    /// `{{data.rubrik}}`.
    pub data: serde_json::Map<String, serde_json::Value>,
    /// The key case data as label and value pairs, in the workflow's order.
    pub fields: Vec<LabelValue>,
    pub task: Option<TaskInfo>,
    pub actions: Vec<ActionLink>,
    pub decision: Option<DecisionInfo>,
    pub lang: Lang,
}

#[derive(Clone, Debug, Serialize)]
pub struct Sender {
    pub name: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Recipient {
    pub name: String,
    pub email: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct CaseInfo {
    pub number: String,
    pub title: String,
    pub workflow_name: String,
    pub url: String,
    pub state_label: String,
    pub outcome_label: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct LabelValue {
    pub label: String,
    pub value: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct TaskInfo {
    pub label: String,
    pub description: String,
    pub deadline: String,
    pub url: String,
    pub escalated: bool,
    pub on_behalf_of: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ActionLink {
    pub label: String,
    pub url: String,
    pub comment_required: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct DecisionInfo {
    pub action: String,
    pub by: String,
    pub comment: String,
    pub at: String,
}

/// A rendered email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("no template {0}")]
    NoTemplate(String),
    #[error("template {name} does not compile: {message}")]
    Compile { name: String, message: String },
    #[error("template {name} cannot be rendered: {message}")]
    Render { name: String, message: String },
}

/// All templates, compiled once: HTML parts escape what they insert, text parts and subjects
/// do not ("Bygg & miljö" must not arrive as "Bygg &amp; miljö" in a plain-text email).
pub struct Renderer {
    html: Handlebars<'static>,
    plain: Handlebars<'static>,
}

fn key(name: &str, part: &str, lang: &str) -> String {
    format!("{name}/{part}.{lang}")
}

impl Renderer {
    /// The built-in templates, overridden and extended by a workflows folder's templates.
    pub fn new(custom: &Templates) -> Result<Renderer, RenderError> {
        let mut renderer = Renderer { html: Handlebars::new(), plain: Handlebars::new() };
        renderer.html.set_strict_mode(true);
        renderer.plain.set_strict_mode(true);
        renderer.plain.register_escape_fn(handlebars::no_escape);
        for (name, part, lang, source) in BUILTIN {
            renderer.register(&key(name, part, lang), source)?;
        }
        for (name, files) in &custom.folders {
            for file in files {
                renderer.register(&key(name, &file.part, &file.lang), &file.source)?;
            }
        }
        Ok(renderer)
    }

    fn registry(&self, key: &str) -> &Handlebars<'static> {
        if key.contains("/html.") { &self.html } else { &self.plain }
    }

    fn register(&mut self, key: &str, source: &str) -> Result<(), RenderError> {
        let registry = if key.contains("/html.") { &mut self.html } else { &mut self.plain };
        registry
            .register_template_string(key, source)
            .map_err(|e| RenderError::Compile { name: key.into(), message: e.to_string() })
    }

    /// Renders template `name` in the context's language, falling back to Swedish part by part.
    pub fn render(&self, name: &str, context: &EmailContext) -> Result<Email, RenderError> {
        let lang = match context.lang {
            Lang::Sv => "sv",
            Lang::En => "en",
        };
        let part = |part: &str| -> Option<String> {
            [lang, "sv"].into_iter().map(|l| key(name, part, l)).find(|k| self.registry(k).has_template(k))
        };
        let subject_key = part("subject").ok_or_else(|| RenderError::NoTemplate(name.into()))?;
        let text_key = part("text").ok_or_else(|| RenderError::NoTemplate(name.into()))?;
        let subject = self.run(&subject_key, context)?;
        Ok(Email {
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: self.run(&text_key, context)?,
            html: part("html").map(|k| self.run(&k, context)).transpose()?,
        })
    }

    fn run(&self, key: &str, context: &EmailContext) -> Result<String, RenderError> {
        self.registry(key)
            .render(key, context)
            .map_err(|e| RenderError::Render { name: key.into(), message: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checker_knows_exactly_the_keys_of_the_context() {
        let value = serde_json::to_value(context(Lang::Sv)).unwrap();
        for (object, keys) in beslut_engine::templates::OBJECT_KEYS {
            let mut actual: Vec<&str> = value[object].as_object().unwrap().keys().map(String::as_str).collect();
            let mut expected = keys.to_vec();
            actual.sort();
            expected.sort();
            assert_eq!(actual, expected, "the keys of `{object}`");
        }
    }

    fn context(lang: Lang) -> EmailContext {
        let mut data = serde_json::Map::new();
        data.insert("rubrik".into(), "Nytt bygglovssystem & e-tjänst".into());
        EmailContext {
            sender: Sender { name: "Exempelkommun".into() },
            recipient: Recipient { name: "Anna Berg".into(), email: "anna.berg@exempelkommun.se".into() },
            case: CaseInfo {
                number: "IT 2026/0042".into(),
                title: "Nytt bygglovssystem & e-tjänst".into(),
                workflow_name: "Ändring av IT".into(),
                url: "https://beslut.exempelkommun.se/arenden/it-2026-0042".into(),
                state_label: "Lokal beredning".into(),
                outcome_label: "bifallen".into(),
            },
            data,
            fields: vec![
                LabelValue { label: "Förvaltning".into(), value: "Samhällsbyggnadsförvaltningen".into() },
                LabelValue { label: "Kostnad".into(), value: "250 000 kr".into() },
            ],
            task: Some(TaskInfo {
                label: "Lokal beredning och klassning".into(),
                description: "Bered förslaget i lokalt IT-forum.".into(),
                deadline: "fredag 4 december 2026 kl. 15.00".into(),
                url: "https://beslut.exempelkommun.se/uppgifter/it-2026-0042/t1".into(),
                escalated: false,
                on_behalf_of: "Erik Nyström".into(),
            }),
            actions: vec![
                ActionLink {
                    label: "Klassa och gå vidare".into(),
                    url: "https://beslut.exempelkommun.se/d/abc.def".into(),
                    comment_required: false,
                },
                ActionLink {
                    label: "Skicka tillbaka".into(),
                    url: "https://beslut.exempelkommun.se/d/ghi.jkl".into(),
                    comment_required: true,
                },
            ],
            decision: Some(DecisionInfo {
                action: "Bifall".into(),
                by: "Karin Lund".into(),
                comment: "Bra förslag".into(),
                at: "23 november 2026 kl. 10.15".into(),
            }),
            lang,
        }
    }

    /// Every built-in email renders in both languages; the rendered text and HTML are kept
    /// as snapshots so that a change to what staff receive is seen in review.
    #[test]
    fn builtin_emails_render_in_both_languages() {
        let renderer = Renderer::new(&Templates::default()).unwrap();
        for name in beslut_engine::templates::BUILTIN {
            for lang in [Lang::Sv, Lang::En] {
                let email = renderer.render(name, &context(lang)).unwrap();
                let html = email.html.clone().unwrap_or_default();
                assert!(!email.subject.contains('\n') && !email.subject.is_empty());
                assert!(email.text.contains("IT 2026/0042"), "{name}: {}", email.text);
                assert!(!email.text.contains("&amp;"), "text parts are not HTML-escaped: {name}");
                assert!(html.contains("&amp;") && !html.contains("<script"), "{name}: HTML escapes and has no scripts");
                let lang_code = if lang == Lang::Sv { "sv" } else { "en" };
                let snapshot = format!("SUBJECT: {}\n\n{}\n\n---- HTML ----\n{}", email.subject, email.text, html);
                insta::assert_snapshot!(format!("{name}-{lang_code}"), snapshot);
            }
        }
    }

    #[test]
    fn task_emails_carry_one_link_per_action() {
        let renderer = Renderer::new(&Templates::default()).unwrap();
        let email = renderer.render("task", &context(Lang::Sv)).unwrap();
        for url in ["/d/abc.def", "/d/ghi.jkl"] {
            assert!(email.text.contains(url) && email.html.as_deref().unwrap().contains(url));
        }
        assert!(email.text.contains("Erik Nyström"), "a substitute is told for whom");
    }
}
