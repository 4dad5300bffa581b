//! # kansoku
//!
//! A detection engine for the security operation centre of a research
//! network. Flow records stream through sandboxed WebAssembly detectors;
//! findings become alerts.
//!
//! ```text
//! inputs ─→ ingest ─→ scope (R1) ─→ enrich ─→ batch ─→ plugins ─→ triage ─→ alerts
//! (Zeek,    (parse,    (drop flows    (country)  (columns)  (Wasm,      (severity,
//!  EVE,      drop       outside                              sandboxed)  EVE JSON)
//!  CSV)      payload)   registered prefixes)
//! ```
//!
//! | stage | module | in → out |
//! |---|---|---|
//! | ingest | [`ingest`] | bytes → [`flow::FlowRecord`] (payload fields dropped, bad lines counted) |
//! | scope | [`scope`] | record → institution + direction, or dropped (R1) |
//! | enrich | [`enrich`] | addresses → countries |
//! | batch | [`batch`] | records → columnar [`batch::FlowBatch`] |
//! | plugins | [`plugins`] | batch → validated detections, per plugin, sandboxed |
//! | triage | [`triage`] | detections → alerts (EVE `alert` JSON) |
//! | pipeline | [`pipeline`] | wires the stages on threads, reports a summary |
//!
//! The detector contract lives in `wit/detector.wit`; [`contract`] holds the
//! host's bindings of it.

pub mod batch;
pub mod config;
pub mod contract;
pub mod demo;
pub mod enrich;
pub mod flow;
pub mod ingest;
pub mod pipeline;
pub mod plugins;
pub mod scaffold;
pub mod scope;
pub mod storage;
pub mod summary;
pub mod triage;
