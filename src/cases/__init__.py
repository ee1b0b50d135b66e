"""casebook: end-to-end machine-learning interview cases."""

import os as _os


def _pin_blas_kernels() -> None:
    """Make numpy's and scipy's OpenBLAS use the same kernels on every x86-64 machine.

    OpenBLAS picks its kernels by CPU at load time (SkylakeX on AVX-512 machines, Haswell on
    AVX2 ones), and the kernels sum in different orders, so the same seed gave different last
    bits on two machines: logistic and linear coefficients, imputations, every model and metric
    built on them (reports/housing/eda.json changed although its input did not). Haswell's
    kernels run on any CPU with AVX2; set OPENBLAS_CORETYPE yourself to choose another. Must run
    before numpy is imported, hence here, in the package every entry point imports first.
    """
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
