//! Email template files under `workflows/templates/NAME/` and the variables they use.
//!
//! Rendering lives in the notifications crate; the engine only needs to know which templates
//! exist and which case fields they read, so that `beslut check` can catch a misspelt
//! `{{data.x}}` before an email goes out with a hole in it.

use crate::diagnostic::{Msg, Report};
use crate::msg;
use crate::yaml::Pos;
use handlebars::template::{Parameter, Template, TemplateElement};
use std::collections::BTreeMap;
use std::path::Path;

/// Templates every installation has; a folder of the same name overrides one.
pub const BUILTIN: [&str; 6] = ["task", "reminder", "escalation", "decided", "delegated", "closed"];

/// The names the context of every email offers at the top level.
pub const ROOTS: [&str; 9] = ["case", "data", "fields", "task", "recipient", "actions", "decision", "sender", "lang"];

/// The keys under each object of the context (`case.number`, `task.deadline`, …). The
/// notifications crate builds the context; its tests check that it has exactly these keys.
pub const OBJECT_KEYS: [(&str, &[&str]); 5] = [
    ("case", &["number", "title", "workflow_name", "url", "state_label", "outcome_label"]),
    ("task", &["label", "description", "deadline", "url", "escalated", "on_behalf_of"]),
    ("recipient", &["name", "email"]),
    ("decision", &["action", "by", "comment", "at"]),
    ("sender", &["name"]),
];

/// One template file: `subject.sv.hbs`, `text.en.hbs`, …
#[derive(Clone, Debug)]
pub struct TemplateFile {
    pub path: String,
    pub part: String,
    pub lang: String,
    pub source: String,
    /// What [`template_uses`] finds in `source`, worked out once: every workflow that names
    /// the template is checked against it, and compiling it again for each was a tenth of
    /// `beslut check` on a thousand files.
    pub uses: Vec<Use>,
}

/// The template folders found in a workflows directory.
#[derive(Clone, Debug, Default)]
pub struct Templates {
    pub folders: BTreeMap<String, Vec<TemplateFile>>,
}

/// A variable a template reads, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Use {
    pub path: String,
    pub pos: Pos,
}

impl Templates {
    /// Reads `DIR/templates/*/*.hbs`; a missing folder means no custom templates.
    pub fn load(workflows_dir: &Path) -> std::io::Result<Templates> {
        let mut folders = BTreeMap::new();
        let root = workflows_dir.join("templates");
        let Ok(dirs) = std::fs::read_dir(&root) else { return Ok(Templates::default()) };
        for dir in dirs {
            let dir = dir?.path();
            if !dir.is_dir() {
                continue;
            }
            let name = dir.file_name().unwrap_or_default().to_string_lossy().to_string();
            let mut files = Vec::new();
            for file in std::fs::read_dir(&dir)? {
                let path = file?.path();
                let file_name = path.file_name().unwrap_or_default().to_string_lossy().to_string();
                let parts: Vec<&str> = file_name.split('.').collect();
                if let [part, lang, "hbs"] = parts.as_slice() {
                    let source = std::fs::read_to_string(&path)?;
                    files.push(TemplateFile {
                        path: path.display().to_string(),
                        part: part.to_string(),
                        lang: lang.to_string(),
                        uses: template_uses(&source),
                        source,
                    });
                }
            }
            files.sort_by(|a, b| a.path.cmp(&b.path));
            folders.insert(name, files);
        }
        Ok(Templates { folders })
    }

