//! Parsing of human units on the command line: `64MiB`, `5s`, `k=v`.

/// `64MiB`, `512KiB`, `1GiB`, `16MB`, `4096` → bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits.parse().map_err(|_| format!("`{text}` is not a size (try 64MiB)"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => {
            return Err(format!("unknown size unit `{other}` in `{text}` (use B, KiB, MiB, GiB, KB, MB, GB)"));
        }
    };
    value.checked_mul(factor).ok_or_else(|| format!("`{text}` is too large"))
}

/// `5s`, `250ms`, `1m` → duration.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("`{text}` is not a duration ({e}; try 5s or 250ms)"))
}

/// `payload=4MiB`, `turn-sends=50000` → the limit's name and value.
pub fn parse_limit(text: &str) -> Result<(String, u64), String> {
    let (name, value) = text.split_once('=').ok_or_else(|| format!("`{text}` is not a limit: write NAME=VALUE"))?;
    pigeon_node::pigeon_store::Limits::check_name(name)?;
    Ok((name.to_string(), parse_size(value)?))
}

/// `name=value` → the pair.
pub fn parse_header(text: &str) -> Result<(String, String), String> {
    parse_pair(text).ok_or_else(|| format!("`{text}` is not a header: write name=value"))
}

/// `NAME=VALUE` as an environment variable.
pub fn parse_env(text: &str) -> Result<(String, String), String> {
    parse_pair(text).ok_or_else(|| format!("`{text}` is not an environment variable: write NAME=VALUE"))
}

fn parse_pair(text: &str) -> Option<(String, String)> {
    let (name, value) = text.split_once('=')?;
    (!name.is_empty()).then(|| (name.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_durations_headers() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("16 MB"), Ok(16_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").unwrap_err().contains("not a size"));
        assert!(parse_size("3 parsecs").unwrap_err().contains("unknown size unit"));
        assert_eq!(parse_duration("250ms"), Ok(std::time::Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_header("kind=order"), Ok(("kind".into(), "order".into())));
        assert!(parse_header("nope").is_err());
    }
}
