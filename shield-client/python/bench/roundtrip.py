#!/usr/bin/env python3
"""Round-trip latency and throughput of the Python client against a running
shieldd, beside the seed scanner called in-process on the same text.

    SHIELD_SOCKET=/path/to.sock python3.11 bench/roundtrip.py [--n 2000] [--seed PATH] [--text-bytes N]

Prints one JSON object: p50/p99 in microseconds for a 1 KiB inbound and
outbound scan (one client, sequential), scans/s with 1, 16 and 64 threads
sharing one Shield, and the seed scanner's in-process p50/p99 on the same
text in both directions (the seed runs only its injection patterns on
inbound text, its PII and exfiltration patterns on outbound text).
"""

import argparse
import importlib.util
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shield_client import Shield  # noqa: E402

TEXT = ("Hello, I need help with order 4411: the parcel arrived damaged and the "
        "invoice lists the wrong address. Could you check the shipping notes? ") * 8
TEXT = TEXT[:1024]


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def latencies(fn, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e6)
    return out


def throughput(shield, threads, total):
    per = max(total // threads, 1)

    def work():
        for _ in range(per):
            shield.scan_input(TEXT)

    ts = [threading.Thread(target=work) for _ in range(threads)]
    t = time.perf_counter()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    return per * threads / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", default="/work/shared/baselines/seed_scanner.py")
    ap.add_argument("--text-bytes", type=int, default=1024)
    a = ap.parse_args()
    global TEXT
    TEXT = TEXT[: a.text_bytes]
    shield = Shield(timeout=30)
    v = shield.scan_input(TEXT)
    if v.unavailable:
        sys.exit(v.findings[0].detail)
    for _ in range(200):  # warm-up
        shield.scan_input(TEXT)
    lat = latencies(lambda: shield.scan_input(TEXT), a.n)
    lat_out = latencies(lambda: shield.scan_output(TEXT), a.n)
    lats = []
    for _ in range(200):
        lats.append(shield.scan_input(TEXT).latency_us)
    ping = latencies(shield.ping, a.n)
    res = {
        "text_bytes": len(TEXT.encode()),
        "server_latency_us_p50": statistics.median(lats),
        "ping_p50_us": round(statistics.median(ping), 1),
        "ping_p99_us": round(pct(ping, 0.99), 1),
        "client_p50_us": round(statistics.median(lat), 1),
        "client_p99_us": round(pct(lat, 0.99), 1),
        "client_out_p50_us": round(statistics.median(lat_out), 1),
        "client_out_p99_us": round(pct(lat_out, 0.99), 1),
        "client_scans_per_s": {str(t): round(throughput(shield, t, a.n * 2)) for t in (1, 16, 64)},
    }
    if Path(a.seed).exists():
        spec = importlib.util.spec_from_file_location("seed_scanner", a.seed)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mod.scan(TEXT, "inbound")
        seed = latencies(lambda: mod.scan(TEXT, "inbound"), a.n)
        res["seed_inprocess_p50_us"] = round(statistics.median(seed), 1)
        res["seed_inprocess_p99_us"] = round(pct(seed, 0.99), 1)
        seed_out = latencies(lambda: mod.scan(TEXT, "outbound"), a.n)
        res["seed_out_inprocess_p50_us"] = round(statistics.median(seed_out), 1)
        res["seed_out_inprocess_p99_us"] = round(pct(seed_out, 0.99), 1)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
