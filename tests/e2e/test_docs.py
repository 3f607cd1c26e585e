"""The documentation is generated from, or checked against, the code it describes: the
settings table is `fnd serve --help-markdown`, every metric the daemon exports is
listed, and every client command and exit code is in docs/cli.md."""
import os
import re
import subprocess

from fndtest import FND_BIN, SOURCE_DIR


def read(name):
    with open(os.path.join(SOURCE_DIR, "docs", name)) as f:
        return f.read()


def test_settings_table_is_current():
    table = subprocess.run([FND_BIN, "serve", "--help-markdown"], capture_output=True,
                           text=True, timeout=10, check=True).stdout
    assert table.count("\n") > 30
    assert table in read("operations.md"), "regenerate it with: fnd serve --help-markdown"


def test_every_metric_is_documented(daemon):
    text = daemon.get("/metrics").body.decode()
    names = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    assert len(names) > 15
    ops = read("operations.md")
    for name in names:
        assert f"| `{name}` |" in ops, name


def test_cli_doc_covers_commands_and_exit_codes():
    cli = read("cli.md")
    for cmd in ("deploy", "invoke", "ls", "get", "logs", "status", "rm", "dev"):
        assert f"## fnd {cmd}" in cli, cmd
    out = subprocess.run([FND_BIN, "help"], capture_output=True, text=True, timeout=10).stdout
    for code, meaning in re.findall(r"^  (\d)  (.+)$", out, re.M):
        assert f"| {code} | {meaning} |" in cli, (code, meaning)


def test_man_page_is_current():
    page = subprocess.run([FND_BIN, "help", "--man"], capture_output=True, text=True,
                          timeout=10, check=True).stdout
    assert page.startswith(".TH FND 1 ") and ".SH EXIT STATUS" in page
    assert page == read("fnd.1"), "regenerate it with: fnd help --man > docs/fnd.1"
