//! One interactive bash in a pseudo-terminal: the reader's terminal.
//!
//! The terminal is util-linux's `script -qfec "exec bash --noprofile --norc --noediting
//! -i" /dev/null` with its standard input and output piped to the runner. `script` opens the
//! pseudo-terminal, makes bash a session leader with the terminal as its controlling
//! terminal, and copies bytes both ways: writing to its input is typing (Ctrl-C is the
//! byte `0x03`, which the terminal's line discipline turns into SIGINT for the
//! foreground job, exactly as a keyboard does), reading its output is looking at the
//! screen. It needs no `unsafe` (the workspace forbids it, and `nix::pty` plus
//! `setsid --ctty` would need a `pre_exec` or raw descriptors handed to a child) and no
//! new dependency; util-linux is on every machine the lab runs on.
//!
//! Lines are typed one at a time, each when the shell shows its prompt, because that
//! is what a reader does and it matters: a command that reads the terminal (`docker
//! compose exec` without `-T` forwards it into the container) would otherwise swallow
//! the lines typed ahead of it. The prompts are markers the runner removes (see
//! [`super::screen`]), so what is kept is the commands' output alone, as with empty
//! prompts; `PS1` also carries `$?`, the status of every command line typed.
//!
//! `script` runs its command through `$SHELL -c`, so `SHELL` is set to the bash found
//! on `PATH`, and the command `exec`s: with `SHELL=/bin/sh` (dash, a CI's default) the
//! shell in between stayed the session's leader and bash was not (seen: a background
//! job outlived the terminal).
//!
//! Nothing outlives the session: every process bash started — background jobs in their
//! own process groups included — is in bash's session, found by that session's id
//! (read from `/proc/<bash>/stat`, not assumed to be bash's pid) and killed when the
//! session closes or is dropped.

use crate::engine::SharedObserver;
use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use super::screen::{Event, Screen, clean, prompt_assignment};

/// The longest line a terminal in canonical mode accepts (`MAX_CANON` is 4096 with
/// its newline).
const MAX_LINE: usize = 4000;
/// How long the shell gets to start.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// How a typed line ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// The shell is ready for a new command; the statuses of the last pipeline.
    Ready(Vec<i64>),
    /// The shell wants the rest of a command (`PS2`).
    More,
}

/// What the terminal showed after a line was typed, up to the next prompt.
#[derive(Debug, Clone)]
pub struct Shown {
    /// The output, as the terminal showed it (escape sequences not yet removed).
    pub output: String,
    /// The prompt that ended it; `None` when the deadline came first.
    pub prompt: Option<Prompt>,
}

/// A persistent interactive bash in a pseudo-terminal.
pub struct ReaderSession {
    child: Child,
    script_group: Pid,
    stdin: ChildStdin,
    chunks: mpsc::UnboundedReceiver<Vec<u8>>,
    screen: Screen,
    events: VecDeque<Event>,
    /// bash's pid.
    bash: Pid,
    /// The id of bash's session: every process it started is in it.
    session: Option<i32>,
    /// Who hears what the terminal shows, as it arrives.
    echo: Option<SharedObserver>,
    /// Everything the terminal showed (prompts removed), for background jobs' output.
    transcript: String,
    /// Output not yet copied to stderr (a line not yet complete).
    shown: String,
    closed: bool,
}

