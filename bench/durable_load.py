#!/usr/bin/env python3
"""Durable acknowledgements under load: how fast each broker setup
acknowledges QoS 1 and 2 messages for a persistent subscriber when the
client is not what sets the pace.

mqtt-bench (`fanin --persistent`) publishes to one subscriber that keeps its
session (Clean Session 0), so a broker that stores sessions stores every
message for it until acknowledged. With `--sync always` our broker sends
PUBACK / PUBREC only once the message is on disk (fdatasync); the other
setups acknowledge from memory. The broker is pinned to CPU 0 and the load
to CPU 1; setups run in alternation; medians of `--rounds`.

  python3 bench/durable_load.py [--rounds 3] [--write]

--write puts the table in BENCHMARKS.md (between the durable-load markers).
bench/durability.py measures what each setup loses to SIGKILL.
"""

import argparse, json, os, shutil, signal, statistics, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ports import free_port, wait_port  # noqa: E402
from sections import put_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = os.path.join(ROOT, "target", "release", "broker")
BENCH = os.path.join(ROOT, "target", "release", "mqtt-bench")

SETUPS = {
    "ours, --sync always": ("ours", ["--sync", "always"]),
    "ours, --sync 100 (ms)": ("ours", ["--sync", "100"]),
    "ours, --in-memory": ("ours", ["--in-memory"]),
    "mosquitto, persistence (autosave 1800 s)": ("mosquitto", "persistence true\nautosave_interval 1800\n"),
    "mosquitto, no persistence": ("mosquitto", ""),
}
# (name, mqtt-bench arguments)
SCENARIOS = [
    ("1 publisher, QoS 1, 20 in flight", ["-P", "1", "-q", "1", "-w", "20", "-n", "20000"]),
    ("4 publishers, QoS 1, window 100", ["-P", "4", "-q", "1", "-w", "100", "-n", "10000"]),
    ("4 publishers, QoS 2, window 100", ["-P", "4", "-q", "2", "-w", "100", "-n", "10000"]),
]
DURABLE = "ours, --sync always"
BASELINE = "mosquitto, no persistence"


def run(setup, args):
    kind, extra = SETUPS[setup]
    data = tempfile.mkdtemp(prefix="mqtt-durable-load-")
    os.chmod(data, 0o777)  # mosquitto started as root writes as `mosquitto`
    port = free_port()
    if kind == "ours":
        cmd = [OURS, "--tcp", f"127.0.0.1:{port}", "--log", "error"] + extra
        if extra != ["--in-memory"]:
            cmd += ["--data-dir", data]
    else:
        conf = os.path.join(data, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
                    f"max_inflight_messages 0\npersistence_location {data}/\n{extra}")
        cmd = [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", conf]
    proc = subprocess.Popen(["taskset", "-c", "0"] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_port(port):
            raise RuntimeError(f"{cmd[0]} did not start")
        out = subprocess.run(["taskset", "-c", "1", BENCH, "fanin", "--persistent", "-L", f"mqtt://127.0.0.1:{port}",
                              "--pid", str(proc.pid), "--label", setup] + args,
                             capture_output=True, text=True, timeout=300)
        for line in out.stdout.splitlines():
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"no result: {out.stderr.strip()[:200]}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    for exe in (OURS, BENCH):
        if not os.path.exists(exe):
            sys.exit("build first: cargo build --release -p mqtt-examples --bin broker --bin mqtt-bench")
    rates, lost = {}, {}
    for name, sc in SCENARIOS:
        for r in range(args.rounds):
            for setup in SETUPS:
                res = run(setup, sc)
                rates.setdefault((name, setup), []).append(res["msgs_per_s"])
                lost[(name, setup)] = lost.get((name, setup), 0) + res.get("lost", 0)
                print(f"{name} [{setup}] round {r + 1}: {res['msgs_per_s']:,} msgs/s, lost {res.get('lost', 0)}", flush=True)
    head = "| setup | " + " | ".join(n for n, _ in SCENARIOS) + " |"
    lines = [
        "mqtt-bench publishers (MQTT 3.1.1) to one subscriber with a persistent session "
        "(`mqtt-bench fanin --persistent`), 64 B payloads; acknowledged and delivered messages per second, "
        f"medians of {args.rounds} rounds, setups in alternation, broker on CPU 0 and load on CPU 1 "
        "(`python3 bench/durable_load.py`). `--sync always` acknowledges only what is on disk; the other setups "
        "acknowledge from memory." + ("" if any(lost.values()) else " Every run delivered every message.") +
        " A publisher with 20 in flight has at most 20 messages waiting for the disk, so with one publisher "
        "the time an `fdatasync` takes, not the broker's work, sets the durable rate.",
        "",
        head,
        "|---|" + "---:|" * len(SCENARIOS),
    ]
    for setup in SETUPS:
        cells = []
        for name, _ in SCENARIOS:
            v = rates.get((name, setup))
            cells.append(f"{statistics.median(v):,.0f}" if v else "n/a")
        lines.append(f"| {setup} | " + " | ".join(cells) + " |")
    ratios = []
    for name, _ in SCENARIOS:
        d, b = rates.get((name, DURABLE)), rates.get((name, BASELINE))
        ratios.append(f"{statistics.median(d) / statistics.median(b):.2f}x" if d and b else "n/a")
    lines.append(f"| **{DURABLE} / {BASELINE}** | " + " | ".join(ratios) + " |")
    if any(lost.values()):
        lines.append("")
        lines.append("Lost in delivery: " + ", ".join(f"{k[1]} in {k[0]}: {v}" for k, v in lost.items() if v))
    table = "\n".join(lines)
    print(table)
    if args.write:
        put_section(os.path.join(ROOT, "BENCHMARKS.md"), "durable-load", "Durable acknowledgements under load", table)

if __name__ == "__main__":
    main()
