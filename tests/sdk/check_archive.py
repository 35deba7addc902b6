"""Checks what `uniflow dev` archived against what the SDKs sent (standard
library only; any Python 3.8+).

Usage: python3 check_archive.py --data DATA_DIR --sent SENT_DIR [--clients a,b,...]

SENT_DIR holds one <client>.json per SDK client, written by send_python.py
and send_node.mjs: the requests as they went on the wire, the server's
answers, the messageIds the SDK said it enqueued, the errors it reported.
DATA_DIR is the data directory of the stopped `uniflow dev`; every
`*.json.gz` under DATA_DIR/archive is read.

Asserted, with a message naming the client, the call and the messageId:
  - the wire: POST /v1/batch, JSON, HTTP Basic auth with the write key,
    gzip exactly when the client was set up with it (header and bytes), a
    `batch` array and a `sentAt`, several messages per request somewhere;
    every answer 200 and, where the SDK exposes it, no message rejected or
    quarantined; no SDK error; every messageId the SDK enqueued went out;
  - every messageId sent is archived exactly once under archive/raw, and
    never under archive/violations; nothing else is archived;
  - each archived event is the sent message, field for field (event,
    properties, traits, userId, anonymousId, context.library, integrations,
    everything else the SDK put there), plus only what ingest adds:
    receivedAt (ISO, UTC, in the file's hour partition), sentAt (the
    request's, verbatim), originalTimestamp (the SDK's timestamp, verbatim),
    timestamp (receivedAt - (sentAt - originalTimestamp)), context.ip ==
    127.0.0.1, sourceId == order-backend, type; no writeKey anywhere, and
    the write key's value nowhere in the archive.

The last line is `sdk-e2e: N passed, M failed` (one case per message, one
per client's wire traffic, one for the archive as a whole); exit status 1
when M > 0, 2 when the inputs are missing.
"""

import argparse
import gzip
import json
import re
import sys
from pathlib import Path

# The clients the senders run, and whether each was set up to gzip.
CLIENTS = {
    "segment-python": {"gzip": False},
    "segment-python-gzip": {"gzip": True},
    "rudder-python": {"gzip": True},
    "rudder-python-module": {"gzip": False},
    "segment-node": {"gzip": False},
}
SOURCE = "order-backend"
PEER_IP = "127.0.0.1"
# What ingest may add to a message, besides `ip` inside `context`.
ADDED = {"receivedAt", "sentAt", "originalTimestamp", "timestamp", "sourceId", "messageId", "type"}
# The form uniflow writes its own timestamps in (receivedAt, timestamp).
CANONICAL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ISO = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:([Zz])|([+-])(\d\d):?(\d\d))$"
)


def days_from_civil(y, m, d):
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def iso_ms(text):
    """Epoch milliseconds of an ISO 8601 date-time with a zone (the fraction
    truncated to milliseconds, as uniflow does), or None."""
    if not isinstance(text, str):
        return None
    m = ISO.match(text)
    if not m:
        return None
    y, mo, d, h, mi, s, frac, z, sign, oh, om = m.groups()
    y, mo, d, h, mi, s = int(y), int(mo), int(d), int(h), int(mi), int(s)
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59 and s <= 60):
        return None
    ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60_000 + min(s, 59) * 1000
    if frac:
        ms += int((frac + "00")[:3])
    if not z:
        offset = (int(oh) * 60 + int(om)) * 60_000
        ms = ms - offset if sign == "+" else ms + offset
    return ms


