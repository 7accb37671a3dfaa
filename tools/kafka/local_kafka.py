"""A real single-node Apache Kafka (KRaft) for tests and the demo, with no Docker.

The broker comes from Maven Central as jars (``pom.xml`` beside this file), cached in
``.cache/kafka/<version>``; it runs as one broker+controller process on 127.0.0.1 with free
ports, so parallel runs do not collide. State (pid, ports, folder) is written to a JSON file so
``stop`` can find the process again; ``run -- CMD`` starts, runs CMD with the bootstrap address
in ``TIDEWATCH_KAFKA__BOOTSTRAP`` and always stops, leaving no process behind.

Usage::

    python tools/kafka/local_kafka.py fetch
    python tools/kafka/local_kafka.py start [--state .run/kafka.json]
    python tools/kafka/local_kafka.py stop  [--state .run/kafka.json]
    python tools/kafka/local_kafka.py run -- pytest tests
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CACHE = Path(os.environ.get("TIDEWATCH_KAFKA_CACHE", ROOT / ".cache" / "kafka"))
DEFAULT_STATE = ROOT / ".run" / "kafka.json"
START_TIMEOUT_S = 90.0


def _kafka_version() -> str:
    text = (HERE / "pom.xml").read_text()
    return text.split("<kafka.version>")[1].split("</kafka.version>")[0].strip()


def fetch() -> Path:
    """Resolve the broker jars with Maven into the cache (once); return the jar folder."""
    libs = CACHE / _kafka_version() / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    libs.mkdir(parents=True, exist_ok=True)
    cmd = [
        "mvn", "-q", "-B", "-f", str(HERE / "pom.xml"),
        "dependency:copy-dependencies", "-DincludeScope=runtime",
        f"-DoutputDirectory={libs}",
    ]
    subprocess.run(cmd, check=True)
    # Two slf4j-api versions on one classpath: keep the newest so log4j2's binding is found.
    old = sorted(libs.glob("slf4j-api-1.*.jar"))
    for jar in old:
        jar.unlink()
    marker.touch()
    return libs


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _java(libs: Path, *args: str, **kw: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["java", "-cp", f"{libs}/*", *args], check=True, capture_output=True, **kw  # type: ignore[arg-type]
    )


def _answers(port: int) -> bool:
    """True once the broker's Kafka protocol answers (a metadata request with an admin client)."""
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", port)) != 0:
            return False
    try:
        from confluent_kafka.admin import AdminClient
    except ImportError:  # pragma: no cover - the venv always has it
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0
    admin = AdminClient(
        {"bootstrap.servers": f"127.0.0.1:{port}", "socket.timeout.ms": 2000, "log_level": 0}
    )
    try:
        meta = admin.list_topics(timeout=2)
        return len(meta.brokers) > 0
    except Exception:
        return False


def start(state_file: Path = DEFAULT_STATE) -> dict[str, object]:
    """Format a fresh KRaft storage folder, start the broker, wait until it answers."""
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if _alive(int(state["pid"])):
            return state
        state_file.unlink()
    libs = fetch()
    home = Path(tempfile.mkdtemp(prefix="tidewatch-kafka-"))
    port, controller = _free_port(), _free_port()
    props = home / "server.properties"
    props.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller}",
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={home / 'data'}",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=4",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=true",
                "log.retention.hours=168",
                "",
            ]
        )
    )
    cluster_id = _java(libs, "kafka.tools.StorageTool", "random-uuid").stdout.decode().split()[-1]
    _java(libs, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props))
    log = open(home / "broker.out", "wb")  # noqa: SIM115 - the child keeps it open
    proc = subprocess.Popen(
        [
            "java", "-Xms256m", "-Xmx768m", "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={home}",
            "-cp", f"{libs}/*", "kafka.Kafka", str(props),
        ],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    state = {"pid": proc.pid, "port": port, "controller_port": controller,
             "home": str(home), "bootstrap": f"127.0.0.1:{port}", "id": str(uuid.uuid4())}
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(state))
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stop(state_file)
            raise RuntimeError(f"Kafka exited at start; see {home / 'broker.out'}")
        if _answers(port):
            return state
        time.sleep(0.5)
    stop(state_file)
    raise RuntimeError(f"Kafka did not answer within {START_TIMEOUT_S:.0f} s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(state_file: Path = DEFAULT_STATE, keep_data: bool = False) -> None:
    """SIGTERM the broker (controlled shutdown), SIGKILL after 30 s, remove its folder."""
    if not state_file.exists():
        return
    state = json.loads(state_file.read_text())
    pid = int(state["pid"])
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.2)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    if not keep_data:
        shutil.rmtree(str(state["home"]), ignore_errors=True)
    state_file.unlink(missing_ok=True)


def run(cmd: list[str], state_file: Path) -> int:
    """Start the broker, run ``cmd`` with its address in the environment, always stop it."""
    # A SIGTERM (a CI timeout, a killed make) must stop the broker too, even while it is
    # starting: exit through the ``finally`` (subprocess.call kills the command on the way).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        state = start(state_file)
        env = dict(os.environ, TIDEWATCH_KAFKA__BOOTSTRAP=str(state["bootstrap"]))
        return subprocess.call(cmd, env=env)
    finally:
        stop(state_file)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["fetch", "start", "stop", "status", "run"])
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE)
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if args.command == "fetch":
        print(fetch())
    elif args.command == "start":
        print(json.dumps(start(args.state)))
    elif args.command == "stop":
        stop(args.state)
    elif args.command == "status":
        if not args.state.exists():
            print("stopped")
            return 1
        print(args.state.read_text())
    elif args.command == "run":
        if not rest:
            parser.error("run needs a command after --")
        return run(rest, args.state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
