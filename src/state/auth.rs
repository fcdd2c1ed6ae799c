//! What client authentication keeps between logins: caching_sha2_password's cache of users
//! whose password was proven against their stored hash by full authentication (so later
//! logins take the fast path, as in MySQL), and login counts by method and result.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::lock::Unpoisoned;
use crate::config::Secret;
use crate::protocol::crypt::PasswordHash;

#[derive(Default)]
pub struct Sha2Cache {
    by_user: Mutex<HashMap<String, (PasswordHash, Secret)>>,
}

impl Sha2Cache {
    /// The password proven for `user` under exactly `hash` (a changed hash misses).
    pub fn get(&self, user: &str, hash: &PasswordHash) -> Option<Secret> {
        let map = self.by_user.locked();
        map.get(user)
            .filter(|(h, _)| h == hash)
            .map(|(_, pw)| pw.clone())
    }

    /// Keeps at most [`SHA2_CACHE_MAX`] users: a user template gives every name it takes
    /// the template's password, so a client knowing it could add a user per login. Past the
    /// limit one user is let go per user added (its next login is a full one, as after a
    /// restart): emptying the cache would send every other user to full authentication.
    pub fn insert(&self, user: &str, hash: &PasswordHash, password: Secret) {
        let mut map = self.by_user.locked();
        if map.len() >= SHA2_CACHE_MAX && !map.contains_key(user) {
            if let Some(gone) = map.keys().next().cloned() {
                map.remove(&gone);
            }
        }
        map.insert(user.to_owned(), (hash.clone(), password));
    }
}

/// The most users the caching_sha2_password cache keeps.
const SHA2_CACHE_MAX: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sha2_cache_is_bounded() {
        let cache = Sha2Cache::default();
        let hash = PasswordHash::parse("*3C1D9A8F8E8C7A5FE5C4F0A6E8D6B2E49AC4E6C3").unwrap();
        for i in 0..3 * SHA2_CACHE_MAX {
            cache.insert(&format!("u{i}_app"), &hash, Secret::new("pw"));
        }
        assert_eq!(cache.by_user.locked().len(), SHA2_CACHE_MAX);
        let last = format!("u{}_app", 3 * SHA2_CACHE_MAX - 1);
        assert!(cache.get(&last, &hash).is_some());
    }
}

/// How a client proved its password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod {
    Native,
    Sha2Fast,
    /// caching_sha2_password full authentication, password in clear over TLS.
    Sha2FullTls,
    /// caching_sha2_password full authentication, password RSA-encrypted.
    Sha2FullRsa,
}

impl LoginMethod {
    pub const ALL: [LoginMethod; 4] = [
        LoginMethod::Native,
        LoginMethod::Sha2Fast,
        LoginMethod::Sha2FullTls,
        LoginMethod::Sha2FullRsa,
    ];

    pub fn label(self) -> &'static str {
        match self {
            LoginMethod::Native => "mysql_native_password",
            LoginMethod::Sha2Fast => "caching_sha2_fast",
            LoginMethod::Sha2FullTls => "caching_sha2_full_tls",
            LoginMethod::Sha2FullRsa => "caching_sha2_full_rsa",
        }
    }
}

/// Logins (and COM_CHANGE_USER) by method: accepted, and refused for a wrong password or
/// an unknown user (a rising refused count is someone guessing).
#[derive(Default)]
pub struct LoginCounts {
    counts: [[AtomicU64; 2]; 4],
}

impl LoginCounts {
    pub fn record(&self, method: LoginMethod, accepted: bool) {
        self.counts[method as usize][usize::from(!accepted)].fetch_add(1, Ordering::Relaxed);
    }

    /// (accepted, refused) for `method`.
    pub fn get(&self, method: LoginMethod) -> (u64, u64) {
        let c = &self.counts[method as usize];
        (c[0].load(Ordering::Relaxed), c[1].load(Ordering::Relaxed))
    }
}
