"""skmlp's compiled kernels (``_mlp_fast.pxi``), built for x86-64-v4 CPUs
(AVX-512F, BW, CD, DQ and VL; Intel server CPUs since 2017, AMD since Zen 4).

The same source as ``_mlp_fast_generic``, compiled with ``-march=x86-64-v4``:
the element-wise loops and optimizer updates use AVX-512's vectors and mask
registers. With ``-ffp-contract=off`` every operation rounds as in the other
builds, so all give bitwise the same models (tests/test_kernel_variants.py).
Python code uses it through ``skmlp._mlp_fast``, which loads it on a CPU that
runs x86-64-v4 code.
"""
include "_mlp_fast.pxi"
