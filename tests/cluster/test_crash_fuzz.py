"""Crash fuzzing: SIGKILL the operator at random moments of a rollout, a rotation or a prune.

One namespace, two apps, one operator that is killed (SIGKILL to its whole process group) once
per iteration and started again. Each iteration makes exactly one change, waits for a randomly
chosen milestone of the work that change causes, waits a random jitter more, and kills:

`shop` runs a migration (`spec.migration`) before each release, so every change also makes,
waits for and records a migration Job.

- rollout: `credentials` gets new content; killed right after the write, once its revision
  exists, once the Deployment template moved, or once the new ReplicaSet exists;
- rotation: the app's owned secret `shop.api-token` rotates, either because the shifted clock
  (`--clock-offset-file`) makes its hourly rotation due (the operator records the notice, writes
  new values, then makes the revision) or through `kubectl webapp rotate-secret`;
- prune: `credentials` gets new content; killed once the rollout completed, once `shop` is
  Ready on it, or once the previous revision is gone, i.e. around the removal of the old
  revision and of environment snapshots that fell out of the kept history.

Then, against the API server (not the operator's view), every iteration checks:

- at the crash and at every poll until convergence: no running pod and no ReplicaSet (live,
  or kept for `rollout undo`) names an environment snapshot that does not exist (invariant 3);
  no revision that an app tracks or a live ReplicaSet runs on is gone (invariant 4); every
  revision holds the content of the change it numbers, none is numbered beyond the changes
  made, and no two hold the same content;
- convergence: both apps Ready, `shop` (refresh: auto) on the latest revision of both its
  secrets, `audit` (refresh: manual) still on its revision with the latest announced; exactly
  the revisions that must stay (the latest, the one `audit` tracks), numbered as the changes
  made; every environment snapshot left named by a Deployment or by a ReplicaSet the
  Deployment keeps for `rollout undo`;
- one rollout per change: each Deployment's generation and `deployment.kubernetes.io/revision`
  moved by exactly one, exactly one new ReplicaSet each, and (over the whole run) never two
  `RolloutStarted`, `SecretRefreshed`, `SecretChanged`, `RevisionCreated` or `RevisionRemoved`
  Events for the same thing, and exactly one `MigrationStarted` and `MigrationSucceeded` per
  release of `shop`;
- at the end, no canary value anywhere it must not be (every operator log included), and the
  notices lost to kills are listed (the owner's are at most once; a WebApp's, named Events,
  exactly once: docs/reliability.md).

`WEBAPP_FUZZ_SEED` replays a run's plan (phases, milestones, jitters, values); the seed is printed
first, and in every failure. `WEBAPP_FUZZ_ITERATIONS` sets the number of iterations (21: seven
per phase, about 2-3 minutes here). A replay repeats the plan, not the exact interleaving: the
machine's timing decides where inside a jitter a kill lands.
"""

from __future__ import annotations

import base64
import collections
import os
import random
import re
import signal
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, Client
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.core_v1 import Pod, Secret
from tests.cluster import opkit
from tests.cluster.support import BackgroundProcess, wait_for

SEED_ENV = "WEBAPP_FUZZ_SEED"
ITERATIONS_ENV = "WEBAPP_FUZZ_ITERATIONS"
DEFAULT_ITERATIONS = 21
PHASES = ("rollout", "rotation", "prune")
MILESTONES = {
    "rollout": ("written", "revision", "template", "replicaset"),
    "rotation": ("triggered", "values", "revision", "template"),
    "prune": ("rolled-out", "ready", "old-revision-gone"),
}
CONVERGE_TIMEOUT = 120.0
MILESTONE_TIMEOUT = 60.0

CREDENTIALS = "credentials"
TOKEN = "shop.api-token"
SHOP_DEPLOYMENTS = ("shop", "shop-celery-worker", "shop-celery-beat-scheduler")
SHOP = {
    "framework": "flask",
    "image": "shop:1",
    "replicas": 2,
    "processes": {
        "web": {"command": ["gunicorn", "app:app"]},
        "celery-worker": {"command": ["celery", "worker"]},
        "celery-beat-scheduler": {"command": ["celery", "beat"]},
    },
    "secrets": {
        "credentials": {"secretName": CREDENTIALS},
        "token": {"secretName": TOKEN},
    },
    "ownedSecrets": {"api-token": {"keys": ["token"], "rotate": "hourly"}},
    # A migration Job before each release (kwok completes its pod at once).
    "migration": {"command": ["flask", "db", "upgrade"]},
}
# `audit` never refreshes: it keeps revision 1 of `credentials` to the end (invariant 4).
AUDIT_TRACKS = 1
AUDIT = {
    "framework": "go",
    "image": "audit:1",
    "secrets": {"credentials": {"secretName": CREDENTIALS, "refresh": "manual"}},
}
REVISION_DEPLOYMENT = "deployment.kubernetes.io/revision"
# An item of a snapshot's `twelvefactor.dev/sources`: `secret:token=ns/shop.api-token#3`.
SOURCE_ITEM = re.compile(r"=[^/,]+/([^#,]+)#(\d+)")


