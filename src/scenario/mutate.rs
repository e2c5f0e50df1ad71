//! The mutation test: are the scenarios strong enough to notice a broken workflow? Each
//! transition of each tested workflow is pointed at other states, one at a time, in the
//! file's text; the workflow's scenarios then run against each broken file, and at least one
//! must fail every time (up to three breaks per transition). Targets that `beslut check`
//! refuses are skipped, so that the scenarios, not the checker, are what is tested; a
//! transition with no break the checker accepts counts as caught by the checker.

use super::file::Scenario;
use super::run_all;
use beslut_engine::definition::model::{Definition, State, StateKind};
use beslut_engine::diagnostic::Lang;
use beslut_engine::project::Project;
use beslut_engine::yaml::Pos;
use beslut_notifications::render::Renderer;
use std::fmt::Write;

/// How many other targets to try before counting a break as caught by the checker.
const TARGETS_TRIED: usize = 12;
/// How many different breaks of one transition the scenarios must all notice.
const MUTANTS_PER_TRANSITION: usize = 3;

#[derive(Debug, Default)]
pub struct Mutations {
    pub tried: usize,
    pub caught_by_scenarios: usize,
    pub caught_by_check: usize,
    pub survivors: Vec<Survivor>,
}

/// A transition that could be broken without any scenario failing.
#[derive(Debug)]
pub struct Survivor {
    pub file: String,
    pub pos: Pos,
    pub from: String,
    pub via: String,
    pub to: String,
    pub mutated_to: String,
}

pub fn run(project: &mut Project, renderer: &Renderer, scenarios: &[Scenario], tested: &[String]) -> Mutations {
    let mut result = Mutations::default();
    for id in tested {
        let own: Vec<Scenario> = scenarios.iter().filter(|s| s.workflow == *id).cloned().collect();
        if !own.is_empty() {
            mutate_workflow(project, renderer, id, &own, &mut result);
        }
    }
    result
}

fn mutate_workflow(project: &mut Project, renderer: &Renderer, id: &str, own: &[Scenario], result: &mut Mutations) {
    let Some(file) = project.workflow(id) else { return };
    let (original, shown) = (file.source.clone(), file.path.display().to_string());
    let Some(def) = file.definition.clone() else { return };
    let targets = targets_in_order(&def);
    for state in &def.states {
        for edge in state.edges() {
            result.tried += 1;
            let mut broken = 0;
            let mut survivor = None;
            for target in targets.iter().filter(|s| **s != edge.to.name).take(TARGETS_TRIED) {
                let Some(text) = retarget(&original, edge.to.pos, &edge.to.name, target) else { continue };
                if project.replace_workflow(id, text).is_none_or(|r| r.has_errors()) {
                    continue;
                }
                broken += 1;
                let failed =
                    run_all(project, renderer, own.to_vec(), Lang::En).iter().any(|r| r.outcome.failure.is_some());
                if !failed {
                    survivor = Some(target.clone());
                    break;
                }
                if broken == MUTANTS_PER_TRANSITION {
                    break;
                }
            }
            match (broken, survivor) {
                (0, _) => result.caught_by_check += 1,
                (_, None) => result.caught_by_scenarios += 1,
                (_, Some(mutated_to)) => result.survivors.push(Survivor {
                    file: shown.clone(),
                    pos: edge.to.pos,
                    from: state.id.clone(),
                    via: edge.via.clone(),
                    to: edge.to.name.clone(),
                    mutated_to,
                }),
            }
        }
    }
    project.replace_workflow(id, original);
}

/// Targets for a broken transition: states where the case stops first (tasks, reviews,
/// waits, ends), then automatic ones. Pointing an arrow at a choice that leads back to where
/// it went anyway breaks nothing a person could notice; stopping states are real breaks.
fn targets_in_order(def: &Definition) -> Vec<String> {
    let automatic = |s: &&State| matches!(s.kind, StateKind::Choice(_) | StateKind::Auto(_));
    let stopping = def.states.iter().filter(|s| !automatic(s));
    stopping.chain(def.states.iter().filter(automatic)).map(|s| s.id.clone()).collect()
}

/// The file's text with the state name written at `pos` replaced by `to`; `None` when the
/// name is not found there.
pub fn retarget(source: &str, pos: Pos, name: &str, to: &str) -> Option<String> {
    let line_index = pos.line.checked_sub(1)? as usize;
    let mut lines: Vec<&str> = source.split('\n').collect();
    let line = *lines.get(line_index)?;
    let start = line.char_indices().nth(pos.column.checked_sub(1)? as usize).map(|(i, _)| i)?;
    let rest = &line[start..];
    let offset = match rest.chars().next() {
        Some(q @ ('"' | '\'')) if rest[1..].starts_with(name) => q.len_utf8(),
        _ if rest.starts_with(name) => 0,
        _ => return None,
    };
    let at = start + offset;
    let changed = format!("{}{to}{}", &line[..at], &line[at + name.len()..]);
    lines[line_index] = &changed;
    Some(lines.join("\n"))
}

impl Mutations {
    pub fn text(&self, lang: Lang) -> String {
        let sv = lang == Lang::Sv;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n{}: {} {}, {} {}, {} {}, {} {}",
            if sv { "mutationer" } else { "mutations" },
            self.tried,
            if sv { "övergångar ändrade" } else { "transitions broken" },
            self.caught_by_scenarios,
            if sv { "upptäckta av scenarier" } else { "caught by scenarios" },
            self.caught_by_check,
            if sv { "av beslut check" } else { "by beslut check" },
            self.survivors.len(),
            if sv { "oupptäckta" } else { "not caught" },
        );
        for s in &self.survivors {
            let _ = writeln!(
                out,
                "  {}:{}:{}: {} {} → {} ({}) {} {}",
                s.file,
                s.pos.line,
                s.pos.column,
                if sv { "övergången" } else { "the transition" },
                s.from,
                s.to,
                s.via,
                if sv { "kunde pekas om till" } else { "could point to" },
                s.mutated_to
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retarget_replaces_plain_and_quoted_names_only_where_written() {
        let source = "a:\n  to: beslut\n  goto: \"beslut\"\n";
        let plain = retarget(source, Pos { line: 2, column: 7 }, "beslut", "avslag").unwrap();
        assert_eq!(plain, "a:\n  to: avslag\n  goto: \"beslut\"\n");
        let quoted = retarget(source, Pos { line: 3, column: 9 }, "beslut", "avslag").unwrap();
        assert_eq!(quoted, "a:\n  to: beslut\n  goto: \"avslag\"\n");
        assert_eq!(retarget(source, Pos { line: 2, column: 3 }, "beslut", "x"), None);
    }
}
