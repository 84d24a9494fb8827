//! MNIST-1D (Greydanus 2020; Greydanus & Kobak, ICML 2024), generated here: ten 12-point
//! templates, each padded, dilated, scaled, translated, noised, sheared and subsampled to 40
//! points. [`mnist1d_official`] reproduces the official `mnist1d_data.pkl` (4,000 + 1,000
//! signals) to about 1e-15, because the generator replays numpy's legacy `RandomState` draws
//! ([`NumpyRandomState`]) in the order the Python code makes them. Spec: shared reference
//! datasets.md §6; licence of the original: Apache-2.0.
//!
//! The signals are standardised over the whole generated set (scalar mean 0, sd 1), as in the
//! original, so `Images::x` is not in [0, 1]; `height` is 1 and `width` the sequence length.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::Images;

/// The raw templates of the ten digits (`d0`..`d9`), before normalisation.
const RAW_TEMPLATES: [[f64; 12]; 10] = [
    [5., 6., 6.5, 6.75, 7., 7., 7., 7., 6.75, 6.5, 6., 5.],
    [5., 3., 3., 3.4, 3.8, 4.2, 4.6, 5., 5.4, 5.8, 5., 5.],
    [5., 6., 6.5, 6.5, 6., 5.25, 4.75, 4., 3.5, 3.5, 4., 5.],
    [5., 6., 6.5, 6.5, 6., 5., 5., 6., 6.5, 6.5, 6., 5.],
    [5., 4.4, 3.8, 3.2, 2.6, 2.6, 5., 5., 5., 5., 5., 5.],
    [5., 3., 3., 3., 3., 5., 6., 6.5, 6.5, 6., 4.5, 5.],
    [5., 4., 3.5, 3.25, 3., 3., 3., 3., 3.25, 3.5, 4., 5.],
    [5., 7., 7., 6.6, 6.2, 5.8, 5.4, 5., 4.6, 4.2, 5., 5.],
    [5., 4., 3.5, 3.5, 4., 5., 5., 4., 3.5, 3.5, 4., 5.],
    [5., 4., 3.5, 3.5, 4., 5., 5., 5., 5., 4.7, 4.3, 5.],
];
const TEMPLATE_LEN: usize = 12;
const N_CLASSES: usize = 10;

/// Generator settings; [`Default`] is the official configuration (`get_dataset_args()`), minus
/// the sample count, split and seed, which are arguments of [`mnist1d`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mnist1dConfig {
    /// Zeros appended to the 12-point template: uniform in `padding.0..=padding.1`; the padded
    /// signal is then dilated to `12 + padding.1` points.
    pub padding: (usize, usize),
    /// The signal is multiplied by `1 + scale_coeff·(u − 0.5)`.
    pub scale_coeff: f64,
    /// Cyclic shift to the right, uniform in `0..max_translation`.
    pub max_translation: usize,
    /// Scale of the Gaussian-smoothed noise (σ = 2) that replaces the zero padding.
    pub corr_noise_scale: f64,
    /// Scale of the i.i.d. Gaussian noise added everywhere.
    pub iid_noise_scale: f64,
    /// A linear ramp `c·linspace(−½, ½)` with `c = shear_scale·(u − 0.5)` is subtracted.
    pub shear_scale: f64,
    /// Permute the sequence positions (one random permutation for the whole set).
    pub shuffle_seq: bool,
    /// Length of the output signals.
    pub final_seq_length: usize,
}

impl Default for Mnist1dConfig {
    fn default() -> Self {
        Mnist1dConfig {
            padding: (36, 60),
            scale_coeff: 0.4,
            max_translation: 48,
            corr_noise_scale: 0.25,
            iid_noise_scale: 0.02,
            shear_scale: 0.75,
            shuffle_seq: false,
            final_seq_length: 40,
        }
    }
}

