//! The synthetic shop: its user kinds and tasks, its request names with their latencies and
//! failures, and the shape of the load over the run.

use formats::Outcome;

/// The synthetic shop's user kinds and tasks (log format 1.2's task table): (id, kind, kind weight,
/// task, task weight, tags), and each endpoint's task and whether it starts that task's iteration.
pub(super) type TaskRow = (
    u32,
    &'static str,
    u32,
    &'static str,
    u32,
    &'static [&'static str],
);
pub(super) const TASKS: [TaskRow; 3] = [
    (1, "browser", 3, "home", 3, &["web"]),
    (2, "browser", 3, "catalog", 2, &["api", "web"]),
    (3, "buyer", 1, "checkout", 1, &["api", "payment"]),
];

/// By endpoint index: (task id, first request of the task's iteration).
pub(super) const ENDPOINT_TASKS: [(u32, bool); 6] = [
    (1, true),
    (2, true),
    (2, false),
    (3, true),
    (3, false),
    (1, false),
];

/// The user kinds and load model the synthetic profile describes, in the engine's profile syntax.
pub(super) fn profile_users(duration_s: u32) -> String {
    format!(
        "load: Closed(users: 40, spawn_rate: 4.0, duration: \"{duration_s}s\"), users: [\
         (name: \"browser\", weight: 3, tags: [\"web\"], tasks: [\
           (name: \"home\", weight: 3, requests: [(path: \"/\"), (path: \"/static/app.js\")]), \
           (name: \"catalog\", weight: 2, tags: [\"api\"], requests: [(path: \"/api/products\"), (path: \"/api/products/{{{{id}}}}\", name: \"GET /api/products/{{id}}\")])]), \
         (name: \"buyer\", weight: 1, tasks: [(name: \"checkout\", tags: [\"api\", \"payment\"], requests: [\
           (method: POST, path: \"/api/cart\"), (method: POST, path: \"/api/checkout\")])])]"
    )
}

/// One request name of the synthetic shop.
pub(super) struct Endpoint {
    pub(super) name: &'static str,
    pub(super) weight: f64,
    pub(super) median_ms: f64,
    pub(super) sigma: f64,
    pub(super) bytes_sent: u32,
    pub(super) bytes_received: u32,
    pub(super) failure_factor: f64,
}

pub(super) const ENDPOINTS: [Endpoint; 6] = [
    Endpoint {
        name: "GET /",
        weight: 0.30,
        median_ms: 12.0,
        sigma: 0.35,
        bytes_sent: 180,
        bytes_received: 14_200,
        failure_factor: 0.5,
    },
    Endpoint {
        name: "GET /api/products",
        weight: 0.25,
        median_ms: 35.0,
        sigma: 0.45,
        bytes_sent: 210,
        bytes_received: 48_000,
        failure_factor: 1.0,
    },
    Endpoint {
        name: "GET /api/products/{id}",
        weight: 0.20,
        median_ms: 18.0,
        sigma: 0.40,
        bytes_sent: 215,
        bytes_received: 3_900,
        failure_factor: 1.0,
    },
    Endpoint {
        name: "POST /api/cart",
        weight: 0.12,
        median_ms: 45.0,
        sigma: 0.50,
        bytes_sent: 820,
        bytes_received: 1_100,
        failure_factor: 1.5,
    },
    Endpoint {
        name: "POST /api/checkout",
        weight: 0.05,
        median_ms: 120.0,
        sigma: 0.60,
        bytes_sent: 1_450,
        bytes_received: 2_300,
        failure_factor: 3.0,
    },
    Endpoint {
        name: "GET /static/app.js",
        weight: 0.08,
        median_ms: 3.0,
        sigma: 0.30,
        bytes_sent: 190,
        bytes_received: 310_000,
        failure_factor: 0.2,
    },
];

/// Failure kinds: (outcome, status, message, share of failures).
pub(super) const FAILURES: [(Outcome, u16, &str, f64); 5] = [
    (Outcome::Status, 503, "503 Service Unavailable", 0.40),
    (Outcome::Timeout, 0, "request timed out after 5 s", 0.04),
    (
        Outcome::ConnectError,
        0,
        "connect: connection refused (os error 111)",
        0.24,
    ),
    (
        Outcome::Check,
        200,
        "check failed: $.id missing in response body",
        0.20,
    ),
    (
        Outcome::Reset,
        0,
        "connection reset by peer (os error 104)",
        0.12,
    ),
];

/// The request timeout: a response slower than this is a timeout failure.
pub(super) const TIMEOUT_US: u32 = 5_000_000;
/// Virtual users per core at full load.
pub(super) const USERS_PER_CORE: f64 = 64.0;

/// The load profile: a ramp from 10 % to 100 % of the full rate over the first quarter, then flat.
#[derive(Debug, Clone, Copy)]
pub(super) struct LoadShape {
    pub(super) duration_s: f64,
}

impl LoadShape {
    const FLOOR: f64 = 0.1;

    fn ramp_s(self) -> f64 {
        self.duration_s * 0.25
    }

    /// The rate at `t` as a fraction of the full rate.
    pub(super) fn level(self, t: f64) -> f64 {
        if t < self.ramp_s() {
            Self::FLOOR + (1.0 - Self::FLOOR) * t / self.ramp_s()
        } else {
            1.0
        }
    }

    /// The time by which a fraction `f` of all requests has been scheduled (the inverse of the
    /// cumulative rate).
    pub(super) fn time_at(self, f: f64) -> f64 {
        let (a, tr) = (Self::FLOOR, self.ramp_s());
        let ramp_area = tr * (1.0 + a) / 2.0;
        let total = ramp_area + self.duration_s - tr;
        let c = f * total;
        if c < ramp_area {
            let k = (1.0 - a) / tr;
            (-a + (a * a + 2.0 * k * c).sqrt()) / k
        } else {
            tr + (c - ramp_area)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_shape_inverts_its_cumulative_rate() {
        let shape = LoadShape { duration_s: 100.0 };
        assert!(shape.time_at(0.0).abs() < 1e-9);
        assert!((shape.time_at(1.0) - 100.0).abs() < 1e-9);
        // The ramp holds (0.1 + 1) / 2 * 25 = 13.75 of the 88.75 rate-seconds.
        assert!((shape.time_at(13.75 / 88.75) - 25.0).abs() < 1e-9);
        let mut last = 0.0;
        for i in 1..=100 {
            let t = shape.time_at(f64::from(i) / 100.0);
            assert!(t > last, "time_at must increase");
            last = t;
        }
    }
}
