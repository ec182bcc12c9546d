"""Shared by the experiment scripts: start a server (our cloud in a cache mode, or llama-server),
run `edgeprompt bench-serve` against it, collect the result files.

Every script writes one JSON per figure under bench/results/experiments/ holding, for each point,
the command line that ran and bench-serve's summary (the per-request records stay in the
per-point files beside it). Nothing here measures anything itself: the numbers are bench-serve's.
"""
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "experiments"
DEFAULT_BINARY = ROOT / "build" / "edgeprompt"
DEFAULT_MODEL = ROOT / "models" / "edgeprompt-tiny-q8_0.gguf"

# The summary keys copied into a figure's JSON (bench-serve writes more).
SUMMARY_KEYS = [
    "completed", "failed", "duration", "request_throughput", "output_throughput",
    "total_token_throughput", "request_goodput", "mean_ttft_ms", "median_ttft_ms", "p90_ttft_ms",
    "p99_ttft_ms", "mean_tpot_ms", "median_tpot_ms", "p90_tpot_ms", "p99_tpot_ms", "mean_itl_ms",
    "p99_itl_ms", "mean_e2el_ms", "median_e2el_ms", "p99_e2el_ms", "server_cost",
]


class Server:
    """A server process on a loopback port; its log in a temporary file. Stopped on exit."""

    def __init__(self, argv, ready_pattern, url_of, env=None, timeout_s=600):
        self.argv = [str(a) for a in argv]
        self.log = tempfile.NamedTemporaryFile("w+", prefix="ep-exp-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout_s
        while True:
            text = pathlib.Path(self.log.name).read_text(errors="replace")
            m = re.search(ready_pattern, text)
            if m:
                self.url = url_of(m)
                break
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                sys.exit(f"server did not start: {shlex.join(self.argv)}\n{text[-2000:]}")
            time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        os.unlink(self.log.name)


def cloud(binary, model, cache_mode, extra=()):
    """`edgeprompt cloud` in one cache mode (none: PagedAttention, prefix, relay); plain HTTP on
    loopback (the benchmark measures serving, not TLS)."""
    argv = [binary, "cloud", "--insecure-http", "--model", model, "--listen", "127.0.0.1:0",
            "--cache-mode", cache_mode, *extra]
    return Server(argv, r"listening on (http://[0-9.:]+)", lambda m: m.group(1))


def llama_server(path, model, port, extra=()):
    """llama.cpp's llama-server (built outside this repository) on 127.0.0.1:PORT."""
    argv = [path, "-m", model, "--host", "127.0.0.1", "--port", str(port), *extra]
    return Server(argv, r"server is listening on (http://[0-9.:]+)|HTTP server listening",
                  lambda m: f"http://127.0.0.1:{port}")


def bench(binary, url, args, result_file):
    """Runs bench-serve; returns (command line, the result JSON)."""
    argv = [str(binary), "bench-serve", "--base-url", url, *map(str, args), "--result-file",
            str(result_file)]
    print("+", shlex.join(argv), flush=True)
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return shlex.join(argv), json.loads(pathlib.Path(result_file).read_text())


def point(command, result, **labels):
    """One point of a figure: its labels, the command and the summary."""
    return {**labels, "command": command, **{k: result[k] for k in SUMMARY_KEYS if k in result}}


def write_figure(name, meta, points):
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps({"figure": name, **meta, "points": points}, indent=2) + "\n")
    print(f"wrote {out}")
    return out
