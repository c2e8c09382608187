"""`make mlflow-ui`: start the MLflow UI on the project's store and print its links only once
it answers (on a busy 2-core machine the server takes about 40 s to accept connections, and a
link that refuses looks broken). `python -m slimaudio.mlflow_ui --uri ... [--port 5000]`."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from slimaudio import tracking

START_TIMEOUT_S = 300.0  # the server is given up on after this long without an answer
POLL_S = 0.5


def answers(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=2) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


def wait_until_up(proc: subprocess.Popen, base: str, timeout_s: float = START_TIMEOUT_S) -> float:
    """Seconds until `base` answered; SystemExit when the server exits or never answers."""
    t0 = time.monotonic()
    print(f"starting the MLflow UI on {base} ...", flush=True)
    while not answers(base):
        if proc.poll() is not None:
            sys.exit(f"error: the MLflow UI exited with status {proc.returncode} before it "
                     f"answered on {base} (is the port taken?)")
        if time.monotonic() - t0 > timeout_s:
            proc.terminate()
            sys.exit(f"error: the MLflow UI did not answer on {base} within {timeout_s:.0f} s")
        time.sleep(POLL_S)
    return time.monotonic() - t0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--uri", required=True, help="the tracking store (sqlite:///... or http...)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    args = p.parse_args(argv)
    base = f"http://{args.host}:{args.port}"
    mlflow = Path(sys.executable).parent / "mlflow"
    # the server's own log goes to stderr: stdout keeps the lines people read
    proc = subprocess.Popen([str(mlflow), "ui", "--backend-store-uri", args.uri,
                             "--host", args.host, "--port", str(args.port)], stdout=sys.stderr)
    signal.signal(signal.SIGTERM, _interrupt)  # stopped like Ctrl-C: never orphan the server
    try:
        took = wait_until_up(proc, base)
        print(f"MLflow UI answering on {base} (after {took:.0f} s)", flush=True)
        tracking.main([base])
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
