"""Long jobs (regenerate, check parity) as cancellable subprocesses with `$/progress`.

A job is the `codegen.lsp.worker` child process plus the asyncio task awaiting it. Either way of
cancelling reaches that task: `$/cancelRequest` for the `workspace/executeCommand` request that
started it (see `Protocol`), or `window/workDoneProgress/cancel` for its progress token. The
task then kills the child, so a cancelled check leaves no TensorFlow process behind.
"""

from __future__ import annotations

import asyncio
import collections
import json
import sys

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcRequestCancelled
from pygls.protocol import LanguageServerProtocol

from ..errors import printable


class JobFailed(JsonRpcException):
    """The worker reported problems (a bad graph, an unsupported op): a request error whose
    message is the worker's own lines."""

    CODE = -32803  # LSP RequestFailed


class Protocol(LanguageServerProtocol):
    """pygls cancels a request only while it waits to start; a command that already runs is a
    task we own, so cancellation is forwarded to it as well."""

    def _handle_cancel_notification(self, msg_id):
        super()._handle_cancel_notification(msg_id)
        jobs = getattr(self._server, "jobs", None)
        if jobs is not None:
            jobs.cancel_request(msg_id)


class Jobs:
    def __init__(self, server):
        self.server = server
        self._by_request: dict = {}

    def cancel_request(self, msg_id) -> None:
        task = self._by_request.get(msg_id)
        if task is not None:
            task.cancel()

    def _supports_progress(self) -> bool:
        window = self.server.client_capabilities.window
        return bool(window and window.work_done_progress)

    async def _begin(self, title: str, task: asyncio.Task) -> str | None:
        if not self._supports_progress():
            return None
        progress = self.server.work_done_progress
        import uuid  # here, not at start-up: uuid loads libuuid

        token = f"graph2py-{uuid.uuid4().hex[:12]}"
        try:
            await progress.create_async(token)
        except Exception:  # the client refused the token: work on without a progress bar
            return None
        loop = asyncio.get_running_loop()
        future = progress.tokens.get(token)
        if future is not None:  # window/workDoneProgress/cancel cancels this future
            future.add_done_callback(
                lambda f: f.cancelled() and loop.call_soon_threadsafe(task.cancel)
            )
        progress.begin(
            token, types.WorkDoneProgressBegin(title=title, cancellable=True, percentage=0)
        )
        return token

    def _end(self, token: str | None, message: str) -> None:
        if token is not None:
            self.server.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))
            self.server.work_done_progress.tokens.pop(token, None)

    async def run(self, title: str, *argv: str) -> dict:
        """Run `python -m codegen.lsp.worker ARGV...` and return its result; progress lines
        become `$/progress` reports. Raises JobFailed or JsonRpcRequestCancelled."""
        task = asyncio.current_task()
        msg_id = self.server.protocol.msg_id
        if msg_id is not None:
            self._by_request[msg_id] = task
        token = None
        process = None
        try:
            token = await self._begin(title, task)
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "codegen.lsp.worker",
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
            drain = asyncio.ensure_future(_collect(process.stderr, stderr_tail))
            outcome = await self._follow(process, token)
            await process.wait()
            await drain
        except asyncio.CancelledError:
            self._end(token, "cancelled")
            raise JsonRpcRequestCancelled(f"{title}: cancelled") from None
        finally:
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()
            self._by_request.pop(msg_id, None)
        if "result" in outcome:
            self._end(token, "done")
            return outcome["result"]
        problems = outcome.get("error") or [f"worker exited with code {process.returncode}"]
        if not outcome.get("error") and stderr_tail:
            problems.append(stderr_tail[-1])
        self._end(token, "failed")
        raise JobFailed(printable("; ".join(problems)))

    async def _follow(self, process, token: str | None) -> dict:
        async for raw in process.stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                continue  # a library printing to stdout; not ours
            if not isinstance(message, dict):
                continue
            if "progress" in message and token is not None:
                self.server.work_done_progress.report(
                    token,
                    types.WorkDoneProgressReport(
                        message=message["progress"], percentage=message.get("percentage")
                    ),
                )
            elif "result" in message or "error" in message:
                return message
        return {}


async def _collect(stream, tail) -> None:
    async for line in stream:
        tail.append(line.decode("utf-8", "replace").rstrip())
