//! The embedded defaults of `kansoku demo`: real sample logs from
//! `data/samples/` (sources and licences in `data/README.md`), compiled into
//! the binary so the demo needs no files.

use crate::ingest::InputPath;

include!(concat!(env!("OUT_DIR"), "/demo_samples.rs"));
