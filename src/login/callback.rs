//! The loopback listener the browser is sent back to, `http://127.0.0.1:PORT/callback`. The
//! first callback decides: a code with the right `state` is the result; a wrong or missing
//! `state` (a forged request) or an `error` from the authorization server ends the login.
//! Pages never echo what the request carried.

use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Path of the callback on the listener.
const CALLBACK_PATH: &str = "/callback";

/// A bound listener waiting for its callback.
pub struct Callback {
    listener: tokio::net::TcpListener,
    port: u16,
}

/// What the first callback said.
type Outcome = Result<String, String>;

struct Shared {
    state: String,
    outcome: Mutex<Option<oneshot::Sender<Outcome>>>,
}

impl Callback {
    /// Listens on 127.0.0.1:`port` (0: a free port).
    pub async fn bind(port: u16) -> Result<Callback, String> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1:{port} for the callback: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("cannot listen for the callback: {e}"))?
            .port();
        Ok(Callback { listener, port })
    }

    /// The `redirect_uri` to send: it must match the app's registered callback exactly.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{CALLBACK_PATH}", self.port)
    }

    /// Serves until the first callback (or `timeout`), and returns its authorization code.
    pub async fn wait(self, state: &str, timeout: Duration) -> Result<String, String> {
        let (tx, rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            state: state.to_string(),
            outcome: Mutex::new(Some(tx)),
        });
        let router = axum::Router::new()
            .route(CALLBACK_PATH, axum::routing::get(callback))
            .fallback(|| async { page(StatusCode::NOT_FOUND, "Not found.") })
            .with_state(shared);
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(self.listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        let outcome = tokio::time::timeout(timeout, rx).await;
        let _ = stop.send(());
        // Let the answer reach the browser, but do not wait on a connection that lingers.
        let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
        match outcome {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("the callback listener stopped unexpectedly".into()),
            Err(_) => Err(format!(
                "no callback from the browser within {} s; run `apsfs login` again",
                timeout.as_secs()
            )),
        }
    }
}

async fn callback(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let q: Vec<(String, String)> = uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let (outcome, status, text): (Outcome, _, _) =
        if get("state") != Some(shared.state.as_str()) {
            (
            Err("the browser came back with a wrong or missing state (a request this login did \
                 not make); nothing was stored"
                .into()),
            StatusCode::BAD_REQUEST,
            "This callback does not belong to the running apsfs login; it was refused.",
        )
        } else if let Some(error) = get("error") {
            let detail = get("error_description").unwrap_or_default();
            (
                Err(format!(
                    "the authorization server refused: {}{}{}",
                    printable(error),
                    if detail.is_empty() { "" } else { ": " },
                    printable(detail)
                )),
                StatusCode::BAD_REQUEST,
                "The login was refused; see the terminal for the reason.",
            )
        } else if let Some(code) = get("code").filter(|c| !c.is_empty()) {
            (
                Ok(code.to_string()),
                StatusCode::OK,
                "Logged in. You can close this window and return to the terminal.",
            )
        } else {
            (
                Err("the browser came back without an authorization code".into()),
                StatusCode::BAD_REQUEST,
                "No authorization code arrived; see the terminal.",
            )
        };
    let sender = shared.outcome.lock().ok().and_then(|mut s| s.take());
    match sender {
        Some(tx) => {
            let _ = tx.send(outcome);
            page(status, text)
        }
        None => page(StatusCode::GONE, "This login has already finished."),
    }
}

/// A tiny HTML page that closes the connection behind it.
fn page(status: StatusCode, text: &str) -> Response {
    let body =
        format!("<!doctype html><meta charset=\"utf-8\"><title>apsfs login</title><p>{text}</p>\n");
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONNECTION, "close"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// Text from a URL made safe for a terminal: no control characters, bounded length.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn outcome_of(query: &str) -> (u16, Result<String, String>) {
        let cb = Callback::bind(0).await.unwrap();
        let url = format!("{}?{query}", cb.redirect_uri());
        let waiting = tokio::spawn(async move { cb.wait("s-1", Duration::from_secs(10)).await });
        let stray = reqwest::get(url.replace(CALLBACK_PATH, "/favicon.ico"))
            .await
            .unwrap();
        assert_eq!(stray.status(), 404, "other paths do not end the wait");
        let status = reqwest::get(&url).await.unwrap().status().as_u16();
        (status, waiting.await.unwrap())
    }

    #[tokio::test]
    async fn the_right_state_yields_the_code() {
        assert_eq!(
            outcome_of("code=abc&state=s-1").await,
            (200, Ok("abc".into()))
        );
    }

    #[tokio::test]
    async fn a_wrong_or_missing_state_is_refused() {
        for q in ["code=abc&state=s-2", "code=abc"] {
            let (status, r) = outcome_of(q).await;
            assert_eq!(status, 400);
            assert!(r.unwrap_err().contains("state"));
        }
    }

    #[tokio::test]
    async fn an_error_is_reported_without_control_characters() {
        let (status, r) =
            outcome_of("error=access_denied&error_description=no%1B%5B31m+way&state=s-1").await;
        assert_eq!(status, 400);
        let e = r.unwrap_err();
        assert!(e.contains("access_denied: no[31m way"), "{e}");
    }

    #[tokio::test]
    async fn waiting_times_out() {
        let cb = Callback::bind(0).await.unwrap();
        let e = cb.wait("s", Duration::from_millis(50)).await.unwrap_err();
        assert!(e.contains("no callback"), "{e}");
    }
}
