//! The HTTP server and the process lifecycle.
//!
//! Startup binds the listener first and serves `/-/healthy`, `/-/ready`
//! (503) and `/metrics` at once; the database opens (WAL replay) in the
//! background while `/api/v1/*` answers `503 Service Unavailable`. Once the
//! database is open the full API router is installed and the phase turns
//! ready. SIGTERM/SIGINT turn the phase to stopping (new API requests get
//! 503, which senders retry), let in-flight requests finish, stop the
//! self-scrape and close the database.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use engine::Db;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::admin::{self, Admin};
use crate::config::{Config, ConfigSource};
use crate::metrics::{self, HttpMetrics};
use crate::selfscrape;
use query::api::ConfigStatus;

/// How long in-flight requests may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// All metrics of the process: the server's own, available at once, and
/// the components' (engine, ingest, query), available once the database
/// is open.
pub struct Registries {
    base: Registry,
    components: OnceLock<Registry>,
}

impl Registries {
    pub fn new(base: Registry) -> Registries {
        Registries {
            base,
            components: OnceLock::new(),
        }
    }

    /// The OpenMetrics text of every registry.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail; a collector that fails only
        // truncates its own output.
        let _ = prometheus_client::encoding::text::encode_registry(&mut text, &self.base);
        if let Some(c) = self.components.get() {
            let _ = prometheus_client::encoding::text::encode_registry(&mut text, c);
        }
        let _ = prometheus_client::encoding::text::encode_eof(&mut text);
        text
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    Starting = 0,
    Ready = 1,
    Stopping = 2,
}

/// State shared by the always-present routes.
pub struct Shared {
    phase: AtomicU8,
    api: OnceLock<Router>,
    registries: Arc<Registries>,
}

impl Shared {
    fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Starting,
            1 => Phase::Ready,
            _ => Phase::Stopping,
        }
    }

    fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Release);
    }
}

/// Prometheus's not-ready answer: plain text, with `X-Prometheus-Stopping`.
fn unavailable(stopping: bool) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (
                HeaderName::from_static("x-prometheus-stopping"),
                if stopping { "true" } else { "false" },
            ),
        ],
        "Service Unavailable",
    )
        .into_response()
}

async fn healthy() -> &'static str {
    "Prometheus Server is Healthy.\n"
}

async fn ready(State(shared): State<Arc<Shared>>) -> Response {
    match shared.phase() {
        Phase::Ready => "Prometheus Server is Ready.\n".into_response(),
        Phase::Starting => unavailable(false),
        Phase::Stopping => unavailable(true),
    }
}

async fn metrics_handler(State(shared): State<Arc<Shared>>) -> Response {
    let text = shared.registries.encode();
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// Everything not routed by the outer router goes to the API router once it
/// exists; before that (and while stopping) API paths get 503.
async fn dispatch(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let phase = shared.phase();
    let path = req.uri().path();
    let gated = path.starts_with("/api/") || path == "/federate";
    match (phase, shared.api.get()) {
        (Phase::Ready, Some(api)) => api
            .clone()
            .oneshot(req)
            .await
            .unwrap_or_else(|never| match never {}),
        (Phase::Stopping, _) if gated => unavailable(true),
        (_, _) if gated => unavailable(false),
        (_, Some(api)) => api
            .clone()
            .oneshot(req)
            .await
            .unwrap_or_else(|never| match never {}),
        (_, None) => (StatusCode::NOT_FOUND, "404 page not found\n").into_response(),
    }
}

/// The router that is there from the first moment.
fn outer_router(shared: Arc<Shared>, http: HttpMetrics) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route_layer(axum::middleware::from_fn(metrics::tag_route))
        .fallback(dispatch)
        .with_state(shared)
        .layer(axum::middleware::from_fn(query::api::gzip::compress_whole))
        .layer(compression())
        .layer(axum::middleware::from_fn_with_state(http, metrics::track))
}

