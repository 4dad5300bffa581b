//! # kansoku-plugin
//!
//! Write kansoku detector plugins in Rust. A plugin is a WebAssembly
//! component built with `cargo build --target wasm32-wasip2`; the host
//! streams columnar batches of flows through it and turns its findings into
//! alerts.
//!
//! Three types carry most of the work:
//!
//! * [`Batch`] is a zero-copy view over the columns the host passed in;
//!   [`Batch::iter`] yields a [`Flow`] per row with typed accessors
//!   (`flow.src()`, `flow.dst_port()`, `flow.dns_query()`…).
//! * [`Finding`] is built with [`Finding::new`] and a few chained calls.
//! * [`Detector`] is the trait a plugin implements; [`export!`] wires it to
//!   the component's exports.
//!
//! ```no_run
//! use kansoku_plugin::{Batch, Description, Detector, Finding, Severity, TextField};
//!
//! #[derive(Default)]
//! struct TxtWatcher;
//!
//! impl Detector for TxtWatcher {
//!     fn describe() -> Description {
//!         Description::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
//!             .summary("Flags DNS TXT queries for long names")
//!             .wants(&[TextField::DnsQuery])
//!     }
//!
//!     fn process(&mut self, batch: &Batch) -> Vec<Finding> {
//!         batch
//!             .iter()
//!             .filter(|flow| flow.dns_qtype() == Some(16))
//!             .filter_map(|flow| {
//!                 let name = flow.dns_query()?;
//!                 (name.len() > 100).then(|| {
//!                     Finding::new(flow, "long-txt", "Long DNS TXT query")
//!                         .category("tunnel")
//!                         .severity(Severity::Low)
//!                         .evidence("length", name.len())
//!                 })
//!             })
//!             .collect()
//!     }
//! }
//!
//! kansoku_plugin::export!(TxtWatcher);
//! ```
//!
//! Plugins have no filesystem, network, environment or arguments. Rules,
//! lists and models arrive through [`Detector::configure`]; log lines go to
//! the host with [`info!`], [`warn!`] and friends (stdout and stderr are
//! captured into the host log too).
#![deny(missing_docs)]

// The generated bindings name the runtime by its public path, which must
// also resolve inside this crate.
extern crate self as kansoku_plugin;

mod batch;
mod finding;
pub mod log;
pub mod ranges;
pub mod testing;

#[allow(
    missing_docs,
    reason = "generated from wit/detector.wit, documented there"
)]
#[allow(unsafe_op_in_unsafe_fn, reason = "generated code")]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "detector",
        pub_export_macro: true,
        export_macro_name: "__export_bindings",
        default_bindings_module: "kansoku_plugin::bindings",
        runtime_path: "kansoku_plugin::__rt",
        additional_derives: [PartialEq, Clone],
    });
}

pub use batch::{Batch, ConnState, Direction, Flow, Kind, TextColumn};
pub use bindings::kansoku::detector::types::{
    Address, ConfigError, Description, Entity, Finding, LoadReport, Ruleset, Severity, SkippedRule,
    Subject, TextField, Timestamp,
};

#[doc(hidden)]
pub use wit_bindgen::rt as __rt;

/// The contract version this SDK implements (the version of the
/// `kansoku:detector` WIT package).
pub const CONTRACT_VERSION: &str = "0.1.0";

/// A detector. Implement it, then call [`export!`] once in the crate.
///
/// One instance handles one stream: calls never overlap, and the host keeps
/// the instance between batches, so `&mut self` state persists until the
/// host replaces the instance (hot swap, or recovery after a trap), at which
/// point [`Detector::snapshot`] and [`Detector::restore`] carry it over.
pub trait Detector: Default + 'static {
    /// Describes the plugin: name, version, the text fields it wants.
    fn describe() -> Description;

    /// Replaces the plugin's rules with `rulesets`. On error the previous
    /// configuration must stay in force. The default accepts no rulesets.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the ruleset (and line) that is wrong.
    fn configure(&mut self, rulesets: Vec<Ruleset>) -> Result<LoadReport, ConfigError> {
        match rulesets.first() {
            None => Ok(LoadReport::loaded(0)),
            Some(first) => Err(ConfigError::new(
                &first.name,
                "this plugin takes no rulesets",
            )),
        }
    }

    /// Examines a batch and returns findings, usually none.
    fn process(&mut self, batch: &Batch) -> Vec<Finding>;

    /// Advances windowed state to `now` (data time, microseconds since the
    /// Unix epoch) and returns findings for windows that closed.
    fn tick(&mut self, now: Timestamp) -> Vec<Finding> {
        let _ = now;
        Vec::new()
    }

    /// Serialises the state a replacement instance needs.
    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Takes over state from [`Detector::snapshot`] of an earlier instance.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when the state cannot be read; the instance then
    /// starts empty.
    fn restore(&mut self, state: &[u8]) -> Result<(), ConfigError> {
        let _ = state;
        Ok(())
    }
}

