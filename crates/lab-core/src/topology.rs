//! The lab's services, defined once.
//!
//! Every service of `compose/docker-compose.yml` the runner knows — its name (as the
//! agenda spells it), the `.env` variable of its port on 127.0.0.1, the cluster it
//! belongs to, its replication slot — is a [`Service`]. The CLI's `--target`/`--on`,
//! the lab-block parser's `on=`/`services=`, the cluster's lists and the tests all read
//! this one definition: no other module spells a service's name.

use std::fmt;

/// The compose profile of the standalone nodes: `docker compose up` and `build` leave
/// them out unless they are named.
pub const STANDALONE_PROFILE: &str = "standalone";

/// Which of the lab's clusters a service belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// The streaming cluster of chapters 1–5 (no compose profile).
    Streaming,
    /// Chapter 6's Patroni cluster (compose profile `patroni`; see the runner's `cluster::patroni`).
    Patroni,
    /// Nodes of their own, in no replication set-up until a chapter makes one (compose
    /// profile `standalone`): chapter 7's PostgreSQL 15 and spare 17 (chapter 9's second
    /// leader), chapter 8's two nodes and pgpool-II.
    Standalone,
}

/// The Debian release an image builds on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Suite {
    /// Debian 13: every image, PostgreSQL 17.
    Trixie,
    /// Debian 12: chapter 7's PostgreSQL 15 node.
    Bookworm,
}

impl Suite {
    /// Its name, as debootstrap and `build-base.sh --suite` take it.
    pub const fn name(self) -> &'static str {
        match self {
            Suite::Trixie => "trixie",
            Suite::Bookworm => "bookworm",
        }
    }

    /// Its image on Docker Hub.
    pub const fn hub_image(self) -> &'static str {
        match self {
            Suite::Trixie => "debian:trixie-slim",
            Suite::Bookworm => "debian:bookworm-slim",
        }
    }

    /// The compose variable that names the base its images build from.
    pub const fn variable(self) -> &'static str {
        match self {
            Suite::Trixie => "BASE_IMAGE",
            Suite::Bookworm => "BASE_IMAGE_BOOKWORM",
        }
    }
}

/// A service of the lab's compose file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Service {
    /// The primary of the streaming cluster.
    PostgresPrimary,
    /// Its synchronous standby.
    PostgresSyncStandby,
    /// Its asynchronous standby.
    PostgresAsyncStandby,
    /// Its delayed standby (`recovery_min_apply_delay`).
    PostgresDelayedStandby,
    /// pgbouncer, in front of the primary.
    Pgbouncer,
    /// etcd member 1 of the Patroni cluster.
    Etcd1,
    /// etcd member 2.
    Etcd2,
    /// etcd member 3.
    Etcd3,
    /// Patroni-managed PostgreSQL node 1.
    Patroni1,
    /// Patroni-managed PostgreSQL node 2.
    Patroni2,
    /// Patroni-managed PostgreSQL node 3.
    Patroni3,
    /// HAProxy in front of the Patroni leader (writes; its replica port has the reads).
    Haproxy,
    /// A PostgreSQL 15 node from Debian 12, with the dataset (chapter 7).
    #[cfg_attr(feature = "clap", value(name = "postgres-15"))]
    Postgres15,
    /// A blank PostgreSQL 17 node: no `db` database until a chapter makes one.
    PostgresSpare,
    /// Chapter 8's first PostgreSQL 17 node with the dataset (and Bucardo).
    PostgresA,
    /// Chapter 8's second one.
    PostgresB,
    /// pgpool-II in native replication mode in front of `postgres-a` and `postgres-b`.
    Pgpool,
}

impl Service {
    /// Every service, in the compose file's order.
    pub const ALL: [Service; 17] = [
        Service::PostgresPrimary,
        Service::PostgresSyncStandby,
        Service::PostgresAsyncStandby,
        Service::PostgresDelayedStandby,
        Service::Pgbouncer,
        Service::Etcd1,
        Service::Etcd2,
        Service::Etcd3,
        Service::Patroni1,
        Service::Patroni2,
        Service::Patroni3,
        Service::Haproxy,
        Service::Postgres15,
        Service::PostgresSpare,
        Service::PostgresA,
        Service::PostgresB,
        Service::Pgpool,
    ];

    /// The streaming cluster's PostgreSQL nodes, primary first.
    pub const STREAMING_POSTGRES: [Service; 4] = [
        Service::PostgresPrimary,
        Service::PostgresSyncStandby,
        Service::PostgresAsyncStandby,
        Service::PostgresDelayedStandby,
    ];

    /// What `runner up` starts when nothing is named: the agenda's first step.
    pub const DEFAULT_UP: [Service; 3] = [
        Service::PostgresPrimary,
        Service::PostgresSyncStandby,
        Service::Pgbouncer,
    ];

