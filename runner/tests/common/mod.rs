//! Test clusters: each test binary gets its own compose project and ports, torn down
//! before and after, so a cluster left running by a reader never breaks a test run.
//!
//! The tests that need Docker are `#[ignore = "needs Docker: ./course test runs it"]`:
//! plain `cargo test` is the fast tier (no cluster, no browser), and `./course test`
//! installs what they need and runs every test (`-- --include-ignored`).

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use runner::cluster::Cluster;
use runner::cluster::settings::Settings;

/// How many ports a test project gets: at least one per `*_PORT` variable of
/// compose/.env (23 today), checked by [`test_settings`].
pub const PORT_STRIDE: u16 = 32;

/// Each test project's slot: its ports are `25000 + slot * PORT_STRIDE ..`, so no two
/// projects share a port, whichever tests run at once.
pub mod slot {
    pub const LOAD: u16 = 0;
    pub const CLUSTER: u16 = 1;
    pub const CHAPTER: u16 = 2;
    pub const PORTS: u16 = 3;
    pub const READER: u16 = 4;
    pub const K6: u16 = 5;
    pub const WATCH: u16 = 6;
    pub const CHAOS: u16 = 7;
}

/// The first port of project slot `slot`.
pub const fn port_base(slot: u16) -> u16 {
    25000 + slot * PORT_STRIDE
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Settings for a private project `name`: every `*_PORT` variable of compose/.env
/// (the databases', the app's, Patroni's REST APIs', HAProxy's) moved to one of
/// `port_base ..`, in the variables' order.
pub fn test_settings(name: &str, port_base: u16) -> Settings {
    let mut settings = Settings::load(&repo_root()).expect("compose/.env");
    settings
        .vars
        .insert("COMPOSE_PROJECT_NAME".into(), name.into());
    let ports: Vec<String> = settings
        .vars
        .keys()
        .filter(|k| k.ends_with("_PORT"))
        .cloned()
        .collect();
    assert!(
        ports.len() <= usize::from(PORT_STRIDE),
        "compose/.env has {} port variables, more than a test project's {PORT_STRIDE}: \
         raise PORT_STRIDE",
        ports.len()
    );
    for (i, var) in ports.iter().enumerate() {
        settings
            .vars
            .insert(var.clone(), (port_base + i as u16).to_string());
    }
    settings
}

/// A cluster torn down (with its volumes) when created and when dropped.
pub struct TestCluster {
    pub cluster: Cluster,
}

impl TestCluster {
    pub async fn new(name: &str, port_base: u16) -> TestCluster {
        let cluster = Cluster::connect(test_settings(name, port_base))
            .await
            .expect("docker");
        cluster.down(true).await.expect("tear down before");
        TestCluster { cluster }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let settings = self.cluster.settings.clone();
        // Best effort, bounded: compose itself is bounded inside `down`.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                if let Ok(c) = Cluster::connect(settings).await {
                    let _ = c.down(true).await;
                }
            })
        })
        .join();
    }
}

/// An observer that prints what a run does to stderr, which the test harness shows when
/// a test fails.
pub struct Printed;

impl runner::lab::engine::Observer for Printed {
    fn note(&self, text: &str) {
        eprintln!("{text}");
    }

    fn step_started(
        &self,
        chapter: &runner::lab::Chapter,
        block: &runner::lab::Block,
        command: &str,
    ) {
        eprintln!(
            "── {} [{}] ──\n{command}",
            block.location(&chapter.path),
            block.id
        );
    }

    fn output(&self, text: &str) {
        eprint!("{text}");
    }

    fn step_ended(&self, block: &runner::lab::Block, record: &runner::lab::record::BlockRecord) {
        eprintln!("[{}] ok = {}", block.id, record.ok);
    }
}

/// A shared [`Printed`].
pub fn printed() -> runner::lab::engine::SharedObserver {
    std::sync::Arc::new(Printed)
}

/// Waits until the primary holds more than `min_bytes` of WAL it never sent to the
/// (paused) standby `application_name`, and at least 2 s have passed: the writes a
/// promotion of that standby must lose. Bounded by `within`.
pub async fn primary_gets_ahead_of(
    primary: &runner::cluster::session::Session,
    application_name: &str,
    min_bytes: f64,
    within: Duration,
) {
    let paused = Instant::now();
    let unsent_sql = format!(
        "SELECT pg_current_wal_lsn() - sent_lsn FROM pg_stat_replication \
         WHERE application_name = '{application_name}'"
    );
    loop {
        let unsent: f64 = runner::cluster::pg::scalar(primary, &unsent_sql)
            .await
            .unwrap()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if unsent > min_bytes && paused.elapsed() > Duration::from_secs(2) {
            eprintln!("--- {unsent} bytes of WAL the paused standby was never sent");
            return;
        }
        assert!(
            paused.elapsed() < within,
            "the primary did not get ahead of the paused standby ({unsent} bytes)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The op ids of `range` in `rental` on the node behind `client`: the ground truth a
/// test compares `runner verify` with, read a second way.
pub async fn present_ops(
    client: &runner::cluster::session::Session,
    range: std::ops::RangeInclusive<i64>,
) -> std::collections::BTreeSet<i64> {
    let sql = format!(
        "SELECT op_id FROM rental WHERE op_id BETWEEN {} AND {}",
        range.start(),
        range.end()
    );
    runner::cluster::pg::rows(client, &sql)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|row| row.into_iter().next().flatten())
        .map(|id| id.parse::<i64>().unwrap())
        .collect()
}
