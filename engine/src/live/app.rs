//! The live view's routes: the dashboard page and its files, its JSON feed, `/metrics`, and control
//! requests.
//!
//! Routes are a table. Control requests are `POST`s with a JSON body that go through one gate
//! ([`App::control`]): JSON content type (which a cross-site form cannot send without a CORS
//! preflight, which this server never grants), an `Origin`, when sent, equal to the page's own, and a
//! body that parses. Stop and steering (changing the users or the arrival rate) are the two.
//!
//! On a loopback address every request must name a loopback host in `Host`, so that a web page on
//! another site cannot reach the dashboard through DNS rebinding.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serde::Serialize;

use super::http::{Body, Handler, Request, Response};
use super::metrics;
use super::snapshot::{Point, Snapshot};
use super::{Shared, StopHandle, Viewer};
use crate::steer::{self, SteerStatus, Steering};

/// Which parts a listener serves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Services {
    /// The dashboard, its feed and control requests.
    pub web: bool,
    /// `/metrics`.
    pub metrics: bool,
}

/// The handler of one listener.
#[derive(Debug)]
pub(crate) struct App {
    shared: Arc<Shared>,
    services: Services,
    local: SocketAddr,
    stop: StopHandle,
    /// The run's steering (dashboard listeners only).
    steering: Option<Arc<Steering>>,
}