    pub fn exists(&self, name: &str) -> bool {
        BUILTIN.contains(&name) || self.folders.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> + Clone {
        BUILTIN.iter().copied().chain(self.folders.keys().map(String::as_str))
    }

    /// Checks each folder's files: parts and languages named right, Handlebars that compiles,
    /// and a Swedish subject and text. Each file gets its own report.
    pub fn check(&self) -> Vec<Report> {
        let mut reports = Vec::new();
        for (name, files) in &self.folders {
            for file in files {
                let mut r = Report::new(&file.path);
                if !["subject", "text", "html"].contains(&file.part.as_str())
                    || !["sv", "en"].contains(&file.lang.as_str())
                {
                    r.error(
                        Pos { line: 1, column: 1 },
                        "invalid-value",
                        Msg::new("mallfilen har fel namn", "the template file is misnamed"),
                        Some(Msg::new(
                            "döp den till subject.sv.hbs, text.sv.hbs, html.sv.hbs eller samma med .en.",
                            "name it subject.sv.hbs, text.sv.hbs, html.sv.hbs or the same with .en.",
                        )),
                    );
                }
                if let Err(err) = Template::compile(&file.source) {
                    let (line, column) = err.pos().unwrap_or((1, 1));
                    let pos = Pos { line: line as u32, column: column as u32 };
                    let reason = err.reason().to_string();
                    r.error(
                        pos,
                        "template-syntax",
                        msg!("mallen går inte att läsa: {reason}", "the template cannot be read: {reason}"),
                        None,
                    );
                }
                reports.push(r);
            }
            for part in ["subject", "text"] {
                if !files.iter().any(|f| f.part == part && f.lang == "sv") {
                    let mut r = Report::new(format!("templates/{name}"));
                    r.error(
                        Pos { line: 1, column: 1 },
                        "missing-key",
                        msg!("mallen `{name}` saknar `{part}.sv.hbs`", "the template `{name}` has no `{part}.sv.hbs`"),
                        Some(Msg::new(
                            "svenska är standardspråket och måste alltid finnas",
                            "Swedish is the default language and must always be there",
                        )),
                    );
                    reports.push(r);
                }
            }
        }
        reports
    }

    /// Every variable the files of template `name` read outside `#each`/`#with` blocks, plus
    /// every `data.…` read anywhere, with the file it is in.
    pub fn uses(&self, name: &str) -> Vec<(&TemplateFile, Use)> {
        let Some(files) = self.folders.get(name) else { return Vec::new() };
        files.iter().flat_map(|file| file.uses.iter().map(move |u| (file, u.clone()))).collect()
    }
}

/// The variables one template source reads (empty when it does not compile).
pub fn template_uses(source: &str) -> Vec<Use> {
    let Ok(template) = Template::compile(source) else { return Vec::new() };
    let mut out = Vec::new();
    collect(&template, true, &mut out);
    out
}

fn collect(template: &Template, top: bool, out: &mut Vec<Use>) {
    for (i, element) in template.elements.iter().enumerate() {
        let pos = template.mapping.get(i).map_or(Pos::default(), |m| Pos { line: m.0 as u32, column: m.1 as u32 });
        match element {
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                if h.params.is_empty() && h.hash.is_empty() {
                    push_param(&h.name, top, pos, out);
                }
                h.params.iter().for_each(|p| push_param(p, top, pos, out));
            }
            TemplateElement::HelperBlock(h) => {
                h.params.iter().for_each(|p| push_param(p, top, pos, out));
                let changes_context = matches!(&h.name, Parameter::Name(n) if n == "each" || n == "with");
                for inner in [&h.template, &h.inverse].into_iter().flatten() {
                    collect(inner, top && !changes_context, out);
                }
            }
            _ => {}
        }
    }
}

fn push_param(param: &Parameter, top: bool, pos: Pos, out: &mut Vec<Use>) {
    let raw = match param {
        Parameter::Path(path) => format!("{path:?}"),
        Parameter::Name(name) => name.clone(),
        _ => return,
    };
    let Some(path) = raw_path(&raw) else { return };
    if top || path.starts_with("data.") {
        out.push(Use { path, pos });
    }
}

/// The dotted path of a Handlebars parameter, e.g. `data.rubrik`; `None` for `this`, `@index`,
/// helper names with arguments and the like.
fn raw_path(debug: &str) -> Option<String> {
    // `Path` only exposes its raw text through Debug: `Relative(([Named("a"), …], "a.b"))`.
    let raw = if debug.starts_with("Relative(") {
        let end = debug.rfind('"')?;
        let start = debug[..end].rfind('"')? + 1;
        debug[start..end].to_string()
    } else if debug.starts_with("Local(") {
        return None;
    } else {
        debug.to_string()
    };
    let raw = raw.replace('/', ".");
    (!raw.is_empty() && raw != "this" && !raw.starts_with('@') && !raw.starts_with("..")).then_some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_data_paths_and_roots() {
        let uses = template_uses(
            "Hej {{recipient.name}}!\n{{#if data.akut}}AKUT {{data.rubrik}}{{/if}}\n{{#each actions}}{{label}} {{data.x}}{{/each}}",
        );
        let paths: Vec<&str> = uses.iter().map(|u| u.path.as_str()).collect();
        assert_eq!(paths, ["recipient.name", "data.akut", "data.rubrik", "actions", "data.x"]);
        assert_eq!(uses[0].pos.line, 1);
    }
}
