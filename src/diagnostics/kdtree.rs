//! Max-norm (Chebyshev) neighbour search for the k-NN estimators in [`super::mi`]: the
//! distance from every point to its k-th nearest other point, and strict radius counts.
//! 1-D marginals are sorted lines ([`SortedLine`]) and a 1+1-D joint space is a grid on their
//! ranks ([`PlaneGrid`]); everything else goes to the k-d tree.
//!
//! Own k-d tree rather than linfa-nn: the estimators need count-only range queries (linfa-nn
//! returns allocated point lists), no allocation per query, an O(1) node distance and
//! vectorised leaf scans (below). That is what keeps KSG usable in 20 joint dimensions, where
//! the max-norm ball is wide in every coordinate and a query visits about a thousand nodes.
//!
//! Distances are computed as `|a - b|` per coordinate and compared in exactly the same way in
//! the tree, the 1-D sorted line and the box tests (floating-point subtraction is monotone), so
//! "strictly closer than the k-th neighbour" never counts the k-th neighbour itself.

use ndarray::ArrayView2;
use rayon::prelude::*;

/// Points per leaf (the width of a leaf block): small enough that pruning works in 20
/// dimensions, wide enough that a block scan vectorises.
const LEAF: usize = 16;
/// Queries per rayon task; results are collected in order, so the split does not matter.
const PAR_CHUNK: usize = 256;

/// A tree node, 40 bytes. Nodes are in preorder, so an internal node's left child is the next
/// node. A leaf (`right == LEAF_MARK`) holds tree positions `start..start + len`, stored as
/// leaf block `block`. An internal node splits coordinate `dim`: the left child's values are
/// at most `left_max`, the right child's at least `right_min`.
#[derive(Clone, Copy)]
struct Node {
    start: u32,
    len: u32,
    right: u32,
    dim: u32,
    block: u32,
    left_max: f64,
    right_min: f64,
}

const LEAF_MARK: u32 = u32::MAX;

/// A k-d tree over the rows of an `n x dim` matrix, splitting the widest cell side at its
/// median.
///
/// Queries are the tree's own points, so a search starts inside the root cell; a child's cell
/// differs from its parent's along one coordinate only, so the max-norm distance to a cell
/// costs O(1), not O(dim) (the incremental distance of Arya and Mount, which in the max norm
/// needs no per-coordinate state). Leaves are stored transposed and padded to [`LEAF`] points
/// with +∞ (never within any radius), so a leaf is scanned one coordinate at a time across all
/// its points, stopping once every point is out of reach. Radius counts also check each
/// node's tight bounding box, which follows correlations between coordinates that the cells
/// do not see.
pub(crate) struct KdTree {
    dim: usize,
    /// Coordinates in tree order, row-major (the query points).
    points: Vec<f64>,
    /// Leaf blocks: block b, coordinate c at `[(b dim + c) LEAF, (b dim + c + 1) LEAF)`.
    blocks: Vec<f64>,
    /// Tree position -> original row.
    order: Vec<usize>,
    nodes: Vec<Node>,
    /// Tight box of every node: lower corner then upper corner.
    bounds: Vec<f64>,
    /// Instruction set for the query loops, detected once at construction.
    simd: Simd,
}

/// Which compilation of the query loops runs. The loops only subtract, take absolute values
/// and compare, all exact in floating point, so every variant returns identical results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Simd {
    Generic,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Simd {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                return Simd::Avx2;
            }
        }
        Simd::Generic
    }
}

/// Subtrees larger than this are built in parallel (their layout does not depend on it).
const PAR_BUILD: usize = 8192;

impl KdTree {
    /// Builds the tree. `x` must have at least one row and one column (checked by callers).
    pub(crate) fn new(x: ArrayView2<f64>) -> Self {
        let (n, dim) = x.dim();
        let flat: Vec<f64> = x.iter().copied().collect(); // row-major, whatever x's layout
        let mut order: Vec<usize> = (0..n).collect();
        let mut lo = vec![f64::INFINITY; dim];
        let mut hi = vec![f64::NEG_INFINITY; dim];
        for p in flat.chunks_exact(dim) {
            for c in 0..dim {
                lo[c] = fmin(lo[c], p[c]);
                hi[c] = fmax(hi[c], p[c]);
            }
        }
        let mut nodes = build(&flat, dim, &mut order, 0, lo, hi);
        let mut points = Vec::with_capacity(n * dim);
        for &row in &order {
            points.extend_from_slice(&flat[row * dim..(row + 1) * dim]);
        }
        // Leaf blocks in preorder, and tight boxes bottom-up (children follow their parent).
        let mut leaf_count = 0usize;
        for nd in nodes.iter_mut().filter(|nd| nd.right == LEAF_MARK) {
            nd.block = to_u32(leaf_count);
            leaf_count += 1;
        }
        let mut blocks = vec![f64::INFINITY; leaf_count * dim * LEAF];
        let mut bounds = vec![0.0; nodes.len() * 2 * dim];
        for id in (0..nodes.len()).rev() {
            let nd = nodes[id];
            let (mut lo, mut hi) = (vec![f64::INFINITY; dim], vec![f64::NEG_INFINITY; dim]);
            if nd.right == LEAF_MARK {
                let start = nd.start as usize;
                for (j, pos) in (start..start + nd.len as usize).enumerate() {
                    for c in 0..dim {
                        let v = points[pos * dim + c];
                        blocks[(nd.block as usize * dim + c) * LEAF + j] = v;
                        lo[c] = fmin(lo[c], v);
                        hi[c] = fmax(hi[c], v);
                    }
                }
            } else {
                for child in [id + 1, nd.right as usize] {
                    let b = &bounds[2 * child * dim..2 * (child + 1) * dim];
                    for c in 0..dim {
                        lo[c] = fmin(lo[c], b[c]);
                        hi[c] = fmax(hi[c], b[dim + c]);
                    }
                }
            }
            bounds[2 * id * dim..(2 * id + 1) * dim].copy_from_slice(&lo);
            bounds[(2 * id + 1) * dim..2 * (id + 1) * dim].copy_from_slice(&hi);
        }
        KdTree {
            dim,
            points,
            blocks,
            order,
            nodes,
            bounds,
            simd: Simd::detect(),
        }
    }

