/* Flush-to-zero for the training kernels.
 *
 * Subnormal floats (below 1.2e-38 in float32, 2.2e-308 in float64) are handled
 * by microcode on x86 CPUs, one to two orders of magnitude slower than normal
 * arithmetic. Training produces them routinely in float32: a confident softmax
 * gives output errors p - y of 1e-40, which the backward pass feeds through
 * every layer's matrix products. skmlp_ftz_on() sets the calling thread's
 * flush-to-zero and denormals-are-zero modes and returns the previous control
 * word; skmlp_ftz_restore() puts it back. On other architectures they do
 * nothing except on AArch64 (FPCR.FZ).
 */
#ifndef SKMLP_FPENV_H
#define SKMLP_FPENV_H

#if defined(__SSE2__) || defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
static inline unsigned long skmlp_ftz_on(void)
{
    unsigned int csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040u);          /* FTZ (bit 15) | DAZ (bit 6) */
    return csr;
}
static inline void skmlp_ftz_restore(unsigned long csr)
{
    _mm_setcsr((unsigned int)csr);
}
#elif defined(__aarch64__)
static inline unsigned long skmlp_ftz_on(void)
{
    unsigned long fpcr;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
    __asm__ __volatile__("msr fpcr, %0" : : "r"(fpcr | (1ul << 24)));
    return fpcr;
}
static inline void skmlp_ftz_restore(unsigned long fpcr)
{
    __asm__ __volatile__("msr fpcr, %0" : : "r"(fpcr));
}
#else
static inline unsigned long skmlp_ftz_on(void) { return 0; }
static inline void skmlp_ftz_restore(unsigned long state) { (void)state; }
#endif

#endif
