"""An environment snapshot is the operator's only if its content's keyed digest gives back its
name (controller/state.py is_own_snapshot): a Secret someone else made under that name (a
squatter) is never taken for it, whatever its labels."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from webapp_operator.controller import state
from webapp_operator.domain import model, render, revisions

KEY = b"k" * 32
SETTINGS = render.Settings(snapshot_key=KEY)


def rendered() -> dict[str, Any]:
    webapp = model.parse_webapp(
        {
            "apiVersion": "twelvefactor.dev/v1alpha1",
            "kind": "WebApp",
            "metadata": {"name": "shop", "namespace": "demo", "uid": "u1"},
            "spec": {"framework": "flask", "image": "x:1", "config": {"greeting": "hello"}},
        }
    )
    inputs = render.RenderInputs(webapp, {}, {}, generated_secret_key="generated")
    return render.render(inputs, SETTINGS).snapshot


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def squatted(change: str) -> dict[str, Any]:
    body = copy.deepcopy(rendered())
    if change == "content":
        body["data"]["FLASK_SECRET_KEY"] = b64("known-to-the-squatter")
    elif change == "extra-variable":
        body["data"]["FLASK_DEBUG"] = b64("1")
    elif change == "no-label":
        body["metadata"]["labels"] = {"squatter": "yes"}
    elif change == "mutable":
        body.pop("immutable")
    elif change == "not-utf8":
        body["data"]["FLASK_GREETING"] = base64.b64encode(b"\xff").decode()
    return body


def test_the_operators_snapshot_is_its_own() -> None:
    body = rendered()
    assert state.is_own_snapshot(body, KEY)
    entry = state.secret_entry(body, snapshot_key=KEY)
    assert entry.kind == revisions.KIND_ENVIRONMENT
    assert entry.verified is True
    assert entry.data == {}  # the content is checked, not kept
    assert state.secret_entry(body).verified is None  # no key at hand: not known


def test_another_key_does_not_recognise_it() -> None:
    assert not state.is_own_snapshot(rendered(), b"o" * 32)


@pytest.mark.parametrize("change", ["content", "extra-variable", "no-label", "mutable", "not-utf8"])
def test_a_squatter_under_the_name_is_not_the_operators(change: str) -> None:
    body = squatted(change)
    assert not state.is_own_snapshot(body, KEY)
    if change != "no-label":  # an unlabelled Secret is not in the index at all
        assert state.secret_entry(body, snapshot_key=KEY).verified is False
