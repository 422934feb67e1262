//! HAProxy's statistics, as its stats page (`/;csv`) and its admin socket (`show
//! stat`) print them: CSV under a `# pxname,svname,…` header. Read with the `csv` crate,
//! columns found by their names in the header (not by position), so a HAProxy that
//! adds columns is still read right.

use anyhow::{Context, Result};

/// The servers of `backend` whose `status` is `UP`, in the order HAProxy lists them
/// (its `FRONTEND` and `BACKEND` summary lines are not servers).
pub fn up_servers(stats: &str, backend: &str) -> Result<Vec<String>> {
    let text = stats
        .trim_start()
        .strip_prefix("# ")
        .context("HAProxy's statistics do not start with their `# pxname,…` header")?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .context("HAProxy's statistics header")?
        .clone();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("HAProxy's statistics have no `{name}` column"))
    };
    let (proxy, server, status) = (column("pxname")?, column("svname")?, column("status")?);
    let mut up = Vec::new();
    for row in reader.records() {
        let row = row.context("a line of HAProxy's statistics")?;
        let name = row.get(server).unwrap_or_default();
        if row.get(proxy) == Some(backend)
            && !matches!(name, "FRONTEND" | "BACKEND")
            && row.get(status) == Some("UP")
        {
            up.push(name.to_string());
        }
    }
    Ok(up)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATS: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight\n\
        primary,FRONTEND,,,0,0,300,0,0,0,0,0,0,,,,,OPEN,\n\
        primary,patroni1,0,0,0,0,100,0,0,0,,0,,0,0,0,0,DOWN,1\n\
        primary,patroni2,0,0,0,0,100,0,0,0,,0,,0,0,0,0,UP,1\n\
        replicas,patroni3,0,0,0,0,100,0,0,0,,0,,0,0,0,0,UP,1\n\
        primary,BACKEND,0,0,0,0,30,0,0,0,0,0,,0,0,0,0,UP,1\n";

    #[test]
    fn the_up_servers_of_a_backend_are_read_by_column_name() {
        assert_eq!(up_servers(STATS, "primary").unwrap(), ["patroni2"]);
        assert_eq!(up_servers(STATS, "replicas").unwrap(), ["patroni3"]);
        assert!(
            up_servers(&STATS.replace(",UP,", ",DOWN,"), "primary")
                .unwrap()
                .is_empty()
        );
        // A column more before `status` moves it: still found by its name.
        let moved = STATS
            .replace("wredis,status", "wredis,extra,status")
            .replace(",0,0,UP", ",0,0,x,UP")
            .replace(",0,0,DOWN", ",0,0,x,DOWN");
        assert_eq!(up_servers(&moved, "primary").unwrap(), ["patroni2"]);
    }

    #[test]
    fn statistics_without_their_header_are_an_error() {
        assert!(up_servers("primary,patroni1,UP\n", "primary").is_err());
        assert!(up_servers("# pxname,svname\nprimary,patroni1\n", "primary").is_err());
    }
}
