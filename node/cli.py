"""The `xinlian` command line: keys, a local network, running a node, submitting a transaction.

Output is in Chinese (zh-CN) or English: `--lang`, else the LANG environment
variable (English unless it starts with "zh"). Exit status: 0 on success,
1 when the command failed, 2 for invalid arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

MESSAGES: dict[str, tuple[str, str]] = {
    # key: (English, Chinese)
    "key_written": ("Wrote key file {path} (mode 0600).\npublic key: {public_key}", "已写入密钥文件 {path}（权限 0600）。\n公钥：{public_key}"),
    "network_written": (
        "Wrote a {count}-node network to {directory}.\nStart it with: xinlian network up --dir {directory}",
        "已在 {directory} 生成 {count} 个节点的网络。\n启动：xinlian network up --dir {directory}",
    ),
    "network_member": ("  {member_id:<20} role {role:<14} p2p {p2p_port}  api http://127.0.0.1:{api_port}", "  {member_id:<20} 角色 {role:<14} p2p {p2p_port}  api http://127.0.0.1:{api_port}"),
    "node_started": ("started {member_id} (pid {pid}), log {log}", "已启动 {member_id}（进程 {pid}），日志 {log}"),
    "node_stopped": ("stopped {member_id}", "已停止 {member_id}"),
    "node_already_running": (
        "{member_id} is already running (pid {pid}); not started again",
        "{member_id} 已在运行（进程 {pid}），未重复启动",
    ),
    "node_start_failed": (
        "{member_id} (pid {pid}) exited right after it started; the end of {log}:",
        "{member_id}（进程 {pid}）启动后立即退出；{log} 的末尾：",
    ),
    "node_not_running": ("{member_id} was not running", "{member_id} 未在运行"),
    "status_header": (
        "member               pid      api                     height  view  primary          peers  syncing",
        "成员                 进程     api                     高度    视图  主节点           对等节点 同步中",
    ),
    "status_row": (
        "{member_id:<20} {pid:<8} {api_url:<23} {height:<7} {view:<5} {primary:<16} {peers:<6} {syncing}",
        "{member_id:<20} {pid:<8} {api_url:<23} {height:<7} {view:<5} {primary:<16} {peers:<6} {syncing}",
    ),
    "status_down": ("{member_id:<20} {pid:<8} {api_url:<23} (no answer from {api_url}/v1/status)", "{member_id:<20} {pid:<8} {api_url:<23} （{api_url}/v1/status 无响应）"),
    "syncing_yes": ("yes", "是"),
    "syncing_no": ("no", "否"),
    "tx_submitted": ("submitted {tx_id}, waiting for the receipt...", "已提交 {tx_id}，等待回执……"),
    "tx_committed": ("committed at height {height}, index {index}: {outcome}", "已上链，高度 {height}，序号 {index}：{outcome}"),
    "tx_ok": ("ok", "成功"),
    "tx_failed": ("rejected by rule, error code {code}", "被规则拒绝，错误码 {code}"),
    "error": ("error: {message}", "错误：{message}"),
    "invalid_payload": (
        "--payload is invalid: {reason}. Give a JSON object with integers only (no floats or NaN, each integer within the signed 64-bit range).",
        "--payload 无效：{reason}。请提供只含整数的 JSON 对象（不可有小数或 NaN，整数须在 64 位有符号整数范围内）。",
    ),
    "receipt_timeout": ("no receipt for {tx_id} within {seconds} s; check it later with GET /v1/transactions/{tx_id}", "{seconds} 秒内未收到 {tx_id} 的回执；稍后用 GET /v1/transactions/{tx_id} 查询"),
}


class Messages:
    def __init__(self, language: str) -> None:
        self.chinese = language == "zh-CN"

    def text(self, key: str, **values: Any) -> str:
        english, chinese = MESSAGES[key]
        return (chinese if self.chinese else english).format(**values)

    def say(self, key: str, **values: Any) -> None:
        print(self.text(key, **values))

    def fail(self, message: str) -> int:
        print(self.text("error", message=message), file=sys.stderr)
        return 1


def detect_language(explicit: str | None) -> str:
    if explicit:
        return explicit
    return "zh-CN" if os.environ.get("LANG", "").lower().startswith("zh") else "en"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xinlian", description="Xinlian (信链) consortium blockchain node and tools")
    parser.add_argument("--lang", choices=("zh-CN", "en"), help="language of the output (default: from LANG)")
    commands = parser.add_subparsers(dest="command", required=True)

    keygen = commands.add_parser("keygen", help="write a new ed25519 key file")
    keygen.add_argument("--out", required=True, type=Path, help="key file to create (mode 0600); must not exist")

    network = commands.add_parser("network", help="a local network on 127.0.0.1")
    network_commands = network.add_subparsers(dest="network_command", required=True)
    init = network_commands.add_parser("init", help="write genesis, keys and node configs into an empty directory")
    init.add_argument("--nodes", type=int, required=True, help="number of member nodes")
    init.add_argument("--dir", type=Path, required=True, help="network directory to create")
    init.add_argument("--roles", help="comma-separated roles, one per node (default: bank,credit_agency,collector,regulator,bank,...)")
    init.add_argument("--chain-id", default="xinlian-local", help="chain id (default: xinlian-local)")
    init.add_argument("--accelerated", action="store_true", help="run chain time faster than real time")
    init.add_argument("--speed", type=int, default=86_400, help="chain milliseconds per real millisecond (default 86400: one day per second)")
    init.add_argument("--start", default="2016-01-01", help="chain date (YYYY-MM-DD, +08:00) at which the accelerated clock starts")
    for name, help_text in (("up", "start every node in the background"), ("down", "stop every node (SIGTERM)"), ("status", "show the API URL, height, view, peers and syncing state of every node")):
        command = network_commands.add_parser(name, help=help_text)
        command.add_argument("--dir", type=Path, required=True, help="network directory")

    node = commands.add_parser("node", help="run a node")
    node_commands = node.add_subparsers(dest="node_command", required=True)
    run = node_commands.add_parser("run", help="run one node in the foreground until SIGTERM or SIGINT")
    run.add_argument("--config", type=Path, required=True, help="node config file (JSON)")

    tx = commands.add_parser("tx", help="transactions")
    tx_commands = tx.add_subparsers(dest="tx_command", required=True)
    submit = tx_commands.add_parser("submit", help="sign and submit one transaction, then wait for its receipt")
    submit.add_argument("--key", type=Path, required=True, help="client key file of the sender")
    submit.add_argument("--node", required=True, help="node API URL, for example http://127.0.0.1:7001")
    submit.add_argument("--type", required=True, dest="tx_type", help="transaction type, for example loan.register")
    submit.add_argument("--payload", required=True, help="payload as a JSON object")
    submit.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the receipt (default 30)")
    return parser


def run_keygen(args: argparse.Namespace, messages: Messages) -> int:
    from node.keys import KeyFileError, generate_key, write_key_file

    key = generate_key()
    try:
        path = write_key_file(args.out, key)
    except KeyFileError as exc:
        return messages.fail(str(exc))
    messages.say("key_written", path=path, public_key=key.public_key)
    return 0


def run_network(args: argparse.Namespace, messages: Messages) -> int:
    from node import localnet

    # Nodes run from the repository directory and are recognised by the config path on their
    # command line, so every network command must name the directory the same absolute way.
    args.dir = args.dir.resolve()
    try:
        if args.network_command == "init":
            return _network_init(args, messages)
        if args.network_command == "up":
            return _network_up(args, messages)
        if args.network_command == "down":
            for member_id, was_running in localnet.network_down(args.dir):
                messages.say("node_stopped" if was_running else "node_not_running", member_id=member_id)
            return 0
        return _network_status(args, messages)
    except localnet.NetworkError as exc:
        return messages.fail(str(exc))


def _network_up(args: argparse.Namespace, messages: Messages) -> int:
    from node import localnet

    failed = 0
    for result in localnet.network_up_checked(args.dir):
        log = args.dir / "nodes" / result.member_id / "node.log"
        if result.outcome == "started":
            messages.say("node_started", member_id=result.member_id, pid=result.pid, log=log)
        elif result.outcome == "already_running":
            messages.say("node_already_running", member_id=result.member_id, pid=result.pid if result.pid is not None else "?")
        else:
            failed += 1
            print(messages.text("node_start_failed", member_id=result.member_id, pid=result.pid, log=log), file=sys.stderr)
            print(result.log_tail, file=sys.stderr)
    return 1 if failed else 0


def _network_init(args: argparse.Namespace, messages: Messages) -> int:
    from node import localnet

    roles = tuple(role.strip() for role in args.roles.split(",")) if args.roles else ()
    options = localnet.InitOptions(
        nodes=args.nodes,
        roles=roles,
        chain_id=args.chain_id,
        accelerated=args.accelerated,
        speed=args.speed,
        start_ms=localnet.parse_start_date(args.start) if args.accelerated else None,
    )
    configs = localnet.init_network(args.dir, options)
    messages.say("network_written", count=len(configs), directory=args.dir)
    resolved_roles = roles or tuple(localnet.default_roles(args.nodes))
    for config, role in zip(configs, resolved_roles):
        messages.say("network_member", member_id=config.member_id, role=role, p2p_port=config.p2p_port, api_port=config.api_port)
    return 0


def _network_status(args: argparse.Namespace, messages: Messages) -> int:
    """Print each node's pid, API URL, height, view, primary, connected/configured peers and whether it is syncing."""
    from node import localnet

    messages.say("status_header")
    for row in localnet.network_status(args.dir):
        pid = row["pid"] if row["pid"] is not None else "-"
        api_url = f"http://127.0.0.1:{row['api_port']}"
        status = row["status"]
        if status is None:
            messages.say("status_down", member_id=row["member_id"], pid=pid, api_url=api_url)
            continue
        messages.say(
            "status_row",
            member_id=row["member_id"],
            pid=pid,
            api_url=api_url,
            height=status.get("height"),
            view=status.get("view"),
            primary=status.get("primary") or "-",
            peers=localnet.summarize_peers(status),
            syncing=messages.text("syncing_yes" if status.get("syncing") else "syncing_no"),
        )
    return 0


