//! How much each pod and core is asked to do, against what one core has been measured to do.
//!
//! The figures come from docs/performance.md and are kept conservative: a warning here means the
//! test as rendered would likely measure the generator rather than the target. docs/distributed.md
//! gives the same arithmetic for choosing `--shards`.

/// Arrivals per second one core can start in an open model and keep schedule lag under 1 ms: the
/// lower of the two ceilings measured on the 2-core CI machine (37 500/s on a quiet machine, 18 750/s
/// under load; docs/performance.md#open-model). Plan with the lower.
pub const OPEN_ARRIVALS_PER_CORE: f64 = 18_750.0;

/// Ephemeral ports a pod has for connections to one target address and port, with the
/// `net.ipv4.ip_local_port_range` of `1024 65535` the pods are given.
pub const PORTS_PER_TARGET: u64 = 65_535 - 1024 + 1;

/// Connections a pod may hold to one target before `engine kube` warns (a margin under
/// [`PORTS_PER_TARGET`] for connections in TIME_WAIT).
pub const CONNECTIONS_PER_POD: u64 = 60_000;

/// What the test asks of the generators, from the resolved plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Demand {
    /// The open model's highest arrival rate, per second in total; `None` for closed models.
    pub peak_rate: Option<f64>,
    /// Users (closed: the largest population; open: the most busy at once), in total.
    pub users: u64,
    /// Whether users are a closed population (each user is one connection, always open).
    pub closed: bool,
}

/// The shape of the deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Pods.
    pub shards: u32,
    /// Engine threads (whole CPUs) per pod.
    pub cores: u32,
}

impl Shape {
    fn total_cores(self) -> u64 {
        u64::from(self.shards) * u64::from(self.cores)
    }
}

/// The fewest shards of `cores` cores each that start `peak_rate` arrivals per second within the
/// per-core figure.
pub fn shards_for_rate(peak_rate: f64, cores: u32) -> u64 {
    let per_pod = OPEN_ARRIVALS_PER_CORE * f64::from(cores.max(1));
    (peak_rate / per_pod).ceil().max(1.0) as u64
}

/// Warnings for a test that the rendered pods would struggle to generate, each with the fix.
pub fn warnings(demand: Demand, shape: Shape) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(rate) = demand.peak_rate {
        let per_core = rate / shape.total_cores() as f64;
        if per_core > OPEN_ARRIVALS_PER_CORE {
            out.push(format!(
                "the open model peaks at {rate:.0} arrivals/s, {per_core:.0}/s for each of the {} engine cores \
                 ({} pods x {} cores); one core has been measured to start about {OPEN_ARRIVALS_PER_CORE:.0}/s \
                 with lag under 1 ms (docs/performance.md#open-model): use --shards {} or more at --cores {}",
                shape.total_cores(),
                shape.shards,
                shape.cores,
                shards_for_rate(rate, shape.cores),
                shape.cores,
            ));
        }
    }
    let users_per_pod = demand.users.div_ceil(u64::from(shape.shards));
    if users_per_pod > CONNECTIONS_PER_POD {
        out.push(format!(
            "each pod would hold up to {users_per_pod} users' connections; a pod has {PORTS_PER_TARGET} ephemeral \
             ports for one target address: use --shards {} or more",
            demand.users.div_ceil(CONNECTIONS_PER_POD)
        ));
    }
    if demand.closed && demand.users < shape.total_cores() {
        out.push(format!(
            "{} users over {} pods x {} cores leaves {} engine cores without a user: fewer --shards or --cores would do",
            demand.users,
            shape.shards,
            shape.cores,
            shape.total_cores() - demand.users
        ));
    }
    out
}

/// Memory per pod when `--memory` is not given, MiB: 256 MiB for the engine, 64 KiB per user (its
/// state is about 5 KiB, docs/performance.md#memory-per-idle-user; the rest is room for the socket
/// buffers that the pod's memory cgroup is charged for), and twice the profile's files (feeders are
/// read once and indexed), rounded up to 64 MiB.
pub fn default_memory_mib(users_per_pod: u64, bundle_bytes: u64) -> u64 {
    let bytes = (256 << 20) + users_per_pod * (64 << 10) + 2 * bundle_bytes;
    bytes.div_ceil(64 << 20) * 64
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE_BY_ONE: Shape = Shape {
        shards: 1,
        cores: 1,
    };

    #[test]
    fn open_rates_above_a_core_s_figure_warn_with_the_shard_count_that_fits() {
        let demand = Demand {
            peak_rate: Some(100_000.0),
            users: 1000,
            closed: false,
        };
        assert_eq!(shards_for_rate(100_000.0, 2), 3);
        assert_eq!(shards_for_rate(100_000.0, 1), 6);
        let w = warnings(
            demand,
            Shape {
                shards: 2,
                cores: 2,
            },
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("25000/s for each of the 4 engine cores"),
            "{w:?}"
        );
        assert!(w[0].contains("--shards 3 or more at --cores 2"), "{w:?}");
        // Three pods of two cores: 16 667/s per core fits.
        assert!(
            warnings(
                demand,
                Shape {
                    shards: 3,
                    cores: 2
                }
            )
            .is_empty()
        );
    }

    #[test]
    fn connections_per_pod_past_the_ports_warn() {
        let demand = Demand {
            peak_rate: None,
            users: 200_000,
            closed: true,
        };
        let w = warnings(
            demand,
            Shape {
                shards: 3,
                cores: 4,
            },
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("66667 users' connections"), "{w:?}");
        assert!(w[0].contains("--shards 4 or more"), "{w:?}");
        assert!(
            warnings(
                demand,
                Shape {
                    shards: 4,
                    cores: 4
                }
            )
            .is_empty()
        );
    }

    #[test]
    fn idle_cores_warn() {
        let demand = Demand {
            peak_rate: None,
            users: 6,
            closed: true,
        };
        let w = warnings(
            demand,
            Shape {
                shards: 4,
                cores: 2,
            },
        );
        assert!(
            w[0].contains("leaves 2 engine cores without a user"),
            "{w:?}"
        );
        assert!(warnings(demand, ONE_BY_ONE).is_empty());
        // An open model's pool is a limit, not a population: no warning.
        let open = Demand {
            closed: false,
            peak_rate: Some(10.0),
            ..demand
        };
        assert!(
            warnings(
                open,
                Shape {
                    shards: 4,
                    cores: 2
                }
            )
            .is_empty()
        );
    }

    #[test]
    fn memory_grows_with_users_and_files() {
        assert_eq!(default_memory_mib(0, 0), 256);
        assert_eq!(default_memory_mib(1, 0), 320);
        // 10 000 users: 256 + 625 = 881 MiB, rounded up to 896.
        assert_eq!(default_memory_mib(10_000, 0), 896);
        assert_eq!(default_memory_mib(0, 1 << 20), 320);
    }
}
