"""The classic socket servers (``ipclab serve echo|time|file``), runnable for real clients.

- ``loop``: one selector-driven, non-blocking event loop for many clients at once (bounded buffers, idle timeout,
  connection limit, clean shutdown);
- ``echo``, ``daytime``, ``fileserver``: what each service answers;
- ``commands``: the ``serve`` subcommand (flags, validation, client one-liners, exit codes).

The measured counterparts of these exchanges (echo, file download, many clients on one server, connection
set-up) are patterns of ``ipclab run``; ``ipclab list`` names them.
"""
