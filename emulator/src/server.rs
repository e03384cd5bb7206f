//! The emulator's HTTP server and the pipeline every request goes through: count it, add
//! latency, apply rate limits and injected faults, check the token, answer.

use super::app::App;
use super::auth::Auth;
use super::clock::Clock;
use super::errors::ApiError;
use super::faults::{self, FaultConfig, Faults, Injected};
use super::handlers;
use super::hostile;
use super::ratelimit::RateLimiter;
use super::request::{read_body, BodyError, Req};
use super::router::Route;
use super::stats::Stats;
use super::store::Store;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};

/// Largest request body accepted (one upload part); bigger parts are refused, not buffered.
const MAX_BODY: usize = 1 << 30;

/// Everything an emulator is started with, so the `apsfs emulator` flags and an in-process
/// test or demo configure it the same way.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Accepted client credentials; `None` accepts any non-empty pair.
    pub client: Option<(String, String)>,
    /// `expires_in` of access tokens, seconds.
    pub token_ttl: u64,
    /// Enforce the documented per-minute limits.
    pub rate_limits: bool,
    /// Initial fault settings.
    pub faults: FaultConfig,
    /// Old refresh tokens stop working once rotated.
    pub single_use_refresh: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8585)),
            client: None,
            token_ttl: 3599,
            rate_limits: false,
            faults: FaultConfig::default(),
            single_use_refresh: false,
        }
    }
}

/// A started emulator: how to reach it, steer its faults, read its counters and stop it.
pub struct Running {
    app: Arc<App>,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    foreign_task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// The base URL (`http://127.0.0.1:PORT`) a client is pointed at, with the port bound.
    pub fn base_url(&self) -> String {
        self.app.base.clone()
    }

    /// The base URL of the foreign origin (`http://127.0.0.1:OTHERPORT`): the second listener
    /// the `redirect` knob points to, which counts the credentials it is sent (stats `foreign`).
    pub fn foreign_url(&self) -> String {
        self.app.foreign.clone()
    }

    /// Replaces the fault settings, as `PUT /__emulator/faults` does, for an in-process test
    /// that changes them mid-run; refuses the same out-of-range values.
    pub fn set_faults(&self, faults: FaultConfig) -> Result<(), String> {
        faults.validate()?;
        self.app.faults.set(faults);
        Ok(())
    }

    /// The request counters as `GET /__emulator/stats` returns them (`requests` by route name,
    /// `statuses` by code, `bytes_served`), so in-process tests read the same document.
    pub fn stats(&self) -> serde_json::Value {
        self.app.stats.snapshot()
    }

    /// Zeroes the counters, as `POST /__emulator/reset-stats` does, so a test counts only the
    /// requests of the step it checks.
    pub fn reset_stats(&self) {
        self.app.stats.reset();
    }

    /// Stops accepting connections and waits for the server task, so an embedding process
    /// (the demo mount) exits cleanly.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        let main = self.task.await.unwrap_or(Ok(()));
        let foreign = self.foreign_task.await.unwrap_or(Ok(()));
        main.and(foreign)
    }
}

/// Binds `config.listen` and starts serving `store` in the background of the current Tokio
/// runtime; the returned handle stops it.
pub async fn run(config: Config, store: Store) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    // The foreign origin: same host, another port, so another origin.
    let foreign = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let foreign_url = format!("http://{}", foreign.local_addr()?);
    let mut auth = Auth::new(config.client.clone(), config.token_ttl);
    auth.single_use_refresh = config.single_use_refresh;
    let mut signing_key = [0u8; 32];
    super::ids::fill_random(&mut signing_key);
    let app = Arc::new(App {
        store: RwLock::new(store),
        auth,
        clock: Clock::default(),
        stats: Stats::new(foreign_url.clone()),
        faults: Faults::new(config.faults),
        limiter: config.rate_limits.then(RateLimiter::default),
        base: format!("http://{addr}"),
        foreign: foreign_url,
        signing_key,
        uploads: Mutex::default(),
        sha1s: Mutex::default(),
    });
    let (tx, rx) = tokio::sync::watch::channel(false);
    let router = axum::Router::new().fallback(handle).with_state(app.clone());
    let task = serve(listener, router, rx.clone());
    let foreign_router = axum::Router::new()
        .fallback(handlers::foreign)
        .with_state(app.clone());
    let foreign_task = serve(foreign, foreign_router, rx);
    Ok(Running {
        app,
        shutdown: Some(tx),
        task,
        foreign_task,
    })
}

