//! `runner watch` on a real terminal: started under tmux against a cluster of its own
//! (`lab-test-watch`, ports of its own), it must show the primary and its streaming
//! synchronous standby; when the primary is SIGKILLed, the primary as down and the
//! standby without its WAL receiver within a few refreshes; after the standby's
//! promotion, it as the primary on timeline 2; and `q` must leave it with exit code 0.
//! The screen is read the way a person reads it, with `tmux capture-pane -p`.
//!
//! Needs tmux (`apt-get install tmux`).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::TestCluster;
use runner::cluster::images::BaseWay;
use runner::cluster::topology::Service;
use runner::cluster::{DEFAULT_SERVICES, compose, pg};

const PROJECT: &str = "lab-test-watch";
const PORT_BASE: u16 = common::port_base(common::slot::WATCH);

/// A tmux server of the test's own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket]);
        cmd
    }

    /// The pane's text as a person sees it.
    fn screen(&self) -> String {
        let out = self
            .command()
            .args(["capture-pane", "-p", "-t", "watch"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (bounded) until `test` holds for the screen; returns that screen.
    fn wait_for(&self, what: &str, within: Duration, test: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if test(&screen) {
                eprintln!(
                    "--- {what}: after {:.1} s\n{screen}",
                    started.elapsed().as_secs_f64()
                );
                return screen;
            }
            assert!(
                started.elapsed() < within,
                "the screen did not show {what} within {within:?}; it shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").output();
    }
}

/// The node table's row of `node` (the line whose first cell is its name).
fn row<'a>(screen: &'a str, node: &str) -> Option<&'a str> {
    screen.lines().find(|line| {
        line.trim_start_matches(['│', ' '])
            .strip_prefix(node)
            .is_some_and(|rest| rest.starts_with(' '))
    })
}

fn cells(line: &str) -> Vec<&str> {
    line.trim_matches(['│', ' ']).split_whitespace().collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker: ./course test runs it"]
async fn watch_shows_a_failover_on_a_terminal() {
    let tmux_there = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        tmux_there,
        "this test reads runner watch's screen through tmux: apt-get install tmux"
    );
    let mut test = TestCluster::new(PROJECT, PORT_BASE).await;
    test.cluster
        .up(DEFAULT_SERVICES, BaseWay::Auto)
        .await
        .unwrap_or_else(|err| panic!("{err:#}"));
    let settings = test.cluster.settings.clone();

    // runner watch in a 160x45 terminal, pointed at the test's project.
    let tmux = Tmux {
        socket: format!("runner-watch-test-{}", std::process::id()),
    };
    let runner = PathBuf::from(env!("CARGO_BIN_EXE_runner"));
    let mut start = tmux.command();
    start
        .args(["new-session", "-d", "-s", "watch", "-x", "160", "-y", "45"])
        .arg(format!(
            "{} watch --interval 500ms; echo \"watch exited $?\"; sleep 60",
            runner.display()
        ))
        .env("LAB_ROOT", &settings.root)
        .env("COMPOSE_PROJECT_NAME", settings.project());
    for service in Service::ALL {
        start.env(
            service.port_var(),
            settings.var(service.port_var()).unwrap(),
        );
    }
    let status = start.status().expect("tmux new-session");
    assert!(status.success(), "tmux new-session failed");

    let primary = "postgres-primary";
    let standby = "postgres-sync-standby";
    let screen = tmux.wait_for(
        "the primary and its synchronous standby streaming",
        Duration::from_secs(30),
        |s| {
            row(s, primary).is_some_and(|r| cells(r)[1] == "primary")
                && row(s, standby).is_some_and(|r| {
                    let c = cells(r);
                    c[1] == "standby"
                        && c[3] == "streaming"
                        && c[4] == "sync/1"
                        && r.contains("streaming from postgres-primary:5432")
                })
        },
    );
    assert!(
        screen.contains("runner watch · project lab-test-watch"),
        "{screen}"
    );
    assert!(
        screen.contains("postgres_sync_standby"),
        "the slot:\n{screen}"
    );
    assert!(screen.contains("pgbouncer: "), "{screen}");

    // SIGKILL the primary.
    compose::run(
        &settings,
        &["kill", primary],
        Duration::from_secs(60),
        false,
    )
    .await
    .unwrap_or_else(|err| panic!("{err:#}"));
    let killed = Instant::now();
    tmux.wait_for(
        "the primary down and the standby without its WAL receiver",
        Duration::from_secs(20),
        |s| {
            row(s, primary).is_some_and(|r| cells(r)[1] == "DOWN" && r.contains("exited"))
                && row(s, standby)
                    .is_some_and(|r| cells(r)[1] == "standby" && !r.contains("streaming from"))
                && s.contains("SyncRep: no primary answers")
        },
    );
    eprintln!(
        "--- the screen showed the kill {:.1} s after it",
        killed.elapsed().as_secs_f64()
    );

    // Promote the standby: the screen shows it as the primary of timeline 2.
    let client = pg::connect(&settings, standby, "postgres")
        .await
        .unwrap_or_else(|err| panic!("{err:#}"));
    pg::scalar(&client, "SELECT pg_promote(true, 30)")
        .await
        .unwrap_or_else(|err| panic!("{err:#}"));
    tmux.wait_for(
        "the promoted standby as the primary of timeline 2",
        Duration::from_secs(20),
        |s| row(s, standby).is_some_and(|r| cells(r)[1] == "primary" && cells(r)[2] == "2"),
    );

    // p pauses, q quits with the terminal restored and exit code 0.
    let keys = |key: &str| {
        let status = tmux
            .command()
            .args(["send-keys", "-t", "watch", key])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    };
    keys("p");
    tmux.wait_for("PAUSED", Duration::from_secs(5), |s| s.contains("PAUSED"));
    keys("q");
    tmux.wait_for("watch exited 0", Duration::from_secs(10), |s| {
        s.contains("watch exited 0") && !s.contains("┌ Nodes")
    });
    drop(tmux);
    drop(test);
}
