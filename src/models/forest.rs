//! kdlab's own random forests: a classifier that returns class probabilities and a
//! squared-error regressor.
//!
//! Why not linfa: linfa's trees/forests give no class probabilities and are not
//! reproducible across processes (they use a randomly seeded HashMap), so kdlab has its own.
//!
//! # What this module owns
//! - [`ForestParams`] / [`MaxFeatures`]: the hyper-parameters, with sklearn's meanings and
//!   defaults (100 trees, full depth, `min_samples_split = 2`, `min_samples_leaf = 1`,
//!   `sqrt` features per split, bootstrap on).
//! - [`RandomForestClassifier`]: gini splits; `predict_proba` is the average over trees of the
//!   leaf class frequencies, exactly as scikit-learn computes it.
//! - [`RandomForestRegressor`]: squared-error splits, leaf value = weighted mean.
//! - [`ForestError`]: every way `fit` can refuse its input.
//!
//! # Algorithm
//! - **Histogram split finding.** Each feature is cut once per fit into at most 256 quantile
//!   bins (every distinct value gets its own bin when there are at most 256 of them) and
//!   stored as one `u8` per cell, column-major. A node builds, per candidate feature, a
//!   histogram of per-bin statistics in one pass over its rows and scans only the bins that
//!   are occupied (tracked with a 256-bit mask), so deep, small nodes stay cheap. Bin edges
//!   are midpoints between neighbouring training values, and each split stores its edge as a
//!   raw `f64` threshold: prediction compares raw inputs (`x <= threshold` goes left) and
//!   never bins. A NaN at predict time goes right; `fit` rejects non-finite inputs.
//! - **Bootstrap as weights.** Like sklearn, a tree draws `n` rows with replacement and keeps
//!   each distinct row once with its draw count as weight; `min_samples_split` and
//!   `min_samples_leaf` count distinct rows, impurities use the weights.
//! - **Feature subsampling per split** with sklearn's rules: `Sqrt = max(1, floor(sqrt(p)))`,
//!   `Log2 = max(1, floor(log2(p)))`, `Fraction(f) = max(1, floor(f * p))`. Features are drawn
//!   without replacement; every draw counts towards `max_features`, but the search goes on
//!   past features that are constant in the node until at least one usable split is found.
//!   Ties between candidate splits keep the first one found. Zero-gain splits are allowed (as
//!   in sklearn), so a full-depth tree grows until its leaves are pure or cannot be split.
//! - **Determinism.** Tree `t` gets its own generator seeded from `(seed, t)` through
//!   splitmix64; trees are fit in parallel with rayon and collected in index order;
//!   predictions sum trees in index order for every row. Nothing depends on hash order or on
//!   the number of threads, so results are bit-identical across runs, processes and pools.
//!
//! With more than 256 distinct values in a feature, training rows that share a bin in every
//! feature cannot be told apart; in exchange split finding costs `O(rows)` per feature per
//! node instead of a sort.

use std::fmt;

use ndarray::{Array1, Array2, ArrayView2};
use rayon::prelude::*;

/// Most bins per feature; 256 keeps a binned cell in one byte.
const MAX_BINS: usize = 256;
/// `Node::feature` value that marks a leaf.
const LEAF: u32 = u32::MAX;
/// Rows per parallel prediction task: big enough to amortise the task, small enough that
/// the chunk's rows stay in cache while every tree is walked over them.
const PREDICT_CHUNK: usize = 256;

/// How many features each split may look at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxFeatures {
    /// Every feature (sklearn's `max_features=None` or `1.0`).
    All,
    /// `max(1, floor(sqrt(p)))`.
    Sqrt,
    /// `max(1, floor(log2(p)))`.
    Log2,
    /// `max(1, floor(f * p))`, with `0 < f <= 1`.
    Fraction(f64),
    /// Exactly this many (must be between 1 and `p`).
    Count(usize),
}

impl MaxFeatures {
    /// Number of features per split for `p` features, with sklearn's rounding.
    pub fn resolve(self, p: usize) -> Result<usize, ForestError> {
        let k = match self {
            MaxFeatures::All => p,
            MaxFeatures::Sqrt => p.isqrt(),
            MaxFeatures::Log2 => {
                if p == 0 {
                    0
                } else {
                    (usize::BITS - 1 - p.leading_zeros()) as usize
                }
            }
            MaxFeatures::Fraction(f) => {
                check_fraction(f)?;
                (f * p as f64).floor() as usize
            }
            MaxFeatures::Count(c) => {
                if c == 0 || c > p {
                    return Err(ForestError::InvalidParams(format!(
                        "max_features Count must be between 1 and the number of features ({p}), got {c}"
                    )));
                }
                c
            }
        };
        Ok(k.max(1).min(p.max(1)))
    }
}

fn check_fraction(f: f64) -> Result<(), ForestError> {
    if f.is_finite() && f > 0.0 && f <= 1.0 {
        Ok(())
    } else {
        Err(ForestError::InvalidParams(format!(
            "max_features Fraction must be in (0, 1], got {f}"
        )))
    }
}

/// Forest hyper-parameters; the defaults are scikit-learn's `RandomForestClassifier`'s.
#[derive(Debug, Clone, PartialEq)]
pub struct ForestParams {
    /// Number of trees (default 100).
    pub n_trees: usize,
    /// Deepest level a node may split at; `None` grows until leaves are pure or too small.
    pub max_depth: Option<usize>,
    /// Fewest distinct rows a node needs to be split (default 2).
    pub min_samples_split: usize,
    /// Fewest distinct rows each child of a split must keep (default 1).
    pub min_samples_leaf: usize,
    /// Features examined per split (default `Sqrt`).
    pub max_features: MaxFeatures,
    /// Draw `n` rows with replacement per tree (default true).
    pub bootstrap: bool,
}

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams {
            n_trees: 100,
            max_depth: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
            max_features: MaxFeatures::Sqrt,
            bootstrap: true,
        }
    }
}

impl ForestParams {
    /// Defaults for a regressor: as [`Default`] but every feature per split, like sklearn's
    /// `RandomForestRegressor` (`max_features=1.0`).
    pub fn regression() -> Self {
        ForestParams {
            max_features: MaxFeatures::All,
            ..ForestParams::default()
        }
    }

