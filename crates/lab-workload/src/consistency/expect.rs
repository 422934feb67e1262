//! What a chapter expects of the anomaly counts, and the verdict line.
//!
//! Chapter 9 states each anomaly and its fix as a pair of expectations — `stale`, then
//! `no-stale` with the fix — and `runner consistency` exits 1 when one does not hold.
//! An expectation of *absence* needs something to have been observed: "no stale read"
//! over zero reads of one's own write, or "no row lost" over zero rows seen, shows
//! nothing, so it fails rather than pass on an empty log (the 0-of-0 case).

use super::check::Anomalies;

/// One expectation of the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Expect {
    /// Some read missed its session's own acknowledged write.
    Stale,
    /// No read did (over at least one read after an own write).
    NoStale,
    /// Some read went back in time.
    Regression,
    /// None did (over at least two reads).
    NoRegression,
    /// Some row that was read is gone from the survivor.
    PhantomLost,
    /// None is (over at least one row seen, checked on a survivor).
    NoPhantomLost,
}

impl Expect {
    /// Why the expectation does not hold for `a`, or `None` when it holds.
    pub fn failure(self, a: &Anomalies) -> Option<String> {
        let lost = a.phantom_lost.as_ref().map(Vec::len);
        let holds = match self {
            Expect::Stale => !a.stale.is_empty(),
            Expect::NoStale => a.stale.is_empty() && a.reads_after_own_write > 0,
            Expect::Regression => !a.regressions.is_empty(),
            Expect::NoRegression => a.regressions.is_empty() && a.reads > 1,
            Expect::PhantomLost => lost.is_some_and(|n| n > 0),
            Expect::NoPhantomLost => lost == Some(0) && a.keys_seen > 0,
        };
        (!holds).then(|| {
            let what = match self {
                Expect::Stale => "expected stale reads, found none",
                Expect::NoStale => "expected no stale read (after at least one own write)",
                Expect::Regression => "expected a read to go back in time, none did",
                Expect::NoRegression => "expected no regression (over at least two reads)",
                Expect::PhantomLost => "expected a row read and then lost (checked with --on)",
                Expect::NoPhantomLost => "expected every row read to survive (checked with --on)",
            };
            format!("FAILED: {what}")
        })
    }
}

/// The expectations of `expects` that do not hold, each as a `FAILED: …` text.
pub fn failures(expects: &[Expect], a: &Anomalies) -> Vec<String> {
    expects.iter().filter_map(|e| e.failure(a)).collect()
}

/// The verdict line's text: the failures when there are some, else what was counted.
pub fn verdict(a: &Anomalies, failures: &[String]) -> String {
    if !failures.is_empty() {
        return failures.join("; ");
    }
    let lost = a.phantom_lost.as_ref().map_or(0, Vec::len);
    if a.stale.is_empty() && a.regressions.is_empty() && lost == 0 {
        "no anomaly".into()
    } else {
        format!(
            "{} stale read(s), {} regression(s), {} row(s) read then lost",
            a.stale.len(),
            a.regressions.len(),
            lost
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absence_over_nothing_observed_fails() {
        let empty = Anomalies::default();
        assert!(Expect::NoStale.failure(&empty).is_some());
        assert!(Expect::NoRegression.failure(&empty).is_some());
        // No survivor checked: "nothing lost" is not shown either.
        assert!(Expect::NoPhantomLost.failure(&empty).is_some());
        let checked_nothing_seen = Anomalies {
            phantom_lost: Some(Vec::new()),
            ..Anomalies::default()
        };
        assert!(
            Expect::NoPhantomLost
                .failure(&checked_nothing_seen)
                .is_some()
        );
    }

    #[test]
    fn an_absence_over_observations_holds() {
        let a = Anomalies {
            reads: 5,
            reads_after_own_write: 5,
            keys_seen: 3,
            phantom_lost: Some(Vec::new()),
            ..Anomalies::default()
        };
        let all = [Expect::NoStale, Expect::NoRegression, Expect::NoPhantomLost];
        assert!(failures(&all, &a).is_empty());
        assert_eq!(verdict(&a, &[]), "no anomaly");
        // And the presence expectations fail on the same counts.
        let present = [Expect::Stale, Expect::Regression, Expect::PhantomLost];
        let f = failures(&present, &a);
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(verdict(&a, &f).starts_with("FAILED: expected stale reads"));
    }
}
