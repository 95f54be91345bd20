"""The CLI makes OpenMP waiters sleep (no spinning on a busy CPU) unless the user chose otherwise."""

import os
import subprocess
import sys

CODE = "import os, fsth.cli as c; c.app = lambda: print(os.environ.get('OMP_WAIT_POLICY')); c.main()"


def _policy(env_value):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env_value is not None:
        env["OMP_WAIT_POLICY"] = env_value
    return subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True).stdout.strip()


def test_cli_sets_a_passive_openmp_wait_policy_before_torch_loads():
    assert _policy(None) == "PASSIVE"
    # and torch is not loaded by the time main() runs: the setting can still take effect
    out = subprocess.run(
        [sys.executable, "-c", "import sys, fsth.cli; print('torch' in sys.modules)"], capture_output=True, text=True
    ).stdout.strip()
    assert out == "False"


def test_a_users_own_wait_policy_wins():
    assert _policy("ACTIVE") == "ACTIVE"
