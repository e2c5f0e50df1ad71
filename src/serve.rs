//! `beslut serve`: the HTTP server and its background workers on one process.

use crate::mail::Mailer;
use crate::web::{self, AppState};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How often the workers look for due timers, sub-cases and emails.
const WORK_EVERY: Duration = Duration::from_secs(2);

/// Serves `state` on `listener` until `shutdown` completes: requests in flight finish, and the
/// workers stop after their current item.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    mailer: Mailer,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = tokio::spawn(work(state.engine.clone(), mailer, stop_rx));
    let app = web::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await;
    let _ = workers.await;
    result
}

/// Runs every worker once per interval until told to stop.
async fn work(engine: Arc<beslut_engine::service::Engine>, mailer: Mailer, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(e) = engine.fire_due_timers(engine.now()).await {
            eprintln!("beslut: tidsgränser: {e}");
        }
        if let Err(e) = engine.process_internal().await {
            eprintln!("beslut: delärenden: {e}");
        }
        if let Err(e) = mailer.run_once().await {
            eprintln!("beslut: e-post: {e}");
        }
        tokio::select! {
            _ = tokio::time::sleep(WORK_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
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
