import os

import pytest

from fndtest import Daemon


@pytest.fixture
def start_daemon(tmp_path):
    """Starts daemons on temporary data folders; stops them all at the end."""
    started = []

    def start(*args, data=None):
        d = Daemon(data or str(tmp_path / f"data{len(started)}"), args)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


@pytest.fixture
def daemon(start_daemon):
    return start_daemon()
