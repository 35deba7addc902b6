"""Runs checkov on CloudFormation templates and fails unless the failed checks
are exactly those accepted, with reasons, in checkov-baseline.json.

    python tests/aws/checkov_gate.py build/cloudformation.json ...
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main(templates):
    with open(os.path.join(HERE, "checkov-baseline.json")) as f:
        baseline = json.load(f)["accepted"]
    accepted = {(e["check"], r) for e in baseline for r in e["resources"]}
    checkov = os.path.join(os.path.dirname(sys.executable), "checkov")
    failed = set()
    passed = 0
    for template in templates:
        run = subprocess.run(
            [checkov, "--framework", "cloudformation", "--skip-download",
             "--output", "json", "--file", template],
            capture_output=True, text=True,
        )
        # Exit code 1 means "some check failed"; anything else is checkov failing.
        if run.returncode not in (0, 1):
            sys.exit(f"checkov failed on {template}:\n{run.stderr}")
        report = json.loads(run.stdout) if run.stdout.strip() else {}
        results = report.get("results", {})
        passed += len(results.get("passed_checks", []))
        for check in results.get("failed_checks", []):
            resource = check["resource"].split(".", 1)[1]
            failed.add((check["check_id"], resource, template, check["check_name"]))
    unexpected = sorted(f for f in failed if (f[0], f[1]) not in accepted)
    seen = {(f[0], f[1]) for f in failed}
    stale = sorted(a for a in accepted if a not in seen)
    print(f"checkov: {passed} checks passed, {len(failed)} failed, "
          f"{len(failed) - len(unexpected)} of them accepted in checkov-baseline.json")
    for check, resource, template, name in unexpected:
        print(f"FAILED {check} on {resource} ({template}): {name}")
    for check, resource in stale:
        print(f"STALE baseline entry: {check} on {resource} no longer fails; remove it")
    return 1 if unexpected or stale else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: checkov_gate.py TEMPLATE...")
    sys.exit(main(sys.argv[1:]))