    /// Checks every field against its allowed range.
    pub fn check(&self) -> Result<(), ForestError> {
        let bad = |m: String| Err(ForestError::InvalidParams(m));
        if self.n_trees < 1 {
            return bad(format!("n_trees must be >= 1, got {}", self.n_trees));
        }
        if let Some(d) = self.max_depth {
            if d < 1 {
                return bad(format!(
                    "max_depth must be >= 1 (or None for no limit), got {d}"
                ));
            }
        }
        if self.min_samples_split < 2 {
            return bad(format!(
                "min_samples_split must be >= 2, got {}",
                self.min_samples_split
            ));
        }
        if self.min_samples_leaf < 1 {
            return bad(format!(
                "min_samples_leaf must be >= 1, got {}",
                self.min_samples_leaf
            ));
        }
        match self.max_features {
            MaxFeatures::Fraction(f) => check_fraction(f),
            MaxFeatures::Count(0) => bad("max_features Count must be >= 1, got 0".into()),
            _ => Ok(()),
        }
    }
}

/// Why a forest could not be fit.
#[derive(Debug, thiserror::Error)]
pub enum ForestError {
    /// A parameter is outside its allowed range (the message states the range).
    #[error("invalid forest parameters: {0}")]
    InvalidParams(String),
    /// No training rows or no feature columns.
    #[error("training data is empty: need at least one row and one feature column")]
    EmptyData,
    /// `x` and `y` disagree on the number of rows.
    #[error("x has {rows_x} rows but y has {rows_y}")]
    ShapeMismatch { rows_x: usize, rows_y: usize },
    /// A class label is not below `n_classes` (the first such row is reported).
    #[error(
        "label {label} at row {row} is out of range: labels must be < n_classes = {n_classes}"
    )]
    LabelOutOfRange {
        row: usize,
        label: usize,
        n_classes: usize,
    },
    /// A feature value is NaN or infinite (the first in row-major order is reported).
    #[error("x[{row}, {col}] is not finite (NaN or infinite)")]
    NonFinite { row: usize, col: usize },
    /// A regression target is NaN or infinite.
    #[error("regression target y[{row}] is not finite (NaN or infinite)")]
    NonFiniteTarget { row: usize },
}

// ---------------------------------------------------------------------------------------------
// Random numbers

/// splitmix64's increment and finaliser.
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Seed of tree `t`: output `t` of a splitmix64 stream started at `seed`.
fn tree_seed(seed: u64, t: usize) -> u64 {
    mix64(seed.wrapping_add(GAMMA.wrapping_mul(t as u64 + 1)))
}

/// xoshiro256++, written out here rather than taken from `rand`: `SmallRng` changes algorithm
/// between 32- and 64-bit targets and `StdRng` may change between rand releases, while a
/// fitted forest must stay a fixed function of its seed everywhere.
struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(GAMMA);
            mix64(x)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let r = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        r
    }

    /// Uniform in `0..n` (Lemire's multiply-and-reject, unbiased); `n > 0`.
    fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let mut m = self.next_u64() as u128 * n as u128;
        if (m as u64) < n {
            let floor = n.wrapping_neg() % n;
            while (m as u64) < floor {
                m = self.next_u64() as u128 * n as u128;
            }
        }
        (m >> 64) as usize
    }
}

// ---------------------------------------------------------------------------------------------
// Binning

/// Training features cut into quantile bins, computed once per fit.
struct Binned {
    n: usize,
    /// Column-major: feature `f` is `bins[f * n..(f + 1) * n]`.
    bins: Vec<u8>,
    /// `edges[f][k]` is the raw threshold between bins `k` and `k + 1` of feature `f`.
    edges: Vec<Vec<f64>>,
}

impl Binned {
    fn new(x: ArrayView2<f64>) -> Self {
        let n = x.nrows();
        let per_feature: Vec<(Vec<u8>, Vec<f64>)> = (0..x.ncols())
            .into_par_iter()
            .map(|j| {
                let col = x.column(j).to_vec();
                let edges = bin_edges(&col);
                // bin(v) = number of edges below v, so `bin(v) <= k` iff `v <= edges[k]`:
                // the same comparison prediction makes on raw values.
                let bins = col
                    .iter()
                    .map(|&v| edges.partition_point(|&e| e < v) as u8)
                    .collect();
                (bins, edges)
            })
            .collect();
        let mut bins = Vec::with_capacity(n * x.ncols());
        let mut edges = Vec::with_capacity(x.ncols());
        for (b, e) in per_feature {
            bins.extend_from_slice(&b);
            edges.push(e);
        }
        Binned { n, bins, edges }
    }

    fn col(&self, f: usize) -> &[u8] {
        &self.bins[f * self.n..(f + 1) * self.n]
    }
}

/// Midpoint of finite `a < b` that is guaranteed to be `>= a` and `< b`.
fn midpoint(a: f64, b: f64) -> f64 {
    // Halving first cannot overflow; rounding can land on `b`, which would misroute `b`.
    let m = a * 0.5 + b * 0.5;
    if m >= b || m < a {
        a
    } else {
        m
    }
}

/// At most `MAX_BINS - 1` increasing edges for one feature's (finite) values.
fn bin_edges(col: &[f64]) -> Vec<f64> {
    let mut s = col.to_vec();
    s.sort_unstable_by(f64::total_cmp);
    let mut distinct = s.clone();
    distinct.dedup();
    if distinct.len() <= MAX_BINS {
        return distinct.windows(2).map(|w| midpoint(w[0], w[1])).collect();
    }
    let n = s.len();
    let mut edges: Vec<f64> = Vec::with_capacity(MAX_BINS - 1);
    for k in 1..MAX_BINS {
        let lo = s[k * n / MAX_BINS - 1];
        let i = s.partition_point(|&v| v <= lo);
        if i == n {
            break;
        }
        let e = midpoint(lo, s[i]);
        if edges.last().is_none_or(|&l| e > l) {
            edges.push(e);
        }
    }
    edges
}

// ---------------------------------------------------------------------------------------------
// Split criteria

