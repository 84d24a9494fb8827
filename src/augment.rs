//! Data augmentation for single-channel images flattened row-major: `x` is n × (height·width),
//! row `i` is image `i`, pixel `(r, c)` is column `r·width + c`. MNIST-1D signals are images of
//! height 1.
//!
//! An [`AugmentSpec`] names a strength level and/or explicit parameters; [`AugmentSpec::apply`]
//! returns augmented copies of a batch ([`Augmented`]), never changing its shape. Per image, in
//! this order:
//!
//! 1. RandAugment-like policy: `randaugment_n` operations drawn uniformly (with replacement) from
//!    identity, translate-x, translate-y, rotate, noise and cutout, each at the fixed magnitude
//!    `m = randaugment_magnitude / 10` with a random sign: translation by `round(0.25·m·side)`
//!    pixels, rotation by `30·m` degrees, Gaussian noise of sd `0.1·m`, a cutout of
//!    `0.5·m` of each side.
//! 2. Shift (pad with zeros, crop back at a random offset): `(dy, dx)` uniform integers in
//!    `±round(shift·height)` × `±round(shift·width)`.
//! 3. Rotation by an angle uniform in `±rotation` degrees about the image centre, bilinear, zero
//!    outside the image; skipped for images of height or width 1. Positive angles turn
//!    counter-clockwise as displayed (row 0 at the top), so 90° is numpy's `rot90`.
//! 4. Horizontal flip with probability ½ (only if `flip`; refused for digit data, see
//!    [`AugmentSpec::check_for_data`]).
//! 5. Cutout: one rectangle of `max(1, round(cutout·height))` × `max(1, round(cutout·width))`
//!    pixels, centred on a uniform pixel (clipped at the border), set to 0.
//! 6. Gaussian noise of sd `noise` added to every pixel (no clipping).
//!
//! Then, across the batch, **mixup** with `mixup = α > 0`: image `i` becomes
//! `λ_i·x_i + (1 − λ_i)·x_π(i)` with `λ_i ~ Beta(α, α)` per image and `π` a random permutation;
//! [`Augmented::mix`] returns `λ` and `π` so the caller mixes the targets the same way
//! ([`Mix::mix_rows`]). A training loop that ignores `mix` would train on wrong targets.
//!
//! Zero is the fill value of shifts, rotations and cutout: the background of images scaled to
//! [0, 1], and the overall mean of standardised ones.
//!
//! **Determinism.** Image `i` draws from its own stream `seed::derive(seed, ["augment", i])`,
//! mixup from `seed::derive(seed, ["mixup"])`: the result depends only on the seed and the batch,
//! not on the thread count. Callers pass a fresh seed per epoch and batch (derived from the
//! study seed).

use ndarray::parallel::prelude::*;
use ndarray::{Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Beta, Distribution, StandardNormal};
use serde::de::{self, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::seed;

/// Named strength levels; [`Level::spec`] gives their parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Nothing: the identity.
    #[default]
    None,
    /// `shift` 0.125 (the classic pad-and-crop: 1 px on 8×8, 4 px on 28×28, 5 on MNIST-1D).
    Weak,
    /// `shift` 0.125, `rotation` 10°, `cutout` 0.25, `noise` 0.05.
    Medium,
    /// `shift` 0.125, `rotation` 15°, `cutout` 0.375, `noise` 0.1, RandAugment 2 ops at
    /// magnitude 9, `mixup` 0.2.
    Strong,
}

