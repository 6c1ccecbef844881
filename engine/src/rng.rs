//! A small, fast per-core random generator (SplitMix64). Think times and task choice need speed and
//! independence between cores, not cryptographic strength.

#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u32) -> u32 {
        if n == 0 {
            0
        } else {
            (((self.next_u64() >> 32) * u64::from(n)) >> 32) as u32
        }
    }
}

/// The seed of one core's generator, from the run's id (its seed: random for a run of one engine, the
/// same for every shard of a sharded run) and the core's seat (shard and core), so that no two cores
/// of a test draw the same numbers and a sharded run draws the same numbers every time it is repeated
/// under the same name.
pub(crate) fn core_seed(run_id: formats::RunId, seat: crate::schedule::Seat) -> u64 {
    let run = u64::from_le_bytes(run_id.0[..8].try_into().expect("8 bytes"));
    // SplitMix64's output function is a bijection, so distinct seats give distinct inner values, and
    // distinct inner values distinct seeds.
    let place = Rng::new(u64::from(seat.shard) << 32 | u64::from(seat.core)).next_u64();
    Rng::new(run ^ place).next_u64()
}

/// 16 random bytes for a run id, from the OS; falls back to clock noise if /dev/urandom is missing.
pub(crate) fn random_id() -> [u8; 16] {
    use std::io::Read;
    let mut id = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut id));
    if read.is_err() {
        let mut r =
            Rng::new(crate::clock::wall_now_ns() as u64 ^ u64::from(std::process::id()) << 32);
        id[..8].copy_from_slice(&r.next_u64().to_le_bytes());
        id[8..].copy_from_slice(&r.next_u64().to_le_bytes());
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Seat;

    #[test]
    fn every_seat_of_a_run_has_its_own_seed() {
        let run = formats::RunId([7; 16]);
        let mut seeds = std::collections::BTreeSet::new();
        for shard in 0..64 {
            for core in 0..64 {
                let seat = Seat {
                    shard,
                    shards: 64,
                    core,
                    cores: 64,
                };
                assert!(seeds.insert(core_seed(run, seat)), "{seat:?}");
                // Reproducible: the same run and seat, the same seed.
                assert_eq!(core_seed(run, seat), core_seed(run, seat));
            }
        }
        assert_ne!(
            core_seed(run, Seat::single(0, 1)),
            core_seed(formats::RunId([8; 16]), Seat::single(0, 1)),
            "another run, other numbers"
        );
    }
}
