//! `host:port` address checks for listen, primary and replica addresses.

use std::net::Ipv6Addr;

/// Checks `host:port` (or `[v6]:port`). Host names are not resolved here: a config is
/// checked on machines that cannot see the database network (CI, an ops laptop).
pub fn check_address(addr: &str) -> Result<(), String> {
    let (host, port) = split_host_port(addr)?;
    check_port(addr, port)?;
    if host.is_empty() {
        return Err(format!("address \"{addr}\" has an empty host"));
    }
    if host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(format!("address \"{addr}\" has an invalid host \"{host}\""));
    }
    Ok(())
}

fn split_host_port(addr: &str) -> Result<(&str, &str), String> {
    if let Some(bracketed) = addr.strip_prefix('[') {
        return split_ipv6(addr, bracketed);
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(format!(
            "address \"{addr}\" must be host:port (e.g. \"127.0.0.1:3306\")"
        ));
    };
    if host.contains(':') {
        return Err(format!(
            "address \"{addr}\": write an IPv6 host in brackets, e.g. \"[::1]:3306\""
        ));
    }
    Ok((host, port))
}

fn split_ipv6<'a>(addr: &'a str, bracketed: &'a str) -> Result<(&'a str, &'a str), String> {
    let Some((host, after)) = bracketed.split_once(']') else {
        return Err(format!("address \"{addr}\" has an unclosed \"[\""));
    };
    let Some(port) = after.strip_prefix(':') else {
        return Err(format!(
            "address \"{addr}\" must be [host]:port (e.g. \"[::1]:3306\")"
        ));
    };
    if host.parse::<Ipv6Addr>().is_err() {
        return Err(format!(
            "address \"{addr}\": \"{host}\" is not an IPv6 address"
        ));
    }
    Ok((host, port))
}

fn check_port(addr: &str, port: &str) -> Result<(), String> {
    // Digits only: `u16::from_str` would also take "+80".
    let valid = !port.is_empty()
        && port.chars().all(|c| c.is_ascii_digit())
        && matches!(port.parse::<u16>(), Ok(p) if p != 0);
    if valid {
        Ok(())
    } else {
        Err(format!(
            "address \"{addr}\" has an invalid port \"{port}\" (expected 1-65535)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_usual_forms() {
        for ok in [
            "127.0.0.1:3306",
            "db-primary:3306",
            "mysql.internal.example.com:1",
            "localhost:65535",
            "[::1]:3306",
            "[2001:db8::7]:6033",
            "0.0.0.0:6033",
        ] {
            assert_eq!(check_address(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_bad_forms() {
        let cases = [
            ("127.0.0.1", "must be host:port"),
            (":3306", "empty host"),
            ("db:", "invalid port"),
            ("db:0", "invalid port"),
            ("db:65536", "invalid port"),
            ("db:+80", "invalid port"),
            ("db:33o6", "invalid port"),
            ("::1:3306", "in brackets"),
            ("[::1]", "must be [host]:port"),
            ("[::1:3306", "unclosed"),
            ("[nope]:3306", "not an IPv6 address"),
            ("[]:3306", "not an IPv6 address"),
            ("my host:3306", "invalid host"),
            ("", "must be host:port"),
        ];
        for (bad, expected) in cases {
            let err = check_address(bad).expect_err(bad);
            assert!(err.contains(expected), "{bad}: {err}");
        }
    }
}
