"""Kafka's own producer perf tool (`org.apache.kafka.tools.ProducerPerformance`, what
`kafka-producer-perf-test.sh` runs) against the bench's broker: the raw producer baseline of
`cem bench --distributed`, with the tool's defaults and not our adapter's configuration.

The tool ships in the `kafka-tools` jar, which `deploy/kafka/pom.xml` fetches into
`deploy/kafka/lib/` with the broker's jars. Records of ~600 bytes (an ingest-shaped record is
~620), acks=all, as fast as the broker takes them, to a scratch topic of the platform's
partition count that is deleted afterwards.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

RECORD_SIZE = 600
TOOL = "org.apache.kafka.tools.ProducerPerformance"
_SUMMARY = re.compile(
    r"(?P<records>\d+) records sent, (?P<rate>[\d.]+) records/sec \((?P<mb>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency, "
    r"(?P<p50>\d+) ms 50th, (?P<p95>\d+) ms 95th, (?P<p99>\d+) ms 99th, (?P<p999>\d+) ms 99.9th"
)


def parse_summary(output: str) -> dict[str, Any]:
    """The tool's closing line (the one with percentiles) as numbers: records, records/s, MB/s
    and latencies in seconds. Raises when the output has no such line."""
    found = None
    for line in output.splitlines():
        if match := _SUMMARY.search(line):
            found = match
    if found is None:
        raise ValueError(f"no ProducerPerformance summary in: {output[-500:]!r}")
    ms = {k: float(found[k]) / 1000 for k in ("avg", "max", "p50", "p95", "p99", "p999")}
    return {
        "records": int(found["records"]),
        "rate": float(found["rate"]),
        "mb_per_s": float(found["mb"]),
        "latency_s": ms,
    }


def command(lib: Path, bootstrap: str, topic: str, records: int, size: int) -> list[str]:
    return [
        "java",
        "-Xmx512m",
        "-cp",
        f"{lib}/*",
        TOOL,
        "--topic",
        topic,
        "--num-records",
        str(records),
        "--record-size",
        str(size),
        "--throughput",
        "-1",
        "--producer-props",
        f"bootstrap.servers={bootstrap}",
        "acks=all",
    ]


def available(lib: Path) -> bool:
    return shutil.which("java") is not None and any(lib.glob("kafka-tools-[0-9]*.jar"))


def run(
    lib: Path, bootstrap: str, partitions: int, records: int, size: int = RECORD_SIZE
) -> dict[str, Any]:
    """Run the tool once on a fresh topic of `partitions`; its summary, or why it did not run."""
    if not available(lib):
        return {"error": f"no kafka-tools jar in {lib}: mvn -f deploy/kafka/pom.xml "
                "dependency:copy-dependencies"}  # fmt: skip
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"bench-perf-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
        done = subprocess.run(
            command(lib, bootstrap, topic, records, size),
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if done.returncode != 0:
            return {"error": f"exit {done.returncode}: {done.stderr.strip()[-500:]}"}
        return parse_summary(done.stdout) | {
            "record_size": size,
            "partitions": partitions,
            "acks": "all",
            "tool": TOOL,
        }
    finally:
        admin.delete_topics([topic])
        admin.close()
