"""Regression suites per prompt: test cases with assertions, run against any version, compared
between versions, and a gate that keeps protected labels (``production``) on versions that passed.

The core calls :func:`sync_cases_from_file` (seed, import), :func:`export_cases` (export) and
:func:`gate` (every label move). Apps and tools use :func:`run_suite`,
:func:`compare_versions` and the case functions::

    from registry import Registry
    from registry.suites import create_case, run_suite

    reg = Registry()
    create_case(reg, "summarize", "short", variables={"text": "..."},
                assertions=[{"type": "max-length", "value": 400}], actor="ana")
    run = run_suite(reg, "summarize", version=4, concurrency=4, actor="ana")
    run.ok, run.describe()
"""

from __future__ import annotations

from .assertions import (
    ASSERTION_TYPES,
    AssertionResult,
    CaseOutput,
    check_assertions,
    normalize_assertions,
    parse_assertions,
)
from .cases import (
    Case,
    case_counts,
    create_case,
    delete_case,
    export_cases,
    get_case,
    get_case_by_id,
    list_cases,
    sync_cases_from_file,
    update_case,
)
from .compare import SuiteComparison, compare_runs, compare_versions
from .gate import gate, is_protected, promotion_status
from .junit import junit_xml, write_junit
from .results import (
    CaseResult,
    SuiteRun,
    get_suite_run,
    latest_by_version,
    latest_suite_run,
    suite_runs,
)
from .rubric import ensure_grader, parse_verdict
from .runner import run_suite

__all__ = [
    "ASSERTION_TYPES",
    "AssertionResult",
    "Case",
    "CaseOutput",
    "CaseResult",
    "SuiteComparison",
    "SuiteRun",
    "case_counts",
    "check_assertions",
    "compare_runs",
    "compare_versions",
    "create_case",
    "delete_case",
    "ensure_grader",
    "export_cases",
    "gate",
    "get_case",
    "get_case_by_id",
    "get_suite_run",
    "is_protected",
    "junit_xml",
    "latest_by_version",
    "latest_suite_run",
    "list_cases",
    "normalize_assertions",
    "parse_assertions",
    "parse_verdict",
    "promotion_status",
    "run_suite",
    "suite_runs",
    "sync_cases_from_file",
    "update_case",
    "write_junit",
]