impl Level {
    pub const NAMES: &'static [&'static str] = &["none", "weak", "medium", "strong"];

    pub fn name(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Weak => "weak",
            Level::Medium => "medium",
            Level::Strong => "strong",
        }
    }

    /// The parameters of this level. No level flips images; ask for `flip = true` explicitly.
    pub fn spec(self) -> AugmentSpec {
        let none = AugmentSpec {
            level: self,
            shift: 0.0,
            rotation: 0.0,
            flip: false,
            noise: 0.0,
            cutout: 0.0,
            mixup: 0.0,
            randaugment_n: 0,
            randaugment_magnitude: 0.0,
        };
        match self {
            Level::None => none,
            Level::Weak => AugmentSpec { shift: 0.125, ..none },
            Level::Medium => AugmentSpec { shift: 0.125, rotation: 10.0, cutout: 0.25, noise: 0.05, ..none },
            Level::Strong => AugmentSpec {
                shift: 0.125,
                rotation: 15.0,
                cutout: 0.375,
                noise: 0.1,
                randaugment_n: 2,
                randaugment_magnitude: 9.0,
                mixup: 0.2,
                ..none
            },
        }
    }
}

/// An augmentation policy. In a study it is a level name (`augment = "medium"`) or a table
/// (`augment = { level = "weak", noise = 0.1 }`): `level` (default `none`) sets every parameter,
/// the other keys override it. Unknown keys are errors. See the module docs for what each
/// parameter does; [`AugmentSpec::check`] states the ranges.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AugmentSpec {
    /// The named level the parameters start from (reported; explicit keys may override it).
    pub level: Level,
    /// Largest shift as a fraction of each side, in [0, 0.5].
    pub shift: f64,
    /// Largest rotation in degrees, in [0, 180].
    pub rotation: f64,
    /// Horizontal flips with probability ½ (never for digit data).
    pub flip: bool,
    /// Sd of added Gaussian noise, in [0, 10].
    pub noise: f64,
    /// Cutout rectangle as a fraction of each side, in [0, 1]; 0 turns it off.
    pub cutout: f64,
    /// Mixup's Beta(α, α) parameter α, in [0, 100]; 0 turns it off.
    pub mixup: f64,
    /// RandAugment: operations per image, 0..=10.
    pub randaugment_n: usize,
    /// RandAugment: magnitude in [0, 10].
    pub randaugment_magnitude: f64,
}

impl Default for AugmentSpec {
    fn default() -> Self {
        Level::None.spec()
    }
}

/// The table form of [`AugmentSpec`] before the level is resolved.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AugmentTable {
    #[serde(default)]
    level: Level,
    shift: Option<f64>,
    rotation: Option<f64>,
    flip: Option<bool>,
    noise: Option<f64>,
    cutout: Option<f64>,
    mixup: Option<f64>,
    randaugment_n: Option<usize>,
    randaugment_magnitude: Option<f64>,
}

impl AugmentTable {
    fn resolve(self) -> AugmentSpec {
        let base = self.level.spec();
        AugmentSpec {
            level: self.level,
            shift: self.shift.unwrap_or(base.shift),
            rotation: self.rotation.unwrap_or(base.rotation),
            flip: self.flip.unwrap_or(base.flip),
            noise: self.noise.unwrap_or(base.noise),
            cutout: self.cutout.unwrap_or(base.cutout),
            mixup: self.mixup.unwrap_or(base.mixup),
            randaugment_n: self.randaugment_n.unwrap_or(base.randaugment_n),
            randaugment_magnitude: self.randaugment_magnitude.unwrap_or(base.randaugment_magnitude),
        }
    }
}

impl<'de> Deserialize<'de> for AugmentSpec {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct SpecVisitor;
        impl<'de> Visitor<'de> for SpecVisitor {
            type Value = AugmentSpec;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a strength level (\"none\", \"weak\", \"medium\", \"strong\") or a table of augmentation parameters")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<AugmentSpec, E> {
                Level::deserialize(v.into_deserializer()).map(Level::spec)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<AugmentSpec, A::Error> {
                AugmentTable::deserialize(de::value::MapAccessDeserializer::new(map)).map(AugmentTable::resolve)
            }
        }
        de.deserialize_any(SpecVisitor)
    }
}

/// A batch after [`AugmentSpec::apply`]: the images (same shape as the input) and, when mixup is
/// on, how they were mixed.
#[derive(Debug, Clone, PartialEq)]
pub struct Augmented {
    pub x: Array2<f64>,
    pub mix: Option<Mix>,
}

