//! The HTTP side: the routes, the request's life, and the status each outcome gets.
//!
//! | outcome | status | body |
//! |---|---|---|
//! | committed | 201 | `{"op_id": N}` |
//! | no primary: refused, cut, read-only, no connection in time | 503 + `Retry-After: 1` | `{"op_id": N, "error": "<class>", "detail": "..."}` |
//! | the commit hit its bound (`timeout`; `syncrep_cancelled`: committed locally, not confirmed by the standby) | 504 | same |
//! | every pool connection stayed busy for the connect bound | 503 | `"error": "other"`, and the detail says so |
//! | any other database error | 500 | same |
//! | a body that is not `{"op_id": <positive integer>}` | 400 / 415 / 422 | axum's text |
//!
//! The `error` field carries the ledger's class tokens (`connection_refused`,
//! `read_only`, …), so a client-side ledger keeps the same vocabulary as `runner
//! load`'s.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::App;
use crate::load::pacing::Rng;
use crate::load::transaction::Rental;
use crate::load::{ErrorClass, Stage};

/// The routes: `POST /rentals`, and `GET /health` (the app itself is up).
pub(super) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/rentals", post(rent))
        .route("/health", get(|| async { "ok\n" }))
        .with_state(app)
}

/// The body of `POST /rentals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RentalRequest {
    op_id: i64,
}

/// The body of every answer to `POST /rentals`.
#[derive(Debug, Serialize)]
struct RentalAnswer {
    op_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

/// The status a failed request gets, by the class of its error.
pub(super) fn status_of(class: &ErrorClass) -> StatusCode {
    match class {
        ErrorClass::ConnectionRefused
        | ErrorClass::ConnectionClosed
        | ErrorClass::ConnectTimeout
        | ErrorClass::ReadOnly => StatusCode::SERVICE_UNAVAILABLE,
        ErrorClass::Timeout | ErrorClass::SyncRepCancelled => StatusCode::GATEWAY_TIMEOUT,
        ErrorClass::Sql(_) | ErrorClass::Other => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `POST /rentals`: one transaction with the client's op id.
async fn rent(State(app): State<Arc<App>>, Json(request): Json<RentalRequest>) -> Response {
    let op = request.op_id;
    if op <= 0 {
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            op,
            Some((
                "bad_request".into(),
                "op_id must be a positive integer".into(),
            )),
        );
    }
    let (status, result) = {
        // Dropped however the request ends (a client that hangs up drops it midway).
        let _in_flight = InFlight::enter(&app);
        run(&app, op).await
    };
    app.count(status.as_u16(), &result);
    match result {
        Ok(_) => answer(status, op, None),
        Err((_, class, detail)) => answer(status, op, Some((class.token(), detail))),
    }
}

/// Counts a request as in flight while it lives.
struct InFlight<'a>(&'a App);

impl<'a> InFlight<'a> {
    fn enter(app: &'a App) -> InFlight<'a> {
        app.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(app)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The status and how it went: the commit's latency, or where and why it failed.
type Outcome = (
    StatusCode,
    Result<std::time::Duration, (Stage, ErrorClass, String)>,
);

async fn run(app: &App, op: i64) -> Outcome {
    let Some(mut slot) = app.pool.slot().await else {
        // Not a database error: the app's own limit. Counted under its own token.
        let detail = format!(
            "every pool connection stayed busy for {:?}",
            app.pool.connect_bound()
        );
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Err((Stage::Connect, ErrorClass::Other, detail)),
        );
    };
    let mut conn = match slot.conn.take() {
        Some(conn) => conn,
        None => match app.transactor.connect().await {
            Ok(conn) => {
                app.connected();
                conn
            }
            Err((class, detail)) => {
                return (status_of(&class), Err((Stage::Connect, class, detail)));
            }
        },
    };
    let rental = Rental::random(op, &mut Rng::new(op as u64 ^ 0x9E37_79B9_7F4A_7C15));
    let sent = Instant::now();
    let result = app
        .transactor
        .transact(&mut conn, &rental, std::future::pending())
        .await;
    let latency = sent.elapsed();
    app.pool.put_back(conn, result.drop_connection);
    match result.outcome {
        Ok(()) => (StatusCode::CREATED, Ok(latency)),
        Err((class, detail)) => (status_of(&class), Err((Stage::Transaction, class, detail))),
    }
}

/// The JSON answer; 503s say when to retry.
fn answer(status: StatusCode, op: i64, error: Option<(String, String)>) -> Response {
    let (error, detail) = error.unzip();
    let mut response = (
        status,
        Json(RentalAnswer {
            op_id: op,
            error,
            detail,
        }),
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_primary_is_503_a_commit_bound_504_the_rest_500() {
        for class in [
            ErrorClass::ConnectionRefused,
            ErrorClass::ConnectionClosed,
            ErrorClass::ConnectTimeout,
            ErrorClass::ReadOnly,
        ] {
            assert_eq!(
                status_of(&class),
                StatusCode::SERVICE_UNAVAILABLE,
                "{class}"
            );
        }
        assert_eq!(status_of(&ErrorClass::Timeout), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(
            status_of(&ErrorClass::SyncRepCancelled),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            status_of(&ErrorClass::Sql(
                tokio_postgres::error::SqlState::UNIQUE_VIOLATION
            )),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn answers_carry_the_op_and_the_class() {
        let ok = answer(StatusCode::CREATED, 7, None);
        assert_eq!(ok.status(), StatusCode::CREATED);
        assert!(ok.headers().get(header::RETRY_AFTER).is_none());
        let down = answer(
            StatusCode::SERVICE_UNAVAILABLE,
            7,
            Some(("connection_refused".into(), "x".into())),
        );
        assert_eq!(down.headers()[header::RETRY_AFTER], "1");
        let body = serde_json::to_value(RentalAnswer {
            op_id: 7,
            error: Some("read_only".into()),
            detail: None,
        })
        .unwrap();
        assert_eq!(body, serde_json::json!({"op_id": 7, "error": "read_only"}));
    }
}
