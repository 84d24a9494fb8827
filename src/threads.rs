//! One unit, one thread. Units are the parallel grain of a run (`--jobs` of them at once), so
//! the numerical libraries inside a unit must not start threads of their own: they would only
//! oversubscribe the cores (and OpenBLAS's spin while they wait).

use std::sync::Once;

extern "C" {
    // OpenBLAS's own setter (no crate exposes it); the library reads its thread count from the
    // environment when it loads, before any code of ours runs.
    fn openblas_set_num_threads(n: std::os::raw::c_int);
}

/// Keeps OpenBLAS and candle on the calling unit's thread. Called by the runner before any
/// unit starts, so library users (and tests) get the same rule as the command line.
pub fn one_per_unit() {
    // SAFETY: a plain setter of OpenBLAS's global thread count, safe to call at any time.
    unsafe { openblas_set_num_threads(1) };
    static CANDLE: Once = Once::new();
    // candle sizes its matmul parallelism from RAYON_NUM_THREADS at every call and has no
    // setter, so the variable is the only handle; std serialises it with its own reads.
    CANDLE.call_once(|| std::env::set_var("RAYON_NUM_THREADS", "1"));
}
