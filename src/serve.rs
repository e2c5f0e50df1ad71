//! `beslut serve`: the HTTP server and its background workers on one process, and `beslut
//! work`, which runs the workers once.

use crate::config::Config;
use crate::mail::Mailer;
use crate::web::{self, AppState};
use beslut_engine::service::Engine;
use beslut_engine::store::{hooks, millis};
use beslut_notifications::deliver::Deliverer;
use beslut_notifications::links::Secret;
use beslut_notifications::webhooks::WebhookSecret;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How often the workers look for due timers, sub-cases, emails, events and calls.
const WORK_EVERY: Duration = Duration::from_secs(2);

/// What the background loop runs.
pub struct Workers {
    pub mailer: Mailer,
    pub deliverer: Deliverer,
}

/// Serves `state` on `listener` until `shutdown` completes: requests in flight finish, and the
/// workers stop after their current item.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    workers: Workers,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Installed before the first request, or what happens until the first scrape is not counted.
    crate::telemetry::metrics();
    let (stop_tx, stop_rx) = watch::channel(false);
    let watcher = tokio::spawn(watch_workflows(state.engine.clone(), state.workflows_dir.clone(), stop_rx.clone()));
    let workers = tokio::spawn(work(state.engine.clone(), workers, stop_rx));
    let app = web::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await;
    let _ = workers.await;
    let _ = watcher.await;
    result
}

/// Reloads the workflows folder when a file in it changes, until told to stop.
async fn watch_workflows(engine: Arc<Engine>, dir: std::path::PathBuf, mut stop: watch::Receiver<bool>) {
    let mut seen = fingerprint(&dir);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(WORK_EVERY) => {}
            _ = stop.changed() => return,
        }
        reload_if_changed(&engine, &dir, &mut seen);
    }
}

/// Reloads `dir` if its files changed since `seen`: each workflow that now passes `check`
/// is put in force; a broken file is reported and its last good version kept. Returns true
/// when the folder was put in force.
pub fn reload_if_changed(engine: &Engine, dir: &Path, seen: &mut u64) -> bool {
    let now = fingerprint(dir);
    if now == *seen {
        return false;
    }
    *seen = now;
    let project = match beslut_engine::project::Project::load(dir) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(folder = %dir.display(), error = %e, "workflows cannot be read; the loaded ones stay in force");
            return false;
        }
    };
    let problems = project.render(beslut_engine::diagnostic::Lang::Sv);
    match engine.reload(project) {
        None => {
            tracing::error!(folder = %dir.display(), "directory, frames or templates have errors; nothing was reloaded:\n{problems}");
            false
        }
        Some(kept) => {
            if !kept.is_empty() {
                tracing::warn!(kept = ?kept, "workflow files have errors; their last good versions stay in force:\n{problems}");
            }
            tracing::info!(folder = %dir.display(), "workflows reloaded");
            true
        }
    }
}

/// Names, sizes and modification times of every file under `dir`, hashed.
fn fingerprint(dir: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                files.push((entry.path(), meta.len(), meta.modified().ok()));
            }
        }
    }
    files.sort();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    files.hash(&mut hasher);
    hasher.finish()
}

/// Runs the workers until told to stop, each in its own loop, so that a backlog of one (a
/// thousand emails after a mass start) does not hold up the others (a timer falling due, a
/// webhook). Each goes round again at once while it finds work, else after [`WORK_EVERY`];
/// on stop, each ends after the batch in hand.
async fn work(engine: Arc<Engine>, workers: Workers, stop: watch::Receiver<bool>) {
    let stopping = || *stop.borrow();
    let cases = repeat(&stop, || async {
        sync_versions(&engine).await;
        case_work(&engine).await
    });
    let mail = repeat(&stop, || async { logged("email", workers.mailer.run_until(&stopping).await) });
    let hooks = repeat(&stop, || async { logged("webhooks and calls", workers.deliverer.run_until(&stopping).await) });
    tokio::join!(cases, mail, hooks);
}

