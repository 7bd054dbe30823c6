//! A cache hint, kept out of `codec`, which forbids `unsafe`.

/// Asks the processor to bring `value` into its cache, for use shortly. A hint: it
/// changes no result, and does nothing where the architecture has no such instruction.
#[inline]
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
