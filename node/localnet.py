"""A local consortium on 127.0.0.1: write its files, start and stop its nodes, read their status.

Layout of a network directory:

    genesis.json                      the shared genesis
    consortium_secret.hex             the shared subject-id secret (mode 0600)
    nodes/<member_id>/config.json     that node's config
    nodes/<member_id>/node_key.json   that node's key (mode 0600)
    nodes/<member_id>/data/           chain/ (its LevelDB) and privacy/, created on first start
    nodes/<member_id>/node.pid        written by `up`, removed by `down` (nodes without one are found by command line)
    nodes/<member_id>/node.log        the node's stdout and stderr
    clients/<member_id>.json          a client key of each member, for `xinlian tx submit`
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from node.clock import system_now_ms
from node.config import ClockConfig, NodeConfig, PeerConfig, dump_config, load_config
from node.genesis import Genesis, GenesisLimits, GenesisMember, save_genesis
from node.keys import generate_key, write_key_file
from node.p2p import PEER_PATH
from node.privacy.subject_id import write_consortium_secret

ROLE_ORDER = ("bank", "credit_agency", "collector", "regulator")
ROLE_NAMES = {
    "bank": "Bank",
    "credit_agency": "Credit agency",
    "collector": "Collection agency",
    "regulator": "Regulator",
}
DEFAULT_CHAIN_ID = "xinlian-local"
CHINA_UTC_OFFSET_MINUTES = 480
# On an accelerated clock the chain-time limits are widened so they still span this much real time:
# a transaction may be signed ACCELERATED_EXPIRY_REAL_MS before it expires, and a proposal's
# timestamp may differ from a replica's clock by ACCELERATED_DRIFT_REAL_MS.
ACCELERATED_EXPIRY_REAL_MS = 30_000
ACCELERATED_DRIFT_REAL_MS = 1_000


# How long `network_up_checked` waits before checking that each started node is still alive.
# NOTE: a node that fails later than this (after a slow start) is still reported as started.
STARTUP_GRACE_S = 2.0


class NetworkError(RuntimeError):
    pass


def default_roles(count: int) -> list[str]:
    return [ROLE_ORDER[index % len(ROLE_ORDER)] for index in range(count)]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Return `count` distinct TCP ports that were free on `host` a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def parse_start_date(text: str, utc_offset_minutes: int = CHINA_UTC_OFFSET_MINUTES) -> int:
    """Return unix ms of midnight of YYYY-MM-DD in the consortium's fixed UTC offset."""
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        raise NetworkError(f"invalid start date {text!r}: use YYYY-MM-DD") from None
    zone = datetime.timezone(datetime.timedelta(minutes=utc_offset_minutes))
    return int(datetime.datetime(day.year, day.month, day.day, tzinfo=zone).timestamp() * 1000)


@dataclass(frozen=True)
class InitOptions:
    nodes: int
    roles: tuple[str, ...] = ()
    chain_id: str = DEFAULT_CHAIN_ID
    accelerated: bool = False
    speed: int = 86_400  # one chain day per real second
    start_ms: int | None = None  # chain time at which the accelerated clock starts
    node_settings: dict[str, Any] | None = None  # extra NodeConfig fields for every node (tests use fast timeouts)
    validator_count: int | None = None  # the first this many members validate; None means all


def genesis_limits(speed: int) -> GenesisLimits:
    """Return the genesis limits for a clock running `speed` chain ms per real ms (1 for the system clock).

    The defaults are chain-time spans: one hour of transaction expiry and 30 s of
    block time drift. At one chain day per real second the hour would last 42 real
    ms, so an accelerated network gets max(default, speed * real span) instead.
    """
    defaults = GenesisLimits()
    if speed <= 1:
        return defaults
    return GenesisLimits(
        tx_expiry_window_ms=max(defaults.tx_expiry_window_ms, speed * ACCELERATED_EXPIRY_REAL_MS),
        block_time_drift_ms=max(defaults.block_time_drift_ms, speed * ACCELERATED_DRIFT_REAL_MS),
    )


