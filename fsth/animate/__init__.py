"""Animation (``fsth animate``): the package's modules re-exported; see ``fsth.animate.pipeline``."""

from fsth.animate.pipeline import *  # noqa: F403
from fsth.animate.pipeline import _Frame as _Frame
from fsth.animate.pipeline import _newest as _newest
from fsth.animate.pipeline import _render_loop as _render_loop
