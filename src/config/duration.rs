//! Duration strings in the config ("500ms", "10s", "5m", "8h", "1d"): parsing and printing.

use std::time::Duration;

use super::size::scaled;

const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses an integer followed directly by one unit. Anything looser ("1.5s", "10 s", "10")
/// is refused so a typo cannot silently become a different length of time.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match scaled(text, |unit| {
        UNITS.iter().find(|(name, _)| *name == unit).map(|u| u.1)
    }) {
        Some(Some(ms)) => Ok(Duration::from_millis(ms)),
        Some(None) => Err(format!("duration \"{text}\" is too large")),
        None => Err(format!(
            "invalid duration \"{text}\": expected an integer followed by ms, s, m, h or d \
             (e.g. \"500ms\", \"10s\", \"8h\")"
        )),
    }
}

/// Prints a duration in the largest unit that represents it exactly, so `check` output
/// reads like the config that produced it.
pub fn format_duration(d: Duration) -> String {
    let millis = d.as_millis();
    if millis == 0 {
        return "0s".to_string();
    }
    UNITS
        .iter()
        .find(|(_, per)| millis.is_multiple_of(u128::from(*per)))
        .map(|(name, per)| format!("{}{name}", millis / u128::from(*per)))
        .unwrap_or_else(|| format!("{millis}ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_loose_forms() {
        for bad in [
            "", "10", "s", "1.5s", "10 s", " 10s", "-1s", "+1s", "10sec", "10S", "1h30m",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains("invalid duration"), "{bad}: {err}");
        }
    }

    #[test]
    fn rejects_overflow() {
        let err = parse_duration("99999999999999999d").expect_err("overflow");
        assert!(err.contains("too large"), "{err}");
    }

    #[test]
    fn formats_in_largest_exact_unit() {
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(2)), "2s");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_secs(8 * 3600)), "8h");
        assert_eq!(format_duration(Duration::from_secs(86_400)), "1d");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
