//! What `beslut test` shows: a readable report, JUnit XML, the emails per step and the
//! coverage graphs.

use super::Ran;
use super::coverage::{Coverage, percent};
use super::run::{Failure, kind_word};
use beslut_engine::diagnostic::Lang;
use beslut_engine::graph::{self, Format};
use beslut_engine::project::Project;
use std::fmt::Write;
use std::path::Path;

pub struct Out<'a> {
    pub lang: Lang,
    pub results: &'a [Ran],
    pub coverage: &'a [Coverage],
}

fn t(lang: Lang, sv: &'static str, en: &'static str) -> &'static str {
    if lang == Lang::Sv { sv } else { en }
}

impl Out<'_> {
    pub fn text(&self) -> String {
        let lang = self.lang;
        let mut out = String::new();
        for r in self.results {
            let name = short_name(&r.scenario.path);
            let steps = r.scenario.steps.len();
            match &r.outcome.failure {
                None => {
                    let _ = writeln!(out, "ok    {name} — {} ({steps} {})", r.scenario.name, t(lang, "steg", "steps"));
                }
                Some(f) => {
                    let _ = writeln!(out, "{}  {name} — {}", t(lang, "FEL ", "FAIL"), r.scenario.name);
                    out.push_str(&failure_text(f, &r.scenario.shown, &r.scenario.source, lang));
                }
            }
        }
        let failed = self.results.iter().filter(|r| r.outcome.failure.is_some()).count();
        let _ = writeln!(
            out,
            "\n{} {}, {} {}, {} {}\n",
            self.results.len(),
            t(lang, "scenarier", "scenarios"),
            self.results.len() - failed,
            t(lang, "godkända", "passed"),
            failed,
            t(lang, "underkända", "failed"),
        );
        out.push_str(&self.coverage_text());
        out
    }

    fn coverage_text(&self) -> String {
        let lang = self.lang;
        let mut out = String::new();
        let width = self.coverage.iter().map(|c| c.workflow.len()).max().unwrap_or(10).max(12);
        let _ = writeln!(
            out,
            "{:width$}  {:>16}  {:>16}  {:>16}",
            t(lang, "täckning", "coverage"),
            t(lang, "tillstånd", "states"),
            t(lang, "åtgärder", "actions"),
            t(lang, "övergångar", "transitions"),
        );
        for c in self.coverage {
            let _ = writeln!(
                out,
                "{:width$}  {:>16}  {:>16}  {:>16}",
                c.workflow,
                ratio(c.states),
                ratio(c.actions),
                ratio(c.transitions)
            );
        }
        for c in self.coverage {
            let missed = !c.missed_states.is_empty() || !c.missed_edges.is_empty() || !c.missed_actions.is_empty();
            if !missed {
                continue;
            }
            let _ = writeln!(out, "\n{} {}:", t(lang, "ej nått i", "not reached in"), c.workflow);
            for s in &c.missed_states {
                let _ = writeln!(out, "  {} {s}", t(lang, "tillstånd", "state"));
            }
            for (from, via, to, line) in &c.missed_edges {
                let _ = writeln!(
                    out,
                    "  {} {from} → {to} ({via}, {} {line})",
                    t(lang, "övergång", "transition"),
                    t(lang, "rad", "line")
                );
            }
            for a in &c.missed_actions {
                let _ = writeln!(out, "  {} {a}", t(lang, "åtgärd", "action"));
            }
        }
        out
    }

    /// True when every workflow's state and transition coverage reaches `min` per cent; says
    /// which do not.
    pub fn coverage_holds(&self, min: f64) -> bool {
        let low: Vec<&Coverage> = self.coverage.iter().filter(|c| c.lowest() + 1e-9 < min).collect();
        for c in &low {
            eprintln!(
                "beslut test: {} {:.0} % < {min:.0} % ({})",
                c.workflow,
                c.lowest(),
                t(self.lang, "täckning under gränsen", "coverage below the minimum")
            );
        }
        low.is_empty()
    }

    /// JUnit XML: a test suite per workflow, a test case per scenario.
    pub fn junit(&self) -> String {
        let mut suites: Vec<&str> = self.results.iter().map(|r| r.scenario.workflow.as_str()).collect();
        suites.sort();
        suites.dedup();
        let failed = self.results.iter().filter(|r| r.outcome.failure.is_some()).count();
        let total: f64 = self.results.iter().map(|r| r.time.as_secs_f64()).sum();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"beslut test\" tests=\"{}\" failures=\"{failed}\" time=\"{total:.3}\">",
            self.results.len()
        );
        for suite in suites {
            let cases: Vec<&Ran> = self.results.iter().filter(|r| r.scenario.workflow == suite).collect();
            let failures = cases.iter().filter(|r| r.outcome.failure.is_some()).count();
            let time: f64 = cases.iter().map(|r| r.time.as_secs_f64()).sum();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{time:.3}\">",
                xml(suite),
                cases.len()
            );
            for r in cases {
                let _ = write!(
                    out,
                    "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\" time=\"{:.3}\"",
                    xml(suite),
                    xml(&r.scenario.name),
                    xml(&r.scenario.shown),
                    r.time.as_secs_f64()
                );
                match &r.outcome.failure {
                    None => out.push_str("/>\n"),
                    Some(f) => {
                        let message = format!(
                            "{}:{}:{}: step {} ({})",
                            r.scenario.shown, f.pos.line, f.pos.column, f.step, f.what
                        );
                        let body = failure_text(f, &r.scenario.shown, &r.scenario.source, Lang::En);
                        let _ = write!(
                            out,
                            ">\n      <failure message=\"{}\" type=\"scenario\">{}</failure>\n    </testcase>\n",
                            xml(&message),
                            xml(&body)
                        );
                    }
                }
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }

    /// One text file per scenario, `DIR/<workflow>/<file>.txt`: every email each step sent,
    /// as its recipient would read it.
    pub fn write_emails(&self, dir: &Path) -> std::io::Result<()> {
        for r in self.results {
            let folder = dir.join(&r.scenario.workflow);
            std::fs::create_dir_all(&folder)?;
            let stem = r.scenario.path.file_stem().unwrap_or_default().to_string_lossy().to_string();
            std::fs::write(folder.join(format!("{stem}.txt")), emails_text(r))?;
        }
        Ok(())
    }

    /// Each tested workflow's graph, `DIR/<workflow>.svg`, with what no scenario reached in red.
    pub fn write_graphs(&self, project: &Project, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for c in self.coverage {
            let Some(def) = project.workflow(&c.workflow).and_then(|w| w.definition.as_ref()) else { continue };
            let svg = graph::render(def, Format::Svg, self.lang, &c.highlight(def));
            std::fs::write(dir.join(format!("{}.svg", c.workflow)), svg)?;
        }
        Ok(())
    }
}

