//! `[fleet]`: the names, etcd endpoints and waits of an instance in a fleet.

use std::time::Duration;

use super::super::address::check_address;
use super::super::raw::{RawFleet, Str};
use super::super::FleetConfig;
use super::Resolver;

const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(3);
const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_ETCD_TIMEOUT: Duration = Duration::from_secs(2);
/// etcd's `MaxLeaseTTL`.
const MAX_LEASE_TTL: Duration = Duration::from_secs(9_000_000_000);

impl Resolver<'_, '_, '_> {
    pub(super) fn fleet(&mut self, raw: &RawFleet, listen: &str) -> FleetConfig {
        let name = self.fleet_name("fleet.name", &raw.name);
        let instance = self.fleet_name("fleet.instance", &raw.instance);
        let etcd = self.endpoints(&raw.etcd);
        let advertise = self
            .optional_address("fleet.advertise", raw.advertise.as_ref())
            .unwrap_or_else(|| listen.to_string());
        // etcd counts leases in whole seconds and keeps one alive at a third of its TTL.
        let lease_ttl = self.duration_at_least(
            "fleet.lease_ttl",
            raw.lease_ttl.as_ref(),
            DEFAULT_LEASE_TTL,
            Duration::from_secs(2),
        );
        if let (true, Some(s)) = (lease_ttl > MAX_LEASE_TTL, &raw.lease_ttl) {
            // etcd refuses a longer lease: the instance would never join its fleet.
            let m = format!(
                "must be at most {}s (etcd's limit)",
                MAX_LEASE_TTL.as_secs()
            );
            self.sink.at("fleet.lease_ttl", s.span(), m);
        }
        if let (true, Some(s)) = (lease_ttl.subsec_nanos() != 0, &raw.lease_ttl) {
            // "2900ms" was cut to 2 s without a word.
            self.sink.at(
                "fleet.lease_ttl",
                s.span(),
                "must be whole seconds (etcd counts leases in seconds)".to_string(),
            );
        }
        FleetConfig {
            name,
            etcd,
            instance,
            advertise,
            lease_ttl,
            ack_timeout: self.nonzero(
                "fleet.ack_timeout",
                raw.ack_timeout.as_ref(),
                DEFAULT_ACK_TIMEOUT,
            ),
            etcd_timeout: self.nonzero(
                "fleet.etcd_timeout",
                raw.etcd_timeout.as_ref(),
                DEFAULT_ETCD_TIMEOUT,
            ),
            document_cache: raw
                .document_cache
                .as_ref()
                .and_then(|s| self.string("fleet.document_cache", s))
                .filter(|p| !p.is_empty())
                .map(std::path::PathBuf::from),
        }
    }

    /// Fleet and instance names become etcd key segments: no `/`, nothing a shell or a log
    /// line would mangle.
    fn fleet_name(&mut self, path: &str, s: &Str) -> String {
        let Some(name) = self.string(path, s) else {
            return String::new();
        };
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            self.sink.at(
                path,
                s.span(),
                format!("\"{name}\" must be 1 to 64 of A-Z a-z 0-9 - _ ."),
            );
        }
        name
    }

    fn endpoints(&mut self, raw: &toml::Spanned<Vec<Str>>) -> Vec<String> {
        if raw.get_ref().is_empty() {
            self.sink.at(
                "fleet.etcd",
                raw.span(),
                "lists no endpoint (e.g. [\"http://127.0.0.1:2379\"])".to_string(),
            );
        }
        let mut out = Vec::new();
        for (i, s) in raw.get_ref().iter().enumerate() {
            let path = format!("fleet.etcd[{i}]");
            let Some(url) = self.string(&path, s) else {
                continue;
            };
            let hostport = url.strip_prefix("http://").unwrap_or(&url);
            if url.starts_with("https://") {
                let m = "https endpoints are not supported yet: reach etcd over a private network or a local TLS proxy".to_string();
                self.sink.at(&path, s.span(), m);
            } else if let Err(m) = check_address(hostport) {
                self.sink.at(&path, s.span(), m);
            } else {
                out.push(format!("http://{hostport}"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    const BASE: &str = "[server]\nlisten = \"127.0.0.1:6033\"\n";

    fn errors(fleet: &str) -> String {
        match parse(&format!("{BASE}[fleet]\n{fleet}"), &|_| None) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_and_normalised_endpoints() {
        let text = format!("{BASE}[fleet]\nname = \"prod\"\netcd = [\"10.0.0.1:2379\", \"http://e2:2379\"]\ninstance = \"sy-1\"\n");
        let f = parse(&text, &|_| None).unwrap().fleet.unwrap();
        assert_eq!(f.etcd, ["http://10.0.0.1:2379", "http://e2:2379"]);
        assert_eq!(f.advertise, "127.0.0.1:6033");
        assert_eq!(f.lease_ttl, std::time::Duration::from_secs(3));
        assert!(parse(BASE, &|_| None).unwrap().fleet.is_none());
    }

    #[test]
    fn bad_values_are_named() {
        let long = errors("name = \"a\"\netcd = [\"127.0.0.1:2379\"]\ninstance = \"i\"\nlease_ttl = \"200000d\"\n");
        assert!(long.contains("fleet.lease_ttl"), "{long}");
        let e = errors("name = \"a/b\"\netcd = []\ninstance = \"\"\nlease_ttl = \"1s\"\n");
        for part in [
            "fleet.name",
            "fleet.etcd",
            "fleet.instance",
            "fleet.lease_ttl",
        ] {
            assert!(e.contains(part), "{part} missing from:\n{e}");
        }
        let e = errors(
            "name = \"p\"\netcd = [\"https://e:2379\"]\ninstance = \"i\"\nack_timeout = \"0s\"\n",
        );
        assert!(e.contains("https endpoints are not supported"), "{e}");
        assert!(e.contains("fleet.ack_timeout"), "{e}");
        assert!(
            errors("name = \"p\"\netcd = [\"e:2379\"]\ninstance = \"i\"\nbogus = 1\n")
                .contains("bogus")
        );
    }
}
