"""``ast.parse`` that survives CPython 3.11's corrupted AST recursion counter.

After a deep recursion elsewhere in the process (the fuzzers), 3.11 can fail any later
``ast.parse`` with "SystemError: AST constructor recursion depth mismatch". The source is
fine, so it is parsed again in a fresh interpreter and the tree sent back pickled."""

from __future__ import annotations

import ast
import pickle
import subprocess
import sys
from pathlib import Path

_FRESH = ("import ast, pickle, sys; "
          "sys.stdout.buffer.write(pickle.dumps(ast.parse(sys.stdin.read(), sys.argv[1])))")


def parse(source: str, path: Path) -> ast.Module:
    try:
        return ast.parse(source, filename=str(path))
    except SystemError:
        done = subprocess.run([sys.executable, "-c", _FRESH, str(path)], input=source.encode(),
                              capture_output=True, check=True, timeout=60)
        tree: ast.Module = pickle.loads(done.stdout)
        return tree