type Handle = fn(&App, &Request<'_>) -> Response;
type Control = fn(&App, &Request<'_>, &serde_json::Map<String, serde_json::Value>) -> Response;

#[derive(Clone, Copy)]
enum Action {
    Get(Handle),
    Post(Control),
}

struct Route {
    path: &'static str,
    /// The route belongs to the dashboard (else to the metrics).
    web: bool,
    action: Action,
}

const ROUTES: &[Route] = &[
    Route {
        path: "/",
        web: true,
        action: Action::Get(|_, _| page(PAGE, "text/html; charset=utf-8")),
    },
    Route {
        path: "/dashboard.js",
        web: true,
        action: Action::Get(|_, _| page(SCRIPT, "text/javascript; charset=utf-8")),
    },
    Route {
        path: "/dashboard.css",
        web: true,
        action: Action::Get(|_, _| page(STYLE, "text/css; charset=utf-8")),
    },
    Route {
        path: "/api/live",
        web: true,
        action: Action::Get(App::live),
    },
    Route {
        path: "/api/stop",
        web: true,
        action: Action::Post(App::stop),
    },
    Route {
        path: "/api/steer",
        web: true,
        action: Action::Post(App::steer),
    },
    Route {
        path: "/metrics",
        web: false,
        action: Action::Get(App::metrics),
    },
    Route {
        path: "/",
        web: false,
        action: Action::Get(|_, _| {
            Response::text(
                200,
                "Stampede: Prometheus metrics at /metrics (docs/live.md)",
            )
        }),
    },
];

const PAGE: &str = include_str!("assets/dashboard.html");
const SCRIPT: &str = include_str!("assets/dashboard.js");
const STYLE: &str = include_str!("assets/dashboard.css");

/// The page allows only its own files and requests to its own origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn page(body: &'static str, content_type: &'static str) -> Response {
    Response::new(200, content_type, Body::Static(body.as_bytes()))
        .header("Content-Security-Policy", CSP)
        .header("X-Frame-Options", "DENY")
}

impl App {
    pub fn new(
        shared: Arc<Shared>,
        services: Services,
        local: SocketAddr,
        stop: StopHandle,
    ) -> App {
        App {
            shared,
            services,
            local,
            stop,
            steering: None,
        }
    }

    /// Serves steering requests with `steering`.
    pub fn steering(mut self, steering: Option<Arc<Steering>>) -> App {
        self.steering = steering;
        self
    }

    fn serves(&self, route: &Route) -> bool {
        if route.web {
            self.services.web
        } else {
            self.services.metrics && !(route.path == "/" && self.services.web)
        }
    }

    /// On a loopback address, whether `Host` names this server by a loopback name.
    fn host_ok(&self, r: &Request<'_>) -> bool {
        if !self.local.ip().is_loopback() {
            return true;
        }
        let Some(host) = r.header("host") else {
            // HTTP/1.0 clients may leave it out; browsers always send it.
            return true;
        };
        let (name, port) = match host.rsplit_once(':') {
            Some((n, p)) if !p.contains(']') => (n, p.parse::<u16>().ok()),
            _ => (host, Some(80)),
        };
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let loopback = name.eq_ignore_ascii_case("localhost")
            || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        loopback && port == Some(self.local.port())
    }

    /// `GET /api/live?since=N&generation=G`: the snapshot, and the series' points from the `N`-th on
    /// when the page's copy is of generation `G` (else all of them).
    fn live(&self, r: &Request<'_>) -> Response {
        let number = |key: &str| -> Result<Option<u64>, Response> {
            match r.param(key) {
                None | Some("") => Ok(None),
                Some(v) => v.parse().map(Some).map_err(|_| {
                    Response::text(400, format!("{key} must be a whole number, got {v:?}"))
                }),
            }
        };
        let (since, generation) = match (number("since"), number("generation")) {
            (Ok(s), Ok(g)) => (s, g),
            (Err(e), _) | (_, Err(e)) => return e,
        };
        let snap = self.shared.fetch(Viewer::Page);
        let points = &snap.series.points;
        let from = match (since, generation) {
            (Some(s), Some(g)) if g == u64::from(snap.series.generation) => {
                (s as usize).min(points.len())
            }
            _ => 0,
        };
        let steer = self
            .steering
            .as_ref()
            .filter(|_| self.services.web)
            .map(|s| s.status());
        let body = LiveBody {
            snapshot: &snap,
            steer,
            series: SeriesBody {
                generation: snap.series.generation,
                from,
                points: &points[from..],
            },
        };
        match serde_json::to_vec(&body) {
            Ok(bytes) => Response::new(200, "application/json", Body::Owned(bytes)),
            Err(e) => Response::text(500, format!("cannot encode the snapshot: {e}")),
        }
    }

    fn metrics(&self, r: &Request<'_>) -> Response {
        let om = metrics::wants_openmetrics(r.header("accept"));
        let snap = self.shared.fetch(Viewer::Scraper);
        let body = metrics::render(&snap, om);
        let content_type = if om {
            metrics::OPENMETRICS
        } else {
            metrics::TEXT
        };
        Response::new(200, content_type, Body::Owned(body.into_bytes()))
    }

    /// `POST /api/stop` with `{}`: what Ctrl-C does.
    fn stop(&self, r: &Request<'_>, _: &serde_json::Map<String, serde_json::Value>) -> Response {
        let first = self.stop.request();
        if first {
            eprintln!(
                "\nstop requested from the dashboard (by {}): stopping as on Ctrl-C",
                r.peer
            );
        }
        json(
            202,
            &serde_json::json!({ "stopping": true, "first": first }),
        )
    }

    /// `POST /api/steer` with `{"users": N}` or `{"rate": R}`, and `"ramp_s"` or `"spawn_rate"`: change
    /// the load. 202 with the change as it will begin, or 400/409 with `{"error": ...}`.
    fn steer(
        &self,
        r: &Request<'_>,
        fields: &serde_json::Map<String, serde_json::Value>,
    ) -> Response {
        let refuse =
            |status: u16, error: String| json(status, &serde_json::json!({ "error": error }));
        let Some(steering) = &self.steering else {
            return refuse(409, "this run cannot be steered".to_owned());
        };
        let ask = match steer::parse(fields) {
            Ok(ask) => ask,
            Err(e) => return refuse(400, e),
        };
        match steering.request(ask) {
            Ok(change) => {
                eprintln!(
                    "\nsteered from the dashboard (by {}): {} {} -> {} over {} s, from {:.1} s",
                    r.peer,
                    match change.what {
                        steer::Knob::Users => "users",
                        steer::Knob::Rate => "arrivals/s",
                    },
                    trim(change.from),
                    trim(change.to),
                    trim(change.ramp_s),
                    change.at_s
                );
                json(
                    202,
                    &serde_json::json!({ "accepted": true, "change": change }),
                )
            }
            Err(refusal) => refuse(refusal.status, refusal.error),
        }
    }

    /// The gate every control request passes.
    fn control(&self, r: &Request<'_>, handler: Control) -> Response {
        let content_type = r.header("content-type").unwrap_or("");
        let media = content_type.split(';').next().unwrap_or("").trim();
        // Refusals are JSON too ({"error": ...}), so a script reads every answer the same way.
        let refuse =
            |status: u16, error: String| json(status, &serde_json::json!({ "error": error }));
        if !media.eq_ignore_ascii_case("application/json") {
            return refuse(
                415,
                "control requests take a JSON body (Content-Type: application/json)".to_owned(),
            );
        }
        if let Some(origin) = r.header("origin") {
            let own = r.header("host").map(|h| format!("http://{h}"));
            if own.as_deref() != Some(origin) {
                return refuse(
                    403,
                    format!("control requests come from the dashboard's own page, not {origin}"),
                );
            }
        }
        let body = if r.body.iter().all(u8::is_ascii_whitespace) {
            b"{}".as_slice()
        } else {
            r.body
        };
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(serde_json::Value::Object(fields)) => handler(self, r, &fields),
            Ok(_) => refuse(400, "the body must be a JSON object, e.g. {}".to_owned()),
            Err(e) => refuse(400, format!("malformed JSON body: {e}")),
        }
    }
}

