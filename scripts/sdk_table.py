"""Write the README's SDK compatibility table from tests/sdk/calls.json, the list of calls that the SDK
suites (tests/test_sdk_python.py, tests/test_sdk_js.py) run, with the SDK versions they pin.

    python scripts/sdk_table.py          # rewrite the table in README.md
    python scripts/sdk_table.py --check  # exit 1 if README.md's table is stale (tests/test_docs_sdk_table.py)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- sdk-table:start (scripts/sdk_table.py writes this) -->", "<!-- sdk-table:end -->"
APIS = {
    "openai": ("OpenAI", "openai", "openai"),
    "elevenlabs": ("ElevenLabs", "elevenlabs", "@elevenlabs/elevenlabs-js"),
}


def _pins() -> tuple[dict[str, str], dict[str, str]]:
    pyproject = (REPO / "pyproject.toml").read_text()
    python = dict(re.findall(r'"(openai|elevenlabs)==([^"]+)"', pyproject))
    js = json.loads((REPO / "tests" / "sdk" / "js" / "package.json").read_text())["dependencies"]
    return python, js


def _cell(name: str | None, mark: str) -> str:
    return f"`{name}`{mark}" if name else f"none in this SDK{mark}"


def table() -> str:
    calls = json.loads((REPO / "tests" / "sdk" / "calls.json").read_text())["calls"]
    python_pins, js_pins = _pins()
    lines: list[str] = []
    notes: list[str] = []
    for api, (title, py_package, js_package) in APIS.items():
        rows = [c for c in calls if c["api"] == api]
        py_count, js_count = sum(bool(c["python"]) for c in rows), sum(bool(c["js"]) for c in rows)
        lines += [
            f"**{title}**: Python `{py_package}` {python_pins[py_package]} ({py_count} calls), "
            f"npm `{js_package}` {js_pins[js_package]} ({js_count} calls)",
            "",
            "| what | HTTP | Python | JavaScript |",
            "| --- | --- | --- | --- |",
        ]
        for call in rows:
            mark = ""
            if call.get("note"):
                notes.append(call["note"])
                mark = f" ({len(notes)})"
            route = f"`{call['route']}`" if " " in call["route"] else call["route"]
            lines.append(f"| {call['what']} | {route} | {_cell(call['python'], mark)} | {_cell(call['js'], mark)} |")
        lines.append("")
    lines += [f"- ({i}) {note}" for i, note in enumerate(notes, 1)]
    return "\n".join(lines)


def render(readme: str) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md has no {START} ... {END} block")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table()}\n{END}{tail}"


def main() -> int:
    path = REPO / "README.md"
    readme = path.read_text()
    fresh = render(readme)
    if "--check" in sys.argv:
        if fresh != readme:
            print("README.md's SDK table is stale: run `python scripts/sdk_table.py`", file=sys.stderr)
            return 1
        return 0
    path.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
