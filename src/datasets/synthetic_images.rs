//! Synthetic images whose Bayes probabilities are known exactly: a digit glyph (8×8, drawn on a
//! `side × side` canvas) of class `c`, cyclically shifted by `s` from a small set, plus i.i.d.
//! Gaussian noise of sd σ:
//!
//! `x = roll(T_c, s) + σ·ε`, with `c` uniform on the classes, `s` uniform on
//! `{−m..=m}²` (m = `max_shift`) and `ε ~ N(0, I)`.
//!
//! So `p(x | c) = (1/|S|) Σ_s N(x; μ_cs, σ²I)` with `μ_cs = roll(T_c, s)`, and
//! `p0(c | x) = Σ_s exp(−‖x − μ_cs‖²/2σ²) / Σ_{c',s} exp(−‖x − μ_c's‖²/2σ²)`, computed in
//! [`SyntheticImages::bayes`] with the log-sum-exp trick over all (class, shift) pairs. Pixels
//! are not clipped (clipping would break the exact likelihood), so `x` is not in [0, 1].

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::Images;

/// 8×8 glyphs of the digits 0..9 (`#` = 1, `.` = 0).
const GLYPHS: [[&str; 8]; 10] = [
    ["..####..", ".#....#.", ".#...##.", ".#..#.#.", ".#.#..#.", ".##...#.", ".#....#.", "..####.."],
    ["...##...", "..###...", ".#.##...", "...##...", "...##...", "...##...", "...##...", ".######."],
    ["..####..", ".#....#.", "......#.", ".....#..", "...##...", "..#.....", ".#......", ".######."],
    [".#####..", "......#.", "......#.", "..####..", "......#.", "......#.", "......#.", ".#####.."],
    ["....##..", "...#.#..", "..#..#..", ".#...#..", ".######.", ".....#..", ".....#..", ".....#.."],
    [".######.", ".#......", ".#......", ".#####..", "......#.", "......#.", ".#....#.", "..####.."],
    ["...###..", "..#.....", ".#......", ".#####..", ".#....#.", ".#....#.", ".#....#.", "..####.."],
    [".######.", "......#.", ".....#..", "....#...", "...#....", "...#....", "...#....", "...#...."],
    ["..####..", ".#....#.", ".#....#.", "..####..", ".#....#.", ".#....#.", ".#....#.", "..####.."],
    ["..####..", ".#....#.", ".#....#.", "..#####.", "......#.", "......#.", ".....#..", "..###..."],
];

/// Settings of [`SyntheticImages`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticImagesConfig {
    /// Canvas side (8..=64); the 8×8 glyph sits in the middle.
    pub side: usize,
    /// Number of classes (2..=10): the glyphs of digits `0..n_classes`.
    pub n_classes: usize,
    /// Shifts are every (dy, dx) in `−max_shift..=max_shift`, cyclic; `2·max_shift < side`.
    pub max_shift: usize,
    /// Noise sd σ (> 0).
    pub sigma: f64,
}

impl Default for SyntheticImagesConfig {
    /// 10 classes on a 12×12 canvas, 9 shifts, σ = 0.8: the Bayes accuracy is about 0.90
    /// (0.98 at σ = 0.6, 0.78 at σ = 1.0, 0.64 at σ = 1.2).
    fn default() -> Self {
        SyntheticImagesConfig { side: 12, n_classes: 10, max_shift: 1, sigma: 0.8 }
    }
}

/// The generator; see the module docs for the model.
#[derive(Debug, Clone)]
pub struct SyntheticImages {
    config: SyntheticImagesConfig,
    shifts: Vec<(isize, isize)>,
    /// Row `c·|S| + s` is μ_cs, flattened row-major.
    means: Array2<f64>,
    /// ½‖μ_cs‖² per row of `means`.
    half_norms: Array1<f64>,
}