def run_node(args: argparse.Namespace, messages: Messages) -> int:
    from node.config import ConfigError, load_config
    from node.daemon import run_node_forever
    from node.logs import setup_logging

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return messages.fail(str(exc))
    setup_logging(config.log_level)
    return run_node_forever(config)


def run_tx(args: argparse.Namespace, messages: Messages) -> int:
    payload_or_reason = _parse_payload(args.payload)
    if isinstance(payload_or_reason, str):
        print(messages.text("error", message=messages.text("invalid_payload", reason=payload_or_reason)), file=sys.stderr)
        return 2
    return asyncio.run(_submit(args, payload_or_reason, messages))


def _parse_payload(text: str) -> dict[str, Any] | str:
    """Parse --payload with the node's strict JSON rules; return the object, or the reason it is invalid."""
    from node.canonical import CanonicalError, canonical_bytes, parse_json

    try:
        payload = parse_json(text)
        # Encoding catches values parse_json lets through but a signature cannot cover, such as lone surrogates.
        canonical_bytes(payload)
    except CanonicalError as exc:
        return f"{exc.code}: {exc}"
    except (ValueError, RecursionError) as exc:
        return str(exc) or type(exc).__name__
    if not isinstance(payload, dict):
        return f"expected a JSON object, got {type(payload).__name__}"
    return payload


