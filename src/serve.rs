//! `leadscore serve`: an Arrow Flight SQL server over the tables of a directory, read-only, so
//! that BI tools (DBeaver, Superset, ADBC and JDBC clients) query scores live.
//!
//! - Queries: `GetFlightInfo(CommandStatementQuery)` plans the SQL read-only and answers with its
//!   schema and a ticket; `DoGet` runs it and streams the batches. Prepared statements (what most
//!   drivers use) work the same way, without parameters.
//! - Metadata: `GetCatalogs`, `GetDbSchemas`, `GetTables` (with schemas), `GetTableTypes`,
//!   `GetSqlInfo`, so that generic clients can list the tables.
//! - Read-only: DDL, DML, COPY and SET are refused when planning; updates, bulk ingestion and
//!   transactions are refused; the session reads no files but the tables (no URL tables).
//! - Auth: every call needs `authorization: Bearer <token>`, or `Basic base64(user:token)` (any
//!   user name; base64 with or without `=` padding, as ADBC sends it). `Handshake` with basic
//!   auth answers with the bearer header for the calls that follow.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_server::FlightServiceServer;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionBeginTransactionRequest, ActionBeginTransactionResult,
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementIngest, CommandStatementQuery,
    CommandStatementUpdate, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use base64::Engine as _;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::dataframe::DataFrame;
use datafusion::prelude::SessionContext;
use futures::{Stream, TryStreamExt};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use crate::context::EngineOptions;
use crate::error::{Error, Result};
use crate::query::{plan_read_only, tables_session};
use crate::tables::TableInfo;

/// What `serve` needs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub tables: PathBuf,
    pub addr: SocketAddr,
    /// The bearer token clients must send; `None` only with `--insecure`.
    pub token: Option<String>,
    pub engine: EngineOptions,
}

/// The catalog and schema every table lives in (DataFusion's defaults).
const CATALOG: &str = "datafusion";
const SCHEMA: &str = "public";

type FlightStream<T> = Pin<Box<dyn Stream<Item = std::result::Result<T, Status>> + Send>>;

/// The Flight SQL service.
pub struct Service {
    ctx: SessionContext,
    tables: Vec<TableInfo>,
    token: Option<String>,
    /// Prepared statements: handle → SQL.
    prepared: Mutex<HashMap<String, String>>,
    next_handle: AtomicU64,
    info: SqlInfoData,
}

/// Starts the server and runs until Ctrl-C (or SIGTERM). `ready` is called with the bound
/// address once it accepts connections.
pub async fn serve(
    opts: &ServeOptions,
    ready: impl FnOnce(SocketAddr, &[TableInfo]),
) -> Result<()> {
    let service = Service::new(opts).await?;
    let listener = tokio::net::TcpListener::bind(opts.addr)
        .await
        .map_err(|e| Error::io(format!("listening on {}", opts.addr), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the bound address".to_string(), e))?;
    ready(addr, &service.tables);
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tonic::transport::Server::builder()
        .add_service(FlightServiceServer::new(service))
        .serve_with_incoming_shutdown(incoming, shutdown())
        .await
        .map_err(|e| Error::Config(format!("the server stopped: {e}")))?;
    Ok(())
}

async fn shutdown() {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn sql_info() -> SqlInfoData {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "leadscore");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
    b.append(SqlInfo::FlightSqlServerReadOnly, true);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(SqlInfo::FlightSqlServerTransaction, 0i32);
    b.append(SqlInfo::FlightSqlServerCancel, false);
    b.append(SqlInfo::SqlDdlCatalog, false);
    b.append(SqlInfo::SqlDdlSchema, false);
    b.append(SqlInfo::SqlDdlTable, false);
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.build().expect("static server information builds")
}

impl Service {
    async fn new(opts: &ServeOptions) -> Result<Service> {
        let (ctx, tables) = tables_session(&opts.tables, &opts.engine).await?;
        Ok(Service {
            ctx,
            tables,
            token: opts.token.clone(),
            prepared: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            info: sql_info(),
        })
    }

    /// Checks the `authorization` header of a call.
    fn check<T>(&self, request: &Request<T>) -> std::result::Result<(), Status> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Status::unauthenticated(
                    "no authorization: send `authorization: Bearer <token>` (or basic auth with \
                     the token as password)",
                )
            })?;
        if accepts(token, header) {
            Ok(())
        } else {
            Err(Status::unauthenticated("wrong token"))
        }
    }

    async fn plan(&self, sql: &str) -> std::result::Result<DataFrame, Status> {
        plan_read_only(&self.ctx, sql).await.map_err(|e| {
            let text = e.to_string();
            if text.contains("read-only") {
                Status::permission_denied(text)
            } else {
                Status::invalid_argument(text)
            }
        })
    }

    /// A FlightInfo for a plan, whose one endpoint carries `ticket`.
    fn info_for(
        schema: &Schema,
        ticket: Any,
        descriptor: FlightDescriptor,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        let endpoint = FlightEndpoint::new().with_ticket(Ticket {
            ticket: ticket.encode_to_vec().into(),
        });
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| Status::internal(format!("encoding the schema: {e}")))?
            .with_endpoint(endpoint)
            .with_descriptor(descriptor);
        Ok(Response::new(info))
    }

    /// Runs `sql` and streams its batches.
    async fn stream(
        &self,
        sql: &str,
    ) -> std::result::Result<Response<FlightStream<arrow_flight::FlightData>>, Status> {
        let df = self.plan(sql).await?;
        let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
        let batches = df
            .execute_stream()
            .await
            .map_err(|e| Status::internal(crate::query::sql_message(&e)))?
            .map_err(|e| arrow_flight::error::FlightError::ExternalError(Box::new(e)));
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(Status::from);
        Ok(Response::new(Box::pin(stream)))
    }

    fn one_batch<E>(
        schema: datafusion::arrow::datatypes::SchemaRef,
        batch: std::result::Result<datafusion::arrow::array::RecordBatch, E>,
    ) -> Response<FlightStream<arrow_flight::FlightData>>
    where
        arrow_flight::error::FlightError: From<E>,
        E: Send + 'static,
    {
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(futures::stream::once(async move {
                batch.map_err(arrow_flight::error::FlightError::from)
            }))
            .map_err(Status::from);
        Response::new(Box::pin(stream))
    }

    fn read_only(what: &str) -> Status {
        Status::permission_denied(format!(
            "{what}: refused, this server is read-only (queries only)"
        ))
    }
}

