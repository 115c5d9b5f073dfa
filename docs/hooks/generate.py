"""mkdocs hook: the configuration and CLI references, generated from the code at build time.

A page holding the marker ``<!-- generated: settings -->`` or ``<!-- generated: cli -->`` gets
the table of every ``Settings`` field (from ``gridledger.config``) or every command of the
``gridledger`` CLI (from its typer app) in its place, so the references cannot drift.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

import typer.main

from gridledger.cli import app
from gridledger.config import ENV_PREFIX, Settings

_FIELD_LINE = re.compile(r"^\s{4}(\w+): [^=]+= (.+?)(?:\s+#\s*(.*))?$")


def settings_markdown() -> str:
    comments: dict[str, str] = {}
    for line in inspect.getsource(Settings).splitlines():
        match = _FIELD_LINE.match(line)
        if match:
            comments[match.group(1)] = match.group(3) or ""
    rows = [
        "| setting | environment variable | type | default | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for field in dataclasses.fields(Settings):
        default = repr(field.default) if field.default is not dataclasses.MISSING else ""
        rows.append(
            f"| `{field.name}` | `{ENV_PREFIX}{field.name.upper()}` | {field.type} | "
            f"`{default}` | {_cell(comments.get(field.name, ''))} |"
        )
    return "\n".join(rows) + "\n"


def cli_markdown() -> str:
    root = typer.main.get_command(app)
    parts: list[str] = []
    _command(parts, root, "gridledger")
    return "\n".join(parts)


def _command(parts: list[str], command: Any, path: str) -> None:
    if hasattr(command, "commands"):  # a group (typer vendors its own click)
        if path != "gridledger":
            parts.append(f"## `{path}`\n\n{_cell(command.help or '')}\n")
        for name in sorted(command.commands):
            _command(parts, command.commands[name], f"{path} {name}")
        return
    parts.append(f"### `{path}`\n\n{(command.help or '').strip()}\n")
    rows = []
    for param in command.params:
        if param.name == "help":
            continue
        if param.param_type_name == "argument":
            name = f"`{(param.name or '').upper()}` (argument)"
        else:
            name = ", ".join(f"`{o}`" for o in (*param.opts, *param.secondary_opts))
        help_text = getattr(param, "help", "") or ""
        default = param.default if param.default not in (None, (), False) else ""
        if callable(default):
            default = ""
        rows.append(f"| {name} | {_cell(help_text)} | {_cell(str(default))} |")
    if rows:
        parts.append(
            "| option | meaning | default |\n| --- | --- | --- |\n" + "\n".join(rows) + "\n"
        )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def on_page_markdown(markdown: str, **_: Any) -> str:
    if "<!-- generated: settings -->" in markdown:
        markdown = markdown.replace("<!-- generated: settings -->", settings_markdown())
    if "<!-- generated: cli -->" in markdown:
        markdown = markdown.replace("<!-- generated: cli -->", cli_markdown())
    return markdown