/// Mixup pairs: image `i` is `weight[i]·a_i + (1 − weight[i])·a_partner[i]`, where `a` is the
/// batch after the per-image operations.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    pub partner: Vec<usize>,
    /// λ_i in [0, 1].
    pub weight: Vec<f64>,
}

impl Mix {
    /// Mixes per-row targets (one-hot labels, soft teacher probabilities, …; n × k) the same way
    /// as the images.
    ///
    /// # Panics
    /// If `t` does not have one row per image (a caller's bug).
    pub fn mix_rows(&self, t: ArrayView2<f64>) -> Array2<f64> {
        assert_eq!(t.nrows(), self.weight.len(), "Mix::mix_rows: {} rows for {} images", t.nrows(), self.weight.len());
        let mut out = Array2::zeros(t.raw_dim());
        for (i, mut row) in out.rows_mut().into_iter().enumerate() {
            let (l, j) = (self.weight[i], self.partner[i]);
            row.assign(&(&t.row(i) * l + &t.row(j) * (1.0 - l)));
        }
        out
    }
}

impl AugmentSpec {
    /// Checks ranges: on failure, the key (within the augment table) and the allowed range.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let range = |key: &'static str, v: f64, lo: f64, hi: f64| {
            if v.is_finite() && (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err((key, format!("must be between {lo} and {hi}, got {v}")))
            }
        };
        range("shift", self.shift, 0.0, 0.5)?;
        range("rotation", self.rotation, 0.0, 180.0)?;
        range("noise", self.noise, 0.0, 10.0)?;
        range("cutout", self.cutout, 0.0, 1.0)?;
        range("mixup", self.mixup, 0.0, 100.0)?;
        range("randaugment_magnitude", self.randaugment_magnitude, 0.0, 10.0)?;
        if self.randaugment_n > 10 {
            return Err(("randaugment_n", format!("must be between 0 and 10 operations, got {}", self.randaugment_n)));
        }
        Ok(())
    }

    /// Checks the policy against the data: `allows_flips` is `data::DataSpec::allows_flips`
    /// (`Some(false)` for digits and digit-like data, `None` for tabular data). Flips are refused
    /// where they would change the class; any augmentation is refused on tabular data.
    pub fn check_for_data(&self, allows_flips: Option<bool>) -> Result<(), (&'static str, String)> {
        match allows_flips {
            None if !self.is_identity() => {
                Err(("level", "augmentation needs image data; this data kind is tabular (use level \"none\")".into()))
            }
            Some(false) if self.flip => Err((
                "flip",
                "horizontal flips change the class of digits (a mirrored 2, 3 or 7 is no longer that digit); this data kind does not allow them".into(),
            )),
            _ => Ok(()),
        }
    }

    /// True when `apply` returns its input unchanged.
    pub fn is_identity(&self) -> bool {
        self.per_image_is_identity() && self.mixup == 0.0
    }

    fn per_image_is_identity(&self) -> bool {
        self.shift == 0.0
            && self.rotation == 0.0
            && !self.flip
            && self.noise == 0.0
            && self.cutout == 0.0
            && (self.randaugment_n == 0 || self.randaugment_magnitude == 0.0)
    }

    /// Augments a batch (see the module docs for the operations and their order). Deterministic
    /// in `seed`; the output has the input's shape.
    ///
    /// # Panics
    /// If `x` does not have `height·width` columns (a caller's bug).
    pub fn apply(&self, x: ArrayView2<f64>, height: usize, width: usize, seed: u64) -> Augmented {
        assert_eq!(x.ncols(), height * width, "AugmentSpec::apply: {} columns for {height}×{width} images", x.ncols());
        let mut out = x.as_standard_layout().into_owned();
        if !self.per_image_is_identity() {
            out.axis_iter_mut(Axis(0)).into_par_iter().enumerate().for_each(|(i, mut row)| {
                let mut rng = seed::rng(seed::derive(seed, &["augment", &i.to_string()]));
                let px = row.as_slice_mut().expect("standard layout rows are contiguous");
                self.augment_one(px, height, width, &mut rng);
            });
        }
        let n = out.nrows();
        let mix = (self.mixup > 0.0 && n > 0).then(|| {
            let mut rng = seed::rng(seed::derive(seed, &["mixup"]));
            let mut partner: Vec<usize> = (0..n).collect();
            partner.shuffle(&mut rng);
            let beta = Beta::new(self.mixup, self.mixup).expect("checked: mixup > 0 and finite");
            let weight: Vec<f64> = (0..n).map(|_| beta.sample(&mut rng)).collect();
            Mix { partner, weight }
        });
        if let Some(m) = &mix {
            out = m.mix_rows(out.view());
        }
        Augmented { x: out, mix }
    }

    fn augment_one(&self, px: &mut [f64], h: usize, w: usize, rng: &mut impl Rng) {
        let scaled = |frac: f64, side: usize| (frac * side as f64).round() as isize;
        let m = self.randaugment_magnitude / 10.0;
        for _ in 0..self.randaugment_n {
            let op = rng.gen_range(0..6);
            let sign = if rng.gen::<bool>() { 1.0 } else { -1.0 };
            match op {
                1 => translate(px, h, w, 0, (sign * scaled(0.25 * m, w) as f64) as isize),
                2 => translate(px, h, w, (sign * scaled(0.25 * m, h) as f64) as isize, 0),
                3 => rotate(px, h, w, sign * 30.0 * m),
                4 => add_noise(px, 0.1 * m, rng),
                5 if m > 0.0 => cutout(px, h, w, 0.5 * m, rng),
                _ => {} // identity
            }
        }
        if self.shift > 0.0 {
            let (sy, sx) = (scaled(self.shift, h), scaled(self.shift, w));
            let dy = rng.gen_range(-sy..=sy);
            let dx = rng.gen_range(-sx..=sx);
            translate(px, h, w, dy, dx);
        }
        if self.rotation > 0.0 {
            let angle = rng.gen_range(-self.rotation..=self.rotation);
            rotate(px, h, w, angle);
        }
        if self.flip && rng.gen::<bool>() {
            for row in px.chunks_exact_mut(w) {
                row.reverse();
            }
        }
        if self.cutout > 0.0 {
            cutout(px, h, w, self.cutout, rng);
        }
        if self.noise > 0.0 {
            add_noise(px, self.noise, rng);
        }
    }
}