impl Mnist1dConfig {
    /// Checks the settings; [`mnist1d`] panics on a config that fails this.
    pub fn check(&self) -> Result<(), String> {
        let dilated = TEMPLATE_LEN + self.padding.1;
        if self.padding.0 > self.padding.1 {
            return Err(format!("padding must be (low, high) with low <= high, got {:?}", self.padding));
        }
        if self.max_translation == 0 || self.max_translation > dilated {
            return Err(format!(
                "max_translation must be in 1..={dilated} (the dilated length), got {}",
                self.max_translation
            ));
        }
        if self.final_seq_length < 2 {
            return Err(format!("final_seq_length must be at least 2, got {}", self.final_seq_length));
        }
        for (name, v) in [
            ("scale_coeff", self.scale_coeff),
            ("corr_noise_scale", self.corr_noise_scale),
            ("iid_noise_scale", self.iid_noise_scale),
            ("shear_scale", self.shear_scale),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{name} must be finite and >= 0, got {v}"));
            }
        }
        Ok(())
    }
}

/// numpy's legacy `RandomState` (MT19937 with numpy's double, bounded-integer, Gaussian and
/// shuffle algorithms), enough of it to replay MNIST-1D bit for bit.
#[derive(Clone)]
pub struct NumpyRandomState {
    mt: [u32; 624],
    index: usize,
    gauss: Option<f64>,
}

impl NumpyRandomState {
    /// `np.random.seed(seed)`: `init_genrand(seed)` for seeds below 2³² (numpy refuses larger
    /// ones); a larger seed is taken as `RandomState([low32, high32])` (`init_by_array`).
    pub fn new(seed: u64) -> Self {
        match u32::try_from(seed) {
            Ok(s) => Self::from_u32(s),
            Err(_) => Self::from_array(&[seed as u32, (seed >> 32) as u32]),
        }
    }

    fn from_u32(seed: u32) -> Self {
        let mut mt = [0u32; 624];
        mt[0] = seed;
        for i in 1..624 {
            mt[i] = 1_812_433_253u32.wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_add(i as u32);
        }
        NumpyRandomState { mt, index: 624, gauss: None }
    }