    #[inline]
    fn point(&self, pos: usize) -> &[f64] {
        &self.points[pos * self.dim..(pos + 1) * self.dim]
    }

    /// Max-norm distances from `q` to the points of leaf block `block` (lanes past the leaf's
    /// size hold +∞). Returns `false`, with `d` partly filled, as soon as every lane is known
    /// to be `>= bound`; otherwise `d` holds the exact distances.
    #[inline(always)]
    fn scan_block(&self, block: usize, q: &[f64], bound: f64, d: &mut [f64; LEAF]) -> bool {
        *d = [0.0; LEAF];
        let base = block * self.dim * LEAF;
        for (c, &qc) in q.iter().enumerate() {
            let col = &self.blocks[base + c * LEAF..base + (c + 1) * LEAF];
            for j in 0..LEAF {
                d[j] = fmax(d[j], (col[j] - qc).abs());
            }
            // One exit test per four coordinates: testing every coordinate costs more than it
            // saves.
            if c % 4 == 3 && lane_min(d) >= bound {
                return false;
            }
        }
        true
    }

    /// Max-norm distance from `q` to a node's tight box.
    #[inline(always)]
    fn box_dist(&self, node: usize, q: &[f64]) -> f64 {
        let b = &self.bounds[2 * node * self.dim..2 * (node + 1) * self.dim];
        let (lo, hi) = b.split_at(self.dim);
        let mut d = 0.0f64;
        for c in 0..self.dim {
            d = fmax(d, fmax(lo[c] - q[c], q[c] - hi[c]));
        }
        d
    }

    /// The children of an internal node, nearer first, each with the query's max-norm
    /// distance to its cell. `dist` is the distance to the node's own cell: a child's cell
    /// differs only along the split coordinate, and the ancestors' bounds on that coordinate
    /// are already inside `dist`, so `max(dist, one-sided gap)` is exact.
    #[inline(always)]
    fn children(&self, id: usize, nd: &Node, q: &[f64], dist: f64) -> [(usize, f64); 2] {
        let v = q[nd.dim as usize];
        let to_left = fmax(dist, v - nd.left_max);
        let to_right = fmax(dist, nd.right_min - v);
        let (left, right) = (id + 1, nd.right as usize);
        if to_left <= to_right {
            [(left, to_left), (right, to_right)]
        } else {
            [(right, to_right), (left, to_left)]
        }
    }

    /// For every original row, the max-norm distance to its `k`-th nearest other row
    /// (`1 <= k < n`, checked by callers). Indexed by original row.
    pub(crate) fn kth_distances(&self, k: usize) -> Vec<f64> {
        let n = self.order.len();
        let by_pos: Vec<f64> = (0..n)
            .into_par_iter()
            .with_min_len(PAR_CHUNK)
            .map_init(
                || (vec![f64::INFINITY; k], Vec::with_capacity(64)),
                |(best, stack), pos| {
                    best.fill(f64::INFINITY);
                    let q = self.point(pos);
                    match self.simd {
                        Simd::Generic => self.knn(q, pos, best, stack),
                        #[cfg(target_arch = "x86_64")]
                        // SAFETY: `Simd::Avx2` is only set after detecting AVX2 at run time.
                        Simd::Avx2 => unsafe { self.knn_avx2(q, pos, best, stack) },
                    }
                    best[k - 1]
                },
            )
            .collect();
        self.scatter(by_pos)
    }

