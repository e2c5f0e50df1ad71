//! The scale run: `beslut serve` on a SQLite database of a million closed and a hundred
//! thousand open cases (sizes from the options), and `beslut check` on a thousand workflow
//! files.
//!
//! The database is the scenarios' real cases (`seed`) copied in SQL (`replicate`). The server
//! runs as a child process; after a warm-up, each list is asked for its first page again and
//! again by one client on a keep-alive connection (median and p99), and the server's resident
//! memory is read from `/proc`. The pages are asked for by people signed in the way people
//! sign in: a link from the development mailbox.

use super::server::{self, Server, Setup};
use super::{Figure, Target, replicate, round, seed, step};
use beslut_engine::project::Project;
use beslut_engine::store::{SQLITE_FILE, Store, millis};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use sqlx::Row;
use std::path::Path;
use std::time::Instant;

/// Requests before the timed ones, so that caches and connections are warm.
const WARM_UP: usize = 20;
/// Timed requests per list.
const SAMPLES: usize = 50;
/// The target for a list's first page.
const LIST_MS: f64 = 20.0;
/// How long the server may work through what it found waiting at start (two worker rounds
/// and a half).
const SETTLE: std::time::Duration = std::time::Duration::from_secs(5);
/// Holds the viewing role configured for the run, so sees every case.
const VIEWER_ROLE: &str = "it-chef";

pub(super) async fn figures(options: &super::Options) -> Result<Vec<Figure>, String> {
    let mut figures = Vec::new();
    let folder = options.data_dir.join("scale");
    let (built, person) = build(options, &folder).await?;
    figures.push(built);
    figures.extend(serve_figures(options, &folder, &person).await?);
    figures.push(check_figure(options)?);
    Ok(figures)
}

/// Builds the database; returns a figure of how long it took and the person holding the most
/// open tasks.
async fn build(options: &super::Options, folder: &Path) -> Result<(Figure, String), String> {
    let (closed, open) = (options.scale_closed, options.scale_open);
    step(&format!("scale: replaying the scenarios, then copying them into {closed} closed and {open} open cases"));
    let _ = std::fs::remove_dir_all(folder);
    let started = Instant::now();
    let store = Store::open_sqlite(folder).await.map_err(|e| e.to_string())?;
    seed::replay(store.clone(), &options.workflows).await?;
    store.close().await;
    let project = Project::load(&options.workflows).map_err(|e| e.to_string())?;
    let sizes = replicate::Sizes { closed, open, now_ms: millis(jiff::Timestamp::now()) };
    let file = folder.join(SQLITE_FILE);
    let counts = replicate::copies(&file, &project.directory, &sizes).await?;
    let seconds = started.elapsed().as_secs_f64();
    let size = std::fs::metadata(&file).map(|m| m.len() as f64 / 1e9).unwrap_or(0.0);
    let person = busiest(&file).await?;
    let figure = Figure::new(format!("scale: database of {closed} closed and {open} open cases built"), seconds, "s", Target::None)
        .with_note(format!(
            "{} cases, {} audit entries, {} assignments, {:.1} GB; copies of {} closed and {} open cases the scenarios left",
            counts.cases, counts.audit, counts.assignments, size, counts.templates.0, counts.templates.1
        ));
    Ok((figure, person))
}

/// The person holding the most open tasks: the longest task list.
async fn busiest(file: &Path) -> Result<String, String> {
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{}", file.display()))
        .await
        .map_err(|e| e.to_string())?;
    let row = sqlx::query(
        "SELECT person, COUNT(*) FROM assignments WHERE person IS NOT NULL GROUP BY person ORDER BY 2 DESC, 1 LIMIT 1",
    )
    .fetch_optional(&pool)
    .await
    .map_err(|e| e.to_string())?;
    pool.close().await;
    row.map(|r| r.get::<String, _>(0)).ok_or_else(|| "the scale database has no open task held by a person".into())
}

/// One list to time: what it is, the path, and who asks.
struct Probe {
    what: String,
    path: String,
    auth: Auth,
}

#[derive(Clone)]
enum Auth {
    Token(String),
    Cookie(String),
}

