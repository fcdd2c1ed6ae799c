//! The routing decision for one statement: its class and hints, weighed against what the
//! session holds (transaction, pins, previous backend) and the tenant's consistency mode.

use super::{Class, Classification, RouteHint};
use crate::config::Consistency;

/// A backend of the session's tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Primary,
    Replica(usize),
}

/// What the session knows when a statement arrives.
#[derive(Debug, Clone, Default)]
pub struct SessionView {
    /// Inside a transaction on this backend (explicit, or implicit with autocommit off).
    pub txn: Option<Target>,
    /// autocommit=0: every statement opens or continues a transaction on the primary.
    pub autocommit_off: bool,
    /// Name of the first reason the session is pinned to the primary, if any.
    pub pin: Option<&'static str>,
    /// The backend holding the session's open cursors: reads stay on that connection.
    pub cursor: Option<Target>,
    /// Where the previous statement ran.
    pub last: Option<Target>,
    /// The session has written (its reads may have to see that).
    pub wrote: bool,
    pub has_replicas: bool,
    pub consistency: Option<Consistency>,
}

/// Where to send the statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    Primary,
    /// Any eligible replica (the balancer chooses); the primary if none is.
    AnyReplica,
    /// Exactly this backend.
    Exactly(Target),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub dest: Destination,
    /// Short, stable reason shown by admin and logs.
    pub reason: &'static str,
    /// A hint asked for something that could not be honoured.
    pub hint_refused: bool,
    /// Whose writes the replica must already have: the session's, the tenant's or all the
    /// primary's (`None`: any replica will do).
    pub causal: Option<Consistency>,
    /// A tighter lag budget than the tenant's, from a `max_lag=` hint.
    pub max_lag: Option<std::time::Duration>,
    /// Every server answers the read alike (it reads no data): with the primary unable to
    /// serve it, a replica out of rotation may.
    pub any_server: bool,
}

impl Route {
    fn new(dest: Destination, reason: &'static str) -> Self {
        Route {
            dest,
            reason,
            hint_refused: false,
            causal: None,
            max_lag: None,
            any_server: false,
        }
    }

    fn causal(dest: Destination, reason: &'static str, scope: Consistency) -> Self {
        Route {
            causal: Some(scope),
            ..Route::new(dest, reason)
        }
    }
}

/// The consistency a statement asks for: its `consistency=` hint, else its tenant's.
fn consistency(c: &Classification, s: &SessionView) -> (Option<Consistency>, bool) {
    match c.hints.consistency.as_deref() {
        None => (s.consistency, false),
        Some(h) => match Consistency::parse(h) {
            Some(asked) => (Some(asked), false),
            None => (s.consistency, true),
        },
    }
}

pub fn decide(c: &Classification, s: &SessionView) -> Route {
    let (consistency, bad_hint) = consistency(c, s);
    // Session scope waits only once the session wrote; the wider scopes wait for writes
    // made elsewhere, so every read checks, except one whose answer no write can change
    // (a driver's connect-time `SELECT @@max_allowed_packet`).
    let must_see_writes = match consistency {
        _ if c.effects.reads_no_data => None,
        Some(Consistency::Session) if s.wrote => consistency,
        Some(c) if c.beyond_session() => consistency,
        _ => None,
    };
    let s = &SessionView {
        consistency,
        ..s.clone()
    };
    let mut route = session_rule(c, s).unwrap_or_else(|| class_rule(c, s, must_see_writes));
    route.hint_refused |= bad_hint || !c.hints.unknown.is_empty();
    route.max_lag = c.hints.max_lag;
    match c.hints.route {
        Some(RouteHint::Primary) if route.dest != Destination::Primary => {
            if s.txn.is_some() {
                route.hint_refused = true;
            } else {
                route = Route::new(Destination::Primary, "hint");
            }
        }
        Some(RouteHint::Replica) if route.dest != Destination::AnyReplica => {
            if replica_hint_allowed(c, s) {
                route = Route {
                    causal: must_see_writes,
                    ..Route::new(Destination::AnyReplica, "hint")
                };
            } else {
                route.hint_refused = true;
            }
        }
        _ => {}
    }
    if let (Some(t), Destination::AnyReplica) = (s.cursor, route.dest) {
        // A cursor lives on one connection; reads beside it stay there, as they would on a
        // direct connection (writes go to the primary all the same).
        route = Route::new(Destination::Exactly(t), "cursor");
    }
    route.any_server = c.effects.reads_no_data && route.dest == Destination::AnyReplica;
    route
}

