//! Logging to the host. Lines appear in the engine's log under the plugin's
//! name. Use the [`crate::info!`] family of macros.

use crate::bindings::kansoku::detector::log as host;

pub use host::Level;

/// Sends one line to the host log.
pub fn write(level: Level, message: &str) {
    #[cfg(target_family = "wasm")]
    host::log(level, message);
    // Natively (plugin unit tests) there is no host: print instead.
    #[cfg(not(target_family = "wasm"))]
    eprintln!("[{level:?}] {message}");
}

/// Logs at error level.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Error, &::std::format!($($arg)*)) };
}

/// Logs at warn level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Warn, &::std::format!($($arg)*)) };
}

/// Logs at info level.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Info, &::std::format!($($arg)*)) };
}

/// Logs at debug level.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Debug, &::std::format!($($arg)*)) };
}