/// Calls `round` until `stop` changes: again at once when it did something, else after a pause.
async fn repeat<F, R>(stop: &watch::Receiver<bool>, mut round: F)
where
    F: FnMut() -> R,
    R: Future<Output = usize>,
{
    let mut stop = stop.clone();
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if round().await > 0 {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(WORK_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// How much a worker round did; a failure is logged, and the round counts as idle.
fn logged<E: std::fmt::Display>(worker: &str, result: Result<usize, E>) -> usize {
    result.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "{worker}");
        0
    })
}

/// Publishes the workflow files this node saw change and takes in what other nodes published,
/// so that every node starts new cases on the same versions.
async fn sync_versions(engine: &Engine) {
    match engine.sync_versions().await {
        Ok(changed) => {
            for (workflow, hash) in changed {
                tracing::info!(workflow = %workflow, version = %&hash[..12.min(hash.len())], "version in force for new cases");
            }
        }
        Err(e) => tracing::warn!(error = %e, "workflow versions could not be synchronised"),
    }
}

/// Timers due and sub-cases to start or report.
async fn case_work(engine: &Engine) -> usize {
    logged("timers", engine.fire_due_timers(engine.now()).await) + logged("sub-cases", engine.process_internal().await)
}

/// One round of every worker, one after the other; a failing worker is logged and the others
/// still run.
async fn run_workers(engine: &Engine, workers: &Workers) -> usize {
    case_work(engine).await
        + logged("email", workers.mailer.run_once().await)
        + logged("webhooks and calls", workers.deliverer.run_once().await)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

/// The workers as configured: SMTP or `.eml` files, and the public address for links.
pub fn workers(engine: Arc<Engine>, config: &Config, secret: &Secret) -> Result<Workers, String> {
    let mut mailer = Mailer::new(engine.clone(), secret.clone(), &config.public_url, transport(config)?)?;
    if let Some(from) = &config.mail_from {
        mailer.from = from.clone();
    }
    if let Some(name) = &config.organisation {
        mailer.sender_name = name.clone();
    }
    let deliverer = Deliverer::new(engine, secret.clone(), &config.public_url).map_err(|e| e.to_string())?;
    Ok(Workers { mailer, deliverer })
}

/// `beslut work`: every worker once.
pub async fn work_once(engine: Arc<Engine>, config: &Config) -> Result<(), String> {
    sync_subscriptions(&engine, config).await?;
    let workers = workers(engine.clone(), config, &link_secret(config)?)?;
    let done = run_workers(&engine, &workers).await;
    crate::commands::out!("{done} uppgifter utförda (tidsgränser, delärenden, e-post, webhooks, anrop)");
    Ok(())
}

/// `beslut serve`: runs until Ctrl-C or SIGTERM.
pub async fn run(engine: Arc<Engine>, config: &Config) -> Result<(), String> {
    crate::telemetry::init();
    sync_subscriptions(&engine, config).await?;
    engine.sync_versions().await.map_err(|e| format!("arbetsflödenas versioner: {e}"))?;
    let secret = link_secret(config)?;
    let sources = sources(config)?;
    warn_unconfigured_sources(&engine, &sources);
    let workers = workers(engine.clone(), config, &secret)?;
    let listen = &config.listen;
    let listener = TcpListener::bind(listen).await.map_err(|e| format!("kan inte lyssna på {listen}: {e}"))?;
    let dev_mail = config.smtp.is_none();
    let state = AppState {
        engine,
        secret,
        base_url: config.public_url.clone(),
        dev_mail,
        limiter: Default::default(),
        sources: Arc::new(sources),
        workflows_dir: config.workflows.clone(),
        web: Arc::new(web::WebConfig {
            allowed_domains: config.web.allowed_domains.clone(),
            viewer_roles: config.web.viewer_roles.clone(),
        }),
    };
    // The bound address, not the configured one: with port 0 the system chose it, and
    // whoever started the server (the benchmarks) reads it from this line.
    let bound = listener.local_addr().map_or_else(|_| listen.clone(), |a| a.to_string());
    tracing::info!(listen = %bound, public_url = %config.public_url, "beslut: lyssnar / listening");
    eprintln!("beslut: lyssnar på http://{bound} (publik adress {})", config.public_url);
    if dev_mail {
        eprintln!("beslut: utvecklingsbrevlådan: {}/dev/mail", config.public_url);
    }
    serve(listener, state, workers, signal()).await.map_err(|e| e.to_string())
}

/// The inbound webhook sources with their parsed secrets.
pub fn sources(config: &Config) -> Result<std::collections::BTreeMap<String, WebhookSecret>, String> {
    config
        .sources
        .iter()
        .map(|(name, s)| {
            WebhookSecret::parse(&s.secret)
                .map(|secret| (name.clone(), secret))
                .map_err(|e| format!("[sources.{name}] secret: {e}"))
        })
        .collect()
}

fn warn_unconfigured_sources(engine: &Engine, sources: &std::collections::BTreeMap<String, WebhookSecret>) {
    for w in engine.project().valid_workflows() {
        let Some(hook) = w.definition.as_ref().and_then(|d| d.webhook.as_ref()) else { continue };
        if !sources.contains_key(&hook.source) {
            eprintln!(
                "beslut: varning: {} tar emot webhooks från källan {}, men beslut.toml saknar [sources.{}]; \
                 POST /hooks/start/{} avvisas tills den finns",
                w.id, hook.source, hook.source, w.id
            );
        }
    }
}

/// Makes the stored configured subscriptions those of the file.
pub async fn sync_subscriptions(engine: &Engine, config: &Config) -> Result<(), String> {
    let now = millis(engine.now());
    let mut configured = Vec::new();
    for (name, s) in &config.subscriptions {
        WebhookSecret::parse(&s.secret).map_err(|e| format!("[subscriptions.{name}] secret: {e}"))?;
        configured.push(hooks::Subscription {
            id: format!("config:{name}"),
            url: s.url.clone(),
            secret: s.secret.clone(),
            events: s.events.clone(),
            workflows: s.workflows.clone(),
            origin: "config".into(),
            active: true,
            created_at: now,
        });
    }
    let mut tx = engine.store.begin().await.map_err(|e| e.to_string())?;
    hooks::sync_configured(&mut tx, &configured).await.map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())
}

