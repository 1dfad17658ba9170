"""`python -m tests.venue.binance` as its own process: port file, keys file, stop by pid."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import ccxt

from tests.venue.binance.ccxt_client import make_binanceusdm
from tests.venue.conftest import new_creds

REPO = Path(__file__).resolve().parents[2]


def test_cli_process(tmp_path: Path) -> None:
    creds = new_creds()
    readonly = new_creds()
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps([
        {"api_key": creds.api_key, "secret": creds.secret},
        {"api_key": readonly.api_key, "secret": readonly.secret, "enable_futures": False},
    ]))
    config = tmp_path / "venue.json"
    config.write_text(json.dumps({"starting_balance": "2500", "taker_fee": "0.0004"}))
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.venue.binance", "--port", "0", "--port-file", str(port_file),
         "--keys-file", str(keys), "--config", str(config), "--tick-interval", "0.05", "--seed", "3"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        # The process prints one line once it listens (after writing the port file).
        assert proc.stdout is not None
        readable, _, _ = select.select([proc.stdout], [], [], 30)
        assert readable, "the fake did not start within 30 s"
        banner = proc.stdout.readline()
        port = int(port_file.read_text())
        assert f"listening on http://127.0.0.1:{port}" in banner, banner
        client = make_binanceusdm(f"http://127.0.0.1:{port}", creds.api_key, creds.secret, enableRateLimit=False)
        client.load_markets()
        assert client.fetch_balance()["USDT"]["total"] == 2500.0
        assert client.fetch_trading_fee("BTC/USDT:USDT")["taker"] == 0.0004
        other = make_binanceusdm(f"http://127.0.0.1:{port}", readonly.api_key, readonly.secret,
                                 enableRateLimit=False)
        assert other.sapiGetAccountApiRestrictions()["enableFutures"] is False
        try:
            other.fapiPrivateV3GetAccount()
        except ccxt.AuthenticationError as exc:
            assert '"code":-2015' in str(exc)
        else:
            raise AssertionError("a key without futures permission was let in")
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, output
