"""Evaluation: a meta checkpoint and held-out videos -> the paper's figures, per setting (``fsth evaluate``).

The protocols are described in ``fsth.evaluate.run``.
"""

from fsth.evaluate.run import *  # noqa: F403
from fsth.evaluate.run import at_akd_size  # noqa: F401
