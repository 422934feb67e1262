//! Waiting for a condition, bounded: the one loop behind every "until the standby
//! streams", "until Patroni names a leader", "until HAProxy routes to it".
//!
//! A wait looks, sleeps `every`, looks again, and gives up at its deadline with what it
//! saw last — never later: each look is itself cut off at the deadline, so a hung
//! connection or REST call cannot stretch the wait. A look can also fail outright
//! (a failure that waiting will not mend), which ends the wait at once.

use std::future::Future;
use std::time::{Duration, Instant};

/// What one look found.
#[derive(Debug)]
pub enum Look<T> {
    /// The condition holds; the wait returns this.
    Ready(T),
    /// Not yet; what was seen, for the error if the deadline comes first.
    Pending(String),
}

/// Why a wait ended without its condition.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The deadline came first.
    #[error("{what}: not within {} s (last seen: {last})", waited.as_secs_f64())]
    TimedOut {
        /// What was waited for.
        what: String,
        /// How long it was waited for.
        waited: Duration,
        /// What the last look saw.
        last: String,
    },
    /// A look failed in a way waiting does not mend.
    #[error("{what}: {source:#}")]
    Failed {
        /// What was waited for.
        what: String,
        /// The look's error.
        source: anyhow::Error,
    },
}

/// Looks with `look` every `every` until it is ready or `deadline` passes; `what`
/// names the condition in the error.
pub async fn poll_until<T, F, Fut>(
    what: &str,
    deadline: Instant,
    every: Duration,
    mut look: F,
) -> Result<T, PollError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Look<T>>>,
{
    let started = Instant::now();
    let mut last = String::from("nothing yet");
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, look()).await {
            Ok(Ok(Look::Ready(value))) => return Ok(value),
            Ok(Ok(Look::Pending(seen))) => last = seen,
            Ok(Err(source)) => {
                return Err(PollError::Failed {
                    what: what.to_string(),
                    source,
                });
            }
            Err(_) => last = format!("{last}; the last look did not finish"),
        }
        if Instant::now() + every > deadline {
            return Err(PollError::TimedOut {
                what: what.to_string(),
                waited: started.elapsed(),
                last,
            });
        }
        tokio::time::sleep(every).await;
    }
}

/// A look's error as something seen, not a failure: for conditions that are expected
/// to fail while they do not hold (a node restarting refuses connections).
pub fn pending_on_error<T>(result: anyhow::Result<Look<T>>) -> anyhow::Result<Look<T>> {
    Ok(result.unwrap_or_else(|err| Look::Pending(format!("{err:#}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_what_the_first_ready_look_found() {
        let mut looks = 0;
        let got = poll_until(
            "the third look",
            Instant::now() + Duration::from_secs(5),
            Duration::from_millis(100),
            || {
                looks += 1;
                let n = looks;
                async move {
                    Ok(if n == 3 {
                        Look::Ready(n)
                    } else {
                        Look::Pending(format!("look {n}"))
                    })
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(got, 3);
    }

    #[tokio::test]
    async fn gives_up_at_the_deadline_with_the_last_thing_seen() {
        let start = Instant::now();
        let err = poll_until(
            "a standby streaming",
            start + Duration::from_millis(300),
            Duration::from_millis(50),
            || async { Ok(Look::<()>::Pending("standby1 catchup".into())) },
        )
        .await
        .unwrap_err();
        assert!(start.elapsed() < Duration::from_millis(400), "{err}");
        match &err {
            PollError::TimedOut { what, last, .. } => {
                assert_eq!(what, "a standby streaming");
                assert_eq!(last, "standby1 catchup");
            }
            other => panic!("not a timeout: {other}"),
        }
        assert!(err.to_string().contains("last seen: standby1 catchup"));
    }

    /// A look that hangs is cut off at the deadline: the wait is never longer.
    #[tokio::test]
    async fn a_hung_look_does_not_stretch_the_wait() {
        let start = Instant::now();
        let err = poll_until(
            "an answer",
            start + Duration::from_millis(200),
            Duration::from_millis(50),
            || async {
                std::future::pending::<()>().await;
                Ok(Look::Ready(()))
            },
        )
        .await
        .unwrap_err();
        assert!(start.elapsed() < Duration::from_millis(400));
        assert!(matches!(err, PollError::TimedOut { .. }), "{err}");
        assert!(err.to_string().contains("did not finish"), "{err}");
    }

    #[tokio::test]
    async fn a_failed_look_ends_the_wait_at_once() {
        let err = poll_until(
            "Patroni's members",
            Instant::now() + Duration::from_secs(30),
            Duration::from_millis(50),
            || async { Err::<Look<()>, _>(anyhow::anyhow!("no REST API answers")) },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, PollError::Failed { .. }), "{err}");
        assert_eq!(err.to_string(), "Patroni's members: no REST API answers");
        let err = poll_until(
            "a restart",
            Instant::now() + Duration::from_millis(100),
            Duration::from_millis(20),
            || async {
                pending_on_error(Err::<Look<()>, _>(anyhow::anyhow!("connection refused")))
            },
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("connection refused"), "{err}");
    }
}
