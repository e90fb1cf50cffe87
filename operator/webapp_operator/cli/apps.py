"""`status APP [--wait]` (an app's rollout, followed until Ready) and `completion SHELL`.

`status --wait` polls the WebApp and its Deployments, prints a line whenever the progress
changes (processes updated/available, the Ready reason), and ends when the app is Ready for
its current generation (exit 0), when it fails for a reason a wait cannot fix, such as a
missing grant (exit 1, with the condition's message, which says what to do), or at the timeout.
`update-secret --wait` follows each observer with the same `read_status` and `follow`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import yaml
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import Deployment

from webapp_operator.domain import reasons
from webapp_operator.kube import client as kube

# Reasons a wait can outlast: the operator is still working on it.
TRANSIENT: Final = frozenset({reasons.ROLLOUT_IN_PROGRESS, reasons.MIGRATION_IN_PROGRESS, ""})


class StatusError(Exception):
    """The app is not Ready and waiting will not change that."""


def _as_dict(obj: Any) -> dict[str, Any]:  # noqa: ANN401 (lightkube objects)
    result: dict[str, Any] = obj if isinstance(obj, dict) else obj.to_dict()
    return result


def ready_condition(webapp: Mapping[str, Any]) -> dict[str, Any]:
    for condition in (webapp.get("status") or {}).get("conditions") or []:
        if condition.get("type") == reasons.READY:
            return dict(condition)
    return {}


def summary(webapp: Mapping[str, Any], deployments: list[dict[str, Any]]) -> dict[str, Any]:
    """What `status` shows: readiness, each process's rollout, tracked revisions."""
    ready = ready_condition(webapp)
    meta = webapp.get("metadata") or {}
    status = webapp.get("status") or {}
    processes = {}
    for deployment in sorted(deployments, key=lambda d: d["metadata"]["name"]):
        spec, state = deployment.get("spec") or {}, deployment.get("status") or {}
        labels = deployment["metadata"].get("labels") or {}
        processes[labels.get("twelvefactor.dev/process", deployment["metadata"]["name"])] = {
            "desired": spec.get("replicas", 0),
            "updated": state.get("updatedReplicas", 0),
            "available": state.get("availableReplicas", 0),
        }
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "ready": ready.get("status", "Unknown"),
        "reason": ready.get("reason", ""),
        "message": ready.get("message", ""),
        "current": status.get("observedGeneration") == meta.get("generation"),
        "environment": status.get("environment"),
        "migration": status.get("migration"),
        "processes": processes,
        "secrets": {
            s.get("option"): {
                "tracked": s.get("trackedRevision"),
                "latest": s.get("latestRevision"),
            }
            for s in status.get("secrets") or []
        },
    }


def progress_line(info: Mapping[str, Any]) -> str:
    parts = [
        f"{name} {p['updated']}/{p['desired']} updated, {p['available']} available"
        for name, p in info["processes"].items()
    ]
    state = f"Ready={info['ready']}" + (f" ({info['reason']})" if info["reason"] else "")
    return f"{info['namespace']}/{info['name']}: {state}; " + ("; ".join(parts) or "no processes")


def done(info: Mapping[str, Any]) -> bool:
    return bool(info["ready"] == "True" and info["current"])


def check_failed(info: Mapping[str, Any]) -> None:
    if info["ready"] == "False" and info["current"] and info["reason"] not in TRANSIENT:
        msg = f"{info['reason']}: {info['message']}"
        raise StatusError(msg)


def follow(
    read: Callable[[], dict[str, Any]],
    timeout: float,
    say: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = 1.0,
    grace: float = 10.0,
    until: Callable[[Mapping[str, Any]], bool] = done,
    goal: str = "Ready",
) -> dict[str, Any]:
    """Poll `read` until `until` holds (default: the app is Ready for its current
    generation); print each new progress line. `goal` says what was awaited on timeout.

    A failure ends the wait only once it has lasted `grace` seconds: right after a fix (a new
    grant, say) the operator may not have looked yet.
    """
    deadline = clock() + timeout
    last = ""
    failing_since: float | None = None
    while True:
        info = read()
        line = progress_line(info)
        if line != last:
            say(line)
            last = line
        if until(info):
            return info
        try:
            check_failed(info)
            failing_since = None
        except StatusError:
            failing_since = clock() if failing_since is None else failing_since
            if clock() - failing_since >= grace:
                raise
        if clock() >= deadline:
            msg = (
                f"not {goal} after {timeout:g}s ({info['reason'] or 'no status yet'}); is the "
                "operator running? `kubectl describe webapp` shows its conditions and Events"
            )
            raise StatusError(msg)
        sleep(interval)


