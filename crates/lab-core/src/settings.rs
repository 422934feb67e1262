//! Where the project lives and how its cluster is reached.
//!
//! Everything the runner needs to find the cluster comes from one place: the repo's
//! `compose/.env` (the same file `docker compose` reads), overridden by the process
//! environment exactly as compose overrides it. So the runner, the chapters' shell
//! steps and a reader's own `docker compose` commands all agree on ports, passwords
//! and the project name — and a test can move the whole cluster aside by setting
//! `COMPOSE_PROJECT_NAME` and the `*_PORT` variables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::topology::Service;

/// The compose project name used when neither the environment nor `.env` sets one.
pub const DEFAULT_PROJECT: &str = "replication-lab";

/// The project's layout and settings, resolved once.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The repository root (holds `book/` and `compose/`).
    pub root: PathBuf,
    /// `.env` merged with the environment (the environment wins).
    pub vars: BTreeMap<String, String>,
}

impl Settings {
    /// Finds the project root from `LAB_ROOT`, or by walking up from the current
    /// directory (and then from the executable) to a folder holding
    /// `compose/docker-compose.yml`, and loads `compose/.env`.
    pub fn discover() -> Result<Settings> {
        let root = match std::env::var_os("LAB_ROOT") {
            Some(root) => PathBuf::from(root),
            None => find_root().context(
                "cannot find the project (a folder with compose/docker-compose.yml) \
                 above the current directory; run from the repository or set LAB_ROOT",
            )?,
        };
        Settings::load(&root)
    }

    /// Loads the settings of the project at `root`.
    pub fn load(root: &Path) -> Result<Settings> {
        let env_file = root.join("compose/.env");
        let text = std::fs::read_to_string(&env_file)
            .with_context(|| format!("reading {}", env_file.display()))?;
        let mut vars =
            parse_env_file(&text).with_context(|| format!("parsing {}", env_file.display()))?;
        for (key, value) in std::env::vars() {
            if vars.contains_key(&key) || key == "COMPOSE_PROJECT_NAME" {
                vars.insert(key, value);
            }
        }
        Ok(Settings {
            root: root.to_path_buf(),
            vars,
        })
    }

    /// The compose directory (where `docker compose` commands run).
    pub fn compose_dir(&self) -> PathBuf {
        self.root.join("compose")
    }

    /// The book directory.
    pub fn book_dir(&self) -> PathBuf {
        self.root.join("book")
    }

    /// The compose project name.
    pub fn project(&self) -> &str {
        self.vars
            .get("COMPOSE_PROJECT_NAME")
            .map(String::as_str)
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_PROJECT)
    }

    /// A variable from `.env` or the environment.
    pub fn var(&self, key: &str) -> Result<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .with_context(|| format!("{key} is not set in compose/.env nor in the environment"))
    }

    /// The superuser's password.
    pub fn postgres_password(&self) -> Result<&str> {
        self.var("POSTGRES_PASSWORD")
    }

    /// The port on 127.0.0.1 where `service` is published.
    pub fn port(&self, service: &str) -> Result<u16> {
        let var = Service::from_name(service)
            .with_context(|| format!("unknown service {service:?} (known: {})", Service::names()))?
            .port_var();
        let value = self.var(var)?;
        value
            .parse()
            .with_context(|| format!("{var}={value:?} is not a port number"))
    }

    /// A libpq-style connection string for `service` through its published port.
    pub fn conninfo(&self, service: &str, dbname: &str) -> Result<String> {
        Ok(format!(
            "host=127.0.0.1 port={} user=postgres password={} dbname={dbname} \
             application_name=runner connect_timeout=5",
            self.port(service)?,
            self.postgres_password()?
        ))
    }

    /// The connection string of a command's `--target`/`--on` `service` (`what` names
    /// the flag's meaning in the error: `target`, `service`), to its `db` database; or
    /// `conninfo` as given, `service` then only naming it.
    pub fn command_conninfo(
        &self,
        what: &str,
        service: &str,
        conninfo: Option<&str>,
    ) -> Result<String> {
        if let Some(conninfo) = conninfo {
            return Ok(conninfo.to_string());
        }
        if Service::from_name(service).is_none() {
            bail!(
                "unknown {what} {service:?} (known: {}); or pass --conninfo",
                Service::names()
            );
        }
        self.conninfo(service, "db")
    }
}

fn find_root() -> Option<PathBuf> {
    let starts = [std::env::current_dir().ok(), std::env::current_exe().ok()];
    starts.into_iter().flatten().find_map(|start| {
        start
            .ancestors()
            .find(|dir| dir.join("compose/docker-compose.yml").is_file())
            .map(Path::to_path_buf)
    })
}

/// Parses a compose `.env` file: `KEY=value` lines, `#` comments, optional quotes.
pub fn parse_env_file(text: &str) -> Result<BTreeMap<String, String>> {
    let mut vars = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            bail!("line {}: expected KEY=value, found {line:?}", n + 1);
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        vars.insert(key.trim().to_string(), value.to_string());
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_keeps_inner_quotes_and_skips_comments() {
        let vars =
            parse_env_file("# comment\nA=1\nSYNC=FIRST 1 (\"postgres-sync-standby\")\nB='x y'\n\n")
                .unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["SYNC"], "FIRST 1 (\"postgres-sync-standby\")");
        assert_eq!(vars["B"], "x y");
    }

    #[test]
    fn env_file_rejects_a_line_without_equals() {
        let err = parse_env_file("A=1\noops\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