/// Moves the image by `dy` rows down and `dx` columns right, filling with 0.
pub fn translate(px: &mut [f64], h: usize, w: usize, dy: isize, dx: isize) {
    if dy == 0 && dx == 0 {
        return;
    }
    let src = px.to_vec();
    for r in 0..h {
        for c in 0..w {
            let (sr, sc) = (r as isize - dy, c as isize - dx);
            px[r * w + c] = if (0..h as isize).contains(&sr) && (0..w as isize).contains(&sc) {
                src[sr as usize * w + sc as usize]
            } else {
                0.0
            };
        }
    }
}

/// Rotates by `degrees` counter-clockwise (as displayed) about the centre, bilinear, 0 outside;
/// images of height or width 1 are left as they are.
pub fn rotate(px: &mut [f64], h: usize, w: usize, degrees: f64) {
    if degrees == 0.0 || h < 2 || w < 2 {
        return;
    }
    let src = px.to_vec();
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cy, cx) = ((h as f64 - 1.0) / 2.0, (w as f64 - 1.0) / 2.0);
    let at = |r: isize, c: isize| if (0..h as isize).contains(&r) && (0..w as isize).contains(&c) { src[r as usize * w + c as usize] } else { 0.0 };
    for r in 0..h {
        for c in 0..w {
            // Output (y down, x right) relative to the centre; the source is the output point
            // turned back by the angle.
            let (y, x) = (r as f64 - cy, c as f64 - cx);
            let sx = cx + x * cos - y * sin;
            let sy = cy + x * sin + y * cos;
            let (y0, x0) = (sy.floor(), sx.floor());
            let (fy, fx) = (sy - y0, sx - x0);
            let (y0, x0) = (y0 as isize, x0 as isize);
            px[r * w + c] = (1.0 - fy) * ((1.0 - fx) * at(y0, x0) + fx * at(y0, x0 + 1))
                + fy * ((1.0 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1));
        }
    }
}