/// Rules that hold whatever the statement is: a transaction or a pin keeps it in place.
fn session_rule(c: &Classification, s: &SessionView) -> Option<Route> {
    if let Some(t) = s.txn {
        return Some(Route::new(Destination::Exactly(t), "transaction"));
    }
    if s.autocommit_off {
        return Some(Route::new(Destination::Primary, "autocommit off"));
    }
    if let Some(pin) = s.pin {
        return Some(Route::new(Destination::Primary, pin));
    }
    if c.class == Class::LastBackend {
        let dest = s.last.map_or(Destination::Primary, Destination::Exactly);
        return Some(Route::new(dest, "previous statement"));
    }
    None
}

fn class_rule(c: &Classification, s: &SessionView, must_see: Option<Consistency>) -> Route {
    let replica_ok = s.has_replicas && s.consistency != Some(Consistency::Primary);
    match (&c.class, must_see) {
        (Class::Read, _) if !replica_ok => Route::new(Destination::Primary, "no replicas"),
        (Class::Read, Some(scope)) => {
            Route::causal(Destination::AnyReplica, scope_reason(scope), scope)
        }
        (Class::Read, None) => Route::new(Destination::AnyReplica, "read"),
        (Class::Begin { read_only: true }, Some(scope)) if replica_ok => {
            Route::causal(Destination::AnyReplica, "read-only transaction", scope)
        }
        (Class::Begin { read_only: true }, None) if replica_ok => {
            Route::new(Destination::AnyReplica, "read-only transaction")
        }
        (Class::Begin { .. }, _) => Route::new(Destination::Primary, "transaction"),
        (Class::Use(_), _) => Route::new(Destination::Primary, "use"),
        (Class::SetSession, _) => Route::new(Destination::Primary, "session set"),
        (Class::LastBackend, _) => Route::new(Destination::Primary, "previous statement"),
        (Class::Primary(reason), _) => Route::new(Destination::Primary, reason.as_str()),
    }
}

/// The reason shown for a read that must see writes, by whose writes.
fn scope_reason(scope: Consistency) -> &'static str {
    match scope {
        Consistency::Session => "read your writes",
        Consistency::Tenant => "tenant's writes",
        _ => "primary's writes",
    }
}

