//! SQL `LIKE` as `SHOW ... LIKE` applies it to names, for the router (`SHOW VARIABLES`) and
//! the admin port's own SHOW statements.

/// SQL LIKE, case-insensitive: `%` any run, `_` one character, `\` escapes. Greedy with
/// one backtrack point (the last `%`), so any pattern costs O(pattern x name), not more.
pub(crate) fn like(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        let step = match p.get(pi) {
            Some(b'%') => {
                star = Some((pi + 1, si));
                pi += 1;
                continue;
            }
            Some(b'_') => Some(1),
            Some(b'\\') if pi + 1 < p.len() => p[pi + 1].eq_ignore_ascii_case(&s[si]).then_some(2),
            Some(c) => c.eq_ignore_ascii_case(&s[si]).then_some(1),
            None => None,
        };
        match (step, star) {
            (Some(n), _) => {
                pi += n;
                si += 1;
            }
            (None, Some((sp, ss))) => {
                pi = sp;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            (None, None) => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'%')
}

#[cfg(test)]
mod tests {
    use super::like;

    #[test]
    fn like_matches_names_as_show_does() {
        for (pattern, name, hit) in [
            ("read_only", "read_only", true),
            ("READ_ONLY", "read_only", true),
            ("read_only", "super_read_only", false),
            ("%read_only", "super_read_only", true),
            ("%", "x", true),
            ("", "x", false),
            ("s_rver_id", "server_id", true),
            ("server\\_id", "server_id", true),
            ("server\\_id", "serverxid", false),
            ("%_%_%", "a", false),
            ("%_%_%", "ab", true),
            ("gtid%pos", "gtid_binlog_pos", true),
            ("gtid%pos", "gtid_binlog_state", false),
            ("%o%o%", "innodb_read_only", true),
            ("max_%", "hostname", false),
        ] {
            assert_eq!(
                like(pattern.as_bytes(), name.as_bytes()),
                hit,
                "{pattern} {name}"
            );
        }
    }
}
