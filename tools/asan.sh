#!/usr/bin/env bash
# The test suite against an AddressSanitizer build of skmlp's kernels.
#
#   tools/asan.sh                 # the default suite (what plain `pytest` runs)
#   tools/asan.sh -m ""           # every test, the slow ones too
#   tools/asan.sh tests/test_blas.py -x   # any pytest arguments
#
# The working tree (tracked and untracked, not ignored files) is copied to a
# temporary folder, the extensions are built there in place with
# SKMLP_ASAN_BUILD=1 (setup.py: -fsanitize=address -fno-omit-frame-pointer
# -O1 -g), and pytest runs from that folder with libasan preloaded (Python is
# not instrumented, so the runtime has to come first). Leak detection is off:
# the interpreter's own allocations at exit are not ours to judge.
# PYTHONMALLOC=malloc sends Python's small objects through malloc as well, so
# that ASan sees them. Any ASan report aborts the process (exit status != 0)
# and is printed on stderr, and is also written to $ASAN_LOG_DIR/asan.*.
# Environment: PYTHON (default /work/venv/bin/python, else python3),
# KEEP=1 keeps the build folder.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
    if [ -x /work/venv/bin/python ]; then PYTHON=/work/venv/bin/python; else PYTHON=python3; fi
fi
libasan=$(gcc -print-file-name=libasan.so)
if [ ! -e "$libasan" ]; then
    echo "libasan not found (gcc -print-file-name=libasan.so gave $libasan)" >&2
    exit 2
fi
# libstdc++ is preloaded too: otherwise ASan's __cxa_throw interceptor finds
# no real __cxa_throw (libstdc++ is loaded later, by C++ extensions such as
# matplotlib's ft2font) and aborts with "CHECK failed: asan_interceptors.cpp".
libstdcxx=$(gcc -print-file-name=libstdc++.so.6)
preload="$libasan $libstdcxx"
work=$(mktemp -d "${TMPDIR:-/tmp}/skmlp-asan.XXXXXX")
if [ "${KEEP:-0}" = 0 ]; then trap 'rm -rf "$work"' EXIT; fi
export ASAN_LOG_DIR=${ASAN_LOG_DIR:-$work/logs}
mkdir -p "$ASAN_LOG_DIR"

echo "== copy of $repo in $work"
(cd "$repo" && git ls-files -co --exclude-standard -z | grep -zv '\.so$' \
    | xargs -0 tar cf - ) | (cd "$work" && tar xf -)

echo "== build: SKMLP_ASAN_BUILD=1 setup.py build_ext --inplace"
(cd "$work" && SKMLP_ASAN_BUILD=1 "$PYTHON" setup.py -q build_ext --inplace) \
    > "$work/build.log" 2>&1 || { tail -50 "$work/build.log"; exit 1; }
for so in "$work"/skmlp/_*.so; do
    # (not `nm | grep -q`: grep's early exit would fail nm under pipefail)
    if ! nm -D "$so" | grep __asan_ > /dev/null; then
        echo "$so is not instrumented" >&2
        exit 1
    fi
done

echo "== $("$PYTHON" --version), $(gcc --version | head -1), LD_PRELOAD=$preload"
cd "$work"
asan_env=(LD_PRELOAD="$preload" PYTHONMALLOC=malloc)

# Positive control: hand the compiled forward pass a workspace sized for 60
# rows and ask for 64 (the kernels trust their caller). An instrumented build
# must report a heap-buffer-overflow in skmlp's own code; otherwise the run
# below proves nothing. (Only a few rows too many: the products, in the
# uninstrumented BLAS, write first, and with 4 rows for 64 they sometimes ran
# past the heap's mapped memory, a SEGV before skmlp's code read the excess.
# Four rows of the 1-unit output layer end 32 bytes past the buffer, in its
# redzone.)
echo "== control: a deliberate out-of-bounds write in _mlp_fast._predict"
control_log="$work/control"
mkdir -p "$control_log"
env "${asan_env[@]}" ASAN_OPTIONS="detect_leaks=0:log_path=$control_log/asan" \
    "$PYTHON" - > /dev/null 2>&1 <<'PY' || true
import numpy as np
from skmlp import MLPRegressor, _mlp_fast
from skmlp._multilayer_perceptron import _Workspace, _kernel_input
X = np.random.RandomState(0).rand(64, 3)
est = MLPRegressor(hidden_layer_sizes=(5,), max_iter=2).fit(X, X[:, 0])
ws = _Workspace(est._layer_units, 60, np.float64)  # room for 60 rows only
out = np.empty((64, 1))
_mlp_fast._predict(est._make_spec(), *_kernel_input(X, np.float64), est._theta,
                   64, ws.act_off, ws.act, ws.aux, out)
PY
if grep -q "heap-buffer-overflow" "$control_log"/asan* 2>/dev/null \
        && grep -q "_mlp_fast" "$control_log"/asan* 2>/dev/null; then
    echo "   reported: $(grep -m1 'ERROR: AddressSanitizer' "$control_log"/asan* | sed 's/^==[0-9]*==//')"
    echo "   in:       $(grep -m1 -o 'in __pyx[A-Za-z0-9_]*' "$control_log"/asan* | cut -c4-)"
else
    echo "the control's overflow was not reported: ASan is not active" >&2
    exit 1
fi

echo "== pytest $*"
status=0
env "${asan_env[@]}" \
    ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$ASAN_LOG_DIR/asan:${ASAN_OPTIONS:-}" \
    "$PYTHON" -m pytest -p no:cacheprovider -q "$@" || status=$?
echo "== pytest exit status $status"
if compgen -G "$ASAN_LOG_DIR/asan*" > /dev/null; then
    echo "== AddressSanitizer reports:" >&2
    cat "$ASAN_LOG_DIR"/asan* >&2
    exit 1
fi
echo "== no AddressSanitizer report"
exit "$status"