    /// The compose service name.
    pub const fn name(self) -> &'static str {
        match self {
            Service::PostgresPrimary => "postgres-primary",
            Service::PostgresSyncStandby => "postgres-sync-standby",
            Service::PostgresAsyncStandby => "postgres-async-standby",
            Service::PostgresDelayedStandby => "postgres-delayed-standby",
            Service::Pgbouncer => "pgbouncer",
            Service::Etcd1 => "etcd1",
            Service::Etcd2 => "etcd2",
            Service::Etcd3 => "etcd3",
            Service::Patroni1 => "patroni1",
            Service::Patroni2 => "patroni2",
            Service::Patroni3 => "patroni3",
            Service::Haproxy => "haproxy",
            Service::Postgres15 => "postgres-15",
            Service::PostgresSpare => "postgres-spare",
            Service::PostgresA => "postgres-a",
            Service::PostgresB => "postgres-b",
            Service::Pgpool => "pgpool",
        }
    }

    /// The `.env` variable holding its published port on 127.0.0.1.
    pub const fn port_var(self) -> &'static str {
        match self {
            Service::PostgresPrimary => "PRIMARY_PORT",
            Service::PostgresSyncStandby => "SYNC_STANDBY_PORT",
            Service::PostgresAsyncStandby => "ASYNC_STANDBY_PORT",
            Service::PostgresDelayedStandby => "DELAYED_STANDBY_PORT",
            Service::Pgbouncer => "PGBOUNCER_PORT",
            Service::Etcd1 => "ETCD1_PORT",
            Service::Etcd2 => "ETCD2_PORT",
            Service::Etcd3 => "ETCD3_PORT",
            Service::Patroni1 => "PATRONI1_PORT",
            Service::Patroni2 => "PATRONI2_PORT",
            Service::Patroni3 => "PATRONI3_PORT",
            Service::Haproxy => "HAPROXY_PORT",
            Service::Postgres15 => "POSTGRES_15_PORT",
            Service::PostgresSpare => "SPARE_PORT",
            Service::PostgresA => "POSTGRES_A_PORT",
            Service::PostgresB => "POSTGRES_B_PORT",
            Service::Pgpool => "PGPOOL_PORT",
        }
    }

    /// The cluster it belongs to.
    pub const fn topology(self) -> Topology {
        match self {
            Service::PostgresPrimary
            | Service::PostgresSyncStandby
            | Service::PostgresAsyncStandby
            | Service::PostgresDelayedStandby
            | Service::Pgbouncer => Topology::Streaming,
            Service::Etcd1
            | Service::Etcd2
            | Service::Etcd3
            | Service::Patroni1
            | Service::Patroni2
            | Service::Patroni3
            | Service::Haproxy => Topology::Patroni,
            Service::Postgres15
            | Service::PostgresSpare
            | Service::PostgresA
            | Service::PostgresB
            | Service::Pgpool => Topology::Standalone,
        }
    }

    /// The Debian release its image builds on.
    pub const fn suite(self) -> Suite {
        match self {
            Service::Postgres15 => Suite::Bookworm,
            _ => Suite::Trixie,
        }
    }

    /// The physical replication slot a standby of the streaming cluster streams
    /// through: its name with `_` for `-` (`postgres_sync_standby`).
    pub fn slot(self) -> String {
        self.name().replace('-', "_")
    }

    /// The service called `name`.
    pub fn from_name(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Every service's name, comma-separated, for error messages.
    pub fn names() -> String {
        Service::ALL.map(Service::name).join(", ")
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_clap_s_spelling() {
        for service in Service::ALL {
            assert_eq!(Service::from_name(service.name()), Some(service));
            #[cfg(feature = "clap")]
            {
                use clap::ValueEnum;
                let clap_name = service.to_possible_value().unwrap();
                assert_eq!(clap_name.get_name(), service.name());
            }
        }
        assert_eq!(Service::from_name("postgres-nowhere"), None);
        assert_eq!(Service::PostgresSyncStandby.slot(), "postgres_sync_standby");
    }

    #[test]
    fn the_compose_file_defines_every_service_and_env_every_port() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let compose = std::fs::read_to_string(root.join("compose/docker-compose.yml")).unwrap();
        let env = std::fs::read_to_string(root.join("compose/.env")).unwrap();
        for service in Service::ALL {
            assert!(
                compose.contains(&format!("\n  {}:\n", service.name())),
                "{service} is not a service of docker-compose.yml"
            );
            assert!(
                env.contains(&format!("\n{}=", service.port_var())),
                "{} is not in compose/.env",
                service.port_var()
            );
        }
    }
}
