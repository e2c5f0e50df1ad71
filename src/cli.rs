//! The `beslut` command line.

use beslut_engine::diagnostic::Lang;
use beslut_engine::graph::{self, Format, Highlight};
use beslut_engine::project::Project;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "beslut", version, about = "Arbetsflöden för kommunala beslut – workflows for municipal decisions")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check workflow files and report every problem (exit 0 valid, 1 errors, 2 usage).
    Check {
        /// Workflow files or folders (default: the workflows folder).
        paths: Vec<PathBuf>,
        /// The folder with directory.yaml, portfolios.yaml and templates/ (default: the folder
        /// given, or the folder of the file given).
        #[arg(long, env = "BESLUT_WORKFLOWS")]
        workflows_dir: Option<PathBuf>,
        /// Language of the messages.
        #[arg(long, value_enum, default_value = "sv")]
        lang: LangArg,
        /// `text` for people, `json` for tools (one object per line).
        #[arg(long, value_enum, default_value = "text")]
        format: CheckFormat,
    },
    /// Draw a workflow's state graph.
    Graph {
        /// The workflow file.
        file: PathBuf,
        #[arg(long, value_enum, default_value = "svg")]
        format: GraphFormat,
        #[arg(long, value_enum, default_value = "sv")]
        lang: LangArg,
        /// Where to write (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Print the JSON Schema of the workflow format, for editors.
    Schema,
}

#[derive(Clone, Copy, ValueEnum)]
enum LangArg {
    Sv,
    En,
}

impl From<LangArg> for Lang {
    fn from(value: LangArg) -> Lang {
        match value {
            LangArg::Sv => Lang::Sv,
            LangArg::En => Lang::En,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum CheckFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
    Svg,
}

/// Runs the command line and returns the process's exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { paths, workflows_dir, lang, format } => check(&paths, workflows_dir, lang.into(), format),
        Command::Graph { file, format, lang, output } => draw(&file, format, lang.into(), output),
        Command::Schema => print(&crate::schema::workflow_schema()),
    };
    result.unwrap_or_else(|message| {
        eprintln!("beslut: {message}");
        ExitCode::from(2)
    })
}

fn print(text: &str) -> Result<ExitCode, String> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// Loads the folder `dir`, checking only `files` if given.
fn load(dir: &Path, files: Option<&[PathBuf]>) -> Result<Project, String> {
    Project::load_files(dir, files)
        .map_err(|e| format!("kan inte läsa {}: {e} / cannot read {}: {e}", dir.display(), dir.display()))
}

fn check(
    paths: &[PathBuf],
    workflows_dir: Option<PathBuf>,
    lang: Lang,
    format: CheckFormat,
) -> Result<ExitCode, String> {
    let paths = if paths.is_empty() { vec![PathBuf::from("workflows")] } else { paths.to_vec() };
    let mut valid = true;
    let mut counts = (0, 0, 0);
    for path in &paths {
        if !path.exists() {
            return Err(format!("{} finns inte / does not exist", path.display()));
        }
        let project = if path.is_dir() {
            load(workflows_dir.as_deref().unwrap_or(path), None)?
        } else {
            let dir =
                workflows_dir.clone().unwrap_or_else(|| path.parent().map_or(PathBuf::from("."), Path::to_path_buf));
            load(&dir, Some(std::slice::from_ref(path)))?
        };
        valid &= project.is_valid();
        report(&project, lang, format);
        let items = project.reports.iter().flat_map(|r| &r.items);
        counts.0 += project.workflows.len();
        for d in items {
            if d.is_error() {
                counts.1 += 1;
            } else {
                counts.2 += 1;
            }
        }
    }
    if matches!(format, CheckFormat::Text) {
        let (files, errors, warnings) = counts;
        match lang {
            Lang::Sv => {
                let noun = if files == 1 { "arbetsflöde kontrollerat" } else { "arbetsflöden kontrollerade" };
                let warn = if warnings == 1 { "varning" } else { "varningar" };
                eprintln!("{files} {noun}: {errors} fel, {warnings} {warn}");
            }
            Lang::En => {
                let noun = if files == 1 { "workflow" } else { "workflows" };
                let (e, w) =
                    (if errors == 1 { "error" } else { "errors" }, if warnings == 1 { "warning" } else { "warnings" });
                eprintln!("{files} {noun} checked: {errors} {e}, {warnings} {w}");
            }
        }
    }
    Ok(if valid { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn report(project: &Project, lang: Lang, format: CheckFormat) {
    match format {
        CheckFormat::Text => print!("{}", project.render(lang)),
        CheckFormat::Json => {
            for d in project.reports.iter().flat_map(|r| &r.items) {
                println!("{}", d.to_json(lang));
            }
        }
    }
}

fn draw(file: &Path, format: GraphFormat, lang: Lang, output: Option<PathBuf>) -> Result<ExitCode, String> {
    let dir = file.parent().map_or(PathBuf::from("."), Path::to_path_buf);
    let files = [file.to_path_buf()];
    let project = load(&dir, Some(&files))?;
    let Some(definition) = project.workflows.first().and_then(|w| w.definition.as_ref()) else {
        eprint!("{}", project.render(lang));
        return Ok(ExitCode::from(1));
    };
    let format = match format {
        GraphFormat::Dot => Format::Dot,
        GraphFormat::Mermaid => Format::Mermaid,
        GraphFormat::Svg => Format::Svg,
    };
    let text = graph::render(definition, format, lang, &Highlight::default());
    match output {
        Some(path) => std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?,
        None => print(&text).map(|_| ())?,
    }
    Ok(ExitCode::SUCCESS)
}
