"""What the CPU can run: which build of the kernels ``skmlp._mlp_fast`` loads.

Compiled for any x86-64 CPU (like ``_mlp_fast_generic``), so that it can be
asked before anything built for a newer instruction set is loaded.
"""

cdef extern from "_cpu.h" nogil:
    int skmlp_cpu_x86_64_v3()
    int skmlp_cpu_x86_64_v4()


def runs_x86_64_v3():
    """True if this CPU (and OS) can run code built with -march=x86-64-v3."""
    return bool(skmlp_cpu_x86_64_v3())


def runs_x86_64_v4():
    """True if this CPU (and OS) can run code built with -march=x86-64-v4."""
    return bool(skmlp_cpu_x86_64_v4())