impl Handler for App {
    fn handle(&self, r: &Request<'_>) -> Response {
        if !self.host_ok(r) {
            return Response::text(
                403,
                format!(
                    "this server answers to {0} (or localhost:{1}) only; Host was {2:?} (a guard against DNS rebinding)",
                    self.local,
                    self.local.port(),
                    r.header("host").unwrap_or("")
                ),
            );
        }
        let mut allowed = Vec::new();
        for route in ROUTES
            .iter()
            .filter(|route| route.path == r.path && self.serves(route))
        {
            match (route.action, r.method) {
                (Action::Get(h), "GET" | "HEAD") => return h(self, r),
                (Action::Post(h), "POST") => return self.control(r, h),
                (Action::Get(_), _) => allowed.push("GET, HEAD"),
                (Action::Post(_), _) => allowed.push("POST"),
            }
        }
        if allowed.is_empty() {
            Response::text(404, format!("no such page: {}", r.path))
        } else {
            Response::text(405, format!("{} takes {}", r.path, allowed.join(", ")))
                .header("Allow", allowed.join(", "))
        }
    }
}

/// A figure without needless decimals: `10`, `12.5`.
fn trim(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn json(status: u16, value: &serde_json::Value) -> Response {
    Response::new(
        status,
        "application/json",
        Body::Owned(value.to_string().into_bytes()),
    )
}

#[derive(Serialize)]
struct LiveBody<'a> {
    #[serde(flatten)]
    snapshot: &'a Snapshot,
    /// Steering: whether it applies, the target now, a ramp in progress and the changes so far.
    steer: Option<SteerStatus>,
    series: SeriesBody<'a>,
}

#[derive(Serialize)]
struct SeriesBody<'a> {
    generation: u32,
    from: usize,
    points: &'a [Point],
}

#[cfg(test)]
mod tests {
    use super::super::hub::Hub;
    use super::super::snapshot::{Phase, RunInfo};
    use super::*;
    use crate::plan::LoadPlan;
    use crate::schedule::{Population, Spawn};
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    fn make(local: &str, services: Services) -> (App, StopHandle) {
        let stop = StopHandle {
            stop: Arc::new(AtomicBool::new(false)),
            interrupts: Arc::new(AtomicU32::new(0)),
        };
        let hub = Hub::new(
            Arc::new(RunInfo {
                profile: "p".into(),
                run_id: "r".into(),
                environment: None,
                target: "http://t".into(),
                load: String::new(),
                open_model: false,
                planned_s: 1.0,
                cores: 1,
                io: String::new(),
                started_at: String::new(),
                dir: String::new(),
                engine_version: String::new(),
                shard: None,
                can_stop: true,
            }),
            LoadPlan::Closed {
                population: Population::Spawn(Spawn {
                    users: 1,
                    rate: None,
                }),
                iterations_per_user: None,
            },
            Arc::clone(&stop.stop),
        );
        let shared = Arc::new(Shared::new(hub.snapshot(Phase::Running, None)));
        (
            App::new(shared, services, local.parse().unwrap(), stop.clone()),
            stop,
        )
    }

