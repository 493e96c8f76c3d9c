//! Durations as operators write them in flags, variables and config files.

use std::time::Duration;

/// A duration with units (`90s`, `5m`, `1h 30m`) or a bare number of
/// seconds (`90`, `0.5`), as most servers take them.
pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(seconds) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("{s:?} is not a number of seconds"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration like 90s, 5m or 90 (seconds): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use parse as duration;

    #[test]
    fn a_duration_is_a_bare_number_of_seconds_or_has_units() {
        assert_eq!(duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(duration("-1").is_err());
        assert!(duration("soon").unwrap_err().contains("90s"));
    }
}
