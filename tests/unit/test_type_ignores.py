"""Every ``type: ignore`` in the checked packages names its error code and says why.

mypy (run by ./test.sh, ``ignore-without-code`` enabled) already refuses a bare ignore; the
reason after it is the project's rule: ``# type: ignore[code]  # why this is safe``.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "functions", "localhost", "agent", "cli")
IGNORE = re.compile(r"#\s*type:\s*ignore")
WITH_REASON = re.compile(r"#\s*type:\s*ignore\[[a-z-]+(,[a-z-]+)*\]\s+#\s*\S")


def _ignores() -> list[tuple[str, str]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if IGNORE.search(line):
                    found.append((f"{path.relative_to(ROOT)}:{number}", line.strip()))
    return found


def test_every_type_ignore_names_its_code_and_a_reason() -> None:
    ignores = _ignores()
    assert ignores, "the scan found no type: ignore at all; is ROOT right?"
    bare = [f"{where}: {line}" for where, line in ignores if not WITH_REASON.search(line)]
    assert not bare, "type: ignore without [code] and a reason:\n" + "\n".join(bare)


def test_a_bare_or_unexplained_ignore_is_refused() -> None:
    assert not WITH_REASON.search("x = f()  # type: ignore")
    assert not WITH_REASON.search("x = f()  # type: ignore[arg-type]")
    assert WITH_REASON.search("x = f()  # type: ignore[arg-type]  # checked above")
    assert WITH_REASON.search("x = f(*a)  # type: ignore[arg-type,misc]  # six fields")
