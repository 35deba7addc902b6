"""Sends track, identify, page, screen, group and alias calls to `uniflow dev`
through the real Python SDKs, unchanged: Segment's segment-analytics-python
and RudderStack's rudder-sdk-python, each as a Client object and through its
module-level API (the way their docs show), with and without gzip.

Usage: python send_python.py --host http://127.0.0.1:PORT --write-key KEY --out DIR

For every client it writes DIR/<client>.json (what the SDK said it enqueued,
every HTTP request as it went on the wire, the server's answers, the errors
the SDK reported through on_error) and DIR/<client>.ids (the messageIds it
sent, one a line), for check_archive.py. The requests are observed with a
`requests` response hook on the SDK's own session: nothing in the SDK is
replaced. Exits 1 when an SDK reported an error, a request was not answered
200, or a 200 answer lists messages as rejected or quarantined (the SDKs
only look at the status, so such messages would be lost silently).
"""

import argparse
import base64
import gzip
import importlib.metadata
import json
import sys
import traceback
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import rudderstack.analytics as rudder_module
import rudderstack.analytics.request as rudder_request
import segment.analytics as segment_module
import segment.analytics.request as segment_request
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

HERE = Path(__file__).resolve().parent


def fill(value, subs):
    """The fixture with {user} and {uniq} replaced in its strings."""
    if isinstance(value, str):
        for k, v in subs.items():
            value = value.replace("{" + k + "}", v)
        return value
    if isinstance(value, list):
        return [fill(v, subs) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, subs) for k, v in value.items()}
    return value


def calls(tag, uniq, explicit_ids):
    """The calls one client makes: (method, kwargs). With explicit_ids every
    call gets a message_id; otherwise about half are left to the SDK."""
    user = f"sdk-{tag}-{uniq}"
    anon = f"anon-{tag}-{uniq}"
    fx = fill(json.loads((HERE / "fixtures.json").read_text()), {"user": user, "uniq": uniq})
    now = datetime.now(timezone.utc)
    # A client clock an hour behind, in a +02:00 zone: the server must keep
    # it as originalTimestamp and correct `timestamp` with sentAt.
    paris_an_hour_ago = (now - timedelta(hours=1)).astimezone(timezone(timedelta(hours=2)))
    n = iter(range(1000))

    def mid(always=False):
        i = next(n)
        if explicit_ids or always or i % 2 == 0:
            return f"{tag}-{uniq}-{i}"
        return None  # the SDK generates one

    out = [
        ("identify", dict(user_id=user, anonymous_id=anon, traits=fx["traits"], message_id=mid())),
        ("track", dict(anonymous_id=anon, event="Product Viewed", properties=fx["product_viewed"], message_id=mid())),
        (
            "track",
            dict(
                user_id=user,
                event="Order Completed",
                properties=fx["order_completed"],
                timestamp=paris_an_hour_ago,
                context=fx["context"],
                message_id=mid(),
            ),
        ),
        ("track", dict(user_id=user, event="Signed In", properties=fx["signed_in"], message_id=mid())),
        ("track", dict(user_id=user, event="Checkout Step Completed", properties=fx["checkout_step"], message_id=mid())),
        ("track", dict(user_id=user, event="Signed Out", integrations={"All": False, "Customer.io": True}, message_id=mid())),
        ("page", dict(user_id=user, category="Checkout", name="Order Confirmation", properties=fx["page"], message_id=mid())),
        ("screen", dict(user_id=user, category="Orders", name="Order History", properties=fx["screen"], message_id=mid())),
        ("group", dict(user_id=user, group_id=f"acme-corp-{uniq}", traits=fx["group_traits"], message_id=mid())),
        ("alias", dict(previous_id=anon, user_id=user, message_id=mid())),
        # The SDKs' defaults: a page and a screen without a name. Segment's
        # spec makes `name` optional, and both Python SDKs then send
        # "name": null (and "category": null).
        ("page", dict(anonymous_id=anon, message_id=mid())),
        ("screen", dict(user_id=user, message_id=mid())),
    ]
    return out


class Recorder:
    """Observes the SDK's HTTP traffic through a `requests` response hook."""

    def __init__(self, record):
        self.record = record

    def __call__(self, response, *args, **kwargs):
        req = response.request
        raw = req.body if isinstance(req.body, bytes) else (req.body or "").encode("utf-8")
        headers = dict(req.headers)
        auth = headers.pop("Authorization", "")
        basic_user = None
        if auth.startswith("Basic "):
            basic_user = base64.b64decode(auth[6:]).decode("utf-8").split(":", 1)[0]
        gzip_magic = raw[:2] == b"\x1f\x8b"
        try:
            text = gzip.decompress(raw) if gzip_magic else raw
            body = json.loads(text)
        except Exception as e:  # recorded; check_archive.py reports it
            body = {"_undecodable": repr(e)}
        try:
            answer = response.json()
        except ValueError:
            answer = {"_text": response.text}
        url = urlsplit(req.url)
        self.record["requests"].append(
            {
                "method": req.method,
                "path": url.path,
                "headers": headers,
                "auth": "basic" if basic_user is not None else (auth.split(" ")[0] or None),
                "basic_user": basic_user,
                "gzip_magic": gzip_magic,
                "bytes": len(raw),
                "body": body,
                "status": response.status_code,
                "answer": answer,
            }
        )