/// A distinct training row in a tree, with its bootstrap count.
#[derive(Clone, Copy)]
struct Sample {
    row: u32,
    w: u32,
}

/// What differs between classification and regression. Statistics are `f64` vectors of
/// `width()` entries whose last entry is the total weight.
trait Criterion: Sync {
    fn width(&self) -> usize;
    /// Adds one sample to a bin's statistics (`h.len() == width()`).
    fn add(&self, h: &mut [f64], row: usize, w: f64);
    /// Fills `tot` with the node's statistics; true if no split can make the node purer.
    fn totals(&self, s: &[Sample], tot: &mut [f64]) -> bool;
    /// Proxy for the impurity decrease of a split (larger is better; constant terms dropped).
    fn score(&self, left: &[f64], tot: &[f64]) -> f64;
    /// Appends the leaf's output values.
    fn leaf(&self, tot: &[f64], out: &mut Vec<f64>);
}

struct Gini<'a> {
    y: &'a [u32],
    k: usize,
}

impl Criterion for Gini<'_> {
    fn width(&self) -> usize {
        self.k + 1
    }

    #[inline(always)]
    fn add(&self, h: &mut [f64], row: usize, w: f64) {
        h[self.y[row] as usize] += w;
        h[self.k] += w;
    }

    fn totals(&self, s: &[Sample], tot: &mut [f64]) -> bool {
        tot.fill(0.0);
        for smp in s {
            self.add(tot, smp.row as usize, smp.w as f64);
        }
        tot[..self.k].iter().filter(|&&c| c > 0.0).count() <= 1
    }

    #[inline(always)]
    fn score(&self, left: &[f64], tot: &[f64]) -> f64 {
        // Gini decrease is proportional to sum_c L_c^2 / W_L + sum_c R_c^2 / W_R + const.
        let k = self.k;
        let (wl, wr) = (left[k], tot[k] - left[k]);
        let (mut sl, mut sr) = (0.0, 0.0);
        for c in 0..k {
            let (l, r) = (left[c], tot[c] - left[c]);
            sl += l * l;
            sr += r * r;
        }
        sl / wl + sr / wr
    }

    fn leaf(&self, tot: &[f64], out: &mut Vec<f64>) {
        let w = tot[self.k];
        out.extend(tot[..self.k].iter().map(|&c| c / w));
    }
}

struct SquaredError<'a> {
    y: &'a [f64],
}

impl Criterion for SquaredError<'_> {
    fn width(&self) -> usize {
        2
    }

    #[inline(always)]
    fn add(&self, h: &mut [f64], row: usize, w: f64) {
        h[0] += w * self.y[row];
        h[1] += w;
    }

    fn totals(&self, s: &[Sample], tot: &mut [f64]) -> bool {
        tot.fill(0.0);
        let first = self.y[s[0].row as usize];
        let mut constant = true;
        for smp in s {
            self.add(tot, smp.row as usize, smp.w as f64);
            constant &= self.y[smp.row as usize] == first;
        }
        constant
    }

    #[inline(always)]
    fn score(&self, left: &[f64], tot: &[f64]) -> f64 {
        // SSE decrease is proportional to S_L^2 / W_L + S_R^2 / W_R + const.
        let (sl, wl) = (left[0], left[1]);
        let (sr, wr) = (tot[0] - sl, tot[1] - wl);
        sl * sl / wl + sr * sr / wr
    }

    fn leaf(&self, tot: &[f64], out: &mut Vec<f64>) {
        out.push(tot[0] / tot[1]);
    }
}

// ---------------------------------------------------------------------------------------------
// Trees

#[derive(Clone, Copy)]
struct Node {
    /// Split value on the raw feature; unused in leaves.
    threshold: f64,
    /// Split feature, or `LEAF`.
    feature: u32,
    /// Split: index of the left child (the right one follows it). Leaf: offset in `values`.
    child: u32,
}

#[derive(Clone)]
struct Tree {
    nodes: Vec<Node>,
    /// `width` output values per leaf.
    values: Vec<f64>,
}

impl Tree {
    /// Offset of the leaf values that `x` (one row of raw features) lands in.
    #[inline]
    fn leaf(&self, x: &[f64]) -> usize {
        let mut i = 0;
        loop {
            let nd = &self.nodes[i];
            if nd.feature == LEAF {
                return nd.child as usize;
            }
            // Written so that NaN goes right.
            #[allow(clippy::neg_cmp_op_on_partial_ord)]
            let right = !(x[nd.feature as usize] <= nd.threshold);
            i = nd.child as usize + right as usize;
        }
    }

    fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut stack = vec![(0usize, 0usize)];
        while let Some((i, d)) = stack.pop() {
            let nd = &self.nodes[i];
            if nd.feature == LEAF {
                deepest = deepest.max(d);
            } else {
                stack.push((nd.child as usize, d + 1));
                stack.push((nd.child as usize + 1, d + 1));
            }
        }
        deepest
    }
}

/// Parameters resolved against the data.
struct Settings {
    mtry: usize,
    max_depth: usize,
    min_split: usize,
    min_leaf: usize,
    bootstrap: bool,
}

impl Settings {
    fn new(params: &ForestParams, p: usize) -> Result<Self, ForestError> {
        Ok(Settings {
            mtry: params.max_features.resolve(p)?,
            max_depth: params.max_depth.unwrap_or(usize::MAX),
            min_split: params.min_samples_split.max(2 * params.min_samples_leaf),
            min_leaf: params.min_samples_leaf,
            bootstrap: params.bootstrap,
        })
    }
}

/// Per-tree scratch space, reused by every node.
struct Scratch {
    hist: Vec<f64>,
    count: Vec<u32>,
    tot: Vec<f64>,
    left: Vec<f64>,
    perm: Vec<u32>,
}

