//! End-to-end tests of kansoku, one module per area.

mod sandbox;
mod run;
