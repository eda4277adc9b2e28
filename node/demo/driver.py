"""Run the Home Credit demo: start a local consortium, replay the loan book on its accelerated clock, summarise.

    scripts/demo.sh [--data-dir DIR] [--work-dir out/demo] [--lang zh-CN|en] [--clients N]
                    [--start-date YYYY-MM-DD] [--days-per-second N] [--case-threshold-days N] [--no-story]

Steps:
1. Write the network (node.demo.network). Store each subject's record in the
   off-chain store of the bank that registers it.
2. Start the five nodes and grant the collection mandates.
3. As soon as chain time reaches a day, send that day's transactions of the
   timeline (node.demo.timeline) from each bank's own node, without waiting for
   earlier ones to commit (node.demo.pacing). The collection agency works its
   cases as they open (node.demo.collector). The story scenes and credit
   assessments run beside the replay (node.demo.story).
4. Read the figures from the chain and compare them with the figures computed
   from the CSV files. Check that every node has the same state root, measure
   how far behind chain time the payments were booked, print the summary and
   write it as JSON.
The nodes are stopped at the end, also after an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp

from node.contracts.dates import add_days
from node.demo import network
from node.demo.chainio import ChainIO
from node.demo.collector import CollectionAgency
from node.demo.homecredit import INSTALMENTS_FILE, TERMS_FILE, DemoDataError, default_data_dir, load_book
from node.demo.mapping import BANK_A, BANK_B, MappedBook, map_book
from node.demo.collector import ContactHours
from node.demo.pacing import DaySubmitter
from node.demo.story import AssessmentPlan, StoryContext, run_assessments, run_story, subject_signing_key
from node.demo.summary import chain_figures, expected_figures, render, timing_figures
from node.demo.timeline import Timeline, build_timeline, consent_expiry, subject_record
from node.privacy.setup import open_node_privacy
from node.privacy.subject_id import load_consortium_secret

logger = logging.getLogger("xinlian.demo.driver")

# One chain day then lasts 125 real ms, and the whole book (2,911 days) about 6 minutes.
# NOTE: an estimate. A payment is booked on its day only when a block takes it within
# that time; the busiest day of the book has 23 events. On a 2-core machine with a
# load average of 12 to 15 from other work, 10 days per second booked half the
# payments late, while the shortened test replay at 5 kept every payment on its day.
DEFAULT_DAYS_PER_SECOND = 8
# Chain time starts this many real seconds before the first event day, so the nodes have
# time to connect before the first day's transactions are due.
LEAD_REAL_SECONDS = 5
STARTUP_TIMEOUT_S = 60.0
FINAL_RECEIPT_TIMEOUT_S = 120.0
EVALUATION_EVERY_DAYS = 300
ASSESSMENT_SUBJECTS_PER_DATE = 8
PROGRESS_INTERVAL_S = 0.25
# Transactions without a receipt, at most: the driver waits before sending more.
# Well below the nodes' default mempool bound of 20,000.
IN_FLIGHT_MAX = 5000


@dataclass(frozen=True)
class Options:
    data_dir: Path
    work_dir: Path
    language: str
    clients: int | None
    start_date: str | None
    days_per_second: int
    case_threshold_days: int
    story: bool = True


# ---- selecting and preparing the book ----


def select_book(mapped: MappedBook, clients: int | None, start_date: str | None) -> MappedBook:
    """Keep the first `clients` clients (by SK_ID_CURR) whose every loan starts on or after `start_date`."""
    by_client: dict[int, list] = defaultdict(list)
    for loan in mapped.loans:
        by_client[loan.client_id].append(loan)
    chosen = [client for client in sorted(by_client) if start_date is None or all(loan.start_date >= start_date for loan in by_client[client])]
    if clients is not None:
        chosen = chosen[:clients]
    keep = set(chosen)
    return replace(
        mapped,
        subjects=tuple(subject for subject in mapped.subjects if subject.client_id in keep),
        loans=tuple(loan for loan in mapped.loans if loan.client_id in keep),
    )


def store_subject_records(consortium: network.Consortium, mapped: MappedBook, timeline: Timeline, now_ms: int) -> dict[str, str]:
    """Store each subject's record, encrypted, in the off-chain store of the bank that registers it; return the commitments.

    Runs before the nodes start, because a running node holds its store's lock.
    """
    hasher = load_consortium_secret(consortium.secret_file)
    subjects = {hasher.subject_id(subject.id_number): subject for subject in mapped.subjects}
    registrar = {event["payload"]["subject_id"]: event["sender"] for event in timeline.events if event["type"] == "subject.register"}
    commitments = {}
    for member in consortium.by_role("bank"):
        privacy = open_node_privacy(consortium.directory / "nodes" / member.member_id / "data", consortium.secret_file)
        try:
            for subject_id in sorted(sid for sid, bank in registrar.items() if bank == member.member_id):
                commitments[subject_id] = privacy.store.put(subject_id, subject_record(subjects[subject_id]), now_ms).commitment
        finally:
            privacy.close()
    return commitments


def with_subject_keys(timeline: Timeline) -> Timeline:
    """Add each stand-in debtor's own public key to its subject.register, so the debtor can sign disputes."""
    events = []
    for event in timeline.events:
        if event["type"] == "subject.register":
            key = subject_signing_key(event["payload"]["subject_id"])
            event = dict(event, payload=dict(event["payload"], subject_key=key.verify_key.encode().hex()))
        events.append(event)
    return Timeline(events=tuple(events), dates=timeline.dates)


