"""casebook: end-to-end machine-learning interview cases."""

import os as _os


def _pin_blas_kernels() -> None:
    """Make numpy's and scipy's OpenBLAS sum in the same order on every x86-64 machine.

    OpenBLAS picks its kernels by CPU at load time (SkylakeX on AVX-512 machines, Haswell on
    AVX2 ones) and splits long sums over as many threads as the machine has cores; both change
    the order of the additions, so the same seed gave different last bits on two machines:
    logistic and linear coefficients, imputations, every model and metric built on them
    (reports/housing/eda.json changed although its input did not; eta's Ridge differs between
    one and two BLAS threads). One thread and Haswell's kernels (any CPU with AVX2) give one
    answer everywhere; LightGBM and scikit-learn's OpenMP code keep their own thread counts.
    Set OPENBLAS_NUM_THREADS or OPENBLAS_CORETYPE yourself to choose otherwise. Must run before
    numpy is imported, hence here, in the package every entry point imports first.
    """
    _os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if "OPENBLAS_CORETYPE" in _os.environ:
        return
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "").split()
    except OSError:
        return
    if "avx2" in flags and "fma" in flags:
        _os.environ["OPENBLAS_CORETYPE"] = "Haswell"


_pin_blas_kernels()

__version__ = "0.1.0"
