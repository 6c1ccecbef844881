#!/usr/bin/env python3
"""Reads an `analyzer export --hdr` interval log with the Python HdrHistogram port (hdrhistogram on
PyPI) and compares it with the run's report.json.

Usage: pip install hdrhistogram; analyzer export RUN --hdr run.hlog; analyzer report RUN --format json;
       scripts/check-hdr-export.py run.hlog RUN/report.json
"""
import sys, json
from hdrh.log import HistogramLogReader
from hdrh.histogram import HdrHistogram

def per_tag(path):
    sums = {}
    reader = HistogramLogReader(path, HdrHistogram(1, 3600 * 1000 * 1000, 3))
    while True:
        h = reader.get_next_interval_histogram()
        if h is None:
            return sums
        tag = h.get_tag()
        sums.setdefault(tag, HdrHistogram(1, 3600 * 1000 * 1000, 3)).add(h)

sums = per_tag(sys.argv[1])
rep = json.load(open(sys.argv[2]))["runs"][0]
for tag, key in ((None, "latency_ms"), ("uncorrected", "latency_uncorrected_ms")):
    h = sums[tag]
    print("tag", tag, "count", h.get_total_count(), "report", rep[key]["count"])
    for q, k in ((50, "p50"), (90, "p90"), (99, "p99"), (99.9, "p999")):
        v = h.get_value_at_percentile(q) / 1000
        r = rep[key][k]
        print("  P%s hdr %.3f ms, report %.3f ms, diff %.3f%%" % (q, v, r, 100 * (v - r) / r))
print("tags:", len(sums), sorted(t for t in sums if t)[:4])
