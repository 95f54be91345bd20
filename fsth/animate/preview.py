"""The preview window of a live driver (driver | result; ``q`` quits, ``r`` takes a new reference)."""

from __future__ import annotations

import os
import sys

import numpy as np

from fsth.errors import InputError


def require_display() -> None:
    """An ``InputError`` unless a window can open: on Linux an X11 or Wayland display must be set."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise InputError(
            "the preview window needs a display, and none is set (no DISPLAY / WAYLAND_DISPLAY): "
            "use --no-preview with -o FILE to record without a window"
        )


class Preview:
    """A window showing driver | result; ``show`` returns the key pressed ("q" quits, "r" new reference)."""

    NAME = "fsth animate (q: quit, r: new reference)"

    def __init__(self):
        import cv2

        require_display()
        try:
            cv2.namedWindow(self.NAME, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise InputError(
                f"cannot open the preview window ({str(exc).strip().splitlines()[-1]}): use --no-preview with -o FILE"
            ) from None
        self._cv2 = cv2

    def show(self, image: np.ndarray) -> str:
        cv2 = self._cv2
        cv2.imshow(self.NAME, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        if cv2.getWindowProperty(self.NAME, cv2.WND_PROP_VISIBLE) < 1:
            return "q"  # the window was closed
        return chr(key) if key != 0xFF else ""

    def close(self) -> None:
        self._cv2.destroyWindow(self.NAME)