/// Starts the server on the scale database, times the lists and reads its memory.
async fn serve_figures(options: &super::Options, folder: &Path, person: &str) -> Result<Vec<Figure>, String> {
    let config = folder.join("beslut.toml");
    std::fs::write(&config, format!("[web]\nviewer_roles = [\"{VIEWER_ROLE}\"]\n"))
        .map_err(|e| format!("{}: {e}", config.display()))?;
    let pins = server::pinning();
    let setup =
        Setup { data_dir: folder, workflows: &options.workflows, config: Some(&config), cpu: pins.map(|p| p.0) };
    let token = server::token(&setup, "read")?;
    step("scale: starting beslut serve on the scale database");
    let server = Server::start(&setup)?;
    let project = Project::load(&options.workflows).map_err(|e| e.to_string())?;
    let email_of = |id: &str| project.directory.person(id).map(|p| p.email.clone());
    let viewer = project.directory.holders(VIEWER_ROLE, None).first().map(|p| p.email.clone());
    let (Some(viewer), Some(holder)) = (viewer, email_of(person)) else {
        return Err(format!("the directory has no holder of {VIEWER_ROLE} or no person {person}"));
    };
    let (base, person) = (server.base.clone(), person.to_string());
    let probes = server::on_cpu(pins.map(|p| p.1), async move {
        let all = sign_in(&base, &viewer).await?;
        let mine = sign_in(&base, &holder).await?;
        let token = Auth::Token(token);
        Ok(vec![
            Probe { what: "GET /api/v1/cases".into(), path: "/api/v1/cases".into(), auth: token.clone() },
            Probe { what: "/arenden, seeing every case".into(), path: "/arenden".into(), auth: Auth::Cookie(all) },
            Probe { what: "/arenden, a participant".into(), path: "/arenden".into(), auth: Auth::Cookie(mine.clone()) },
            Probe {
                what: format!("GET /api/v1/tasks?person={person}"),
                path: format!("/api/v1/tasks?person={person}"),
                auth: token,
            },
            Probe { what: format!("/uppgifter of {person}"), path: "/uppgifter".into(), auth: Auth::Cookie(mine) },
        ])
    })
    .await
    .map_err(|e| format!("{e}\nthe server's log ends:\n{}", server.log_tail()))?;
    // The server's first rounds of work (the scenarios' pending emails and overdue timers) are
    // start-up, not the steady state measured here.
    tokio::time::sleep(SETTLE).await;
    let mut figures = Vec::new();
    for probe in probes {
        step(&format!("scale: timing {}", probe.what));
        let base = server.base.clone();
        let path = probe.path.clone();
        let auth = probe.auth.clone();
        let mut samples = server::on_cpu(pins.map(|p| p.1), async move { time(&base, &path, &auth).await })
            .await
            .map_err(|e| format!("{e}\nthe server's log ends:\n{}", server.log_tail()))?;
        let (p50, p99) = (server::quantile(&mut samples, 0.5), server::quantile(&mut samples, 0.99));
        let kind = if probe.path.contains("task") || probe.path.contains("uppgifter") { "tasks" } else { "case list" };
        figures.push(
            Figure::new(format!("scale: {kind} first page, {}, p99", probe.what), p99, "ms", Target::AtMost(LIST_MS))
                .with_note(format!("median {} ms over {SAMPLES} requests after {WARM_UP}", round(p50))),
        );
    }
    let (rss, peak) = server.memory()?;
    figures.push(
        Figure::new("scale: server resident memory after the lists", rss, "MB", Target::AtMost(150.0))
            .with_note(format!("VmRSS in MiB; peak (VmHWM) {} MiB", round(peak))),
    );
    Ok(figures)
}

/// A client that follows no redirects: sign-in answers are read, not followed.
fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .http1_only()
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// GETs `path`; its status and body.
async fn get(client: &reqwest::Client, base: &str, path: &str, auth: Option<&Auth>) -> Result<(u16, String), String> {
    let mut request = client.get(format!("{base}{path}"));
    request = match auth {
        Some(Auth::Token(t)) => request.bearer_auth(t),
        Some(Auth::Cookie(c)) => request.header(COOKIE, c),
        None => request,
    };
    let response = request.send().await.map_err(|e| format!("GET {path}: {e}"))?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.map_err(|e| format!("GET {path}: {e}"))?))
}

/// The warm-up, then `SAMPLES` timed GETs of `path` (ms), each required to answer 200.
async fn time(base: &str, path: &str, auth: &Auth) -> Result<Vec<f64>, String> {
    let client = client()?;
    let mut samples = Vec::with_capacity(SAMPLES);
    for i in 0..WARM_UP + SAMPLES {
        let started = Instant::now();
        let (status, body) = get(&client, base, path, Some(auth)).await?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if status != 200 {
            return Err(format!("GET {path} answered {status}: {}", body.chars().take(500).collect::<String>()));
        }
        if i >= WARM_UP {
            samples.push(ms);
        }
    }
    Ok(samples)
}