class ShiftedClock:
    """The operator's clock offset (`--clock-offset-file`), moved forward by the test."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0.0
        path.write_text("0")

    def advance(self, minutes: float) -> None:
        self.offset += minutes * 60
        self.path.write_text(str(self.offset))


@pytest.fixture
def clock(tmp_path: Path) -> ShiftedClock:
    return ShiftedClock(tmp_path / "clock-offset")


@pytest.fixture
def kit(
    kube: Client,
    kubeconfig: Path,
    namespace: str,
    background: Callable[..., BackgroundProcess],
    clock: ShiftedClock,
) -> Iterator[opkit.Kit]:
    for kit in opkit.kit_fixture(kube, namespace, background, kubeconfig):
        kit.extra_args = ["--clock-offset-file", str(clock.path)]
        yield kit


# --------------------------------------------------------------------------------------------
# What the API server holds, read once per look


def _decode(data: Mapping[str, str] | None) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (data or {}).items()}


def template_snapshot(obj: Mapping[str, Any]) -> str | None:
    """The environment snapshot a Deployment, ReplicaSet or Pod (spec) reads."""
    spec = obj.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or spec
    for container in pod.get("containers") or []:
        for source in container.get("envFrom") or []:
            ref = source.get("secretRef") or {}
            if ref.get("name"):
                return str(ref["name"])
    return None


def owner_of(obj: Mapping[str, Any]) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref["name"])
    return None


@dataclass
class View:
    """One consistent-enough listing of everything the checks read."""

    secrets: dict[str, dict[str, Any]]
    deployments: dict[str, dict[str, Any]]
    replicasets: list[dict[str, Any]]
    pods: list[dict[str, Any]]
    webapps: dict[str, dict[str, Any]]

    @classmethod
    def read(cls, kit: opkit.Kit, users_first: bool = True) -> View:
        """List everything; `users_first`: pods, ReplicaSets, Deployments and WebApps before
        the Secrets they name, else the Secrets first.

        A listing is not atomic. Users first, a Secret deleted during the listing looks missing
        under a user that was just leaving; Secrets first, a Secret created during the listing
        looks missing under its brand-new user. A problem seen both ways is real: the Secret
        was gone while its user was still there.
        """

        def secrets() -> dict[str, dict[str, Any]]:
            return {s["metadata"]["name"]: s for s in kit.objects(Secret)}

        early = None if users_first else secrets()
        pods = kit.objects(Pod)
        replicasets = kit.objects(ReplicaSet)
        deployments = {d["metadata"]["name"]: d for d in kit.objects(Deployment)}
        webapps = {w["metadata"]["name"]: w for w in kit.objects(opkit.WebApp)}
        late = secrets() if early is None else early
        return cls(late, deployments, replicasets, pods, webapps)

    def revisions(self, source: str) -> dict[int, dict[str, str]]:
        found: dict[int, dict[str, str]] = {}
        for secret in self.secrets.values():
            labels = secret["metadata"].get("labels") or {}
            if labels.get("twelvefactor.dev/revision-of") == source:
                found[int(labels["twelvefactor.dev/revision"])] = _decode(secret.get("data"))
        return found

    def source(self, name: str) -> dict[str, str]:
        return _decode(self.secrets[name].get("data"))

    def env_snapshots(self, app: str) -> set[str]:
        return {
            name
            for name, secret in self.secrets.items()
            if (secret["metadata"].get("labels") or {}).get("twelvefactor.dev/environment-of")
            == app
        }

    def owned_replicasets(self, deployment: str) -> list[dict[str, Any]]:
        return [rs for rs in self.replicasets if owner_of(rs) == deployment]

    def status(self, app: str) -> dict[str, Any]:
        return dict(self.webapps[app].get("status") or {})

    def condition(self, app: str, kind: str = "Ready") -> dict[str, Any]:
        for cond in self.status(app).get("conditions") or []:
            if cond.get("type") == kind:
                return dict(cond)
        return {}

    def option(self, app: str, option: str) -> dict[str, Any]:
        for item in self.status(app).get("secrets") or []:
            if item.get("option") == option:
                return dict(item)
        return {}


def live(rs: Mapping[str, Any]) -> bool:
    return bool((rs.get("spec") or {}).get("replicas") or (rs.get("status") or {}).get("replicas"))


def rolled_out(deployment: Mapping[str, Any]) -> bool:
    want = int(deployment["spec"].get("replicas") or 0)
    status = deployment.get("status") or {}
    return (
        int(status.get("observedGeneration") or 0) >= int(deployment["metadata"]["generation"])
        and int(status.get("updatedReplicas") or 0) == want
        and int(status.get("availableReplicas") or 0) == want
        and int(status.get("replicas") or 0) == want
    )


# --------------------------------------------------------------------------------------------
# The test's own record of what it changed


@dataclass
class Ledger:
    """What the test wrote: the content of every revision it caused, by source and number."""

    contents: dict[str, dict[int, dict[str, str]]] = field(
        default_factory=lambda: collections.defaultdict(dict)
    )
    latest: dict[str, int] = field(default_factory=dict)

    def expect(self, source: str, number: int, content: Mapping[str, str] | None) -> None:
        self.latest[source] = number
        if content is not None:
            self.contents[source][number] = dict(content)

    def learn(self, view: View, source: str) -> None:
        """Record the content of revisions made from values the operator generated."""
        for number, content in view.revisions(source).items():
            self.contents[source].setdefault(number, content)

    def canaries(self) -> list[str]:
        return sorted(
            {
                value
                for by_number in self.contents.values()
                for content in by_number.values()
                for value in content.values()
                if len(value) >= 12
            }
        )


def describe(view: View) -> str:
    """The workloads and snapshots of a view, for a failure message."""
    lines = []
    for name, d in sorted(view.deployments.items()):
        status = d.get("status") or {}
        lines.append(
            f"Deployment {name} gen {d['metadata']['generation']} on {template_snapshot(d)}; "
            f"status {status.get('observedGeneration')} {status.get('replicas')}/"
            f"{status.get('updatedReplicas')}/{status.get('availableReplicas')}"
        )
    for rs in view.replicasets:
        meta = rs["metadata"]
        lines.append(
            f"ReplicaSet {meta['name']} of {owner_of(rs)} on {template_snapshot(rs)}: spec "
            f"{rs['spec'].get('replicas')} status {(rs.get('status') or {}).get('replicas')}"
            f"{' deleting' if meta.get('deletionTimestamp') else ''}"
        )
    for pod in view.pods:
        meta = pod["metadata"]
        lines.append(
            f"Pod {meta['name']} of {owner_of(pod)} on {template_snapshot(pod)}: "
            f"{(pod.get('status') or {}).get('phase')} created {meta.get('creationTimestamp')}"
            f"{' deleting' if meta.get('deletionTimestamp') else ''}"
        )
    for app in ("shop", "audit"):
        lines.append(f"snapshots of {app}: {sorted(view.env_snapshots(app))}")
    return "\n".join(lines)


def always(view: View, ledger: Ledger) -> list[str]:
    """Violations that must never exist, at any moment, crash or not."""
    problems: list[str] = []
    for rs in view.replicasets:
        snapshot = template_snapshot(rs)
        if rs["metadata"].get("deletionTimestamp") or not snapshot or snapshot in view.secrets:
            continue
        what = "live" if live(rs) else "kept (rollout undo)"
        problems.append(f"{what} ReplicaSet {rs['metadata']['name']} lost snapshot {snapshot}")
    for pod in view.pods:
        snapshot = template_snapshot(pod)
        running = pod["metadata"].get("deletionTimestamp") is None
        if running and snapshot and snapshot not in view.secrets:
            problems.append(f"Pod {pod['metadata']['name']} lost snapshot {snapshot}")
    # Invariant 4: a revision stays while an app tracks it or a live ReplicaSet runs on it.
    needed: set[tuple[str, int, str]] = set()
    for app in view.webapps:
        for item in view.status(app).get("secrets") or []:
            if item.get("trackedRevision"):
                needed.add((item["secretName"], int(item["trackedRevision"]), f"{app} tracks it"))
    for rs in view.replicasets:
        snapshot = template_snapshot(rs)
        if live(rs) and snapshot in view.secrets:
            sources = (view.secrets[snapshot]["metadata"].get("annotations") or {}).get(
                "twelvefactor.dev/sources", ""
            )
            for name, number in SOURCE_ITEM.findall(sources):
                needed.add((name, int(number), f"live {rs['metadata']['name']} runs on it"))
    for name, number, why in sorted(needed):
        if f"{name}.rev-{number}" not in view.secrets:
            problems.append(f"revision {number} of {name} is gone, but {why}")
    for source in (CREDENTIALS, TOKEN):
        found = view.revisions(source)
        for number, content in found.items():
            known = ledger.contents[source].get(number)
            if number > ledger.latest.get(source, 0):
                problems.append(f"{source} has revision {number}: more revisions than changes")
            elif known is not None and known != content:
                problems.append(f"{source} revision {number} does not hold change {number}")
        contents = [tuple(sorted(c.items())) for c in found.values()]
        if len(set(contents)) != len(contents):
            problems.append(f"{source}: two revisions hold the same content ({sorted(found)})")
    return problems


# --------------------------------------------------------------------------------------------
# Convergence: what must hold once the restarted operator is done


@dataclass
class Expected:
    credentials: int
    token: int
    audit_tracks: int
    # A clock rotation whose new values were lost with the operator (it had recorded the
    # notice first): the token stays on `token - 1` until the notice repeats 5 minutes later.
    token_may_lag: bool = False


def not_converged(view: View, want: Expected) -> list[str]:
    """Why the namespace is not yet where it must end up (empty: converged)."""
    waiting: list[str] = []
    token_latest = max(view.revisions(TOKEN), default=0)
    token_ok = {want.token - 1, want.token} if want.token_may_lag else {want.token}
    if token_latest not in token_ok:
        waiting.append(f"token latest {token_latest}, want {sorted(token_ok)}")
    for app in ("shop", "audit"):
        if app not in view.webapps:
            return [f"{app} missing"]
        meta = view.webapps[app]["metadata"]
        if view.status(app).get("observedGeneration") != meta.get("generation"):
            waiting.append(f"{app} status not observed")
        if view.condition(app).get("status") != "True":
            waiting.append(f"{app} not Ready: {view.condition(app).get('reason')}")
    shop_creds = view.option("shop", "credentials")
    if shop_creds.get("trackedRevision") != want.credentials:
        waiting.append(f"shop tracks credentials {shop_creds.get('trackedRevision')}")
    if view.option("shop", "token").get("trackedRevision") != token_latest:
        waiting.append(f"shop tracks token {view.option('shop', 'token').get('trackedRevision')}")
    audit = view.option("audit", "credentials")
    if audit.get("trackedRevision") != want.audit_tracks:
        waiting.append(f"audit tracks {audit.get('trackedRevision')}")
    if audit.get("latestRevision") != want.credentials:
        waiting.append(f"audit peeks {audit.get('latestRevision')}")
    behind = want.credentials > want.audit_tracks
    if behind and audit.get("notifiedRevision") != want.credentials:
        waiting.append(f"audit notified of {audit.get('notifiedRevision')}")
    if TOKEN in view.secrets and view.source(TOKEN) != view.revisions(TOKEN).get(token_latest):
        waiting.append("token values not yet a revision")
    # Exactly the revisions that must stay: the latest, and what an observer tracks.
    credentials_kept = sorted({want.credentials, want.audit_tracks})
    if sorted(view.revisions(CREDENTIALS)) != credentials_kept:
        waiting.append(f"credentials revisions {sorted(view.revisions(CREDENTIALS))}")
    if sorted(view.revisions(TOKEN)) != [token_latest]:
        waiting.append(f"token revisions {sorted(view.revisions(TOKEN))}")
    # One environment per app, rolled out everywhere; old ReplicaSets scaled down.
    for app, names in (("shop", SHOP_DEPLOYMENTS), ("audit", ("audit",))):
        templates = {template_snapshot(view.deployments[n]) for n in names if n in view.deployments}
        if len(templates) != 1 or len(names) != sum(n in view.deployments for n in names):
            waiting.append(f"{app} Deployments on {templates}")
            continue
        current = next(iter(templates))
        for name in names:
            if not rolled_out(view.deployments[name]):
                waiting.append(f"{name} rolling out")
            for rs in view.owned_replicasets(name):
                if template_snapshot(rs) != current and live(rs):
                    waiting.append(f"old ReplicaSet {rs['metadata']['name']} still live")
        # Every snapshot left is named by a Deployment or a ReplicaSet kept for rollout undo.
        named = {template_snapshot(view.deployments[n]) for n in names}
        named |= {template_snapshot(rs) for n in names for rs in view.owned_replicasets(n)}
        orphans = view.env_snapshots(app) - named
        if orphans:
            waiting.append(f"{app} orphaned snapshots {sorted(orphans)}")
    return waiting


# --------------------------------------------------------------------------------------------
# Events: never two for one thing


EVENT_KEYS: dict[str, re.Pattern[str]] = {
    "RolloutStarted": re.compile(r"^Rolling (?P<what>.+) to environment (?P<env>\S+) "),
    "SecretRefreshed": re.compile(r"^(?P<what>\S+): now tracking revision (?P<n>\d+) "),
    "SecretChanged": re.compile(r"^(?P<what>\S+): revision (?P<n>\d+) of Secret "),
    "RevisionCreated": re.compile(r"^Created revision (?P<n>\d+) of Secret (?P<what>\S+)$"),
    "RevisionRemoved": re.compile(r"^Removed revision (?P<n>\d+) of Secret (?P<what>\S+):"),
    "MigrationStarted": re.compile(
        r"^Running migration Job (?P<what>\S+) for environment (?P<n>\S+)$"
    ),
    "MigrationSucceeded": re.compile(r"^Migration Job (?P<what>\S+) succeeded: .* (?P<n>\S+)$"),
}


def event_keys(events: list[dict[str, Any]]) -> collections.Counter[tuple[str, ...]]:
    """(reason, object, what, which) of every Event that announces one thing, counted."""
    counted: collections.Counter[tuple[str, ...]] = collections.Counter()
    for event in events:
        pattern = EVENT_KEYS.get(str(event.get("reason")))
        if pattern is None:
            continue
        found = pattern.match(str(event.get("message", "")))
        assert found, f"unexpected {event['reason']} message: {event.get('message')!r}"
        involved = event["involvedObject"]["name"]
        if event["reason"] == "RolloutStarted":
            for deployment in found["what"].split(", "):
                counted[("RolloutStarted", involved, deployment, found["env"])] += 1
        else:
            counted[(event["reason"], involved, found["what"], found["n"])] += int(
                event.get("count") or 1
            )
    return counted


# --------------------------------------------------------------------------------------------
# The plan


@dataclass(frozen=True)
class Step:
    number: int
    phase: str
    milestone: str
    jitter: float
    via_cli: bool = False


def plan(rng: random.Random, iterations: int) -> list[Step]:
    """Phases in equal shares, each phase's kinds of kill in equal shares, all shuffled; a
    random jitter after the milestone of each."""
    phases = [PHASES[i % len(PHASES)] for i in range(iterations)]
    rng.shuffle(phases)
    kinds: dict[str, list[tuple[str, bool]]] = {}
    for phase in PHASES:
        choices = [(m, False) for m in MILESTONES[phase]]
        if phase == "rotation":  # the CLI writes the values itself: no "values" milestone
            choices += [(m, True) for m in MILESTONES[phase] if m != "values"]
        count = phases.count(phase)
        kinds[phase] = [choices[i % len(choices)] for i in range(count)]
        rng.shuffle(kinds[phase])
    steps = []
    for number, phase in enumerate(phases, 1):
        milestone, via_cli = kinds[phase].pop()
        jitter = rng.uniform(0.0, 1.0 if milestone in ("written", "triggered") else 0.4)
        steps.append(Step(number, phase, milestone, round(jitter, 3), via_cli))
    return steps


def seed_from_env() -> int:
    text = os.environ.get(SEED_ENV)
    return int(text) if text else random.SystemRandom().randrange(1, 2**31)


# --------------------------------------------------------------------------------------------
# The run


@dataclass
class Figures:
    kills: collections.Counter[str] = field(default_factory=collections.Counter)
    converge: list[float] = field(default_factory=list)
    startup: list[float] = field(default_factory=list)  # until it logs that it started
    kill_after: list[float] = field(default_factory=list)
    repeats: int = 0


class Fuzz:
    def __init__(
        self,
        kit: opkit.Kit,
        clock: ShiftedClock,
        rng: random.Random,
        seed: int,
    ) -> None:
        self.kit = kit
        self.clock = clock
        self.rng = rng
        self.seed = seed
        self.ledger = Ledger()
        self.figures = Figures()
        self.operators: list[BackgroundProcess] = []
        self.environments: list[str] = []  # shop's environment after each change
        self.first_environment = ""  # and before the first
        # What each step made: ("env", snapshot) or (source, revision) -> step number.
        self.made: dict[tuple[str, str], int] = {}

    def fail(self, step: Step | None, message: str) -> None:
        where = f"step {step.number} ({step.phase}/{step.milestone})" if step else "setup"
        pytest.fail(f"{SEED_ENV}={self.seed} {where}: {message}")

    def look(self, step: Step | None) -> View:
        view = View.read(self.kit)
        problems = always(view, self.ledger)
        if problems:
            again = View.read(self.kit, users_first=False)
            confirmed = [p for p in always(again, self.ledger) if p in problems]
            if confirmed:
                self.fail(step, "; ".join(confirmed) + "\n" + describe(again))
        return view

    def start(self) -> None:
        self.operators.append(self.kit.start_operator())

    def kill(self) -> None:
        operator = self.kit.operator
        assert operator is not None
        os.killpg(operator.pid, signal.SIGKILL)
        operator.stop()  # reaps it; the group is already gone

    def expected(self, token_may_lag: bool = False) -> Expected:
        return Expected(
            credentials=self.ledger.latest[CREDENTIALS],
            token=self.ledger.latest[TOKEN],
            audit_tracks=AUDIT_TRACKS,
            token_may_lag=token_may_lag,
        )

    def converge(self, step: Step | None, want: Expected) -> View:
        last: list[str] = []

        def done() -> View | None:
            view = self.look(step)
            last[:] = not_converged(view, want)
            return view if not last else None

        try:
            return wait_for(done, CONVERGE_TIMEOUT, interval=0.3, ignore=(ApiError,))
        except AssertionError:
            self.fail(step, f"did not converge: {last}")
            raise

    # ---------------------------------------------------------------- setup

    def setup(self) -> None:
        self.start()
        content = self.credentials_content(0)
        self.kit.secret(CREDENTIALS, content, grant="shop,audit")
        self.ledger.expect(CREDENTIALS, 1, content)
        self.ledger.expect(TOKEN, 1, None)
        self.kit.webapp("shop", SHOP)
        self.kit.webapp("audit", AUDIT)
        view = self.converge(None, self.expected())
        self.ledger.learn(view, TOKEN)
        self.first_environment = str(template_snapshot(view.deployments["shop"]))

    def credentials_content(self, number: int) -> dict[str, str]:
        salt = self.rng.randrange(16**8)
        return {"username": "shop", "password": f"fuzz-canary-{number}-{salt:08x}"}

    # ---------------------------------------------------------------- one iteration

    def iterate(self, step: Step) -> None:
        before = self.look(step)
        self.ledger.learn(before, TOKEN)
        generations = {
            name: (
                int(d["metadata"]["generation"]),
                int((d["metadata"].get("annotations") or {}).get(REVISION_DEPLOYMENT, "0")),
            )
            for name, d in before.deployments.items()
        }
        replicasets = {rs["metadata"]["uid"] for rs in before.replicasets}
        old_snapshot = template_snapshot(before.deployments["shop"])
        token_before = before.source(TOKEN)

        started = time.monotonic()
        if step.phase == "rotation":
            self.ledger.expect(TOKEN, self.ledger.latest[TOKEN] + 1, None)
            if step.via_cli:
                self.rotate_with_cli()
            else:
                self.clock.advance(61)
        else:
            number = self.ledger.latest[CREDENTIALS] + 1
            content = self.credentials_content(number)
            self.kit.secret(CREDENTIALS, content, grant="shop,audit")
            self.ledger.expect(CREDENTIALS, number, content)

        known = {template_snapshot(rs) for rs in before.replicasets} | {None}
        self.reach(step, old_snapshot, known, token_before)
        time.sleep(step.jitter)
        self.kill()
        self.figures.kill_after.append(time.monotonic() - started)
        self.figures.kills[f"{step.phase}/{step.milestone}"] += 1

        crashed = self.look(step)  # what the dead operator left must already be safe
        lag = (
            step.phase == "rotation"
            and not step.via_cli
            and crashed.source(TOKEN) == token_before
            and self.rotation_notified(crashed)
        )
        restarted = time.monotonic()
        self.start()
        self.figures.startup.append(time.monotonic() - restarted)
        view = self.converge(step, self.expected(token_may_lag=lag))
        self.figures.converge.append(time.monotonic() - restarted)
        if lag and max(view.revisions(TOKEN)) < self.ledger.latest[TOKEN]:
            # The notice was recorded, its new values died with the operator: Juju tells the
            # owner again 5 minutes later, and the operator (the owner) rotates then.
            self.figures.repeats += 1
            self.clock.advance(6)
            view = self.converge(step, self.expected())
        self.ledger.learn(view, TOKEN)
        self.check_one_rollout(step, view, generations, replicasets)
        self.environments.append(str(template_snapshot(view.deployments["shop"])))
        source = TOKEN if step.phase == "rotation" else CREDENTIALS
        self.made[(source, str(self.ledger.latest[source]))] = step.number
        self.made[("env", self.environments[-1])] = step.number

    def blame(self, key: tuple[str, ...]) -> str:
        """The step whose change a notice announces (for a removal: the change after it)."""
        reason, involved, what, which = key
        if reason == "RolloutStarted":
            made = self.made.get(("env", which))
        else:
            source = CREDENTIALS if "credentials" in (involved, what) else TOKEN
            number = int(which) + (1 if reason == "RevisionRemoved" else 0)
            made = self.made.get((source, str(number)))
        return f"{reason} {what}#{which} (step {made})"

    def announced(self) -> set[tuple[str, ...]]:
        """Every notice an uninterrupted run would have posted for the changes made."""
        creds, token = self.ledger.latest[CREDENTIALS], self.ledger.latest[TOKEN]
        ns = self.kit.namespace
        # The apps' secret keys never change: revision 1 each.
        wanted: set[tuple[str, ...]] = {
            ("RevisionCreated", key, f"{ns}/{key}", "1")
            for key in ("shop.secret-key", "audit.secret-key")
        }
        for source, last in ((CREDENTIALS, creds), (TOKEN, token)):
            wanted |= {
                ("RevisionCreated", source, f"{ns}/{source}", str(n)) for n in range(1, last + 1)
            }
            kept = {last, AUDIT_TRACKS} if source == CREDENTIALS else {last}
            wanted |= {
                ("RevisionRemoved", source, f"{ns}/{source}", str(n))
                for n in range(1, last)
                if n not in kept
            }
        wanted |= {("SecretRefreshed", "shop", "credentials", str(n)) for n in range(2, creds + 1)}
        wanted |= {("SecretRefreshed", "shop", "token", str(n)) for n in range(2, token + 1)}
        wanted |= {("SecretChanged", "audit", "credentials", str(n)) for n in range(2, creds + 1)}
        wanted |= {
            ("RolloutStarted", "shop", deployment, env)
            for env in self.environments
            for deployment in SHOP_DEPLOYMENTS
        }
        return wanted

    def rotate_with_cli(self) -> None:
        from webapp_operator.cli import main

        previous = os.environ.get("KUBECONFIG")
        os.environ["KUBECONFIG"] = self.kit.kubeconfig
        try:
            code = main.main(["rotate-secret", TOKEN, "-n", self.kit.namespace])
        finally:
            if previous is None:
                os.environ.pop("KUBECONFIG", None)
            else:
                os.environ["KUBECONFIG"] = previous
        assert code == 0

    def rotation_notified(self, view: View) -> bool:
        annotations = view.secrets[TOKEN]["metadata"].get("annotations") or {}
        told = annotations.get("twelvefactor.dev/rotation-notified-revision")
        return told == str(self.ledger.latest[TOKEN] - 1)

    def reach(
        self,
        step: Step,
        old_snapshot: str | None,
        known: set[str | None],
        token_before: dict[str, str],
    ) -> None:
        """Wait until the step's milestone is reached (cheap GETs, polled quickly)."""
        kube, ns = self.kit.kube, self.kit.namespace
        source = TOKEN if step.phase == "rotation" else CREDENTIALS
        number = self.ledger.latest[source]

        def exists(name: str) -> bool:
            try:
                kube.get(Secret, name, namespace=ns)
            except ApiError as err:
                if err.status.code == 404:
                    return False
                raise
            return True

        def shop_template() -> str | None:
            return template_snapshot(opkit.as_dict(kube.get(Deployment, "shop", namespace=ns)))

        def new_replicaset() -> bool:
            listing = kube.list(
                ReplicaSet, namespace=ns, labels={"twelvefactor.dev/webapp": "shop"}
            )
            return any(template_snapshot(opkit.as_dict(rs)) not in known for rs in listing)

        def shop_rolled_out() -> bool:
            if shop_template() == old_snapshot:
                return False
            return all(
                rolled_out(opkit.as_dict(kube.get(Deployment, n, namespace=ns)))
                for n in SHOP_DEPLOYMENTS
            )

        def shop_ready() -> bool:
            return self.kit.ready("shop") and self.kit.tracked("shop", "credentials") == number

        def values_written() -> bool:
            data = opkit.as_dict(kube.get(Secret, TOKEN, namespace=ns)).get("data")
            return _decode(data) != token_before

        previous = number - 1
        prunable = previous != AUDIT_TRACKS
        checks: dict[str, Callable[[], bool]] = {
            "written": lambda: True,
            "triggered": lambda: True,
            "values": values_written,
            "revision": lambda: exists(f"{source}.rev-{number}"),
            "template": lambda: shop_template() != old_snapshot,
            "replicaset": new_replicaset,
            "rolled-out": shop_rolled_out,
            "ready": shop_ready,
            "old-revision-gone": (
                (lambda: not exists(f"{source}.rev-{previous}")) if prunable else shop_ready
            ),
        }
        check = checks[step.milestone]
        try:
            wait_for(check, MILESTONE_TIMEOUT, interval=0.02, ignore=(ApiError,))
        except AssertionError:
            self.fail(step, f"milestone {step.milestone} never reached")

    def check_one_rollout(
        self,
        step: Step,
        view: View,
        generations: Mapping[str, tuple[int, int]],
        replicasets: set[str],
    ) -> None:
        for name in (*SHOP_DEPLOYMENTS, "audit"):
            deployment = view.deployments[name]
            generation = int(deployment["metadata"]["generation"])
            revision = int(
                (deployment["metadata"].get("annotations") or {}).get(REVISION_DEPLOYMENT, "0")
            )
            was_generation, was_revision = generations[name]
            created = [
                rs["metadata"]["name"]
                for rs in view.owned_replicasets(name)
                if rs["metadata"]["uid"] not in replicasets
            ]
            want = 1 if name in SHOP_DEPLOYMENTS else 0
            moved = (generation - was_generation, revision - was_revision, len(created))
            if moved != (want, want, want):
                self.fail(
                    step,
                    f"{name}: {moved[0]} template changes, {moved[1]} rollouts, new ReplicaSets "
                    f"{created} for one change (want {want} each)",
                )
        duplicates = {k: n for k, n in event_keys(self.kit.events()).items() if n > 1}
        if duplicates:
            self.fail(step, f"Events told twice: {duplicates}")


