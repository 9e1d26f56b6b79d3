#!/usr/bin/env python3
"""Cold start and package size of Lambda function binaries, measured locally.

For each binary given on the command line this starts the binary against a minimal local
stand-in of the Lambda Runtime API (the three endpoints a runtime client uses:
`GET /2018-06-01/runtime/invocation/next`, and the `response` / `error` POSTs, plus
`init/error`) and measures the time from process start to its first `next` request: what Lambda
reports as Init Duration (runtime start-up, the handler's own initialisation such as building the
AWS SDK client, up to asking for the first event). It also reads the process's resident memory at
that moment (`VmHWM`), and zips the binary as `bootstrap` the way `cargo lambda build` packages it
(deflate) to report the deployment-package size. With `--event FILE` the first `next` is answered
with that event and the time to the function's response is reported too.

Standard library only. Local timings leave out what only AWS adds (downloading the package,
starting the micro-VM), so they are a lower bound of a real cold start and a fair comparison
between functions and builds.

    python3 scripts/coldstart.py target/lambda/*/bootstrap        # or any binaries
    python3 scripts/coldstart.py --runs 10 --env RISK_CONFIG=config.json \\
        --out BENCHMARKS.md --section coldstart target/release/{ingestion,training,api}
"""

import argparse
import http.server
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

API_PREFIX = "/2018-06-01/runtime"


