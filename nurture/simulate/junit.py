"""A JUnit XML report of test cases, for CI systems that show test results."""

from itertools import groupby
from pathlib import Path
from xml.etree import ElementTree

from nurture.simulate.cases import CaseResult


def junit_xml(results: list[CaseResult]) -> str:
    """One <testsuite> per sequence file, one <testcase> per case."""
    root = ElementTree.Element("testsuites", name="nurture test")
    _counts(root, results)
    for file, group in groupby(results, key=lambda result: result.file.split(":")[0]):
        cases = list(group)
        suite = ElementTree.SubElement(root, "testsuite", name=cases[0].sequence, file=file)
        _counts(suite, cases)
        for result in cases:
            _case(suite, result)
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(path: Path, results: list[CaseResult]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(results), encoding="utf-8")


def _counts(element: ElementTree.Element, results: list[CaseResult]) -> None:
    element.set("tests", str(len(results)))
    element.set("failures", str(sum(bool(r.mismatches) and r.error is None for r in results)))
    element.set("errors", str(sum(r.error is not None for r in results)))
    element.set("time", f"{sum(r.seconds for r in results):.3f}")


def _case(suite: ElementTree.Element, result: CaseResult) -> None:
    case = ElementTree.SubElement(
        suite,
        "testcase",
        name=result.case,
        classname=result.sequence,
        file=result.file,
        time=f"{result.seconds:.3f}",
    )
    if result.error is not None:
        ElementTree.SubElement(case, "error", message=result.error).text = result.error
    elif result.mismatches:
        first = result.mismatches[0].message
        failure = ElementTree.SubElement(case, "failure", message=first)
        failure.text = "\n".join("\n".join([m.message, *m.diff]) for m in result.mismatches)
