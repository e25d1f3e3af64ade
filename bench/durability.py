#!/usr/bin/env python3
"""Durability benchmark: what a broker loses when it is killed (SIGKILL)
right after acknowledging messages, and how fast it acknowledges them.

For each broker setup, in alternation, `--rounds` times:
  1. a persistent subscriber (paho-mqtt, MQTT 3.1.1, Clean Session 0)
     subscribes at QoS 1 and goes away;
  2. one paho-mqtt publisher sends N numbered messages at QoS 1 (or 2) with
     20 in flight; the rate is acknowledged messages per second;
  3. the broker is killed with SIGKILL right after the last acknowledgement,
     and started again on the same data;
  4. the subscriber comes back and counts what it receives.
Lost = acknowledged but never delivered. Medians over rounds.

Setups: our example broker (--sync always; --sync 100; --in-memory) and
Mosquitto with persistence (default autosave_interval 1800 s; and
autosave_on_changes 1 with autosave_interval 1: saving on every change).

  python3 bench/durability.py [--rounds 3] [-n 5000] [--qos 1] [--ahead 40] [--publishers 1] [--write]

--publishers P splits the messages between P publishers sending at once
(group commit: one sync covers every publisher's batch).

--write puts the table in BENCHMARKS.md (between the durability markers
for that QoS).
"""

import argparse, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ports import free_port, wait_port  # noqa: E402
from sections import put_section  # noqa: E402

import paho.mqtt.client as mqtt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = os.path.join(ROOT, "target", "release", "broker")


SETUPS = {
    "ours, --sync always": ("ours", ["--sync", "always"]),
    "ours, --sync 100 (ms)": ("ours", ["--sync", "100"]),
    "ours, --in-memory": ("ours", ["--in-memory"]),
    "mosquitto, persistence (autosave 1800 s)": ("mosquitto", "autosave_interval 1800\n"),
    "mosquitto, persistence saving every change": ("mosquitto", "autosave_on_changes true\nautosave_interval 1\n"),
}


class Broker:
    def __init__(self, setup, data):
        self.kind, self.extra = SETUPS[setup]
        self.data, self.port, self.proc = data, free_port(), None

    def start(self):
        if self.kind == "ours":
            cmd = [OURS, "--tcp", f"127.0.0.1:{self.port}", "--log", "error", "--data-dir", self.data] + self.extra
            cmd = [c for c in cmd if not (self.extra == ["--in-memory"] and c in ("--data-dir", self.data))]
        else:
            conf = os.path.join(self.data, "mosquitto.conf")
            with open(conf, "w") as f:
                f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
                        f"max_inflight_messages 0\npersistence true\npersistence_location {self.data}/\n{self.extra}")
            cmd = [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", conf]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_port(self.port):
            raise RuntimeError(f"{cmd[0]} did not start")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def client(cid, port, clean):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, clean_session=clean, protocol=mqtt.MQTTv311)
    c.max_inflight_messages_set(20)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port, keepalive=60)
    return c


