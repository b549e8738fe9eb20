"""The report's last section: what produced the run (code, commands, stage times, hardware, packages, data)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from convlens.report.format import is_number
from convlens.report.markdown import code, folded, table, text
from convlens.report.overview import REPORT_STAGE, stage_runs
from convlens.report.run_data import RunData


def provenance(run: RunData) -> str:
    info = run.provenance
    git = info.get("git", {})
    dirty = {True: "yes", False: "no", None: "unknown"}.get(git.get("dirty"), "unknown")
    lead = (
        f"git commit {code(git.get('commit') or 'unknown')} (uncommitted changes: {dirty}) for training, seed "
        f"{text(info.get('seed'))}{_later_code(info)}{_reruns(info)}; the commands, stage times, hardware, packages "
        "and files are folded below."
    )
    rows = [
        ("command", code(info.get("command", ""))),
        ("seed", text(info.get("seed"))),
        *_resumes(info.get("resumes") or []),
    ]
    rows += [
        (f"command ({text(stage)})", code(command))
        for stage, command in sorted(info.get("stage_commands", {}).items())
        if stage != REPORT_STAGE
    ]
    hardware = sorted((text(key), text(value)) for key, value in info.get("hardware", {}).items())
    packages = sorted(
        (text(name), text(version or "not installed")) for name, version in info.get("packages", {}).items()
    )
    body = "\n\n".join(
        [
            table(("", ""), rows),
            "**Stage wall time**",
            _stage_table(info.get("stages", {})),
            *(["**Stage history**", _history_table(info)] if stage_runs(info) else []),
            "**Hardware**",
            table(("", ""), hardware),
            "**Package versions**",
            table(("package", "version"), packages),
            "**Data files**",
            _data_files(info),
            "**Made from**",
            _made_from(run),
        ]
    )
    return f"{lead}\n\n{folded('Commands, stage times, hardware, packages, files', body)}"


def _stage_table(stages: dict[str, float]) -> str:
    rows = [(text(stage), f"{seconds:.1f} s") for stage, seconds in stages.items() if stage != REPORT_STAGE]
    note = "The report stage adds its own time to provenance.json after writing this report."
    return "\n\n".join([table(("stage", "wall time"), rows), note])


def _reruns(info: dict[str, Any]) -> str:
    """``; visualize ran 2 times (...)``: the stages run more than once, whose latest run alone is in the commands."""
    counts = Counter(str(entry.get("stage")) for entry in stage_runs(info))
    more = " or more" if _unlisted(info) else ""
    again = [f"{text(stage)} ran {count} times{more}" for stage, count in counts.items() if count > 1]
    if not again:
        return ""
    return (
        f"; {', '.join(again)} (the commands give each stage's latest run, the stage history every run: a run "
        'on part of the work, as `make visualize ARGS="methods=[lime]"`, keeps the rest from the runs before it)'
    )


def _history_table(info: dict[str, Any]) -> str:
    rows = [(text(entry.get("stage")), text(entry.get("finished")), _seconds(entry.get("seconds")), _commit(entry),
             code(str(entry.get("command") or ""))) for entry in stage_runs(info)]  # fmt: skip
    unlisted = _unlisted(info)
    note = (f"\n\nRuns from before convlens kept this history (2026-12-08) are not listed: {', '.join(unlisted)} "
            f"{'has' if len(unlisted) == 1 else 'have'} none here.") if unlisted else ""  # fmt: skip
    return table(("stage", "finished (UTC)", "wall time", "code", "command"), rows) + note


def _unlisted(info: dict[str, Any]) -> list[str]:
    """The stages with a recorded time but no run in the history: it began after they ran, so it is incomplete."""
    listed = {entry.get("stage") for entry in stage_runs(info)}
    return [text(stage) for stage in info.get("stages", {}) if stage != REPORT_STAGE and stage not in listed]


def _commit(entry: dict[str, Any]) -> str:
    found = entry.get("code")
    commit = found.get("commit") if isinstance(found, dict) else None
    dirty = " with uncommitted changes" if isinstance(found, dict) and found.get("dirty") else ""
    return f"{code(str(commit or 'unknown')[:10])}{dirty}"


def _seconds(value: Any) -> str:
    return f"{value:.1f} s" if is_number(value) else "unknown"


def _data_files(info: dict[str, Any]) -> str:
    files = info.get("data_files") or {}
    if not files:
        return "No data files: the dataset is generated from the seed in the config."
    return table(("file", "sha256"), [(code(path), code(digest)) for path, digest in sorted(files.items())])


def _later_code(info: dict[str, Any]) -> str:
    """The stages after training that ran other code than training did (this report's own stage is
    recorded after it is written, so the previous report's is left out)."""
    trained = info.get("git", {})
    other = [(stage, found) for stage, found in sorted(info.get("stage_code", {}).items())
             if stage not in ("train", REPORT_STAGE) and isinstance(found, dict) and found != trained]  # fmt: skip
    named = [f"{text(stage)} at {code(str(found.get('commit') or 'unknown')[:10])}"
             + (" with uncommitted changes" if found.get("dirty") else "") for stage, found in other]  # fmt: skip
    return f"; later stages ran other code: {', '.join(named)}" if named else ""


def _resumes(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """One row per resume: config.yaml keeps the values the run started with, these rows the changes."""
    return [(f"resumed {text(event.get('time'))}", text(_changes(event.get("changed") or {}))) for event in events]


def _changes(changed: dict[str, Any]) -> str:
    parts = [f"{key}: {change.get('recorded')} -> {change.get('now')}" for key, change in changed.items()]
    return "; ".join(parts) or "no setting changed"


def _made_from(run: RunData) -> str:
    """The report's lineage: the sha256 of the run files it was made from (:mod:`convlens.lineage`)."""
    rows = [(code(path), code(digest)) for path, digest in run.made_from().items()]
    note = "The run files this report was made from, as they were when it was written."
    return "\n\n".join([note, table(("file", "sha256"), rows)])