impl Description {
    /// A description with the given name and version, built against
    /// [`CONTRACT_VERSION`], stateless, wanting no text fields.
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            contract: CONTRACT_VERSION.to_owned(),
            summary: String::new(),
            text_fields: Vec::new(),
            stateful: false,
        }
    }

    /// Sets the one-sentence summary.
    #[must_use]
    pub fn summary(mut self, summary: &str) -> Self {
        self.summary = summary.to_owned();
        self
    }

    /// Asks for text fields. Sensitive ones arrive only if the operator
    /// granted them to this plugin.
    #[must_use]
    pub fn wants(mut self, fields: &[TextField]) -> Self {
        self.text_fields.extend_from_slice(fields);
        self
    }

    /// Declares that the plugin keeps state between batches.
    #[must_use]
    pub fn stateful(mut self) -> Self {
        self.stateful = true;
        self
    }
}

impl LoadReport {
    /// A report of `loaded` active rules, nothing skipped.
    pub fn loaded(loaded: u32) -> Self {
        Self {
            loaded,
            skipped: Vec::new(),
            notes: Vec::new(),
        }
    }
}

impl ConfigError {
    /// An error at `location` (`ruleset:line`).
    pub fn new(location: &str, message: impl Into<String>) -> Self {
        Self {
            location: location.to_owned(),
            message: message.into(),
        }
    }
}

impl From<std::net::IpAddr> for Address {
    fn from(ip: std::net::IpAddr) -> Self {
        let v6 = match ip {
            std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            std::net::IpAddr::V6(v6) => v6,
        };
        Self::from(v6.octets())
    }
}

impl From<[u8; 16]> for Address {
    fn from(octets: [u8; 16]) -> Self {
        let bits = u128::from_be_bytes(octets);
        Self {
            hi: (bits >> 64) as u64,
            lo: bits as u64,
        }
    }
}

impl From<Address> for std::net::IpAddr {
    fn from(a: Address) -> Self {
        let bits = (u128::from(a.hi) << 64) | u128::from(a.lo);
        std::net::Ipv6Addr::from(bits).to_canonical()
    }
}

/// Wires a [`Detector`] to the component's exports. Call it once per plugin
/// crate, with the detector type.
#[macro_export]
macro_rules! export {
    ($detector:ty) => {
        const _: () = {
            ::std::thread_local! {
                static STATE: ::std::cell::RefCell<::std::option::Option<$detector>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }

            fn with<R>(f: impl FnOnce(&mut $detector) -> R) -> R {
                STATE.with(|cell| {
                    let mut state = cell.borrow_mut();
                    f(state.get_or_insert_with(<$detector as ::std::default::Default>::default))
                })
            }

            struct Export;

            impl $crate::bindings::exports::kansoku::detector::plugin::Guest for Export {
                fn describe() -> $crate::Description {
                    <$detector as $crate::Detector>::describe()
                }
                fn configure(
                    rulesets: ::std::vec::Vec<$crate::Ruleset>,
                ) -> ::std::result::Result<$crate::LoadReport, $crate::ConfigError> {
                    with(|d| $crate::Detector::configure(d, rulesets))
                }
                fn process(
                    batch: $crate::bindings::kansoku::detector::types::FlowBatch,
                ) -> ::std::vec::Vec<$crate::Finding> {
                    let batch = $crate::Batch::new(batch);
                    with(|d| $crate::Detector::process(d, &batch))
                }
                fn tick(now: $crate::Timestamp) -> ::std::vec::Vec<$crate::Finding> {
                    with(|d| $crate::Detector::tick(d, now))
                }
                fn snapshot() -> ::std::vec::Vec<u8> {
                    with(|d| $crate::Detector::snapshot(d))
                }
                fn restore(
                    state: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<(), $crate::ConfigError> {
                    with(|d| $crate::Detector::restore(d, &state))
                }
            }

            // Only components carry the exports: natively (plugin unit tests,
            // clippy) the symbol names, which contain `:` and `@`, do not
            // survive the linker's version script.
            #[cfg(target_family = "wasm")]
    $crate::bindings::__export_bindings!(Export with_types_in $crate::bindings);
        };
    };
}