/// Zeroes a `max(1, round(frac·h))` × `max(1, round(frac·w))` rectangle centred on a uniform
/// pixel, clipped at the border.
fn cutout(px: &mut [f64], h: usize, w: usize, frac: f64, rng: &mut impl Rng) {
    let ch = ((frac * h as f64).round() as usize).clamp(1, h);
    let cw = ((frac * w as f64).round() as usize).clamp(1, w);
    let (r0, c0) = (rng.gen_range(0..h) as isize - (ch / 2) as isize, rng.gen_range(0..w) as isize - (cw / 2) as isize);
    for r in r0.max(0)..(r0 + ch as isize).min(h as isize) {
        for c in c0.max(0)..(c0 + cw as isize).min(w as isize) {
            px[r as usize * w + c as usize] = 0.0;
        }
    }
}

fn add_noise(px: &mut [f64], sd: f64, rng: &mut impl Rng) {
    if sd == 0.0 {
        return;
    }
    for v in px.iter_mut() {
        let e: f64 = rng.sample(StandardNormal);
        *v += sd * e;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::digits::DigitsSpec;
    use crate::data::mnist::{FashionMnistSpec, MnistSpec};
    use crate::data::{DataSpec, PixelScaling};
    use crate::datasets::{optdigits_small, Split};

    fn digits() -> Array2<f64> {
        optdigits_small(Split::Train).x.slice(ndarray::s![..40, ..]).to_owned()
    }

    fn level(l: Level) -> AugmentSpec {
        l.spec()
    }

    #[test]
    fn deterministic_per_seed_and_different_across_seeds() {
        let x = digits();
        for l in [Level::Weak, Level::Medium, Level::Strong] {
            let spec = level(l);
            let a = spec.apply(x.view(), 8, 8, 5);
            assert_eq!(a, spec.apply(x.view(), 8, 8, 5), "{l:?}");
            assert_ne!(a.x, spec.apply(x.view(), 8, 8, 6).x, "{l:?}");
            assert_ne!(a.x, x, "{l:?}");
        }
        // Independent of the thread count: rows use their own streams.
        let spec = level(Level::Strong);
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| spec.apply(x.view(), 8, 8, 9));
        assert_eq!(one, spec.apply(x.view(), 8, 8, 9));
    }

    #[test]
    fn zero_parameters_are_the_identity() {
        let x = digits();
        let none = level(Level::None);
        assert!(none.is_identity());
        assert_eq!(none.apply(x.view(), 8, 8, 1), Augmented { x: x.clone(), mix: None });
        for spec in [
            AugmentSpec { noise: 0.0, ..level(Level::None) },
            AugmentSpec { shift: 0.0, randaugment_n: 3, randaugment_magnitude: 0.0, ..level(Level::None) },
        ] {
            assert_eq!(spec.apply(x.view(), 8, 8, 2).x, x);
        }
        // A shift too small to move a pixel (round(0.05·8) = 0) is the identity too.
        assert_eq!(AugmentSpec { shift: 0.05, ..level(Level::None) }.apply(x.view(), 8, 8, 3).x, x);
        let mut px = x.row(0).to_vec();
        translate(&mut px, 8, 8, 0, 0);
        assert_eq!(px, x.row(0).to_vec());
        rotate(&mut px, 8, 8, 0.0);
        assert_eq!(px, x.row(0).to_vec());
    }

    #[test]
    fn shape_never_changes() {
        for (n, h, w) in [(7, 8, 8), (3, 1, 40), (5, 28, 28), (4, 5, 9), (1, 12, 12)] {
            let x = Array2::from_shape_fn((n, h * w), |(i, j)| ((i * 31 + j * 7) % 11) as f64 / 10.0);
            for l in [Level::None, Level::Weak, Level::Medium, Level::Strong] {
                let spec = AugmentSpec { flip: true, ..level(l) };
                let out = spec.apply(x.view(), h, w, 4);
                assert_eq!(out.x.dim(), x.dim(), "{l:?} on {h}×{w}");
                assert!(out.x.iter().all(|v| v.is_finite()));
            }
        }
    }

    #[test]
    fn rotation_by_90_degrees_is_rot90() {
        let (h, w) = (6, 6);
        let img: Vec<f64> = (0..h * w).map(|i| ((i * 13) % 17) as f64).collect();
        let mut px = img.clone();
        rotate(&mut px, h, w, 90.0);
        // numpy's rot90 (counter-clockwise): out[r][c] = in[c][w − 1 − r], i.e. transposed,
        // then flipped upside down.
        for r in 0..h {
            for c in 0..w {
                assert!((px[r * w + c] - img[c * w + (w - 1 - r)]).abs() < 1e-9, "({r}, {c})");
            }
        }
        // Four quarter turns come back; a half turn reverses the pixel order.
        let mut back = img.clone();
        for _ in 0..4 {
            rotate(&mut back, h, w, 90.0);
        }
        assert!(back.iter().zip(&img).all(|(a, b)| (a - b).abs() < 1e-9));
        let mut half = img.clone();
        rotate(&mut half, h, w, 180.0);
        assert!(half.iter().zip(img.iter().rev()).all(|(a, b)| (a - b).abs() < 1e-9));
    }

    #[test]
    fn translate_moves_and_fills_with_zero() {
        let mut px: Vec<f64> = (1..=9).map(f64::from).collect();
        translate(&mut px, 3, 3, 1, -1);
        assert_eq!(px, vec![0.0, 0.0, 0.0, 2.0, 3.0, 0.0, 5.0, 6.0, 0.0]);
    }

    #[test]
    fn mixup_is_a_convex_combination_with_weights_in_unit_interval() {
        let x = digits();
        let spec = AugmentSpec { mixup: 0.4, ..level(Level::None) };
        let out = spec.apply(x.view(), 8, 8, 11);
        let mix = out.mix.expect("mixup is on");
        let mut partners = mix.partner.clone();
        partners.sort_unstable();
        assert_eq!(partners, (0..x.nrows()).collect::<Vec<_>>());
        assert!(mix.weight.iter().all(|l| (0.0..=1.0).contains(l)));
        assert!(mix.weight.iter().any(|&l| l > 0.01 && l < 0.99), "Beta(0.4, 0.4) is not degenerate");
        for i in 0..x.nrows() {
            let (l, j) = (mix.weight[i], mix.partner[i]);
            for k in 0..64 {
                assert!((out.x[[i, k]] - (l * x[[i, k]] + (1.0 - l) * x[[j, k]])).abs() < 1e-12);
            }
        }
        // Targets mix the same way: one-hot labels become a distribution.
        let y = optdigits_small(Split::Train).y;
        let onehot = Array2::from_shape_fn((x.nrows(), 10), |(i, c)| f64::from(u8::from(y[i] == c)));
        let t = mix.mix_rows(onehot.view());
        assert!(t.rows().into_iter().all(|r| (r.sum() - 1.0).abs() < 1e-12));
        assert!(level(Level::Strong).apply(x.view(), 8, 8, 1).mix.is_some());
        assert!(level(Level::Medium).apply(x.view(), 8, 8, 1).mix.is_none());
    }

    #[test]
    fn flips_are_refused_for_digits_and_allowed_for_fashion() {
        let digits = DataSpec::Digits(DigitsSpec { n_train: None, n_test: None, small: true, scaling: PixelScaling::Unit });
        let fashion = DataSpec::FashionMnist(FashionMnistSpec(MnistSpec { n_train: None, n_test: None, scaling: PixelScaling::Unit }));
        let flip = AugmentSpec { flip: true, ..level(Level::Weak) };
        let (key, msg) = flip.check_for_data(digits.allows_flips()).unwrap_err();
        assert_eq!(key, "flip");
        assert!(msg.contains("digits"), "{msg}");
        assert!(flip.check_for_data(fashion.allows_flips()).is_ok());
        // No named level flips, so every level is fine on digits.
        for l in [Level::None, Level::Weak, Level::Medium, Level::Strong] {
            assert!(level(l).check_for_data(digits.allows_flips()).is_ok());
        }
        assert_eq!(level(Level::Weak).check_for_data(None).unwrap_err().0, "level");
        assert!(level(Level::None).check_for_data(None).is_ok());
        // Flipping twice in a row is what a flip does: each row reversed.
        let mut px: Vec<f64> = (0..6).map(f64::from).collect();
        for row in px.chunks_exact_mut(3) {
            row.reverse();
        }
        assert_eq!(px, vec![2.0, 1.0, 0.0, 5.0, 4.0, 3.0]);
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Section {
        augment: AugmentSpec,
    }

    fn parse(text: &str) -> Result<AugmentSpec, String> {
        toml::from_str::<Section>(text).map(|s| s.augment).map_err(|e| e.to_string())
    }

    #[test]
    fn spec_from_a_level_name_or_a_table() {
        assert_eq!(parse("augment = \"medium\"").unwrap(), level(Level::Medium));
        let t = parse("augment = { level = \"weak\", noise = 0.1, flip = true }").unwrap();
        assert_eq!(t, AugmentSpec { noise: 0.1, flip: true, ..level(Level::Weak) });
        assert_eq!(parse("augment = { rotation = 5.0 }").unwrap(), AugmentSpec { rotation: 5.0, ..level(Level::None) });
        let e = parse("augment = \"meduim\"").unwrap_err();
        assert!(e.contains("unknown variant `meduim`") && e.contains("medium"), "{e}");
        let e = parse("augment = { nosie = 0.1 }").unwrap_err();
        assert!(e.contains("unknown field `nosie`") && e.contains("noise"), "{e}");
        // Inside a study section the error path reaches the key (study errors name it).
        let value: toml::Value = toml::from_str("augment = { level = \"weak\", nosie = 0.1 }").unwrap();
        let err = serde_path_to_error::deserialize::<_, Section>(value).err().expect("unknown key");
        assert_eq!(err.path().to_string(), "augment.nosie");
        // The serialised form reads back as the same spec.
        let strong = level(Level::Strong);
        let json = serde_json::to_string(&strong).unwrap();
        assert_eq!(serde_json::from_str::<AugmentSpec>(&json).unwrap(), strong);
    }

    #[test]
    fn check_names_the_key() {
        for l in [Level::None, Level::Weak, Level::Medium, Level::Strong] {
            assert!(level(l).check().is_ok());
        }
        let none = level(Level::None);
        assert_eq!(AugmentSpec { shift: 0.6, ..none.clone() }.check().unwrap_err().0, "shift");
        assert_eq!(AugmentSpec { rotation: -1.0, ..none.clone() }.check().unwrap_err().0, "rotation");
        assert_eq!(AugmentSpec { noise: f64::NAN, ..none.clone() }.check().unwrap_err().0, "noise");
        assert_eq!(AugmentSpec { cutout: 2.0, ..none.clone() }.check().unwrap_err().0, "cutout");
        assert_eq!(AugmentSpec { mixup: -0.1, ..none.clone() }.check().unwrap_err().0, "mixup");
        assert_eq!(AugmentSpec { randaugment_n: 11, ..none.clone() }.check().unwrap_err().0, "randaugment_n");
        let (key, msg) = AugmentSpec { randaugment_magnitude: 11.0, ..none }.check().unwrap_err();
        assert_eq!((key, msg.as_str()), ("randaugment_magnitude", "must be between 0 and 10, got 11"));
    }
}
