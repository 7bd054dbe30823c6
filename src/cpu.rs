//! What the coder asks of the processor itself, kept out of `codec`, which forbids
//! `unsafe`: a cache hint, and its integer loops compiled for the instructions the
//! processor has.

use crate::infer::kernels::Supported;

/// Asks the processor to bring `value` into its cache, for use shortly. A hint: it
/// changes no result, and does nothing where the architecture has no such instruction.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch reads nothing and cannot fault, and every x86_64 processor
        // has SSE, the feature it needs.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Runs `work`, compiled for the instructions that `kernels` names: the context models'
/// loops, whose integer arithmetic gives the same bits whatever the instructions (tests
/// compare the two builds). Only code inlined into `run_avx2` is compiled for AVX2, so
/// `work` must be an `#[inline(always)]` closure, and what it calls inlined too. With
/// AVX2 and POPCNT a page decoded 7% faster (tribune, alternated runs): the mixers' dot
/// products and updates run on 8 lanes, and glyph matching counts differing pixels in one
/// instruction.
#[inline(always)]
pub fn run_with<R>(kernels: Supported, work: impl FnOnce() -> R) -> R {
    match kernels.get() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a `Supported` holds `Kernels::Avx2` only where the processor has every
        // feature enabled below (`Kernels::runs_here`).
        crate::infer::kernels::Kernels::Avx2 => unsafe { run_avx2(work) },
        _ => work(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,bmi1,bmi2,popcnt,lzcnt")]
unsafe fn run_avx2<R>(work: impl FnOnce() -> R) -> R {
    work()
}
