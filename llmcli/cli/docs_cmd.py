"""`llmcli docs [TOPIC]`: the documentation pages, bundled with the package.

The pages are docs/*.md of the repository. A wheel carries them as package data
(``llmcli/docs`` is a link to ``../docs`` in the source tree, and the build copies what
it points to), so ``llmcli docs usage`` works wherever llmcli is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .output import Out

TopicArg = Annotated[Optional[str], typer.Argument(metavar="[TOPIC[#SECTION]]", show_default=False)]


def docs_dir() -> Optional[Path]:
    """Where the pages are: inside the package (a wheel, or the link in a checkout),
    else the checkout's own docs/ (a checkout without symlinks, e.g. on Windows)."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "docs", package.parent / "docs"):
        if candidate.is_dir() and any(candidate.glob("*.md")):
            return candidate
    return None


def topics(folder: Path) -> dict[str, Path]:
    """Topic name -> page, sorted by name."""
    return {p.stem: p for p in sorted(folder.glob("*.md"))}


def title(page: Path) -> str:
    """A page's first heading, without the ``#``."""
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip().replace("`", "")
    return ""


def section(text: str, anchor: str) -> Optional[str]:
    """The part of a page under the heading whose GitHub anchor is ``anchor``."""
    lines = text.splitlines(keepends=True)
    for start, line in enumerate(lines):
        if line.startswith("#") and slug(line) == anchor:
            level = len(line) - len(line.lstrip("#"))
            end = next((i for i in range(start + 1, len(lines))
                        if lines[i].startswith("#")
                        and len(lines[i]) - len(lines[i].lstrip("#")) <= level), len(lines))
            return "".join(lines[start:end])
    return None


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as -."""
    text = heading.lstrip("#").strip().lower()
    return "".join(ch for ch in text if ch.isalnum() or ch in " -_").replace(" ", "-")


def docs(topic: TopicArg = None) -> None:
    """Print a documentation page (llmcli docs usage); no TOPIC lists them."""
    folder = docs_dir()
    if folder is None:
        raise typer.BadParameter("the documentation is not installed with this llmcli",
                                 param_hint="TOPIC")
    pages = topics(folder)
    out = Out()
    if topic is None:
        width = max(len(name) for name in pages)
        out.write("".join(f"{name:<{width}}  {title(page)}\n" for name, page in pages.items()))
        out.write("\nllmcli docs TOPIC prints one; llmcli docs usage#prompt-and-stdin one section.\n")
        out.flush()
        return
    name, _, anchor = topic.removesuffix(".md").partition("#")
    page = pages.get(name.lower())
    if page is None:
        raise typer.BadParameter(f"no page {name!r}; pages: {', '.join(pages)}",
                                 param_hint="TOPIC")
    text = page.read_text(encoding="utf-8")
    if anchor:
        found = section(text, anchor.lower())
        if found is None:
            raise typer.BadParameter(f"{name} has no section #{anchor}", param_hint="TOPIC")
        text = found
    out.write(text if text.endswith("\n") else text + "\n")
    out.flush()


def register(app: typer.Typer) -> None:
    """Add `docs` to the app."""
    from .helptext import command_settings

    app.command("docs", **command_settings(short_help="Print a documentation page."))(docs)