impl ReaderSession {
    /// Starts bash in a pseudo-terminal in `dir`, with `env` added to the environment
    /// and `path` as `PATH`; sets its terminal up (no echo, 1000 rows × 200 columns, so
    /// psql never pages) and its prompts. With `echo`, what the terminal shows is
    /// reported to that observer as it arrives.
    pub async fn start(
        dir: &Path,
        env: &[(String, String)],
        path: &str,
        echo: Option<SharedObserver>,
    ) -> Result<ReaderSession> {
        // `env --default-signal`: a runner started where SIGINT is ignored (in the
        // background of a script, under nohup) passes that on to every process it
        // starts, and an ignored SIGINT stays ignored in bash's jobs: Ctrl-C would
        // interrupt nothing. The reader's terminal starts with the signals' defaults.
        let bash = find_program("bash", path)?;
        let mut child = Command::new("env")
            .args([
                "--default-signal=INT,QUIT",
                "script",
                "-qfec",
                "exec bash --noprofile --norc --noediting -i",
                "/dev/null",
            ])
            .env("SHELL", &bash)
            .current_dir(dir)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("PATH", path)
            .env("TERM", "dumb")
            .env_remove("HISTFILE")
            .env_remove("PROMPT_COMMAND")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context("starting `env … script` (coreutils, util-linux) for the reader's terminal")?;
        let script_group = Pid::from_raw(
            child
                .id()
                .context("`script` exited at once")?
                .try_into()
                .context("pid out of range")?,
        );
        let stdin = child.stdin.take().context("no stdin for `script`")?;
        let mut stdout = child.stdout.take().context("no stdout for `script`")?;
        let (tx, chunks) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = stdout.read(&mut buf).await {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut session = ReaderSession {
            child,
            script_group,
            stdin,
            chunks,
            screen: Screen::default(),
            events: VecDeque::new(),
            bash: Pid::from_raw(0),
            session: None,
            echo: None,
            transcript: String::new(),
            shown: String::new(),
            closed: false,
        };
        session.set_up().await?;
        session.transcript.clear();
        session.echo = echo;
        Ok(session)
    }

    /// Sets the new terminal up (no echo, its size, `pipefail`, the marker prompts) and
    /// waits for its first prompt; learns bash's pid.
    async fn set_up(&mut self) -> Result<()> {
        // Echo is still on and the prompt is bash's own: read up to our own line's
        // output, which the echo of the typed line cannot match (it shows `%s`).
        let setup = format!(
            "stty -echo rows 1000 cols 200; set -o pipefail; {}; unset HISTFILE; printf '__lab_ready_%s__\\n' $$",
            prompt_assignment()
        );
        self.write(&format!("{setup}\n")).await?;
        let deadline = Instant::now() + START_TIMEOUT;
        let mut seen = String::new();
        let bash = loop {
            match self.next_event(deadline).await? {
                Some(Event::Text(t)) => seen.push_str(&t),
                Some(_) => {}
                None => bail!(
                    "the reader's terminal did not start within {} s; it showed:\n{seen}",
                    START_TIMEOUT.as_secs()
                ),
            }
            if let Some(pid) = ready_pid(&seen) {
                break pid;
            }
        };
        self.bash = Pid::from_raw(bash);
        self.session = std::fs::read_to_string(format!("/proc/{bash}/stat"))
            .ok()
            .and_then(|stat| parse_stat(&stat))
            .map(|(_, session)| session);
        if self.session.is_none() {
            bail!("the reader's shell (pid {bash}) has no session in /proc/{bash}/stat");
        }
        // The prompt that follows: the shell waits for the first command.
        loop {
            match self.next_event(deadline).await? {
                Some(Event::Ready(_)) => break,
                Some(_) => {}
                None => bail!("the reader's terminal shows no prompt"),
            }
        }
        Ok(())
    }

    /// Types `line` and Enter, then waits (until `deadline`) for the next prompt.
    pub async fn type_line(&mut self, line: &str, deadline: Instant) -> Result<Shown> {
        check_typeable(line)?;
        self.write(&format!("{line}\n")).await?;
        self.wait_prompt(deadline).await
    }

    /// Presses Ctrl-C.
    pub async fn interrupt(&mut self) -> Result<()> {
        self.write("\u{3}").await
    }

    /// Reads the terminal until the next prompt, or until `deadline`.
    pub async fn wait_prompt(&mut self, deadline: Instant) -> Result<Shown> {
        let mut output = String::new();
        while let Some(event) = self.next_event(deadline).await? {
            match event {
                Event::Text(t) => output.push_str(&t),
                Event::Ready(statuses) => {
                    return Ok(Shown {
                        output,
                        prompt: Some(Prompt::Ready(statuses)),
                    });
                }
                Event::More => {
                    return Ok(Shown {
                        output,
                        prompt: Some(Prompt::More),
                    });
                }
            }
        }
        Ok(Shown {
            output,
            prompt: None,
        })
    }

    /// Takes everything the terminal has shown since it was last read, without waiting:
    /// output of background jobs between blocks, and a prompt left over by a Ctrl-C
    /// that reached the shell itself (the shell is known to be at its prompt here).
    pub fn drain(&mut self) -> Result<String> {
        loop {
            match self.chunks.try_recv() {
                Ok(chunk) => self.receive(&chunk),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    bail!("the reader's terminal closed")
                }
            }
        }
        let mut text = String::new();
        for event in self.events.drain(..) {
            if let Event::Text(t) = event {
                text.push_str(&t);
            }
        }
        Ok(text)
    }

    /// Where the transcript is now: a background job's output is the transcript from
    /// its start to its end.
    pub fn transcript_len(&self) -> usize {
        self.transcript.len()
    }

    /// The transcript from `from` on (cleaned).
    pub fn transcript_since(&self, from: usize) -> String {
        clean(self.transcript.get(from..).unwrap_or_default())
    }

    /// Kills every process of the session (bash, its jobs, what they started) and
    /// `script`, and waits (bounded) for `script` to end.
    pub async fn close(mut self) {
        self.kill_all();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }

