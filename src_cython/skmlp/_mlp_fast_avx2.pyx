"""skmlp's compiled kernels (``_mlp_fast.pxi``), built for x86-64-v3 CPUs
(AVX2; most x86-64 CPUs since 2013-2015).

The same source as ``_mlp_fast_generic``, compiled with ``-march=x86-64-v3``:
the element-wise loops and optimizer updates run 4 float64 or 8 float32 per
instruction instead of 2 or 4. With ``-ffp-contract=off`` every operation
rounds as in the generic build, so both give bitwise the same models
(tests/test_kernel_variants.py). Python code uses it through
``skmlp._mlp_fast``, which loads it only on a CPU that runs x86-64-v3 code.
"""
include "_mlp_fast.pxi"
