//! Where a fleet's keys live in etcd, all under `/switchyard/<fleet>/`.
//!
//! `state/` holds what every instance applies (pauses, OFFLINE backends, the config
//! document) and is the only prefix instances watch; membership and acks live beside it so
//! that heartbeats do not wake every watcher.

#[derive(Debug, Clone)]
pub struct Keys {
    root: String,
}

impl Keys {
    pub fn new(fleet: &str) -> Self {
        Keys {
            root: format!("/switchyard/{fleet}/"),
        }
    }

    /// What instances watch and apply.
    pub fn state(&self) -> String {
        format!("{}state/", self.root)
    }

    pub fn pauses(&self) -> String {
        format!("{}state/pause/", self.root)
    }

    pub fn pause(&self, tenant: &str) -> String {
        format!("{}{tenant}", self.pauses())
    }

    pub fn offline(&self, addr: &str) -> String {
        format!("{}state/offline/{addr}", self.root)
    }

    pub fn config(&self) -> String {
        format!("{}state/config", self.root)
    }

    /// A KILL request: under `state/`, so every instance's watch sees it.
    pub fn kill(&self, request: &str) -> String {
        format!("{}state/kill/{request}", self.root)
    }

    /// The instances' answers to a KILL request, one per instance.
    pub fn kill_acks(&self, request: &str) -> String {
        format!("{}killack/{request}/", self.root)
    }

    /// Which instance acts on a KILL request: the first to write it (two instances may
    /// have sessions of the same id and user).
    pub fn kill_claim(&self, request: &str) -> String {
        format!("{}killclaim/{request}", self.root)
    }

    /// Live instances: each under its own lease, gone when it stops renewing.
    pub fn live(&self) -> String {
        format!("{}live/", self.root)
    }

    /// Instances as last seen (no lease): what SHOW FLEET reports of one that went silent.
    pub fn seen(&self) -> String {
        format!("{}seen/", self.root)
    }

    /// Acks of a tenant's pause, one per instance, each under its instance's lease.
    pub fn acks(&self, tenant: &str) -> String {
        format!("{}ack/{tenant}/", self.root)
    }

    /// What a key under `state/` is about.
    pub fn classify<'k>(&self, key: &'k str) -> StateKey<'k> {
        let Some(rest) = key.strip_prefix(self.root.as_str()) else {
            return StateKey::Other;
        };
        if let Some(t) = rest.strip_prefix("state/pause/") {
            StateKey::Pause(t)
        } else if let Some(a) = rest.strip_prefix("state/offline/") {
            StateKey::Offline(a)
        } else if rest == "state/config" {
            StateKey::Config
        } else if let Some(r) = rest.strip_prefix("state/kill/") {
            StateKey::Kill(r)
        } else {
            StateKey::Other
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum StateKey<'k> {
    Pause(&'k str),
    Offline(&'k str),
    Config,
    Kill(&'k str),
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_keys_are_told_apart() {
        let k = Keys::new("prod");
        assert_eq!(k.classify(&k.pause("acme")), StateKey::Pause("acme"));
        assert_eq!(
            k.classify(&k.offline("10.0.0.1:3306")),
            StateKey::Offline("10.0.0.1:3306")
        );
        assert_eq!(k.classify(&k.config()), StateKey::Config);
        assert_eq!(k.classify(&k.kill("1-2-a")), StateKey::Kill("1-2-a"));
        assert!(!k.kill_acks("1-2-a").starts_with(&k.state()));
        assert_eq!(
            k.classify("/switchyard/other/state/config"),
            StateKey::Other
        );
        assert!(k.pause("acme").starts_with(&k.state()));
        assert!(!k.live().starts_with(&k.state()));
    }
}
