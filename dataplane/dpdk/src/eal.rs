//! EAL initialisation, lcores, launch, and the TSC clock.

use std::ffi::{c_int, c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use qsplice_dpdk_sys as sys;

use crate::DpdkError;

static INIT_STARTED: AtomicBool = AtomicBool::new(false);
static EAL: OnceLock<Eal> = OnceLock::new();

/// The initialised Environment Abstraction Layer. There is at most one per
/// process, it lives until the process exits, and it is obtained with
/// [`Eal::init`].
#[derive(Debug)]
pub struct Eal {
    args: Vec<String>,
}

/// Why a closure could not be launched on an lcore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchError {
    /// The lcore is not a worker lcore enabled in the EAL arguments.
    NotAWorker(u32),
    /// The lcore is already running something.
    Busy(u32),
}

impl std::fmt::Display for LaunchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LaunchError::NotAWorker(l) => write!(f, "lcore {l} is not an enabled worker lcore"),
            LaunchError::Busy(l) => write!(f, "lcore {l} is busy"),
        }
    }
}
impl std::error::Error for LaunchError {}

impl Eal {
    /// Initialise the EAL with `args` (argv, including a program name at
    /// index 0). Fails if called a second time in the same process: DPDK
    /// cannot be re-initialised.
    pub fn init(args: &[String]) -> Result<&'static Eal, DpdkError> {
        if INIT_STARTED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::new(
                "rte_eal_init",
                libc_ealready(),
                "EAL already initialised in this process",
            ));
        }
        let cargs: Vec<CString> = args
            .iter()
            .map(|a| {
                CString::new(a.as_str()).map_err(|_| {
                    DpdkError::new("rte_eal_init", 22, format!("argument {a:?} contains NUL"))
                })
            })
            .collect::<Result<_, _>>()?;
        // rte_eal_init may permute argv; give it a private array of pointers.
        let mut argv: Vec<*mut std::ffi::c_char> =
            cargs.iter().map(|c| c.as_ptr() as *mut _).collect();
        let argc = argv.len() as c_int;
        // SAFETY: argv holds `argc` valid NUL-terminated strings that outlive
        // the call (cargs lives to the end of this function; DPDK copies what
        // it keeps). Init runs once per process (guarded above).
        let ret = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            return Err(DpdkError::from_rte_errno("rte_eal_init", args.join(" ")));
        }
        // DPDK keeps pointers into argv for some options; keep the strings alive forever.
        std::mem::forget(cargs);
        Ok(EAL.get_or_init(|| Eal {
            args: args.to_vec(),
        }))
    }

    /// The EAL, if initialised.
    pub fn get() -> Option<&'static Eal> {
        EAL.get()
    }

    /// The argv EAL was initialised with.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// DPDK's version string, e.g. "DPDK 22.11.11".
    pub fn version() -> String {
        // SAFETY: rte_version returns a pointer to a static NUL-terminated string.
        unsafe {
            std::ffi::CStr::from_ptr(sys::rte_version())
                .to_string_lossy()
                .into_owned()
        }
    }

    /// The main lcore's id.
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: EAL is initialised (self exists).
        unsafe { sys::rte_get_main_lcore() }
    }

    /// Enabled worker lcores (all enabled lcores but the main one), in order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut v = Vec::new();
        let mut l = u32::MAX; // -1: start from the beginning
        loop {
            // SAFETY: EAL is initialised; rte_get_next_lcore only reads lcore config.
            l = unsafe { sys::rte_get_next_lcore(l, 1, 0) };
            if l >= sys::RTE_MAX_LCORE {
                break;
            }
            v.push(l);
        }
        v
    }

    /// NUMA socket of an lcore (`None` if unknown).
    pub fn lcore_socket(&self, lcore: u32) -> Option<u32> {
        // SAFETY: EAL is initialised; out-of-range ids return SOCKET_ID_ANY.
        let s = unsafe { sys::rte_lcore_to_socket_id(lcore) };
        (s < sys::RTE_MAX_NUMA_NODES).then_some(s)
    }

    /// Run `f` on worker lcore `lcore`. The closure's return value is the
    /// lcore's exit code, collected by [`Eal::wait`].
    pub fn launch<F>(&self, lcore: u32, f: F) -> Result<(), LaunchError>
    where
        F: FnOnce() -> i32 + Send + 'static,
    {
        if !self.worker_lcores().contains(&lcore) {
            return Err(LaunchError::NotAWorker(lcore));
        }
        let boxed: Box<Box<dyn FnOnce() -> i32 + Send>> = Box::new(Box::new(f));
        let arg = Box::into_raw(boxed) as *mut c_void;
        // SAFETY: `trampoline` has the lcore_function_t ABI and takes back
        // ownership of `arg` exactly once. lcore is an enabled worker.
        let ret = unsafe { sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
        if ret != 0 {
            // SAFETY: the launch failed, so the trampoline will never run and
            // we still own `arg`: reclaim it to drop the closure.
            drop(unsafe { Box::from_raw(arg as *mut Box<dyn FnOnce() -> i32 + Send>) });
            return Err(LaunchError::Busy(lcore));
        }
        Ok(())
    }

    /// Wait for a worker lcore to finish and return the exit code of the
    /// last closure it ran (0 if it never ran one).
    pub fn wait(&self, lcore: u32) -> i32 {
        // SAFETY: EAL is initialised; rte_eal_wait_lcore spins until the lcore
        // is back in WAIT state and returns its last function's result.
        unsafe { sys::rte_eal_wait_lcore(lcore) }
    }

    /// Whether a worker lcore is currently running a launched closure.
    pub fn is_running(&self, lcore: u32) -> bool {
        // SAFETY: EAL is initialised; this only reads the lcore's state.
        unsafe { sys::rte_eal_get_lcore_state(lcore) != sys::WAIT }
    }
}

