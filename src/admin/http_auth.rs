//! Who may read the status page and `/api/...`: `server.http_auth = "admin"` asks for HTTP
//! basic auth with `[admin]`'s user and password; `"none"` lets everyone in.

use base64::Engine;
use hyper::header::AUTHORIZATION;
use hyper::HeaderMap;
use sha2::{Digest, Sha256};

use crate::config::{Config, HttpAuth};

/// The `WWW-Authenticate` challenge sent with a 401.
pub const CHALLENGE: &str = "Basic realm=\"Switchyard\", charset=\"UTF-8\"";

/// Whether a request with `headers` may read the status page under `config`.
pub fn allowed(headers: &HeaderMap, config: &Config) -> bool {
    match config.server.http_auth {
        HttpAuth::None => true,
        HttpAuth::Admin => {
            // Without an [admin] user there is no credential that could be right.
            let Some(admin) = &config.admin else {
                return false;
            };
            let Some((user, password)) = basic_credentials(headers) else {
                return false;
            };
            // Both compared, whichever is wrong: the time taken tells nothing about either.
            let user_ok = same(&user, &admin.user);
            let password_ok = same(&password, admin.password.expose());
            user_ok & password_ok
        }
    }
}

/// The user and password of an `Authorization: Basic ...` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Equality in time independent of where the strings differ (and of their lengths: the
/// digests are what is compared).
fn same(given: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn config(server: &str, admin: bool) -> Config {
        let mut text = format!(
            "[server]\n{server}\n[[tenants]]\nname = \"t\"\nschemas = [\"s\"]\nprimary = \"127.0.0.1:3307\"\n"
        );
        if admin {
            text.push_str("[admin]\nuser = \"ops\"\npassword = \"s3cret:x\"\n");
        }
        crate::config::parse(&text, &|_| None).unwrap()
    }

    fn basic(user_pass: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode(user_pass);
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {v}")).unwrap(),
        );
        h
    }

    #[test]
    fn admin_mode_wants_the_admin_user_and_password() {
        let c = config("", true);
        assert!(
            allowed(&basic("ops:s3cret:x"), &c),
            "a colon in the password"
        );
        assert!(!allowed(&basic("ops:s3cret"), &c));
        assert!(!allowed(&basic("admin:s3cret:x"), &c));
        assert!(!allowed(&HeaderMap::new(), &c));
        let mut bearer = HeaderMap::new();
        bearer.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert!(!allowed(&bearer, &c));
        let mut garbage = HeaderMap::new();
        garbage.insert(AUTHORIZATION, HeaderValue::from_static("Basic %%%"));
        assert!(!allowed(&garbage, &c));
    }

    #[test]
    fn admin_mode_without_an_admin_section_lets_nobody_in() {
        let c = config("", false);
        assert!(!allowed(&basic(":"), &c));
        assert!(!allowed(&HeaderMap::new(), &c));
    }

    #[test]
    fn none_mode_lets_everyone_in() {
        let c = config("http_auth = \"none\"", true);
        assert!(allowed(&HeaderMap::new(), &c));
    }
}
