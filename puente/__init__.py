"""Puente: predictive dialer and IVR server for humane, compliant debt collection on Asterisk."""

import os

# The service's numeric work (the pacer, AMD) runs in its event loop on small arrays. A BLAS
# library's own threads only spin between its calls there (a matrix product in the pacer once
# took the dialer from 0.2 to 0.6 of a core). Set before numpy is imported; an operator's own
# setting wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

__version__ = "0.1.0"