fn grow<C: Criterion>(data: &Binned, crit: &C, cfg: &Settings, seed: u64) -> Tree {
    let mut rng = Rng::new(seed);
    let n = data.n;
    let p = data.edges.len();
    let w = crit.width();

    let mut samples: Vec<Sample> = if cfg.bootstrap {
        let mut counts = vec![0u32; n];
        for _ in 0..n {
            counts[rng.below(n)] += 1;
        }
        counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| Sample {
                row: i as u32,
                w: c,
            })
            .collect()
    } else {
        (0..n as u32).map(|row| Sample { row, w: 1 }).collect()
    };

    let mut sc = Scratch {
        hist: vec![0.0; MAX_BINS * w],
        count: vec![0; MAX_BINS],
        tot: vec![0.0; w],
        left: vec![0.0; w],
        perm: (0..p as u32).collect(),
    };
    let placeholder = Node {
        threshold: 0.0,
        feature: LEAF,
        child: 0,
    };
    let mut nodes = vec![placeholder];
    let mut values = Vec::new();
    // (node, start, end, depth); children are pushed right first so the left subtree is
    // built first (depth-first, like sklearn).
    let mut stack = vec![(0usize, 0usize, samples.len(), 0usize)];

    while let Some((id, start, end, depth)) = stack.pop() {
        let s = &samples[start..end];
        let pure = crit.totals(s, &mut sc.tot);
        let split = if pure || depth >= cfg.max_depth || s.len() < cfg.min_split {
            None
        } else {
            best_split(data, crit, cfg, &mut rng, s, &mut sc)
        };
        match split {
            None => {
                nodes[id] = Node {
                    threshold: 0.0,
                    feature: LEAF,
                    child: values.len() as u32,
                };
                crit.leaf(&sc.tot, &mut values);
            }
            Some((f, k)) => {
                let col = data.col(f);
                let s = &mut samples[start..end];
                let (mut i, mut j) = (0, s.len());
                while i < j {
                    if col[s[i].row as usize] as usize <= k {
                        i += 1;
                    } else {
                        j -= 1;
                        s.swap(i, j);
                    }
                }
                let mid = start + i;
                let child = nodes.len();
                nodes.push(placeholder);
                nodes.push(placeholder);
                nodes[id] = Node {
                    threshold: data.edges[f][k],
                    feature: f as u32,
                    child: child as u32,
                };
                stack.push((child + 1, mid, end, depth + 1));
                stack.push((child, start, mid, depth + 1));
            }
        }
    }
    nodes.shrink_to_fit();
    values.shrink_to_fit();
    Tree { nodes, values }
}

/// Best `(feature, bin)` split of a node (left = bins `<= bin`), or `None` if no feature
/// drawn has a split that respects `min_samples_leaf`.
fn best_split<C: Criterion>(
    data: &Binned,
    crit: &C,
    cfg: &Settings,
    rng: &mut Rng,
    s: &[Sample],
    sc: &mut Scratch,
) -> Option<(usize, usize)> {
    let p = sc.perm.len();
    let w = crit.width();
    let m = s.len();
    let mut best: Option<(f64, usize, usize)> = None;
    let mut occupied = [0u8; MAX_BINS];
    let mut drawn = 0;
    // sklearn's rule: stop after `mtry` draws, unless nothing usable has been found yet.
    while drawn < p && (drawn < cfg.mtry || best.is_none()) {
        let j = drawn + rng.below(p - drawn);
        sc.perm.swap(drawn, j);
        let f = sc.perm[drawn] as usize;
        drawn += 1;

        let col = data.col(f);
        let mut mask = [0u64; MAX_BINS / 64];
        for smp in s {
            let b = col[smp.row as usize] as usize;
            crit.add(
                &mut sc.hist[b * w..(b + 1) * w],
                smp.row as usize,
                smp.w as f64,
            );
            sc.count[b] += 1;
            mask[b >> 6] |= 1 << (b & 63);
        }
        let mut len = 0;
        for (word_idx, &word) in mask.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                occupied[len] = (word_idx * 64 + bits.trailing_zeros() as usize) as u8;
                len += 1;
                bits &= bits - 1;
            }
        }

        // Scan cut points between consecutive occupied bins.
        sc.left.fill(0.0);
        let mut n_left = 0;
        for i in 0..len.saturating_sub(1) {
            let b = occupied[i] as usize;
            for (l, h) in sc.left.iter_mut().zip(&sc.hist[b * w..(b + 1) * w]) {
                *l += h;
            }
            n_left += sc.count[b] as usize;
            if n_left < cfg.min_leaf {
                continue;
            }
            if m - n_left < cfg.min_leaf {
                break;
            }
            let score = crit.score(&sc.left, &sc.tot);
            if best.is_none_or(|(bs, _, _)| score > bs) {
                // Cut in the middle of the empty bins between the two occupied ones.
                let next = occupied[i + 1] as usize;
                best = Some((score, f, b + (next - b - 1) / 2));
            }
        }
        for &b in &occupied[..len] {
            let b = b as usize;
            sc.hist[b * w..(b + 1) * w].fill(0.0);
            sc.count[b] = 0;
        }
    }
    best.map(|(_, f, k)| (f, k))
}

// ---------------------------------------------------------------------------------------------
// Forests

/// Trees plus what prediction needs; shared by the classifier and the regressor.
#[derive(Clone)]
struct Forest {
    trees: Vec<Tree>,
    n_features: usize,
    /// Output values per leaf.
    width: usize,
}

impl Forest {
    fn fit<C: Criterion>(
        params: &ForestParams,
        x: ArrayView2<f64>,
        crit: &C,
        width: usize,
        seed: u64,
    ) -> Result<Self, ForestError> {
        let cfg = Settings::new(params, x.ncols())?;
        let data = Binned::new(x);
        let trees = (0..params.n_trees)
            .into_par_iter()
            .map(|t| grow(&data, crit, &cfg, tree_seed(seed, t)))
            .collect();
        Ok(Forest {
            trees,
            n_features: x.ncols(),
            width,
        })
    }