# ---- the replay ----


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, total_days: int, enabled: bool) -> None:
        self.total_days = max(1, total_days)
        self.enabled = enabled
        self._last = 0.0

    def show(self, day_index: int, date: str, io: ChainIO, agency: CollectionAgency, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < PROGRESS_INTERVAL_S):
            return
        self._last = now
        share = min(1.0, day_index / self.total_days)
        filled = int(share * 30)
        ok = io.tally.ok_by_type
        line = (
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {share * 100:5.1f}% {date}  "
            f"loans {ok['loan.register']}  payments {ok['repayment.record']}  cases {len(agency.loan_case)}/{len(agency.cases)}  "
            f"tx {io.tx_total}  blocks {io.height}  "
        )
        sys.stderr.write(line)
        sys.stderr.flush()

    def end(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _admin_events(banks: list[str], collector: str, first_date: str, as_of: str, threshold_days: int) -> dict[str, list[dict[str, Any]]]:
    """Mandates from the first day, evaluations of the collector every EVALUATION_EVERY_DAYS days and on the last day."""
    events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for bank in banks:
        mandate_id = f"mandate-{bank}-{collector}"
        events[first_date].append(
            {
                "sender": bank,
                "type": "mandate.grant",
                "nonce": f"mandate.grant:{mandate_id}",
                "payload": {"mandate_id": mandate_id, "agencies": [collector], "start_dpd": threshold_days + 1, "valid_from": first_date, "valid_until": add_days(as_of, 365), "commission_rate_bp": 1500},
            }
        )
        evaluation_dates = [first_date]
        while add_days(evaluation_dates[-1], EVALUATION_EVERY_DAYS) < as_of:
            evaluation_dates.append(add_days(evaluation_dates[-1], EVALUATION_EVERY_DAYS))
        # The last evaluation also gives the chain a block on `as_of`, so the time step runs on that day.
        for date in evaluation_dates + [as_of]:
            payload = {"mandate_id": mandate_id, "agency": collector, "evaluated_on": date, "rating": 4}
            events[date].append({"sender": bank, "type": "mandate.evaluate", "nonce": f"mandate.evaluate:{mandate_id}:{date}", "payload": payload})
    return events


async def replay(options: Options, consortium: network.Consortium, mapped: MappedBook, timeline: Timeline, as_of: str) -> dict[str, Any]:
    banks = [member.member_id for member in consortium.by_role("bank")]
    collector = consortium.by_role("collector")[0].member_id
    regulator = consortium.by_role("regulator")[0].member_id
    credit_agency = consortium.by_role("credit_agency")[0].member_id
    genesis = json.loads((consortium.directory / "genesis.json").read_text(encoding="utf-8"))

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        await network.wait_until_ready(session, consortium, STARTUP_TIMEOUT_S)
        io = ChainIO(consortium, session, genesis["chain_id"], genesis["utc_offset_minutes"])
        io.load_clock()
        io.start_following()
        agency = CollectionAgency(io, collector)
        agency.start()
        params = (await io.read("/v1/params"))["params"]
        hours = ContactHours.from_params(params, genesis["utc_offset_minutes"])

        first_date = timeline.dates[0]
        by_date: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in timeline.events:
            by_date[event["date"]].append(event)
        for date, events in _admin_events(banks, collector, first_date, as_of, options.case_threshold_days).items():
            by_date[date] = events + by_date[date] if date == first_date else by_date[date] + events
        dates = sorted(by_date)

        loans_info = _loan_info(timeline)
        side_tasks = [asyncio.create_task(agency.work_cases(hours))]
        story_context = StoryContext(io, agency, loans_info, regulator, hours)
        story_task = None
        if options.story:
            span = (len(dates) * 3) // 5
            story_task = asyncio.create_task(run_story(story_context, dates[span], add_days(as_of, -20)))
            side_tasks.append(story_task)
        assessment_plan = _assessment_plan(timeline, credit_agency, dates, mapped)
        assessment_task = asyncio.create_task(run_assessments(io, assessment_plan, params["scorecard_base_points"]))
        side_tasks.append(assessment_task)

        submitter = DaySubmitter(io, agency, IN_FLIGHT_MAX, FINAL_RECEIPT_TIMEOUT_S)
        progress = Progress(len(dates), enabled=True)
        started = time.monotonic()
        try:
            index = 0
            while index < len(dates):
                await io.wait_chain_time(io.day_start_ms(dates[index]))
                # A driver that fell behind chain time sends every day already due in one batch
                # (the payments are then booked late, which the summary reports as lag).
                today = io.local_date(io.now_ms())
                last = index
                while last + 1 < len(dates) and dates[last + 1] <= today:
                    last += 1
                await submitter.submit_day([event for date in dates[index : last + 1] for event in by_date[date]])
                index = last + 1
                progress.show(index, dates[last], io, agency)
                _raise_failed(side_tasks)
            await submitter.finish()
            for task in (story_task, assessment_task):
                if task is not None:
                    await task
            await io.wait_idle(FINAL_RECEIPT_TIMEOUT_S)
            # Cases opened by the last blocks: give the agency the chance to accept them.
            await agency.wait_worked(FINAL_RECEIPT_TIMEOUT_S)
            _raise_failed(side_tasks)
            await io.wait_idle(FINAL_RECEIPT_TIMEOUT_S)
            progress.show(len(dates), as_of, io, agency, force=True)
        finally:
            progress.end()
            for task in side_tasks:
                task.cancel()
            await asyncio.gather(*side_tasks, return_exceptions=True)
        replay_seconds = time.monotonic() - started

        roots = await _state_roots(session, consortium, io)
        await io.stop_following()
        await agency.stop()
        member_of = {BANK_A: banks[0], BANK_B: banks[1]}
        chain = await chain_figures(io, mapped, member_of, options.case_threshold_days, as_of, params)
        story_log = story_context.log.steps
        assessments = assessment_task.result()
        return {
            "first_date": first_date,
            "as_of": as_of,
            "case_threshold_days": options.case_threshold_days,
            "subjects_registered": io.tally.ok_by_type["subject.register"],
            "chain": chain,
            "committed_ok_by_type": dict(sorted(io.tally.ok_by_type.items())),
            "refusals_by_code": dict(sorted(io.tally.refused_by_code.items())),
            "refusals_by_type": dict(sorted(io.tally.refused_by_type.items())),
            "refusals_by_tag": {tag: dict(sorted(codes.items())) for tag, codes in sorted(io.tally.refused_by_tag.items())},
            "rejected_before_block": dict(sorted(io.tally.admission_rejected.items())),
            "refusal_examples": io.tally.refusal_examples,
            "story": story_log,
            "story_played": any(step["step"] == "chosen_case" for step in story_log),
            "timing": timing_figures(io, consortium.speed, submitter.deferred_events),
            "assessments": assessments,
            "event_stream_error": agency.stream_failed,
            "run": {
                "transactions": len(io.committed),
                "blocks": roots["height"],
                "replay_seconds": round(replay_seconds, 2),
                "transactions_per_second": len(io.committed) / replay_seconds if replay_seconds else 0.0,
                "days_per_second": options.days_per_second,
            },
            "state_roots": roots,
        }


def _raise_failed(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()


def _loan_info(timeline: Timeline) -> dict[str, dict[str, Any]]:
    info: dict[str, dict[str, Any]] = {}
    for event in timeline.events:
        payload = event["payload"]
        if event["type"] == "loan.register":
            info[payload["loan_id"]] = {"subject_id": payload["subject_id"], "creditor": event["sender"], "payment_dates": []}
        elif event["type"] == "repayment.record":
            info[payload["loan_id"]]["payment_dates"].append(payload["paid_on"])
    return info


def _assessment_plan(timeline: Timeline, agency: str, dates: list[str], mapped: MappedBook) -> AssessmentPlan:
    """Four dates spread over the replay; on each, the first subjects (by id) that hold a loan by then."""
    plan_dates = sorted({dates[(len(dates) * share) // 4] for share in (1, 2, 3)} | {dates[-1]})
    loans_by_subject: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for event in timeline.events:
        if event["type"] == "loan.register":
            loans_by_subject[event["payload"]["subject_id"]].append((event["date"], event["payload"]["loan_id"]))
    subjects = {}
    for date in plan_dates:
        holders = sorted(subject for subject, loans in loans_by_subject.items() if any(start < date for start, _ in loans))
        subjects[date] = [(subject, ",".join(loan_id for start, loan_id in loans_by_subject[subject] if start < date)) for subject in holders[:ASSESSMENT_SUBJECTS_PER_DATE]]
    return AssessmentPlan(agency=agency, dates=plan_dates, subjects=subjects, consent_expires_on=consent_expiry(mapped.reference_date))


async def _state_roots(session: aiohttp.ClientSession, consortium: network.Consortium, io: ChainIO) -> dict[str, Any]:
    """Wait until all nodes reach the same height with empty mempools, then compare their state roots."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FINAL_RECEIPT_TIMEOUT_S
    while True:
        statuses = await asyncio.gather(*(network.fetch_status(session, member.api_url) for member in consortium.members))
        heights = {status["height"] for status in statuses if status is not None}
        settled = all(status is not None and status["mempool_size"] == 0 for status in statuses) and len(heights) == 1
        if settled or loop.time() > deadline:
            break
        await asyncio.sleep(0.1)
    by_node = {member.member_id: (status or {}).get("state_root", "") for member, status in zip(consortium.members, statuses, strict=True)}
    return {
        "height": max(heights) if heights else 0,
        "same_height": len(heights) == 1,
        "identical": len(heights) == 1 and len(set(by_node.values())) == 1,
        "by_node": by_node,
    }


# ---- entry point ----


def prepare_work_dir(work_dir: Path) -> Path:
    """Return a fresh network directory under `work_dir`, removing the previous demo network there."""
    network_dir = work_dir / "network"
    if network_dir.exists():
        if not (network_dir / "genesis.json").exists():
            raise SystemExit(f"{network_dir} exists but contains no demo network (no genesis.json): choose another --work-dir / 该目录不是演示网络（没有 genesis.json），请换一个 --work-dir")
        shutil.rmtree(network_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    return network_dir


def run(options: Options) -> dict[str, Any]:
    book = load_book(options.data_dir)
    mapped = select_book(map_book(book), options.clients, options.start_date)
    if not mapped.loans:
        raise SystemExit("no loans match --clients / --start-date / 没有符合 --clients / --start-date 的贷款")
    draft = build_timeline(mapped, lambda id_number: "0" * 64)
    first_date = draft.dates[0]
    as_of = add_days(draft.dates[-1], 1)
    speed = options.days_per_second * network.DAY_MS // 1000
    lead_days = LEAD_REAL_SECONDS * options.days_per_second
    network_dir = prepare_work_dir(options.work_dir)
    consortium = network.init_consortium(network_dir, speed, add_days(first_date, -lead_days))

    banks = [member.member_id for member in consortium.by_role("bank")]
    members = {BANK_A: banks[0], BANK_B: banks[1]}
    hasher = load_consortium_secret(consortium.secret_file)
    plain = build_timeline(mapped, hasher.subject_id, members=members)
    commitments = store_subject_records(consortium, mapped, plain, int(time.time() * 1000))
    timeline = build_timeline(mapped, hasher.subject_id, members=members, commitment_of=lambda subject, subject_id: commitments[subject_id])
    timeline = with_subject_keys(timeline)

    started = time.monotonic()
    network.start(consortium)
    try:
        summary = asyncio.run(replay(options, consortium, mapped, timeline, as_of))
    finally:
        network.stop(consortium)
    summary["expected"] = expected_figures(options.data_dir, mapped, options.case_threshold_days, as_of)
    summary["run"]["wall_seconds"] = round(time.monotonic() - started, 2)
    summary["selection"] = {"clients": options.clients, "start_date": options.start_date, "loans": len(mapped.loans), "subjects": len(mapped.subjects)}
    return summary


def resolve_data_dir(value: str | None) -> Path:
    """Return the data directory (the option, or the default next to the repository) after checking both files are there."""
    directory = Path(value) if value else default_data_dir()
    missing = [name for name in (INSTALMENTS_FILE, TERMS_FILE) if not (directory / name).is_file()]
    if not missing:
        return directory
    if directory.is_dir():
        problem_zh, problem_en = f"目录 {directory} 中缺少 {'、'.join(missing)}", f"{directory} is missing {', '.join(missing)}"
    else:
        problem_zh, problem_en = f"目录 {directory} 不存在", f"the directory {directory} does not exist"
    raise DemoDataError(
        "missing_file",
        f"找不到演示数据：{problem_zh}。演示需要 Home Credit 数据子集的两个文件 {INSTALMENTS_FILE} 和 {TERMS_FILE}，"
        f"默认目录为 {default_data_dir()}。请用 --data-dir 指定包含这两个文件的目录。",
        f"Demo data not found: {problem_en}. The demo needs the two files of the Home Credit subset, {INSTALMENTS_FILE} and "
        f"{TERMS_FILE}; the default directory is {default_data_dir()}. Pass --data-dir with a directory that contains both files.",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/demo.sh",
        description=(
            "Replay the Home Credit loan book on a local five-node Xinlian consortium and print a summary checked against the CSV files.\n"
            "在本地五节点信链联盟上回放 Home Credit 贷款数据，并输出与 CSV 文件核对过的汇总。"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help=f"directory with {INSTALMENTS_FILE} and {TERMS_FILE} (default: {default_data_dir()}) / 含上述两个文件的数据目录（默认值见括号）",
    )
    parser.add_argument("--work-dir", metavar="DIR", default="out/demo", type=Path, help="directory for the network and summary.json; its network/ is replaced (default out/demo) / 网络与 summary.json 的目录，其中 network/ 会被重建")
    parser.add_argument("--lang", choices=("zh-CN", "en"), default="zh-CN", help="language of the summary (default zh-CN) / 汇总的语言")
    parser.add_argument("--clients", metavar="N", type=int, help="replay only the first N clients by SK_ID_CURR (default: all) / 只回放前 N 个客户")
    parser.add_argument("--start-date", metavar="YYYY-MM-DD", help="replay only clients whose loans all start on or after this date / 只回放所有贷款都在该日期及以后开始的客户")
    parser.add_argument(
        "--days-per-second",
        metavar="N",
        type=int,
        default=DEFAULT_DAYS_PER_SECOND,
        help=f"speed of the accelerated clock, chain days per real second (default {DEFAULT_DAYS_PER_SECOND}) / 加速时钟速度：每真实秒的链上天数",
    )
    parser.add_argument("--case-threshold-days", metavar="N", type=int, default=90, help="a collection case opens when a loan is more than N days past due (default 90) / 逾期超过 N 天即立催收案件")
    parser.add_argument("--no-story", action="store_true", help="skip the scripted rule breaks, dispute and complaint / 不演示违规尝试、异议和投诉")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        data_dir = resolve_data_dir(args.data_dir)
    except DemoDataError as exc:
        print(exc, file=sys.stderr)
        return 2
    options = Options(
        data_dir=data_dir,
        work_dir=args.work_dir,
        language=args.lang,
        clients=args.clients,
        start_date=args.start_date,
        days_per_second=args.days_per_second,
        case_threshold_days=args.case_threshold_days,
        story=not args.no_story,
    )
    try:
        summary = run(options)
    except KeyboardInterrupt:
        print("\n已中断，节点已停止。/ Interrupted; the nodes were stopped.", file=sys.stderr)
        return 130
    path = options.work_dir / "summary.json"
    path.write_text(json.dumps(summary, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    print(render(summary, options.language))
    print(f"\nJSON: {path}")
    return 0 if summary["state_roots"]["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
