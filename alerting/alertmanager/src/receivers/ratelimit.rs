//! A token bucket per receiver (`rate_limit: {per_second, burst}`): each
//! notification takes one token; when none is left the caller waits its
//! turn, reserving the token first so that waiters are served in order.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

#[derive(Debug)]
pub struct TokenBucket {
    per_second: f64,
    burst: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// May go negative: tokens reserved by waiters.
    tokens: f64,
    at: Instant,
}

/// What [`TokenBucket::acquire`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Acquired {
    Now,
    Waited,
    /// No token before the deadline; nothing was taken.
    Denied,
}

impl TokenBucket {
    /// `per_second` must be positive and finite; `burst` at least 1.
    pub fn new(per_second: f64, burst: u32) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            per_second,
            burst,
            state: Mutex::new(State {
                tokens: burst,
                at: Instant::now(),
            }),
        }
    }

    /// Takes a token, waiting for it until `deadline` at the latest.
    pub async fn acquire(&self, deadline: Instant) -> Acquired {
        let wait = {
            let mut s = self.state.lock();
            let now = Instant::now();
            let refill = now.duration_since(s.at).as_secs_f64() * self.per_second;
            s.tokens = (s.tokens + refill).min(self.burst);
            s.at = now;
            s.tokens -= 1.0;
            if s.tokens >= 0.0 {
                return Acquired::Now;
            }
            let wait = Duration::from_secs_f64(-s.tokens / self.per_second);
            if now + wait > deadline {
                s.tokens += 1.0;
                return Acquired::Denied;
            }
            wait
        };
        tokio::time::sleep(wait).await;
        Acquired::Waited
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_paced() {
        let b = TokenBucket::new(2.0, 2);
        let far = Instant::now() + Duration::from_secs(60);
        let start = Instant::now();
        assert_eq!(b.acquire(far).await, Acquired::Now);
        assert_eq!(b.acquire(far).await, Acquired::Now);
        assert_eq!(b.acquire(far).await, Acquired::Waited);
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(499) && waited <= Duration::from_millis(501),
            "{waited:?}"
        );
        // A deadline too close is denied without taking a token.
        let near = Instant::now() + Duration::from_millis(100);
        assert_eq!(b.acquire(near).await, Acquired::Denied);
        assert_eq!(b.acquire(far).await, Acquired::Waited);
    }
}
