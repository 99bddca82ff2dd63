"""nriqa.errors: a user error's message as one line."""
from __future__ import annotations

from nriqa.errors import UserError, one_line


def test_one_line_joins_a_multi_line_message():
    assert one_line(UserError("a:\n  - b\n  - c\nd.\ne")) == "a: b; c; d. e"
    assert one_line(UserError("--only 9 matches nothing")) == "--only 9 matches nothing"