/// The failure with the scenario line it points at.
fn failure_text(f: &Failure, shown: &str, source: &str, lang: Lang) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "  {} {} ({}):", t(lang, "steg", "step"), f.step, f.what);
    for p in &f.problems {
        let _ = writeln!(out, "  --> {shown}:{}:{}", p.pos.line, p.pos.column);
        if let Some(line) = source.lines().nth(p.pos.line.saturating_sub(1) as usize) {
            let number = p.pos.line.to_string();
            let pad = " ".repeat(number.len());
            let _ = writeln!(out, "   {pad} |\n   {number} | {line}\n   {pad} |");
        }
        let _ = writeln!(out, "   {}: {}", t(lang, "förväntat", "expected"), indent(&p.expected));
        let _ = writeln!(out, "   {}:  {}", t(lang, "faktiskt", "actual  "), indent(&p.actual));
    }
    let _ = writeln!(out, "   {}: {}\n", t(lang, "ärendet", "the case"), f.case);
    out
}

fn indent(text: &str) -> String {
    text.replace('\n', "\n              ")
}

fn emails_text(r: &Ran) -> String {
    let mut out = format!("{}\n{}\n", r.scenario.name, "=".repeat(r.scenario.name.chars().count()));
    for (i, step) in r.outcome.steps.iter().enumerate() {
        if step.emails.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\nSteg {} (rad {}): {}", i + 1, step.pos.line, step.what);
        for m in &step.emails {
            let _ = writeln!(out, "\n--- {} <{}> ({})", m.to.name, m.to.email, kind_word(m.kind));
            if let Some(error) = &m.error {
                let _ = writeln!(out, "KAN INTE SKAPAS: {error}");
                continue;
            }
            let _ = writeln!(out, "Ämne: {}\n", m.subject);
            out.push_str(m.text.trim_end());
            out.push('\n');
            if !m.actions.is_empty() {
                let ids: Vec<&str> = m.actions.iter().map(|(id, _)| id.as_str()).collect();
                let _ = writeln!(out, "[åtgärder: {}]", ids.join(", "));
            }
        }
    }
    out
}

fn ratio(x: (usize, usize)) -> String {
    format!("{}/{} {:>3.0} %", x.0, x.1, percent(x))
}

/// `workflow/file.yaml` for the report lines.
fn short_name(path: &Path) -> String {
    let file = path.file_name().unwrap_or_default().to_string_lossy();
    match path.parent().and_then(Path::file_name) {
        Some(folder) => format!("{}/{file}", folder.to_string_lossy()),
        None => file.to_string(),
    }
}

/// Escaped for XML, without the control characters XML 1.0 cannot hold.
fn xml(text: &str) -> String {
    let allowed: String = text.chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\t')).collect();
    crate::web::esc(&allowed)
}
