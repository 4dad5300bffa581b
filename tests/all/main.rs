//! End-to-end tests of kansoku, one module per area.

// Test helpers fail the test by panicking; that is their job.
#![allow(clippy::unwrap_used, reason = "test helpers panic to fail the test")]

mod run;
mod sandbox;