/// Signs `email` in as a person does, through a link in the development mailbox; returns the
/// session cookie.
async fn sign_in(base: &str, email: &str) -> Result<String, String> {
    let client = client()?;
    let (_, form) = get(&client, base, "/logga-in", None).await?;
    let fields = [("csrf", hidden(&form, "csrf")?), ("issued", hidden(&form, "issued")?)];
    let sent = client
        .post(format!("{base}/logga-in"))
        .form(&[("csrf", fields[0].1.as_str()), ("issued", &fields[1].1), ("nasta", "/uppgifter"), ("email", email)])
        .send()
        .await
        .map_err(|e| format!("POST /logga-in: {e}"))?;
    if sent.status() != 200 {
        return Err(format!("POST /logga-in for {email} answered {}", sent.status()));
    }
    let path = mailbox_link(&client, base, email).await?;
    let (_, page) = get(&client, base, &path, None).await?;
    let done = client
        .post(format!("{base}{path}"))
        .form(&[("csrf", hidden(&page, "csrf")?), ("issued", hidden(&page, "issued")?)])
        .send()
        .await
        .map_err(|e| format!("POST the sign-in link: {e}"))?;
    let cookie = done.headers().get(SET_COOKIE).and_then(|v| v.to_str().ok());
    match (done.headers().get(LOCATION), cookie) {
        (Some(_), Some(cookie)) => Ok(cookie.split(';').next().unwrap_or_default().to_string()),
        _ => Err(format!("signing in {email} gave no session ({})", done.status())),
    }
}

/// The path of the newest sign-in link to `email` in `/dev/mail.json`.
async fn mailbox_link(client: &reqwest::Client, base: &str, email: &str) -> Result<String, String> {
    let (_, text) = get(client, base, "/dev/mail.json", None).await?;
    let mails: Vec<serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| format!("/dev/mail.json is not a list of emails ({e})"))?;
    let url = mails
        .iter()
        .filter(|m| m["to"].as_str().is_some_and(|to| to.eq_ignore_ascii_case(email)))
        .filter_map(|m| m["links"][0]["url"].as_str())
        .find(|u| u.contains("/logga-in/"))
        .ok_or_else(|| format!("no sign-in link to {email} in the development mailbox"))?;
    let start = url.find("/logga-in/").unwrap_or(0);
    Ok(url[start..].to_string())
}

/// The value of the hidden input `name` in a page's main content.
fn hidden(html: &str, name: &str) -> Result<String, String> {
    let main = &html[html.find("<main").unwrap_or(0)..];
    let marker = format!("name=\"{name}\" value=\"");
    let start = main.find(&marker).ok_or_else(|| format!("the page has no {name} field"))? + marker.len();
    Ok(main[start..].split('"').next().unwrap_or_default().to_string())
}

/// `beslut check` on `options.check_files` generated workflow files: the whole command's wall
/// time.
fn check_figure(options: &super::Options) -> Result<Figure, String> {
    let n = options.check_files;
    step(&format!("scale: beslut check on {n} workflow files"));
    let folder = options.data_dir.join(format!("check-{n}"));
    generate_workflows(&options.workflows, &folder, n)?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let out = std::process::Command::new(exe)
        .arg("check")
        .arg(&folder)
        .env_remove("BESLUT_WORKFLOWS")
        .output()
        .map_err(|e| format!("beslut check: {e}"))?;
    let seconds = started.elapsed().as_secs_f64();
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stdout);
        return Err(format!(
            "beslut check found errors in the generated files:\n{}",
            said.chars().take(2000).collect::<String>()
        ));
    }
    Ok(Figure::new(format!("scale: beslut check on {n} workflow files"), seconds, "s", Target::AtMost(1.0))
        .with_note("wall time of the whole command, copies of the three sample workflows"))
}

/// `n` copies of the sample workflows in `to`, each with its own file name (its id) and name,
/// beside the directory, frames and templates they need.
fn generate_workflows(from: &Path, to: &Path, n: usize) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(to);
    copy_dir(&from.join("templates"), &to.join("templates"))?;
    for shared in ["directory.yaml", "portfolios.yaml"] {
        std::fs::copy(from.join(shared), to.join(shared)).map_err(|e| format!("{shared}: {e}"))?;
    }
    let samples: Vec<(String, String)> = ["andring-av-it", "finansieringsansokan", "produktionssattning"]
        .iter()
        .map(|id| {
            let path = from.join(format!("{id}.yaml"));
            std::fs::read_to_string(&path).map(|t| (id.to_string(), t)).map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect::<Result<_, _>>()?;
    for i in 0..n {
        let (id, text) = &samples[i % samples.len()];
        let renamed = rename(text, &format!("(kopia {i:04})"));
        let path = to.join(format!("{id}-{i:04}.yaml"));
        std::fs::write(&path, renamed).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// The workflow text with `suffix` added to its top-level `name:`.
fn rename(text: &str, suffix: &str) -> String {
    let mut done = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if !done && line.starts_with("name: ") {
                done = true;
                format!("{line} {suffix}")
            } else {
                line.to_string()
            }
        })
        .collect();
    lines.join("\n") + "\n"
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?.flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).map_err(|e| format!("{}: {e}", target.display()))?;
        }
    }
    Ok(())
}
