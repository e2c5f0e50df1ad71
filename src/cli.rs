//! The `beslut` command line.

use crate::commands;
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
    /// The configuration file (default: beslut.toml, if present).
    #[arg(long, global = true, env = "BESLUT_CONFIG")]
    config: Option<PathBuf>,
    /// Folder of the SQLite file (used unless --database-url is given) [default: data].
    #[arg(long, global = true, env = "BESLUT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// `postgres://…` to use PostgreSQL instead of the embedded SQLite file.
    #[arg(long, global = true, env = "BESLUT_DATABASE_URL")]
    database_url: Option<String>,
    /// The workflows folder [default: workflows].
    #[arg(long, global = true, env = "BESLUT_WORKFLOWS")]
    workflows: Option<PathBuf>,
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
        #[arg(long)]
        workflows_dir: Option<PathBuf>,
        /// Language of the messages.
        #[arg(long, value_enum, default_value = "sv")]
        lang: LangArg,
        /// `text` for people, `json` for tools (one object per line).
        #[arg(long, value_enum, default_value = "text")]
        format: CheckFormat,
    },
    /// Run the scenario tests of workflow files (exit 0 passed, 1 failed, 2 file errors).
    Test {
        /// A workflows folder, a folder of scenarios or scenario files (default: the workflows
        /// folder).
        paths: Vec<PathBuf>,
        /// Language of the report.
        #[arg(long, value_enum, default_value = "sv")]
        lang: LangArg,
        /// `text` for people, `junit` (XML on standard output) for CI systems.
        #[arg(long, value_enum, default_value = "text")]
        format: TestFormat,
        /// Fail when state or transition coverage of a workflow is below this many per cent.
        #[arg(long, value_name = "PERCENT")]
        min_coverage: Option<f64>,
        /// Write each workflow's graph with what no scenario reached marked, as DIR/<workflow>.svg.
        #[arg(long, value_name = "DIR")]
        coverage_dir: Option<PathBuf>,
        /// Write every email each step sends, as staff would read it, to DIR/<workflow>/<scenario>.txt.
        #[arg(long, value_name = "DIR")]
        emails: Option<PathBuf>,
        /// Break each transition in turn and check that some scenario fails.
        #[arg(long)]
        mutations: bool,
    },
    /// Measure throughput as ratios to this machine's own commit rates; writes BENCHMARKS.md.
    Bench {
        /// A PostgreSQL server to measure too; a database `beslut_bench` is made afresh on it.
        #[arg(long, value_name = "URL")]
        postgres: Option<String>,
        /// Seconds each raw limit is measured.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Decisions per engine measurement.
        #[arg(long, default_value_t = 2000)]
        decisions: usize,
        /// Decisions through `beslut serve` at 64 clients (and half as many at half the rate).
        #[arg(long, default_value_t = 4000)]
        http_decisions: usize,
        /// Closed cases in the scale run's database.
        #[arg(long, default_value_t = 1_000_000)]
        closed_cases: usize,
        /// Open cases in the scale run's database.
        #[arg(long, default_value_t = 100_000)]
        open_cases: usize,
        /// Workflow files `beslut check` reads in the scale run.
        #[arg(long, default_value_t = 1000)]
        check_files: usize,
        /// Task emails sent to the local SMTP server in the email measurement.
        #[arg(long, default_value_t = 5000)]
        emails: usize,
        /// Where the SQLite files go (the disk measured).
        #[arg(long, default_value = "bench-data")]
        dir: PathBuf,
        /// The report.
        #[arg(long, default_value = "BENCHMARKS.md")]
        out: PathBuf,
        /// Only these sections (the raw limits are always measured), e.g. `--only engine,http`
        /// while profiling one of them.
        #[arg(long, value_enum, value_delimiter = ',')]
        only: Vec<crate::bench::Section>,
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
    /// Start a case: `beslut start andring-av-it --data forslag.json --as anna-berg`.
    Start {
        workflow: String,
        /// A JSON file with the case data.
        #[arg(long)]
        data: PathBuf,
        /// Who starts it: a person id from directory.yaml, or an email address.
        #[arg(long = "as")]
        who: String,
        /// Repeating a command with the same key returns the first result.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// List cases, newest first.
    Cases {
        #[arg(long)]
        workflow: Option<String>,
        #[arg(long)]
        state: Option<String>,
    },
    /// Show a case: state, open tasks and history (`--format json`: the whole case).
    Show {
        case: String,
        #[arg(long, value_enum, default_value = "text")]
        format: CheckFormat,
    },
    /// Decide a task: `beslut decide IT-2026-0001 t1 godkann --as karin-lund`.
    Decide {
        case: String,
        task: String,
        action: String,
        #[arg(long = "as")]
        who: String,
        #[arg(long)]
        comment: Option<String>,
        /// Form data as a JSON object.
        #[arg(long)]
        form: Option<String>,
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Hand a task to a colleague.
    Delegate {
        case: String,
        task: String,
        /// The colleague's id in directory.yaml.
        to: String,
        #[arg(long = "as")]
        who: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Withdraw a case (only its starter may).
    Withdraw {
        case: String,
        #[arg(long = "as")]
        who: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Move a case to another state as an administrator; the reason is recorded.
    Override {
        case: String,
        /// The state to move to.
        to: String,
        #[arg(long = "as")]
        who: String,
        /// Why; required, and kept in the audit trail.
        #[arg(long)]
        reason: String,
    },
    /// Deliver a signal to the case waiting for it.
    Signal {
        name: String,
        key: String,
        /// The signal's data as a JSON object.
        #[arg(long, default_value = "{}")]
        payload: String,
    },
    /// Apply a stream of commands (JSON lines, each with an idempotency key), printing an
    /// acknowledgement after each commit; safe to run again after a crash.
    Apply { file: PathBuf },
    /// Run the server: decision links, pages and the background workers.
    Serve {
        /// The address to listen on [default: 127.0.0.1:8080].
        #[arg(long, env = "BESLUT_LISTEN")]
        listen: Option<String>,
    },
    /// API tokens: `beslut token create NAME --scopes read,start`, `list`, `revoke NAME`.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Run every worker once: due timers, sub-cases, then email (SMTP from BESLUT_SMTP_HOST,
    /// else .eml files in the data folder).
    Work,
    /// Timers: `beslut timers run [--at 2026-12-01T08:00:00Z]` fires those due.
    Timers {
        #[command(subcommand)]
        action: TimersAction,
    },
    /// The audit trail: `beslut audit verify [CASE]`.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create a token and print it once; only its hash is kept.
    Create {
        /// What the token is for, e.g. the system that uses it.
        name: String,
        /// Comma-separated: read, start, decide, admin.
        #[arg(long, value_delimiter = ',', default_value = "read")]
        scopes: Vec<String>,
    },
    /// List tokens (never the tokens themselves).
    List,
    /// Revoke a token by id or name.
    Revoke { token: String },
}

#[derive(Subcommand)]
enum TimersAction {
    /// Fire every timer due now, or at --at.
    Run {
        #[arg(long)]
        at: Option<String>,
    },
}

#[derive(Subcommand)]
enum AuditAction {
    /// Recompute the hash chains; exit 1 if any entry was changed or removed.
    Verify { case: Option<String> },
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

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TestFormat {
    Text,
    Junit,
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
    let overrides = crate::config::Overrides {
        config: cli.config,
        listen: match &cli.command {
            Command::Serve { listen } => listen.clone(),
            _ => None,
        },
        data_dir: cli.data_dir,
        database_url: cli.database_url,
        workflows: cli.workflows,
    };
    let result = match cli.command {
        Command::Check { paths, workflows_dir, lang, format } => check(&paths, workflows_dir, lang.into(), format),
        Command::Graph { file, format, lang, output } => draw(&file, format, lang.into(), output),
        Command::Test { paths, lang, format, min_coverage, coverage_dir, emails, mutations } => {
            let options = crate::scenario::Options {
                paths,
                default_dir: overrides.workflows.clone().unwrap_or_else(|| PathBuf::from("workflows")),
                lang: lang.into(),
                junit: format == TestFormat::Junit,
                min_coverage,
                coverage_dir,
                emails_dir: emails,
                mutations,
            };
            crate::scenario::command(&options)
        }
        Command::Schema => print(&crate::schema::workflow_schema()),
        Command::Bench {
            postgres,
            seconds,
            decisions,
            http_decisions,
            emails,
            closed_cases,
            open_cases,
            check_files,
            dir,
            out,
            only,
        } => crate::bench::command(&crate::bench::Options {
            workflows: overrides.workflows.clone().unwrap_or_else(|| PathBuf::from("workflows")),
            data_dir: dir,
            postgres,
            seconds,
            decisions,
            http_decisions,
            emails,
            scale_closed: closed_cases,
            scale_open: open_cases,
            check_files,
            out,
            only,
        })
        .map(|met| if met { ExitCode::SUCCESS } else { ExitCode::from(1) }),
        other => {
            return match crate::config::Config::load(&overrides) {
                Ok(config) => run_case_command(&config, other),
                Err(message) => {
                    eprintln!("beslut: {message}");
                    ExitCode::from(2)
                }
            };
        }
    };
    result.unwrap_or_else(|message| {
        eprintln!("beslut: {message}");
        ExitCode::from(2)
    })
}

/// Commands that need the database run on a Tokio runtime; their errors are sentences.
fn run_case_command(config: &crate::config::Config, command: Command) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("beslut: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        let engine = std::sync::Arc::new(commands::open(config).await?);
        match command {
            Command::Work => crate::serve::work_once(engine, config).await.map(|_| true),
            Command::Serve { .. } => crate::serve::run(engine, config).await.map(|_| true),
            Command::Token { action } => token(&engine, action).await.map(|_| true),
            other => case_command(&engine, other).await,
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("beslut: {message}");
            ExitCode::from(1)
        }
    }
}

async fn case_command(engine: &beslut_engine::service::Engine, command: Command) -> Result<bool, String> {
    use beslut_engine::runtime::Command as C;
    match command {
        Command::Start { workflow, data, who, idempotency_key } => {
            commands::start(engine, &workflow, &data, &who, idempotency_key.as_deref()).await?
        }
        Command::Cases { workflow, state } => commands::list(engine, workflow.as_deref(), state.as_deref()).await?,
        Command::Show { case, format } => commands::show(engine, &case, matches!(format, CheckFormat::Json)).await?,
        Command::Decide { case, task, action, who, comment, form, idempotency_key } => {
            let form = form.as_deref().map(commands::parse_object).transpose()?.unwrap_or_default();
            let key = idempotency_key.as_deref();
            let decision =
                commands::Decision { case: &case, task: &task, action: &action, who: &who, comment, form, key };
            commands::decide(engine, decision).await?
        }
        Command::Delegate { case, task, to, who, comment } => {
            commands::command(engine, &case, C::Delegate { task, actor: who, to, comment }).await?
        }
        Command::Withdraw { case, who, comment } => {
            commands::command(engine, &case, C::Withdraw { actor: who, comment }).await?
        }
        Command::Signal { name, key, payload } => {
            let payload = serde_json::Value::Object(commands::parse_object(&payload)?);
            commands::signal(engine, &name, &key, payload).await?
        }
        Command::Timers { action: TimersAction::Run { at } } => commands::run_timers(engine, at.as_deref()).await?,
        Command::Audit { action: AuditAction::Verify { case } } => {
            return commands::verify(engine, case.as_deref()).await;
        }
        Command::Apply { file } => return commands::apply_stream(engine, &file).await,
        Command::Override { case, to, who, reason } => {
            commands::command(engine, &case, C::Override { admin: who, reason, to }).await?
        }
        Command::Check { .. }
        | Command::Test { .. }
        | Command::Bench { .. }
        | Command::Graph { .. }
        | Command::Schema
        | Command::Work
        | Command::Serve { .. }
        | Command::Token { .. } => {}
    }
    Ok(true)
}

async fn token(engine: &beslut_engine::service::Engine, action: TokenAction) -> Result<(), String> {
    use crate::api::auth;
    match action {
        TokenAction::Create { name, scopes } => {
            let token = auth::create_token(engine, &name, &scopes).await?;
            commands::out!("{token}");
            eprintln!("beslut: spara token nu; den visas inte igen / save the token now; it is not shown again");
        }
        TokenAction::List => {
            for t in auth::list_tokens(engine).await? {
                let state = if t.revoked_at.is_some() { "återkallad" } else { "giltig" };
                commands::out!("{}\t{}\t{}\t{state}", t.id, t.name, t.scopes.join(","));
            }
        }
        TokenAction::Revoke { token } => {
            if !auth::revoke_token(engine, &token).await? {
                return Err(format!("ingen giltig token heter {token}"));
            }
            commands::out!("{token} återkallad");
        }
    }
    Ok(())
}

fn print(text: &str) -> Result<ExitCode, String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.to_string()),
        _ => Ok(ExitCode::SUCCESS),
    }
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
        CheckFormat::Text => {
            let text = project.render(lang);
            if !text.is_empty() {
                commands::out!("{}", text.trim_end());
            }
        }
        CheckFormat::Json => {
            for d in project.reports.iter().flat_map(|r| &r.items) {
                commands::out!("{}", d.to_json(lang));
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
