//! The Prometheus text format (0.0.4), made from the OpenMetrics text the
//! node renders, for scrapers and tools that ask for `text/plain`
//! (`promtool check metrics`, older Prometheus servers, `curl`).
//!
//! The two formats differ in three ways that matter here: a counter's
//! `HELP` and `TYPE` lines name the sample (`..._total`) rather than the
//! family, `UNIT` lines do not exist, and there is no `# EOF`. Everything
//! else (samples, labels, histogram buckets) is written the same way.
//! Prometheus itself asks for OpenMetrics and gets it unchanged.

/// Whether an `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| accept.contains("application/openmetrics-text"))
}

/// `openmetrics` in the Prometheus text format.
pub fn from_openmetrics(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .filter(|(_, kind)| *kind == "counter")
        .map(|(family, _)| family)
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (family, tail) = rest.split_once(' ')?;
            counters.contains(family).then(|| format!("{prefix}{family}_total {tail}"))
        });
        match renamed {
            Some(line) => out.push_str(&line),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn counters_are_named_by_their_sample_and_openmetrics_only_lines_go() {
        let openmetrics = "# HELP jobs Jobs done.\n# TYPE jobs counter\njobs_total 3\n\
                           # HELP lag Lag.\n# TYPE lag gauge\n# UNIT lag seconds\nlag 0.5\n# EOF\n";
        assert_eq!(
            super::from_openmetrics(openmetrics),
            "# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\njobs_total 3\n\
             # HELP lag Lag.\n# TYPE lag gauge\nlag 0.5\n"
        );
    }

    #[test]
    fn only_an_openmetrics_accept_gets_openmetrics() {
        assert!(super::wants_openmetrics(Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")));
        assert!(!super::wants_openmetrics(Some("text/plain; version=0.0.4")));
        assert!(!super::wants_openmetrics(None));
    }
}