impl SyntheticImages {
    /// Checks the config and builds every shifted template.
    pub fn new(config: SyntheticImagesConfig) -> Result<Self, String> {
        let SyntheticImagesConfig { side, n_classes, max_shift, sigma } = config;
        if !(8..=64).contains(&side) {
            return Err(format!("side must be in 8..=64, got {side}"));
        }
        if !(2..=10).contains(&n_classes) {
            return Err(format!("n_classes must be in 2..=10, got {n_classes}"));
        }
        if 2 * max_shift >= side {
            return Err(format!("max_shift must be below side/2 = {}, got {max_shift}", side / 2));
        }
        if !(sigma.is_finite() && sigma > 0.0) {
            return Err(format!("sigma must be finite and > 0, got {sigma}"));
        }
        let m = max_shift as isize;
        let shifts: Vec<(isize, isize)> = (-m..=m).flat_map(|dy| (-m..=m).map(move |dx| (dy, dx))).collect();
        let off = (side - 8) / 2;
        let d = side * side;
        let mut means = Array2::zeros((n_classes * shifts.len(), d));
        for (c, glyph) in GLYPHS.iter().enumerate().take(n_classes) {
            for (k, &(dy, dx)) in shifts.iter().enumerate() {
                let mut row = means.row_mut(c * shifts.len() + k);
                for (r, line) in glyph.iter().enumerate() {
                    for (col, ch) in line.bytes().enumerate() {
                        if ch == b'#' {
                            let rr = (r + off) as isize + dy;
                            let cc = (col + off) as isize + dx;
                            let (rr, cc) = (rr.rem_euclid(side as isize) as usize, cc.rem_euclid(side as isize) as usize);
                            row[rr * side + cc] = 1.0;
                        }
                    }
                }
            }
        }
        let half_norms = means.map_axis(Axis(1), |r| 0.5 * r.dot(&r));
        Ok(SyntheticImages { config, shifts, means, half_norms })
    }

    pub fn config(&self) -> &SyntheticImagesConfig {
        &self.config
    }

    pub fn n_classes(&self) -> usize {
        self.config.n_classes
    }

    /// Pixels per image, `side²`.
    pub fn dim(&self) -> usize {
        self.config.side * self.config.side
    }

    /// The (dy, dx) shifts, in the order of the rows of [`Self::mean`].
    pub fn shifts(&self) -> &[(isize, isize)] {
        &self.shifts
    }