def init_network(directory: Path, options: InitOptions) -> list[NodeConfig]:
    """Write genesis, keys and one config per node into `directory` (which must be empty or absent).

    Returns the configs as `load_config` would read them, with absolute paths.
    """
    directory = directory.resolve()
    if options.nodes < 1:
        raise NetworkError("a network needs at least one node")
    roles = list(options.roles) or default_roles(options.nodes)
    if len(roles) != options.nodes:
        raise NetworkError(f"--roles lists {len(roles)} roles for {options.nodes} nodes")
    for role in roles:
        if role not in ROLE_ORDER:
            raise NetworkError(f"unknown role {role!r}: use one of {', '.join(ROLE_ORDER)}")
    if "regulator" not in roles:
        raise NetworkError("a consortium needs a regulator: add regulator to --roles")
    validator_count = options.validator_count if options.validator_count is not None else options.nodes
    if not 1 <= validator_count <= options.nodes:
        raise NetworkError(f"validator count {validator_count} must be between 1 and the number of nodes {options.nodes}")
    if directory.exists() and any(directory.iterdir()):
        raise NetworkError(f"directory {directory} is not empty; choose a new directory")
    directory.mkdir(parents=True, exist_ok=True)

    member_ids = [f"{role.replace('_', '-')}-{index + 1}" for index, role in enumerate(roles)]
    ports = free_ports(2 * options.nodes)
    node_keys = [generate_key() for _ in member_ids]
    client_keys = [generate_key() for _ in member_ids]
    for member_id, key in zip(member_ids, client_keys):
        write_key_file(directory / "clients" / f"{member_id}.json", key)
    write_consortium_secret(directory / "consortium_secret.hex")

    members = []
    for index, (member_id, role) in enumerate(zip(member_ids, roles)):
        members.append(
            GenesisMember(
                member_id=member_id,
                name=f"{ROLE_NAMES[role]} {index + 1}",
                role=role,  # type: ignore[arg-type]
                node_key=node_keys[index].public_key,
                client_keys=(client_keys[index].public_key,),
                p2p_url=f"ws://127.0.0.1:{ports[2 * index]}{PEER_PATH}",
                api_url=f"http://127.0.0.1:{ports[2 * index + 1]}",
                licensed=role == "credit_agency",
            )
        )
    if options.accelerated:
        start_ms = options.start_ms if options.start_ms is not None else parse_start_date("2016-01-01")
        clock = ClockConfig(mode="accelerated", real_epoch_ms=0, chain_epoch_ms=start_ms, speed=options.speed)
        genesis_time_ms = start_ms
    else:
        clock = ClockConfig()
        genesis_time_ms = system_now_ms()
    genesis = Genesis(
        chain_id=options.chain_id,
        genesis_time_ms=genesis_time_ms,
        utc_offset_minutes=CHINA_UTC_OFFSET_MINUTES,
        members=tuple(members),
        validators=tuple(member_ids[:validator_count]),
        limits=genesis_limits(options.speed if options.accelerated else 1),
    )
    save_genesis(directory / "genesis.json", genesis)

    configs = []
    for index, member_id in enumerate(member_ids):
        node_dir = directory / "nodes" / member_id
        write_key_file(node_dir / "node_key.json", node_keys[index])
        peers = tuple(
            PeerConfig(member_id=other.member_id, node_key=other.node_key, url=other.p2p_url)
            for other in members
            if other.member_id != member_id
        )
        fields: dict[str, Any] = {
            "member_id": member_id,
            "data_dir": Path("data"),
            "node_key_file": Path("node_key.json"),
            "genesis_file": Path("../../genesis.json"),
            "privacy_secret_file": Path("../../consortium_secret.hex"),
            "p2p_port": ports[2 * index],
            "api_port": ports[2 * index + 1],
            "peers": peers,
            "clock": clock,
        }
        fields.update(options.node_settings or {})
        config = NodeConfig.model_validate(fields)
        (node_dir / "config.json").write_text(dump_config(config), encoding="utf-8")
        configs.append(config.resolve_paths(node_dir.resolve()))
    return configs


