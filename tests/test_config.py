"""Every knob is declared once (hpcray/config.py) and read through Config: defaults parse,
flags beat the environment, and a bad value of any knob is a clear error at start that names
the variable or flag, under the launcher and in the embedded default alike."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpcray.config import KNOBS, Config, parse_knob, table
from hpcray.exceptions import ConfigError

REPO = Path(__file__).resolve().parents[1]
BAD = {  # a value each knob's parser must refuse
    "prefetch": "-1", "queue_seconds": "soon", "spin_seconds": "-0.1",
    "poll_max_sleep": "0", "background_poll": "x", "shutdown_grace": "long",
    "cpus_per_rank": "-2", "gpus": None, "resources": "{not json",
    "num_workers": "0", "object_store_memory": "lots", "spill_dir": None,
    "inline_limit": "1.5Q", "transfer": "carrier-pigeon", "copy_fanout": "2.5",
    "ranks_per_node": "-1", "collective_timeout": "0", "preempt_grace": "-5",
    "gc_threshold": "-1", "job_dir": None, "status_interval": "0", "record": "sometimes",
    "events_per_rank": "0", "dedup_logs": "maybe", "progress": "maybe",
    "supervise": "maybe", "liveness_timeout": "0", "worker_processes": "sometimes",
    "memory_usage_threshold": "1.5", "memory_monitor_refresh_ms": "-1",
}


def test_every_knob_is_declared_once_with_a_meaning():
    fields = [knob.field for knob in KNOBS]
    envs = [knob.env for knob in KNOBS]
    assert len(set(fields)) == len(fields) and len(set(envs)) == len(envs)
    assert set(fields) == set(Config.__dataclass_fields__)
    for knob in KNOBS:
        assert knob.env.startswith("HPCRAY_") and len(knob.doc) > 20, knob.env
        assert knob.env in table()
    assert set(BAD) == set(fields)


def test_defaults_parse_and_flags_beat_the_environment():
    config = Config.load(environ={})
    assert config.transfer == "rma" and config.prefetch == 2 and config.gpus is None
    config = Config.load(environ={"HPCRAY_RANKS_PER_NODE": "4", "HPCRAY_GPUS": "0,1",
                                  "HPCRAY_RESOURCES": '{"ssd": 2}'},
                         flags={"ranks_per_node": "2"})
    assert config.ranks_per_node == 2 and config.gpus == ("0", "1")
    assert dict(config.resources) == {"ssd": 2.0}
    assert parse_knob("object_store_memory", "2G") == 2 << 30


@pytest.mark.parametrize("knob", [k for k in KNOBS if BAD[k.field] is not None],
                         ids=lambda knob: knob.env)
def test_a_bad_value_of_any_knob_is_a_clear_error(knob):
    with pytest.raises(ConfigError, match=knob.env):
        Config.load(environ={knob.env: BAD[knob.field]})
    if knob.flag:
        with pytest.raises(ConfigError, match=knob.flag):
            Config.load(environ={}, flags={knob.field: BAD[knob.field]})


def _env(**knobs):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "HYDRA_"))}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(REPO)
    env.update(knobs)
    return env


def test_a_bad_knob_stops_a_launched_job_at_start(tmp_path):
    script = tmp_path / "job.py"
    script.write_text("print('the script ran')\n")
    done = subprocess.run(["mpiexec", "-n", "2", sys.executable, "-m", "hpcray", str(script)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env=_env(HPCRAY_COLLECTIVE_TIMEOUT="abc"))
    assert done.returncode == 2, done.stderr
    assert "the script ran" not in done.stdout
    assert done.stderr.count("HPCRAY_COLLECTIVE_TIMEOUT='abc' is not a number") == 1
    done = subprocess.run(["mpiexec", "-n", "2", sys.executable, "-m", "hpcray",
                           "--ranks-per-node", "-3", str(script)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path, env=_env())
    assert done.returncode == 2 and "--ranks-per-node='-3' must not be negative" in done.stderr


def test_a_bad_knob_stops_the_embedded_default_in_init(tmp_path):
    script = tmp_path / "job.py"
    script.write_text("import hpcray\n"
                      "try:\n"
                      "    hpcray.init(num_cpus=1)\n"
                      "except ValueError as error:\n"
                      "    print('refused:', error)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env=_env(HPCRAY_TRANSFER="pigeon"))
    assert done.returncode == 0, done.stderr
    assert "refused: HPCRAY_TRANSFER='pigeon' choose one of rma, p2p" in done.stdout