    /// μ_cs: the template of class `c` under shift number `s`, flattened.
    pub fn mean(&self, c: usize, s: usize) -> ndarray::ArrayView1<'_, f64> {
        self.means.row(c * self.shifts.len() + s)
    }

    /// Draws `n` images with their labels, and the exact `p0(·|x)` of each (n × k).
    pub fn sample(&self, n: usize, seed: u64) -> (Images, Array2<f64>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let (k, n_shifts, d, sigma) = (self.n_classes(), self.shifts.len(), self.dim(), self.config.sigma);
        let mut x = Array2::zeros((n, d));
        let mut y = Vec::with_capacity(n);
        for mut row in x.rows_mut() {
            let c = rng.gen_range(0..k);
            let s = rng.gen_range(0..n_shifts);
            for (v, mu) in row.iter_mut().zip(self.mean(c, s)) {
                let e: f64 = rng.sample(StandardNormal);
                *v = mu + sigma * e;
            }
            y.push(c);
        }
        let p0 = self.bayes(x.view());
        let side = self.config.side;
        (Images { x, y, height: side, width: side, n_classes: k }, p0)
    }

    /// Exact Bayes probabilities `p0(c | x)` for each row of `x` (n × side²) → n × k.
    ///
    /// # Panics
    /// If `x` does not have `side²` columns (a caller's bug, not a data error).
    pub fn bayes(&self, x: ArrayView2<f64>) -> Array2<f64> {
        assert_eq!(x.ncols(), self.dim(), "SyntheticImages::bayes: x has {} columns, expected {}", x.ncols(), self.dim());
        let inv_var = 1.0 / (self.config.sigma * self.config.sigma);
        // −‖x − μ‖²/2σ² = (x·μ − ½‖μ‖²)/σ² − ‖x‖²/2σ²; the last term is the same for every (c, s).
        let mut logits = x.dot(&self.means.t()); // n × (k·|S|)
        logits -= &self.half_norms;
        logits *= inv_var;
        let (k, n_shifts) = (self.n_classes(), self.shifts.len());
        let mut p = Array2::zeros((x.nrows(), k));
        for (l, mut out) in logits.rows().into_iter().zip(p.rows_mut()) {
            let max = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            for c in 0..k {
                out[c] = l.iter().skip(c * n_shifts).take(n_shifts).map(|v| (v - max).exp()).sum();
            }
            let total = out.sum();
            out /= total;
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_and_se(d: &[f64]) -> (f64, f64) {
        let n = d.len() as f64;
        let m = d.iter().sum::<f64>() / n;
        let var = d.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0);
        (m, (var / n).sqrt())
    }

    #[test]
    fn config_is_checked() {
        let bad = |c: SyntheticImagesConfig| SyntheticImages::new(c).is_err();
        let ok = SyntheticImagesConfig::default();
        assert!(bad(SyntheticImagesConfig { side: 7, ..ok.clone() }));
        assert!(bad(SyntheticImagesConfig { n_classes: 11, ..ok.clone() }));
        assert!(bad(SyntheticImagesConfig { max_shift: 6, ..ok.clone() }));
        assert!(bad(SyntheticImagesConfig { sigma: 0.0, ..ok.clone() }));
        let g = SyntheticImages::new(ok).unwrap();
        assert_eq!((g.shifts().len(), g.dim()), (9, 144));
    }

    #[test]
    fn shifted_templates_of_different_classes_differ() {
        // Otherwise two classes could be indistinguishable; every pair is at least 2 pixels apart.
        let g = SyntheticImages::new(SyntheticImagesConfig::default()).unwrap();
        let s = g.shifts().len();
        for a in 0..10 * s {
            for b in 0..10 * s {
                if a / s != b / s {
                    let d: f64 = g.mean(a / s, a % s).iter().zip(g.mean(b / s, b % s)).map(|(u, v)| (u - v).powi(2)).sum();
                    assert!(d >= 2.0, "classes {} and {} too close", a / s, b / s);
                }
            }
        }
    }

    #[test]
    fn p0_rows_sum_to_one_and_noise_free_templates_are_recognised() {
        let g = SyntheticImages::new(SyntheticImagesConfig { sigma: 0.3, ..Default::default() }).unwrap();
        let mut x = Array2::zeros((10, g.dim()));
        for c in 0..10 {
            x.row_mut(c).assign(&g.mean(c, 4));
        }
        let p = g.bayes(x.view());
        for c in 0..10 {
            assert!(p[[c, c]] > 0.999, "class {c}: {}", p[[c, c]]);
        }
        let (_, p) = SyntheticImages::new(SyntheticImagesConfig::default()).unwrap().sample(500, 3);
        for row in p.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-12 && row.iter().all(|&v| (0.0..=1.0).contains(&v)));
        }
    }

    /// With n draws, `1{y = c} − p0(c | x)` and `1{y = argmax p0} − max p0` have mean exactly 0
    /// (E[1{Y = c} | X] = p0(c | X)) and variance at most 1/4, so their sample means are within
    /// 5 standard errors of 0 except with probability below 1e-6 per check (normal
    /// approximation, n = 20,000). The seed is fixed, so the test is deterministic.
    #[test]
    fn p0_matches_class_frequencies_and_bayes_rate() {
        let g = SyntheticImages::new(SyntheticImagesConfig::default()).unwrap();
        let n = 20_000;
        let (img, p0) = g.sample(n, 2024);
        assert_eq!((img.len(), img.height, img.width, img.n_classes), (n, 12, 12, 10));
        for c in 0..10 {
            let d: Vec<f64> = (0..n).map(|i| f64::from(u8::from(img.y[i] == c)) - p0[[i, c]]).collect();
            let (m, se) = mean_and_se(&d);
            assert!(m.abs() < 5.0 * se, "class {c}: frequency − mean p0 = {m}, se {se}");
        }
        let argmax = |i: usize| (0..10).max_by(|&a, &b| p0[[i, a]].total_cmp(&p0[[i, b]])).unwrap();
        let d: Vec<f64> = (0..n).map(|i| f64::from(u8::from(img.y[i] == argmax(i))) - p0[[i, argmax(i)]]).collect();
        let (m, se) = mean_and_se(&d);
        assert!(m.abs() < 5.0 * se, "Bayes accuracy − E[max p0] = {m}, se {se}");
        let bayes_rate = (0..n).map(|i| p0[[i, argmax(i)]]).sum::<f64>() / n as f64;
        assert!((0.8..0.97).contains(&bayes_rate), "default problem should be neither trivial nor hopeless: {bayes_rate}");
    }

    #[test]
    fn sampling_is_reproducible() {
        let g = SyntheticImages::new(SyntheticImagesConfig { n_classes: 3, side: 8, ..Default::default() }).unwrap();
        let (a, pa) = g.sample(50, 9);
        let (b, pb) = g.sample(50, 9);
        assert_eq!(a, b);
        assert_eq!(pa, pb);
        assert!(a.y.iter().all(|&c| c < 3));
    }
}