def node_dirs(directory: Path) -> list[Path]:
    """Return the absolute directory of every node of the network, sorted by member id."""
    nodes_dir = directory.resolve() / "nodes"
    if not nodes_dir.is_dir():
        raise NetworkError(f"{directory} is not a network directory: {nodes_dir} is missing (run `xinlian network init` first)")
    return sorted(path for path in nodes_dir.iterdir() if (path / "config.json").is_file())


def _read_pid(node_dir: Path) -> int | None:
    try:
        return int((node_dir / "node.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def running_pid(node_dir: Path) -> int | None:
    """Return the pid of the process that runs this node's config, or None.

    The pid file comes first. A node started with `xinlian node run` directly
    has no pid file, and a node that got `kill -9` leaves a stale one, so
    without a live pid file the running processes are searched for one whose
    `--config` names this node's config.json.
    """
    # `start_node` passes the absolute config path, so a relative node_dir must be resolved to match it.
    node_dir = node_dir.resolve()
    config_path = node_dir / "config.json"
    pid = _read_pid(node_dir)
    if pid is not None and _runs_config(pid, config_path):
        return pid
    return _find_config_process(config_path)


def _runs_config(pid: int, config_path: Path) -> bool:
    """Return whether process `pid` is a node running `config_path` (Linux /proc)."""
    # A recycled pid belongs to some other program, which must never get our signals.
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\x00")
    except OSError:
        return False
    named = _config_argument(arguments)
    if named is None:
        return False
    if not named.is_absolute():
        try:
            named = Path(os.readlink(f"/proc/{pid}/cwd")) / named
        except OSError:
            return False
    return os.path.normpath(named) == os.path.normpath(config_path)


def _config_argument(arguments: list[bytes]) -> Path | None:
    """Return the `--config` value of a `node run` command line, or None for any other command."""
    if b"node" not in arguments or b"run" not in arguments:
        return None
    for index, argument in enumerate(arguments):
        if argument == b"--config" and index + 1 < len(arguments):
            return Path(os.fsdecode(arguments[index + 1]))
        if argument.startswith(b"--config="):
            return Path(os.fsdecode(argument[len(b"--config=") :]))
    return None


def _find_config_process(config_path: Path) -> int | None:
    own_pid = os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in sorted(entries):
        if entry.isdigit() and int(entry) != own_pid and _runs_config(int(entry), config_path):
            return int(entry)
    return None


def node_command(config_path: Path) -> list[str]:
    return [sys.executable, "-m", "node.cli", "node", "run", "--config", str(config_path)]


def set_shared_clock_epoch(directory: Path) -> None:
    """Give every accelerated clock of the network the same real epoch, once, at the first start."""
    paths = [path / "config.json" for path in node_dirs(directory)]
    configs = [(path, json.loads(path.read_text(encoding="utf-8"))) for path in paths]
    pending = [(path, data) for path, data in configs if data.get("clock", {}).get("mode") == "accelerated" and not data["clock"].get("real_epoch_ms")]
    if not pending:
        return
    epoch_ms = system_now_ms()
    for path, data in pending:
        data["clock"]["real_epoch_ms"] = epoch_ms
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def start_node(node_dir: Path, environment: dict[str, str] | None = None) -> int:
    """Start one node as a background process; return its pid.

    The process runs in the repository root, so it gets the absolute config path.
    """
    node_dir = node_dir.resolve()
    pid = running_pid(node_dir)
    if pid is not None:
        return pid
    log_file = open(node_dir / "node.log", "ab")
    try:
        process = subprocess.Popen(
            node_command(node_dir / "config.json"),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=environment,
            cwd=str(Path(__file__).resolve().parent.parent),
        )
    finally:
        log_file.close()
    (node_dir / "node.pid").write_text(f"{process.pid}\n")
    return process.pid


def network_up(directory: Path) -> list[tuple[str, int]]:
    """Start every node that is not running; return (member id, pid) of each, without checking that it stays up."""
    set_shared_clock_epoch(directory)
    return [(node_dir.name, start_node(node_dir)) for node_dir in node_dirs(directory)]


@dataclass(frozen=True)
class NodeStart:
    """The outcome of starting one node: `started`, `already_running` or `failed` (with the end of its log)."""

    member_id: str
    outcome: str
    pid: int | None
    log_tail: str = ""


def network_up_checked(directory: Path, grace_s: float = STARTUP_GRACE_S) -> list[NodeStart]:
    """Start every node that is not running, then check that each new process is still alive after `grace_s`.

    A node counts as already running if a process runs its config or its API
    port returns /v1/status with its member id. A new process that exits
    within the grace period (for example because another process holds its
    LevelDB lock) is reported as failed with the tail of its log.
    """
    set_shared_clock_epoch(directory)
    results: list[NodeStart] = []
    launched: list[tuple[Path, int]] = []
    for node_dir in node_dirs(directory):
        node_dir = node_dir.resolve()
        pid = running_pid(node_dir)
        if pid is None and _api_answers_as(node_dir):
            results.append(NodeStart(node_dir.name, "already_running", None))
            continue
        if pid is not None:
            results.append(NodeStart(node_dir.name, "already_running", pid))
            continue
        launched.append((node_dir, start_node(node_dir)))
    time.sleep(grace_s if launched else 0)
    for node_dir, pid in launched:
        _reap(pid)
        if _runs_config(pid, node_dir / "config.json"):
            results.append(NodeStart(node_dir.name, "started", pid))
        else:
            (node_dir / "node.pid").unlink(missing_ok=True)
            results.append(NodeStart(node_dir.name, "failed", pid, log_tail(node_dir / "node.log")))
    order = {node_dir.name: index for index, node_dir in enumerate(node_dirs(directory))}
    return sorted(results, key=lambda result: order[result.member_id])


def _api_answers_as(node_dir: Path) -> bool:
    config = load_config(node_dir / "config.json")
    status = fetch_status(f"http://{config.api_host}:{config.api_port}", timeout_s=1.0)
    return status is not None and status.get("node_id") == config.member_id


def log_tail(path: Path, lines_max: int = 10) -> str:
    """Return the last `lines_max` lines of a log file, or an empty string if it cannot be read."""
    try:
        with open(path, "rb") as log_file:
            log_file.seek(0, os.SEEK_END)
            log_file.seek(max(0, log_file.tell() - 8192))
            text = log_file.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines_max:])


