#!/usr/bin/env python3
"""Runs mqtt-bench scenarios against several brokers in alternation and
writes medians and ratios to BENCHMARKS.md. Called by bench/compare.sh."""

import argparse, json, os, platform, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ports import free_port, wait_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "target", "release", "mqtt-bench")
OURS = os.path.join(ROOT, "target", "release", "broker")

# (name, mqtt-bench arguments, metric, unit). The message counts make each
# run of ours last half a second or more: shorter runs on a shared machine
# measure its noise.
# Connections from 16 loopback addresses, as from 16 hosts: see
# `mqtt-bench --sources`.
CONNS = ["conns", "-c", "5000", "--sources", "16"]
SCENARIOS = [
    ("fan-in 4→1 QoS 0, window 100", ["fanin", "-P", "4", "-q", "0", "-n", "250000", "-w", "100"], "msgs_per_s", "msgs/s"),
    ("fan-in 4→1 QoS 1, window 100", ["fanin", "-P", "4", "-q", "1", "-n", "150000", "-w", "100"], "msgs_per_s", "msgs/s"),
    ("fan-in 4→1 QoS 1, window 1000", ["fanin", "-P", "4", "-q", "1", "-n", "150000", "-w", "1000"], "msgs_per_s", "msgs/s"),
    ("fan-in 4→1 QoS 1, 1 KiB", ["fanin", "-P", "4", "-q", "1", "-n", "60000", "-s", "1024", "-w", "100"], "msgs_per_s", "msgs/s"),
    ("fan-in 4→1 QoS 2, window 100", ["fanin", "-P", "4", "-q", "2", "-n", "50000", "-w", "100"], "msgs_per_s", "msgs/s"),
    ("fan-out 1→100 QoS 0 (deliveries)", ["fanout", "-S", "100", "-q", "0", "-n", "15000", "-w", "100"], "msgs_per_s", "deliveries/s"),
    ("fan-out 1→100 QoS 1 (deliveries)", ["fanout", "-S", "100", "-q", "1", "-n", "15000", "-w", "100"], "msgs_per_s", "deliveries/s"),
    ("50 pairs QoS 0", ["pairs", "-P", "50", "-q", "0", "-n", "15000", "-w", "100"], "msgs_per_s", "msgs/s"),
    ("50 pairs QoS 1", ["pairs", "-P", "50", "-q", "1", "-n", "15000", "-w", "100"], "msgs_per_s", "msgs/s"),
    ("latency at 10k msgs/s QoS 0, p50", ["pairs", "-P", "1", "-q", "0", "-n", "50000", "-r", "10000"], "p50_us", "µs"),
    ("latency at 10k msgs/s QoS 0, p99", ["pairs", "-P", "1", "-q", "0", "-n", "50000", "-r", "10000"], "p99_us", "µs"),
    ("5,000 idle connections: connects/s", CONNS, "connects_per_s", "connects/s"),
    ("5,000 idle connections: RSS per connection", CONNS, "rss_kb_per_conn", "KB"),
    ("5,000 idle connections: broker CPU per connect", CONNS, "broker_cpu_us_per_connect", "µs"),
]
# Runs of one load per broker and round: rows with the same arguments share
# runs; a connect phase lasts about 0.15 s, so `conns` runs three times.
REPEATS = {tuple(CONNS): 3}
LOWER_IS_BETTER = {"p50_us", "p99_us", "rss_kb_per_conn", "broker_cpu_us_per_connect"}
WS_SCENARIO = ("fan-in 4→1 QoS 0 over WebSocket", ["fanin", "-P", "4", "-q", "0", "-n", "250000", "-w", "100"], "msgs_per_s", "msgs/s")


