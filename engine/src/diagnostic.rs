//! Diagnostics: what is wrong in a file, where, and how to fix it, in Swedish and English.

use crate::yaml::Pos;
use serde::Serialize;
use std::fmt::Write as _;

/// The language diagnostics, pages and emails are shown in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Sv,
    En,
}

impl Lang {
    /// Parses `sv` or `en` (as in `--lang` and the directory's `language`).
    pub fn parse(text: &str) -> Option<Lang> {
        match text {
            "sv" => Some(Lang::Sv),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

/// A message in both languages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub sv: String,
    pub en: String,
}

impl Msg {
    pub fn new(sv: impl Into<String>, en: impl Into<String>) -> Msg {
        Msg { sv: sv.into(), en: en.into() }
    }

    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Sv => &self.sv,
            Lang::En => &self.en,
        }
    }
}

/// Builds a [`Msg`] from two format strings sharing the same arguments in scope.
#[macro_export]
macro_rules! msg {
    ($sv:expr, $en:expr $(,)?) => {
        $crate::diagnostic::Msg::new(format!($sv), format!($en))
    };
    ($sv:expr, $en:expr, $($name:ident = $value:expr),+ $(,)?) => {{
        $(let $name = $value;)+
        $crate::diagnostic::Msg::new(format!($sv), format!($en))
    }};
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub pos: Pos,
    pub severity: Severity,
    /// A stable, kebab-case code such as `unknown-state`; tests and tools match on it.
    pub code: &'static str,
    pub message: Msg,
    pub help: Option<Msg>,
    /// How many characters the marker covers; by default the token at the position.
    pub width: Option<u32>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The diagnostic as one JSON object (`beslut check --format json`).
    pub fn to_json(&self, lang: Lang) -> serde_json::Value {
        serde_json::json!({
            "file": self.file,
            "line": self.pos.line,
            "column": self.pos.column,
            "severity": self.severity,
            "code": self.code,
            "message": self.message.get(lang),
            "help": self.help.as_ref().map(|h| h.get(lang)),
        })
    }

    /// Renders like a compiler: header, location, the source line with a marker, and help.
    pub fn render(&self, source: Option<&str>, lang: Lang) -> String {
        let mut out = String::new();
        let kind = match (self.severity, lang) {
            (Severity::Error, Lang::Sv) => "fel",
            (Severity::Error, Lang::En) => "error",
            (Severity::Warning, Lang::Sv) => "varning",
            (Severity::Warning, Lang::En) => "warning",
        };
        let _ = writeln!(out, "{kind}[{}]: {}", self.code, self.message.get(lang));
        let _ = writeln!(out, "  --> {}:{}:{}", self.file, self.pos.line, self.pos.column);
        if let Some(line) = source.and_then(|s| s.lines().nth(self.pos.line.saturating_sub(1) as usize)) {
            let number = self.pos.line.to_string();
            let pad = " ".repeat(number.len());
            let column = self.pos.column.max(1) as usize;
            let indent: String = line.chars().take(column - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            let width = self.width.map_or_else(|| token_width(line, column), |w| w.max(1) as usize);
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{number} | {line}");
            let _ = writeln!(out, "{pad} | {indent}{}", "^".repeat(width));
        }
        if let Some(help) = &self.help {
            let label = if lang == Lang::Sv { "hjälp" } else { "help" };
            let _ = writeln!(out, "  = {label}: {}", help.get(lang));
        }
        out
    }
}

/// The width of the token starting at `column` (1-based, in characters): a quoted string, a key
/// up to its colon, or a plain value up to a delimiter.
fn token_width(line: &str, column: usize) -> usize {
    let rest: Vec<char> = line.chars().skip(column - 1).collect();
    let Some(&first) = rest.first() else { return 1 };
    if first == '"' || first == '\'' {
        let end = rest.iter().skip(1).position(|&c| c == first).map_or(rest.len(), |i| i + 2);
        return end.max(1);
    }
    let mut width = 0;
    for (i, &c) in rest.iter().enumerate() {
        let key_end = c == ':' && rest.get(i + 1).is_none_or(|n| n.is_whitespace());
        if key_end || matches!(c, ',' | '}' | ']' | '#') {
            break;
        }
        width = i + 1;
    }
    let trimmed = rest[..width].iter().rev().skip_while(|c| c.is_whitespace()).count();
    trimmed.max(1)
}

/// Collects the diagnostics of one file.
#[derive(Debug)]
pub struct Report {
    pub file: String,
    pub items: Vec<Diagnostic>,
}

impl Report {
    pub fn new(file: impl Into<String>) -> Report {
        Report { file: file.into(), items: Vec::new() }
    }

    pub fn error(&mut self, pos: Pos, code: &'static str, message: Msg, help: Option<Msg>) {
        self.push(Severity::Error, pos, code, message, help);
    }

    pub fn warning(&mut self, pos: Pos, code: &'static str, message: Msg, help: Option<Msg>) {
        self.push(Severity::Warning, pos, code, message, help);
    }

    fn push(&mut self, severity: Severity, pos: Pos, code: &'static str, message: Msg, help: Option<Msg>) {
        let file = self.file.clone();
        self.items.push(Diagnostic { file, pos, severity, code, message, help, width: None });
    }

    /// Like [`Report::error`], marking exactly `width` characters (a name inside an expression).
    pub fn error_span(&mut self, pos: Pos, width: usize, code: &'static str, message: Msg, help: Option<Msg>) {
        self.error(pos, code, message, help);
        if let Some(last) = self.items.last_mut() {
            last.width = Some(width as u32);
        }
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }
}

/// The closest of `candidates` to `name`, if it is close enough to be a likely typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(distance, c)| *distance <= (c.chars().count().max(name.chars().count()) / 3).max(1) && *distance > 0)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// "did you mean `x`?" when there is a close candidate, otherwise a list of what is allowed.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str> + Clone) -> Msg {
    match closest(name, candidates.clone()) {
        Some(best) => msg!("menade du `{best}`?", "did you mean `{best}`?"),
        None => {
            let mut all: Vec<&str> = candidates.into_iter().collect();
            all.sort_unstable();
            if all.is_empty() {
                Msg::new("det finns inga att välja på här", "there are none to choose from here")
            } else {
                let list = all.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
                msg!("möjliga värden: {list}", "possible values: {list}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_the_whole_token() {
        assert_eq!(token_width("    to: granskng  # kommentar", 9), 8);
        assert_eq!(token_width("  lable: Text", 3), 5);
        assert_eq!(token_width("  if: 'a == \"b\"'", 7), 10);
        assert_eq!(token_width("  x: {to: a, y: b}", 11), 1);
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(closest("granskng", ["granskning", "beslut"]), Some("granskning"));
        assert_eq!(closest("lable", ["label", "type"]), Some("label"));
        assert_eq!(closest("xyz", ["granskning", "beslut"]), None);
    }
}