/// Serves `router` on `listener` until `stop` turns true.
fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    // Without TCP_NODELAY small responses wait on delayed ACKs (~40 ms per request).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
    })
}

async fn handle(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let route = Route::parse(&parts.method, parts.uri.path());
    let control = route.is_control();
    if !control {
        app.stats.request(route.name(), route.key());
    }
    let faults = app.faults.get();
    let mut response = pipeline(&app, route.clone(), &faults, parts, body).await;
    if !control {
        response = hostile::shape(&app, &route, &faults, response).await;
        app.stats.status(response.status().as_u16());
        if response.status().is_server_error() || response.status() == StatusCode::TOO_MANY_REQUESTS
        {
            tracing::info!(
                route = route.name(),
                status = response.status().as_u16(),
                "answered with an error"
            );
        }
    }
    response
}

async fn pipeline(
    app: &Arc<App>,
    route: Route,
    faults: &FaultConfig,
    parts: axum::http::request::Parts,
    body: Body,
) -> Response {
    let wait = faults.latency_of(route.key());
    if !route.is_control() && wait > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    }
    let received_ms = app.clock.now_ms();
    // The bandwidth cap holds for uploads too: a part PUT's body is read no faster than it.
    let body = if matches!(route, Route::SignedPut { .. }) {
        paced(body, faults.bandwidth_mib)
    } else {
        body
    };
    let body = match read_body(&parts.headers, body, MAX_BODY).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return error_for(
                &route,
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body too large",
            )
        }
        Err(BodyError::Incomplete) => return incomplete_body(&route),
    };
    // Kept as sent (still encoded): a redirect repeats it verbatim.
    let raw_query = parts.uri.query().map(str::to_string);
    let mut req = Req::new(route.clone(), parts, body, received_ms);
    if route == Route::Unknown {
        return handlers::unknown_route(&req).into_response();
    }
    if !route.is_control() {
        if let Some(r) = injected(app, &route, faults) {
            return r;
        }
    }
    if route.needs_token() {
        match app.auth.check_bearer(&req.headers, app.clock.now_ms()) {
            Ok(g) if g.allows(route.scopes()) => req.grant = Some(g),
            Ok(_) => return ApiError::scope().into_response(),
            Err(e) => return e.into_response(),
        }
    }
    if let Some(r) = hostile::redirect(app, faults, &mut req, raw_query.as_deref()) {
        return r;
    }
    if let (Some(limiter), Some((class, rpm))) = (&app.limiter, route.rate_limit()) {
        let who = match &req.grant {
            Some(g) => g.client_id.clone(),
            None => "anonymous".to_string(),
        };
        if let Err(wait) = limiter.check(&who, class, rpm) {
            return ApiError::quota(wait.max(1)).into_response();
        }
    }
    if faults.endless_json && route.is_json_api() && req.method == axum::http::Method::GET {
        return hostile::endless(app);
    }
    let answer = match handlers::dispatch(app, &req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    // A write whose answer is lost on the way back: the change is made, the client cannot
    // tell, and must find out before it tries again (or make a duplicate).
    if route.is_write() && app.faults.drop_body() {
        app.stats.injected("drop_answer");
        return hostile::cut(answer).await;
    }
    answer
}

/// `body` read at most `mib_per_s` MiB/s (0 = as fast as it comes). The server stops reading
/// while it waits, so the client's sends are held back by TCP, on that one connection only.
fn paced(body: Body, mib_per_s: f64) -> Body {
    if mib_per_s <= 0.0 {
        return body;
    }
    let chunks = body
        .into_data_stream()
        .map(|c| c.map_err(std::io::Error::other));
    Body::from_stream(faults::throttle(Box::pin(chunks), mib_per_s))
}

