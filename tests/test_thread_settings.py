"""The CLI's thread settings, made before torch and OpenCV load, unless the user chose otherwise: OpenMP waiters
sleep (no spinning on a busy CPU), and OpenCV runs its calls in the calling thread (no pool of spinning workers)."""

import os
import subprocess
import sys

import pytest

SETTINGS = {"OMP_WAIT_POLICY": "PASSIVE", "OPENCV_FOR_THREADS_NUM": "1"}


def _in_the_cli(name: str, env_value, code: str = "") -> str:
    """What a process sees of setting ``name`` inside ``fsth.cli.main`` (``code``: evaluated there instead)."""
    env = {k: v for k, v in os.environ.items() if k != name}
    if env_value is not None:
        env[name] = env_value
    show = code or f"os.environ.get({name!r})"
    run = f"import os, fsth.cli as c; c.app = lambda: print({show}); c.main()"
    return subprocess.run([sys.executable, "-c", run], env=env, capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize("name", SETTINGS)
def test_the_cli_sets_its_thread_settings_and_a_users_own_win(name):
    assert _in_the_cli(name, None) == SETTINGS[name]
    assert _in_the_cli(name, "3") == "3"


def test_the_settings_take_effect_as_neither_torch_nor_opencv_is_loaded_before_main():
    out = subprocess.run(
        [sys.executable, "-c", "import sys, fsth.cli; print('torch' in sys.modules, 'cv2' in sys.modules)"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert out == "False False"
    # OpenCV reads it when it loads: one thread, its calls made in the caller's
    assert _in_the_cli("OPENCV_FOR_THREADS_NUM", None, "__import__('cv2').getNumThreads()") == "1"
