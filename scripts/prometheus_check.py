#!/usr/bin/env python3
"""Checks a running Prometheus against the platform it scrapes (scripts/compose.sh test).

    prometheus_check.py URL SECONDS JOB...

Waits up to SECONDS until every JOB is scraped and up, every rule of every group has been
evaluated without error, and the series the checkout's dashboards and alerts start from are
stored; then prints what it found. Exits 1, saying what is missing, if that never happens.
Only the standard library: it runs on the host, before any virtualenv exists.
"""

import json
import sys
import time
import urllib.parse
import urllib.request

# Series that a platform which has served a checkout exports from the start.
SERIES = [
    "orders_saga_outcomes_total",
    "orders_in_progress",
    "orders_in_progress_oldest_age_seconds",
    "events_outbox_pending",
    "events_consumed_total",
    "gateway_requests_total",
    "circuit_breaker_state",
]


def get(url, path, **query):
    suffix = "?" + urllib.parse.urlencode(query) if query else ""
    with urllib.request.urlopen(url + path + suffix, timeout=5) as response:
        body = json.load(response)
    if body.get("status") != "success":
        raise RuntimeError(f"{path}: {body}")
    return body["data"]


def missing(url, jobs):
    """What is not there yet (an empty list when everything is)."""
    problems = []
    health = {}
    for target in get(url, "/api/v1/targets", state="active")["activeTargets"]:
        health[target["labels"]["job"]] = (target["health"], target.get("lastError", ""))
    for job in jobs:
        state, error = health.get(job, ("not a target", ""))
        if state != "up":
            problems.append(f"job {job}: {state} {error}".rstrip())
    rules = [rule for group in get(url, "/api/v1/rules")["groups"] for rule in group["rules"]]
    if not rules:
        problems.append("no rules loaded")
    for rule in rules:
        if rule.get("health") != "ok":
            problems.append(f"rule {rule['name']}: {rule.get('health')} {rule.get('lastError', '')}")
    for series in SERIES:
        if not get(url, "/api/v1/query", query=f"count({series})")["result"]:
            problems.append(f"no {series} stored")
    return problems, len(rules)


def main():
    url, seconds, jobs = sys.argv[1].rstrip("/"), float(sys.argv[2]), sys.argv[3:]
    deadline = time.monotonic() + seconds
    problems = ["Prometheus did not answer"]
    while time.monotonic() < deadline:
        try:
            problems, rules = missing(url, jobs)
        except (OSError, RuntimeError, KeyError, ValueError) as error:
            problems = [f"Prometheus did not answer: {error}"]
        if not problems:
            print(f"{len(jobs)} jobs up, {rules} rules evaluated, {len(SERIES)} series stored")
            return 0
        time.sleep(3)
    print("Prometheus: " + "; ".join(problems), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
