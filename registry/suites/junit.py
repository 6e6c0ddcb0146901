"""JUnit XML for CI: one ``<testsuite>`` per suite run, one ``<testcase>`` per case.

A case whose assertion failed is a ``<failure>``; a case whose run failed is an ``<error>``.
The answer goes into ``<system-out>``. Characters XML 1.0 cannot carry are replaced.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from ..errors import ValidationError
from .results import ERROR, FAILED, SuiteRun

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
#: how much of an answer goes into ``<system-out>``
MAX_OUTPUT = 20_000


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


def _seconds(value: float | None) -> str:
    return f"{(value or 0.0) / 1000:.3f}"


def junit_element(runs: Iterable[SuiteRun]) -> ET.Element:
    """The ``<testsuites>`` element for ``runs`` (each with its results)."""
    root = ET.Element("testsuites", name="prompt-registry")
    totals: dict[str, int] = {"tests": 0, "failures": 0, "errors": 0}
    total_time = 0.0
    for run in runs:
        failures = sum(r.status == FAILED for r in run.results)
        errors = sum(r.status == ERROR for r in run.results)
        duration = run.duration_s or 0.0
        suite = ET.SubElement(
            root,
            "testsuite",
            name=_clean(f"{run.prompt} v{run.version}"),
            tests=str(len(run.results)),
            failures=str(failures),
            errors=str(errors),
            skipped="0",
            time=f"{duration:.3f}",
            timestamp=run.started_at.replace(microsecond=0, tzinfo=None).isoformat(),
            id=str(run.id),
        )
        props = ET.SubElement(suite, "properties")
        for key, value in (
            ("prompt", run.prompt),
            ("version", str(run.version)),
            ("label", run.label or ""),
            ("suite_run_id", str(run.id)),
            ("status", run.status),
            ("cost_usd", "" if run.cost_usd is None else f"{run.cost_usd:.6f}"),
        ):
            ET.SubElement(props, "property", name=key, value=_clean(value))
        for result in run.results:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=_clean(f"{run.prompt}.v{run.version}"),
                name=_clean(result.case),
                time=_seconds(result.latency_ms),
            )
            if result.status == ERROR:
                node = ET.SubElement(
                    case,
                    "error",
                    message=_clean((result.error or "run failed")[:500]),
                    type="RunError",
                )
                node.text = _clean(result.error or "")
            elif result.status == FAILED:
                failed = result.failures
                node = ET.SubElement(
                    case,
                    "failure",
                    message=_clean(
                        "; ".join(a.description for a in failed)[:500] or "assertion failed"
                    ),
                    type="AssertionFailed",
                )
                node.text = _clean("\n".join(f"{a.description}: {a.message}" for a in failed))
            if result.output:
                out = ET.SubElement(case, "system-out")
                out.text = _clean(result.output[:MAX_OUTPUT])
        totals["tests"] += len(run.results)
        totals["failures"] += failures
        totals["errors"] += errors
        total_time += duration
    for key, count in totals.items():
        root.set(key, str(count))
    root.set("time", f"{total_time:.3f}")
    return root


def junit_xml(runs: Iterable[SuiteRun]) -> str:
    """The JUnit XML document for ``runs`` as a string."""
    root = junit_element(runs)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(runs: Iterable[SuiteRun], path: str | Path) -> Path:
    """Write the JUnit XML for ``runs`` to ``path`` (UTF-8); returns the path."""
    target = Path(path)
    try:
        target.write_text(junit_xml(runs), encoding="utf-8")
    except OSError as exc:
        raise ValidationError(
            f"cannot write the JUnit XML file {str(target)!r}: {exc.strerror or exc} "
            "(the suite run itself is stored)",
            field="junit",
        ) from None
    return target


__all__ = ["junit_element", "junit_xml", "write_junit"]
