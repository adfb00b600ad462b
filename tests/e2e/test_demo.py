"""`cem demo` on every deployment kind: a running platform (the distributed one included, which has
no `cem up --demo`) gets the demo people, keys and population of `cem up --demo`; the people sign
in and the sample customer the banner names is there to look up."""

from __future__ import annotations

import re

import httpx

from tests.e2e.deployments import Api, Deployment

PEOPLE = re.compile(r"^ +(agent|manager|admin) +(\S+@demo\.example) +(\S+)$", re.MULTILINE)
KEYS = re.compile(r"^ +(ingest|agent|manager|admin) +(\S+)$", re.MULTILINE)
SAMPLE = re.compile(r"sample customer .+ \(id (\S+)\)")


def sign_in(base_url: str, email: str, password: str) -> int:
    """The console page's status after signing in with the form, as a browser does."""
    with httpx.Client(base_url=base_url, timeout=30.0) as browser:
        form = browser.get("/signin").text
        found = re.search(r'name="csrf" value="([^"]+)"', form)
        assert found, "the sign-in form carries a CSRF field"
        data = {"email": email, "password": password, "csrf": found.group(1)}
        answer = browser.post("/signin", data=data, follow_redirects=False)
        assert answer.status_code == 303 and "/signin" not in answer.headers["location"]
        return browser.get("/console").status_code


def test_cem_demo_gives_a_running_platform_the_demo_people_and_customers(
    api: Api, deployment: Deployment
) -> None:
    banner = deployment.cli(
        "demo",
        "--url",
        deployment.base_url,
        "--ingest-url",
        deployment.ingest_url,
        # 30 customers over 2 days left no customer known by email in the history at some hours
        # (the seeded population's journeys depend on the time of day: 6 of 273 times through a
        # week): no sample to name. 60 over 3 days gave one at every time tried (every 3
        # minutes through a week, every 11 through four other weeks; 20-95 events).
        *("--customers", "60", "--days", "3", "--duration", "0"),
    )
    people = {role: (email, password) for role, email, password in PEOPLE.findall(banner)}
    assert sorted(people) == ["admin", "agent", "manager"], banner
    keys = dict(KEYS.findall(banner))
    sample = SAMPLE.search(banner)
    assert sample, banner
    deployment.wait_processed()
    assert api.get(f"/v1/customers/{sample.group(1)}", keys["agent"]).status_code == 200
    assert api.timeline(keys["agent"], sample.group(1))  # its history was seeded
    for email, password in people.values():
        assert sign_in(deployment.base_url, email, password) == 200
    again = deployment.cli("demo", "--url", deployment.base_url, "--duration", "0")
    assert dict(KEYS.findall(again)) == keys  # a rerun prints the same keys and people
    assert "history already seeded" in again