class RuntimeApi:
    """One stand-in Runtime API server; records when things happen for the current process."""

    def __init__(self, event=None):
        self.event = event
        self.lock = threading.Lock()
        self.reset()
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if not self.path.startswith(API_PREFIX + "/invocation/next"):
                    self.send_error(404)
                    return
                now = time.monotonic()
                with api.lock:
                    api.next_calls += 1
                    call = api.next_calls
                    if api.first_next is None:
                        api.first_next = now
                        api.init_rss_kib = api.read_hwm()
                api.got_next.set()
                if call == 1 and api.event is not None:
                    body = json.dumps(api.event).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Lambda-Runtime-Aws-Request-Id", "coldstart-1")
                    deadline = int((time.time() + 900) * 1000)
                    self.send_header("Lambda-Runtime-Deadline-Ms", str(deadline))
                    self.send_header(
                        "Lambda-Runtime-Invoked-Function-Arn",
                        "arn:aws:lambda:us-east-1:000000000000:function:coldstart",
                    )
                    self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                    self.end_headers()
                    self.wfile.write(body)
                    with api.lock:
                        api.event_sent = time.monotonic()
                    return
                # Hold the long poll, as Lambda does between invocations, until the run ends.
                api.done.wait(timeout=60)
                self.send_error(503)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                now = time.monotonic()
                with api.lock:
                    if self.path.endswith("/response"):
                        api.responded = now
                        api.response = body
                    elif self.path.endswith("/error"):
                        api.responded = now
                        api.error = body
                api.got_response.set()
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self):
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def reset(self, pid=None):
        self.pid = pid
        self.first_next = None
        self.next_calls = 0
        self.init_rss_kib = None
        self.event_sent = None
        self.responded = None
        self.response = None
        self.error = None
        self.got_next = threading.Event()
        self.got_response = threading.Event()
        self.done = threading.Event()

    def read_hwm(self):
        try:
            with open(f"/proc/{self.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except (OSError, ValueError, TypeError):
            pass
        return None


def zip_size(binary):
    """Size of the deployment zip: the binary stored as `bootstrap`, deflated, executable."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bootstrap.zip")
        info = zipfile.ZipInfo("bootstrap", date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o100755 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(binary, "rb") as source, zipfile.ZipFile(path, "w") as archive:
            archive.writestr(info, source.read())
        return os.path.getsize(path)


def measure_once(api, binary, env, timeout):
    stderr = tempfile.TemporaryFile()
    started = time.monotonic()
    process = subprocess.Popen(
        [binary], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
    )
    api.reset(process.pid)
    result = {}
    try:
        deadline = started + timeout
        while not api.got_next.wait(timeout=0.01):
            if process.poll() is not None or time.monotonic() > deadline:
                stderr.seek(0)
                tail = stderr.read().decode(errors="replace")[-1500:]
                raise RuntimeError(
                    f"{binary} never asked for an event (exit status {process.poll()}):\n{tail}"
                )
        result["init_ms"] = (api.first_next - started) * 1000
        result["init_rss_kib"] = api.init_rss_kib
        if api.event is not None:
            if not api.got_response.wait(timeout=timeout):
                raise RuntimeError(f"{binary} did not answer the event within {timeout} s")
            result["invoke_ms"] = (api.responded - api.event_sent) * 1000
            result["invoke_error"] = api.error.decode(errors="replace") if api.error else None
    finally:
        api.done.set()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return result


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores (nproc), {cpu}, {platform.system()} {platform.release()}"


def cell(values, unit="ms"):
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} {unit} ({min(values):.1f}–{max(values):.1f})"


def write_section(path, name, body):
    begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
    try:
        with open(path) as f:
            existing = f.read()
    except FileNotFoundError:
        existing = "# Benchmarks\n"
    block = f"{begin}\n{body}{end}"
    start, stop = existing.find(begin), existing.find(end)
    if start >= 0 and stop > start:
        updated = existing[:start] + block + existing[stop + len(end):]
    else:
        updated = existing.rstrip() + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(updated)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binaries", nargs="+", help="function binaries (name = file name, or its directory for target/lambda/<name>/bootstrap)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for the first request")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment for the functions")
    parser.add_argument("--event", help="JSON event to answer the first `next` with; also times the invocation")
    parser.add_argument("--out", help="Markdown file to write the table into (its own marked section)")
    parser.add_argument("--section", default="coldstart")
    args = parser.parse_args()

    event = None
    if args.event:
        with open(args.event) as f:
            event = json.load(f)
    api = RuntimeApi(event)
    base_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_LAMBDA_")
    }
    rows = []
    for binary in args.binaries:
        binary = os.path.abspath(binary)
        name = os.path.basename(binary)
        if name == "bootstrap":
            name = os.path.basename(os.path.dirname(binary))
        env = dict(base_env)
        env.update(
            {
                "AWS_LAMBDA_RUNTIME_API": api.address,
                "AWS_LAMBDA_FUNCTION_NAME": name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": "coldstart",
                "AWS_REGION": env.get("AWS_REGION", "us-east-1"),
            }
        )
        for pair in args.env:
            key, _, value = pair.partition("=")
            env[key] = value
        results = [measure_once(api, binary, env, args.timeout) for _ in range(args.runs)]
        init = [r["init_ms"] for r in results]
        rss = [r["init_rss_kib"] / 1024 for r in results if r.get("init_rss_kib")]
        invoke = [r["invoke_ms"] for r in results if "invoke_ms" in r]
        errors = [r["invoke_error"] for r in results if r.get("invoke_error")]
        rows.append(
            {
                "name": name,
                "binary_mb": os.path.getsize(binary) / 1e6,
                "zip_mb": zip_size(binary) / 1e6,
                "init": cell(init),
                "rss": f"{statistics.median(rss):.1f} MiB" if rss else "-",
                "invoke": cell(invoke),
                "errors": len(errors),
            }
        )
        print(f"coldstart: {name}: init {cell(init)}", file=sys.stderr)

    command = " ".join(["python3"] + sys.argv)
    lines = [
        f"Command: `{command}`  ",
        f"Machine: {machine()}; {args.runs} starts per function against a local Runtime API stand-in.\n",
        "| function | binary | zip (`bootstrap`, deflate) | init: spawn → first `next`, median (min–max) | memory at init | first invocation |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        invoke = row["invoke"] if event is not None else "-"
        if row["errors"]:
            invoke += f" ({row['errors']} error responses)"
        lines.append(
            f"| {row['name']} | {row['binary_mb']:.1f} MB | {row['zip_mb']:.1f} MB | {row['init']} | {row['rss']} | {invoke} |"
        )
    body = "\n".join(lines) + "\n"
    print(body)
    if args.out:
        write_section(args.out, args.section, body)


if __name__ == "__main__":
    main()
