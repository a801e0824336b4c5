/* Can this CPU run code built with -march=x86-64-v3 (AVX, AVX2, BMI1/2, F16C,
 * FMA, LZCNT, MOVBE on top of x86-64-v2), or with -march=x86-64-v4 (AVX512F,
 * BW, CD, DQ and VL on top of v3), with the OS saving the registers those use?
 * 0 on other architectures and compilers. GCC's and Clang's
 * __builtin_cpu_supports read CPUID and, for AVX and AVX-512, the OS's XCR0
 * state. */
#ifndef SKMLP_CPU_H
#define SKMLP_CPU_H
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
static int skmlp_cpu_x86_64_v3(void)
{
    __builtin_cpu_init();
#if !defined(__clang__) && __GNUC__ >= 12
    return __builtin_cpu_supports("x86-64-v3");
#else
    return __builtin_cpu_supports("avx")
        && __builtin_cpu_supports("avx2")
        && __builtin_cpu_supports("fma")
        && __builtin_cpu_supports("bmi")
        && __builtin_cpu_supports("bmi2")
        && __builtin_cpu_supports("popcnt")
        && __builtin_cpu_supports("sse4.2");
#endif
}

static int skmlp_cpu_x86_64_v4(void)
{
    __builtin_cpu_init();
#if !defined(__clang__) && __GNUC__ >= 12
    return __builtin_cpu_supports("x86-64-v4");
#else
    return skmlp_cpu_x86_64_v3()
        && __builtin_cpu_supports("avx512f")
        && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512cd")
        && __builtin_cpu_supports("avx512dq")
        && __builtin_cpu_supports("avx512vl");
#endif
}
#else
static int skmlp_cpu_x86_64_v3(void) { return 0; }
static int skmlp_cpu_x86_64_v4(void) { return 0; }
#endif
#endif