def one_round(setup, n, qos, ahead, publishers):
    data = tempfile.mkdtemp(prefix="mqtt-durability-")
    # Mosquitto started as root runs as the `mosquitto` user: it must be
    # able to write its persistence file here.
    os.chmod(data, 0o777)
    try:
        b = Broker(setup, data)
        b.start()
        topic = "durable/t"
        sub = client("dur-sub", b.port, False)
        done = threading.Event()
        sub.on_subscribe = lambda *a: done.set()
        sub.loop_start()
        sub.subscribe(topic, 1)
        done.wait(5)
        sub.disconnect()
        sub.loop_stop()

        acked = set()
        lock = threading.Lock()
        all_acked = threading.Event()

        def publish_range(k, numbers):
            """One publisher sending `numbers`, at most `ahead` unacknowledged."""
            pub = client(f"dur-pub{k}", b.port, True)
            mids, early, mine = {}, set(), [0]

            def on_publish(c, u, mid, rc, props):
                with lock:
                    if mid in mids:
                        acked.add(mids.pop(mid))
                    else:
                        early.add(mid)
                    mine[0] += 1
                    if len(acked) >= n:
                        all_acked.set()

            pub.on_publish = on_publish
            pub.loop_start()
            for sent, i in enumerate(numbers, 1):
                info = pub.publish(topic, str(i).encode(), qos=qos)
                with lock:
                    if info.mid in early:
                        early.discard(info.mid)
                        acked.add(i)
                        if len(acked) >= n:
                            all_acked.set()
                    else:
                        mids[info.mid] = i
                # paho queues beyond the window; keep at most `ahead` queued.
                while True:
                    with lock:
                        ahead_now = sent - mine[0]
                    if ahead_now <= ahead:
                        break
                    time.sleep(0.0002)
            return pub

        start = time.perf_counter()
        if publishers == 1:
            pubs = [publish_range(0, range(n))]
        else:
            pubs, threads = [None] * publishers, []
            for k in range(publishers):
                def run(k=k):
                    pubs[k] = publish_range(k, range(k, n, publishers))
                threads.append(threading.Thread(target=run))
                threads[-1].start()
            for t in threads:
                t.join()
        all_acked.wait(120)
        elapsed = time.perf_counter() - start
        with lock:
            acked_now = set(acked)
        b.kill()  # SIGKILL right after the last acknowledgement
        for pub in pubs:
            pub.loop_stop()
        rate = len(acked_now) / elapsed

        b.start()
        got = set()
        sub = client("dur-sub", b.port, False)
        sub.on_message = lambda c, u, m: got.add(int(m.payload))
        sub.loop_start()
        last, quiet = len(got), time.time()
        while time.time() - quiet < 1.5 and len(got) < len(acked_now):
            time.sleep(0.05)
            if len(got) != last:
                last, quiet = len(got), time.time()
        sub.disconnect()
        sub.loop_stop()
        b.kill()
        lost = len(acked_now - got)
        return rate, lost, len(acked_now)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main():
    global OURS
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-n", type=int, default=5000)
    ap.add_argument("--qos", type=int, default=1, choices=[1, 2])
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--only", help="run the setups whose names contain this")
    ap.add_argument("--ahead", type=int, default=40, help="messages handed to paho ahead of the acknowledgements")
    ap.add_argument("--ours", help="our broker's binary (default: target/release/broker)")
    ap.add_argument("--publishers", type=int, default=1, help="publishers sending at once (each 20 in flight)")
    args = ap.parse_args()
    OURS = args.ours or OURS
    if not os.path.exists(OURS):
        sys.exit("build first: cargo build --release -p mqtt-examples --bin broker")
    results = {s: [] for s in SETUPS if not args.only or args.only in s}
    for r in range(args.rounds):
        for s in results:
            rate, lost, acked = one_round(s, args.n, args.qos, args.ahead, args.publishers)
            results[s].append((rate, lost, acked))
            print(f"round {r + 1}: {s}: {rate:,.0f} msgs/s acknowledged, {lost} of {acked} lost", flush=True)
    if args.publishers == 1:
        who = f"One paho-mqtt publisher (MQTT 3.1.1, QoS {args.qos}, 20 in flight) sends {args.n:,} messages"
    else:
        who = (f"{args.publishers} paho-mqtt publishers (threads of one Python process; MQTT 3.1.1, QoS {args.qos}, "
               f"20 in flight each) send {args.n:,} messages between them")
    lines = [
        f"{who} to a persistent subscriber that is away; the broker is killed with SIGKILL right after the last "
        f"acknowledgement and started "
        f"again; the subscriber then collects. Medians of {args.rounds} rounds, setups in alternation "
        f"(`python3 bench/durability.py --qos {args.qos}{'' if args.publishers == 1 else f' --publishers {args.publishers}'}`).",
        "",
        "| setup | acknowledged msgs/s | lost of acknowledged (median, worst) |",
        "|---|---:|---:|",
    ]
    for s, rs in results.items():
        rate = statistics.median(x[0] for x in rs)
        lost = statistics.median(x[1] for x in rs)
        worst = max(x[1] for x in rs)
        lines.append(f"| {s} | {rate:,.0f} | {lost:,.0f}, {worst:,} of {rs[0][2]:,} |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        tag = f"qos{args.qos}" + ("" if args.publishers == 1 else f"-p{args.publishers}")
        title = f"QoS {args.qos}" + ("" if args.publishers == 1 else f", {args.publishers} publishers")
        put_section(os.path.join(ROOT, "BENCHMARKS.md"), f"durability-{tag}",
                    f"Durability: SIGKILL after acknowledging ({title})", table)

if __name__ == "__main__":
    main()