/// Whether an `authorization` header value carries `token`: `Bearer <token>`, or `Basic` with
/// `user:token` in base64 (padded or not).
pub fn accepts(token: &str, header: &str) -> bool {
    if let Some(t) = header.strip_prefix("Bearer ") {
        return t.trim() == token;
    }
    if let Some(b) = header.strip_prefix("Basic ") {
        let b = b.trim().trim_end_matches('=');
        let Ok(bytes) = base64::engine::general_purpose::STANDARD_NO_PAD.decode(b) else {
            return false;
        };
        let Ok(text) = String::from_utf8(bytes) else {
            return false;
        };
        return text.split_once(':').is_some_and(|(_, pass)| pass == token);
    }
    false
}

fn encode_schema(schema: &Schema) -> std::result::Result<prost::bytes::Bytes, Status> {
    let message: IpcMessage = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: datafusion::arrow::error::ArrowError| {
            Status::internal(format!("encoding the schema: {e}"))
        })?;
    Ok(message.0)
}

#[tonic::async_trait]
impl FlightSqlService for Service {
    type FlightService = Service;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> std::result::Result<Response<FlightStream<HandshakeResponse>>, Status> {
        self.check(&request)?;
        let bearer = self
            .token
            .as_ref()
            .map(|t| format!("Bearer {t}"))
            .unwrap_or_default();
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: bearer.clone().into(),
        };
        let mut response: Response<FlightStream<HandshakeResponse>> =
            Response::new(Box::pin(futures::stream::iter(vec![Ok(reply)])));
        if !bearer.is_empty() {
            let value = MetadataValue::try_from(bearer.as_str())
                .map_err(|_| Status::internal("the token is not a valid header value"))?;
            response.metadata_mut().insert("authorization", value);
        }
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        self.check(&request)?;
        let df = self.plan(&query.query).await?;
        let ticket = TicketStatementQuery {
            statement_handle: query.query.clone().into_bytes().into(),
        };
        Self::info_for(
            df.schema().as_arrow(),
            ticket.as_any(),
            request.into_inner(),
        )
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<FlightStream<arrow_flight::FlightData>>, Status> {
        self.check(&request)?;
        let sql = String::from_utf8(ticket.statement_handle.to_vec())
            .map_err(|_| Status::invalid_argument("the ticket is not a statement"))?;
        self.stream(&sql).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> std::result::Result<ActionCreatePreparedStatementResult, Status> {
        self.check(&request)?;
        let df = self.plan(&query.query).await?;
        let handle = format!("ps-{}", self.next_handle.fetch_add(1, Ordering::Relaxed));
        self.prepared
            .lock()
            .expect("not poisoned")
            .insert(handle.clone(), query.query);
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into_bytes().into(),
            dataset_schema: encode_schema(df.schema().as_arrow())?,
            parameter_schema: encode_schema(&Schema::empty())?,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> std::result::Result<(), Status> {
        self.check(&request)?;
        let handle = String::from_utf8_lossy(&query.prepared_statement_handle).to_string();
        self.prepared.lock().expect("not poisoned").remove(&handle);
        Ok(())
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        self.check(&request)?;
        let sql = self.prepared_sql(&query)?;
        let df = self.plan(&sql).await?;
        Self::info_for(df.schema().as_arrow(), query.as_any(), request.into_inner())
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<FlightStream<arrow_flight::FlightData>>, Status> {
        self.check(&request)?;
        let sql = self.prepared_sql(&query)?;
        self.stream(&sql).await
    }

    async fn do_put_prepared_statement_query(
        &self,
        _query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> std::result::Result<DoPutPreparedStatementResult, Status> {
        self.check(&request)?;
        Err(Status::unimplemented(
            "statement parameters are not supported: put the values in the SQL",
        ))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        self.check(&request)?;
        let schema = query.into_builder().schema();
        Self::info_for(&schema, query.as_any(), request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<FlightStream<arrow_flight::FlightData>>, Status> {
        self.check(&request)?;
        let mut b = query.into_builder();
        b.append(CATALOG);
        Ok(Self::one_batch(b.schema(), b.build()))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        self.check(&request)?;
        let schema = query.clone().into_builder().schema();
        Self::info_for(&schema, query.as_any(), request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<FlightStream<arrow_flight::FlightData>>, Status> {
        self.check(&request)?;
        let mut b = query.into_builder();
        b.append(CATALOG, SCHEMA);
        Ok(Self::one_batch(b.schema(), b.build()))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        self.check(&request)?;
        let schema = query.clone().into_builder().schema();
        Self::info_for(&schema, query.as_any(), request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<FlightStream<arrow_flight::FlightData>>, Status> {
        self.check(&request)?;
        let mut b = query.into_builder();
        for t in &self.tables {
            let schema = self
                .ctx
                .table(datafusion::common::TableReference::bare(t.name.as_str()))
                .await
                .map_err(|e| Status::internal(e.to_string()))?
                .schema()
                .as_arrow()
                .clone();
            b.append(CATALOG, SCHEMA, &t.name, "TABLE", &schema)
                .map_err(Status::from)?;
        }
        Ok(Self::one_batch(b.schema(), b.build()))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        self.check(&request)?;
        let schema = query.into_builder().schema();
        Self::info_for(&schema, query.as_any(), request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<FlightStream<arrow_flight::FlightData>>, Status> {
        self.check(&request)?;
        let mut b = query.into_builder();
        b.append("TABLE");
        Ok(Self::one_batch(b.schema(), b.build()))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        self.check(&request)?;
        let schema = query.clone().into_builder(&self.info).schema();
        Self::info_for(&schema, query.as_any(), request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<FlightStream<arrow_flight::FlightData>>, Status> {
        self.check(&request)?;
        let b = query.into_builder(&self.info);
        Ok(Self::one_batch(b.schema(), b.build()))
    }

    async fn do_put_statement_update(
        &self,
        _ticket: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> std::result::Result<i64, Status> {
        self.check(&request)?;
        Err(Self::read_only("an update statement"))
    }

    async fn do_put_statement_ingest(
        &self,
        _ticket: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> std::result::Result<i64, Status> {
        self.check(&request)?;
        Err(Self::read_only("bulk ingestion"))
    }

    async fn do_put_prepared_statement_update(
        &self,
        _query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> std::result::Result<i64, Status> {
        self.check(&request)?;
        Err(Self::read_only("an update statement"))
    }

    async fn do_action_begin_transaction(
        &self,
        _query: ActionBeginTransactionRequest,
        request: Request<Action>,
    ) -> std::result::Result<ActionBeginTransactionResult, Status> {
        self.check(&request)?;
        Err(Self::read_only("a transaction"))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

impl Service {
    fn prepared_sql(
        &self,
        query: &CommandPreparedStatementQuery,
    ) -> std::result::Result<String, Status> {
        let handle = String::from_utf8_lossy(&query.prepared_statement_handle).to_string();
        self.prepared
            .lock()
            .expect("not poisoned")
            .get(&handle)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no prepared statement {handle:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_auth_with_or_without_padding() {
        let t = "s3cret";
        assert!(accepts(t, "Bearer s3cret"));
        assert!(!accepts(t, "Bearer s3cre"));
        // "user:s3cret" -> dXNlcjpzM2NyZXQ= (padded), dXNlcjpzM2NyZXQ (unpadded)
        assert!(accepts(t, "Basic dXNlcjpzM2NyZXQ="));
        assert!(accepts(t, "Basic dXNlcjpzM2NyZXQ"));
        // "user:wrong"
        assert!(!accepts(t, "Basic dXNlcjp3cm9uZw=="));
        assert!(!accepts(t, "Basic !!!"));
        assert!(!accepts(t, "s3cret"));
    }
}
