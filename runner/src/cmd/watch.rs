//! `runner watch`: the cluster's replication on one screen, refreshed every second.
//!
//! The probing and the drawing are the library's (`runner::watch`); this is the
//! terminal around them: raw mode and the alternate screen, restored on every way out
//! (`q`, Esc, Ctrl-C, SIGINT/SIGTERM/SIGHUP, an error, a panic), keys read on a thread of
//! their own, the probe in a task of its own so a slow frame never delays a key.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::crossterm::{cursor, execute, terminal};
use runner::cluster::settings::Settings;
use runner::watch::view::{self, ViewState};
use runner::watch::{Prober, Snapshot, WriterSource};
use tokio::sync::{mpsc, watch};

/// The bound on one `--once` frame (fresh connections, Docker included).
const ONCE_BOUND: Duration = Duration::from_secs(2);

#[derive(clap::Args)]
pub struct WatchArgs {
    /// Print one frame as plain text and exit (for scripts and the book).
    #[arg(long)]
    once: bool,
    /// How often to refresh (100ms to 60s); each frame is bounded by half of it.
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    interval: Duration,
    /// The `runner load` ledger to follow. Without it: the newest `*.ledger` in
    /// compose/ or the current directory written in the last two minutes.
    #[arg(long, value_name = "PATH")]
    ledger: Option<PathBuf>,
}

/// The project's one duration syntax ([`runner::load::parse_duration`]), between
/// 100 ms and 60 s.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = runner::load::parse_duration(text)?;
    if interval < Duration::from_millis(100) || interval > Duration::from_secs(60) {
        return Err(format!("{text} is not between 100ms and 60s"));
    }
    Ok(interval)
}

/// What the keyboard and the signals ask of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Quit,
    Pause,
    Redraw,
}

pub async fn run(settings: &Settings, args: WatchArgs) -> Result<ExitCode> {
    let writer = Some(match args.ledger {
        Some(path) => WriterSource::Path(path),
        None => WriterSource::Newest(Prober::default_ledger_dirs(settings)),
    });
    if args.once {
        let mut prober = Prober::new(settings.clone(), ONCE_BOUND, writer).await;
        let snapshot = prober.probe().await;
        let mut out = std::io::stdout().lock();
        out.write_all(view::plain(&snapshot).as_bytes())
            .and_then(|()| out.flush())
            .context("writing the frame")?;
        return Ok(ExitCode::SUCCESS);
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!("runner watch draws on a terminal; `runner watch --once` prints one frame as text");
    }
    let bound = (args.interval / 2).clamp(Duration::from_millis(50), Duration::from_secs(5));
    let prober = Prober::new(settings.clone(), bound, writer).await;
    let guard = TerminalGuard::enter()?;
    let result = run_screen(prober, args.interval).await;
    drop(guard);
    result.map(|()| ExitCode::SUCCESS)
}

async fn run_screen(mut prober: Prober, interval: Duration) -> Result<()> {
    let mut terminal =
        Terminal::new(CrosstermBackend::new(std::io::stdout())).context("opening the terminal")?;
    terminal.clear().context("clearing the terminal")?;
    let (controls, mut control_rx) = mpsc::unbounded_channel();
    spawn_key_reader(controls.clone());
    spawn_signal_watchers(controls);

    // The probe, in a task of its own: one frame per tick while not paused.
    let (snapshot_tx, mut snapshot_rx) = watch::channel::<Option<Snapshot>>(None);
    let (paused_tx, mut paused_rx) = watch::channel(false);
    let probing = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                changed = paused_rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // Resumed: a fresh frame now.
                    if *paused_rx.borrow_and_update() {
                        continue;
                    }
                    ticker.reset();
                }
            }
            if *paused_rx.borrow() {
                continue;
            }
            let snapshot = prober.probe().await;
            if snapshot_tx.send(Some(snapshot)).is_err() {
                return;
            }
        }
    });

    let mut state = ViewState {
        paused: false,
        interval,
    };
    let mut snapshot: Option<Snapshot> = None;
    let outcome = loop {
        if let Err(err) = terminal.draw(|f| view::draw(f, snapshot.as_ref(), &state)) {
            break Err(anyhow::Error::new(err).context("drawing the frame"));
        }
        tokio::select! {
            changed = snapshot_rx.changed() => {
                if changed.is_err() {
                    break Err(anyhow::anyhow!("the probe stopped unexpectedly"));
                }
                snapshot = snapshot_rx.borrow_and_update().clone();
            }
            control = control_rx.recv() => match control {
                Some(Control::Quit) | None => break Ok(()),
                Some(Control::Pause) => {
                    state.paused = !state.paused;
                    let _ = paused_tx.send(state.paused);
                }
                Some(Control::Redraw) => {}
            },
        }
    };
    probing.abort();
    let _ = terminal.show_cursor();
    outcome
}

/// Keys on a thread of their own (crossterm's reads block): `q`/Esc/Ctrl-C quit, `p`
/// pauses, a resize redraws. The thread ends when the loop is gone.
fn spawn_key_reader(controls: mpsc::UnboundedSender<Control>) {
    std::thread::spawn(move || {
        while !controls.is_closed() {
            match event::poll(Duration::from_millis(250)) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(_) => {
                    let _ = controls.send(Control::Quit);
                    return;
                }
            }
            let control = match event::read() {
                Ok(Event::Key(key)) if key.kind != KeyEventKind::Release => match key.code {
                    KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                        Some(Control::Quit)
                    }
                    KeyCode::Char('q' | 'Q') | KeyCode::Esc => Some(Control::Quit),
                    KeyCode::Char('p' | 'P' | ' ') => Some(Control::Pause),
                    _ => None,
                },
                Ok(Event::Resize(..)) => Some(Control::Redraw),
                Ok(_) => None,
                Err(_) => Some(Control::Quit),
            };
            if let Some(control) = control
                && (controls.send(control).is_err() || control == Control::Quit)
            {
                return;
            }
        }
    });
}

/// SIGINT, SIGTERM and SIGHUP end the loop (and so restore the terminal).
fn spawn_signal_watchers(controls: mpsc::UnboundedSender<Control>) {
    use tokio::signal::unix::{SignalKind, signal};
    for kind in [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
    ] {
        let controls = controls.clone();
        if let Ok(mut signals) = signal(kind) {
            tokio::spawn(async move {
                if signals.recv().await.is_some() {
                    let _ = controls.send(Control::Quit);
                }
            });
        }
    }
}

/// Raw mode and the alternate screen, left on every way out: when dropped (a return,
/// an error, an unwinding panic) and from the panic hook (a panic on another thread).
struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> Result<TerminalGuard> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
        // Made first, so a half-entered terminal is left too.
        let guard = TerminalGuard;
        terminal::enable_raw_mode().context("switching the terminal to raw mode")?;
        execute!(std::io::stdout(), EnterAlternateScreen, cursor::Hide)
            .context("entering the alternate screen")?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn restore_terminal() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(std::io::stdout(), LeaveAlternateScreen, cursor::Show);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_bounded() {
        assert_eq!(parse_interval("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_interval("10ms").is_err());
        assert!(parse_interval("2m").is_err());
        assert!(parse_interval("soon").is_err());
    }
}