def read_status(client: Client, namespace: str, app: str) -> dict[str, Any]:
    """The `summary` of WebApp `namespace/app` as the cluster has it now."""
    try:
        webapp = _as_dict(client.get(kube.WebAppResource, app, namespace=namespace))
    except ApiError as error:
        if error.status.code == 404:
            msg = f"WebApp {namespace}/{app} not found"
            raise StatusError(msg) from None
        raise
    selector: Any = {"twelvefactor.dev/webapp": app}
    deployments = [
        _as_dict(d) for d in client.list(Deployment, namespace=namespace, labels=selector)
    ]
    return summary(webapp, deployments)


def run_status(args: argparse.Namespace) -> int:
    client = kube.sync_client(namespace=args.namespace)
    namespace = args.namespace or client.namespace

    def read() -> dict[str, Any]:
        return read_status(client, namespace, args.app)

    try:
        info = (
            follow(read, args.timeout, lambda line: print(line, flush=True))
            if args.wait
            else read()
        )
    except StatusError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        client.close()
    if args.output == "json":
        print(json.dumps(info, indent=2))
    elif args.output == "yaml":
        print(yaml.safe_dump(info, sort_keys=False), end="")
    elif not args.wait:
        print(progress_line(info))
        if info["message"]:
            print(f"  {info['message']}")
    return 0


def completion_script(parser: argparse.ArgumentParser, shell: str, prog: str) -> str:
    """A bash or zsh completion script for the commands and options of `parser`."""
    commands: dict[str, list[str]] = {}
    for action in parser._actions:  # argparse keeps its sub-parsers here
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                commands[name] = sorted(
                    opt for a in sub._actions for opt in a.option_strings if opt.startswith("--")
                )
    cases = "\n".join(
        f'        {name}) opts="{" ".join(opts)}" ;;' for name, opts in sorted(commands.items())
    )
    function = "_" + prog.replace("-", "_").replace(" ", "_")
    body = f"""# {prog} completion ({shell}); load it with: source <({prog} completion {shell})
{function}() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" command="" opts="" word
    for word in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
        case "$word" in -*) ;; *) command="$word"; break ;; esac
    done
    if [ -z "$command" ]; then
        COMPREPLY=($(compgen -W "{" ".join(sorted(commands))}" -- "$cur"))
        return
    fi
    case "$command" in
{cases}
    esac
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}}
"""
    if shell == "zsh":
        body = "autoload -U +X bashcompinit && bashcompinit\n" + body
    names = ["webapp-operator", "kubectl-webapp"]
    return body + "".join(f"complete -F {function} {name}\n" for name in names)


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parser: argparse.ArgumentParser,
) -> None:
    status = commands.add_parser(
        "status",
        help="show an app's readiness and rollout; --wait follows it until Ready",
        description="Show a WebApp's Ready condition, each process's rollout and its tracked "
        "revisions. With --wait, follow the rollout until the app is Ready.",
    )
    status.add_argument("app", metavar="APP")
    status.add_argument("-n", "--namespace", default=None)
    status.add_argument("--wait", action="store_true", help="follow the rollout until Ready")
    status.add_argument("--timeout", type=float, default=300.0, help="seconds (300)")
    status.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")
    status.set_defaults(handler=run_status)

    completion = commands.add_parser(
        "completion",
        help="print a shell completion script",
        description="Print a completion script: source <(kubectl-webapp completion bash)",
    )
    completion.add_argument("shell", choices=("bash", "zsh"))

    def run_completion(args: argparse.Namespace) -> int:
        sys.stdout.write(completion_script(parser, args.shell, parser.prog))
        return 0

    completion.set_defaults(handler=run_completion)