    fn kill_all(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        if let Some(session) = self.session {
            for group in session_groups(session) {
                let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
            }
        }
        let _ = killpg(self.script_group, Signal::SIGKILL);
    }

    async fn write(&mut self, text: &str) -> Result<()> {
        self.stdin
            .write_all(text.as_bytes())
            .await
            .context("typing into the reader's terminal (it closed)")?;
        self.stdin.flush().await.context("typing into the terminal")
    }

    /// The next event, reading the terminal until `deadline`; `None` at the deadline.
    async fn next_event(&mut self, deadline: Instant) -> Result<Option<Event>> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(Some(event));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.chunks.recv()).await {
                Err(_) => return Ok(None),
                Ok(None) => bail!(
                    "the reader's terminal closed (a typed `exit` ends the reader's shell too)"
                ),
                Ok(Some(chunk)) => self.receive(&chunk),
            }
        }
    }

    fn receive(&mut self, chunk: &[u8]) {
        for event in self.screen.feed(chunk) {
            match &event {
                Event::Text(t) => {
                    self.transcript.push_str(t);
                    if self.echo.is_some() {
                        self.shown.push_str(&clean(t));
                        self.show(false);
                    }
                }
                _ if self.echo.is_some() => self.show(true),
                _ => {}
            }
            self.events.push_back(event);
        }
    }

    /// Reports the terminal's complete lines (all of it at a prompt), leaving out the
    /// runner's own sentinel lines.
    fn show(&mut self, all: bool) {
        let end = if all {
            self.shown.len()
        } else {
            self.shown.rfind('\n').map_or(0, |i| i + 1)
        };
        let text: String = self.shown.drain(..end).collect();
        let shown: String = text
            .split_inclusive('\n')
            .filter(|line| !is_sentinel_line(line))
            .collect();
        if let Some(observer) = &self.echo
            && !shown.is_empty()
        {
            observer.output(&shown);
        }
    }
}

impl Drop for ReaderSession {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// `__lab_end_<n>__ <status>`: the runner's sentinel, not the chapter's output.
fn is_sentinel_line(line: &str) -> bool {
    line.trim_end()
        .strip_prefix("__lab_end_")
        .and_then(|rest| rest.split_once("__ "))
        .is_some_and(|(n, status)| {
            n.bytes().all(|b| b.is_ascii_digit()) && status.parse::<i64>().is_ok()
        })
}

/// The pid printed by the setup line: `__lab_ready_<pid>__`.
fn ready_pid(seen: &str) -> Option<i32> {
    let mut rest = seen;
    while let Some(i) = rest.find("__lab_ready_") {
        rest = &rest[i + "__lab_ready_".len()..];
        if let Some(Ok(pid)) = rest.find("__").map(|end| rest[..end].parse()) {
            return Some(pid);
        }
    }
    None
}

/// A line a terminal can take as typed: no control characters (they would edit the
/// line or signal), and not longer than the terminal's line buffer.
pub(crate) fn check_typeable(line: &str) -> Result<()> {
    if line.len() > MAX_LINE {
        bail!(
            "a line of {} bytes cannot be typed into a terminal (its limit is about 4096)",
            line.len()
        );
    }
    if let Some(c) = line.chars().find(|c| c.is_control() && *c != '\t') {
        bail!(
            "the line holds the control character {c:?}, which a terminal would not take as text"
        );
    }
    Ok(())
}

/// The process groups of every process in session `sid` (from `/proc`).
fn session_groups(sid: i32) -> Vec<i32> {
    let mut groups = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return groups;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((group, session)) = parse_stat(&stat)
            && session == sid
            && group > 0
            && !groups.contains(&group)
        {
            groups.push(group);
        }
    }
    groups
}

/// The full path of `program` in the directories of `path` (a `PATH` value).
fn find_program(program: &str, path: &str) -> Result<std::path::PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("no `{program}` on PATH ({path}) for the reader's terminal"))
}