/// A replica hint may only move statements that are provably reads: one the classifier
/// could not read (unparsed, unknown) may write, and a replica is no place to find out.
fn replica_hint_allowed(c: &Classification, s: &SessionView) -> bool {
    c.class == Class::Read
        && s.has_replicas
        && s.txn.is_none()
        && !s.autocommit_off
        && s.pin.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::{Effects, Hints, PrimaryReason};

    fn cls(class: Class, route: Option<RouteHint>) -> Classification {
        Classification {
            class,
            hints: Hints {
                route,
                ..Hints::default()
            },
            effects: Effects::default(),
        }
    }

    fn view() -> SessionView {
        SessionView {
            has_replicas: true,
            ..SessionView::default()
        }
    }

    #[test]
    fn reads_go_to_replicas_writes_to_primary() {
        assert_eq!(
            decide(&cls(Class::Read, None), &view()).dest,
            Destination::AnyReplica
        );
        let w = cls(Class::Primary(PrimaryReason::Write), None);
        assert_eq!(decide(&w, &view()).dest, Destination::Primary);
        assert_eq!(decide(&w, &view()).reason, "write");
    }

    #[test]
    fn transaction_and_pins_keep_reads_in_place() {
        let mut v = view();
        v.txn = Some(Target::Replica(1));
        let r = decide(&cls(Class::Read, None), &v);
        assert_eq!(r.dest, Destination::Exactly(Target::Replica(1)));
        let mut v = view();
        v.pin = Some("temporary table");
        assert_eq!(
            decide(&cls(Class::Read, None), &v).reason,
            "temporary table"
        );
        let mut v = view();
        v.autocommit_off = true;
        assert_eq!(
            decide(&cls(Class::Read, None), &v).dest,
            Destination::Primary
        );
    }

    #[test]
    fn open_cursors_keep_reads_on_their_connection() {
        let mut v = view();
        v.cursor = Some(Target::Replica(1));
        let r = decide(&cls(Class::Read, None), &v);
        assert_eq!(
            (r.dest, r.reason),
            (Destination::Exactly(Target::Replica(1)), "cursor")
        );
        let w = cls(Class::Primary(PrimaryReason::Write), None);
        assert_eq!(decide(&w, &v).dest, Destination::Primary);
    }

    #[test]
    fn hints_override_within_limits() {
        let r = decide(&cls(Class::Read, Some(RouteHint::Primary)), &view());
        assert_eq!((r.dest, r.reason), (Destination::Primary, "hint"));
        for reason in [PrimaryReason::Unparsed, PrimaryReason::Unknown] {
            let r = decide(
                &cls(Class::Primary(reason), Some(RouteHint::Replica)),
                &view(),
            );
            assert_eq!(
                r.dest,
                Destination::Primary,
                "{reason:?} is no provable read"
            );
            assert!(r.hint_refused);
        }
        let write = cls(
            Class::Primary(PrimaryReason::Write),
            Some(RouteHint::Replica),
        );
        let r = decide(&write, &view());
        assert_eq!(r.dest, Destination::Primary);
        assert!(r.hint_refused);
    }

    #[test]
    fn no_replicas_or_consistency_primary_means_primary() {
        let mut v = view();
        v.has_replicas = false;
        assert_eq!(
            decide(&cls(Class::Read, None), &v).dest,
            Destination::Primary
        );
        let mut v = view();
        v.consistency = Some(Consistency::Primary);
        assert_eq!(
            decide(&cls(Class::Read, None), &v).dest,
            Destination::Primary
        );
        let mut v = view();
        v.wrote = true;
        v.consistency = Some(Consistency::Session);
        assert_eq!(
            decide(&cls(Class::Read, None), &v).reason,
            "read your writes"
        );
    }

    #[test]
    fn consistency_hints_ask_for_more_or_less() {
        let mut v = view();
        v.wrote = true;
        v.consistency = Some(Consistency::Eventual);
        let mut c = cls(Class::Read, None);
        assert!(decide(&c, &v).causal.is_none());
        c.hints.consistency = Some("read_your_writes".into());
        assert_eq!(decide(&c, &v).causal, Some(Consistency::Session));
        c.hints.consistency = Some("tenant".into());
        assert_eq!(decide(&c, &v).causal, Some(Consistency::Tenant));
        v.wrote = false;
        assert_eq!(
            decide(&c, &v).causal,
            Some(Consistency::Tenant),
            "the tenant's writes matter before the session wrote"
        );
        v.wrote = true;
        c.hints.consistency = Some("primary".into());
        assert_eq!(decide(&c, &v).dest, Destination::Primary);
        c.hints.consistency = Some("sometimes".into());
        let r = decide(&c, &v);
        assert!(r.hint_refused && r.causal.is_none());
    }

    #[test]
    fn a_read_of_no_data_waits_for_no_write() {
        let mut v = view();
        v.wrote = true;
        let mut c = cls(Class::Read, None);
        c.effects.reads_no_data = true;
        for scope in [
            Consistency::Session,
            Consistency::Tenant,
            Consistency::Global,
        ] {
            v.consistency = Some(scope);
            let r = decide(&c, &v);
            assert_eq!(
                (r.dest, r.causal, r.any_server),
                (Destination::AnyReplica, None, true)
            );
        }
        c.hints.consistency = Some("tenant".into());
        assert!(decide(&c, &v).causal.is_none());
        v.consistency = Some(Consistency::Primary);
        c.hints.consistency = None;
        let r = decide(&c, &v);
        assert_eq!((r.dest, r.any_server), (Destination::Primary, false));
    }

    #[test]
    fn only_a_read_of_no_data_routed_to_replicas_may_go_to_any_server() {
        let v = view();
        let mut c = cls(Class::Read, None);
        assert!(!decide(&c, &v).any_server, "a read of data");
        c.effects.reads_no_data = true;
        assert!(decide(&c, &v).any_server);
        let in_txn = SessionView {
            txn: Some(Target::Primary),
            ..view()
        };
        assert!(!decide(&c, &in_txn).any_server, "a transaction's read");
    }

    #[test]
    fn previous_statement_follows_last_backend() {
        let mut v = view();
        v.last = Some(Target::Replica(0));
        let r = decide(&cls(Class::LastBackend, None), &v);
        assert_eq!(r.dest, Destination::Exactly(Target::Replica(0)));
    }
}