    /// Row-major `x.nrows() x width` mean of the trees' leaf values.
    fn predict(&self, x: ArrayView2<f64>) -> Vec<f64> {
        assert_eq!(
            x.ncols(),
            self.n_features,
            "forest was fit on {} features but x has {} columns",
            self.n_features,
            x.ncols()
        );
        let (p, k) = (self.n_features, self.width);
        let n_trees = self.trees.len() as f64;
        let mut out = vec![0.0; x.nrows() * k];
        out.par_chunks_mut(PREDICT_CHUNK * k)
            .enumerate()
            .for_each(|(chunk, o)| {
                let r0 = chunk * PREDICT_CHUNK;
                let rows = o.len() / k;
                let mut buf = Vec::with_capacity(rows * p);
                for r in r0..r0 + rows {
                    buf.extend(x.row(r).iter());
                }
                // Trees in index order for every row: the sum never depends on chunking.
                for tree in &self.trees {
                    for (xr, or) in buf.chunks_exact(p).zip(o.chunks_exact_mut(k)) {
                        let at = tree.leaf(xr);
                        for (a, v) in or.iter_mut().zip(&tree.values[at..at + k]) {
                            *a += v;
                        }
                    }
                }
                for v in o.iter_mut() {
                    *v /= n_trees;
                }
            });
        out
    }

    fn n_nodes(&self) -> usize {
        self.trees.iter().map(|t| t.nodes.len()).sum()
    }
}

impl fmt::Debug for Forest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Forest")
            .field("n_trees", &self.trees.len())
            .field("n_features", &self.n_features)
            .field("n_nodes", &self.n_nodes())
            .finish()
    }
}

fn check_x(x: ArrayView2<f64>, n_y: usize) -> Result<(), ForestError> {
    if x.nrows() != n_y {
        return Err(ForestError::ShapeMismatch {
            rows_x: x.nrows(),
            rows_y: n_y,
        });
    }
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(ForestError::EmptyData);
    }
    if x.nrows() >= u32::MAX as usize {
        return Err(ForestError::InvalidParams(format!(
            "at most {} training rows are supported, got {}",
            u32::MAX - 1,
            x.nrows()
        )));
    }
    for (row, r) in x.outer_iter().enumerate() {
        if let Some(col) = r.iter().position(|v| !v.is_finite()) {
            return Err(ForestError::NonFinite { row, col });
        }
    }
    Ok(())
}

/// Random forest classifier with gini splits and sklearn-style class probabilities.
#[derive(Clone, Debug)]
pub struct RandomForestClassifier {
    forest: Forest,
    n_classes: usize,
}

impl RandomForestClassifier {
    /// Fits `params.n_trees` trees on `x` (`n x p`, finite) and labels `y` in
    /// `0..n_classes`. The same inputs and `seed` give a bit-identical model.
    pub fn fit(
        params: &ForestParams,
        x: ArrayView2<f64>,
        y: &[usize],
        n_classes: usize,
        seed: u64,
    ) -> Result<Self, ForestError> {
        params.check()?;
        if n_classes < 1 {
            return Err(ForestError::InvalidParams(
                "n_classes must be >= 1, got 0".into(),
            ));
        }
        check_x(x, y.len())?;
        if let Some((row, &label)) = y.iter().enumerate().find(|(_, &l)| l >= n_classes) {
            return Err(ForestError::LabelOutOfRange {
                row,
                label,
                n_classes,
            });
        }
        if n_classes > u32::MAX as usize {
            return Err(ForestError::InvalidParams(format!(
                "n_classes must be <= {}, got {n_classes}",
                u32::MAX
            )));
        }
        let y32: Vec<u32> = y.iter().map(|&l| l as u32).collect();
        let crit = Gini {
            y: &y32,
            k: n_classes,
        };
        let forest = Forest::fit(params, x, &crit, n_classes, seed)?;
        Ok(RandomForestClassifier { forest, n_classes })
    }

    /// Class probabilities, `x.nrows() x n_classes`: the mean over trees of the class
    /// frequencies in the leaf each row reaches. Panics if `x` has the wrong column count.
    pub fn predict_proba(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let out = self.forest.predict(x);
        Array2::from_shape_vec((x.nrows(), self.n_classes), out).expect("shape is n x k")
    }

    /// Most probable class per row (the lowest index wins ties).
    pub fn predict(&self, x: ArrayView2<f64>) -> Vec<usize> {
        let proba = self.predict_proba(x);
        proba
            .outer_iter()
            .map(|r| {
                let mut best = 0;
                for (c, &v) in r.iter().enumerate() {
                    if v > r[best] {
                        best = c;
                    }
                }
                best
            })
            .collect()
    }

    /// Number of classes (columns of `predict_proba`).
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Number of feature columns the forest was fit on.
    pub fn n_features(&self) -> usize {
        self.forest.n_features
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.forest.trees.len()
    }

    /// Depth of each tree (a stump has depth 1).
    pub fn tree_depths(&self) -> Vec<usize> {
        self.forest.trees.iter().map(Tree::depth).collect()
    }

    /// Total number of nodes over all trees.
    pub fn n_nodes(&self) -> usize {
        self.forest.n_nodes()
    }
}

/// Random forest regressor with squared-error splits; leaves predict the mean target.
#[derive(Clone, Debug)]
pub struct RandomForestRegressor {
    forest: Forest,
}

impl RandomForestRegressor {
    /// Fits `params.n_trees` trees on `x` (`n x p`, finite) and finite targets `y`. See
    /// [`ForestParams::regression`] for sklearn's regressor defaults.
    pub fn fit(
        params: &ForestParams,
        x: ArrayView2<f64>,
        y: &[f64],
        seed: u64,
    ) -> Result<Self, ForestError> {
        params.check()?;
        check_x(x, y.len())?;
        if let Some(row) = y.iter().position(|v| !v.is_finite()) {
            return Err(ForestError::NonFiniteTarget { row });
        }
        let crit = SquaredError { y };
        let forest = Forest::fit(params, x, &crit, 1, seed)?;
        Ok(RandomForestRegressor { forest })
    }

    /// Mean number of leaves per tree (rounded).
    pub fn mean_leaves(&self) -> usize {
        let leaves: usize = self.forest.trees.iter().map(|t| t.nodes.iter().filter(|nd| nd.feature == LEAF).count()).sum();
        (leaves as f64 / self.forest.trees.len().max(1) as f64).round() as usize
    }

    /// Mean over trees of the leaf means. Panics if `x` has the wrong column count.
    pub fn predict(&self, x: ArrayView2<f64>) -> Array1<f64> {
        Array1::from_vec(self.forest.predict(x))
    }

    /// Number of feature columns the forest was fit on.
    pub fn n_features(&self) -> usize {
        self.forest.n_features
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.forest.trees.len()
    }