/// Compression of streamed answers (the export endpoint) for clients that
/// accept it, at gzip's fastest level; answers complete in memory are
/// gzipped before they get here, on several cores
/// ([`query::api::gzip::compress_whole`]), and pass untouched.
fn compression() -> tower_http::compression::CompressionLayer<
    tower_http::compression::predicate::And<
        tower_http::compression::DefaultPredicate,
        tower_http::compression::predicate::SizeAbove,
    >,
> {
    use tower_http::compression::predicate::{Predicate, SizeAbove};
    tower_http::compression::CompressionLayer::new()
        .quality(tower_http::CompressionLevel::Fastest)
        .compress_when(
            tower_http::compression::DefaultPredicate::new()
                .and(SizeAbove::new(query::api::gzip::COMPRESS_FROM as u16)),
        )
}

/// What exists once the database is open.
struct Components {
    db: Arc<Db>,
    api: Router,
    /// What the status API shows of the configuration.
    config: Arc<ConfigStatus>,
    registry: Registry,
}

/// Opens the database (blocking: replays the WAL) and builds the API router.
fn open_components(cfg: &Config) -> anyhow::Result<Components> {
    let mut registry = Registry::default();
    let started = std::time::Instant::now();
    let db = Db::open(cfg.engine_options(), &mut registry)
        .with_context(|| format!("opening the database in {}", cfg.data_dir.display()))?;
    tracing::info!(elapsed = ?started.elapsed(), "database open");
    let (api, config) = crate::components::api_router(&db, cfg, &mut registry)?;
    let api = api
        .merge(admin::routes(Admin {
            db: db.clone(),
            data_dir: cfg.data_dir.clone(),
        }))
        .route_layer(axum::middleware::from_fn(metrics::tag_route));
    Ok(Components {
        db,
        api,
        config,
        registry,
    })
}

/// Resolves with the signal's name on SIGTERM or SIGINT. The handlers are
/// installed when this is called, not when it is first polled.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

