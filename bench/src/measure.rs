//! Repetitions, medians and spreads.

use std::time::Duration;

/// A measured rate: the median of the repetitions, and their spread
/// ((max − min) / median).
#[derive(Clone, Debug)]
pub struct Sample {
    pub median: f64,
    pub spread: f64,
}

impl Sample {
    pub fn from_rates(mut rates: Vec<f64>) -> Self {
        rates.sort_by(f64::total_cmp);
        let median = rates[rates.len() / 2];
        let spread = (rates[rates.len() - 1] - rates[0]) / median.max(f64::MIN_POSITIVE);
        Self { median, spread }
    }
}

/// Runs `run` once to warm up, then `reps` times; each run reports how many
/// operations it did and how long they took.
pub fn median_rate(reps: usize, mut run: impl FnMut() -> anyhow::Result<(usize, Duration)>) -> anyhow::Result<Sample> {
    run()?;
    let mut rates = Vec::with_capacity(reps);
    for _ in 0..reps {
        let (n, took) = run()?;
        rates.push(n as f64 / took.as_secs_f64());
    }
    Ok(Sample::from_rates(rates))
}

/// `1234567.8` → `1,234,568`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Sample {
    /// `36,204/s ±4%`.
    pub fn rate_cell(&self) -> crate::report::Cell {
        crate::report::Cell {
            text: format!("{}/s ±{:.0}%", thousands(self.median), self.spread * 100.0),
            value: self.median,
        }
    }
}

/// Percentiles of a latency, each the median over the repetitions.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    pub p50: Duration,
    pub p99: Duration,
    /// Spread of the p50 across repetitions.
    pub spread: f64,
}

impl Latency {
    /// `run` is called once to warm up, then `reps` times; each call returns
    /// the latencies it observed.
    pub fn measure(reps: usize, mut run: impl FnMut() -> anyhow::Result<Vec<Duration>>) -> anyhow::Result<Self> {
        run()?;
        let runs = (0..reps).map(|_| run()).collect::<anyhow::Result<Vec<_>>>()?;
        Self::of_runs(runs)
    }

    /// The percentiles of each run's latencies, each the median over the
    /// runs (none of which is a warm-up).
    pub fn of_runs(runs: Vec<Vec<Duration>>) -> anyhow::Result<Self> {
        let (mut p50s, mut p99s) = (Vec::new(), Vec::new());
        for mut samples in runs {
            anyhow::ensure!(!samples.is_empty(), "a latency run observed nothing");
            samples.sort();
            p50s.push(samples[samples.len() / 2].as_secs_f64());
            p99s.push(samples[(samples.len() * 99 / 100).min(samples.len() - 1)].as_secs_f64());
        }
        anyhow::ensure!(!p50s.is_empty(), "no latency runs");
        let p50 = Sample::from_rates(p50s);
        let p99 = Sample::from_rates(p99s);
        Ok(Self {
            p50: Duration::from_secs_f64(p50.median),
            p99: Duration::from_secs_f64(p99.median),
            spread: p50.spread,
        })
    }

    /// `p99 40 µs · p50 9.1 µs ±3%`, valued by its p99 (for rows about the
    /// tail).
    pub fn tail_cell(&self) -> crate::report::Cell {
        crate::report::Cell {
            text: format!("p99 {} · p50 {} ±{:.0}%", micros(self.p99), micros(self.p50), self.spread * 100.0),
            value: self.p99.as_secs_f64(),
        }
    }

    /// `p50 9.1 µs · p99 40 µs ±3%`, valued by its p50.
    pub fn cell(&self) -> crate::report::Cell {
        crate::report::Cell {
            text: format!("p50 {} · p99 {} ±{:.0}%", micros(self.p50), micros(self.p99), self.spread * 100.0),
            value: self.p50.as_secs_f64(),
        }
    }
}

/// A duration in the unit that reads best: `850 ns`, `9.1 µs`, `1.25 ms`, `3.2 s`.
pub fn micros(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e5 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e6 {
        format!("{:.0} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// `1.5 KiB`, `312 B`, `1.2 GiB`.
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let (mut value, mut unit) = (n, 0);
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{value:.0} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// Runs `work(i)` for every `i` in `0..n`, spread over `tasks` concurrent
/// tokio tasks (task `s` takes `s`, `s + tasks`, …, one after the other):
/// the closed-loop senders of every scenario.
pub async fn fan_out<F, Fut>(tasks: usize, n: usize, work: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let handles: Vec<_> = (0..tasks)
        .map(|s| {
            let work = work.clone();
            tokio::spawn(async move {
                for i in (s..n).step_by(tasks) {
                    work(i).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for handle in handles {
        handle.await??;
    }
    Ok(())
}