    /// Depth of each tree (a stump has depth 1).
    pub fn tree_depths(&self) -> Vec<usize> {
        self.forest.trees.iter().map(Tree::depth).collect()
    }

    /// Total number of nodes over all trees.
    pub fn n_nodes(&self) -> usize {
        self.forest.n_nodes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    /// Deterministic pseudo-random data: `classes` Gaussian-ish blobs, `sep` apart.
    fn blobs(n: usize, p: usize, classes: usize, sep: f64, seed: u64) -> (Array2<f64>, Vec<usize>) {
        let mut rng = Rng::new(seed);
        let mut unif = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let mut x = Array2::zeros((n, p));
        let mut y = Vec::with_capacity(n);
        for i in 0..n {
            let c = i % classes;
            for j in 0..p {
                // Sum of uniforms: a cheap bell curve with unit-ish spread.
                let noise: f64 = (0..4).map(|_| unif() - 0.5).sum::<f64>() * 1.7;
                let centre = if j % classes == c { sep } else { 0.0 };
                x[[i, j]] = centre + noise;
            }
            y.push(c);
        }
        (x, y)
    }

    fn small_params(n_trees: usize) -> ForestParams {
        ForestParams {
            n_trees,
            ..ForestParams::default()
        }
    }

    fn bits(a: &Array2<f64>) -> Vec<u64> {
        a.iter().map(|v| v.to_bits()).collect()
    }

    fn accuracy(pred: &[usize], y: &[usize]) -> f64 {
        pred.iter().zip(y).filter(|(p, y)| p == y).count() as f64 / y.len() as f64
    }

    #[test]
    fn probabilities_are_a_distribution() {
        let (x, y) = blobs(300, 5, 3, 1.0, 1);
        let m = RandomForestClassifier::fit(&small_params(20), x.view(), &y, 3, 7).unwrap();
        let (xt, _) = blobs(200, 5, 3, 1.0, 2);
        let proba = m.predict_proba(xt.view());
        assert_eq!(proba.dim(), (200, 3));
        for row in proba.outer_iter() {
            assert!(row.iter().all(|&v| (0.0..=1.0).contains(&v)), "{row}");
            assert!((row.sum() - 1.0).abs() < 1e-12, "{row}");
        }
        assert_eq!(m.n_classes(), 3);
        assert_eq!(m.n_trees(), 20);
    }

    #[test]
    fn unseen_class_gets_zero_probability() {
        let (x, y) = blobs(100, 3, 2, 2.0, 3);
        let m = RandomForestClassifier::fit(&small_params(10), x.view(), &y, 4, 0).unwrap();
        let proba = m.predict_proba(x.view());
        assert_eq!(proba.ncols(), 4);
        assert!(proba
            .column(2)
            .iter()
            .chain(proba.column(3).iter())
            .all(|&v| v == 0.0));
    }

    #[test]
    fn same_seed_is_bit_identical_across_fits_and_thread_counts() {
        let (x, y) = blobs(400, 6, 3, 0.8, 4);
        let (xt, _) = blobs(300, 6, 3, 0.8, 5);
        let params = small_params(16);
        let fit_predict = || {
            let m = RandomForestClassifier::fit(&params, x.view(), &y, 3, 42).unwrap();
            bits(&m.predict_proba(xt.view()))
        };
        let a = fit_predict();
        assert_eq!(a, fit_predict());
        let pool = |t| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
        };
        assert_eq!(a, pool(1).install(fit_predict));
        assert_eq!(a, pool(2).install(fit_predict));
        assert_eq!(a, pool(3).install(fit_predict));

        let yr: Vec<f64> = x.column(0).iter().map(|v| v * v).collect();
        let reg = || {
            let m =
                RandomForestRegressor::fit(&ForestParams::regression(), x.view(), &yr, 9).unwrap();
            m.predict(xt.view())
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(pool(1).install(reg), pool(2).install(reg));
    }

    #[test]
    fn different_seeds_differ() {
        let (x, y) = blobs(300, 6, 3, 0.8, 6);
        let params = small_params(10);
        let a = RandomForestClassifier::fit(&params, x.view(), &y, 3, 1).unwrap();
        let b = RandomForestClassifier::fit(&params, x.view(), &y, 3, 2).unwrap();
        assert_ne!(
            bits(&a.predict_proba(x.view())),
            bits(&b.predict_proba(x.view()))
        );
    }

    #[test]
    fn tree_seeds_are_distinct() {
        let mut seen: Vec<u64> = (0..1000).map(|t| tree_seed(0, t)).collect();
        seen.extend((0..1000).map(|t| tree_seed(1, t)));
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 2000);
    }

    #[test]
    fn full_depth_single_tree_memorises_training_set() {
        // Labels unrelated to x: only memorisation gets them all right.
        let (x, _) = blobs(200, 4, 2, 0.0, 8);
        let y: Vec<usize> = (0..200).map(|i| (i * 7 + i / 3) % 3).collect();
        for max_features in [MaxFeatures::All, MaxFeatures::Sqrt] {
            let params = ForestParams {
                n_trees: 1,
                bootstrap: false,
                max_features,
                ..ForestParams::default()
            };
            let m = RandomForestClassifier::fit(&params, x.view(), &y, 3, 0).unwrap();
            assert_eq!(accuracy(&m.predict(x.view()), &y), 1.0);
            // Pure leaves: every probability is exactly 0 or 1.
            assert!(m
                .predict_proba(x.view())
                .iter()
                .all(|&v| v == 0.0 || v == 1.0));
        }
    }

