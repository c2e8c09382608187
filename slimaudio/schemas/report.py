"""Section `report`: the cross-study report (stage report)."""

from __future__ import annotations

from dataclasses import dataclass

from slimaudio.spec import param, section


@dataclass(frozen=True)
class Report:
    title: str = param("title of reports/index.html")


section("report", Report)
