//! Any bytes given to the study parser give a study or a located error, never a panic; the
//! error renders, and the `--quick` reading of the same text behaves the same way.
#![no_main]

use std::path::Path;

use kdlab::study::{parse, LoadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for options in [LoadOptions::default(), LoadOptions { seeds: Some(2), quick: true }] {
        if let Err(e) = parse(Path::new("fuzz.toml"), text, &options) {
            let _ = e.to_string();
        }
    }
});