def canon(value):
    """JSON text that tells 1 from 1.0 and true from 1, for equality."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def has_key(value, key):
    if isinstance(value, dict):
        return key in value or any(has_key(v, key) for v in value.values())
    if isinstance(value, list):
        return any(has_key(v, key) for v in value)
    return False


def short(value, limit=300):
    text = canon(value)
    return text if len(text) <= limit else text[:limit] + "..."


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.lines = []

    def case(self, title, problems):
        if problems:
            self.failed += 1
            self.lines.append(f"FAIL {title}")
            self.lines.extend(f"     - {p}" for p in problems)
        else:
            self.passed += 1


def describe(m):
    what = m.get("type", "?")
    if what == "track":
        what += f" {m.get('event')!r}"
    elif what in ("page", "screen"):
        what += f" name={m.get('name')!r}"
    return f"{what} messageId={m.get('messageId')}"


def check_wire(name, rec, write_key, expect_gzip):
    problems = []
    if rec.get("expect_gzip") != expect_gzip:
        problems.append(f"the sender says expect_gzip={rec.get('expect_gzip')}, the checker expects {expect_gzip}")
    requests = rec.get("requests", [])
    if not requests:
        problems.append("no request was observed")
    for i, r in enumerate(requests):
        where = f"request {i + 1} ({r.get('method')} {r.get('path')})"
        if r.get("method") != "POST" or r.get("path") != "/v1/batch":
            problems.append(f"{where}: expected POST /v1/batch")
        headers = {k.lower(): v for k, v in (r.get("headers") or {}).items()}
        if not headers.get("content-type", "").startswith("application/json"):
            problems.append(f"{where}: Content-Type {headers.get('content-type')!r}, expected application/json")
        if r.get("auth") != "basic" or r.get("basic_user") != write_key:
            problems.append(
                f"{where}: expected HTTP Basic auth with the write key as user name, "
                f"got {r.get('auth')!r} auth with user {r.get('basic_user')!r}"
            )
        encoding = headers.get("content-encoding")
        if expect_gzip:
            if encoding != "gzip" or not r.get("gzip_magic"):
                problems.append(
                    f"{where}: gzip was on but Content-Encoding is {encoding!r} and the body "
                    f"{'starts' if r.get('gzip_magic') else 'does not start'} with the gzip magic bytes"
                )
        elif encoding not in (None, "identity") or r.get("gzip_magic"):
            problems.append(f"{where}: gzip was off but Content-Encoding is {encoding!r}")
        body = r.get("body")
        if not isinstance(body, dict) or not isinstance(body.get("batch"), list) or not body["batch"]:
            problems.append(f"{where}: the body is not {{\"batch\": [messages]}}: {short(body)}")
            continue
        if iso_ms(body.get("sentAt")) is None:
            problems.append(f"{where}: the body has no ISO sentAt: {body.get('sentAt')!r}")
        if r.get("status") != 200:
            problems.append(f"{where}: answered {r.get('status')}: {short(r.get('answer'))}")
        answer = r.get("answer")
        if isinstance(answer, dict) and "success" in answer:
            for kind in ("rejected", "quarantined"):
                for item in answer.get(kind) or []:
                    problems.append(
                        f"{where}: answered {r.get('status')} but {kind} messageId={item.get('messageId')}: "
                        f"{short(item.get('issues'))}"
                    )
            if answer.get("success") is not True:
                problems.append(f"{where}: answer without success=true: {short(answer)}")
    if requests and max(len((r.get("body") or {}).get("batch") or []) for r in requests) < 2:
        problems.append("no request carried more than one message: the SDK did not batch")
    for e in rec.get("errors", []):
        problems.append(f"the SDK reported an error: {e}")
    sent = {m.get("messageId") for r in requests for m in ((r.get("body") or {}).get("batch") or [])}
    for mid in rec.get("enqueued", []):
        if mid not in sent:
            problems.append(f"messageId {mid} was enqueued by the SDK but never sent")
    for mid in sorted(sent - set(rec.get("enqueued", [])), key=str):
        problems.append(f"messageId {mid} was sent but the SDK never reported enqueuing it")
    return problems


def refusal(rec, mid):
    """What the server said about one message, when it refused it."""
    for r in rec.get("requests", []):
        answer = r.get("answer")
        if isinstance(answer, dict):
            for kind in ("rejected", "quarantined"):
                for item in answer.get(kind) or []:
                    if item.get("messageId") == mid:
                        return f"the server answered {r.get('status')} and {kind} it: {short(item.get('issues'))}"
    return None


def check_event(m, sent_at, archived, hour):
    """Problems of one archived event against the message sent."""
    problems = []
    for key, value in m.items():
        if key == "writeKey":
            continue
        if key == "timestamp":
            if archived.get("originalTimestamp") != value:
                problems.append(
                    f"originalTimestamp is {archived.get('originalTimestamp')!r}, the SDK sent timestamp {value!r}"
                )
            continue
        if key == "context" and isinstance(value, dict) and "ip" not in value:
            value = dict(value, ip=PEER_IP)
        if key not in archived:
            problems.append(f"{key} was sent but is not archived")
        elif canon(archived[key]) != canon(value):
            problems.append(f"{key} changed: sent {short(value)}, archived {short(archived[key])}")
    extra = set(archived) - set(m) - ADDED
    # RudderStack sends identify/group traits only in context.traits; ingest
    # copies them to `traits`, where Segment sends them, so both validate alike.
    if "traits" in extra and m.get("type") in ("identify", "group") and "traits" not in m:
        sent = (m.get("context") or {}).get("traits")
        if canon(archived["traits"]) != canon(sent):
            problems.append(f"traits are {short(archived['traits'])}, expected context.traits {short(sent)}")
        extra.discard("traits")
    if extra:
        problems.append(f"archived with keys the SDK did not send and ingest does not add: {sorted(extra)}")
    if has_key(archived, "writeKey"):
        problems.append("a writeKey is archived")
    if archived.get("sourceId") != SOURCE:
        problems.append(f"sourceId is {archived.get('sourceId')!r}, expected {SOURCE!r}")
    context = archived.get("context")
    if not isinstance(context, dict) or context.get("ip") != PEER_IP:
        problems.append(f"context.ip is {context.get('ip') if isinstance(context, dict) else context!r}, expected {PEER_IP}")
    if "type" not in m or archived.get("type") != m.get("type"):
        problems.append(f"type is {archived.get('type')!r}, the SDK sent {m.get('type')!r}")
    received = archived.get("receivedAt")
    received_ms = iso_ms(received)
    if received_ms is None or not CANONICAL.match(received):
        problems.append(f"receivedAt {received!r} is not an ISO UTC time like 2026-11-25T12:00:00.000Z")
    expected_sent = m.get("sentAt", sent_at)
    if archived.get("sentAt") != expected_sent:
        problems.append(f"sentAt is {archived.get('sentAt')!r}, the request's was {expected_sent!r}")
    sent_ms = iso_ms(archived.get("sentAt"))
    if sent_ms is None:
        problems.append(f"sentAt {archived.get('sentAt')!r} is not an ISO date-time")
    timestamp = archived.get("timestamp")
    ts_ms = iso_ms(timestamp)
    if ts_ms is None or not CANONICAL.match(timestamp or ""):
        problems.append(f"timestamp {timestamp!r} is not an ISO UTC time like 2026-11-25T12:00:00.000Z")
    original_ms = iso_ms(m.get("timestamp"))
    if None not in (received_ms, sent_ms, ts_ms):
        # Same clock for client and server here: sentAt precedes receipt.
        if not (-1000 <= received_ms - sent_ms <= 60_000):
            problems.append(f"receivedAt {received} is not within a minute after sentAt {archived.get('sentAt')}")
        if original_ms is not None:
            expected = received_ms - (sent_ms - original_ms)
            if abs(ts_ms - expected) > 1:
                problems.append(
                    f"timestamp {timestamp} is not receivedAt - (sentAt - originalTimestamp) "
                    f"= {expected} ms ({received}, {archived.get('sentAt')}, {m.get('timestamp')})"
                )
        elif "timestamp" in m:
            problems.append(f"the SDK's timestamp {m['timestamp']!r} is not an ISO date-time")
        elif ts_ms != received_ms or "originalTimestamp" in archived:
            problems.append("without a timestamp sent, timestamp must be receivedAt and originalTimestamp absent")
    if received_ms is not None and hour is not None:
        y, mo, d, h = hour
        day = days_from_civil(y, mo, d)
        if not (day * 86_400_000 + h * 3_600_000 <= received_ms < day * 86_400_000 + (h + 1) * 3_600_000):
            problems.append(f"archived in the partition of {y:04}-{mo:02}-{d:02} hour {h:02}, received at {received}")
    return problems


def read_archive(root, write_key, report_problems):
    """{messageId: [(path, hour, event)]} of every line under root."""
    found = {}
    for path in sorted(root.rglob("*.json.gz")):
        rel = path.relative_to(root.parent)
        parts = dict(p.split("=", 1) for p in path.parent.parts if "=" in p)
        try:
            hour = tuple(int(parts[k]) for k in ("year", "month", "day", "hour"))
        except (KeyError, ValueError):
            hour = None
            report_problems.append(f"{rel}: not under year=/month=/day=/hour=")
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                text = f.read()
        except (OSError, EOFError, UnicodeDecodeError) as e:
            report_problems.append(f"{rel}: not a readable UTF-8 gzip file: {e}")
            continue
        if write_key and write_key in text:
            report_problems.append(f"{rel}: contains the write key")
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError as e:
                report_problems.append(f"{rel}:{n}: not JSON: {e}")
                continue
            if not isinstance(event, dict):
                report_problems.append(f"{rel}:{n}: not a JSON object")
                continue
            found.setdefault(event.get("messageId"), []).append((str(rel), hour, event))
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--sent", required=True, type=Path)
    ap.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated clients to expect")
    args = ap.parse_args()
    try:
        sources = json.loads((args.data / "sources.json").read_text())
        write_key = sources["sources"][SOURCE]["write_key"]
    except (OSError, ValueError, KeyError) as e:
        print(f"check: cannot read the write key of {SOURCE} from {args.data / 'sources.json'}: {e}")
        sys.exit(2)
    archive = args.data / "archive"
    report = Report()
    archive_problems = []
    raw = read_archive(archive / "raw", write_key, archive_problems)
    violations = read_archive(archive / "violations", write_key, archive_problems)
    total = sum(len(v) for v in raw.values())
    print(f"check: {total} events archived under {archive / 'raw'}, "
          f"{sum(len(v) for v in violations.values())} under violations")

    sent_ids = set()
    for name in [c for c in args.clients.split(",") if c]:
        path = args.sent / f"{name}.json"
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            report.case(f"{name}: wire", [f"no record of what it sent ({path}): {e}"])
            continue
        expect_gzip = CLIENTS.get(name, {}).get("gzip", rec.get("expect_gzip"))
        requests = rec.get("requests", [])
        n_messages = sum(len((r.get("body") or {}).get("batch") or []) for r in requests)
        gz = "gzip" if expect_gzip else "no gzip"
        report.case(
            f"{name}: wire ({len(requests)} requests, {n_messages} messages, {gz})",
            check_wire(name, rec, write_key, expect_gzip),
        )
        seen = set()
        for r in requests:
            body = r.get("body") if isinstance(r.get("body"), dict) else {}
            for m in body.get("batch") or []:
                mid = m.get("messageId") if isinstance(m, dict) else None
                if not isinstance(mid, str) or not mid:
                    report.case(f"{name}: a message", [f"sent without a messageId: {short(m)}"])
                    continue
                if mid in seen:  # a retry of the same message: stored once
                    continue
                seen.add(mid)
                if mid in sent_ids:
                    report.case(f"{name}: {describe(m)}", ["the same messageId was sent by another client"])
                    continue
                sent_ids.add(mid)
                title = f"{name}: {describe(m)}"
                copies = raw.get(mid, [])
                problems = []
                if mid in violations:
                    problems.append(f"quarantined in {violations[mid][0][0]}: {short(violations[mid][0][2].get('issues'))}")
                if not copies:
                    why = refusal(rec, mid)
                    problems.append("not archived" + (f": {why}" if why else ""))
                    problems.append(f"sent: {short(m, 600)}")
                elif len(copies) > 1:
                    problems.append(f"archived {len(copies)} times: {[c[0] for c in copies]}")
                if copies:
                    file, hour, event = copies[0]
                    problems += [f"{p} (in {file})" for p in check_event(m, body.get("sentAt"), event, hour)]
                report.case(title, problems)

    stray = [(mid, c) for mid, cs in raw.items() if mid not in sent_ids for c in cs]
    for mid, (file, _, event) in stray[:10]:
        archive_problems.append(f"{file}: archived but sent by no client: {short(event)}")
    if len(stray) > 10:
        archive_problems.append(f"... and {len(stray) - 10} more archived events sent by no client")
    for mid, cs in violations.items():
        for file, _, event in cs:
            archive_problems.append(f"{file}: quarantined {mid}: {short(event.get('issues'))}")
    report.case(f"archive: only what was sent, no violation, no write key ({total} events)", archive_problems)

    for line in report.lines:
        print(line)
    print(f"sdk-e2e: {report.passed} passed, {report.failed} failed")
    sys.exit(1 if report.failed else 0)


if __name__ == "__main__":
    main()
