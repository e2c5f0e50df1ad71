//! SMTP delivery over a pool of open connections, with lettre's SMTP client speaking the
//! protocol.
//!
//! The pool is ours rather than lettre's for one reason: lettre's transport leaves Nagle's
//! algorithm on, and it writes a message and its closing dot as two writes, so the dot waits
//! for the server's delayed acknowledgement (40 ms on Linux) on every message, which caps one
//! connection near 25 messages a second (lettre's pull request 1159 fixes it; no release has
//! it yet). Here the TCP connection is opened with TCP_NODELAY and handed to lettre. Implicit
//! TLS (port 465) is still opened by lettre, without TCP_NODELAY.

use super::{Outgoing, SendError, SmtpConfig, Transport, build};
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Idle connections kept open between messages: one per message in flight.
const POOL_SIZE: usize = super::SENDING_AT_ONCE;
/// An idle connection older than this is closed rather than reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A connection idle longer than this is asked NOOP before it is used, in case the server
/// closed it meanwhile; within a batch connections are reused at once, untested.
const TEST_AFTER: Duration = Duration::from_secs(2);
/// How long connecting (and the greeting) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How the connection is secured.
enum Security {
    None,
    StartTls(TlsParameters),
    Tls(TlsParameters),
}

/// SMTP through lettre's client on pooled connections.
pub struct SmtpTransport {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl SmtpTransport {
    pub fn new(config: &SmtpConfig) -> Result<SmtpTransport, String> {
        let tls = || TlsParameters::new(config.host.clone()).map_err(|e| format!("TLS for {}: {e}", config.host));
        let security = match config.security.as_str() {
            "none" => Security::None,
            "starttls" => Security::StartTls(tls()?),
            "tls" => Security::Tls(tls()?),
            other => return Err(format!("smtp security must be none, starttls or tls, not {other}")),
        };
        let credentials = match (&config.username, &config.password) {
            (Some(user), Some(password)) => Some(Credentials::new(user.clone(), password.clone())),
            _ => None,
        };
        Ok(SmtpTransport {
            host: config.host.clone(),
            port: config.port,
            security,
            credentials,
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// An open connection: a pooled one that still answers, or a new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, SendError> {
        loop {
            let parked = self.pool().pop();
            let Some((mut conn, since)) = parked else { return self.connect().await };
            let idle = since.elapsed();
            if idle > IDLE_TIMEOUT {
                conn.abort().await;
            } else if idle <= TEST_AFTER || conn.test_connected().await {
                return Ok(conn);
            }
        }
    }

    /// Returns a connection to the pool unless it broke or the pool is full.
    async fn checkin(&self, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        let refused = {
            let mut pool = self.pool();
            if pool.len() < POOL_SIZE {
                pool.push((conn, Instant::now()));
                None
            } else {
                Some(conn)
            }
        };
        if let Some(mut conn) = refused {
            conn.abort().await;
        }
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Vec<(AsyncSmtpConnection, Instant)>> {
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Connects, greets, secures and signs in, as lettre's own transport does.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let mut conn = match &self.security {
            Security::Tls(tls) => {
                let server = (self.host.as_str(), self.port);
                AsyncSmtpConnection::connect_tokio1(server, Some(CONNECT_TIMEOUT), &self.hello, Some(tls.clone()), None)
                    .await
                    .map_err(failed)?
            }
            Security::None | Security::StartTls(_) => {
                let stream = self.tcp().await.map_err(|e| SendError {
                    permanent: false,
                    message: format!("cannot connect to {}:{}: {e}", self.host, self.port),
                })?;
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello).await.map_err(failed)?
            }
        };
        if let Security::StartTls(tls) = &self.security {
            conn.starttls(tls.clone(), &self.hello).await.map_err(failed)?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials).await.map_err(failed)?;
        }
        Ok(conn)
    }

    async fn tcp(&self) -> std::io::Result<tokio::net::TcpStream> {
        let connecting = tokio::net::TcpStream::connect((self.host.as_str(), self.port));
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, connecting).await??;
        // Every SMTP step is one write and then a wait for the reply: nothing to coalesce.
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

#[async_trait::async_trait]
impl Transport for SmtpTransport {
    async fn send(&self, from: &str, message: &Outgoing) -> Result<(), SendError> {
        let built = build(from, message).map_err(|e| SendError { permanent: true, message: e })?;
        let mut conn = self.checkout().await?;
        // On an error reply lettre closes the connection, and `checkin` drops it.
        let result = conn.send(built.envelope(), &built.formatted()).await;
        self.checkin(conn).await;
        result.map(|_| ()).map_err(failed)
    }
}

/// A refusal by the server is permanent when its reply code says so (5xx); a lost
/// connection or a 4xx reply is worth a retry.
fn failed(e: lettre::transport::smtp::Error) -> SendError {
    SendError { permanent: e.is_permanent(), message: e.to_string() }
}