/// The process group and session of a `/proc/<pid>/stat` line.
fn parse_stat(stat: &str) -> Option<(i32, i32)> {
    // `pid (comm) state ppid pgrp session …`; comm may hold spaces and parentheses.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    let _state = fields.next()?;
    let _ppid = fields.next()?;
    let group = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    Some((group, session))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_lines_are_recognised() {
        assert!(is_sentinel_line("__lab_end_12__ 0\n"));
        assert!(is_sentinel_line("__lab_end_3__ 130"));
        assert!(!is_sentinel_line("echo __lab_end_3__ x\n"));
        assert!(!is_sentinel_line("__lab_end_x__ 0\n"));
    }

    #[test]
    fn stat_lines_give_group_and_session() {
        assert_eq!(
            parse_stat("4242 (runner load (x)) S 4200 4242 4100 34816 4242 4194304"),
            Some((4242, 4100))
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn the_ready_line_names_bash_and_its_echo_does_not() {
        assert_eq!(
            ready_pid("stty -echo; printf '__lab_ready_%s__\\n' $$\r\n__lab_ready_812__\r\n"),
            Some(812)
        );
        assert_eq!(ready_pid("printf '__lab_ready_%s__\\n' $$"), None);
    }

    /// The terminal itself (script + bash; no Docker): variables carry over, prompts
    /// carry statuses, Ctrl-C interrupts, and closing kills the jobs.
    #[tokio::test]
    async fn a_terminal_types_interrupts_and_leaves_nothing_behind() {
        let dir = std::env::temp_dir();
        let path = std::env::var("PATH").unwrap_or_default();
        let mut s = ReaderSession::start(&dir, &[], &path, None).await.unwrap();
        let soon = || Instant::now() + Duration::from_secs(10);
        let shown = s.type_line("t0=42; cd /", soon()).await.unwrap();
        assert_eq!(shown.prompt, Some(Prompt::Ready(vec![0])));
        let shown = s.type_line("echo \"$t0 $PWD\"", soon()).await.unwrap();
        assert_eq!(clean(&shown.output), "42 /\n");
        // pipefail, as in the engine: the pipeline fails; `!` negates, as it does there.
        let shown = s.type_line("false | true", soon()).await.unwrap();
        assert_eq!(shown.prompt, Some(Prompt::Ready(vec![1])));
        let shown = s.type_line("! false", soon()).await.unwrap();
        assert_eq!(shown.prompt, Some(Prompt::Ready(vec![0])));
        let shown = s.type_line("for i in 1 2; do", soon()).await.unwrap();
        assert_eq!(shown.prompt, Some(Prompt::More));
        let shown = s.type_line("echo $i; done", soon()).await.unwrap();
        assert_eq!(clean(&shown.output), "1\n2\n");
        s.type_line("sleep 300 &", soon()).await.unwrap();
        let shown = s.type_line("echo \"job=$!\"", soon()).await.unwrap();
        let job: i32 = crate::output::capture_line(&clean(&shown.output), "job")
            .and_then(|p| p.parse().ok())
            .unwrap();
        let shown = s
            .type_line("sleep 300", Instant::now() + Duration::from_millis(300))
            .await
            .unwrap();
        assert_eq!(shown.prompt, None);
        // Ctrl-C reaches the terminal's foreground group: pressed before bash has
        // handed the terminal to `sleep` (a loaded machine), bash alone gets it, and
        // waits out the sleep. So wait for the hand-over, as a reader waits to see the
        // command running.
        let handed = Instant::now() + Duration::from_secs(10);
        while foreground_group(s.bash.as_raw()) == Some(s.bash.as_raw()) && Instant::now() < handed
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        s.interrupt().await.unwrap();
        let shown = s.wait_prompt(soon()).await.unwrap();
        assert_eq!(shown.prompt, Some(Prompt::Ready(vec![130])));
        assert!(running(job));
        s.close().await;
        let gone = Instant::now() + Duration::from_secs(5);
        while running(job) && Instant::now() < gone {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!running(job), "job {job} outlived the session");
    }

    /// Whether `pid` still runs. A killed job whose shell is gone is reparented to
    /// PID 1, and where PID 1 does not reap (a CI container's shell) it stays a zombie
    /// (`Z`) with its `/proc` entry: dead, so not running.
    fn running(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| stat_state(&stat))
            .is_some_and(|state| !matches!(state, 'Z' | 'X'))
    }

    /// The foreground process group of `pid`'s terminal (`tpgid` in `/proc/<pid>/stat`).
    fn foreground_group(pid: i32) -> Option<i32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat[stat.rfind(')')? + 1..]
            .split_whitespace()
            .nth(5)?
            .parse()
            .ok()
    }

    fn stat_state(stat: &str) -> Option<char> {
        stat[stat.rfind(')')? + 1..]
            .split_whitespace()
            .next()?
            .chars()
            .next()
    }

    #[test]
    fn a_zombie_is_not_running() {
        assert_eq!(stat_state("9837 (sleep) Z 1 9837 9800 0"), Some('Z'));
        assert_eq!(stat_state("9837 (sle ep)) S 1 9837 9800 0"), Some('S'));
        assert!(running(std::process::id() as i32));
        assert!(!running(i32::MAX));
    }

    #[test]
    fn control_characters_and_huge_lines_cannot_be_typed() {
        assert!(check_typeable("echo\tok").is_ok());
        assert!(check_typeable("echo \u{3}").is_err());
        assert!(check_typeable(&"x".repeat(5000)).is_err());
    }
}
