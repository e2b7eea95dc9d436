"""Text from a server made safe for a terminal: control characters shown, not obeyed.

An error message, a model name or a request id is the server's text, and a hostile or
broken server can put terminal escape sequences in it (move the cursor, rewrite the
title, hide what came before). Everything llmcli writes on stderr passes through
:func:`neutralize` (the one reporting path, ``llmcli/cli/errors.py``'s ``safe``): every
C0 control character but tab and newline, DEL, and every C1 control character is
written as a visible ``\\xNN`` escape. The model's reply on stdout is data and is never
passed through here.
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _escape(match: "re.Match[str]") -> str:
    return "\\x%02x" % ord(match.group())


def neutralize(text: str) -> str:
    """``text`` with control characters (tab and newline aside) as ``\\xNN``."""
    return _CONTROL.sub(_escape, text)
