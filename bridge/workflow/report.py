"""`zob report --week`: what was read in one ISO week, as `Reports/YYYY-Www.md` and as JSON.

Everything comes from the history the state DB keeps (`bridge.workflow.progress`), so a
report can be made for any past week, again and again with the same result:
- *passes advanced*: papers whose `pass` rose during the week (first and last value shown);
  a paper's first record is not an advance — the bridge did not see it happen;
- *highlights added*: annotations whose Zotero `dateAdded` (else first sight) is in the week;
- *methods touched*: method notes created or updated by a sync, or edited by you, that week;
- *dropped*: papers whose `status` became `dropped` that week;
- a Mermaid `xychart-beta` of passes finished in each of the last weeks, with a table of
  pass 1/2/3 and drops per week (a jump from pass 0 to 2 finishes passes 1 and 2).
Weeks run Monday 00:00 to Monday 00:00 UTC, the clock the history is recorded in.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bridge.apply import SyncResult
from bridge.config import Config, require_vault
from bridge.errors import ConfigError
from bridge.lineage import PaperInfo
from bridge.session import writing
from bridge.state import NoteState, State
from bridge.vault.notefile import wrap_region
from bridge.vault.papers import collect_papers
from bridge.vault.render import RenderedNote, Renderer
from bridge.workflow.notes import inline_text, require_synced, write_note

CHART_WEEKS = 8
MAX_BLOCK_LINKS = 10
_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.IGNORECASE)
CHANGE_LABELS = {
    "en": {"create": "created", "update": "updated by a sync", "touch": "edited by you"},
    "zh": {"create": "新建", "update": "同步时更新", "touch": "你编辑过"},
}
CHART_TITLES = {"en": ("Passes finished per week", "passes"), "zh": ("每周完成的遍数", "遍数")}


@dataclass(frozen=True)
class Week:
    """One ISO week; `start` is its Monday."""

    start: date

    @classmethod
    def containing(cls, day: date) -> Week:
        return cls(day - timedelta(days=day.weekday()))

    @property
    def label(self) -> str:
        year, number, _ = self.start.isocalendar()
        return f"{year}-W{number:02d}"

    @property
    def start_iso(self) -> str:
        return f"{self.start.isoformat()}T00:00:00Z"

    @property
    def end_iso(self) -> str:
        return f"{(self.start + timedelta(days=7)).isoformat()}T00:00:00Z"

    def back(self, weeks: int) -> Week:
        return Week(self.start - timedelta(weeks=weeks))

    def holds(self, timestamp: str) -> bool:
        return self.start_iso <= timestamp < self.end_iso


def parse_week(text: str | None, today: date | None = None) -> Week:
    """`2024-W05`, any day `2024-01-31`, or nothing (this week)."""
    today = today or datetime.now(UTC).date()
    text = (text or "").strip()
    if not text:
        return Week.containing(today)
    match = _WEEK.match(text)
    try:
        if match:
            return Week(date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1))
        return Week.containing(date.fromisoformat(text))
    except ValueError:
        pass
    raise ConfigError(
        f"{text!r} is not a week", "give an ISO week like 2024-W05 or a day like 2024-01-31"
    )


# --- the data --------------------------------------------------------------------------------


@dataclass
class _Change:
    note_id: str
    at: str
    from_pass: int | None
    to_pass: int | None
    dropped: bool


def _changes(log: list[tuple[str, str, int | None, str]]) -> list[_Change]:
    """Advances and drops, from the (note, time, pass, status) history in time order."""
    last: dict[str, tuple[int | None, str]] = {}
    changes = []
    for note_id, at, reading_pass, status in log:
        if note_id in last:
            before_pass, before_status = last[note_id]
            advanced = (
                reading_pass is not None and before_pass is not None and reading_pass > before_pass
            )
            dropped = status == "dropped" and before_status != "dropped"
            if advanced or dropped:
                changes.append(_Change(note_id, at, before_pass, reading_pass, dropped))
        last[note_id] = (reading_pass, status)
    return changes


class _Papers:
    """What a report says about a paper: from its note now, else from the state DB."""

    def __init__(self, papers: list[PaperInfo], notes: dict[str, NoteState]) -> None:
        self.info = {p.note_id: p for p in papers}
        self.notes = notes

    def describe(self, note_id: str) -> dict[str, Any]:
        paper = self.info.get(note_id)
        if paper is not None:
            return {"note": paper.path, "stem": paper.stem, "title": inline_text(paper.title),
                    "year": paper.year or "", "venue": inline_text(paper.venue)}  # fmt: skip
        path = self.notes[note_id].path if note_id in self.notes else f"{note_id}.md"
        stem = Path(path).stem
        return {"note": path, "stem": stem, "title": stem, "year": "", "venue": ""}


def week_data(
    state: State, papers: list[PaperInfo], week: Week, language: str = "en"
) -> dict[str, Any]:
    """The report's content as plain data (what `--json` prints)."""
    notes = state.notes()
    about = _Papers(papers, notes)
    changes = _changes(state.progress_log(until=week.end_iso))
    return {
        "week": week.label,
        "start": week.start.isoformat(),
        "end": (week.start + timedelta(days=6)).isoformat(),
        "advanced": _advanced([c for c in changes if week.holds(c.at)], about),
        "dropped": [
            {**about.describe(c.note_id), "pass": "" if c.from_pass is None else c.from_pass}
            for c in changes
            if c.dropped and week.holds(c.at)
        ],
        **_highlights(state, week, about),
        "methods": _methods(state, week, notes, language),
        "weeks": _weekly_counts(changes, week),
    }


