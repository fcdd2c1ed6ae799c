//! `RELOAD`: re-read the config file and swap it in, answering what changed; an invalid
//! file is refused with every problem and the running config stays.

use opensrv_mysql::ErrorKind;

use super::table::{AdminError, Kind, Reply, Table};
use crate::state::reload::{reload, short_list, ReloadError};
use crate::state::SharedState;

pub fn run(state: &SharedState) -> Reply {
    match reload(state) {
        Ok(report) => {
            let list = |v: &[String]| short_list(v);
            let mut t = Table::new(&[
                ("status", Kind::Text),
                ("tenants_added", Kind::Text),
                ("tenants_removed", Kind::Text),
                ("tenants_changed", Kind::Text),
                ("users_changed", Kind::Flag),
                ("clusters_changed", Kind::Flag),
                ("sections_changed", Kind::Text),
            ]);
            t.push(vec![
                "reloaded".into(),
                list(&report.added).into(),
                list(&report.removed).into(),
                list(&report.changed).into(),
                report.users_changed.into(),
                report.clusters_changed.into(),
                report.sections_changed.join(", ").into(),
            ]);
            Ok(t)
        }
        Err(e) => {
            tracing::error!(error = %e, "reload refused");
            let kind = match e {
                ReloadError::NoFile | ReloadError::FleetDocument(_) => {
                    ErrorKind::ER_NOT_SUPPORTED_YET
                }
                ReloadError::Invalid(_) | ReloadError::Files(_) | ReloadError::AdminLockout => {
                    ErrorKind::ER_UNKNOWN_ERROR
                }
            };
            Err(AdminError::new(kind, format!("RELOAD refused: {e}")))
        }
    }
}
