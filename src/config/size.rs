//! Byte sizes in the config ("64MB", "16M", "512KB", "1G", or a plain number of bytes), as
//! operators write them in my.cnf (`max_allowed_packet = 64M`); units are powers of 1024.

const UNITS: [(&str, u64); 7] = [
    ("", 1),
    ("K", 1 << 10),
    ("KB", 1 << 10),
    ("M", 1 << 20),
    ("MB", 1 << 20),
    ("G", 1 << 30),
    ("GB", 1 << 30),
];

/// An integer followed directly by a unit that `per_unit` knows, times that unit's factor:
/// `None` if the text is not that, `Some(None)` if the product overflows. Shared with
/// durations, so that both refuse the same loose spellings ("1.5M", "64 M").
pub(super) fn scaled(text: &str, per_unit: impl Fn(&str) -> Option<u64>) -> Option<Option<u64>> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    let n = digits.parse::<u64>().ok()?;
    Some(n.checked_mul(per_unit(unit)?))
}

/// Parses an integer followed directly by an optional unit.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let per_unit = |unit: &str| {
        UNITS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(unit))
            .map(|u| u.1)
    };
    match scaled(text, per_unit) {
        Some(Some(n)) => Ok(n),
        Some(None) => Err(format!("size \"{text}\" is too large")),
        None => Err(format!(
            "invalid size \"{text}\": expected an integer, optionally followed by K, M or G"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_in_my_cnf() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("64MB"), Ok(64 << 20));
        assert_eq!(parse_size("512kb"), Ok(512 << 10));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        for bad in ["", "M", "1.5M", "64 M", "-1", "1T", "99999999999999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
