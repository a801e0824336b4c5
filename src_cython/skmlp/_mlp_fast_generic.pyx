"""skmlp's compiled kernels (``_mlp_fast.pxi``), built for the baseline of the
target architecture (on x86-64: SSE2, any x86-64 CPU).

Python code uses them through ``skmlp._mlp_fast``, which picks this build,
``_mlp_fast_avx2`` or ``_mlp_fast_avx512`` at import.
"""
include "_mlp_fast.pxi"