    /// [`Self::knn`] compiled with AVX2 (four lanes per leaf-scan instruction instead of two).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn knn_avx2(&self, q: &[f64], exclude: usize, best: &mut [f64], stack: &mut Vec<(usize, f64)>) {
        self.knn(q, exclude, best, stack);
    }

    /// [`Self::count`] compiled with AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn count_avx2(&self, q: &[f64], r: f64, stack: &mut Vec<(usize, f64)>) -> usize {
        self.count(q, r, stack)
    }

    /// Depth-first, nearer child first; `best` ends with the k smallest distances, ascending.
    #[inline(always)]
    fn knn(&self, q: &[f64], exclude: usize, best: &mut [f64], stack: &mut Vec<(usize, f64)>) {
        let k = best.len();
        stack.clear();
        stack.push((0, 0.0));
        while let Some((id, dist)) = stack.pop() {
            // A cell at distance >= the current k-th best cannot improve it (strict).
            if dist >= best[k - 1] {
                continue;
            }
            let nd = &self.nodes[id];
            if nd.right == LEAF_MARK {
                let mut d = [0.0; LEAF];
                if !self.scan_block(nd.block as usize, q, best[k - 1], &mut d) {
                    continue;
                }
                let start = nd.start as usize;
                for (j, &dj) in d.iter().enumerate().take(nd.len as usize) {
                    if dj < best[k - 1] && start + j != exclude {
                        push_best(best, dj);
                    }
                }
                continue;
            }
            let [near, far] = self.children(id, nd, q, dist);
            if far.1 < best[k - 1] {
                stack.push(far);
            }
            stack.push(near);
        }
    }

    /// For every original row `j`, the number of *other* rows strictly within `radius[j]` of
    /// row `j` (max norm). Indexed by original row.
    pub(crate) fn count_within(&self, radius: &[f64]) -> Vec<usize> {
        let n = self.order.len();
        let by_pos: Vec<usize> = (0..n)
            .into_par_iter()
            .with_min_len(PAR_CHUNK)
            .map_init(
                || Vec::with_capacity(64),
                |stack, pos| {
                    let r = radius[self.order[pos]];
                    if r > 0.0 {
                        // The query itself is at distance 0 < r: subtract it.
                        let q = self.point(pos);
                        let all = match self.simd {
                            Simd::Generic => self.count(q, r, stack),
                            #[cfg(target_arch = "x86_64")]
                            // SAFETY: `Simd::Avx2` is only set after detecting AVX2 at run time.
                            Simd::Avx2 => unsafe { self.count_avx2(q, r, stack) },
                        };
                        all - 1
                    } else {
                        0
                    }
                },
            )
            .collect();
        self.scatter(by_pos)
    }

    /// Points strictly within `r` of `q`. Internal nodes are pruned by their cell first (O(1))
    /// and then by their tight box (O(dim)), which also sees correlations between coordinates.
    #[inline(always)]
    fn count(&self, q: &[f64], r: f64, stack: &mut Vec<(usize, f64)>) -> usize {
        let mut total = 0;
        stack.clear();
        stack.push((0, 0.0));
        while let Some((id, dist)) = stack.pop() {
            let nd = &self.nodes[id];
            if nd.right == LEAF_MARK {
                let mut d = [0.0; LEAF];
                if self.scan_block(nd.block as usize, q, r, &mut d) {
                    // Padding lanes are +∞, never below r.
                    total += d.iter().filter(|&&v| v < r).count();
                }
                continue;
            }
            for (child, child_dist) in self.children(id, nd, q, dist) {
                if child_dist < r && self.box_dist(child, q) < r {
                    stack.push((child, child_dist));
                }
            }
        }
        total
    }

    fn scatter<T: Copy + Default>(&self, by_pos: Vec<T>) -> Vec<T> {
        let mut out = vec![T::default(); by_pos.len()];
        for (pos, v) in by_pos.into_iter().enumerate() {
            out[self.order[pos]] = v;
        }
        out
    }
}

/// Builds the subtree over `order` (tree positions `base..base + order.len()`), whose cell is
/// `[lo, hi]`, returning its nodes in preorder with ids relative to the subtree root. Splits
/// the widest cell side at the median (ties by row, so the layout is a function of the data
/// alone); subtrees above [`PAR_BUILD`] points build their halves in parallel.
fn build(flat: &[f64], dim: usize, order: &mut [usize], base: usize, lo: Vec<f64>, hi: Vec<f64>) -> Vec<Node> {
    let len = order.len();
    if len <= PAR_BUILD {
        let mut nodes = Vec::with_capacity(2 * len / LEAF + 1);
        build_into(flat, dim, order, base, lo, hi, &mut nodes, &mut Vec::with_capacity(len));
        return nodes;
    }
    let mut keys = Vec::with_capacity(len);
    let mut node = split_node(flat, dim, order, base, &lo, &hi, &mut keys);
    let half = len / 2;
    let (left_hi, right_lo) = child_cells(&node, &lo, &hi);
    let (left_order, right_order) = order.split_at_mut(half);
    let (left, right) = rayon::join(
        || build(flat, dim, left_order, base, lo, left_hi),
        || build(flat, dim, right_order, base + half, right_lo, hi),
    );
    let left_len = left.len();
    node.right = to_u32(1 + left_len);
    let mut nodes = Vec::with_capacity(1 + left_len + right.len());
    nodes.push(node);
    for (offset, sub) in [(1, left), (1 + left_len, right)] {
        nodes.extend(sub.into_iter().map(|mut nd| {
            if nd.right != LEAF_MARK {
                nd.right += to_u32(offset);
            }
            nd
        }));
    }
    nodes
}

