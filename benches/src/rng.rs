//! Stateless deterministic randomness: every draw is a hash of (seed, stream, step, salt).
//!
//! The workload draws each value from a hash instead of a sequential generator, so any
//! series can be generated independently of the others (in any shard, in any thread) and
//! the whole data set is still a pure function of the seed.

/// SplitMix64 finaliser: a fast, well-mixed 64-bit bijection.
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 64-bit hash of four words.
#[inline]
pub fn hash(seed: u64, stream: u64, step: u64, salt: u64) -> u64 {
    mix(mix(mix(seed ^ mix(stream)) ^ step) ^ salt.wrapping_mul(0xD6E8_FEB8_6659_FD93))
}

/// Uniform draw in [0, 1) with 53 bits of precision.
#[inline]
pub fn unit(seed: u64, stream: u64, step: u64, salt: u64) -> f64 {
    (hash(seed, stream, step, salt) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Approximately standard-normal draw (Irwin–Hall with four terms, rescaled to unit variance).
#[inline]
pub fn normal(seed: u64, stream: u64, step: u64, salt: u64) -> f64 {
    let h = hash(seed, stream, step, salt);
    let mut s = 0.0;
    for i in 0..4 {
        s += ((h >> (16 * i)) & 0xFFFF) as f64 / 65536.0;
    }
    (s - 2.0) * 3f64.sqrt()
}

/// Pick an index in `0..n` (n > 0).
#[inline]
pub fn pick(seed: u64, stream: u64, salt: u64, n: usize) -> usize {
    (hash(seed, stream, 0, salt) % n as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_is_in_range_and_spread() {
        let mut buckets = [0u32; 10];
        for i in 0..100_000 {
            let u = unit(7, i, 3, 1);
            assert!((0.0..1.0).contains(&u));
            buckets[(u * 10.0) as usize] += 1;
        }
        for b in buckets {
            assert!((9_000..11_000).contains(&b), "uneven buckets {buckets:?}");
        }
    }

    #[test]
    fn normal_has_unit_variance() {
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|i| normal(1, i, 0, 0)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
    }

    #[test]
    fn draws_are_deterministic_and_salt_sensitive() {
        assert_eq!(hash(1, 2, 3, 4), hash(1, 2, 3, 4));
        assert_ne!(hash(1, 2, 3, 4), hash(1, 2, 3, 5));
        assert_ne!(hash(1, 2, 3, 4), hash(2, 2, 3, 4));
    }
}
