"""The one checksum-file parser (obsplan/kernel/checksum_file.py), read by the compiler to lock a sha256 and by bundles
to check upstream evidence against the lock: list files, side-cars, and hostile input."""

from __future__ import annotations

import string

import obsplan.compiler.sources.upstream_checksums as checksums
from hypothesis import given
from hypothesis import strategies as st

import obsplan.kernel.checksum_file as checksum_file

A = "a" * 64
B = "b" * 64
C = "0123456789abcdef" * 4


def test_list_file_lines_with_two_spaces_or_a_binary_marker() -> None:
    text = f"{A}  node_exporter-1.9.0.linux-amd64.tar.gz\n{B} *node_exporter-1.9.0.linux-arm64.tar.gz\n"
    assert checksum_file.parse(text) == {
        "node_exporter-1.9.0.linux-amd64.tar.gz": A,
        "node_exporter-1.9.0.linux-arm64.tar.gz": B,
    }


def test_dot_slash_prefix_and_space_after_the_binary_marker_are_dropped() -> None:
    text = f"{A}  ./loki.zip\n{B} *./promtail.zip\n{C} * tempo.zip\n"
    assert checksum_file.parse(text) == {"loki.zip": A, "promtail.zip": B, "tempo.zip": C}


def test_digests_are_lowercased_and_other_lines_ignored() -> None:
    text = "\n".join(
        [
            "# sha256 checksums",
            "",
            f"{A.upper()}  upper.tar.gz",
            f"{A[:63]}  short.tar.gz",  # 63 digits
            f"{A}0  long.tar.gz",  # 65 digits
            f"{'g' * 64}  nothex.tar.gz",
            f"{'٠' * 64}  arabic-digits.tar.gz",  # digits, but not ASCII hex
            f"{B}",  # a digest without a name, among other lines
            f"sha256:{C}  prefixed.tar.gz",
            f"\t{C}\tindented.tar.gz\r",
        ]
    )
    assert checksum_file.parse(text) == {"upper.tar.gz": A, "indented.tar.gz": C}


def test_a_name_listed_twice_keeps_its_last_digest() -> None:
    text = f"{A}  x.tar.gz\n{B}  x.tar.gz\n{C}  ./x.tar.gz\n"
    assert checksum_file.parse(text) == {"x.tar.gz": C}
    assert checksum_file.lookup(text, "x.tar.gz") == C


def test_lookup_prefers_the_exact_name_then_the_first_path_ending_in_it() -> None:
    text = f"{A}  dist/linux/x.tar.gz\n{B}  other/x.tar.gz\n"
    assert checksum_file.lookup(text, "x.tar.gz") == A
    assert checksum_file.lookup(text + f"{C}  x.tar.gz\n", "x.tar.gz") == C
    assert checksum_file.lookup(text, "y.tar.gz") is None
    assert checksum_file.lookup(text, "linux/x.tar.gz") is None  # a suffix is matched by whole last segment only


def test_a_side_car_holding_only_a_digest_vouches_for_any_name() -> None:
    assert checksum_file.lookup(f"\n  {A.upper()}\n", "grafana-11.0.0.linux-amd64.tar.gz") == A
    assert checksum_file.lookup("nothex\n", "x") is None
    # a side-car naming its file is read as a list: it vouches only for that name
    assert checksum_file.lookup(f"{A}  grafana.tar.gz\n", "grafana.tar.gz") == A
    assert checksum_file.lookup(f"{A}  grafana.tar.gz\n", "other.tar.gz") is None


def test_sidecar_takes_the_first_word_when_it_is_a_digest() -> None:
    assert checksum_file.sidecar(f"{A.upper()}  grafana-11.0.0.linux-amd64.tar.gz\n") == A
    assert checksum_file.sidecar(f"{A}\n") == A
    assert checksum_file.sidecar("") is None
    assert checksum_file.sidecar(" \n\t") is None
    assert checksum_file.sidecar(f"<html>{A}</html>") is None
    assert checksum_file.sidecar(f"sha256 {A}") is None


def test_huge_lines_are_ignored_or_read_whole() -> None:
    junk = "f" * 1_000_000  # one line of hex far longer than a digest
    name = "n" * 100_000
    text = f"{junk}\n{junk}  {junk}\n{A}  {name}\n"
    assert checksum_file.parse(text) == {name: A}
    assert checksum_file.lookup(text, name) == A
    assert checksum_file.sidecar(junk) is None


def test_the_compiler_reads_checksum_files_with_the_same_parser() -> None:
    assert checksums.parse_checksum_file is checksum_file.parse
    assert checksums.parse_sidecar is checksum_file.sidecar


_NAME_CHARS = string.ascii_letters + string.digits + "._-+"
names = st.text(_NAME_CHARS, min_size=1, max_size=40).filter(lambda n: not n.startswith("./"))
digests = st.text("0123456789abcdefABCDEF", min_size=64, max_size=64)


@given(st.dictionaries(names, st.tuples(digests, st.sampled_from(["  ", " *", "  ./", " *./", "\t"])), min_size=2))
def test_a_written_list_reads_back(entries: dict[str, tuple[str, str]]) -> None:
    text = "".join(f"{digest}{sep}{name}\n" for name, (digest, sep) in entries.items())
    assert checksum_file.parse(text) == {name: digest.lower() for name, (digest, _) in entries.items()}
    for name, (digest, _) in entries.items():
        assert checksum_file.lookup(text, name) == digest.lower()


@given(st.text(max_size=300), st.text(max_size=20))
def test_any_text_parses_to_lowercase_digests_without_raising(text: str, filename: str) -> None:
    for digest in checksum_file.parse(text).values():
        assert len(digest) == 64 and set(digest) <= set("0123456789abcdef")
    found = checksum_file.lookup(text, filename)
    assert found is None or found in checksum_file.parse(text).values() or found == checksum_file.sidecar(text)
