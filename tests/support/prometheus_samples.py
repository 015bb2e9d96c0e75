"""Parses Prometheus text exposition format from stdin with the reference
parser (Debian's python3-prometheus-client) and prints every sample as
JSON: [[name, {labels}, value], ...]. A parse error exits 1 with its
message: what a Prometheus server would refuse."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

try:
    samples = []
    for family in text_string_to_metric_families(sys.stdin.read()):
        for sample in family.samples:
            samples.append([sample.name, sample.labels, sample.value])
except Exception as e:  # reported to the test
    print(f"unparseable: {e}", file=sys.stderr)
    sys.exit(1)
print(json.dumps(samples))
