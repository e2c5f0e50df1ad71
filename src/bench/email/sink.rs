//! The local SMTP server the email benchmark sends to: enough SMTP for a real client (greeting,
//! EHLO/HELO, MAIL FROM, RCPT TO, DATA ended by a lone dot with dot-stuffing undone, RSET,
//! NOOP, QUIT), many connections at once, nothing stored. It counts the messages it accepts,
//! keeps their Message-IDs so the bench can tell a repeat from a new one, and notes when the
//! last one was accepted. A Python server would be slower than the mailer it measures.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What the server has accepted so far.
#[derive(Default)]
pub struct Received {
    /// Messages accepted (each `250` after DATA).
    pub messages: usize,
    /// Distinct Message-IDs among them.
    pub ids: HashSet<String>,
    /// Messages without a Message-ID header.
    pub without_id: usize,
    /// Connections opened by clients.
    pub connections: usize,
    /// When the last message was accepted.
    pub last: Option<Instant>,
}

/// A running server on loopback; stops when dropped.
pub struct Sink {
    pub port: u16,
    received: Arc<Mutex<Received>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Sink {
    /// Listens on a port the system picks on 127.0.0.1.
    pub async fn start() -> Result<Sink, String> {
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("SMTP sink: {e}"))?;
        let port = listener.local_addr().map_err(|e| format!("SMTP sink: {e}"))?.port();
        let received = Arc::new(Mutex::new(Received::default()));
        let accepting = tokio::spawn(accept(listener, received.clone()));
        Ok(Sink { port, received, accepting })
    }

    /// Reads what has been received under the lock.
    pub fn read<T>(&self, f: impl FnOnce(&Received) -> T) -> T {
        f(&self.received.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn accept(listener: TcpListener, received: Arc<Mutex<Received>>) {
    while let Ok((stream, _)) = listener.accept().await {
        lock(&received).connections += 1;
        let received = received.clone();
        // A session that fails (the client vanished) ends only itself.
        tokio::spawn(async move {
            let _ = session(stream, &received).await;
        });
    }
}

fn lock(received: &Mutex<Received>) -> std::sync::MutexGuard<'_, Received> {
    received.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One client connection, command by command.
async fn session(stream: TcpStream, received: &Mutex<Received>) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write.write_all(b"220 beslut-bench ESMTP ready\r\n").await?;
    let (mut sender, mut recipients) = (false, 0);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let verb = String::from_utf8_lossy(line.get(..4).unwrap_or(&line)).to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-beslut-bench\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" => b"250 beslut-bench\r\n",
            "MAIL" => {
                (sender, recipients) = (true, 0);
                b"250 2.1.0 OK\r\n"
            }
            "RCPT" if sender => {
                recipients += 1;
                b"250 2.1.5 OK\r\n"
            }
            "RCPT" => b"503 5.5.1 MAIL FROM first\r\n",
            "DATA" if recipients > 0 => {
                write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let id = message_id(&mut reader).await?;
                record(received, id);
                (sender, recipients) = (false, 0);
                b"250 2.0.0 OK queued\r\n"
            }
            "DATA" => b"503 5.5.1 RCPT TO first\r\n",
            "RSET" => {
                (sender, recipients) = (false, 0);
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 Command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// Reads a message up to the line holding a lone dot, and returns its Message-ID if its
/// header has one. Lines starting with a dot had one added by the client (dot-stuffing); the
/// header block is unfolded before it is searched.
async fn message_id(reader: &mut (impl AsyncBufRead + Unpin)) -> std::io::Result<Option<String>> {
    let (mut header, mut in_header) = (String::new(), true);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the client left during DATA"));
        }
        if line == b".\r\n" || line == b".\n" {
            break;
        }
        let content = if line.starts_with(b".") { &line[1..] } else { &line[..] };
        if in_header {
            in_header = !(content == b"\r\n" || content == b"\n");
            header.push_str(&String::from_utf8_lossy(content));
        }
    }
    let unfolded = header.replace("\r\n ", " ").replace("\r\n\t", " ");
    Ok(unfolded.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim().eq_ignore_ascii_case("message-id").then(|| value.trim().to_string())
    }))
}

fn record(received: &Mutex<Received>, id: Option<String>) {
    let mut r = lock(received);
    r.messages += 1;
    match id {
        Some(id) => {
            r.ids.insert(id);
        }
        None => r.without_id += 1,
    }
    r.last = Some(Instant::now());
}