    #[test]
    fn max_depth_one_gives_stumps() {
        let (x, y) = blobs(300, 4, 3, 1.0, 9);
        let params = ForestParams {
            n_trees: 5,
            max_depth: Some(1),
            ..ForestParams::default()
        };
        let m = RandomForestClassifier::fit(&params, x.view(), &y, 3, 0).unwrap();
        assert_eq!(m.tree_depths(), vec![1; 5]);
        assert_eq!(m.n_nodes(), 5 * 3);
        // A single stump predicts at most two distinct distributions.
        let one = ForestParams {
            n_trees: 1,
            ..params
        };
        let m = RandomForestClassifier::fit(&one, x.view(), &y, 3, 0).unwrap();
        let mut rows: Vec<Vec<u64>> = m
            .predict_proba(x.view())
            .outer_iter()
            .map(|r| r.iter().map(|v| v.to_bits()).collect())
            .collect();
        rows.sort();
        rows.dedup();
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn min_samples_leaf_is_respected() {
        let (x, y) = blobs(200, 3, 2, 0.5, 10);
        let params = ForestParams {
            n_trees: 1,
            bootstrap: false,
            min_samples_leaf: 20,
            max_features: MaxFeatures::All,
            ..ForestParams::default()
        };
        let m = RandomForestClassifier::fit(&params, x.view(), &y, 2, 0).unwrap();
        let tree = &m.forest.trees[0];
        let mut per_leaf = vec![0usize; tree.values.len()];
        for r in x.outer_iter() {
            per_leaf[tree.leaf(r.as_slice().unwrap())] += 1;
        }
        let leaves: Vec<usize> = per_leaf.into_iter().filter(|&c| c > 0).collect();
        assert!(leaves.len() > 1);
        assert!(leaves.iter().all(|&c| c >= 20), "{leaves:?}");
    }

    #[test]
    fn regressor_fits_a_step_function() {
        let n = 400;
        let x = Array2::from_shape_fn((n, 2), |(i, j)| {
            if j == 0 {
                i as f64 / n as f64
            } else {
                ((i * 37) % 101) as f64
            }
        });
        let y: Vec<f64> = (0..n).map(|i| if i < n / 2 { 1.0 } else { 3.0 }).collect();
        let params = ForestParams {
            n_trees: 20,
            ..ForestParams::regression()
        };
        let m = RandomForestRegressor::fit(&params, x.view(), &y, 0).unwrap();
        let xt = array![[0.1, 5.0], [0.45, 50.0], [0.55, 7.0], [0.9, 99.0]];
        let pred = m.predict(xt.view());
        assert_eq!(pred.to_vec(), vec![1.0, 1.0, 3.0, 3.0]);
        assert_eq!(m.n_features(), 2);
    }

    #[test]
    fn thresholds_apply_to_raw_values() {
        let x = array![[0.0], [0.0], [1.0], [1.0]];
        let y = [0.0, 0.0, 10.0, 10.0];
        let params = ForestParams {
            n_trees: 1,
            bootstrap: false,
            ..ForestParams::regression()
        };
        let m = RandomForestRegressor::fit(&params, x.view(), &y, 0).unwrap();
        // The cut is the midpoint 0.5; `<=` goes left; NaN goes right.
        let xt = array![[-5.0], [0.5], [0.5000001], [7.0], [f64::NAN]];
        assert_eq!(
            m.predict(xt.view()).to_vec(),
            vec![0.0, 0.0, 10.0, 10.0, 10.0]
        );
    }

    #[test]
    fn many_distinct_values_are_binned() {
        let col: Vec<f64> = (0..10_000).map(|i| ((i * 7919) % 10_007) as f64).collect();
        let edges = bin_edges(&col);
        assert!(edges.len() < MAX_BINS && edges.len() > 200);
        assert!(edges.windows(2).all(|w| w[0] < w[1]));
        // Heavy ties still give strictly increasing edges.
        let tied: Vec<f64> = (0..5000)
            .map(|i| if i % 2 == 0 { 0.0 } else { i as f64 })
            .collect();
        let edges = bin_edges(&tied);
        assert!(edges.windows(2).all(|w| w[0] < w[1]));
        assert!(edges[0] > 0.0);
        assert_eq!(bin_edges(&[3.0, 3.0, 3.0]), Vec::<f64>::new());
    }

    #[test]
    fn constant_features_are_skipped_and_constant_data_gives_a_leaf() {
        let mut x = Array2::zeros((60, 5));
        for i in 0..60 {
            x[[i, 3]] = i as f64;
        }
        let y: Vec<usize> = (0..60).map(|i| usize::from(i >= 30)).collect();
        let params = ForestParams {
            n_trees: 1,
            bootstrap: false,
            max_features: MaxFeatures::Count(1),
            ..ForestParams::default()
        };
        let m = RandomForestClassifier::fit(&params, x.view(), &y, 2, 0).unwrap();
        assert_eq!(accuracy(&m.predict(x.view()), &y), 1.0);

        let flat = Array2::from_elem((10, 3), 1.5);
        let y: Vec<usize> = (0..10).map(|i| i % 2).collect();
        let m = RandomForestClassifier::fit(&params, flat.view(), &y, 2, 0).unwrap();
        assert_eq!(m.n_nodes(), 1);
        assert_eq!(m.predict_proba(flat.view()).row(0).to_vec(), vec![0.5, 0.5]);
    }

    #[test]
    fn separable_problem_is_learned() {
        let (x, y) = blobs(1500, 8, 3, 2.5, 11);
        let (xt, yt) = blobs(1500, 8, 3, 2.5, 12);
        let m = RandomForestClassifier::fit(&small_params(50), x.view(), &y, 3, 0).unwrap();
        let acc = accuracy(&m.predict(xt.view()), &yt);
        assert!(acc > 0.95, "test accuracy {acc}");

        let yr: Vec<f64> = x.outer_iter().map(|r| 2.0 * r[0] - r[1]).collect();
        let ytr: Vec<f64> = xt.outer_iter().map(|r| 2.0 * r[0] - r[1]).collect();
        let m = RandomForestRegressor::fit(&ForestParams::regression(), x.view(), &yr, 0).unwrap();
        let pred = m.predict(xt.view());
        let mean = ytr.iter().sum::<f64>() / ytr.len() as f64;
        let sse: f64 = pred.iter().zip(&ytr).map(|(p, t)| (p - t).powi(2)).sum();
        let sst: f64 = ytr.iter().map(|t| (t - mean).powi(2)).sum();
        assert!(1.0 - sse / sst > 0.9, "R^2 {}", 1.0 - sse / sst);
    }

    #[test]
    fn max_features_follow_sklearn() {
        assert_eq!(MaxFeatures::Sqrt.resolve(20).unwrap(), 4);
        assert_eq!(MaxFeatures::Sqrt.resolve(16).unwrap(), 4);
        assert_eq!(MaxFeatures::Sqrt.resolve(1).unwrap(), 1);
        assert_eq!(MaxFeatures::Log2.resolve(20).unwrap(), 4);
        assert_eq!(MaxFeatures::Log2.resolve(1).unwrap(), 1);
        assert_eq!(MaxFeatures::Fraction(0.33).resolve(20).unwrap(), 6);
        assert_eq!(MaxFeatures::Fraction(0.01).resolve(20).unwrap(), 1);
        assert_eq!(MaxFeatures::All.resolve(20).unwrap(), 20);
        assert_eq!(MaxFeatures::Count(3).resolve(20).unwrap(), 3);
        assert!(MaxFeatures::Count(21).resolve(20).is_err());
    }

    #[test]
    fn invalid_params_are_rejected_with_ranges() {
        let msg = |p: ForestParams| match p.check() {
            Err(ForestError::InvalidParams(m)) => m,
            other => panic!("expected InvalidParams, got {other:?}"),
        };
        let d = ForestParams::default;
        assert_eq!(d().check().unwrap(), ());
        assert_eq!(
            msg(ForestParams { n_trees: 0, ..d() }),
            "n_trees must be >= 1, got 0"
        );
        assert!(msg(ForestParams {
            max_depth: Some(0),
            ..d()
        })
        .contains(">= 1"));
        assert!(msg(ForestParams {
            min_samples_split: 1,
            ..d()
        })
        .contains(">= 2, got 1"));
        assert!(msg(ForestParams {
            min_samples_leaf: 0,
            ..d()
        })
        .contains(">= 1, got 0"));
        for f in [0.0, -0.5, 1.5, f64::NAN] {
            let p = ForestParams {
                max_features: MaxFeatures::Fraction(f),
                ..d()
            };
            assert!(msg(p).contains("(0, 1]"));
        }
        assert!(msg(ForestParams {
            max_features: MaxFeatures::Count(0),
            ..d()
        })
        .contains(">= 1"));

        let (x, y) = blobs(20, 3, 2, 1.0, 0);
        let bad = ForestParams { n_trees: 0, ..d() };
        assert!(matches!(
            RandomForestClassifier::fit(&bad, x.view(), &y, 2, 0),
            Err(ForestError::InvalidParams(_))
        ));
        let too_many = ForestParams {
            max_features: MaxFeatures::Count(4),
            ..d()
        };
        assert!(matches!(
            RandomForestClassifier::fit(&too_many, x.view(), &y, 2, 0),
            Err(ForestError::InvalidParams(_))
        ));
        assert!(matches!(
            RandomForestClassifier::fit(&d(), x.view(), &y, 0, 0),
            Err(ForestError::InvalidParams(_))
        ));
    }

    #[test]
    fn bad_data_is_rejected() {
        let p = small_params(3);
        let (mut x, y) = blobs(20, 3, 2, 1.0, 0);
        let err = RandomForestClassifier::fit(&p, x.view(), &y[..19], 2, 0).unwrap_err();
        assert!(matches!(
            err,
            ForestError::ShapeMismatch {
                rows_x: 20,
                rows_y: 19
            }
        ));

        let mut labels = y.clone();
        labels[5] = 2;
        let err = RandomForestClassifier::fit(&p, x.view(), &labels, 2, 0).unwrap_err();
        assert!(matches!(
            err,
            ForestError::LabelOutOfRange {
                row: 5,
                label: 2,
                n_classes: 2
            }
        ));
        assert!(err.to_string().contains("< n_classes = 2"));

        let empty = Array2::<f64>::zeros((0, 3));
        let err = RandomForestClassifier::fit(&p, empty.view(), &[], 2, 0).unwrap_err();
        assert!(matches!(err, ForestError::EmptyData));
        let no_cols = Array2::<f64>::zeros((4, 0));
        let err = RandomForestRegressor::fit(&p, no_cols.view(), &[0.0; 4], 0).unwrap_err();
        assert!(matches!(err, ForestError::EmptyData));

        x[[7, 2]] = f64::NAN;
        x[[9, 0]] = f64::INFINITY;
        let err = RandomForestClassifier::fit(&p, x.view(), &y, 2, 0).unwrap_err();
        assert!(matches!(err, ForestError::NonFinite { row: 7, col: 2 }));
        let yr = vec![0.0; 20];
        let err = RandomForestRegressor::fit(&p, x.view(), &yr, 0).unwrap_err();
        assert!(matches!(err, ForestError::NonFinite { row: 7, col: 2 }));

        let (x, _) = blobs(20, 3, 2, 1.0, 0);
        let mut yr = vec![1.0; 20];
        yr[3] = f64::NAN;
        let err = RandomForestRegressor::fit(&p, x.view(), &yr, 0).unwrap_err();
        assert!(matches!(err, ForestError::NonFiniteTarget { row: 3 }));
        let err = RandomForestRegressor::fit(&p, x.view(), &yr[..10], 0).unwrap_err();
        assert!(matches!(
            err,
            ForestError::ShapeMismatch {
                rows_x: 20,
                rows_y: 10
            }
        ));
    }

    #[test]
    #[should_panic(expected = "fit on 3 features")]
    fn predict_checks_column_count() {
        let (x, y) = blobs(20, 3, 2, 1.0, 0);
        let m = RandomForestClassifier::fit(&small_params(2), x.view(), &y, 2, 0).unwrap();
        m.predict_proba(Array2::zeros((2, 4)).view());
    }

    #[test]
    fn non_contiguous_views_work() {
        let (x, y) = blobs(200, 4, 2, 1.5, 13);
        let xt = x.t().to_owned(); // p x n, standard layout
        let view = xt.t(); // n x p, column-major view
        let a = RandomForestClassifier::fit(&small_params(5), x.view(), &y, 2, 3).unwrap();
        let b = RandomForestClassifier::fit(&small_params(5), view, &y, 2, 3).unwrap();
        assert_eq!(
            bits(&a.predict_proba(x.view())),
            bits(&b.predict_proba(view))
        );
        assert!(format!("{a:?}").contains("n_trees: 5"));
    }
}
