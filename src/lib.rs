//! kdlab: a workbench that checks the theory of knowledge distillation with honest statistics.
//!
//! A study file (TOML, see [`study`]) declares data, a teacher, a student, distillation arms,
//! grid axes and predictions. [`runner`] computes every (cell, seed) unit, [`results`] stores
//! one row per (cell, seed, arm), and [`report`] renders the Markdown report with verdicts.
//! What a study may name is registered once: arms in [`method`], metrics in [`metric`], data
//! kinds in [`data`]; a program adds its own methods and metrics through
//! [`registry::Registry`].
//! See `ARCHITECTURE.md` for the map.

pub mod analyze;
pub mod augment;
pub mod cluster;
pub mod data;
pub mod datasets;
pub mod diagnostics;
pub mod distill;
pub mod execution;
pub mod fidelity;
pub mod fingerprint;
pub mod fsio;
pub mod loss_surface;
pub mod malloc;
pub mod method;
pub mod metric;
pub mod metrics;
pub mod models;
pub mod plot;
pub mod protocol;
pub mod provenance;
pub mod registry;
pub mod report;
pub mod resources;
pub mod results;
pub mod runner;
pub mod schedule;
pub mod seed;
pub mod stats;
pub mod study;
pub mod teacher_files;
pub mod theory;
pub mod threads;
pub mod verdicts;