def run_client(name, out, session, make_and_send, expect_gzip):
    record = {
        "client": name,
        "language": "python",
        "expect_gzip": expect_gzip,
        "enqueued": [],
        "requests": [],
        "errors": [],
    }

    def on_error(error, batch):
        ids = [m.get("messageId") for m in batch]
        record["errors"].append(f"{type(error).__name__}: {error} (messageIds {ids})")

    hook = Recorder(record)
    session.hooks["response"].append(hook)
    try:
        make_and_send(record, on_error)
    except Exception:
        record["errors"].append("exception in the sender: " + traceback.format_exc())
    finally:
        session.hooks["response"].remove(hook)
        (out / f"{name}.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
        ids = []
        for r in record["requests"]:
            for m in r["body"].get("batch", []) if isinstance(r["body"], dict) else []:
                if m.get("messageId") not in ids:
                    ids.append(m.get("messageId"))
        (out / f"{name}.ids").write_text("".join(f"{i}\n" for i in ids))
    bad = [r for r in record["requests"] if r["status"] != 200]
    # A 200 can still carry messages the server refused: the SDKs do not look.
    refused = [
        (kind, m)
        for r in record["requests"]
        if r["status"] == 200 and isinstance(r["answer"], dict)
        for kind in ("rejected", "quarantined")
        for m in r["answer"].get(kind) or []
    ]
    print(
        f"  {name}: {len(record['enqueued'])} calls, {len(record['requests'])} requests, "
        f"{len(bad)} not answered 200, {len(refused)} messages refused inside a 200, "
        f"{len(record['errors'])} SDK errors"
    )
    for r in bad:
        print(f"    {r['method']} {r['path']} -> {r['status']} {json.dumps(r['answer'], ensure_ascii=False)}")
    for kind, m in refused:
        print(f"    {kind} inside a 200: {json.dumps(m, ensure_ascii=False)}")
    for e in record["errors"]:
        print(f"    on_error: {e}")
    return not bad and not refused and not record["errors"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--write-key", required=True)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    uniq = uuid.uuid4().hex[:10]
    versions = {p: importlib.metadata.version(p) for p in ("segment-analytics-python", "rudder-sdk-python")}
    print("python SDKs: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    ok = True

    # 1. segment-analytics-python, a Client, no gzip, small batches.
    def segment_client(record, on_error):
        client = SegmentClient(
            args.write_key, host=args.host, on_error=on_error, upload_size=4, max_retries=2, timeout=10
        )
        for method, kwargs in calls("segment-py", uniq, explicit_ids=False):
            queued, msg = getattr(client, method)(**kwargs)
            if not queued:
                record["errors"].append(f"{method}: the SDK did not queue {msg}")
            record["enqueued"].append(msg["messageId"])
        client.shutdown()

    ok &= run_client("segment-python", args.out, segment_request._session, segment_client, False)

    # 2. segment-analytics-python through its module API, gzip=True.
    def segment_module_gzip(record, on_error):
        segment_module.write_key = args.write_key
        segment_module.host = args.host
        segment_module.gzip = True
        segment_module.on_error = on_error
        segment_module.max_retries = 2
        for method, kwargs in calls("segment-py-gz", uniq, explicit_ids=False):
            queued, msg = getattr(segment_module, method)(**kwargs)
            if not queued:
                record["errors"].append(f"{method}: the SDK did not queue {msg}")
            record["enqueued"].append(msg["messageId"])
        segment_module.shutdown()

    ok &= run_client("segment-python-gzip", args.out, segment_request._session, segment_module_gzip, True)

    # 3. rudder-sdk-python, a Client with its defaults (gzip on).
    def rudder_client(record, on_error):
        client = RudderClient(args.write_key, host=args.host, on_error=on_error, upload_size=4, max_retries=2, timeout=10)
        for method, kwargs in calls("rudder-py", uniq, explicit_ids=False):
            queued, msg = getattr(client, method)(**kwargs)
            if not queued:
                record["errors"].append(f"{method}: the SDK did not queue {msg}")
            record["enqueued"].append(msg["messageId"])
        client.shutdown()

    ok &= run_client("rudder-python", args.out, rudder_request._session, rudder_client, True)

    # 4. rudder-sdk-python through its module API (write_key, dataPlaneUrl),
    #    gzip off. The module functions return nothing: every call is given
    #    its messageId.
    def rudder_module_plain(record, on_error):
        rudder_module.write_key = args.write_key
        rudder_module.dataPlaneUrl = args.host
        rudder_module.gzip = False
        rudder_module.on_error = on_error
        rudder_module.max_retries = 2
        for method, kwargs in calls("rudder-py-mod", uniq, explicit_ids=True):
            getattr(rudder_module, method)(**kwargs)
            record["enqueued"].append(kwargs["message_id"])
        rudder_module.shutdown()

    ok &= run_client("rudder-python-module", args.out, rudder_request._session, rudder_module_plain, False)

    if not ok:
        print("python SDKs: FAILED (an SDK error, a request not answered 200, or messages refused in a 200)")
        sys.exit(1)
    print("python SDKs: every request answered 200 with every message accepted, no SDK error")


if __name__ == "__main__":
    main()
