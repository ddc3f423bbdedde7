"""Action kinds (`bridge.actions.ActionKind`) are stored and printed as their text: the state
DB's note log, `--json` output and `describe()` read as they did with plain strings."""

from __future__ import annotations

import json
import sqlite3

from bridge.actions import Action, ActionKind


def test_an_action_kind_is_its_text_everywhere_it_goes() -> None:
    kind = ActionKind.USER_DELETED
    assert kind == "user-deleted" and str(kind) == "user-deleted" and f"{kind}" == "user-deleted"
    assert json.dumps({"kind": kind}) == '{"kind": "user-deleted"}'
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE log (action TEXT)")
    db.execute("INSERT INTO log VALUES (?)", (kind,))
    assert db.execute("SELECT action, typeof(action) FROM log").fetchone() == (
        "user-deleted",
        "text",
    )


def test_describe_pads_the_kind_as_before() -> None:
    action = Action(ActionKind.SKIP, "K1", "Papers/a.md", reason="read-only")
    assert action.describe() == "skip         Papers/a.md — read-only"
    assert action.receipt().describe() == action.describe()
