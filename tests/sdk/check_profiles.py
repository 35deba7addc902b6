"""Checks the profiles `uniflow dev` built from what the SDKs sent, through
its management API (standard library only; any Python 3.8+).

Usage: python3 check_profiles.py --data DATA_DIR --sent SENT_DIR

DATA_DIR/dev.json says where the API is and holds its token. SENT_DIR holds
one <client>.json per SDK client (see check_archive.py). Each client is one
person: an identify with its userId, anonymousId and email, then calls by
userId or anonymousId, an alias of the two and a group call. Asserted, per
client, once the processor caught up (within 20 s):
  - GET /api/v1/profiles?identifier=user_id:<user> finds one profile, and the
    same profile by anonymous_id:<anon> and by email:<user>@example.org (the
    email normalised by the shop's rules), with exactly those identifiers
    of those types;
  - its counts add up to the messages the client sent, each counted once,
    by type; its traits are the identify's; it belongs to the group;
  - GET .../events, paged 7 at a time, lists every message once;
  - GET .../history holds no merge (every call of a client named its user
    or device, so nothing needed merging).

The last line is `sdk-profiles: N passed, M failed`; exit status 1 when M > 0.
"""

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path


def api(base, token, path):
    req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def sent_messages(path):
    record = json.loads(path.read_text())
    seen = {}
    for r in record["requests"]:
        body = r["body"] if isinstance(r["body"], dict) else {}
        for m in body.get("batch", []):
            seen.setdefault(m.get("messageId"), m)
    return list(seen.values())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--sent", required=True, type=Path)
    args = ap.parse_args()
    dev = json.loads((args.data / "dev.json").read_text())
    base, token = dev["api"].rstrip("/"), dev["token"]
    if not base.endswith("/api/v1"):
        base += "/api/v1"
    passed, failures = 0, []

    def check(ok, what):
        nonlocal passed
        if ok:
            passed += 1
        else:
            failures.append(what)
            print(f"FAIL {what}", file=sys.stderr)

    clients = sorted(args.sent.glob("*.json"))
    if not clients:
        print(f"sdk-profiles: nothing sent under {args.sent}", file=sys.stderr)
        return 2
    for path in clients:
        name = path.stem
        messages = sent_messages(path)
        users = {m["userId"] for m in messages if m.get("userId")}
        anons = {m["anonymousId"] for m in messages if m.get("anonymousId")}
        check(len(users) == 1 and len(anons) == 1, f"{name}: one user and one device ({users}, {anons})")
        if not users or not anons:
            continue
        user, anon = users.pop(), anons.pop()
        q = urllib.parse.quote(f"user_id:{user}", safe=":")
        deadline = time.time() + 20
        while True:
            status, profile = api(base, token, f"/profiles?identifier={q}")
            counted = sum(profile.get("counts", {}).values()) if status == 200 else 0
            if counted >= len(messages) or time.time() > deadline:
                break
            time.sleep(0.2)
        check(status == 200, f"{name}: the profile of user_id:{user} is found ({status} {profile})")
        if status != 200:
            continue
        pid = profile["id"]
        for identifier in (f"anonymous_id:{anon}", f"email:{user.lower()}@example.org"):
            s, p = api(base, token, "/profiles?identifier=" + urllib.parse.quote(identifier, safe=":@"))
            check(s == 200 and p.get("id") == pid, f"{name}: {identifier} is the same profile ({s} {p.get('id')} vs {pid})")
        s, ids = api(base, token, f"/profiles/{pid}/identities")
        mine = sorted(i["identifier"] for i in ids if i["identifier"].split(":")[0] in ("user_id", "anonymous_id", "email"))
        want = sorted([f"user_id:{user}", f"anonymous_id:{anon}", f"email:{user.lower()}@example.org"])
        check(mine == want, f"{name}: identifiers {mine} == {want}")
        by_type = {}
        for m in messages:
            by_type[m["type"]] = by_type.get(m["type"], 0) + 1
        check(profile.get("counts") == by_type, f"{name}: counts {profile.get('counts')} == sent {by_type}")
        # RudderStack sends identify traits in context.traits; ingest moves them.
        identify = next(m for m in messages if m["type"] == "identify")
        traits = identify.get("traits") or identify.get("context", {}).get("traits", {})
        for k in ("first_name", "plan", "email"):
            check(profile["traits"].get(k) == traits.get(k), f"{name}: trait {k} ({profile['traits'].get(k)!r})")
        group = next(m["groupId"] for m in messages if m["type"] == "group")
        check(group in profile.get("groups", []), f"{name}: in group {group}")
        listed, before = [], None
        for _ in range(100):
            path_q = f"/profiles/{pid}/events?limit=7" + (f"&before={urllib.parse.quote(before)}" if before else "")
            s, page = api(base, token, path_q)
            if s != 200:
                check(False, f"{name}: events page ({s} {page})")
                break
            listed += [e["messageId"] for e in page["events"]]
            before = page.get("next")
            if not before:
                break
        check(sorted(listed) == sorted(m["messageId"] for m in messages), f"{name}: the timeline lists every message once ({len(listed)} of {len(messages)})")
        s, history = api(base, token, f"/profiles/{pid}/history")
        merges = [d for d in history if d.get("outcome") == "merged"]
        check(s == 200 and not merges, f"{name}: no merge in the history ({merges})")
    print(f"sdk-profiles: {passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