/// The link secret: configured (hex), else `DATA_DIR/link-secret`, created once with
/// owner-only permissions. Changing it invalidates every link already sent.
pub fn link_secret(config: &Config) -> Result<Secret, String> {
    if let Some(text) = &config.link_secret {
        let bytes = hex::decode(text.trim()).map_err(|_| "BESLUT_LINK_SECRET ska vara hexadecimal".to_string())?;
        return Secret::new(bytes);
    }
    let path = config.data_dir.join("link-secret");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Secret::new(hex::decode(text.trim()).map_err(|_| format!("{} är skadad", path.display()))?);
    }
    std::fs::create_dir_all(&config.data_dir).map_err(|e| e.to_string())?;
    let secret = Secret::generate();
    write_private(&path, &hex::encode(secret.as_bytes()))?;
    Ok(secret)
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// SMTP as configured, or the development mailbox of `.eml` files, announced loudly.
pub fn transport(config: &Config) -> Result<Box<dyn crate::mail::Transport>, String> {
    let Some(smtp) = config.smtp.as_ref().filter(|s| s.host.is_some()) else {
        let dir = config.data_dir.join("mail");
        eprintln!(
            "OBS: ingen SMTP-server är inställd (BESLUT_SMTP_HOST); e-post skrivs som .eml-filer i {}",
            dir.display()
        );
        eprintln!(
            "NOTE: no SMTP server is configured (BESLUT_SMTP_HOST); email is written as .eml files to {}",
            dir.display()
        );
        return Ok(Box::new(crate::mail::FileTransport { dir }));
    };
    let config = crate::mail::SmtpConfig {
        host: smtp.host.clone().unwrap_or_default(),
        port: smtp.port.unwrap_or(587),
        security: smtp.security.clone().unwrap_or_else(|| "starttls".into()),
        username: smtp.username.clone(),
        password: smtp.password.clone(),
    };
    Ok(Box::new(crate::mail::SmtpTransport::new(&config)?))
}
