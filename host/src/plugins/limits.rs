//! Per-instance limits, and what a broken limit looks like afterwards.

use std::fmt;
use std::time::Duration;

use wasmtime::{ResourceLimiter, Trap};

/// Default memory cap of one plugin instance.
pub const DEFAULT_MEMORY_LIMIT: u64 = 64 << 20;

/// Default CPU deadline of one call into a plugin.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(1);

/// Default time for `configure`, `snapshot` and `restore`: loading a list of
/// a million indicators takes seconds where a batch takes milliseconds.
pub const DEFAULT_CONFIGURE_DEADLINE: Duration = Duration::from_secs(60);

/// Default most findings a plugin may return per flow in a batch.
pub const DEFAULT_FINDINGS_PER_ROW: u32 = 4;

/// Longest rule id, title or category accepted in a finding, in bytes.
pub const MAX_LABEL: usize = 512;

/// Most evidence pairs accepted in a finding.
pub const MAX_EVIDENCE: usize = 32;

/// Longest evidence key or value, in bytes.
pub const MAX_EVIDENCE_VALUE: usize = 2048;

/// What one instance may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    /// Linear memory, in bytes, over all of the instance's memories.
    pub memory: u64,
    /// CPU time of one `process` or `tick` call (wall time measured by
    /// epoch ticks).
    pub deadline: Duration,
    /// The same for `configure`, `snapshot` and `restore`.
    pub configure_deadline: Duration,
    /// Findings accepted per flow of the batch; a result above
    /// `rows × findings_per_row` (at least 64) is rejected whole.
    pub findings_per_row: u32,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            memory: DEFAULT_MEMORY_LIMIT,
            deadline: DEFAULT_DEADLINE,
            configure_deadline: DEFAULT_CONFIGURE_DEADLINE,
            findings_per_row: DEFAULT_FINDINGS_PER_ROW,
        }
    }
}

impl PluginLimits {
    /// Most findings accepted for a batch of `rows` flows.
    pub fn max_findings(&self, rows: usize) -> usize {
        rows.saturating_mul(self.findings_per_row as usize).max(64)
    }
}

/// The memory a plugin tried to take beyond its cap: returned from the
/// limiter so the failed grow traps with a cause the host can recognise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryCapExceeded {
    /// The cap, in bytes.
    pub cap: u64,
    /// What the instance asked to grow to, in bytes.
    pub desired: u64,
}

impl fmt::Display for MemoryCapExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "memory limit of {} MiB reached (asked for {} MiB)",
            self.cap >> 20,
            self.desired >> 20
        )
    }
}

impl std::error::Error for MemoryCapExceeded {}

/// Enforces the memory cap. Linear memories never shrink, so what the
/// instance holds now is also its peak.
#[derive(Debug, Clone)]
pub struct Limiter {
    cap: u64,
    /// Bytes held by the instance's memories now.
    current: u64,
}

impl Limiter {
    /// A limiter allowing `cap` bytes of linear memory.
    pub fn new(cap: u64) -> Self {
        Self { cap, current: 0 }
    }

    /// Bytes of linear memory held now.
    pub fn current(&self) -> u64 {
        self.current
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A component usually has one memory, but count the growth rather
        // than the absolute size so several memories share the cap.
        let growth = (desired as u64).saturating_sub(current as u64);
        let after = self.current.saturating_add(growth);
        if after > self.cap {
            return Err(MemoryCapExceeded {
                cap: self.cap,
                desired: after,
            }
            .into());
        }
        self.current = after;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables of function references stay small in real plugins; this
        // bound keeps a hostile one from turning them into a memory bomb.
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        32
    }

    fn tables(&self) -> usize {
        32
    }

    fn memories(&self) -> usize {
        8
    }
}

/// Why a call into a plugin failed. Labels are metric label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum TrapKind {
    /// The call ran past its deadline.
    Timeout,
    /// The instance tried to grow its memory past the cap.
    MemoryLimit,
    /// The guest's stack overflowed.
    StackOverflow,
    /// The guest panicked (`unreachable` executed).
    Panic,
    /// Out-of-bounds memory or table access, bad indirect call…
    Fault,
    /// The instance could not be created or configured.
    Instantiate,
    /// Anything else, including host-side errors while lowering or lifting.
    Other,
}

impl TrapKind {
    /// Every kind, for reports.
    pub const ALL: [TrapKind; 7] = [
        TrapKind::Timeout,
        TrapKind::MemoryLimit,
        TrapKind::StackOverflow,
        TrapKind::Panic,
        TrapKind::Fault,
        TrapKind::Instantiate,
        TrapKind::Other,
    ];

    /// Label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            TrapKind::Timeout => "timeout",
            TrapKind::MemoryLimit => "memory_limit",
            TrapKind::StackOverflow => "stack_overflow",
            TrapKind::Panic => "panic",
            TrapKind::Fault => "fault",
            TrapKind::Instantiate => "instantiate",
            TrapKind::Other => "other",
        }
    }

    /// Reads the cause out of a wasmtime error.
    pub fn classify(error: &wasmtime::Error) -> Self {
        for cause in error.chain() {
            if cause.downcast_ref::<MemoryCapExceeded>().is_some() {
                return TrapKind::MemoryLimit;
            }
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => TrapKind::Timeout,
            Some(Trap::StackOverflow) => TrapKind::StackOverflow,
            Some(Trap::UnreachableCodeReached) => TrapKind::Panic,
            Some(Trap::AllocationTooLarge) => TrapKind::MemoryLimit,
            Some(_) => TrapKind::Fault,
            None => TrapKind::Other,
        }
    }
}

impl fmt::Display for TrapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_counts_growth_across_memories() {
        let mut limiter = Limiter::new(10 << 20);
        assert!(limiter.memory_growing(0, 6 << 20, None).unwrap());
        assert!(limiter.memory_growing(0, 4 << 20, None).unwrap());
        let err = limiter.memory_growing(4 << 20, 5 << 20, None).unwrap_err();
        assert_eq!(TrapKind::classify(&err), TrapKind::MemoryLimit);
        assert_eq!(
            err.to_string(),
            "memory limit of 10 MiB reached (asked for 11 MiB)"
        );
        assert_eq!(
            limiter.current(),
            10 << 20,
            "the refused growth is not counted"
        );
    }

    #[test]
    fn the_findings_cap_scales_with_the_batch() {
        let limits = PluginLimits::default();
        assert_eq!(limits.max_findings(4096), 4096 * 4);
        assert_eq!(limits.max_findings(1), 64);
    }
}