def _advanced(changes: list[_Change], about: _Papers) -> list[dict[str, Any]]:
    first: dict[str, _Change] = {}
    last: dict[str, _Change] = {}
    for change in changes:
        if change.to_pass is None or change.from_pass is None or change.to_pass <= change.from_pass:
            continue
        first.setdefault(change.note_id, change)
        last[change.note_id] = change
    rows = [
        {**about.describe(nid), "from_pass": first[nid].from_pass, "to_pass": last[nid].to_pass}
        for nid in first
    ]
    return sorted(rows, key=lambda r: (-r["to_pass"], r["stem"].casefold()))


def _highlights(state: State, week: Week, about: _Papers) -> dict[str, Any]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for key, note_id, _ in state.annotations_between(week.start_iso, week.end_iso):
        grouped[note_id].append(key)
    rows = []
    for note_id, keys in grouped.items():
        paper = about.describe(note_id)
        blocks = [
            f"[[{paper['stem']}#^{key.lower()}|{n}]]"
            for n, key in enumerate(keys[:MAX_BLOCK_LINKS], 1)
        ]
        rows.append({**paper, "count": len(keys), "annotations": keys, "blocks": blocks})
    rows.sort(key=lambda r: (-r["count"], r["stem"].casefold()))
    return {"highlights": rows, "highlights_total": sum(r["count"] for r in rows)}


def _methods(
    state: State, week: Week, notes: dict[str, NoteState], language: str
) -> list[dict[str, Any]]:
    labels = CHANGE_LABELS.get(language, CHANGE_LABELS["en"])
    changes: dict[str, list[str]] = {}
    paths: dict[str, str] = {}
    for note_id, kind, path, action, _ in state.note_events_between(week.start_iso, week.end_iso):
        if kind != "method":
            continue
        changes.setdefault(note_id, [])
        if labels.get(action, action) not in changes[note_id]:
            changes[note_id].append(labels.get(action, action))
        paths[note_id] = notes[note_id].path if note_id in notes else path
    rows = [
        {"note": paths[nid], "stem": Path(paths[nid]).stem, "changes": changes[nid]}
        for nid in changes
    ]
    return sorted(rows, key=lambda r: r["stem"].casefold())


def _weekly_counts(changes: list[_Change], week: Week) -> list[dict[str, Any]]:
    rows = []
    for back in range(CHART_WEEKS - 1, -1, -1):
        each = week.back(back)
        counts = {"pass_1": 0, "pass_2": 0, "pass_3": 0, "dropped": 0}
        for change in changes:
            if not each.holds(change.at):
                continue
            counts["dropped"] += change.dropped
            if change.from_pass is not None and change.to_pass is not None:
                for level in range(change.from_pass + 1, change.to_pass + 1):
                    counts[f"pass_{level}"] += 1
        total = counts["pass_1"] + counts["pass_2"] + counts["pass_3"]
        rows.append({"week": each.label, **counts, "total": total})
    return rows


def mermaid_chart(weeks: list[dict[str, Any]], language: str = "en") -> str:
    title, axis = CHART_TITLES.get(language, CHART_TITLES["en"])
    labels = ", ".join(f'"{w["week"].split("-")[-1]}"' for w in weeks)
    top = max([w["total"] for w in weeks] + [1])
    bars = ", ".join(str(w["total"]) for w in weeks)
    return "\n".join([
        "```mermaid", "xychart-beta", f'    title "{title}"', f"    x-axis [{labels}]",
        f'    y-axis "{axis}" 0 --> {top}', f"    bar [{bars}]", "```",
    ])  # fmt: skip


# --- the note --------------------------------------------------------------------------------


def render_report(renderer: Renderer, data: dict[str, Any]) -> RenderedNote:
    region = renderer.render_template(
        "weekly-report-region.md.j2", **data, chart=mermaid_chart(data["weeks"], renderer.language)
    ).strip("\n")
    regions = {"report": region}
    body = renderer.render_template(
        "weekly-report.md.j2", week=data["week"], start=data["start"], end=data["end"],
        region=lambda name: wrap_region(name, regions.get(name, "")),
    )  # fmt: skip
    return RenderedNote(
        note_id=f"report:{data['week']}", kind="report",
        properties={"type": "weekly-report", "week": data["week"]}, regions=regions, body=body,
        owned_keys=("type", "week"),
    )  # fmt: skip


def weekly_report(
    config: Config, week_text: str | None = None, *, today: date | None = None
) -> tuple[dict[str, Any], SyncResult]:
    """Write `<reports_folder>/YYYY-Www.md` for the week; return its data and the outcome."""
    require_synced(require_vault(config))
    week = parse_week(week_text, today)
    result = SyncResult()
    with writing(config) as session:
        state, vault = session.state, session.vault
        papers, problems = collect_papers(vault, state, write_cache=False)
        result.warnings.extend(problems)
        data = week_data(state, papers, week, config.language)
        path = f"{config.reports_folder}/{week.label}.md"
        note = render_report(session.renderer, data)
        write_note(note, path, state, vault, session.plan_context, result, recreate=True)
    data["path"] = path
    return data, result
