"""`cem up` stopped by SIGTERM (a service manager, `docker stop`) shuts the platform down: the
runners stop, chdb and the log close, and it exits 128 + 15 without a traceback. Before, uvicorn
re-raised the signal under the default handler after its own shutdown, so the process died by the
signal and the platform's shutdown never ran."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from cem.serving import free_port, wait_until_serving

REPO = Path(__file__).resolve().parents[2]


def test_cem_up_exits_through_its_shutdown_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cem.cli", "up", "--port", str(port), "--data-dir", str(tmp_path)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", timeout_s=120)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM, stderr.decode()
    assert b"Traceback" not in stderr, stderr.decode()