/// The answer a fault injects in place of the real one, if any: a `route_faults` failure, a
/// global 5xx or 429, a token-endpoint 503, or a part PUT lost on its way.
fn injected(app: &App, route: &Route, faults: &FaultConfig) -> Option<Response> {
    if let Some(status) = app.faults.take_route_failure(route.key()) {
        app.stats.injected("route_fault");
        return Some(injected_status(route, status, faults));
    }
    match app.faults.decide() {
        Injected::None => {}
        Injected::Throttle => return Some(hostile::throttled(faults)),
        Injected::Error(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Some(error_for(route, status, "Injected fault"));
        }
    }
    if *route == Route::Token && app.faults.token_error() {
        app.stats.injected("token_error");
        return Some(error_for(
            route,
            StatusCode::SERVICE_UNAVAILABLE,
            "Injected fault",
        ));
    }
    // A part lost on its way: nothing is stored and the client gets no answer at all.
    if matches!(route, Route::SignedPut { .. }) && app.faults.drop_body() {
        app.stats.injected("drop_part");
        return Some(hostile::severed());
    }
    None
}

/// 400 for a body that ended before its `Content-Length`: S3's `IncompleteBody` on signed
/// URLs, the family's 400 elsewhere. The client is usually gone; the answer is for the log.
fn incomplete_body(route: &Route) -> Response {
    match route {
        Route::SignedGet { .. } | Route::SignedPut { .. } => ApiError::S3 {
            status: StatusCode::BAD_REQUEST,
            code: "IncompleteBody",
            message: "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        }
        .into_response(),
        _ => error_for(route, StatusCode::BAD_REQUEST, "Request body incomplete"),
    }
}

/// The answer of a `route_faults` failure: 429 as an injected throttle (with `Retry-After`),
/// 403 on a signed part PUT as S3 answers an expired URL, anything else in the route family's
/// error shape.
fn injected_status(route: &Route, status: u16, faults: &FaultConfig) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    if status == StatusCode::TOO_MANY_REQUESTS {
        return hostile::throttled(faults);
    }
    if status == StatusCode::FORBIDDEN && matches!(route, Route::SignedPut { .. }) {
        return ApiError::S3 {
            status,
            code: "AccessDenied",
            message: "Request has expired",
        }
        .into_response();
    }
    error_for(route, status, "Injected fault")
}

/// An error of any status in the family the route's service speaks.
fn error_for(route: &Route, status: StatusCode, text: &str) -> Response {
    let e = match route {
        Route::SignedGet { .. } | Route::SignedPut { .. } => s3_error(status),
        Route::Token | Route::Authorize | Route::Revoke | Route::Introspect => {
            let code = if status.is_server_error() {
                "server_error"
            } else {
                "invalid_request"
            };
            ApiError::oauth(status, code, text)
        }
        r if r.is_oss() => ApiError::oss(status, text),
        _ => ApiError::data(status, data_code(status), text),
    };
    e.into_response()
}

/// The S3 error code and message a signed URL answers `status` with.
fn s3_error(status: StatusCode) -> ApiError {
    let (code, message) = match status {
        StatusCode::SERVICE_UNAVAILABLE => ("SlowDown", "Please reduce your request rate."),
        s if s.is_server_error() => (
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
        StatusCode::FORBIDDEN => ("AccessDenied", "Access Denied"),
        StatusCode::NOT_FOUND => ("NoSuchUpload", "The specified upload does not exist."),
        _ => ("InvalidRequest", "Injected fault"),
    };
    ApiError::S3 {
        status,
        code,
        message,
    }
}

/// The Data `errors[].code` an injected `status` carries, matching what the emulator's own
/// refusals of that status say.
fn data_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::FORBIDDEN => "ERR_NOT_AUTHORIZED",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::CONFLICT => "CONFLICT",
        StatusCode::LOCKED => "ITEM_LOCKED",
        s if s.is_server_error() => "INTERNAL_ERROR",
        _ => "BAD_INPUT",
    }
}
