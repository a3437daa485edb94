"""Every full CLI transcript pasted in the README reproduces: run the command, compare the text exactly."""
import re
import shlex
from pathlib import Path

from dsxl.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _transcripts() -> list[tuple[str, str]]:
    """(command, expected output) for each fenced block that starts with ``$ dsxl`` and shows its whole output."""
    out = []
    for block in re.findall(r"```\n\$ (dsxl [^\n]+)\n(.*?)```", README.read_text(), re.S):
        command, text = block
        if not text.startswith("...") and "--recipe" not in command:  # an elided transcript shows only a part
            out.append((command, text))
    return out


def test_the_readme_has_a_full_transcript():
    assert any(c.startswith("dsxl plan ") for c, _ in _transcripts())


def test_every_pasted_transcript_reproduces(capsys):
    for command, expected in _transcripts():
        assert main(shlex.split(command)[1:]) in (0, None), command
        assert capsys.readouterr().out == expected, command
