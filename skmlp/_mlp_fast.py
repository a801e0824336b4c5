"""The compiled kernels, in the build this CPU runs fastest.

The kernels' source (``src_cython/skmlp/_mlp_fast.pxi``) is compiled up to
three times: ``_mlp_fast_generic`` for any CPU of the architecture, and on
x86-64 also ``_mlp_fast_avx2`` with ``-march=x86-64-v3`` (AVX2), whose
element-wise loops and optimizer updates do twice as much per instruction, and
``_mlp_fast_avx512`` with ``-march=x86-64-v4`` (AVX-512). All round every
operation alike (``-ffp-contract=off``): the models they train are bitwise the
same (tests/test_kernel_variants.py). This module loads the newest build the
CPU runs and exposes its functions and types under one name, so the rest of
skmlp (and a test that patches a kernel) sees one module.

The environment variable ``SKMLP_KERNELS`` overrides the choice: ``generic``,
``avx2`` or ``avx512`` (an error if this CPU or build cannot run it); ``auto``
or unset for the default. ``variant`` says which build was loaded.
"""
import importlib
import importlib.util
import os

from ._cpu import runs_x86_64_v3, runs_x86_64_v4

VARIANTS = ("generic", "avx2", "avx512")

# build: (the -march level it is compiled for, its instruction set, CPU test)
_LEVELS = {
    "avx2": ("x86-64-v3", "AVX2", runs_x86_64_v3),
    "avx512": ("x86-64-v4", "AVX-512", runs_x86_64_v4),
}


def _available(name):
    """(can this build be loaded here, why not)"""
    level = _LEVELS.get(name)
    if importlib.util.find_spec(f"skmlp._mlp_fast_{name}") is None:
        if level is None:
            return False, "it is missing from this installation of skmlp (reinstall it)"
        return False, ("skmlp was built without it (it is built on x86-64, by a "
                       f"compiler that knows -march={level[0]})")
    if level is not None and not level[2]():
        return False, f"this CPU does not run {level[0]} ({level[1]}) code"
    return True, ""


def _choose(requested):
    if requested in ("", "auto"):
        for name in reversed(VARIANTS):
            ok, why = _available(name)
            if ok:
                return name
        raise ImportError("No build of skmlp's kernels can be loaded here (the "
                          f"generic one: {why}).")
    if requested not in VARIANTS:
        raise ImportError(
            f"SKMLP_KERNELS={requested!r} is not a build of skmlp's kernels; "
            f"use one of {', '.join(VARIANTS)} or auto."
        )
    ok, why = _available(requested)
    if not ok:
        raise ImportError(f"SKMLP_KERNELS={requested!r} cannot be loaded: {why}.")
    return requested


variant = _choose(os.environ.get("SKMLP_KERNELS", "auto").strip().lower())
_impl = importlib.import_module(f"skmlp._mlp_fast_{variant}")
globals().update(
    {name: value for name, value in vars(_impl).items() if not name.startswith("__")}
)