/// Runs the server until a shutdown signal; returns after the database is
/// closed. Reloads read the configuration from `source`.
pub async fn run(cfg: Config, source: ConfigSource) -> anyhow::Result<()> {
    let mut signal = Box::pin(shutdown_signal()?);

    let mut base = Registry::default();
    let http = HttpMetrics::register(&mut base);
    metrics::register_process(&mut base);
    let registries = Arc::new(Registries::new(base));
    let shared = Arc::new(Shared {
        phase: AtomicU8::new(Phase::Starting as u8),
        api: OnceLock::new(),
        registries: registries.clone(),
    });

    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("listening on {}", cfg.listen))?;
    let addr = listener
        .local_addr()
        .context("reading the listen address")?;
    // Tests and scripts look for this exact line.
    tracing::info!("listening on http://{addr}");

    let (stop_http, mut stop_http_rx) = watch::channel(false);
    let app = outer_router(shared.clone(), http);
    // Answers go out as soon as they are written, as Go's servers
    // (Prometheus, VictoriaMetrics) send them: without Nagle's algorithm
    // holding the tail of a long answer until the client acknowledges
    // what went before (a round trip over a real network).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
    });
    let mut server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_http_rx.wait_for(|s| *s).await;
            })
            .await
    });

    let open_cfg = cfg.clone();
    let mut opening = tokio::task::spawn_blocking(move || open_components(&open_cfg));
    let components = tokio::select! {
        r = &mut opening => r.context("the database open task failed")?,
        sig = &mut signal => {
            tracing::info!("{sig} received while opening the database; exiting (the WAL replays again on the next start)");
            return Ok(());
        }
    };
    let components = match components {
        Ok(c) => c,
        Err(e) => {
            shared.set_phase(Phase::Stopping);
            let _ = stop_http.send(true);
            return Err(e);
        }
    };
    let Components {
        db,
        api,
        config,
        mut registry,
    } = components;
    let external_url = crate::alert_stack::external_url(&cfg, &addr);
    let alerting = match crate::alert_stack::Alerting::start(
        &db,
        &cfg,
        source,
        config,
        external_url,
        &mut registry,
    )
    .await
    {
        Ok(a) => a,
        Err(e) => {
            shared.set_phase(Phase::Stopping);
            let _ = stop_http.send(true);
            let closing = db.clone();
            let _ = tokio::task::spawn_blocking(move || closing.close()).await;
            return Err(e.context("starting rule evaluation and alerting"));
        }
    };
    let api = api.merge(
        alerting
            .routes()
            .route_layer(axum::middleware::from_fn(metrics::tag_route)),
    );
    let _ = registries.components.set(registry);
    let _ = shared.api.set(api);
    shared.set_phase(Phase::Ready);
    tracing::info!("ready");

    let (stop_scrape, stop_scrape_rx) = watch::channel(false);
    let scraper = cfg.self_scrape_interval().map(|interval| {
        tokio::spawn(selfscrape::run(
            db.clone(),
            registries.clone(),
            addr.to_string(),
            interval,
            stop_scrape_rx,
        ))
    });

    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    let ended_by_itself = loop {
        tokio::select! {
            sig = &mut signal => {
                tracing::info!("{sig} received; shutting down");
                break None;
            }
            r = &mut server => break Some(r),
            _ = hangup.recv() => {
                tracing::info!("SIGHUP received; reloading the configuration");
                if let Err(e) = alerting.reload().await {
                    tracing::error!(error = %format!("{e:#}"), "reload failed; the running configuration stays");
                }
            }
        }
    };

    shared.set_phase(Phase::Stopping);
    let _ = stop_http.send(true);
    let served = match ended_by_itself {
        Some(r) => r
            .context("the HTTP server task failed")?
            .context("the HTTP server stopped unexpectedly"),
        None => match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
            Ok(r) => r
                .context("the HTTP server task failed")?
                .context("HTTP server"),
            Err(_) => {
                tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; closing anyway");
                server.abort();
                Ok(())
            }
        },
    };
    let _ = stop_scrape.send(true);
    if let Some(task) = scraper {
        let _ = task.await;
    }
    alerting.stop().await;
    let closing = db.clone();
    tokio::task::spawn_blocking(move || closing.close())
        .await
        .context("the close task failed")?
        .context("closing the database")?;
    tracing::info!("database closed");
    served
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;

    fn setup() -> (Arc<Shared>, Router) {
        let mut base = Registry::default();
        let http = HttpMetrics::register(&mut base);
        let shared = Arc::new(Shared {
            phase: AtomicU8::new(Phase::Starting as u8),
            api: OnceLock::new(),
            registries: Arc::new(Registries::new(base)),
        });
        let router = outer_router(shared.clone(), http);
        (shared, router)
    }

    async fn call(router: &Router, method: &str, path: &str) -> (u16, Option<String>, String) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let stopping = resp
            .headers()
            .get("x-prometheus-stopping")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, stopping, String::from_utf8(body.to_vec()).unwrap())
    }

    /// A body of unknown size, sent in pieces (as the export endpoint's).
    struct Chunks(std::collections::VecDeque<bytes::Bytes>);

    impl axum::body::HttpBody for Chunks {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
            std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
        }
    }

    #[tokio::test]
    async fn only_bodies_above_the_threshold_are_compressed_whole_or_streamed() {
        use query::api::gzip::COMPRESS_FROM;
        let small = "x".repeat(COMPRESS_FROM - 1);
        let large: String = (0..COMPRESS_FROM * 40)
            .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
            .collect();
        let (l1, l2) = (large.clone(), large.clone());
        let router = Router::new()
            .route("/small", get(move || async move { small }))
            .route("/large", get(move || async move { l1 }))
            .route(
                "/stream",
                get(move || async move {
                    let chunks = l2
                        .into_bytes()
                        .chunks(1000)
                        .map(bytes::Bytes::copy_from_slice)
                        .collect();
                    Body::new(Chunks(chunks))
                }),
            )
            .layer(axum::middleware::from_fn(query::api::gzip::compress_whole))
            .layer(compression());
        for (path, accept, want) in [
            ("/small", "gzip", None),
            ("/large", "gzip", Some("gzip")),
            ("/large", "gzip;q=0", None),
            ("/large", "identity", None),
            ("/stream", "gzip", Some("gzip")),
        ] {
            let req = Request::builder()
                .uri(path)
                .header("accept-encoding", accept)
                .body(Body::empty())
                .unwrap();
            let resp = router.clone().oneshot(req).await.unwrap();
            let enc = resp
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(enc.as_deref(), want, "{path} {accept}");
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            if want.is_some() {
                let mut text = String::new();
                std::io::Read::read_to_string(
                    &mut flate2::read::GzDecoder::new(&body[..]),
                    &mut text,
                )
                .unwrap();
                assert_eq!(text, large, "{path}");
            }
        }
    }

    #[tokio::test]
    async fn api_is_unavailable_until_ready_and_while_stopping() {
        let (shared, router) = setup();
        let unavailable = |stopping: &str| {
            (
                503,
                Some(stopping.to_owned()),
                "Service Unavailable".to_owned(),
            )
        };

        // Starting: liveness and metrics work, readiness and the API do not.
        assert_eq!(
            call(&router, "GET", "/-/healthy").await,
            (200, None, "Prometheus Server is Healthy.\n".into())
        );
        assert_eq!(call(&router, "GET", "/-/ready").await, unavailable("false"));
        assert_eq!(
            call(&router, "POST", "/api/v1/write").await,
            unavailable("false")
        );
        assert_eq!(
            call(&router, "GET", "/api/v1/series").await,
            unavailable("false")
        );
        assert_eq!(
            call(&router, "GET", "/federate").await,
            unavailable("false")
        );
        assert_eq!(call(&router, "GET", "/elsewhere").await.0, 404);
        let (status, _, metrics) = call(&router, "GET", "/metrics").await;
        assert_eq!(status, 200);
        assert!(metrics.ends_with("# EOF\n"), "{metrics}");

        // Ready: the API router answers.
        let api = Router::new()
            .route("/api/v1/ping", get(|| async { "pong" }))
            .route_layer(axum::middleware::from_fn(metrics::tag_route));
        assert!(shared.api.set(api).is_ok());
        shared.set_phase(Phase::Ready);
        assert_eq!(
            call(&router, "GET", "/-/ready").await,
            (200, None, "Prometheus Server is Ready.\n".into())
        );
        assert_eq!(
            call(&router, "GET", "/api/v1/ping").await,
            (200, None, "pong".into())
        );
        assert_eq!(call(&router, "GET", "/api/v1/nope").await.0, 404);
        assert_eq!(call(&router, "HEAD", "/-/healthy").await.0, 200);

        // Stopping: new API requests are told to come back later.
        shared.set_phase(Phase::Stopping);
        assert_eq!(call(&router, "GET", "/-/ready").await, unavailable("true"));
        assert_eq!(
            call(&router, "GET", "/api/v1/ping").await,
            unavailable("true")
        );

        // Request metrics use route patterns, and unrouted requests one label.
        let (_, _, metrics) = call(&router, "GET", "/metrics").await;
        for needle in [
            "handler=\"/api/v1/ping\",code=\"200\"",
            "handler=\"/-/ready\",code=\"503\"",
            "handler=\"unmatched\",code=\"404\"",
            "handler=\"unmatched\",code=\"503\"",
        ] {
            assert!(metrics.contains(needle), "{needle} missing:\n{metrics}");
        }
    }

    #[test]
    fn registries_encode_base_then_components_then_eof() {
        let mut base = Registry::default();
        metrics::register_process(&mut base);
        let registries = Registries::new(base);
        let before = registries.encode();
        assert!(before.contains("silt_build_info") && before.ends_with("# EOF\n"));
        let mut components = Registry::default();
        let c: prometheus_client::metrics::counter::Counter = Default::default();
        components.register("component_things", "Things.", c);
        assert!(registries.components.set(components).is_ok());
        let after = registries.encode();
        assert!(after.contains("component_things_total 0"), "{after}");
        assert_eq!(after.matches("# EOF").count(), 1);
        assert!(crate::exposition::parse(&after).is_ok());
    }
}