class Broker:
    def __init__(self, name, tmp):
        self.name, self.tmp, self.proc, self.port, self.ws_port = name, tmp, None, None, None

    def command(self):
        self.port = free_port()
        if self.name == "ours":
            self.ws_port = free_port()
            return [OURS, "--tcp", f"127.0.0.1:{self.port}", "--ws", f"127.0.0.1:{self.ws_port}", "--log", "error", "--in-memory"]
        if self.name == "mosquitto":
            conf = os.path.join(self.tmp, "mosquitto.conf")
            with open(conf, "w") as f:
                f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 0\n")
            exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
            return [exe, "-c", conf]
        if self.name == "rumqttd":
            conf = os.path.join(self.tmp, "rumqttd.toml")
            with open(conf, "w") as f:
                f.write(RUMQTTD_CONF.format(port=self.port))
            return [shutil.which("rumqttd"), "--config", conf]
        raise ValueError(self.name)

    def start(self):
        cmd = ["taskset", "-c", "0"] + self.command()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_port(self.port):
            self.stop()
            raise RuntimeError(f"{self.name} did not start")

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None

    def version(self):
        try:
            if self.name == "mosquitto":
                out = subprocess.run([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-h"], capture_output=True, text=True).stdout
                return out.splitlines()[0].split(" version ")[-1].split()[0]
            if self.name == "rumqttd":
                return subprocess.run(["rumqttd", "--version"], capture_output=True, text=True).stdout.strip().split()[-1]
        except Exception:
            return "?"
        return "this workspace"


RUMQTTD_CONF = """id = 0
[router]
id = 0
max_connections = 10010
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "127.0.0.1:{port}"
next_connection_delay_ms = 0
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 20480
    max_inflight_count = 1000
    dynamic_filters = true
"""


def run_bench(args, url, pid, label):
    cmd = ["taskset", "-c", "1", BENCH] + args + ["-L", url, "--pid", str(pid), "--label", label]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        print(f"  {label}: timed out", file=sys.stderr)
        return None
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    print(f"  {label}: no result ({out.stderr.strip()[:200]})", file=sys.stderr)
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    a = ap.parse_args()
    names = ["ours", "mosquitto"] + (["rumqttd"] if shutil.which("rumqttd") else [])
    tmp = tempfile.mkdtemp(prefix="mqtt-compare-")
    results = {}  # (scenario, broker) -> [values]
    lost = {}
    versions = {}
    # Each distinct load once per round and broker (or REPEATS times); every
    # row reads its metric from the runs of its load.
    loads = []
    for sc_name, sc_args, _, _ in SCENARIOS + [WS_SCENARIO]:
        ws = sc_name.endswith("over WebSocket")
        if (ws, sc_args) not in [(w, l) for w, l, _ in loads]:
            loads.append((ws, sc_args, sc_name))
    runs = {}  # (ws, args, broker) -> [result]
    for ws, sc_args, label in loads:
        brokers = ["ours"] if ws else names
        for r in range(a.rounds):
            for _ in range(REPEATS.get(tuple(sc_args), 1)):
                for name in brokers:
                    b = Broker(name, tmp)
                    try:
                        b.start()
                    except Exception as e:
                        print(f"  {name}: {e}", file=sys.stderr)
                        continue
                    versions[name] = b.version()
                    url = f"ws://127.0.0.1:{b.ws_port}/mqtt" if ws else f"mqtt://127.0.0.1:{b.port}"
                    if ws:
                        # The same load over TCP on the same broker, for a
                        # ratio free of drift; which goes first alternates.
                        tcp_url = f"mqtt://127.0.0.1:{b.port}"
                        if r % 2:
                            tcp = run_bench(sc_args, tcp_url, b.proc.pid, name)
                            res = run_bench(sc_args, url, b.proc.pid, name)
                        else:
                            res = run_bench(sc_args, url, b.proc.pid, name)
                            tcp = run_bench(sc_args, tcp_url, b.proc.pid, name)
                        if res and tcp:
                            runs.setdefault((ws, tuple(sc_args), "ours-tcp"), []).append(tcp)
                        else:
                            res = None
                    else:
                        res = run_bench(sc_args, url, b.proc.pid, name)
                    b.stop()
                    if res is None:
                        continue
                    runs.setdefault((ws, tuple(sc_args), name), []).append(res)
                    print(f"{label} [{name}] round {r + 1}: " + json.dumps({k: v for k, v in res.items() if k not in ("label", "url")}), flush=True)
    for sc_name, sc_args, metric, _ in SCENARIOS + [WS_SCENARIO]:
        ws = sc_name.endswith("over WebSocket")
        for name in names + ["ours-tcp"]:
            for res in runs.get((ws, tuple(sc_args), name), []):
                if res.get(metric) is None:
                    continue
                results.setdefault((sc_name, name), []).append(float(res[metric]))
                if res.get("lost"):
                    lost[(sc_name, name)] = lost.get((sc_name, name), 0) + int(res["lost"])
    write(a.out, names, results, lost, versions, a.rounds)


def fmt(v, unit):
    if v is None:
        return "n/a"
    if unit in ("µs", "KB"):
        return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"
    return f"{v:,.0f}"


def write(path, names, results, lost, versions, rounds):
    med = {k: statistics.median(v) for k, v in results.items()}
    lines = ["# Broker benchmarks", "",
             "Produced by `bash bench/compare.sh` on " + time.strftime("%Y-%m-%d") + ": every scenario runs against each broker in",
             f"alternation ({rounds} rounds, medians), the broker pinned to CPU 0 and the load tool (`mqtt-bench`, built on",
             "mqtt-codec) to CPU 1; loopback TCP, MQTT 3.1.1, 64-byte payloads unless stated. Ratios are ours / peer",
             "(above 1 is better for us, except for latency, memory and CPU where the ratio is peer / ours).", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}. Brokers: " +
             ", ".join(f"{n} {versions.get(n, '?')}" for n in names) +
             ". Mosquitto runs with `max_queued_messages 0` (otherwise it drops acknowledged QoS 1 messages past 1000 queued) and `max_inflight_messages 0` (otherwise it closes a 3.1.1 publisher with more than 20 QoS 2 messages in flight), other settings default.", ""]
    head = "| scenario | " + " | ".join(names) + " | " + " | ".join(f"ours / {n}" for n in names[1:]) + " |"
    lines += [head, "|" + "---|" * (1 + len(names) + len(names) - 1)]
    for sc_name, _, metric, unit in SCENARIOS:
        row = [f"{sc_name} ({unit})"]
        for n in names:
            v = med.get((sc_name, n))
            cell = fmt(v, unit)
            if lost.get((sc_name, n)):
                cell += f" (lost {lost[(sc_name, n)]})"
            row.append(cell)
        ours = med.get((sc_name, "ours"))
        for n in names[1:]:
            peer = med.get((sc_name, n))
            if ours and peer:
                ratio = peer / ours if metric in LOWER_IS_BETTER else ours / peer
                row.append(f"{ratio:.2f}")
            else:
                row.append("n/a")
        lines.append("| " + " | ".join(row) + " |")
    conns_runs = min((len(v) for (sc, n), v in results.items() if sc == SCENARIOS[-1][0]), default=0)
    lines += ["", f"The connection rows take the medians of {conns_runs} runs per broker (three per round); the load opens "
              "100 connections at a time from 16 loopback addresses. Broker CPU per connect is the broker's CPU time "
              "over the connect phase, summed over its threads from `/proc/PID/task/*/schedstat` (nanoseconds)."]
    ws = med.get((WS_SCENARIO[0], "ours"))
    tcp = med.get((WS_SCENARIO[0], "ours-tcp"))
    lines += ["", "Over WebSocket (ours only; Debian's mosquitto has no WebSocket listener configured here):", ""]
    if ws and tcp:
        lines.append(f"- fan-in 4→1 QoS 0: {ws:,.0f} msgs/s over WebSocket, {ws / tcp:.0%} of the same load over TCP on the same broker, run before or after it in turn ({tcp:,.0f}).")
    else:
        lines.append("- not measured")
    # Sections other scripts maintain (bench/durability.py,
    # bench/durable_load.py) are kept.
    kept = []
    if os.path.exists(path):
        old = open(path).read()
        start = 0
        while True:
            b = old.find("<!-- durab", start)
            if b < 0:
                break
            e = old.find(":end -->", b)
            if e < 0:
                break
            kept.append(old[b:e + len(":end -->")])
            start = e
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
        for block in kept:
            f.write("\n" + block + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