def stop_node(node_dir: Path, timeout_s: float = 10.0) -> bool:
    """SIGTERM the node if it runs, wait up to timeout_s for it to exit; return whether it was running."""
    node_dir = node_dir.resolve()
    pid = running_pid(node_dir)
    if pid is None:
        (node_dir / "node.pid").unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and running_pid(node_dir) is not None:
        _reap(pid)
        time.sleep(0.05)
    if running_pid(node_dir) is not None:
        raise NetworkError(f"node {node_dir.name} (pid {pid}) did not exit within {timeout_s:.0f} s of SIGTERM")
    (node_dir / "node.pid").unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    # A node started by this same process stays a zombie (and keeps its /proc entry) until reaped.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def network_down(directory: Path) -> list[tuple[str, bool]]:
    return [(node_dir.name, stop_node(node_dir)) for node_dir in node_dirs(directory)]


def fetch_status(api_url: str, timeout_s: float = 2.0) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{api_url}/v1/status", timeout=timeout_s) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def network_status(directory: Path) -> list[dict[str, Any]]:
    rows = []
    for node_dir in node_dirs(directory):
        config = load_config(node_dir / "config.json")
        status = fetch_status(f"http://{config.api_host}:{config.api_port}")
        rows.append({"member_id": config.member_id, "pid": running_pid(node_dir), "api_port": config.api_port, "status": status})
    return rows


def summarize_peers(status: dict[str, Any]) -> str:
    peers: Sequence[dict[str, Any]] = status.get("peers") or []
    connected = sum(1 for peer in peers if peer.get("connected"))
    return f"{connected}/{len(peers)}"