    /// MT19937 `init_by_array` (numpy seeding with an array of u32).
    fn from_array(key: &[u32]) -> Self {
        let mut s = Self::from_u32(19_650_218);
        let mt = &mut s.mt;
        let (n, mut i, mut j) = (624usize, 1usize, 0usize);
        for _ in 0..n.max(key.len()) {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= n {
                mt[0] = mt[n - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..n - 1 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= n {
                mt[0] = mt[n - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        s
    }

    fn twist(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        for i in 0..624 {
            let y = (self.mt[i] & UPPER) | (self.mt[(i + 1) % 624] & LOWER);
            let mut v = self.mt[(i + 397) % 624] ^ (y >> 1);
            if y & 1 != 0 {
                v ^= 0x9908_b0df;
            }
            self.mt[i] = v;
        }
        self.index = 0;
    }

    /// The next raw 32-bit output (`genrand_int32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            self.twist();
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `np.random.rand()`: 53-bit double in [0, 1) from two draws.
    pub fn rand(&mut self) -> f64 {
        let a = f64::from(self.next_u32() >> 5);
        let b = f64::from(self.next_u32() >> 6);
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// Uniform integer in `[0, max]` by masked rejection (numpy's `random_interval` and the
    /// masked path of `randint`); draws nothing when `max == 0`.
    pub fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        for shift in [1, 2, 4, 8, 16] {
            mask |= mask >> shift;
        }
        loop {
            let v = self.next_u32() & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// `np.random.randn()`: polar Box–Muller, caching the second value.
    pub fn randn(&mut self) -> f64 {
        if let Some(g) = self.gauss.take() {
            return g;
        }
        loop {
            let x1 = 2.0 * self.rand() - 1.0;
            let x2 = 2.0 * self.rand() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.gauss = Some(f * x1);
                return f * x2;
            }
        }
    }

    /// `np.random.permutation(n)`: Fisher–Yates from the end.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.interval(i as u32) as usize;
            p.swap(i, j);
        }
        p
    }
}

/// `np.linspace(start, stop, n)` (numpy's formula: `i·step + start`, last point exact).
fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![start];
    }
    let step = (stop - start) / (n - 1) as f64;
    let mut v: Vec<f64> = (0..n).map(|i| i as f64 * step + start).collect();
    if let Some(last) = v.last_mut() {
        *last = stop;
    }
    v
}

/// `scipy.interpolate.interp1d(linspace(0,1,len), x, kind='linear')(linspace(0,1,n))`.
fn interpolate(x: &[f64], n: usize) -> Vec<f64> {
    let grid = linspace(0.0, 1.0, x.len());
    linspace(0.0, 1.0, n)
        .into_iter()
        .map(|q| {
            let j = grid.partition_point(|&g| g < q).clamp(1, x.len() - 1);
            let slope = (x[j] - x[j - 1]) / (grid[j] - grid[j - 1]);
            slope * (q - grid[j - 1]) + x[j - 1]
        })
        .collect()
}

/// `scipy.ndimage.gaussian_filter1d(x, sigma)` with the default `truncate = 4` and mode
/// `reflect` (half-sample symmetric: `… c b a | a b c …`).
fn gaussian_filter(x: &[f64], sigma: f64) -> Vec<f64> {
    let radius = (4.0 * sigma + 0.5) as isize;
    let mut w: Vec<f64> = (-radius..=radius).map(|i| (-0.5 / (sigma * sigma) * (i * i) as f64).exp()).collect();
    let total: f64 = w.iter().sum();
    w.iter_mut().for_each(|v| *v /= total);
    let n = x.len() as isize;
    let at = |mut i: isize| -> f64 {
        // Reflect until inside (a signal shorter than the radius needs several reflections).
        loop {
            if i < 0 {
                i = -i - 1;
            } else if i >= n {
                i = 2 * n - i - 1;
            } else {
                return x[i as usize];
            }
        }
    };
    (0..n)
        .map(|i| {
            let r = radius as usize;
            let mut acc = at(i) * w[r];
            for k in 1..=radius {
                acc += (at(i - k) + at(i + k)) * w[r + k as usize];
            }
            acc
        })
        .collect()
}

/// The ten templates after normalisation: zero mean, unit (population) sd, shifted to start at
/// 0, divided by 6.
pub fn templates() -> [[f64; 12]; 10] {
    let mut out = RAW_TEMPLATES;
    for t in out.iter_mut() {
        let mean = t.iter().sum::<f64>() / 12.0;
        let sd = (t.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 12.0).sqrt();
        t.iter_mut().for_each(|v| *v = (*v - mean) / sd);
        let first = t[0];
        t.iter_mut().for_each(|v| *v = (*v - first) / 6.0);
    }
    out
}

/// One example: the official `transform(x, t, args)`, drawing from `rng` in the same order.
fn transform(template: &[f64; 12], cfg: &Mnist1dConfig, rng: &mut NumpyRandomState) -> Vec<f64> {
    const EPS: f64 = 1e-8;
    let (low, high) = cfg.padding;
    let dilated_len = TEMPLATE_LEN + high;
    // pad
    let p = low + (rng.rand() * (high - low + 1) as f64) as usize;
    let mut x: Vec<f64> = template.iter().map(|v| v + EPS).collect();
    x.resize(TEMPLATE_LEN + p, 0.0);
    // dilate
    let mut x = interpolate(&x, dilated_len);
    // scale
    let s = 1.0 + cfg.scale_coeff * (rng.rand() - 0.5);
    x.iter_mut().for_each(|v| *v *= s);
    // translate: roll right by k
    let k = rng.interval((cfg.max_translation - 1) as u32) as usize;
    x.rotate_right(k);
    // correlated noise where the signal is exactly zero (the padding)
    let noise: Vec<f64> = (0..dilated_len).map(|_| cfg.corr_noise_scale * rng.randn()).collect();
    let smooth = gaussian_filter(&noise, 2.0);
    for (v, n) in x.iter_mut().zip(&smooth) {
        if *v == 0.0 {
            *v = *n;
        }
    }
    // iid noise
    for v in x.iter_mut() {
        *v += cfg.iid_noise_scale * rng.randn();
    }
    // shear
    let c = cfg.shear_scale * (rng.rand() - 0.5);
    for (v, r) in x.iter_mut().zip(linspace(-0.5, 0.5, dilated_len)) {
        *v -= c * r;
    }
    // subsample
    interpolate(&x, cfg.final_seq_length)
}

/// Generates `10·⌊n/10⌋` MNIST-1D signals with numpy seed `seed`, as the official
/// `make_dataset`: class-major generation (`n/10` per digit), one random permutation of the rows,
/// optionally of the positions, then global standardisation. The official set is
/// `mnist1d(5000, 42, &Mnist1dConfig::default())` split 4000/1000 ([`mnist1d_official`]).
///
/// # Panics
/// If `config.check()` fails.
pub fn mnist1d(n: usize, seed: u64, config: &Mnist1dConfig) -> Images {
    let mut out = generate(n / N_CLASSES, seed, config);
    if !out.is_empty() {
        let mean = out.x.iter().sum::<f64>() / out.x.len() as f64;
        let sd = (out.x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / out.x.len() as f64).sqrt();
        if sd > 0.0 {
            out.x.mapv_inplace(|v| (v - mean) / sd);
        }
    }
    out
}

/// Exactly `n` fresh MNIST-1D signals with numpy seed `seed`, **not** standardised: the
/// generator of [`mnist1d`] run with `⌈n/10⌉` signals per class, of which the first `n` after
/// its random permutation are kept (so class counts are random, as in a subsample). Callers
/// standardise with statistics of their training draw (kdlab's `mnist1d` data kind does).
///
/// # Panics
/// If `config.check()` fails.
pub fn mnist1d_unstandardised(n: usize, seed: u64, config: &Mnist1dConfig) -> Images {
    generate(n.div_ceil(N_CLASSES), seed, config).split_at(n).0
}

/// `make_dataset` without its final standardisation: class-major generation, one permutation
/// of the rows, optionally one of the positions.
fn generate(per_class: usize, seed: u64, config: &Mnist1dConfig) -> Images {
    if let Err(e) = config.check() {
        panic!("invalid Mnist1dConfig: {e}");
    }
    let total = per_class * N_CLASSES;
    let len = config.final_seq_length;
    let templates = templates();
    let mut rng = NumpyRandomState::new(seed);
    let mut rows = Vec::with_capacity(total);
    let mut labels = Vec::with_capacity(total);
    for (label, t) in templates.iter().enumerate() {
        for _ in 0..per_class {
            rows.push(transform(t, config, &mut rng));
            labels.push(label);
        }
    }
    let perm = rng.permutation(total);
    let seq_perm = if config.shuffle_seq { rng.permutation(len) } else { (0..len).collect() };
    let x = Array2::from_shape_fn((total, len), |(i, j)| rows[perm[i]][seq_perm[j]]);
    let y: Vec<usize> = perm.iter().map(|&i| labels[i]).collect();
    Images { x, y, height: 1, width: len, n_classes: N_CLASSES }
}

/// The official MNIST-1D split: 4,000 training and 1,000 test signals of length 40
/// (`num_samples = 5000`, `train_split = 0.8`, seed 42, default config).
pub fn mnist1d_official() -> (Images, Images) {
    mnist1d(5000, 42, &Mnist1dConfig::default()).split_at(4000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_random_state_matches_numpy() {
        let mut r = NumpyRandomState::new(42);
        assert_eq!([r.next_u32(), r.next_u32(), r.next_u32()], [1_608_637_542, 3_421_126_067, 4_083_286_876]);
        let mut r = NumpyRandomState::new(42);
        assert_eq!(r.rand(), 0.3745401188473625);
        // A permutation is a permutation, and interval(0) draws nothing.
        let mut p = r.permutation(100);
        p.sort_unstable();
        assert_eq!(p, (0..100).collect::<Vec<_>>());
        let (mut a, mut b) = (NumpyRandomState::new(7), NumpyRandomState::new(7));
        assert_eq!(a.interval(0), 0);
        assert_eq!(a.next_u32(), b.next_u32());
        // Values from numpy 2 (`RandomState`), including seeds past u32 taken as
        // `RandomState(np.array([low32, high32], dtype=np.uint32))` (init_by_array).
        for (seed, first, next) in [
            (1u64 << 32, 0.11299430095636409, 1_794_561_286),
            ((1 << 32) + 5, 0.15727238718789782, 1_213_270_837),
            (12_345_678_901_234, 0.02504137575317178, 624_174_316),
        ] {
            let mut r = NumpyRandomState::new(seed);
            assert_eq!((r.rand(), r.next_u32()), (first, next), "seed {seed}");
        }
        let mut r = NumpyRandomState::new(3);
        assert_eq!(r.permutation(10), vec![5, 4, 1, 2, 9, 6, 7, 0, 3, 8]);
        assert_eq!((r.randn(), r.randn()), (-0.46004212066268363, -0.05792084059435568));
        assert_eq!(r.interval(47), 39); // np.random.choice(48)
    }

    #[test]
    fn template_zero_check_values() {
        let t = templates()[0];
        let want = [0.0, 0.2369395511, 0.3554093267, 0.4146442144, 0.4738791022, 0.4738791022];
        for (a, b) in t.iter().zip(want) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
        assert!(t[11].abs() < 1e-15);
    }

    #[test]
    fn filter_and_interpolation_match_scipy_rules() {
        // A constant stays constant under the normalised filter, with reflection at the edges.
        let f = gaussian_filter(&[1.0; 5], 2.0);
        assert!(f.iter().all(|v| (v - 1.0).abs() < 1e-15));
        // Linear data is reproduced by linear interpolation.
        let x: Vec<f64> = (0..7).map(|i| 2.0 * i as f64).collect();
        let y = interpolate(&x, 13);
        assert!(y.iter().enumerate().all(|(i, v)| (v - i as f64).abs() < 1e-12));
    }

    #[test]
    fn official_split_reproduces_golden_values() {
        let (train, test) = mnist1d_official();
        assert_eq!((train.len(), test.len(), train.x.ncols()), (4000, 1000, 40));
        assert_eq!(train.y[..20], [2, 6, 4, 5, 6, 6, 6, 0, 3, 1, 6, 9, 4, 3, 4, 5, 1, 9, 0, 3]);
        assert_eq!(test.y[..10], [2, 6, 3, 9, 4, 3, 1, 9, 5, 2]);
        let x0 = [-0.3320056674, -0.4719103657, -0.7786970763, -1.0097408265, -0.8823525654, 0.1039348126];
        let t0 = [-0.0787707805, -0.2107317059, -0.0917513811, 0.2826711174, 0.3260581535, 0.0384286689];
        for j in 0..6 {
            assert!((train.x[[0, j]] - x0[j]).abs() < 1e-9, "x[0][{j}] = {}", train.x[[0, j]]);
            assert!((test.x[[0, j]] - t0[j]).abs() < 1e-9, "x_test[0][{j}] = {}", test.x[[0, j]]);
        }
        assert_eq!(train.class_counts(), vec![398, 396, 411, 394, 394, 402, 401, 404, 402, 398]);
        assert_eq!(test.class_counts(), vec![102, 104, 89, 106, 106, 98, 99, 96, 98, 102]);
    }

    #[test]
    fn unstandardised_draws_give_exactly_n_and_match_the_standardised_generator() {
        let cfg = Mnist1dConfig::default();
        let a = mnist1d_unstandardised(37, 5, &cfg);
        assert_eq!((a.len(), a.height, a.width), (37, 1, 40));
        assert_eq!(a, mnist1d_unstandardised(37, 5, &cfg));
        assert_ne!(a.x, mnist1d_unstandardised(37, 6, &cfg).x);
        // A multiple of ten is `mnist1d` before its standardisation.
        let (raw, std) = (mnist1d_unstandardised(50, 3, &cfg), mnist1d(50, 3, &cfg));
        assert_eq!(raw.y, std.y);
        let (m, sd) = (raw.x.mean().unwrap(), raw.x.std(0.0));
        assert!(raw.x.iter().zip(std.x.iter()).all(|(r, s)| ((r - m) / sd - s).abs() < 1e-12));
    }

    #[test]
    fn other_sizes_seeds_and_shuffled_sequences() {
        let a = mnist1d(103, 1, &Mnist1dConfig::default());
        assert_eq!(a.len(), 100);
        assert_eq!(a.class_counts(), vec![10; 10]);
        let mean = a.x.mean().unwrap();
        let sd = a.x.std(0.0);
        assert!(mean.abs() < 1e-12 && (sd - 1.0).abs() < 1e-12);
        assert_eq!(a, mnist1d(103, 1, &Mnist1dConfig::default()));
        let cfg = Mnist1dConfig { shuffle_seq: true, final_seq_length: 30, ..Default::default() };
        let b = mnist1d(50, 1, &cfg);
        assert_eq!((b.len(), b.width), (50, 30));
        assert!(Mnist1dConfig { max_translation: 0, ..Default::default() }.check().is_err());
        assert!(Mnist1dConfig { padding: (5, 4), ..Default::default() }.check().is_err());
    }
}
