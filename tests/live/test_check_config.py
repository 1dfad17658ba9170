"""`v7 check-config` (the first step of `make run`) on LIVE settings: each problem stops it with
exit 2 and a message naming the key, variable or file to fix, and never printing a key.

The venue is never contacted by check-config; its URLs still point at 127.0.0.1 so that no
configuration written here could reach a Binance host.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cli.main import main
from config.settings import load_settings
from tests.harness import REPO, V7, Instance, free_port_base
from tests.venue.conftest import new_creds

KEY = "V7_EXCHANGE_API_KEY"
SECRET = "V7_EXCHANGE_API_SECRET"


def _live(network: str = "testnet", extra: str = "") -> str:
    return (f'mode = "LIVE"\naccount = "acct"\nsymbols = ["BTCUSDT"]\n[exchange]\nadapter = "binance_usdm"\n'
            f'network = "{network}"\nrest_url = "http://127.0.0.1:9"\nws_url = "ws://127.0.0.1:9"\n{extra}')


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("V7_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("V7_HOME", str(tmp_path))
    return tmp_path


def _check(home: Path, toml: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    (home / "runtime.toml").write_text(toml)
    code = main(["check-config"])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_mainnet_without_confirm_mainnet_is_refused(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    creds = new_creds()
    monkeypatch.setenv(KEY, creds.api_key)
    monkeypatch.setenv(SECRET, creds.secret)
    code, out = _check(home, _live("mainnet"), capsys)
    assert code == 2 and "exchange.confirm_mainnet" in out and "real money" in out, out
    code, out = _check(home, _live("mainnet", "confirm_mainnet = true\n"), capsys)
    assert code == 0 and "ok   LIVE on mainnet" in out, out
    assert creds.secret not in out and creds.api_key not in out


def test_missing_keys_are_named(home: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _check(home, _live(), capsys)
    assert code == 2 and f"set {KEY} and {SECRET}" in out and "exchange.key_file" in out, out
    monkeypatch.setenv(KEY, new_creds().api_key)
    code, out = _check(home, _live(), capsys)
    assert code == 2 and f"set {SECRET} " in out and f"set {KEY}" not in out, out


def test_keys_from_the_environment_are_keys_not_settings(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    # The settings loader maps V7_SECTION__KEY variables to settings; the two key variables must not
    # be read as (unknown) settings, nor end up in Settings, which is logged and dumped.
    creds = new_creds()
    monkeypatch.setenv(KEY, creds.api_key)
    monkeypatch.setenv(SECRET, creds.secret)
    code, out = _check(home, _live(), capsys)
    assert code == 0 and "API keys from environment" in out, out
    dumped = load_settings().model_dump_json()
    assert creds.secret not in dumped and creds.api_key not in dumped


def test_key_file_readable_by_others_is_refused(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    creds = new_creds()
    key_file = home / "binance.json"
    key_file.write_text(json.dumps({"api_key": creds.api_key, "api_secret": creds.secret}))
    os.chmod(key_file, 0o644)
    toml = _live(extra=f'key_file = "{key_file}"\n')
    code, out = _check(home, toml, capsys)
    assert code == 2 and "exchange.key_file" in out and "0644" in out and "chmod 600" in out, out
    os.chmod(key_file, 0o600)
    code, out = _check(home, toml, capsys)
    assert code == 0 and f"API keys from exchange.key_file ({key_file})" in out, out
    key_file.write_text(json.dumps({"api_key": creds.api_key}))
    code, out = _check(home, toml, capsys)
    assert code == 2 and '"api_secret"' in out, out
    assert creds.secret not in out and creds.api_key not in out


def test_the_real_cli_reads_keys_from_its_environment(tmp_path: Path) -> None:
    """The same through a real `v7` process, as `make run` calls it."""
    creds = new_creds()
    inst = Instance(home=tmp_path / "home", port_base=free_port_base())
    (inst.home / "runtime.toml").write_text(_live())
    env = {**inst.env, KEY: creds.api_key, SECRET: creds.secret}
    done = subprocess.run([V7, "check-config"], check=False, env=env, capture_output=True, text=True, timeout=60,
                          cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok   LIVE on testnet" in done.stdout and creds.secret not in done.stdout + done.stderr
