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
