//! `beslut test`: scenario files run on the in-memory runtime, with a report, coverage of
//! states, actions and transitions, the emails staff would get, JUnit output, and a mutation
//! test of the scenarios themselves.
//!
//! - [`file`]: reading scenario files, with diagnostics like `beslut check`.
//! - [`run`]: one scenario on `runtime::sim`.
//! - [`coverage`]: what the scenarios reached, from the audit trail.
//! - [`report`]: text, JUnit, email snapshots and coverage graphs.
//! - [`mutate`]: each transition pointed elsewhere in turn; the scenarios must notice.

pub mod coverage;
pub mod file;
pub mod mutate;
pub mod report;
pub mod run;

use beslut_engine::definition::model::Definition;
use beslut_engine::diagnostic::{Lang, Report};
use beslut_engine::project::Project;
use beslut_notifications::render::Renderer;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The options of `beslut test`.
pub struct Options {
    pub paths: Vec<PathBuf>,
    /// The folder to test when no path is given.
    pub default_dir: PathBuf,
    pub lang: Lang,
    pub junit: bool,
    pub min_coverage: Option<f64>,
    pub coverage_dir: Option<PathBuf>,
    pub emails_dir: Option<PathBuf>,
    pub mutations: bool,
}

/// A scenario's result.
pub struct Ran {
    pub scenario: file::Scenario,
    pub outcome: run::Outcome,
    pub time: Duration,
}

pub fn command(options: &Options) -> Result<ExitCode, String> {
    let paths = if options.paths.is_empty() { vec![options.default_dir.clone()] } else { options.paths.clone() };
    let dir = workflows_dir(&paths)?;
    let mut project = Project::load(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let files = scenario_files(&dir, &paths)?;
    if !project.is_valid() {
        eprint!("{}", project.render(options.lang));
        return Ok(ExitCode::from(2));
    }
    let (scenarios, reports) = read_all(&files, &project)?;
    if reports.iter().any(|(r, _)| r.has_errors()) {
        for (report, source) in &reports {
            for d in &report.items {
                eprintln!("{}", d.render(Some(source), options.lang));
            }
        }
        return Ok(ExitCode::from(2));
    }
    if scenarios.is_empty() {
        return Err(format!("no scenario files in {}", paths_text(&paths)));
    }
    let renderer = Renderer::new(&project.templates).map_err(|e| e.to_string())?;
    let results = run_all(&project, &renderer, scenarios, options.lang);
    let tested = tested_workflows(&project, &dir, &paths, &results);
    let coverage: Vec<coverage::Coverage> = coverage_of(&project, &tested, &results);
    let out = report::Out { lang: options.lang, results: &results, coverage: &coverage };
    if options.junit {
        print!("{}", out.junit());
        eprint!("{}", out.text());
    } else {
        print!("{}", out.text());
    }
    if let Some(dir) = &options.emails_dir {
        out.write_emails(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    if let Some(dir) = &options.coverage_dir {
        out.write_graphs(&project, dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut ok = results.iter().all(|r| r.outcome.failure.is_none());
    if let Some(min) = options.min_coverage {
        ok &= out.coverage_holds(min);
    }
    if options.mutations {
        let scenarios: Vec<file::Scenario> = results.into_iter().map(|r| r.scenario).collect();
        let result = mutate::run(&mut project, &renderer, &scenarios, &tested);
        print!("{}", result.text(options.lang));
        ok &= result.survivors.is_empty();
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The workflows folder the paths belong to: the nearest folder, from each path up, that has
/// a `tests` folder beside workflow files.
fn workflows_dir(paths: &[PathBuf]) -> Result<PathBuf, String> {
    let mut found: Option<PathBuf> = None;
    for path in paths {
        if !path.exists() {
            return Err(format!("{} does not exist", path.display()));
        }
        let dir = path
            .ancestors()
            .find(|p| p.is_dir() && p.join("tests").is_dir() && p.file_name().is_none_or(|n| n != "tests"))
            .map(Path::to_path_buf)
            .ok_or_else(|| {
                format!("{} is not in a workflows folder with a tests/ folder of scenarios", path.display())
            })?;
        match &found {
            Some(other) if *other != dir => {
                return Err(format!("{} and {} are in different workflows folders", other.display(), dir.display()));
            }
            _ => found = Some(dir),
        }
    }
    found.ok_or_else(|| "no path given".into())
}

/// Every scenario file under the paths (a workflows folder means its `tests/` folder).
fn scenario_files(dir: &Path, paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        let root = if path == dir || same(path, dir) { dir.join("tests") } else { path.clone() };
        collect(&root, &mut files).map_err(|e| format!("{}: {e}", root.display()))?;
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn same(a: &Path, b: &Path) -> bool {
    a.canonicalize().ok().zip(b.canonicalize().ok()).is_some_and(|(a, b)| a == b)
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_file() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(path)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(path);
        }
    }
    Ok(())
}

type Reports = Vec<(Report, String)>;

fn read_all(files: &[PathBuf], project: &Project) -> Result<(Vec<file::Scenario>, Reports), String> {
    let mut scenarios = Vec::new();
    let mut reports = Vec::new();
    for path in files {
        let (scenario, report, source) = file::read(path, project).map_err(|e| format!("{}: {e}", path.display()))?;
        scenarios.extend(scenario);
        reports.push((report, source));
    }
    Ok((scenarios, reports))
}

fn definitions(project: &Project) -> Vec<Definition> {
    project.workflows.iter().filter_map(|w| w.definition.clone()).collect()
}

pub fn run_all(project: &Project, renderer: &Renderer, scenarios: Vec<file::Scenario>, lang: Lang) -> Vec<Ran> {
    let definitions = definitions(project);
    scenarios
        .into_iter()
        .map(|scenario| {
            let started = Instant::now();
            let outcome = run::run(project, &definitions, renderer, &scenario, lang);
            Ran { scenario, outcome, time: started.elapsed() }
        })
        .collect()
}

/// The workflows coverage is reported for: all of them when the whole folder is tested
/// (a workflow without scenarios then shows as 0 %), else those the scenarios ran.
fn tested_workflows(project: &Project, dir: &Path, paths: &[PathBuf], results: &[Ran]) -> Vec<String> {
    let whole = paths.iter().any(|p| same(p, dir) || same(p, &dir.join("tests")));
    let mut ids: Vec<String> = if whole {
        project.workflows.iter().map(|w| w.id.clone()).collect()
    } else {
        results.iter().map(|r| r.scenario.workflow.clone()).collect()
    };
    ids.sort();
    ids.dedup();
    ids
}

fn coverage_of(project: &Project, tested: &[String], results: &[Ran]) -> Vec<coverage::Coverage> {
    let mut trace = coverage::Trace::default();
    for r in results {
        trace.merge(&r.outcome.trace);
    }
    tested
        .iter()
        .filter_map(|id| project.workflow(id)?.definition.as_ref())
        .map(|def| coverage::Coverage::of(def, trace.workflows.get(&def.id)))
        .collect()
}

fn paths_text(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}
