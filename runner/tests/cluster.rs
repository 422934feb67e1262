//! The lab cluster from nothing: images, compose, `up`, streaming, slots, pgbouncer.

mod common;

use std::time::Duration;

use common::{TestCluster, port_base, slot};
use runner::cluster::DEFAULT_SERVICES;
use runner::cluster::images::BaseWay;
use runner::cluster::pg;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker: ./course test runs it"]
async fn cluster_from_nothing_streams_and_serves_writes() {
    let mut test = TestCluster::new("lab-test-cluster", port_base(slot::CLUSTER)).await;
    let cluster = &mut test.cluster;
    cluster
        .up(DEFAULT_SERVICES, BaseWay::Auto)
        .await
        .expect("runner up");
    let settings = cluster.settings.clone();

    let primary = pg::connect(&settings, "postgres-primary", "db")
        .await
        .unwrap();
    let rows = pg::rows(
        &primary,
        "SELECT state, sync_state FROM pg_stat_replication WHERE application_name = 'postgres-sync-standby'",
    )
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![vec![
            Some("streaming".to_string()),
            Some("sync".to_string())
        ]]
    );
    let slot = pg::scalar(
        &primary,
        "SELECT active FROM pg_replication_slots WHERE slot_name = 'postgres_sync_standby'",
    )
    .await
    .unwrap();
    assert_eq!(slot.as_deref(), Some("t"));

    // A row written on the primary is readable on the standby (synchronous: at once
    // once remote_apply; with `on` it is flushed there, so poll briefly for replay).
    pg::rows(
        &primary,
        "CREATE TABLE probe(v text); INSERT INTO probe VALUES ('written on the primary')",
    )
    .await
    .unwrap();
    let standby = pg::connect(&settings, "postgres-sync-standby", "db")
        .await
        .unwrap();
    let mut seen = None;
    for _ in 0..50 {
        if let Ok(v) = pg::scalar(&standby, "SELECT v FROM probe").await {
            seen = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen.as_deref(), Some("written on the primary"));

    // A write through pgbouncer succeeds.
    let bouncer = pg::connect(&settings, "pgbouncer", "db").await.unwrap();
    let id = pg::scalar(
        &bouncer,
        "INSERT INTO rental (inventory_id, customer_id) VALUES (1, 1) RETURNING rental_id",
    )
    .await
    .unwrap();
    assert!(id.is_some());

    // `up` again is a no-op, and `status` reports the standby as sync.
    cluster
        .up(DEFAULT_SERVICES, BaseWay::Auto)
        .await
        .expect("second up");
    let (nodes, cl_waiting) = cluster.status().await.unwrap();
    let sync = nodes
        .iter()
        .find(|n| n.service == "postgres-sync-standby")
        .unwrap();
    assert_eq!(
        (
            sync.role.as_str(),
            sync.state.as_str(),
            sync.sync_state.as_str()
        ),
        ("standby", "streaming", "sync")
    );
    assert_eq!(sync.slot_active, "yes");
    assert_eq!(cl_waiting, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker: ./course test runs it"]
async fn a_port_already_taken_names_the_port_and_the_service() {
    let base = port_base(slot::PORTS);
    let primary: u16 = common::test_settings("lab-test-ports", base).vars["PRIMARY_PORT"]
        .parse()
        .unwrap();
    let held = std::net::TcpListener::bind(("127.0.0.1", primary)).expect("a free port to hold");
    let mut test = TestCluster::new("lab-test-ports", base).await;
    let err = test
        .cluster
        .up(DEFAULT_SERVICES, BaseWay::Auto)
        .await
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains(&format!("port {primary} on 127.0.0.1 (service postgres-primary, PRIMARY_PORT in compose/.env) is already in use")),
        "{message}"
    );
    drop(held);
}
