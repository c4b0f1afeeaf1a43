//! A log-linear latency histogram: exact below 128 ns, then 64 buckets per power of two
//! (resolution better than 1.6 %), fixed size, no allocation per sample. It only counts values
//! it is given: it must never decide what a sample is (the meter does).

const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = (64 - SUB_BITS as usize) * SUB + SUB;

#[derive(Clone)]
pub struct Hist {
    counts: Vec<u64>,
    pub count: u64,
    pub max: u64,
    sum: u128,
}

fn index(v: u64) -> usize {
    if v < 2 * SUB as u64 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros();
    let shift = e - SUB_BITS;
    ((shift as usize + 1) << SUB_BITS) + ((v >> shift) as usize & (SUB - 1))
}

/// The middle of bucket `i`.
fn value(i: usize) -> u64 {
    if i < 2 * SUB {
        return i as u64;
    }
    let shift = (i >> SUB_BITS) - 1;
    let low = ((SUB + (i & (SUB - 1))) as u64) << shift;
    low + ((1u64 << shift) >> 1)
}

impl Default for Hist {
    fn default() -> Self {
        Hist {
            counts: vec![0; BUCKETS],
            count: 0,
            max: 0,
            sum: 0,
        }
    }
}

impl Hist {
    pub fn record(&mut self, ns: u64) {
        self.counts[index(ns)] += 1;
        self.count += 1;
        self.max = self.max.max(ns);
        self.sum += u128::from(ns);
    }

    pub fn merge(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.count += o.count;
        self.max = self.max.max(o.max);
        self.sum += o.sum;
    }

    /// The value at quantile `q` (0..=1), ns; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value(i).min(self.max);
            }
        }
        self.max
    }

    pub fn mean(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            (self.sum / u128::from(self.count)) as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        let mut last = 0;
        for v in (0..1_000_000u64).chain([u64::MAX / 3, u64::MAX]) {
            let i = index(v);
            assert!(i == last || i == last + 1 || v > 1_000_000, "{v}");
            assert!(i < BUCKETS);
            last = i;
            let mid = value(i) as f64;
            assert!(
                (mid - v as f64).abs() <= v as f64 / 60.0 + 1.0,
                "{v} -> {mid}"
            );
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Hist::default();
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5) as f64;
        let p99 = h.quantile(0.99) as f64;
        assert!((p50 / 5_000_000.0 - 1.0).abs() < 0.02, "{p50}");
        assert!((p99 / 9_900_000.0 - 1.0).abs() < 0.02, "{p99}");
        assert_eq!(h.quantile(1.0), 10_000_000);
        assert_eq!(h.max, 10_000_000);
    }
}