fn libc_ealready() -> i32 {
    114 // EALREADY on Linux
}

extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` was produced by Box::into_raw in `Eal::launch` and DPDK
    // passes it to this function exactly once.
    let f = unsafe { Box::from_raw(arg as *mut Box<dyn FnOnce() -> i32 + Send>) };
    // A panic must not unwind into C.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(-1)
}

/// The calling thread's lcore id (`u32::MAX` on a non-EAL thread).
pub fn lcore_id() -> u32 {
    // SAFETY: reads the calling thread's per-lcore variable; no preconditions.
    unsafe { sys::qs_lcore_id() }
}

/// The calling thread's NUMA socket id.
pub fn socket_id() -> i32 {
    // SAFETY: reads thread-local EAL state; no preconditions.
    unsafe { sys::rte_socket_id() as i32 }
}

/// Read the time-stamp counter.
#[inline(always)]
pub fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC is available on every x86_64 CPU and has no memory effects.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: the shim wraps rte_rdtsc, which has no preconditions.
        unsafe { sys::qs_rdtsc() }
    }
}

/// TSC frequency in Hz as measured by EAL (0 before EAL init).
pub fn tsc_hz() -> u64 {
    // SAFETY: rte_get_tsc_hz only reads a global set during EAL init.
    unsafe { sys::rte_get_tsc_hz() }
}

/// A [`qsplice_netdev::Clock`] over the TSC. Build it after EAL init.
#[derive(Clone, Copy, Debug)]
pub struct TscClock {
    hz: u64,
}

impl TscClock {
    /// A clock using the frequency EAL measured.
    pub fn new(_eal: &Eal) -> Self {
        TscClock {
            hz: tsc_hz().max(1),
        }
    }
}

impl qsplice_netdev::Clock for TscClock {
    #[inline(always)]
    fn now(&self) -> u64 {
        tsc()
    }
    fn hz(&self) -> u64 {
        self.hz
    }
}
