"""A page of rows out of a larger result, and reading ``?page=`` safely."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from flask import request

T = TypeVar("T")

#: the deepest page anyone may ask for (offsets stay bounded)
MAX_PAGE = 10_000


@dataclass(frozen=True)
class Page(Generic[T]):
    """``items`` of page ``number`` (1-based), ``per_page`` a page, ``total`` in all."""

    items: Sequence[T]
    number: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages there are (at least 1)."""
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        """True when there is a page before this one."""
        return self.number > 1

    @property
    def has_next(self) -> bool:
        """True when there is a page after this one."""
        return self.number < self.pages

    @property
    def first_index(self) -> int:
        """1-based position of the first item on this page (0 when empty)."""
        return (self.number - 1) * self.per_page + 1 if self.items else 0

    @property
    def last_index(self) -> int:
        """1-based position of the last item on this page."""
        return (self.number - 1) * self.per_page + len(self.items)

    def window(self, size: int = 7) -> list[int | None]:
        """Page numbers to show in a pager, ``None`` where pages are skipped."""
        if self.pages <= size:
            return list(range(1, self.pages + 1))
        around = set(range(max(1, self.number - 2), min(self.pages, self.number + 2) + 1))
        shown = sorted({1, self.pages} | around)
        out: list[int | None] = []
        for n in shown:
            if out and out[-1] is not None and n - out[-1] > 1:
                out.append(None)
            out.append(n)
        return out


def page_number(arg: str = "page") -> int:
    """The requested page number from the query string (1 when missing or invalid)."""
    try:
        number = int(request.args.get(arg, "1"))
    except ValueError:
        return 1
    return min(max(number, 1), MAX_PAGE)


def offset_of(number: int, per_page: int) -> int:
    """The row offset of page ``number``."""
    return (number - 1) * per_page