    const WEB: Services = Services {
        web: true,
        metrics: true,
    };

    fn request<'a>(
        method: &'a str,
        path: &'a str,
        headers: Vec<(&'a str, &'a [u8])>,
        body: &'a [u8],
    ) -> Request<'a> {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        Request {
            method,
            path,
            query,
            headers,
            body,
            peer: "127.0.0.1:5".parse().unwrap(),
        }
    }

    fn text(r: &Response) -> String {
        match &r.body {
            Body::Static(b) => String::from_utf8_lossy(b).into_owned(),
            Body::Owned(b) => String::from_utf8_lossy(b).into_owned(),
        }
    }

    #[test]
    fn control_requests_are_checked_before_anything_happens() {
        let (app, stop) = make("127.0.0.1:8089", WEB);
        let host: (&str, &[u8]) = ("Host", b"127.0.0.1:8089");
        let json_type: (&str, &[u8]) = ("Content-Type", b"application/json");
        let cases: Vec<(Request<'_>, u16)> = vec![
            (request("GET", "/api/stop", vec![host], b""), 405),
            (request("POST", "/api/stop", vec![host], b"{}"), 415),
            (
                request(
                    "POST",
                    "/api/stop",
                    vec![host, ("Content-Type", b"text/plain")],
                    b"{}",
                ),
                415,
            ),
            (
                request("POST", "/api/stop", vec![host, json_type], b"{\"x\":"),
                400,
            ),
            (
                request("POST", "/api/stop", vec![host, json_type], b"[1]"),
                400,
            ),
            (
                request(
                    "POST",
                    "/api/stop",
                    vec![host, json_type, ("Origin", b"http://evil.example")],
                    b"{}",
                ),
                403,
            ),
            (
                request(
                    "POST",
                    "/api/stop",
                    vec![("Host", b"evil.example:8089"), json_type],
                    b"{}",
                ),
                403,
            ),
            (request("PUT", "/", vec![host], b""), 405),
            (request("GET", "/nope", vec![host], b""), 404),
        ];
        for (r, status) in cases {
            let got = app.handle(&r);
            assert_eq!(
                got.status,
                status,
                "{} {}: {}",
                r.method,
                r.path,
                text(&got)
            );
            assert!(!stop.stop.load(Ordering::SeqCst), "{} {}", r.method, r.path);
        }
        let ok = app.handle(&request(
            "POST",
            "/api/stop",
            vec![
                host,
                ("Content-Type", b"application/json; charset=utf-8"),
                ("Origin", b"http://127.0.0.1:8089"),
            ],
            b"{}",
        ));
        assert_eq!(ok.status, 202, "{}", text(&ok));
        assert!(stop.stop.load(Ordering::SeqCst));
        assert_eq!(stop.interrupts.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn steering_requests_are_checked_and_refused_with_a_reason() {
        let (app, stop) = make("127.0.0.1:8089", WEB);
        let host: (&str, &[u8]) = ("Host", b"127.0.0.1:8089");
        let json_type: (&str, &[u8]) = ("Content-Type", b"application/json");
        let post = |app: &App, body: &'static [u8]| {
            let r = app.handle(&request("POST", "/api/steer", vec![host, json_type], body));
            let v: serde_json::Value = serde_json::from_str(&text(&r)).unwrap();
            (r.status, v)
        };
        let plan = steer::tests::plan_for(
            "Closed(users: 4, spawn_rate: 4, duration: \"60s\")",
            Some(8),
        );
        let (steering, receivers) = Steering::new(
            &plan,
            crate::clock::Clock::start_in(std::time::Duration::ZERO),
            Arc::clone(&stop.stop),
        );
        let app = app.steering(Some(steering));
        for (body, status, says) in [
            (&b"{\"users\":"[..], 400, "malformed JSON"),
            (b"[5]", 400, "JSON object"),
            (b"{\"users\": -3}", 400, "whole number"),
            (
                b"{\"users\": 5, \"ramp_s\": \"soon\"}",
                400,
                "must be a number",
            ),
            (b"{\"users\": 9}", 409, "--max-users 9"),
            (b"{\"rate\": 50}", 400, "closed model"),
        ] {
            let (got, v) = post(&app, body);
            assert_eq!(got, status, "{}: {v}", String::from_utf8_lossy(body));
            let error = v["error"].as_str().unwrap();
            assert!(error.contains(says), "{error}");
        }
        assert!(
            receivers.iter().flatten().all(|r| r.try_recv().is_err()),
            "nothing refused reaches a core"
        );
        let (got, v) = post(&app, b"{\"users\": 8, \"ramp_s\": 2}");
        assert_eq!(got, 202, "{v}");
        assert_eq!(v["change"]["to"], 8.0);
        assert_eq!(v["change"]["what"], "users");
        for r in receivers.iter().flatten() {
            assert_eq!(r.try_recv().unwrap().to, 8.0);
        }
        let live = app.handle(&request("GET", "/api/live", vec![host], b""));
        let v: serde_json::Value = serde_json::from_str(&text(&live)).unwrap();
        assert_eq!(v["steer"]["available"], true);
        assert_eq!(v["steer"]["knob"], "users");
        assert_eq!(v["steer"]["max"], 8.0);
        assert_eq!(v["steer"]["changes"].as_array().unwrap().len(), 1);

        // A staged profile: the plan owns the load.
        let (staged, stop) = make("127.0.0.1:8089", WEB);
        let plan = steer::tests::plan_for("Stages(stages: [(users: 5, over: \"10s\")])", None);
        let (steering, _) = Steering::new(
            &plan,
            crate::clock::Clock::start_in(std::time::Duration::ZERO),
            Arc::clone(&stop.stop),
        );
        let staged = staged.steering(Some(steering));
        let (got, v) = post(&staged, b"{\"users\": 3}");
        assert_eq!(got, 409, "{v}");
        assert!(v["error"].as_str().unwrap().contains("Stages"), "{v}");
    }

    #[test]
    fn hosts_other_than_loopback_are_refused_on_a_loopback_address() {
        let (app, _) = make("127.0.0.1:8089", WEB);
        for (host, status) in [
            ("127.0.0.1:8089", 200),
            ("localhost:8089", 200),
            ("127.0.0.2:8089", 200),
            ("attacker.example:8089", 403),
            ("127.0.0.1:9999", 403),
            ("127.0.0.1", 403),
        ] {
            let r = app.handle(&request("GET", "/", vec![("Host", host.as_bytes())], b""));
            assert_eq!(r.status, status, "{host}");
        }
        let (app6, _) = make("[::1]:8089", WEB);
        let r = app6.handle(&request("GET", "/", vec![("Host", b"[::1]:8089")], b""));
        assert_eq!(r.status, 200);
    }

    #[test]
    fn the_feed_and_the_metrics_only_listener() {
        let (app, _) = make("127.0.0.1:8089", WEB);
        let r = app.handle(&request(
            "GET",
            "/api/live?since=0&generation=0",
            vec![],
            b"",
        ));
        assert_eq!(r.status, 200);
        let v: serde_json::Value = serde_json::from_str(&text(&r)).unwrap();
        assert_eq!(v["phase"], "running");
        assert_eq!(v["run"]["profile"], "p");
        assert_eq!(v["series"]["points"].as_array().unwrap().len(), 0);
        let bad = app.handle(&request("GET", "/api/live?since=x", vec![], b""));
        assert_eq!(bad.status, 400);

        let (metrics_only, _) = make(
            "127.0.0.1:9464",
            Services {
                web: false,
                metrics: true,
            },
        );
        assert_eq!(
            metrics_only
                .handle(&request("GET", "/", vec![], b""))
                .status,
            200
        );
        assert_eq!(
            metrics_only
                .handle(&request("GET", "/api/live", vec![], b""))
                .status,
            404
        );
        let m = metrics_only.handle(&request("GET", "/metrics", vec![], b""));
        assert_eq!(m.content_type, metrics::TEXT);
        assert!(text(&m).contains("stampede_run_info{"));
        assert_eq!(
            metrics_only
                .handle(&request("POST", "/api/stop", vec![], b"{}"))
                .status,
            404
        );
    }
}