/// Sequential part of [`build`]: appends the subtree to `nodes` (ids relative to the start of
/// `nodes`), reusing `keys` as scratch.
#[allow(clippy::too_many_arguments)]
fn build_into(
    flat: &[f64],
    dim: usize,
    order: &mut [usize],
    base: usize,
    lo: Vec<f64>,
    hi: Vec<f64>,
    nodes: &mut Vec<Node>,
    keys: &mut Vec<(f64, usize)>,
) -> usize {
    let len = order.len();
    let id = nodes.len();
    if len <= LEAF {
        nodes.push(Node {
            start: to_u32(base),
            len: to_u32(len),
            right: LEAF_MARK,
            dim: 0,
            block: 0,
            left_max: 0.0,
            right_min: 0.0,
        });
        return id;
    }
    let node = split_node(flat, dim, order, base, &lo, &hi, keys);
    nodes.push(node);
    let half = len / 2;
    let (left_hi, right_lo) = child_cells(&node, &lo, &hi);
    let (left_order, right_order) = order.split_at_mut(half);
    // The left subtree starts right after this node (preorder).
    build_into(flat, dim, left_order, base, lo, left_hi, nodes, keys);
    let right = build_into(flat, dim, right_order, base + half, right_lo, hi, nodes, keys);
    nodes[id].right = to_u32(right);
    id
}