def scan_logs(operators: list[BackgroundProcess], canaries: list[str]) -> list[str]:
    needles = set(canaries) | {opkit.b64(c) for c in canaries}
    return [
        f"{op.log_path.name}: {needle[:6]}..."
        for op in operators
        for needle in needles
        if needle in op.log_text()
    ]


def test_sigkill_at_random_moments_loses_and_repeats_nothing(
    kit: opkit.Kit, clock: ShiftedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = seed_from_env()
    iterations = int(os.environ.get(ITERATIONS_ENV, DEFAULT_ITERATIONS))
    rng = random.Random(seed)  # noqa: S311 (a plan to replay, not cryptography)
    began = time.monotonic()

    def report(line: str) -> None:
        with capsys.disabled():
            print(line, flush=True)  # noqa: T201

    report(f"\ncrash fuzz: {SEED_ENV}={seed} {ITERATIONS_ENV}={iterations}")
    fuzz = Fuzz(kit, clock, rng, seed)
    fuzz.setup()
    for step in plan(rng, iterations):
        fuzz.iterate(step)
        report(
            f"  {step.number:2d} {step.phase:8s} {step.milestone:17s}"
            f"{' cli' if step.via_cli else '    '} +{step.jitter:.2f}s: killed after "
            f"{fuzz.figures.kill_after[-1]:.2f}s, converged {fuzz.figures.converge[-1]:.1f}s "
            "after restart"
        )

    # Events never repeated (checked every step); the owner's may be lost to a kill, a
    # WebApp's (named Events posted before the status that records them) never.
    counted = event_keys(kit.events())
    assert all(n == 1 for n in counted.values()), counted
    # Each release of shop (its first environment and one per change) migrated, told started
    # and succeeded exactly once, whatever the kills.
    migrations = {key for key in counted if key[0].startswith("Migration")}
    releases = sorted({fuzz.first_environment, *fuzz.environments})
    for reason in ("MigrationStarted", "MigrationSucceeded"):
        told = sorted(key[3] for key in migrations if key[0] == reason)
        assert told == releases, f"{SEED_ENV}={seed}: {reason} for {told}, releases {releases}"
    counted = collections.Counter({k: n for k, n in counted.items() if k not in migrations})
    wanted = fuzz.announced()
    assert set(counted) <= wanted, f"{SEED_ENV}={seed}: unexpected notices {set(counted) - wanted}"
    lost = collections.Counter(key[0] for key in wanted - set(counted))
    for key in sorted(wanted - set(counted)):
        report(f"  lost to a kill: {fuzz.blame(key)}")
    webapp_notices = {"RolloutStarted", "SecretRefreshed", "SecretChanged"}
    lost_webapp = [fuzz.blame(k) for k in wanted - set(counted) if k[0] in webapp_notices]
    assert lost_webapp == [], f"{SEED_ENV}={seed}: WebApp notices lost: {lost_webapp}"
    canaries = fuzz.ledger.canaries()
    assert canaries
    hits = kit.canary_hits(canaries) + scan_logs(fuzz.operators, canaries)
    assert hits == [], f"{SEED_ENV}={seed}: canary values leaked: {hits}"

    figures = fuzz.figures
    by_phase = collections.Counter(k.split("/")[0] for k in figures.kills.elements())
    report(
        f"crash fuzz done: {iterations} kills ({dict(by_phase)}), milestones "
        f"{dict(sorted(figures.kills.items()))}; convergence after restart p50 "
        f"{statistics.median(figures.converge):.1f}s max {max(figures.converge):.1f}s "
        f"(of which start-up p50 {statistics.median(figures.startup):.1f}s); "
        f"rotations recovered by the 5-minute repeat: {figures.repeats}; "
        f"notices told {len(counted)} of {len(wanted)}, lost to kills {dict(lost)}; "
        f"total {time.monotonic() - began:.0f}s"
    )
