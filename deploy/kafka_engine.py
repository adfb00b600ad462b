"""Apache Kafka, single node in KRaft combined mode (broker and controller), from the jars that
.ci/provision.sh fetches into deploy/kafka/lib with Maven."""

from __future__ import annotations

import base64
import os
import shutil
import sys
import uuid
from pathlib import Path

from processes import EngineError, State, listening, run, spawn, wait_until

KAFKA_LIB = Path(__file__).resolve().parent / "kafka" / "lib"
KAFKA_HEAP = os.environ.get("CEM_KAFKA_HEAP", "512m")
KAFKA_LOG_LEVEL = os.environ.get("CEM_KAFKA_LOG_LEVEL", "WARN")


def kafka_version() -> str:
    jars = sorted(KAFKA_LIB.glob("kafka_2.13-*.jar"))
    if not jars:
        raise EngineError(f"no Kafka jars in {KAFKA_LIB}: run .ci/provision.sh")
    return jars[-1].stem.removeprefix("kafka_2.13-")


def kafka_java(state: State, heap: str) -> list[str]:
    java = shutil.which("java") or "java"
    return [
        java,
        f"-Xmx{heap}",
        "-Xms128m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={state.path('log4j2.properties')}",
        f"-Dkafka.logs.dir={state.path('logs')}",
        "-cp",
        f"{KAFKA_LIB}/*",
    ]


def write_kafka_config(state: State, broker: int, controller: int) -> None:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller}",
        "listeners": f"PLAINTEXT://127.0.0.1:{broker},CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(state.path("data")),
        "num.partitions": "1",
        "auto.create.topics.enable": "true",
        # One node: every internal topic has one replica; fewer offsets partitions start faster.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # A broker restarted after SIGKILL waits out its previous session before it may register
        # again; a short session keeps fault tests' restarts quick.
        "broker.session.timeout.ms": "3000",
        "broker.heartbeat.interval.ms": "500",
        "num.io.threads": "2",
        "num.network.threads": "2",
    }
    state.path("server.properties").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    state.path("log4j2.properties").write_text(
        "status = error\n"
        "appender.file.type = File\nappender.file.name = file\n"
        f"appender.file.fileName = {state.path('logs')}/server.log\n"
        "appender.file.layout.type = PatternLayout\n"
        "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = INFO\nrootLogger.appenderRef.file.ref = file\n"
        f"logger.kafka.name = kafka\nlogger.kafka.level = {KAFKA_LOG_LEVEL}\n"
        f"logger.apache.name = org.apache.kafka\nlogger.apache.level = {KAFKA_LOG_LEVEL}\n"
    )


def cluster_id() -> str:
    """A random cluster id as Kafka writes them (URL-safe base64 of 16 bytes). One in 64 starts
    with '-', which the storage tool's argument parser reads as an option, so those are redrawn."""
    while (found := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))[0] == "-":
        pass
    return found


def format_kafka(state: State) -> None:
    if state.path("data/meta.properties").exists():
        return
    run(
        [
            *kafka_java(state, "256m"),
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id()}",
            f"--config={state.path('server.properties')}",
        ],
        "kafka storage format",
    )


def kafka_answers(bootstrap: str) -> bool:
    # The project's client, needed only by this probe. (mypy run on this file alone sees the
    # deploy/kafka/ folder beside it as the `kafka` package; Python finds the installed one.)
    from kafka import KafkaAdminClient  # type: ignore[attr-defined,unused-ignore]
    from kafka.errors import KafkaConfigurationError, KafkaError

    if not listening(bootstrap):
        return False
    quick = {"request_timeout_ms": 3000, "bootstrap_timeout_ms": 3000}
    config = {k: v for k, v in quick.items() if k in KafkaAdminClient.DEFAULT_CONFIG}
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, **config)
    except KafkaConfigurationError:
        raise
    except (KafkaError, OSError):
        return False
    try:
        # Ready once the broker has registered with the controller and is not fenced.
        brokers = admin.describe_cluster().get("brokers") or []
        return any(not broker.get("is_fenced", False) for broker in brokers)
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def check_client() -> None:
    """The probe's client (kafka-python) importable by this Python, before any broker starts: a
    Python without it found the deploy/kafka/ folder as `kafka` and failed after Java started,
    leaving the broker running (a review)."""
    try:
        from kafka import KafkaAdminClient  # type: ignore[attr-defined,unused-ignore]  # noqa: F401
    except ImportError:
        raise EngineError(
            f"kafka-python is not installed for {sys.executable}: run with the project's "
            "Python (PYTHON=.venv/bin/python deploy/kafka/start.sh, or `make install` first)"
        ) from None


def start_kafka(state: State) -> dict[str, str]:
    check_client()
    ports = state.ports("broker", "controller")
    bootstrap = f"127.0.0.1:{ports['broker']}"
    if state.running_pid() is None:
        state.path("logs").mkdir(exist_ok=True)
        write_kafka_config(state, ports["broker"], ports["controller"])
        format_kafka(state)
        spawn(
            [*kafka_java(state, KAFKA_HEAP), "kafka.Kafka", str(state.path("server.properties"))],
            state,
            "stdout.log",
        )
        wait_until(
            lambda: kafka_answers(bootstrap), state, "stdout.log", f"Kafka {kafka_version()}"
        )
    return {"KAFKA_BOOTSTRAP": bootstrap}