async def _submit(args: argparse.Namespace, payload: dict[str, Any], messages: Messages) -> int:
    from node.client import ReceiptTimeout, XinlianApiError, XinlianClient
    from node.keys import KeyFileError, load_key_file

    try:
        key = load_key_file(args.key)
    except KeyFileError as exc:
        return messages.fail(str(exc))
    language = "zh-CN" if messages.chinese else "en"
    try:
        async with XinlianClient(args.node, key.seed, chain_id="", language=language) as probe:
            status = await probe.status()
        chain_clock = _chain_clock(status)
        client_options: dict[str, Any] = {"language": language, "clock_ms": chain_clock}
        expiry_window_ms = status.get("tx_expiry_window_ms")
        if type(expiry_window_ms) is int and expiry_window_ms > 0:
            # The genesis window may differ from the client's one-hour default, so expires_at is sized by the node's.
            client_options["expiry_window_ms"] = expiry_window_ms
        async with XinlianClient(args.node, key.seed, chain_id=status["chain_id"], **client_options) as client:
            tx_id = await client.submit(client.build_transaction(args.tx_type, payload))
            messages.say("tx_submitted", tx_id=tx_id)
            record = await client.wait_for_receipt(tx_id, args.timeout)
    except ReceiptTimeout as exc:
        return messages.fail(messages.text("receipt_timeout", tx_id=exc.tx_id, seconds=args.timeout))
    except XinlianApiError as exc:
        return messages.fail(f"{exc.code}: {exc}")
    except OSError as exc:
        return messages.fail(f"{args.node}: {exc}")
    receipt = record.get("receipt") or {}
    outcome = messages.text("tx_ok") if receipt.get("ok") else messages.text("tx_failed", code=receipt.get("error_code"))
    messages.say("tx_committed", height=record.get("height"), index=record.get("index"), outcome=outcome)
    print(json.dumps(record, ensure_ascii=False, indent=2))
    return 0 if receipt.get("ok") else 1


def _chain_clock(status: dict[str, Any]) -> Callable[[], int]:
    """Return a clock that follows the node's chain time, which runs fast on an accelerated network."""
    chain_time_ms = status.get("chain_time_ms")
    if not isinstance(chain_time_ms, int):
        return lambda: time.time_ns() // 1_000_000
    fetched_ms = time.monotonic_ns() // 1_000_000
    # NOTE: assumes real-time speed after the status read; submit right after reading it.
    return lambda: chain_time_ms + (time.monotonic_ns() // 1_000_000 - fetched_ms)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    messages = Messages(detect_language(args.lang))
    handlers = {"keygen": run_keygen, "network": run_network, "node": run_node, "tx": run_tx}
    return handlers[args.command](args, messages)


if __name__ == "__main__":
    sys.exit(main())
