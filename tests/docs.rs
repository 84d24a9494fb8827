//! The documentation's examples stay true: the README's example study parses, every study
//! shipped in `studies/` validates, and the README's metric table is the metric registry.

use std::path::Path;

use kdlab::study::{discover, load, parse, LoadOptions};

#[test]
fn readme_example_study_parses() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = &readme[readme.find("## Writing a study").expect("README has the section")..];
    let start = section.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    let study = parse(Path::new("README.md"), block, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(study.predictions.len(), 7);
    assert_eq!(study.cells.len(), 3);
}

#[test]
fn shipped_studies_validate_in_full_and_quick_form() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("studies");
    let studies = discover(&dir).unwrap();
    assert!(studies.len() >= 3);
    for path in studies {
        for quick in [false, true] {
            let s = load(&path, &LoadOptions { seeds: None, quick, ..LoadOptions::default() }).unwrap_or_else(|e| panic!("{e}"));
            assert!(!s.predictions.is_empty(), "{} states no predictions", path.display());
        }
    }
}

#[test]
fn the_readme_metric_table_is_the_registry() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let (begin, end) = ("<!-- metrics:begin -->\n", "<!-- metrics:end -->");
    let start = readme.find(begin).expect("README has the metrics block") + begin.len();
    let stop = readme[start..].find(end).expect("the metrics block ends") + start;
    assert_eq!(&readme[start..stop], kdlab::metric::markdown_table(kdlab::registry::Registry::builtin().metrics()), "regenerate the README's metric table with `kdlab metrics`");
}
