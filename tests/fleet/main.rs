//! A fleet of Switchyards on etcd, all real and on loopback: Debian's etcd started here in a
//! temp dir, three `switchyard` processes sharing one fleet, HAProxy in front where the
//! scenario needs clients that reconnect. Each scenario of issue 14's "How it must be
//! shown" is one test; every wait polls a condition with a deadline.

#[path = "../common/mod.rs"]
mod common;
mod harness;

mod compose;
mod config;
mod consistency;
mod kill;
mod load;
mod offline;
mod outage;
mod pause;
