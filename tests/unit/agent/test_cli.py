"""``pi-log check`` and ``pi-log queue …`` through typer's test runner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from beamwarden.agent.cli import app
from beamwarden.agent.queue import ReadingQueue
from beamwarden.agent.runner import QUEUE_FILE

runner = CliRunner()


def write(tmp_path: Path, sensors: str = "") -> Path:
    path = tmp_path / "pi-log.toml"
    path.write_text(
        f'device_id = "n-1"\napi_url = "http://bw:8000"\ndevice_token = "bwn_secret1"\n'
        f'state_dir = "{tmp_path / "state"}"\n{sensors}'
    )
    return path


def test_check_accepts_a_good_config(tmp_path: Path) -> None:
    config = write(tmp_path, '[[sensor]]\ntype = "geiger"\ndriver = "simulator"\n')
    done = runner.invoke(app, ["check", str(config)])
    assert done.exit_code == 0, done.output
    assert "config OK" in done.output
    assert "simulator" in done.output


def test_check_lists_every_problem_and_fails(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        '[[sensor]]\ntype = "geiger"\ndriver = "simulator"\nnumbered = true\n'
        '[[sensor]]\ntype = "x"\ndriver = "nope"\n',
    )
    done = runner.invoke(app, ["check", str(config)])
    assert done.exit_code == 1
    assert "sensor[2].driver: no driver named 'nope'" in done.output


def test_check_builds_the_drivers(tmp_path: Path) -> None:
    config = write(tmp_path, '[[sensor]]\ntype = "geiger"\ndriver = "simulator"\nnumbered = true\n')
    done = runner.invoke(app, ["check", str(config)])
    assert done.exit_code == 1
    assert "sensor[1].driver: simulator cannot start" in done.output


def test_queue_commands(tmp_path: Path) -> None:
    config = write(tmp_path)
    missing = runner.invoke(app, ["queue", "stats", str(config)])
    assert missing.exit_code == 1
    assert "no queue at" in missing.output
    (tmp_path / "state").mkdir()
    queue = ReadingQueue(tmp_path / "state" / QUEUE_FILE)
    queue.put_many([b'{"sensor_type":"sim","payload":{"n":1}}', b'{"payload":{"n":2}}'], 0.0)
    queue.dead_letter({2: "payload.n: bad"}, 10.0)
    queue.close()
    stats = runner.invoke(app, ["queue", "stats", str(config), "--json"])
    assert stats.exit_code == 0, stats.output
    assert json.loads(stats.output) == {
        "stream": queue.stream,
        "readings": 1,
        "bytes": 39,
        "oldest_enqueued_at": "1970-01-01T00:00:00+00:00",
        "last_seq": 2,
        "acked_total": 0,
        "dropped_total": 0,
        "dropped_bytes": 0,
        "dead_letters": 1,
    }
    peek = runner.invoke(app, ["queue", "peek", str(config)])
    assert f'"reading_id":"{queue.stream}:1"' in peek.output
    letters = runner.invoke(app, ["queue", "dead-letters", str(config)])
    assert f"{queue.stream}:2" in letters.output
    assert "payload.n: bad" in letters.output
