"""`obsplan diff REV:PATH`: a revision is data, never a git option (issue 18, item 6).

A revision starting with `-` is refused before git runs; any other string reaches git only after
`--end-of-options`, checked to be a commit (`rev-parse --verify --quiet REV^{commit}`) before `git show`. A blob
that is not UTF-8 and a 5,000-character revision are input errors (exit 2), never an internal error."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.conftest import FUZZ_EXAMPLES, Record, no_hang
from tests.reliability.corpus import good_lock, one_error_line, reseal, run, tree


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A repository with a good lock (a.lock), a blob that is not UTF-8 (bin.lock), and a tag."""
    work = tmp_path_factory.mktemp("diffrepo")
    git(work, "init", "-q", "-b", "main")
    git(work, "config", "user.email", "t@example.com")
    git(work, "config", "user.name", "t")
    (work / "a.lock").write_bytes(reseal(good_lock(tmp_path_factory.mktemp("lockwork"))))
    (work / "bin.lock").write_bytes(b'{"format_version": "\xff\xfe\x80"}\n')
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "locks")
    git(work, "tag", "v1")
    yield work


def test_option_shaped_revision_never_reaches_git_as_an_option(repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "written-by-git"
    before = tree(repo)
    for ref in (f"--output={target}:a.lock", f"--output={target}:", "-o:a.lock", "--exec=touch x:a.lock"):
        result = run(["diff", "--", ref, "a.lock"], repo)
        assert result.exit_code == 2, (ref, result.output)
        assert "may not start with '-'" in one_error_line(result) or "is empty" in one_error_line(result)
    assert not target.exists() and tree(repo) == before


def test_real_revisions_still_work(repo: Path) -> None:
    for ref in ("main:a.lock", "v1:a.lock", "HEAD:a.lock", "HEAD~0:./a.lock"):
        result = run(["diff", ref, "a.lock", "--format", "json"], repo)
        assert result.exit_code == 0, (ref, result.output)


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ("main:bin.lock", "not valid UTF-8"),
        ("x" * 5000 + ":a.lock", "longer than 256 characters"),
        ("main:" + "p" * 5000, "longer than 4096 characters"),
        ("main:" + "p" * 300, "cannot read"),
        ("nosuch:a.lock", "not a commit"),
        ("main:missing.lock", "cannot read missing.lock"),
        ("HEAD^{tree}:a.lock", "not a commit"),
        ("main\x01:a.lock", "control characters"),
        ("main\x00:a.lock", "NUL"),
        ("main:a.lock\x00", "NUL"),
        ("x" * 5000, "cannot read lock"),
        ("x" * 5000 + "\x00", "NUL"),
        ("main:a.lock\n", "control characters"),
    ],
    ids=lambda v: v[:12].encode("unicode_escape").decode() if isinstance(v, str) else str(v),
)
def test_bad_revisions_and_blobs_are_input_errors(repo: Path, ref: str, words: str) -> None:
    result = run(["diff", ref, "a.lock"], repo)
    assert result.exit_code == 2, result.output
    assert words in one_error_line(result)


REVISIONS = st.one_of(
    st.text(min_size=1, max_size=60),
    st.text(alphabet="-=/.:~^@{}[]*?\\ abcHEADmain0123456789", min_size=1, max_size=40),
    st.builds(lambda s: "-" + s, st.text(max_size=30)),
    st.integers(min_value=200, max_value=6000).map(lambda n: "r" * n),
)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(rev=REVISIONS)
def test_fuzz_revisions(outcomes: Record, repo: Path, rev: str) -> None:
    before = tree(repo)
    with no_hang():
        result = run(["diff", "--", f"{rev}:a.lock", "a.lock"], repo)
    ok = result.exit_code in (0, 2) and tree(repo) == before
    if rev.startswith("-"):
        ok = ok and result.exit_code == 2
    outcomes("diff: generated revisions", result.exit_code, ok)
    assert ok, (rev, result.output)
