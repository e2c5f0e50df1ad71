//! A workflows folder as a whole: the workflow files, the directory, the frame files and the
//! email templates, loaded and checked together.

use crate::definition::check::{self, Context};
use crate::definition::model::Definition;
use crate::definition::parse;
use crate::diagnostic::{Msg, Report};
use crate::directory::{self, Directory};
use crate::portfolios::{self, Portfolios};
use crate::templates::Templates;
use crate::yaml::{self, Node, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The file that holds people and roles.
pub const DIRECTORY_FILE: &str = "directory.yaml";

/// A workflow file as read from disk.
#[derive(Clone, Debug)]
pub struct WorkflowFile {
    pub id: String,
    pub path: PathBuf,
    pub source: String,
    /// SHA-256 of the file's bytes: the identity of this version of the workflow.
    pub hash: String,
    pub definition: Option<Definition>,
}

/// A loaded workflows folder and every diagnostic found in it.
#[derive(Debug, Default)]
pub struct Project {
    pub dir: PathBuf,
    pub directory: Directory,
    pub frames: Vec<(String, Portfolios)>,
    pub templates: Templates,
    pub workflows: Vec<WorkflowFile>,
    /// One report per file that was read (workflows, directory, frames, templates).
    pub reports: Vec<Report>,
    /// The text of every file read, for rendering diagnostics with their source line.
    pub sources: Vec<(String, String)>,
    /// Diagnostics of files whose last good version is still in use (see
    /// [`Project::keep_valid_from`]).
    pub kept_reports: Vec<Report>,
}

impl Project {
    /// Loads and checks every file of `dir`. Only I/O failures are errors; problems in the
    /// files are diagnostics in `reports`.
    pub fn load(dir: &Path) -> std::io::Result<Project> {
        Project::load_files(dir, None)
    }

    /// Like [`Project::load`], but checks only the named workflow files (the folder's directory,
    /// frames and templates are still read, as the workflows refer to them).
    pub fn load_files(dir: &Path, only: Option<&[PathBuf]>) -> std::io::Result<Project> {
        let mut project = Project { dir: dir.to_path_buf(), ..Project::default() };
        // Each workflow file is parsed once, here, and checked with the tree kept: parsing is
        // most of what `check` costs.
        let mut workflows = Vec::new();
        let files = yaml_files(dir)?
            .into_iter()
            .map(|path| std::fs::read_to_string(&path).map(|source| (path, source)))
            .collect::<std::io::Result<Vec<_>>>()?;
        let trees = in_parallel(files.iter().collect(), |(_, source): &(PathBuf, String)| yaml::parse(source));
        for ((path, source), tree) in files.into_iter().zip(trees) {
            let shown = path.display().to_string();
            let is_directory = path.file_name().is_some_and(|n| n == DIRECTORY_FILE);
            match tree {
                Ok(node) if is_directory => project.read_directory(&shown, &node),
                Ok(node) if is_frames_file(&node) => project.read_frames(&path, &shown, &node),
                parsed => workflows.push((path.clone(), source.clone(), parsed)),
            }
            project.sources.push((shown, source));
        }
        let mut ids: Vec<String> = workflows.iter().filter_map(|(p, _, _)| workflow_id(p)).collect();
        if let Some(only) = only {
            for path in only {
                if !workflows.iter().any(|(p, _, _)| same_file(p, path)) {
                    let source = std::fs::read_to_string(path)?;
                    project.sources.push((path.display().to_string(), source.clone()));
                    let parsed = yaml::parse(&source);
                    workflows.push((path.clone(), source, parsed));
                    ids.extend(workflow_id(path));
                }
            }
            workflows.retain(|(p, _, _)| only.iter().any(|o| same_file(p, o)));
        }
        project.templates = Templates::load(dir)?;
        project.reports.extend(project.templates.check());
        let checked =
            in_parallel(workflows, |(path, source, parsed)| project.read_workflow(&path, source, parsed, &ids));
        for (file, report) in checked {
            project.reports.push(report);
            project.workflows.push(file);
        }
        Ok(project)
    }

    fn source_of(&self, shown: &str) -> Option<&str> {
        self.sources.iter().find(|(name, _)| name == shown).map(|(_, s)| s.as_str())
    }

    fn read_directory(&mut self, shown: &str, node: &Node) {
        let mut r = Report::new(shown);
        self.directory = directory::parse(&mut r, node);
        self.reports.push(r);
    }

    fn read_frames(&mut self, path: &Path, shown: &str, node: &Node) {
        let mut r = Report::new(shown);
        let frames = portfolios::parse(&mut r, node);
        let name = path.file_name().unwrap_or_default().to_string_lossy().to_string();
        self.frames.push((name, frames));
        self.reports.push(r);
    }

    /// Parses and checks one workflow file against the rest of the project.
    fn read_workflow(
        &self,
        path: &Path,
        source: String,
        parsed: Result<Node, yaml::SyntaxError>,
        ids: &[String],
    ) -> (WorkflowFile, Report) {
        let shown = path.display().to_string();
        let id = workflow_id(path).unwrap_or_default();
        let mut r = Report::new(&shown);
        let definition = match parsed {
            Ok(node) => parse::definition(&mut r, &id, &node),
            Err(err) => {
                let message = err.message;
                r.error(
                    err.pos,
                    if message.contains("duplicate mapping key") { "duplicate-key" } else { "yaml-syntax" },
                    syntax_message(&message),
                    Some(Msg::new(
                        "kontrollera indrag (mellanslag, inte tabb), kolon och citattecken på raden och raden ovanför",
                        "check indentation (spaces, not tabs), colons and quotes on this line and the one above",
                    )),
                );
                None
            }
        };
        if let Some(def) = &definition
            && r.items.iter().all(|d| !is_structural(d.code))
        {
            let cx = Context {
                directory: &self.directory,
                frames: &self.frames,
                templates: &self.templates,
                workflows: ids,
                source: &source,
            };
            check::check(&mut r, def, &cx);
        }
        let hash = hex::encode(Sha256::digest(source.as_bytes()));
        (WorkflowFile { id, path: path.to_path_buf(), source, hash, definition }, r)
    }

    /// Keeps the last good version of what this load broke, for a running server: every
    /// workflow that was valid in `old` and has errors now is taken from `old` (its new
    /// diagnostics move to `kept_reports`, so they are still shown). Returns the ids of the
    /// workflows kept from `old`, or `None` when a shared file (directory, frames, templates)
    /// has errors: then nothing can be mixed, and `old` must stay in force as a whole.
    pub fn keep_valid_from(&mut self, old: &Project) -> Option<Vec<String>> {
        let workflow_paths: Vec<String> = self.workflows.iter().map(|w| w.path.display().to_string()).collect();
        // A directory.yaml that does not even parse is read as a workflow; it is shared all the same.
        let shared = |file: &str| {
            !workflow_paths.iter().any(|p| p == file)
                || Path::new(file).file_name().is_some_and(|n| n == DIRECTORY_FILE)
        };
        let shared_broken = self.reports.iter().any(|r| r.has_errors() && shared(&r.file));
        if shared_broken {
            return None;
        }
        let mut kept = Vec::new();
        for good in old.valid_workflows() {
            let shown = good.path.display().to_string();
            let broken = self.reports.iter().any(|r| r.file == shown && r.has_errors())
                || self.workflows.iter().any(|w| w.id == good.id && w.definition.is_none());
            if !broken {
                continue;
            }
            self.workflows.retain(|w| w.id != good.id);
            self.workflows.push(good.clone());
            let (kept_now, rest): (Vec<Report>, Vec<Report>) =
                std::mem::take(&mut self.reports).into_iter().partition(|r| r.file == shown);
            self.reports = rest;
            self.kept_reports.extend(kept_now);
            kept.push(good.id.clone());
        }
        Some(kept)
    }

    /// True when no file has an error.
    pub fn is_valid(&self) -> bool {
        self.reports.iter().all(|r| !r.has_errors())
    }

    /// The workflows that parsed and passed every check.
    pub fn valid_workflows(&self) -> impl Iterator<Item = &WorkflowFile> {
        self.workflows.iter().filter(|w| {
            w.definition.is_some()
                && self.reports.iter().filter(|r| r.file == w.path.display().to_string()).all(|r| !r.has_errors())
        })
    }

    pub fn workflow(&self, id: &str) -> Option<&WorkflowFile> {
        self.workflows.iter().find(|w| w.id == id)
    }

    /// Reads and checks new text for the workflow `id` in place of its file, as if the file had
    /// been edited: the mutation test of `beslut test` breaks a workflow this way without
    /// writing to the folder. Returns the new file's diagnostics.
    pub fn replace_workflow(&mut self, id: &str, source: String) -> Option<&Report> {
        let index = self.workflows.iter().position(|w| w.id == id)?;
        let path = self.workflows[index].path.clone();
        let shown = path.display().to_string();
        let ids: Vec<String> = self.workflows.iter().map(|w| w.id.clone()).collect();
        self.reports.retain(|r| r.file != shown);
        let parsed = yaml::parse(&source);
        let (file, report) = self.read_workflow(&path, source.clone(), parsed, &ids);
        self.reports.push(report);
        self.workflows[index] = file;
        if let Some(entry) = self.sources.iter_mut().find(|(name, _)| *name == shown) {
            entry.1 = source;
        }
        self.reports.iter().rev().find(|r| r.file == shown)
    }

    /// Renders every diagnostic, errors first within each file.
    pub fn render(&self, lang: crate::diagnostic::Lang) -> String {
        let mut out = String::new();
        for report in &self.reports {
            let source = self.source_of(&report.file);
            let mut items: Vec<_> = report.items.iter().collect();
            items.sort_by_key(|d| (d.pos, d.severity));
            for d in items {
                out.push_str(&d.render(source, lang));
                out.push('\n');
            }
        }
        out
    }
}

/// A missing state or type makes graph and reference checks say the same thing again in other
/// words; they run only when the file's structure is sound.
fn is_structural(code: &str) -> bool {
    matches!(
        code,
        "missing-key" | "wrong-type" | "yaml-syntax" | "duplicate-key" | "invalid-value" | "invalid-duration"
    )
}

fn syntax_message(message: &str) -> Msg {
    Msg::new(format!("YAML-filen går inte att läsa: {message}"), format!("the YAML file cannot be read: {message}"))
}

/// A top-level `portfolios:` key marks a frames file.
fn is_frames_file(node: &Node) -> bool {
    matches!(&node.value, Value::Map(entries) if entries.len() == 1 && entries[0].0.name == "portfolios")
}

fn workflow_id(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_string_lossy().to_string();
    if name == DIRECTORY_FILE {
        return None;
    }
    name.strip_suffix(".yaml").or_else(|| name.strip_suffix(".yml")).map(str::to_string)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// `work` on every item, results in the items' order, spread over the machine's cores:
/// parsing and checking are most of what `beslut check` costs on a large folder, and the files
/// do not depend on each other. Each thread takes the next item when it is done with one, so
/// that a run of large files does not leave one thread working alone.
fn in_parallel<T: Send, R: Send>(items: Vec<T>, work: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len());
    if threads <= 1 {
        return items.into_iter().map(work).collect();
    }
    let count = items.len();
    let queue = std::sync::Mutex::new(items.into_iter().enumerate());
    let next = || queue.lock().unwrap_or_else(|p| p.into_inner()).next();
    let (work, next) = (&work, &next);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let running: Vec<_> = (0..threads)
            .map(|_| scope.spawn(move || std::iter::from_fn(next).map(|(i, item)| (i, work(item))).collect::<Vec<_>>()))
            .collect();
        running.into_iter().flat_map(|t| t.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    debug_assert_eq!(done.len(), count);
    done.into_iter().map(|(_, r)| r).collect()
}

/// The `.yaml` and `.yml` files directly in `dir`, sorted by name.
fn yaml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if path.is_file() && is_yaml {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
