//! caching_sha2_password's server-side cache: users whose password was proven against their
//! stored hash by full authentication, so later logins take the fast path (as in MySQL).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::Secret;
use crate::protocol::crypt::PasswordHash;

#[derive(Default)]
pub struct Sha2Cache {
    by_user: Mutex<HashMap<String, (PasswordHash, Secret)>>,
}

impl Sha2Cache {
    /// The password proven for `user` under exactly `hash` (a changed hash misses).
    pub fn get(&self, user: &str, hash: &PasswordHash) -> Option<Secret> {
        let map = self.by_user.lock().unwrap_or_else(|p| p.into_inner());
        map.get(user)
            .filter(|(h, _)| h == hash)
            .map(|(_, pw)| pw.clone())
    }

    pub fn insert(&self, user: &str, hash: &PasswordHash, password: Secret) {
        let mut map = self.by_user.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(user.to_owned(), (hash.clone(), password));
    }
}
