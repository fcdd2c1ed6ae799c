//! One admin connection: the opensrv-mysql shim that logs the admin in and answers each
//! command with a result set or an ERR.

use std::io;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use opensrv_mysql::{
    AsyncMysqlShim, ErrorKind, InitWriter, OkResponse, ParamParser, QueryResultWriter,
    StatementMetaWriter,
};
use tokio::io::AsyncWrite;

use super::compat::Session;
use super::framed::Refused;
use super::login::{self, Refusal};
use super::table::{Cell, Reply};
use crate::protocol::command;
use crate::state::lock::Unpoisoned;
use crate::state::SharedState;

const PLAIN_TEXT_ONLY: &str =
    "The admin port takes plain text commands only, not prepared statements";

/// The version the admin port announces.
pub const VERSION: &str = concat!("5.7.0-switchyard-admin-", env!("CARGO_PKG_VERSION"));

pub struct AdminShim {
    pub state: SharedState,
    pub salt: [u8; 20],
    pub refusal: Refusal,
    session: Session,
    /// Set by the login (which only sees `&self`); copied into `session` on first use,
    /// and watched by the connection's handshake timeout.
    user: Arc<OnceLock<String>>,
}

impl AdminShim {
    pub fn new(state: SharedState, id: u32, host: String, refusal: Refusal) -> Self {
        // '$' is avoided as opensrv's own default salt does.
        let salt = crate::protocol::auth::nonce().map(|b| if b == b'$' { b'%' } else { b });
        AdminShim {
            state,
            salt,
            refusal,
            session: Session {
                id,
                host,
                ..Session::default()
            },
            user: Arc::default(),
        }
    }

    /// Who logged in, once someone has.
    pub fn logged_in(&self) -> Arc<OnceLock<String>> {
        Arc::clone(&self.user)
    }

    /// The answer to a command the protocol library would have mishandled (see
    /// `framed.rs`): an ERR, or for COM_RESET_CONNECTION the session reset and OK.
    async fn refuse<W: AsyncWrite + Send + Unpin>(
        &mut self,
        refused: Refused,
        results: QueryResultWriter<'_, W>,
    ) -> io::Result<()> {
        let (kind, message) = match refused {
            Refused::Reset => {
                self.session().database = None;
                return results.completed(OkResponse::default()).await;
            }
            Refused::Unknown => (
                ErrorKind::ER_UNKNOWN_COM_ERROR,
                "Unknown command".to_owned(),
            ),
            Refused::Unsupported(cmd) => (
                ErrorKind::ER_UNKNOWN_COM_ERROR,
                format!(
                    "Unknown command: the admin port does not serve {} (0x{cmd:02x})",
                    command::name(cmd)
                ),
            ),
            Refused::Prepared => (ErrorKind::ER_UNSUPPORTED_PS, PLAIN_TEXT_ONLY.to_owned()),
            Refused::NotUtf8 => (
                ErrorKind::ER_INVALID_CHARACTER_STRING,
                "Invalid utf8mb4 character string: an admin command must be UTF-8".to_owned(),
            ),
            Refused::TooLarge => (
                ErrorKind::ER_NET_PACKET_TOO_LARGE,
                format!(
                    "Got a packet bigger than 'max_allowed_packet' bytes (the admin port reads {} at most): not run",
                    super::framed::MAX_PACKET
                ),
            ),
        };
        tracing::info!(admin = self.session.id, error = %message, "admin command refused");
        results.error(kind, message.as_bytes()).await
    }

    fn session(&mut self) -> &mut Session {
        if self.session.user.is_empty() {
            if let Some(user) = self.user.get() {
                self.session.user = user.clone();
            }
        }
        &mut self.session
    }
}

#[async_trait]
impl<W: AsyncWrite + Send + Unpin> AsyncMysqlShim<W> for AdminShim {
    type Error = io::Error;

    fn version(&self) -> String {
        VERSION.to_owned()
    }

    fn connect_id(&self) -> u32 {
        self.session.id
    }

    fn salt(&self) -> [u8; 20] {
        self.salt
    }

    async fn authenticate(&self, plugin: &str, user: &[u8], salt: &[u8], response: &[u8]) -> bool {
        let rt = self.state.load();
        let ok = login::check(&rt, plugin, user, salt, response);
        let name = String::from_utf8_lossy(user).into_owned();
        if ok {
            let _ = self.user.set(name.clone());
            tracing::info!(admin = self.session.id, user = %name, "admin login");
        } else {
            tracing::warn!(admin = self.session.id, user = %name, "admin login refused");
            *self.refusal.locked() = Some((name, !response.is_empty()));
        }
        ok
    }

    async fn on_prepare<'a>(
        &'a mut self,
        _query: &'a str,
        info: StatementMetaWriter<'a, W>,
    ) -> io::Result<()> {
        info.error(ErrorKind::ER_UNSUPPORTED_PS, PLAIN_TEXT_ONLY.as_bytes())
            .await
    }

    async fn on_execute<'a>(
        &'a mut self,
        _id: u32,
        _params: ParamParser<'a>,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        results
            .error(ErrorKind::ER_UNSUPPORTED_PS, PLAIN_TEXT_ONLY.as_bytes())
            .await
    }

    async fn on_close<'a>(&'a mut self, _stmt: u32)
    where
        W: 'async_trait,
    {
    }

    async fn on_query<'a>(
        &'a mut self,
        query: &'a str,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        if let Some(refused) = super::framed::refusal(query) {
            return self.refuse(refused, results).await;
        }
        // Logged without literals: an operator's mistyped `GRANT ... IDENTIFIED BY '...'`, or an
        // EXPLAIN ROUTE of a statement holding one, would leave a secret in the log.
        let logged = || crate::router::fingerprint(query.as_bytes()).1;
        tracing::debug!(admin = self.session.id, command = %logged(), "admin command");
        self.session();
        let reply = super::execute(&self.state, &self.session, query).await;
        if let Err(e) = &reply {
            // The message may quote the command: its kind says what failed.
            tracing::info!(admin = self.session.id, command = %logged(), error = ?e.kind, "admin command failed");
        }
        write_reply(results, reply).await
    }

    async fn on_init<'a>(&'a mut self, db: &'a str, w: InitWriter<'a, W>) -> io::Result<()> {
        match self.session().use_database(db) {
            Ok(()) => w.ok().await,
            Err(e) => w.error(e.kind, e.message.as_bytes()).await,
        }
    }
}

async fn write_reply<W: AsyncWrite + Send + Unpin>(
    results: QueryResultWriter<'_, W>,
    reply: Reply,
) -> io::Result<()> {
    let table = match reply {
        Ok(t) if t.columns.is_empty() => return results.completed(OkResponse::default()).await,
        Ok(t) => t,
        Err(e) => return results.error(e.kind, e.message.as_bytes()).await,
    };
    let columns = table.wire_columns();
    let mut rows = results.start(&columns).await?;
    for row in &table.rows {
        for cell in row {
            match cell {
                Cell::Null => rows.write_col(None::<u8>)?,
                Cell::Text(s) => rows.write_col(s.as_str())?,
                Cell::Count(n) => rows.write_col(*n)?,
                Cell::Int(n) => rows.write_col(*n)?,
                Cell::Flag(b) => rows.write_col(u8::from(*b))?,
                Cell::Real(x) => rows.write_col(*x)?,
            }
        }
        rows.end_row().await?;
    }
    rows.finish().await
}
