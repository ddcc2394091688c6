"""A real editor on `graph2py lsp`: headless Neovim (Debian's 0.7 has `vim.lsp.start_client`
and `buf_attach_client`, not yet `vim.lsp.start`) with its built-in client, opening a generated
model.py and asking for a hover on a layer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from codegen.cli import write_atomically
from codegen.convert import convert

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "lenet.pb"

SCRIPT = r"""
local model, out, root = os.getenv("G2P_MODEL"), os.getenv("G2P_OUT"), os.getenv("G2P_ROOT")
local ready = false
local client_id = vim.lsp.start_client({
  name = "graph2py",
  cmd = { os.getenv("G2P_PYTHON"), "-m", "codegen", "lsp" },
  root_dir = root,
  on_init = function() ready = true end,
})
vim.cmd("edit " .. vim.fn.fnameescape(model))
local bufnr = vim.api.nvim_get_current_buf()
vim.lsp.buf_attach_client(bufnr, client_id)
local text = "NO RESULT"
if not vim.wait(20000, function() return ready end, 20) then
  text = "server did not initialize"
else
  local row, col
  for i, line in ipairs(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)) do
    local s = line:find('name="conv2"', 1, true)
    if s then row, col = i - 1, s + 6 break end
  end
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = row, character = col },
  }
  local results, err = vim.lsp.buf_request_sync(bufnr, "textDocument/hover", params, 20000)
  if err then text = "ERROR " .. tostring(err) end
  for _, response in pairs(results or {}) do
    if response.err then text = "ERROR " .. vim.inspect(response.err)
    elseif response.result then text = response.result.contents.value end
  end
end
local f = io.open(out, "w")
f:write(text)
f:close()
vim.lsp.stop_client(client_id)
vim.wait(2000, function() return vim.lsp.client_is_stopped(client_id) end, 20)
vim.cmd("qa!")
"""


def test_neovim_hover_on_a_layer(tmp_path: Path):
    nvim = shutil.which("nvim")
    if not nvim and not os.environ.get("GRAPH2PY_REQUIRE_NEOVIM"):
        pytest.skip("Neovim is not installed (.ci/run installs it and makes this test required)")
    assert nvim, "Neovim is missing: .ci/run installs Debian's neovim package"
    shutil.copy(EXAMPLE, tmp_path / "lenet.pb")
    write_atomically(tmp_path / "lenet", convert(tmp_path / "lenet.pb")[1])
    (tmp_path / "hover.lua").write_text(SCRIPT)
    out = tmp_path / "hover.txt"
    env = {
        **os.environ,
        "G2P_MODEL": str(tmp_path / "lenet" / "model.py"),
        "G2P_OUT": str(out),
        "G2P_ROOT": str(tmp_path),
        "G2P_PYTHON": sys.executable,
    }
    subprocess.run(
        [nvim, "--headless", "--clean", "-u", "NONE", "-c", f"luafile {tmp_path / 'hover.lua'}"],
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    text = out.read_text()
    assert "`conv2`" in text and "`keras.layers.Conv2D`" in text and "Keras layer" in text
    assert "`Conv2D` `conv2/Conv2D`" in text and "(?, 10, 10, 16)" in text
    assert "`add`" in text and "`Relu_1`" in text  # the BiasAdd-as-add and activation nodes
    assert "conv1/" not in text
