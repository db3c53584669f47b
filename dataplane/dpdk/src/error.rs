use std::fmt;

use qsplice_dpdk_sys as sys;

/// An error from a DPDK call: which operation, the (positive) errno, and
/// DPDK's text for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpdkError {
    /// The DPDK function or wrapper operation that failed.
    pub op: &'static str,
    /// Positive errno value (0 when DPDK failed without setting one).
    pub errno: i32,
    /// Extra context (device name, queue index...).
    pub context: String,
}

impl DpdkError {
    /// An error for `op` with an explicit errno (negative values are accepted
    /// as DPDK returns `-errno`).
    pub fn new(op: &'static str, errno: i32, context: impl Into<String>) -> Self {
        DpdkError {
            op,
            errno: errno.abs(),
            context: context.into(),
        }
    }

    /// An error for `op` taking the errno from `rte_errno`.
    pub fn from_rte_errno(op: &'static str, context: impl Into<String>) -> Self {
        // SAFETY: qs_errno reads the calling thread's rte_errno (a TLS int);
        // it has no preconditions.
        let e = unsafe { sys::qs_errno() };
        Self::new(op, e, context)
    }

    /// DPDK's description of the errno.
    pub fn description(&self) -> String {
        if self.errno == 0 {
            return "failed without an error code (see the EAL log above)".into();
        }
        // SAFETY: rte_strerror returns a pointer to a static or thread-local
        // NUL-terminated string valid until the next call on this thread; we
        // copy it out immediately.
        unsafe {
            let p = sys::rte_strerror(self.errno);
            if p.is_null() {
                return format!("errno {}", self.errno);
            }
            std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed", self.op)?;
        if !self.context.is_empty() {
            write!(f, " ({})", self.context)?;
        }
        write!(f, ": {} (errno {})", self.description(), self.errno)
    }
}

impl std::error::Error for DpdkError {}

/// Map a DPDK `int` return (0 or positive = ok, negative = -errno).
pub(crate) fn check(
    ret: i32,
    op: &'static str,
    context: impl FnOnce() -> String,
) -> Result<i32, DpdkError> {
    if ret < 0 {
        Err(DpdkError::new(op, ret, context()))
    } else {
        Ok(ret)
    }
}
