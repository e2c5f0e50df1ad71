//! Configuration: `beslut.toml`, then `BESLUT_…` environment variables, then command-line
//! flags, each overriding the one before. Every setting has a default that runs on one
//! machine with nothing installed.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! data_dir = "data"                      # the SQLite file, the link secret, .eml files
//! database_url = "postgres://…"          # instead of SQLite
//! workflows = "workflows"
//! public_url = "https://beslut.kommun.se"
//! organisation = "Danderyds kommun"
//! mail_from = "beslut@kommun.se"
//!
//! [smtp]
//! host = "smtp.kommun.se"
//! port = 587
//! security = "starttls"                 # none | starttls | tls
//! username = "beslut"
//! password = "…"
//!
//! [sources.e-tjanst]                     # inbound webhooks: who may start cases and signal
//! secret = "whsec_…"
//!
//! [subscriptions.it-plan]                # outbound webhooks
//! url = "https://plan.kommun.se/hooks/beslut"
//! secret = "whsec_…"
//! events = ["case.started", "task.*", "case.completed"]   # default: every event
//! workflows = ["andring-av-it"]                             # default: every workflow
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The settings as read from the file; everything optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub workflows: Option<PathBuf>,
    pub public_url: Option<String>,
    pub organisation: Option<String>,
    pub mail_from: Option<String>,
    pub link_secret: Option<String>,
    #[serde(default)]
    pub smtp: Option<Smtp>,
    #[serde(default)]
    pub web: Web,
    #[serde(default)]
    pub sources: BTreeMap<String, Source>,
    #[serde(default)]
    pub subscriptions: BTreeMap<String, Subscription>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smtp {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub security: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// The signed-in pages.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Web {
    /// Email domains that may sign in; empty: the domains of the people in directory.yaml.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Roles whose holders see every case.
    #[serde(default)]
    pub viewer_roles: Vec<String>,
}

/// A system that sends webhooks to Beslut.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub secret: String,
}

/// A receiver of Beslut's events.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    pub url: String,
    pub secret: String,
    #[serde(default = "every_event")]
    pub events: Vec<String>,
    #[serde(default)]
    pub workflows: Vec<String>,
}

fn every_event() -> Vec<String> {
    vec!["*".into()]
}

/// The settings in force.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub workflows: PathBuf,
    pub public_url: String,
    pub organisation: Option<String>,
    pub mail_from: Option<String>,
    pub link_secret: Option<String>,
    pub smtp: Option<Smtp>,
    pub web: Web,
    pub sources: BTreeMap<String, Source>,
    pub subscriptions: BTreeMap<String, Subscription>,
}

/// What the command line gave (flags, or their `BESLUT_…` variables through clap).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub workflows: Option<PathBuf>,
}

/// The file read when no `--config` is given, if it exists.
pub const DEFAULT_FILE: &str = "beslut.toml";

impl Config {
    /// Reads the file (the one given, else `beslut.toml` if present), then applies the
    /// environment and the flags.
    pub fn load(over: &Overrides) -> Result<Config, String> {
        let file = match &over.config {
            Some(path) => read(path)?,
            None if Path::new(DEFAULT_FILE).exists() => read(Path::new(DEFAULT_FILE))?,
            None => File::default(),
        };
        Ok(Config::resolve(file, over, |name| std::env::var(name).ok()))
    }

    /// Layers the file, the environment (through `env`) and the flags.
    pub fn resolve(file: File, over: &Overrides, env: impl Fn(&str) -> Option<String>) -> Config {
        let listen = over.listen.clone().or(file.listen).unwrap_or_else(|| "127.0.0.1:8080".into());
        let public_url = env("BESLUT_PUBLIC_URL").or(file.public_url).unwrap_or_else(|| format!("http://{listen}"));
        let smtp = match env("BESLUT_SMTP_HOST") {
            Some(host) => Some(Smtp {
                host: Some(host),
                port: env("BESLUT_SMTP_PORT").and_then(|p| p.parse().ok()),
                security: env("BESLUT_SMTP_SECURITY"),
                username: env("BESLUT_SMTP_USERNAME"),
                password: env("BESLUT_SMTP_PASSWORD"),
            }),
            None => file.smtp.filter(|s| s.host.is_some()),
        };
        Config {
            data_dir: over.data_dir.clone().or(file.data_dir).unwrap_or_else(|| "data".into()),
            database_url: over.database_url.clone().or(file.database_url),
            workflows: over.workflows.clone().or(file.workflows).unwrap_or_else(|| "workflows".into()),
            public_url: public_url.trim_end_matches('/').to_string(),
            organisation: env("BESLUT_ORGANISATION").or(file.organisation),
            mail_from: env("BESLUT_MAIL_FROM").or(file.mail_from),
            link_secret: env("BESLUT_LINK_SECRET").or(file.link_secret),
            smtp,
            web: file.web,
            sources: file.sources,
            subscriptions: file.subscriptions,
            listen,
        }
    }
}

fn read(path: &Path) -> Result<File, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("kan inte läsa {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_environment_beat_file_beat_defaults() {
        let file: File = toml::from_str(
            "listen = \"0.0.0.0:9000\"\ndata_dir = \"/var/lib/beslut\"\npublic_url = \"https://fil.example/\"\n\
             [subscriptions.plan]\nurl = \"http://x\"\nsecret = \"whsec_x\"",
        )
        .unwrap();
        let over = Overrides { listen: Some("127.0.0.1:1".into()), ..Overrides::default() };
        let env = |name: &str| (name == "BESLUT_PUBLIC_URL").then(|| "https://env.example".to_string());
        let config = Config::resolve(file, &over, env);
        assert_eq!(config.listen, "127.0.0.1:1");
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/beslut"));
        assert_eq!(config.public_url, "https://env.example");
        assert_eq!(config.workflows, PathBuf::from("workflows"));
        assert_eq!(config.subscriptions["plan"].events, vec!["*"]);
        let bare = Config::resolve(File::default(), &Overrides::default(), |_| None);
        assert_eq!((bare.listen.as_str(), bare.public_url.as_str()), ("127.0.0.1:8080", "http://127.0.0.1:8080"));
    }

    #[test]
    fn a_misspelt_key_is_an_error_that_names_it() {
        let error = toml::from_str::<File>("lisen = \"x\"").unwrap_err().to_string();
        assert!(error.contains("lisen"), "{error}");
    }
}
