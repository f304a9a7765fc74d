"""The library, its tests, tools and benchmarks are formatted by yapf with the settings in
pyproject.toml ([tool.yapf]); to format: `yapf -i -r -p diffgen_utils tests tools benchmarks`."""
import subprocess
import sys

from diffgen_utils.config import REPO_ROOT

FOLDERS = ("diffgen_utils", "tests", "tools", "benchmarks")


def test_the_code_is_formatted():
    out = subprocess.run([sys.executable, "-m", "yapf", "--diff", "-r", "-p", *FOLDERS],
                         cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and not out.stdout, ("not formatted; run: yapf -i -r -p " +
                                                    " ".join(FOLDERS) + "\n" + out.stdout[:3000])
