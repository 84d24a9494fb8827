//! Longest first: units run in order of decreasing estimated work, each worker taking the next
//! unit when it finishes one (list scheduling), so the last units to start are the short ones
//! and no core idles while one long unit runs alone at the end. Results do not depend on the
//! order: every unit's result depends only on the study, its cell and its seed.

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

/// Runs `run` on every item in the current rayon pool, largest `work` first (ties keep the
/// items' order).
pub fn longest_first<T: Sync>(items: &[T], work: impl Fn(&T) -> f64, run: impl Fn(&T) + Sync) {
    let mut order: Vec<usize> = (0..items.len()).collect();
    let weights: Vec<f64> = items.iter().map(work).collect();
    order.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]));
    let next = AtomicUsize::new(0);
    let workers = rayon::current_num_threads().min(items.len());
    (0..workers).into_par_iter().for_each(|_| {
        while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            run(&items[i]);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn one_worker_runs_the_items_longest_first_and_ties_in_order() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let started = Mutex::new(Vec::new());
        let items = [("a", 1.0), ("b", 5.0), ("c", 3.0), ("d", 5.0)];
        pool.install(|| longest_first(&items, |i| i.1, |i| started.lock().unwrap().push(i.0)));
        assert_eq!(started.into_inner().unwrap(), ["b", "d", "c", "a"]);
    }

    #[test]
    fn every_item_runs_once_on_several_workers() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let done = Mutex::new(Vec::new());
        let items: Vec<usize> = (0..50).collect();
        pool.install(|| longest_first(&items, |&i| (i % 7) as f64, |&i| done.lock().unwrap().push(i)));
        let mut done = done.into_inner().unwrap();
        done.sort_unstable();
        assert_eq!(done, items);
    }
}
