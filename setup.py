"""Build of skmlp's compiled kernels.

All metadata lives in pyproject.toml; this file only declares the extensions
and the Cython directives, set once for the whole build.

Environment switches:
  SKMLP_DEBUG_BUILD=1  bounds, wraparound and initialisation checks on, -O0 -g.
  SKMLP_ASAN_BUILD=1   AddressSanitizer instrumentation (-fsanitize=address,
                       -O1 -g); run with libasan preloaded, see tools/asan.sh.
"""
import os
import platform
import shlex
import subprocess
import sysconfig
import tempfile

from Cython.Build import cythonize
from setuptools import Extension, setup

X86_64 = platform.machine().lower() in ("x86_64", "amd64") and os.name != "nt"
DEBUG = os.environ.get("SKMLP_DEBUG_BUILD", "0") not in ("", "0")
ASAN = os.environ.get("SKMLP_ASAN_BUILD", "0") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

# -ffp-contract=off: no fused multiply-add contraction, so the kernels round
# exactly as the NumPy expressions in their comments do, on every CPU.
# -fno-math-errno: sqrt/exp/log need not set errno (nothing reads it), which
# lets the compiler vectorise the optimizer loops; results are unchanged.
# -fno-trapping-math: no code reads floating-point exception flags, so the
# compiler may evaluate both arms of a select (_vmath.h's exp and tanh) and
# vectorise the loop; the values computed are unchanged.
# No -march=native: BLAS picks its CPU kernels at run time, and so does
# skmlp._mlp_fast among the builds below.
compile_args = ["-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"] + (
    ["-O0", "-g"] if DEBUG else ["-O3"]
)
link_args = []
if ASAN:
    # Python itself is not instrumented: libasan must be preloaded when the
    # tests run (LD_PRELOAD=$(gcc -print-file-name=libasan.so)).
    sanitize = ["-fsanitize=address", "-fno-omit-frame-pointer"]
    compile_args += sanitize + ([] if DEBUG else ["-O1", "-g"])
    link_args += sanitize

def _compiler_accepts(*flags):
    """Does the C compiler the build will use compile an empty file with flags?"""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write("int skmlp_probe(void) { return 0; }\n")
        try:
            proc = subprocess.run(
                shlex.split(cc) + list(flags) + ["-c", src, "-o", src + ".o"],
                capture_output=True,
            )
        except OSError:
            return False
    return proc.returncode == 0


# The kernels (src_cython/skmlp/_mlp_fast.pxi) are compiled up to three times:
# for any x86-64 CPU, for x86-64-v3 (AVX2) and for x86-64-v4 (AVX-512), each
# where the compiler knows that level. skmlp._mlp_fast loads the newest one the
# CPU runs. The flags above keep them bitwise equal.
# The x86-64-v4 build (AVX-512: 512-bit vectors and mask registers) measured
# 5-7 % faster than the AVX2 one on cases 2 and 8 float64 of the benchmarks
# (64-100-10 at batch 32; sparse input), about 3 % on cases 3 and 8 float32,
# and the same within 2 % on the others, on a CPU of the Sapphire Rapids
# family (benchmarks/compare_builds.py, results/builds.md). Its float64 Adam,
# AdaGrad, RMSProp and AdamW loops also divide without the divider
# (_steps_avx512.h, AVX-512 intrinsics; the other builds compile it to
# nothing): cases 3 and 6 float64 4-6 % and about 2 % faster than the AVX2
# build, from 2 % slower (results/builds-adam.md).
AVX2_FLAGS = ["-march=x86-64-v3", "-mtune=generic"]  # GCC >= 11, Clang >= 12
AVX512_FLAGS = ["-march=x86-64-v4", "-mtune=generic"]
variants = {"_blas": [], "_cpu": [], "_mlp_fast_generic": []}
if X86_64 and _compiler_accepts(*AVX2_FLAGS):
    variants["_mlp_fast_avx2"] = AVX2_FLAGS
if X86_64 and _compiler_accepts(*AVX512_FLAGS):
    variants["_mlp_fast_avx512"] = AVX512_FLAGS

extensions = [
    Extension(
        f"skmlp.{name}",
        [f"src_cython/skmlp/{name}.pyx"],
        include_dirs=["src_cython/skmlp"],
        extra_compile_args=compile_args + extra,
        define_macros=[("SKMLP_DEBUG_BUILD", "1")] if DEBUG else [],
        extra_link_args=link_args,
    )
    for name, extra in variants.items()
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["src_cython"],
        compiler_directives=directives,
    ),
)