/// Chooses the split of an internal node and reorders `order` around the median.
fn split_node(
    flat: &[f64],
    dim: usize,
    order: &mut [usize],
    base: usize,
    lo: &[f64],
    hi: &[f64],
    keys: &mut Vec<(f64, usize)>,
) -> Node {
    let len = order.len();
    let split = (0..dim)
        .max_by(|&a, &b| (hi[a] - lo[a]).total_cmp(&(hi[b] - lo[b])).then(b.cmp(&a)))
        .unwrap_or(0);
    let half = len / 2;
    keys.clear();
    keys.extend(order.iter().map(|&row| (flat[row * dim + split], row)));
    keys.select_nth_unstable_by(half, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for (slot, &(_, row)) in order.iter_mut().zip(keys.iter()) {
        *slot = row;
    }
    Node {
        start: to_u32(base),
        len: to_u32(len),
        right: 0, // set once the left subtree is built
        dim: to_u32(split),
        block: 0,
        left_max: keys[..half].iter().fold(f64::NEG_INFINITY, |m, k| fmax(m, k.0)),
        right_min: keys[half].0,
    }
}

/// Upper corner of the left child's cell and lower corner of the right child's.
fn child_cells(node: &Node, lo: &[f64], hi: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (mut left_hi, mut right_lo) = (hi.to_vec(), lo.to_vec());
    left_hi[node.dim as usize] = node.left_max;
    right_lo[node.dim as usize] = node.right_min;
    (left_hi, right_lo)
}

/// Tree positions, sizes and ids fit in `u32`: callers reject more than `u32::MAX` rows.
fn to_u32(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// `max` for finite values (and +∞ padding) without `f64::max`'s NaN handling, so it compiles
/// to one instruction; inputs are checked finite before any search.
#[inline(always)]
fn fmax(a: f64, b: f64) -> f64 {
    if a > b {
        a
    } else {
        b
    }
}

/// Smallest lane, by a halving tree so that it vectorises.
#[inline(always)]
fn lane_min(d: &[f64; LEAF]) -> f64 {
    let mut m = *d;
    let mut width = LEAF / 2;
    while width >= 1 {
        for j in 0..width {
            m[j] = fmin(m[j], m[j + width]);
        }
        width /= 2;
    }
    m[0]
}

/// Inserts `d` (smaller than the last entry) into the ascending array `best`, dropping the
/// last entry; `best` is short (k is 3 by default), so a linear shift beats anything cleverer.
#[inline(always)]
fn push_best(best: &mut [f64], d: f64) {
    let mut i = best.len() - 1;
    while i > 0 && best[i - 1] > d {
        best[i] = best[i - 1];
        i -= 1;
    }
    best[i] = d;
}

/// `min` counterpart of [`fmax`].
#[inline(always)]
fn fmin(a: f64, b: f64) -> f64 {
    if a < b {
        a
    } else {
        b
    }
}

/// 1-D values in sorted order, for strict radius counts by galloping search from each point's
/// own rank. Queries run in sorted order and each gallop starts from the previous query's
/// window, rescaled by the ratio of the radii (counts grow about linearly with the radius
/// where the density is smooth), so it usually lands within a few places of the answer.
pub(crate) struct SortedLine {
    sorted: Vec<f64>,
    /// Sorted position -> original index.
    order: Vec<u32>,
    /// Original index -> sorted position.
    rank: Vec<u32>,
    simd: Simd,
}

impl SortedLine {
    /// `values.len()` must fit in `u32` (checked by callers).
    pub(crate) fn new(values: &[f64]) -> Self {
        let keys: Vec<u64> = values.iter().map(|&v| order_key(v)).collect();
        let order = radix_order(&keys);
        let sorted = order.iter().map(|&i| values[i as usize]).collect();
        let mut rank = vec![0; values.len()];
        for (pos, &i) in order.iter().enumerate() {
            rank[i as usize] = pos as u32;
        }
        Self {
            sorted,
            order,
            rank,
            simd: Simd::detect(),
        }
    }

    /// [`Self::window`] compiled with AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn window_avx2(&self, pos: usize, r: f64, guess: (usize, usize)) -> (usize, usize) {
        self.window(pos, r, guess)
    }

    /// `(below, above)`: how many values lie strictly within `r` of `v = sorted[pos]` before
    /// and after position `pos`; `guess` is where the searches start.
    #[inline(always)]
    fn window(&self, pos: usize, r: f64, guess: (usize, usize)) -> (usize, usize) {
        let s = &self.sorted;
        let v = s[pos];
        // `v - a` (below) and `a - v` (above) are the same rounded `|a - v|` the tree uses, and
        // monotone in `a`, so "within" holds on a contiguous run around `pos`.
        let below = prefix_len(pos, guess.0, |i| v - s[pos - i] < r, |a, b| {
            s[pos - b..=pos - a].iter().filter(|&&u| v - u < r).count()
        });
        let above = prefix_len(s.len() - 1 - pos, guess.1, |i| s[pos + i] - v < r, |a, b| {
            s[pos + a..=pos + b].iter().filter(|&&u| u - v < r).count()
        });
        (below, above)
    }

    /// For every original index `i`, the number of other values strictly within `radius[i]`
    /// of value `i`. Indexed by original index.
    pub(crate) fn count_within(&self, radius: &[f64]) -> Vec<usize> {
        // Gathered in one pass first: the loads overlap there, not inside the searches.
        let radius: Vec<f64> = self.order.iter().map(|&i| radius[i as usize]).collect();
        let by_pos: Vec<usize> = (0..self.sorted.len())
            .into_par_iter()
            .with_min_len(PAR_CHUNK)
            .map_init(
                || (0, 0, 0.0),
                |(below, above, last_r), pos| {
                    let r = radius[pos];
                    if r <= 0.0 {
                        return 0;
                    }
                    let scale = if *last_r > 0.0 { r / *last_r } else { 1.0 };
                    // Float-to-int casts saturate, so any scale gives a valid start.
                    let guess = ((*below as f64 * scale) as usize, (*above as f64 * scale) as usize);
                    (*below, *above) = match self.simd {
                        Simd::Generic => self.window(pos, r, guess),
                        #[cfg(target_arch = "x86_64")]
                        // SAFETY: `Simd::Avx2` is only set after detecting AVX2 at run time.
                        Simd::Avx2 => unsafe { self.window_avx2(pos, r, guess) },
                    };
                    *last_r = r;
                    *below + *above
                },
            )
            .collect();
        let mut out = vec![0; by_pos.len()];
        for (pos, c) in by_pos.into_iter().enumerate() {
            out[self.order[pos] as usize] = c;
        }
        out
    }
}

/// `u64` keys whose unsigned order is `f64::total_cmp`'s.
#[inline]
fn order_key(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// Indices `0..keys.len()` sorted by key, ties by index: a least-significant-digit radix sort
/// (stable, so ties keep index order), about five times faster than a comparison sort at the
/// sizes KSG sees. Digits that every key shares are skipped.
fn radix_order(keys: &[u64]) -> Vec<u32> {
    const BITS: usize = 11;
    const MASK: u64 = (1 << BITS) - 1;
    const PASSES: usize = 64usize.div_ceil(BITS);
    let n = keys.len();
    let mut hist = vec![[0u32; 1 << BITS]; PASSES];
    for &key in keys {
        for (p, h) in hist.iter_mut().enumerate() {
            h[((key >> (p * BITS)) & MASK) as usize] += 1;
        }
    }
    let mut cur: Vec<(u64, u32)> = keys.iter().copied().zip(0u32..).collect();
    let mut next = vec![(0, 0); n];
    for (p, h) in hist.iter_mut().enumerate() {
        if h.iter().any(|&c| c as usize == n) {
            continue;
        }
        let mut sum = 0;
        for c in h.iter_mut() {
            (*c, sum) = (sum, sum + *c);
        }
        for &(key, i) in &cur {
            let digit = ((key >> (p * BITS)) & MASK) as usize;
            next[h[digit] as usize] = (key, i);
            h[digit] += 1;
        }
        std::mem::swap(&mut cur, &mut next);
    }
    cur.into_iter().map(|(_, i)| i).collect()
}

/// Largest k that [`PlaneGrid`] serves.
pub(crate) const PLANE_MAX_K: usize = 31;

/// Mean number of points per cell of a [`PlaneGrid`]: few enough that a query scans little
/// beyond its k neighbours, enough that the cell bookkeeping stays small.
const PER_CELL: f64 = 1.0;

/// Max-norm k-th neighbour distances in the plane, for KSG's joint space when x and y are both
/// 1-D. Columns are equal-count strips of x ranks and rows equal-count strips of y ranks, so
/// the grid comes from the ranks the marginals' [`SortedLine`]s already hold (no comparison
/// sort, no tree), and cells are small where the data are dense and wide in the tails, whatever
/// the scales. Points are stored cell by cell, each column's cells in row order, so a column
/// strip is one contiguous run.
///
/// A query grows a block of cells from its own, one column or row at a time on the side
/// nearest to it, until every side is at least the current k-th distance away: the strip edges
/// are data values, so the gap to a side is a rounded `|a - b|` like every other distance and
/// bounds all points beyond it.
pub(crate) struct PlaneGrid<'a> {
    x: &'a [f64],
    y: &'a [f64],
    /// Ranks per strip (the last strip may hold fewer).
    side: usize,
    /// Strips per axis; cell `column * strips + row`.
    strips: usize,
    /// Cell `c` holds slots `start[c]..start[c + 1]`.
    start: Vec<u32>,
    px: Vec<f64>,
    py: Vec<f64>,
    /// Cell and original row of every slot.
    cell: Vec<u32>,
    row: Vec<u32>,
    simd: Simd,
}

impl<'a> PlaneGrid<'a> {
    /// The points `(x_i, y_{p(i)})`, with `p` the identity when `perm` is `None`.
    pub(crate) fn new(x: &'a SortedLine, y: &'a SortedLine, perm: Option<&[usize]>) -> Self {
        let n = x.sorted.len();
        let strips = ((n as f64 / PER_CELL).sqrt().ceil() as usize).max(1);
        let side = n.div_ceil(strips);
        let strips = n.div_ceil(side);
        let ranks = |i: usize| (x.rank[i] as usize, y.rank[perm.map_or(i, |p| p[i])] as usize);
        let cell_of = |(rx, ry): (usize, usize)| (rx / side) * strips + ry / side;
        let mut start = vec![0u32; strips * strips + 1];
        for i in 0..n {
            start[cell_of(ranks(i)) + 1] += 1;
        }
        for c in 1..start.len() {
            start[c] += start[c - 1];
        }
        let mut next = start.clone();
        let (mut px, mut py) = (vec![0.0; n], vec![0.0; n]);
        let (mut cell, mut row) = (vec![0u32; n], vec![0u32; n]);
        for i in 0..n {
            let (rx, ry) = ranks(i);
            let c = cell_of((rx, ry));
            let slot = next[c] as usize;
            next[c] += 1;
            (px[slot], py[slot]) = (x.sorted[rx], y.sorted[ry]);
            (cell[slot], row[slot]) = (c as u32, i as u32);
        }
        Self {
            x: &x.sorted,
            y: &y.sorted,
            side,
            strips,
            start,
            px,
            py,
            cell,
            row,
            simd: Simd::detect(),
        }
    }

    /// For every original row, the max-norm distance to its `k`-th nearest other row
    /// (`1 <= k < n` and `k <=` [`PLANE_MAX_K`], checked by callers). Indexed by original row.
    pub(crate) fn kth_distances(&self, k: usize) -> Vec<f64> {
        // The running smallest distances live in a fixed-size array, so in registers.
        let by_slot = match k {
            0..=3 => self.all_knn::<4>(k),
            4..=7 => self.all_knn::<8>(k),
            8..=15 => self.all_knn::<16>(k),
            _ => self.all_knn::<{ PLANE_MAX_K + 1 }>(k),
        };
        let mut out = vec![0.0; by_slot.len()];
        for (slot, d) in by_slot.into_iter().enumerate() {
            out[self.row[slot] as usize] = d;
        }
        out
    }

    /// The k-th distance of every slot, with `k < M`.
    fn all_knn<const M: usize>(&self, k: usize) -> Vec<f64> {
        assert!(k < M);
        (0..self.px.len())
            .into_par_iter()
            .with_min_len(PAR_CHUNK)
            .map(|slot| match self.simd {
                Simd::Generic => self.knn::<M>(slot, k),
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Simd::Avx2` is only set after detecting AVX2 at run time.
                Simd::Avx2 => unsafe { self.knn_avx2::<M>(slot, k) },
            })
            .collect()
    }

    /// [`Self::knn`] compiled with AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn knn_avx2<const M: usize>(&self, slot: usize, k: usize) -> f64 {
        self.knn::<M>(slot, k)
    }

    /// The k-th distance of `slot`. `best` holds the M smallest distances seen, ascending;
    /// the query finds itself at distance 0, and the (k + 1)-th smallest of {0} and the
    /// others' distances is the k-th smallest of the others', so the answer is `best[k]`.
    #[inline(always)]
    fn knn<const M: usize>(&self, slot: usize, k: usize) -> f64 {
        let mut best = [f64::INFINITY; M];
        let best = &mut best;
        let last = k;
        let q = (self.px[slot], self.py[slot]);
        let c = self.cell[slot] as usize;
        let (cx, cy) = (c / self.strips, c % self.strips);
        // Block of scanned cells, columns lo[0]..=hi[0] and rows lo[1]..=hi[1], and the gaps
        // from q to its left, right, lower and upper sides (+∞ at the grid's edge). It starts
        // as the 3 x 3 cells around q, which usually hold the answer: three contiguous runs.
        let top = self.strips - 1;
        let (mut lo, mut hi) = ([cx.saturating_sub(1), cy.saturating_sub(1)], [(cx + 1).min(top), (cy + 1).min(top)]);
        for col in lo[0]..=hi[0] {
            self.scan_column(col, lo[1], hi[1], q, best);
        }
        let mut gap = [
            self.gap_below(self.x, q.0, lo[0]),
            self.gap_above(self.x, q.0, hi[0]),
            self.gap_below(self.y, q.1, lo[1]),
            self.gap_above(self.y, q.1, hi[1]),
        ];
        loop {
            let (side, g) = gap
                .iter()
                .copied()
                .enumerate()
                .fold((0, f64::INFINITY), |m, (s, g)| if g < m.1 { (s, g) } else { m });
            // Every unscanned point is at least `g` away; equal distances leave the k-th as is.
            if g >= best[last] {
                return best[last];
            }
            // Sides 0, 1 are x's (a new column), 2, 3 are y's (a new row); even sides are below.
            let (axis, below) = (side / 2, side % 2 == 0);
            let strip = if below { lo[axis] - 1 } else { hi[axis] + 1 };
            if axis == 0 {
                self.scan_column(strip, lo[1], hi[1], q, best);
            } else {
                for col in lo[0]..=hi[0] {
                    self.scan_column(col, strip, strip, q, best);
                }
            }
            let (sorted, v) = if axis == 0 { (self.x, q.0) } else { (self.y, q.1) };
            if below {
                lo[axis] = strip;
                gap[side] = self.gap_below(sorted, v, strip);
            } else {
                hi[axis] = strip;
                gap[side] = self.gap_above(sorted, v, strip);
            }
        }
    }

    /// Scans the cells of column `col` in rows `row0..=row1`, one contiguous run of slots.
    #[inline(always)]
    fn scan_column<const M: usize>(&self, col: usize, row0: usize, row1: usize, q: (f64, f64), best: &mut [f64; M]) {
        let base = col * self.strips;
        let slots = self.start[base + row0] as usize..self.start[base + row1 + 1] as usize;
        let dist = |j: usize| fmax((self.px[j] - q.0).abs(), (self.py[j] - q.1).abs());
        // Branch-free merging, two points at a time: about half the points of the first cells
        // enter `best`, too many for a branch to be predicted, and pairs halve the dependency
        // chain through `best`. The (i + 1)-th smallest of `best` and {lo <= hi} is the least
        // of best[i], max(best[i - 1], lo) and max(best[i - 2], hi).
        let mut j = slots.start;
        while j < slots.end {
            let d0 = dist(j);
            let d1 = if j + 1 < slots.end { dist(j + 1) } else { f64::INFINITY };
            let (lo, hi) = (fmin(d0, d1), fmax(d0, d1));
            for i in (2..M).rev() {
                best[i] = fmin(best[i], fmin(fmax(best[i - 1], lo), fmax(best[i - 2], hi)));
            }
            if M > 1 {
                best[1] = fmin(best[1], fmin(fmax(best[0], lo), hi));
            }
            best[0] = fmin(best[0], lo);
            j += 2;
        }
    }

    /// Distance from `v` (in strip `strip`) to the values of the strips before it.
    #[inline]
    fn gap_below(&self, sorted: &[f64], v: f64, strip: usize) -> f64 {
        if strip == 0 {
            f64::INFINITY
        } else {
            v - sorted[strip * self.side - 1]
        }
    }

    /// Distance from `v` (in strip `strip`) to the values of the strips after it.
    #[inline]
    fn gap_above(&self, sorted: &[f64], v: f64, strip: usize) -> f64 {
        let next = (strip + 1) * self.side;
        if next >= sorted.len() {
            f64::INFINITY
        } else {
            sorted[next] - v
        }
    }
}

/// Places counted around the guess by [`prefix_len`] before it falls back to galloping.
const WINDOW: usize = 64;

/// [`gallop`]'s answer, found first by counting `within` over the [`WINDOW`] places around
/// `guess` in one branch-free pass (`count(a, b)`: how many `i` in `a..=b` satisfy it) and
/// checking that the answer lies inside; probing branches mispredict, a vectorised count
/// does not.
#[inline(always)]
fn prefix_len(
    max: usize,
    guess: usize,
    within: impl Fn(usize) -> bool,
    count: impl Fn(usize, usize) -> usize,
) -> usize {
    let a = guess.saturating_sub(WINDOW / 2).max(1);
    let b = (a + WINDOW - 1).min(max);
    if a <= b && (a == 1 || within(a - 1)) && (b == max || !within(b + 1)) {
        return a - 1 + count(a, b);
    }
    gallop(max, guess, within)
}

/// The largest `m <= max` such that `within(i)` holds for all `1 <= i <= m`, where `within` is
/// true on a prefix of `1..=max`. Exponential search outwards or inwards from `guess`, then
/// bisection: O(log |answer − guess|) probes.
#[inline]
fn gallop(max: usize, guess: usize, within: impl Fn(usize) -> bool) -> usize {
    let guess = guess.min(max);
    // Invariant: `within` holds at `lo` (or lo = 0) and fails at `hi` (or hi = max + 1).
    let (mut lo, mut hi);
    if guess == 0 || within(guess) {
        lo = guess;
        let mut step = 1;
        loop {
            let probe = lo + step;
            if probe > max {
                hi = max + 1;
                break;
            }
            if within(probe) {
                lo = probe;
                step *= 2;
            } else {
                hi = probe;
                break;
            }
        }
    } else {
        hi = guess;
        let mut step = 1;
        loop {
            if hi <= step {
                lo = 0;
                break;
            }
            let probe = hi - step;
            if within(probe) {
                lo = probe;
                break;
            }
            hi = probe;
            step *= 2;
        }
    }
    while lo + 1 < hi {
        let mid = lo + (hi - lo) / 2;
        if within(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn cheb(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
    }

    fn random(n: usize, d: usize, seed: u64) -> Array2<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        Array2::from_shape_fn((n, d), |_| rng.gen::<f64>() * 4.0 - 2.0)
    }

    #[test]
    fn kth_distance_and_counts_match_brute_force() {
        for (n, d, k) in [(50, 1, 1), (300, 2, 3), (400, 5, 4), (200, 20, 3), (9, 3, 8)] {
            let x = random(n, d, (n * d) as u64);
            let tree = KdTree::new(x.view());
            let kth = tree.kth_distances(k);
            let radius: Vec<f64> = (0..n).map(|i| 0.3 + 0.01 * i as f64).collect();
            let counts = tree.count_within(&radius);
            for i in 0..n {
                let mut dist: Vec<f64> = (0..n)
                    .filter(|&j| j != i)
                    .map(|j| cheb(x.row(i).as_slice().unwrap(), x.row(j).as_slice().unwrap()))
                    .collect();
                let within = dist.iter().filter(|&&v| v < radius[i]).count();
                dist.sort_by(f64::total_cmp);
                assert_eq!(kth[i], dist[k - 1], "n {n} d {d} point {i}");
                assert_eq!(counts[i], within, "n {n} d {d} point {i}");
            }
            if d == 1 {
                let values: Vec<f64> = x.column(0).to_vec();
                assert_eq!(SortedLine::new(&values).count_within(&radius), counts);
            }
        }
    }

    #[test]
    fn plane_grid_matches_brute_force() {
        // Continuous, heavily tied (integers 0..3) and permuted pairings; k up to PLANE_MAX_K.
        for (n, tied, k, permuted) in [(300, false, 3, false), (500, true, 5, true), (40, false, 31, true), (200, false, 1, false)] {
            let mut rng = StdRng::seed_from_u64(n as u64);
            let draw = |rng: &mut StdRng| if tied { rng.gen_range(0..4) as f64 } else { rng.gen::<f64>() * 4.0 - 2.0 };
            let x: Vec<f64> = (0..n).map(|_| draw(&mut rng)).collect();
            let y: Vec<f64> = (0..n).map(|_| draw(&mut rng)).collect();
            let perm: Vec<usize> = (0..n).map(|i| (i * 7 + 3) % n).collect();
            let p = permuted.then_some(perm.as_slice());
            let (lx, ly) = (SortedLine::new(&x), SortedLine::new(&y));
            let kth = PlaneGrid::new(&lx, &ly, p).kth_distances(k);
            let yof = |i: usize| y[p.map_or(i, |p| p[i])];
            for i in 0..n {
                let mut dist: Vec<f64> = (0..n)
                    .filter(|&j| j != i)
                    .map(|j| cheb(&[x[i], yof(i)], &[x[j], yof(j)]))
                    .collect();
                dist.sort_by(f64::total_cmp);
                assert_eq!(kth[i], dist[k - 1], "n {n} k {k} point {i}");
            }
        }
    }

    #[test]
    fn radix_order_sorts_like_total_cmp_with_ties_by_index() {
        let mut rng = StdRng::seed_from_u64(23);
        let mut v: Vec<f64> = (0..3000).map(|_| (rng.gen::<f64>() - 0.5) * 10f64.powi(rng.gen_range(-300..300))).collect();
        v.extend([0.0, -0.0, 1.5, 1.5, -2.0, f64::MIN_POSITIVE, -f64::MAX, f64::MAX]);
        let keys: Vec<u64> = v.iter().map(|&a| order_key(a)).collect();
        let mut expected: Vec<u32> = (0..v.len() as u32).collect();
        expected.sort_by(|&a, &b| v[a as usize].total_cmp(&v[b as usize]).then(a.cmp(&b)));
        assert_eq!(radix_order(&keys), expected);
    }

    #[test]
    fn every_instruction_set_gives_identical_answers() {
        let x = random(2000, 7, 22);
        let mut tree = KdTree::new(x.view());
        let detected = tree.simd;
        let kth = tree.kth_distances(3);
        let radius: Vec<f64> = kth.iter().map(|r| r * 2.0).collect();
        let counts = tree.count_within(&radius);
        tree.simd = Simd::Generic;
        assert_eq!(tree.kth_distances(3), kth, "{detected:?} vs generic");
        assert_eq!(tree.count_within(&radius), counts);
    }

    #[test]
    fn the_kth_neighbour_itself_is_never_counted() {
        // Radius = exact distance to the k-th neighbour: strict counts give k - 1 (no ties).
        let x = random(500, 3, 11);
        let tree = KdTree::new(x.view());
        let kth = tree.kth_distances(3);
        assert!(tree.count_within(&kth).iter().all(|&c| c == 2));
        let line_values: Vec<f64> = x.column(1).to_vec();
        let t1 = KdTree::new(x.slice(ndarray::s![.., 1..2]));
        let k1 = t1.kth_distances(5);
        assert!(SortedLine::new(&line_values).count_within(&k1).iter().all(|&c| c == 4));
    }

    #[test]
    fn gallop_finds_the_end_of_the_prefix_from_any_guess() {
        for max in [0usize, 1, 2, 7, 100] {
            for answer in 0..=max {
                for guess in [0, 1, answer, answer + 1, max, max + 5, answer / 2] {
                    assert_eq!(gallop(max, guess, |i| i <= answer), answer, "max {max} guess {guess}");
                }
            }
        }
    }

    #[test]
    fn coincident_points_do_not_break_the_build() {
        let x = Array2::from_elem((40, 2), 1.5);
        let tree = KdTree::new(x.view());
        assert!(tree.kth_distances(3).iter().all(|&d| d == 0.0));
        assert!(tree.count_within(&vec![0.0; 40]).iter().all(|&c| c == 0));
        assert!(tree.count_within(&vec![1.0; 40]).iter().all(|&c| c == 39));
    }
}
