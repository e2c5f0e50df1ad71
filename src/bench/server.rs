//! `beslut serve` as a child process for the HTTP and scale benchmarks: the real binary on a
//! loopback port the system chose, optionally pinned to one CPU, stopped when dropped; and the
//! small tools both sections need (API tokens, resident memory, latency percentiles).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to open its database and listen.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A running `beslut serve`; killed when dropped.
pub(super) struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub pid: u32,
    /// Where its standard error goes, for the error messages.
    log: PathBuf,
}

/// Where a server runs: its data folder (the SQLite file), the workflows, and an optional
/// `beslut.toml`.
pub(super) struct Setup<'a> {
    pub data_dir: &'a Path,
    pub workflows: &'a Path,
    pub config: Option<&'a Path>,
    /// The CPU to pin the server to, when there is one to spare.
    pub cpu: Option<usize>,
}

/// This binary with `args`, run in `setup.data_dir` with nothing of the caller's `BESLUT_…`
/// environment (a database URL or SMTP server there would change what is measured).
fn beslut(setup: &Setup, args: &[&str]) -> Result<Command, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the beslut binary: {e}"))?;
    let mut command = match setup.cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    // Absolute, since the child runs in its data folder.
    let absolute = |p: &Path| std::path::absolute(p).map_err(|e| format!("{}: {e}", p.display()));
    command.arg("--data-dir").arg(absolute(setup.data_dir)?).arg("--workflows").arg(absolute(setup.workflows)?);
    if let Some(config) = setup.config {
        command.arg("--config").arg(absolute(config)?);
    }
    command.args(args).current_dir(setup.data_dir);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("BESLUT_") {
            command.env_remove(name);
        }
    }
    Ok(command)
}

/// Creates an API token with `scopes` in the server's database, through `beslut token create`.
pub(super) fn token(setup: &Setup, scopes: &str) -> Result<String, String> {
    let setup = Setup { cpu: None, ..*setup };
    let out = beslut(&setup, &["token", "create", "bench", "--scopes", scopes])?
        .output()
        .map_err(|e| format!("beslut token create: {e}"))?;
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || !token.starts_with("bsl_") {
        return Err(format!("beslut token create failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(token)
}

/// The CPUs to pin the server and the load generator to: (0, 1) when the machine has two or
/// more and `taskset` is there, so that the load generator cannot starve the server.
pub(super) fn pinning() -> Option<(usize, usize)> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let taskset = Command::new("taskset").arg("-V").output().is_ok_and(|o| o.status.success());
    (cpus >= 2 && taskset).then_some((0, 1))
}

impl Server {
    /// Starts `beslut serve` on `127.0.0.1:0` and waits until it says where it listens.
    pub fn start(setup: &Setup) -> Result<Server, String> {
        let log = setup.data_dir.join("server.log");
        let file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let child = beslut(setup, &["serve", "--listen", "127.0.0.1:0"])?
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .map_err(|e| format!("cannot start beslut serve: {e}"))?;
        let pid = child.id();
        let mut server = Server { child, base: String::new(), pid, log };
        server.base = server.wait_for_address()?;
        Ok(server)
    }

    /// Reads the address from the server's `lyssnar på http://…` line.
    fn wait_for_address(&mut self) -> Result<String, String> {
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(rest) = text.split("lyssnar på http://").nth(1) {
                let address: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                return Ok(format!("http://{address}"));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("beslut serve stopped ({status}) before listening:\n{}", self.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("beslut serve did not listen within {START_TIMEOUT:?}:\n{}", self.log_tail()))
    }

    /// The last lines of the server's standard error.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The server's resident memory now and at its peak, in MiB (VmRSS and VmHWM).
    pub fn memory(&self) -> Result<(f64, f64), String> {
        let path = format!("/proc/{}/status", self.pid);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        let field = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
                .map(|kb| kb / 1024.0)
                .ok_or_else(|| format!("{path} has no {name}"))
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `q` quantile (0–1) of `samples` in milliseconds, nearest rank; 0 when empty.
pub(super) fn quantile(samples: &mut [f64], q: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(f64::total_cmp);
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

/// Runs `work` on a thread of its own, on a single-threaded runtime, pinned to `cpu`; the
/// threads it starts inherit the pinning. The load generators run here.
pub(super) async fn on_cpu<T: Send + 'static>(
    cpu: Option<usize>,
    work: impl Future<Output = Result<T, String>> + Send + 'static,
) -> Result<T, String> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-load".into())
        .spawn(move || {
            if let Some(id) = cpu
                && !core_affinity::set_for_current(core_affinity::CoreId { id })
            {
                let _ = done.send(Err(format!("cannot pin the load generator to CPU {id}")));
                return;
            }
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let _ = done.send(runtime.map_err(|e| e.to_string()).and_then(|r| r.block_on(work)));
        })
        .map_err(|e| format!("cannot start the load generator: {e}"))?;
    result.await.map_err(|_| "the load generator stopped without a result".to_string())?
}
